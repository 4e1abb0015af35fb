# Resolved configs and sharding (DESIGN: shard records). Each resolved config holds exactly the
# experiment sections its stage reads, with the run's / setting's overrides applied; the vdm CLIs
# load them strictly. A change in config/config.yaml rewrites only the configs it changes (params
# rerun trigger), and only their downstream jobs rerun.


rule data_config:
    output:
        f"{OUT}/configs/data.yaml",
    log:
        f"{OUT}/logs/configs/data.log",
    localrule: True
    params:
        cfg=experiment(skip=("diffusion", "train", "launch", "sample", "evaluate")),  # model: shard checks fit
    run:
        write_resolved_config(output[0], params.cfg, log[0], "sharding config")


rule train_config:
    output:
        f"{OUT}/configs/train/{{run}}.yaml",
    log:
        f"{OUT}/logs/configs/train/{{run}}.log",
    wildcard_constraints:
        run=rf"{TRAINING_RUN_RE}|{SR_RUN}",
    localrule: True
    params:
        cfg=_train_config,
    run:
        write_resolved_config(output[0], params.cfg, log[0], f"training config of run {wildcards.run}")


rule sample_config:
    output:
        f"{OUT}/configs/sample/{{run}}/{{setting}}.yaml",
    log:
        f"{OUT}/logs/configs/sample/{{run}}/{{setting}}.log",
    localrule: True
    params:
        cfg=_sample_config,
    run:
        write_resolved_config(
            output[0], params.cfg, log[0], f"sampling/evaluation config of {wildcards.run}/{wildcards.setting}"
        )


rule evaluate_config:
    output:
        f"{OUT}/configs/evaluate.yaml",
    log:
        f"{OUT}/logs/configs/evaluate.log",
    localrule: True
    params:
        cfg=experiment(skip=("model", "diffusion", "train", "launch", "sample")),
    run:
        write_resolved_config(output[0], params.cfg, log[0], "real-features config (data and evaluate)")


# The cascade's high-resolution model trains on its own shards: the same data at factor x the resolution.
rule superres_data_config:
    output:
        f"{OUT}/configs/data-superres.yaml",
    log:
        f"{OUT}/logs/configs/data-superres.log",
    localrule: True
    params:
        cfg=_superres_data_config,
    run:
        write_resolved_config(output[0], params.cfg, log[0], "sharding config of the cascade's super-resolution model")


# {dataset} = data (every run of the grid) | data-superres (the cascade's high-resolution model).
rule shard:
    input:
        cfg=f"{OUT}/configs/{{dataset}}.yaml",
    output:
        directory(f"{OUT}/{{dataset}}/{{split}}"),
    log:
        f"{OUT}/logs/shard/{{dataset}}-{{split}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("shard")
    resources:
        **resources_of("shard"),
    params:
        out=parent_of_output,
    shell:
        "vdm shard --config {input.cfg:q} --split {wildcards.split:q} --out {params.out:q}"
        " --workers {threads:q} > {log:q} 2>&1"
