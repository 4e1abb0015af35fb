"""The ablation tables: one registry of what each table varies, its title, plot axis and paper table.

Read by the workflow (``vdm/ablation.py``: which tables exist, their order; ``workflow/rules/common.smk``:
the ``{table}`` wildcard) and by the report (``tables.py``: titles and column headers; ``plots.py``: line or
bar plot and its axis; ``findings.py``: the paper finding a table tests). Adding a table means one entry
here and its rows in ``vdm/ablation.py:Ablation.table_rows``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str  # the {table} wildcard and file stem (report/tables/<name>.md)
    title: str  # Markdown heading and plot title
    varies: tuple[str, ...]  # the row keys (setting columns) this table varies
    axis: tuple[str, str] | None  # (row key, axis label) of a line plot; None: one bar per row
    paper_table: str  # the paper table it corresponds to ("" = none), see paper_tables.csv


# Setting columns: row key -> column header, in the order tables show them.
KEY_COLUMNS = {
    "step": "training step",
    "images_per_video": "images / video",
    "sampler": "sampler",
    "steps": "steps",
    "task": "task",
    "guidance_weight": "guidance w",
    "cond_method": "conditioning",
    "w_r": "w_r",
}

TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("main", "Main result", ("images_per_video",), None, ""),
    TableSpec("training", "Along training: the main run's EMA weights at several steps, main sampling setting",
              ("step",), ("step", "training step (EMA weights)"), ""),
    TableSpec("joint_training", "Joint video-image training: images per video (paper Table 4)",
              ("images_per_video",), ("images_per_video", "independent images per video K"),
              "T4_joint_training"),
    TableSpec("guidance", "Classifier-free guidance weight (paper Table 5)",
              ("guidance_weight",), ("guidance_weight", "classifier-free guidance weight w"), "T5_cfg"),
    TableSpec("sampler", "Sampler: ancestral vs Langevin predictor-corrector (paper Tables 2-3)",
              ("sampler", "steps"), None, "T2_BAIR"),
    TableSpec("conditioning", "Conditioning method: reconstruction guidance vs replacement (paper Table 6)",
              ("task", "guidance_weight", "cond_method", "w_r"), None, "T6_recon_vs_replacement"),
)}

TABLE_NAMES = tuple(TABLES)

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


def title_of(table: str) -> str:
    return TABLES[table].title if table in TABLES else table
