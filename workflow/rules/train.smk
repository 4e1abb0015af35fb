# Training (paper Appendix A). `vdm train` submits the run through submitit (executor from the
# config's `launch` section: local, or slurm with the GPUs/nodes/time limit given there) and waits
# for it. It is a local rule: a training rule that were itself a cluster job would hold a slot
# while its own submitit job waits for one (a small node can deadlock) and would orphan that job
# when cancelled. The training state lives in OUT/train/{run} (not an output, so Snakemake never
# deletes it): killing the workflow and rerunning resumes from the newest checkpoint.

from vdm.utils.io import atomic_path


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


def _step_export_src(wildcards):
    """Where the training of {run} wrote its EMA weights at {step} (train.export_steps)."""
    return f"{OUT}/train/{wildcards.run}/exports/step-{int(wildcards.step):09d}.pt"


def copy_step_export(src, dst, log, run):
    """Copy an export the training wrote at an intermediate step (atomically)."""
    import shutil

    if not os.path.isfile(src):
        raise WorkflowError(
            f"{src} not found: run {run} has no export at that step. Its training ended before "
            f"ablation.checkpoints listed the step (train.export_steps); to evaluate it, retrain from step 0 "
            f"(rm -r {OUT}/train/{run} {OUT}/models/{run}.pt)."
        )
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    if os.path.isfile(f"{src}.run.json"):  # the record of the training segments that made it
        with atomic_path(f"{dst}.run.json") as tmp:
            shutil.copyfile(f"{src}.run.json", tmp)
    with open(log, "w") as f:
        f.write(f"copied {src} -> {dst}\n")


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
        copy_step_export(params.src, output[0], log[0], wildcards.run)
