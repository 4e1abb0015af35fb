# FVD (DESIGN: FVD, the canonical way), and with evaluate.frame_fid FID-avg / FID-first: one metrics JSON per
# sample set. The I3D features of the
# real test clips are a job of their own (one per clip length), computed once, beside the sampling,
# for every evaluation; the generated videos' features are a job per chunk of the set, and the FVD
# job reads those features, never the whole set of videos.


rule real_features:
    input:
        cfg=f"{OUT}/configs/evaluate.yaml",
        shards=f"{SHARDS}/{config['evaluate']['split']}",
    output:
        f"{OUT}/metrics/real-features-{{frames}}f.npz",
    log:
        f"{OUT}/logs/evaluate/real-features-{{frames}}f.log",
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    shell:
        "vdm evaluate --config {input.cfg:q} --real-only --frames {wildcards.frames:q} --real-cache {output:q}"
        " --quiet > {log:q} 2>&1"


# Frame-level FID (evaluate.frame_fid): the real clips' Inception features, one job per split and clip length.
rule real_frame_features:
    input:
        cfg=f"{OUT}/configs/evaluate.yaml",
        shards=f"{SHARDS}/{{split}}",
    output:
        f"{OUT}/metrics/real-inception-{{frames}}f-{{split}}.npz",
    log:
        f"{OUT}/logs/evaluate/real-inception-{{frames}}f-{{split}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    shell:
        "vdm evaluate --config {input.cfg:q} --real-only --frame-split {wildcards.split:q}"
        " --frames {wildcards.frames:q} --real-cache {output:q} --quiet > {log:q} 2>&1"


rule features_chunk:
    input:
        cfg=f"{OUT}/configs/sample/{{run}}/{{setting}}.yaml",
        samples=f"{OUT}/samples/{{run}}/{{setting}}/chunks/{{chunk}}.npz",
    output:
        f"{OUT}/features/{{run}}/{{setting}}/{{chunk}}.npz",
    log:
        f"{OUT}/logs/evaluate/{{run}}/{{setting}}/features-{{chunk}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    shell:
        "vdm evaluate --config {input.cfg:q} --features-only --samples {input.samples:q} --out {output:q}"
        " --quiet > {log:q} 2>&1"


rule evaluate:
    input:
        cfg=f"{OUT}/configs/sample/{{run}}/{{setting}}.yaml",
        samples=f"{OUT}/samples/{{run}}/{{setting}}/samples.npz",
        features=_feature_chunks,
        real=real_features_path,
        real_frames=real_frame_features_paths,
    output:
        f"{OUT}/metrics/{{run}}/{{setting}}.json",
    log:
        f"{OUT}/logs/evaluate/{{run}}/{{setting}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        frame_caches=real_frame_cache_args,
    shell:
        "vdm evaluate --config {input.cfg:q} --samples {input.samples:q} --gen-features {input.features:q}"
        " --real-cache {input.real:q} {params.frame_caches:q} --out {output:q} --quiet > {log:q} 2>&1"
