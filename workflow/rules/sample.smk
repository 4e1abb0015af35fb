# Sampling (paper §1, §4): one sample set per training run and sampling setting. Conditional tasks
# (prediction, extension, super-resolution) take their conditioning clips from the test shards.
# A set is drawn in chunks of sample.chunk_size samples, a job each (a rerun redoes only the missing
# chunks), and gathered into samples.npz, byte for byte the unchunked set (sample i depends only on
# the model, the settings and seed i; tests/test_sampling_chunks.py).


rule sample_chunk:
    input:
        unpack(_sample_inputs),
    output:
        f"{OUT}/samples/{{run}}/{{setting}}/chunks/{{chunk}}.npz",
    log:
        f"{OUT}/logs/sample/{{run}}/{{setting}}/chunk-{{chunk}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("sample")
    resources:
        **resources_of("sample"),
    shell:
        "vdm sample --export {input.model:q} --config {input.cfg:q} --chunk {wildcards.chunk:q}"
        " --out {output:q} --quiet > {log:q} 2>&1"


rule sample:
    input:
        chunks=_sample_chunks,
    output:
        npz=f"{OUT}/samples/{{run}}/{{setting}}/samples.npz",
        gif=f"{OUT}/samples/{{run}}/{{setting}}/samples.gif",
    log:
        f"{OUT}/logs/sample/{{run}}/{{setting}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("gather")
    resources:
        **resources_of("gather"),
    shell:
        "vdm gather --out {output.npz:q} --gif {output.gif:q} {input.chunks:q} > {log:q} 2>&1"
