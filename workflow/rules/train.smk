# Training (paper Appendix A). `vdm train` submits the run through submitit (executor from the
# config's `launch` section: local, or slurm with the GPUs/nodes/time limit given there) and waits
# for it. It is a local rule: a training rule that were itself a cluster job would hold a slot
# while its own submitit job waits for one (a small node can deadlock) and would orphan that job
# when cancelled. The training state lives in OUT/train/{run} (not an output, so Snakemake never
# deletes it): killing the workflow and rerunning resumes from the newest checkpoint.


rule train:
    input:
        cfg=f"{OUT}/configs/train/{{run}}.yaml",
        shards=_train_shards,
    output:
        f"{OUT}/models/{{run}}.pt",
    log:
        f"{OUT}/logs/train/{{run}}.log",
    wildcard_constraints:
        run=rf"{TRAINING_RUN_RE}|{SR_RUN}",
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    params:
        workdir=f"{OUT}/train/{{run}}",
    shell:
        "vdm train --config {input.cfg:q} --workdir {params.workdir:q} --export {output:q} > {log:q} 2>&1"


# The EMA weights of a run at an intermediate step (ablation.checkpoints -> train.export_steps), written
# by the training into its state folder; copied here once the run is complete (FVD along training).
rule step_export:
    input:
        f"{OUT}/models/{{run}}.pt",
    output:
        f"{OUT}/models/{{run}}-step{{step}}.pt",
    log:
        f"{OUT}/logs/train/{{run}}-step{{step}}.log",
    wildcard_constraints:
        run=TRAINING_RUN_RE,
    localrule: True
    params:
        src=_step_export_src,
    run:
        copy_step_export(params.src, output[0], log[0], wildcards.run, OUT)
