# FVD (DESIGN: FVD, the canonical way): I3D features of the real test clips once per experiment,
# then one metrics JSON per sample set.


rule real_features:
    input:
        cfg=f"{OUT}/configs/real.yaml",
        shards=f"{SHARDS}/test",
    output:
        f"{OUT}/metrics/real-features.npz",
    log:
        f"{OUT}/logs/evaluate/real-features.log",
    threads: threads_of("real_features")
    resources:
        **resources_of("real_features"),
    conda:
        CONDA_ENV
    shell:
        "vdm evaluate --config {input.cfg} --real-only --real-cache {output} > {log} 2>&1"


rule evaluate:
    input:
        cfg=f"{OUT}/configs/sample/{{run}}/{{setting}}.yaml",
        samples=f"{OUT}/samples/{{run}}/{{setting}}/samples.npz",
        real=f"{OUT}/metrics/real-features.npz",
    output:
        f"{OUT}/metrics/{{run}}/{{setting}}.json",
    log:
        f"{OUT}/logs/evaluate/{{run}}/{{setting}}.log",
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    conda:
        CONDA_ENV
    shell:
        "vdm evaluate --config {input.cfg} --samples {input.samples} --real-cache {input.real}"
        " --out {output} > {log} 2>&1"
