# Resolved configs and sharding (DESIGN: shard records). Each resolved config holds exactly the
# experiment sections its stage reads (a sample set has three: its draw's, its features', its metrics';
# vdm/ablation.py), with the run's / setting's overrides applied; the vdm CLIs
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
        GRID.draw_config_path("{run}", "{setting}"),
    log:
        f"{OUT}/logs/configs/sample/{{run}}/{{setting}}.log",
    localrule: True
    params:
        cfg=_draw_config,
    run:
        write_resolved_config(output[0], params.cfg, log[0], f"sampling config of {wildcards.run}/{wildcards.setting}")


rule features_config:
    output:
        f"{OUT}/configs/features/{{run}}/{{setting}}.yaml",
    log:
        f"{OUT}/logs/configs/features/{{run}}/{{setting}}.log",
    localrule: True
    params:
        cfg=_features_config,
    run:
        write_resolved_config(
            output[0], params.cfg, log[0], f"features config of {wildcards.run}/{wildcards.setting}"
        )


rule metrics_config:
    output:
        f"{OUT}/configs/metrics/{{run}}/{{setting}}.yaml",
    log:
        f"{OUT}/logs/configs/metrics/{{run}}/{{setting}}.log",
    localrule: True
    params:
        cfg=_metrics_config,
    run:
        write_resolved_config(
            output[0], params.cfg, log[0], f"sampling/evaluation config of {wildcards.run}/{wildcards.setting}"
        )


# The evaluation's configs beside the sample sets': the comparisons read all of it (configs/evaluate.yaml), the real
# clips' features jobs all but the keys only statistics read (configs/real.yaml), the digit classifier only the
# data and its step count (configs/digits.yaml): a statistics edit recomputes no features and retrains nothing.
rule evaluate_config:
    output:
        f"{OUT}/configs/evaluate.yaml",
    log:
        f"{OUT}/logs/configs/evaluate.log",
    localrule: True
    params:
        cfg=GRID.evaluation_config(),
    run:
        write_resolved_config(output[0], params.cfg, log[0], "evaluation config (data and evaluate)")


rule real_config:
    output:
        f"{OUT}/configs/real.yaml",
    log:
        f"{OUT}/logs/configs/real.log",
    localrule: True
    params:
        cfg=GRID.evaluation_config("real"),
    run:
        write_resolved_config(output[0], params.cfg, log[0], "real-features config (data and evaluate)")


rule digits_config:
    output:
        f"{OUT}/configs/digits.yaml",
    log:
        f"{OUT}/logs/configs/digits.log",
    localrule: True
    params:
        cfg=GRID.evaluation_config("digits"),
    run:
        write_resolved_config(output[0], params.cfg, log[0], "digit-classifier config (data, evaluate.digit_steps)")


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
