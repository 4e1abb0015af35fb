# Sampling (paper §1, §4): one sample set per training run and sampling setting. Conditional tasks
# (prediction, extension, super-resolution) take their conditioning clips from the test shards.


rule sample:
    input:
        unpack(_sample_inputs),
    output:
        npz=f"{OUT}/samples/{{run}}/{{setting}}/samples.npz",
        gif=f"{OUT}/samples/{{run}}/{{setting}}/samples.gif",
    log:
        f"{OUT}/logs/sample/{{run}}/{{setting}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("sample")
    resources:
        **resources_of("sample"),
    shell:
        "vdm sample --export {input.model:q} --config {input.cfg:q} --out {output.npz:q} --gif {output.gif:q}"
        " > {log:q} 2>&1"
