# The Figure 2 cascade (paper Fig. 2: 16x64x64 samples extended and super-resolved to 64x128x128), one
# target: `snakemake --cores 2 cascade` (or in `all` with cascade.enabled). Stage "extension": the main
# run's videos extended block-autoregressively to cascade.extension.total_frames frames; stage
# "superres": those videos super-resolved by a model trained on the same data at cascade.superres.factor
# x the resolution ("superres" run), in blocks of its frames, with reconstruction guidance. Each stage is
# a chunked sample set as in sample.smk (a rerun redoes only missing chunks).


rule cascade_config:
    output:
        f"{OUT}/configs/cascade/{{stage}}.yaml",
    log:
        f"{OUT}/logs/configs/cascade/{{stage}}.log",
    localrule: True
    params:
        cfg=_cascade_config,
    run:
        write_resolved_config(output[0], params.cfg, log[0], f"cascade stage {wildcards.stage}")


rule cascade_chunk:
    input:
        unpack(_cascade_inputs),
    output:
        f"{OUT}/cascade/{{stage}}/chunks/{{chunk}}.npz",
    log:
        f"{OUT}/logs/cascade/{{stage}}/chunk-{{chunk}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("sample")
    resources:
        **resources_of("sample"),
    shell:
        "vdm sample --export {input.model:q} --config {input.cfg:q} --chunk {wildcards.chunk:q}"
        " --out {output:q} --quiet > {log:q} 2>&1"


rule cascade_gather:
    input:
        chunks=_cascade_chunks,
    output:
        npz=f"{OUT}/cascade/{{stage}}/samples.npz",
        gif=f"{OUT}/cascade/{{stage}}/samples.gif",
    log:
        f"{OUT}/logs/cascade/{{stage}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("gather")
    resources:
        **resources_of("gather"),
    shell:
        "vdm gather --out {output.npz:q} --gif {output.gif:q} {input.chunks:q} > {log:q} 2>&1"


rule cascade:
    input:
        low=cascade_samples("extension"),
        high=cascade_samples("superres"),
    output:
        gif=report(
            f"{OUT}/report/cascade.gif",
            caption="../report/cascade.rst",
            category="Figure 2: cascade",
            labels={"item": "videos"},
        ),
        png=report(
            f"{OUT}/report/cascade.png",
            caption="../report/cascade.rst",
            category="Figure 2: cascade",
            labels={"item": "frames"},
        ),
    log:
        f"{OUT}/logs/report/cascade.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        videos=config["report"]["gif_videos"],
    shell:
        "vdm report cascade --low {input.low:q} --high {input.high:q} --videos {params.videos:q}"
        " --gif {output.gif:q} --png {output.png:q} > {log:q} 2>&1"
