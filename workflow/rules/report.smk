# Report: one table (CSV + Markdown + HTML + plot + GIF grid) per ablation the grid covers, with the
# paper's number in its own column; a provenance record per result; an index README.md. The tables, plots,
# GIFs and loss curves are also the items of `snakemake --report report.html` (captions: workflow/report/).


# `snakemake --report report.html`: the results people look at, one category per paper table
# (captions: workflow/report/*.rst).
REPORT_CATEGORIES = {
    "main": "Main result",
    "training": "Along training",
    "joint_training": "Table 4: joint video-image training",
    "guidance": "Table 5: classifier-free guidance",
    "sampler": "Tables 2-3: samplers",
    "conditioning": "Table 6: conditioning method",
}


def _report_category(wildcards):
    return REPORT_CATEGORIES.get(wildcards.table, wildcards.table)


def table_report_outputs(table):
    """table_outputs with the table (HTML), its plot and its sample GIF flagged for the Snakemake report."""
    out = table_outputs(table)
    for key, what in (("html", "table"), ("png", "plot"), ("gif", "samples")):
        out[key] = report(
            out[key],
            caption=f"../report/{'gif' if key == 'gif' else what}.rst",
            category=_report_category,
            labels={"table": "{table}", "item": what},
        )
    return out


def _table_inputs(wildcards):
    rows = GRID.table_rows(wildcards.table)
    return {
        "metrics": [GRID.metrics_path(run, setting) for _, run, setting in rows],
        "samples": [GRID.samples_path(run, setting) for _, run, setting in rows],
    }


def _table_spec_json(wildcards):
    return json.dumps(GRID.table_spec(wildcards.table), sort_keys=True)


rule table:
    input:
        unpack(_table_inputs),
    output:
        **table_report_outputs("{table}"),
    log:
        f"{OUT}/logs/report/{{table}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("report")
    resources:
        **resources_of("report"),
    params:
        spec=_table_spec_json,
    shell:
        "vdm report table --spec {params.spec:q} --csv {output.csv:q} --md {output.md:q} --html {output.html:q}"
        " --plot {output.png:q} --gif {output.gif:q} > {log:q} 2>&1"


def _base_train_config(wildcards):
    """The training config of the run a {run} export comes from (img8-step500 -> img8)."""
    return f"{OUT}/configs/train/{base_run(wildcards.run)}.yaml"


rule provenance:
    input:
        cfg=f"{OUT}/configs/sample/{{run}}/{{setting}}.yaml",
        train_cfg=_base_train_config,
        model=f"{OUT}/models/{{run}}.pt",
        samples=f"{OUT}/samples/{{run}}/{{setting}}/samples.npz",
        metrics=f"{OUT}/metrics/{{run}}/{{setting}}.json",
    output:
        f"{OUT}/report/provenance/{{run}}/{{setting}}.json",
    log:
        f"{OUT}/logs/report/provenance/{{run}}/{{setting}}.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "vdm report provenance --config {input.cfg:q} --train-config {input.train_cfg:q} --model {input.model:q}"
        " --samples {input.samples:q} --metrics {input.metrics:q} --out {output:q} > {log:q} 2>&1"


rule loss_plot:
    input:
        [f"{OUT}/models/{run}.pt" for run in RUNS],
    output:
        report(
            loss_plot_path(),
            caption="../report/loss.rst",
            category="Training",
            labels={"item": "loss"},
        ),
    log:
        f"{OUT}/logs/report/loss.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        csv=[f"{OUT}/train/{run}/train_log.csv" for run in RUNS],
        labels=RUNS,
    shell:
        "vdm report loss --csv {params.csv:q} --labels {params.labels:q} --title 'training loss per run'"
        " --out {output:q} > {log:q} 2>&1"


rule report_index:
    input:
        md=[table_outputs(t)["md"] for t in TABLES],
        png=[table_outputs(t)["png"] for t in TABLES],
        gif=[table_outputs(t)["gif"] for t in TABLES],
        loss=loss_plot_path(),
    output:
        f"{OUT}/report/README.md",
    log:
        f"{OUT}/logs/report/index.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        title=f"vdm results: {config['name']}",
        note=config["report"]["dataset_note"],
    shell:
        "vdm report index --title {params.title:q} --note {params.note:q} --tables {input.md:q}"
        " --plots {input.loss:q} --out {output:q} > {log:q} 2>&1"


# One target per table, e.g. `snakemake --cores 2 table_guidance` (only the tables the grid covers).
for _table in TABLES:

    rule:
        name:
            f"table_{_table}"
        input:
            list(table_outputs(_table).values()),
        localrule: True
