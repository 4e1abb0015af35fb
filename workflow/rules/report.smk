# Report: one table (CSV + Markdown + HTML + plot + GIF grid) per ablation the grid covers, with the
# paper's number in its own column; a provenance record per result; an index README.md. The tables, plots,
# GIFs and loss curves are also the items of `snakemake --report report.html` (captions: workflow/report/).


# Every job spec travels as a file written here (params: HTML-safe JSON, vdm.jobs.spec_json): free text of the
# config (report.dataset_note) neither meets a command line's length limit nor ends the <script> element in which
# `snakemake --report` embeds the params.
rule spec:
    output:
        spec_file("{spec}"),
    log:
        f"{OUT}/logs/report/spec-{{spec}}.log",
    localrule: True
    params:
        text=_spec_json,
    run:
        write_spec(output[0], params.text, log[0])


rule table:
    input:
        unpack(_table_inputs),
        spec=spec_file("table-{table}"),
    output:
        **table_report_outputs("{table}"),
    log:
        f"{OUT}/logs/report/{{table}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("report")
    resources:
        **resources_of("report"),
    shell:
        "vdm report table --spec @{input.spec:q} --csv {output.csv:q} --md {output.md:q} --html {output.html:q}"
        " --plot {output.png:q} --gif {output.gif:q} > {log:q} 2>&1"


# The paired differences between a table's arms (same seeds, one real set): the evidence of its finding.
rule compare:
    input:
        unpack(_compare_inputs),
        spec=spec_file("compare-{table}"),
    output:
        f"{OUT}/report/comparisons/{{table}}.json",
    log:
        f"{OUT}/logs/report/compare-{{table}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        digits=DIGITS_SETTING,
    shell:
        "vdm compare --config {input.cfg:q} --set {params.digits:q} --spec @{input.spec:q} --real-features {input.real:q}"
        " --out {output:q} > {log:q} 2>&1"


rule provenance:
    input:
        cfg=f"{OUT}/configs/metrics/{{run}}/{{setting}}.yaml",
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
        spec=spec_file("index"),
    output:
        f"{OUT}/report/README.md",
    log:
        f"{OUT}/logs/report/index.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "vdm report index --spec @{input.spec:q} --tables {input.md:q}"
        " --plots {input.loss:q} --out {output:q} > {log:q} 2>&1"


# One target per table, e.g. `snakemake --cores 2 table_guidance` (only the tables the grid covers).
for _table in TABLES:

    rule:
        name:
            f"table_{_table}"
        input:
            list(table_outputs(_table).values()),
        localrule: True
