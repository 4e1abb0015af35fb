# FVD (DESIGN: FVD, the canonical way): one metrics JSON per sample set. The I3D features of the
# real test clips are computed by the first evaluation that needs them and cached (keyed by data
# settings, split, seed, clip length and detector; `vdm evaluate --real-cache`) for all the others.


rule evaluate:
    input:
        cfg=f"{OUT}/configs/sample/{{run}}/{{setting}}.yaml",
        samples=f"{OUT}/samples/{{run}}/{{setting}}/samples.npz",
        shards=f"{SHARDS}/{config['evaluate']['split']}",
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
        real_cache=real_cache_path,
    shell:
        "vdm evaluate --config {input.cfg:q} --samples {input.samples:q} --real-cache {params.real_cache:q}"
        " --out {output:q} --quiet > {log:q} 2>&1"
