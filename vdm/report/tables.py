"""Result tables: our metric per setting, its interval and N, and the paper's number beside it.

A table is described by a *spec* (written by the workflow, ``workflow/rules/report.smk``)::

    {"table": "guidance", "experiment": "mmnist", "note": "...",
     "paper": {"table": "T5_cfg", "metric": "FVD_val", "setting_contains": "frameskip 1"} | null,
     "rows": [{"keys": {"guidance_weight": 2.0}, "run": "img8", "setting": "ancestral-64-w2",
               "metrics": "results/.../ancestral-64-w2.json", "samples": ".../samples.npz"}, ...],
     "comparisons": "results/.../report/comparisons/guidance.json" | null}

The paper's numbers come from ``paper_tables.csv`` beside this file (see ``paper_tables.md`` for its
source); a paper row matches one of ours when every setting both of them name (images per video,
guidance weight, sampler, conditioning method) is equal.
"""

from __future__ import annotations

import csv
import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from vdm.artifacts.metrics import ALSO_FIELDS, ALSO_PAPER_METRIC, ALSO_TITLES, read_metrics
from vdm.report.findings import finding_of
from vdm.report.registry import KEY_COLUMNS, TABLES, title_of
from vdm.utils.io import atomic_open

PAPER_CSV = Path(__file__).with_name("paper_tables.csv")

# Setting columns and titles of the tables: vdm/report/registry.py (one registry of the ablation tables).
TABLE_TITLES = {name: t.title for name, t in TABLES.items()}

COLUMNS = [
    "run", "setting", "metric", "value", "interval_low", "interval_high", "n_generated", "n_real",
    "paper_table", "paper_metric", "paper_value", "paper_method",
]


class ReportError(ValueError):
    """A table spec is malformed; the message names it (a malformed metrics file is an ArtifactError)."""


# --------------------------------------------------------------------------------------------
# The paper's numbers
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def paper_table_rows() -> tuple[dict[str, str], ...]:
    with open(PAPER_CSV, newline="") as f:
        return tuple(csv.DictReader(f))


def paper_keys(row: Mapping[str, str]) -> dict[str, Any]:
    """The settings a paper row names, parsed from its setting and method text."""
    text = f"{row['setting']}; {row['method']}"
    keys: dict[str, Any] = {}
    m = re.search(r"(\d+) (?:independent )?image frames", text)
    if m:
        keys["images_per_video"] = int(m.group(1))
    m = re.search(r"guidance(?: weight)? ([0-9.]+)", text)
    if m:
        keys["guidance_weight"] = float(m.group(1))
    method = row["method"].lower()
    if "langevin" in method:
        keys["sampler"] = "langevin"
    elif "ancestral" in method:
        keys["sampler"] = "ancestral"
    if "reconstruction guidance" in method:
        keys["cond_method"] = "reconstruction"
    elif "replacement" in method:
        keys["cond_method"] = "replacement"
    return keys


def paper_match(ref: Mapping[str, Any] | None, keys: Mapping[str, Any]) -> dict[str, Any] | None:
    """The paper row for one of our rows, or None. Raises when ``ref`` names an unknown table/metric."""
    if not ref:
        return None
    rows = [r for r in paper_table_rows() if r["table"] == ref["table"]]
    if not rows:
        known = sorted({r["table"] for r in paper_table_rows()})
        raise ReportError(f"report.paper: unknown paper table {ref['table']!r} (known: {', '.join(known)})")
    rows = [r for r in rows if r["metric"] == ref["metric"]]
    if not rows:
        raise ReportError(f"report.paper: table {ref['table']!r} has no metric {ref['metric']!r}")
    contains = ref.get("setting_contains") or ""
    rows = [r for r in rows if contains in r["setting"]]
    matches = []
    for r in rows:
        pk = paper_keys(r)
        shared = set(pk) & set(keys)
        if all(_same(pk[k], keys[k]) for k in shared):
            matches.append((len(shared), r))
    if not matches:
        return None
    best = max(n for n, _ in matches)
    top = [r for n, r in matches if n == best]
    if len(top) > 1:  # ambiguous: our row names too few settings to pick one paper row
        return None
    return top[0]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b))
    return a == b


# --------------------------------------------------------------------------------------------
# Building and writing a table
# --------------------------------------------------------------------------------------------
def build_rows(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "rows" not in spec or not spec["rows"]:
        raise ReportError(f"table spec {spec.get('table')!r}: no rows")
    ref = spec.get("paper")
    out = []
    for r in spec["rows"]:
        m = read_metrics(r["metrics"])
        row: dict[str, Any] = {k: r["keys"][k] for k in KEY_COLUMNS if k in r["keys"]}
        row.update(
            run=r["run"], setting=r["setting"], metric=m["metric"], value=m["value"],
            interval_low=m["interval_low"], interval_high=m["interval_high"],
            n_generated=m["n_generated"], n_real=m["n_real"],
        )
        for name, extra in (m.get("also") or {}).items():
            row.update(also_columns(name, extra))
            row[f"{name}_paper"] = _paper_value(ref, name, r["keys"])
        p = paper_match(ref, r["keys"])
        row.update(
            paper_table=ref["table"] if ref else "",
            paper_metric=ref["metric"] if ref else "",
            paper_value=float(p["value"]) if p else math.nan,
            paper_method=p["method"] if p else "",
        )
        out.append(row)
    return out


def _paper_value(ref: Mapping[str, Any] | None, name: str, keys: Mapping[str, Any]) -> float:
    """The paper's number of further metric ``name`` for the row with ``keys`` (NaN if the paper has none)."""
    metric = ALSO_PAPER_METRIC.get(name)
    if not ref or metric is None:
        return math.nan
    if not any(p["table"] == ref["table"] and p["metric"] == metric for p in paper_table_rows()):
        return math.nan
    p = paper_match({**ref, "metric": metric}, keys)
    return float(p["value"]) if p else math.nan


def also_columns(name: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of one further metric of a row (see ALSO_TITLES)."""
    if not extra.get("computed"):
        return {name: math.nan, f"{name}_low": math.nan, f"{name}_high": math.nan, f"{name}_n_generated": "",
                f"{name}_n_real": "", f"{name}_note": f"not computed: {extra.get('reason', 'no reason recorded')}"}
    low, high = extra.get("interval") or (math.nan, math.nan)
    note = "" if extra.get("full_convention", True) else (
        f"{extra['n_generated']} / {extra['n_real']} videos, not the convention's {extra.get('convention_n')}")
    real = {}
    if extra.get("real_value") is not None:  # the real clips' value of the same metric (calibration)
        r_lo, r_hi = extra.get("real_interval") or (math.nan, math.nan)
        real = {f"{name}_real": float(extra["real_value"])}
        note = f"real clips: {_fmt(float(extra['real_value']), 3)} [{_fmt(r_lo, 3)}, {_fmt(r_hi, 3)}]"
    return {name: float(extra["value"]), f"{name}_low": float(low), f"{name}_high": float(high),
            f"{name}_n_generated": extra["n_generated"], f"{name}_n_real": extra["n_real"], f"{name}_note": note,
            **real}


def also_names(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [n for n in ALSO_TITLES if any(n in r for r in rows)]


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    keys = [k for k in KEY_COLUMNS if any(k in r for r in rows)]
    return keys + COLUMNS + [f"{n}{f}" for n in also_names(rows) for f in ALSO_FIELDS]


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    cols = columns_of(rows)
    with atomic_open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: _csv_value(r.get(c, "")) for c in cols})


def _csv_value(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return ""
    return v


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.{digits}f}" if abs(v) < 1e5 else f"{v:.3g}"
    return str(v)


def to_markdown(rows: Sequence[Mapping[str, Any]], spec: Mapping[str, Any]) -> str:
    table = spec.get("table", "")
    ref = spec.get("paper")
    lines = [f"## {title_of(table)}", ""]
    if spec.get("note"):
        lines += [f"> {spec['note']}", ""]
    keys = [k for k in KEY_COLUMNS if any(k in r for r in rows)]
    metric = (rows[0]["metric"] if rows else "").upper()
    also = also_names(rows)
    with_paper = {n for n in also if any(not math.isnan(r.get(f"{n}_paper", math.nan)) for r in rows)}
    head = [KEY_COLUMNS[k] for k in keys] + [f"{metric} (ours)", "interval", "N gen / real", "run / setting"]
    for n in also:
        head += [ALSO_TITLES[n]] + ([f"paper {ALSO_PAPER_METRIC[n]}"] if n in with_paper else [])
    if ref:
        head.append(f"paper {ref['table']} {ref['metric']}")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in rows:
        cells = [_fmt(r.get(k), 1) for k in keys]
        interval = (
            "–" if math.isnan(r["interval_low"]) else f"[{_fmt(r['interval_low'])}, {_fmt(r['interval_high'])}]"
        )
        cells += [
            _fmt(r["value"]), interval, f"{_fmt(r['n_generated'])} / {_fmt(r['n_real'])}",
            f"`{r['run']}/{r['setting']}`",
        ]
        for n in also:
            cells += [_also_cell(r, n)] + ([_fmt(r.get(f"{n}_paper", math.nan))] if n in with_paper else [])
        if ref:
            cells.append(_fmt(r["paper_value"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if ref:
        # the experiment part of the paper's setting (before the first ';' come data set and model)
        setting = next((p["setting"] for p in paper_table_rows() if p["table"] == ref["table"]), "").split(";")[0]
        lines += [
            f"Paper column: {ref['table']} ({setting}), metric {ref['metric']}"
            + (f", rows with '{ref['setting_contains']}'" if ref.get("setting_contains") else "")
            + ". Context only: a different data set, resolution and model size.",
            "",
        ]
    found = finding_of(table, rows, read_comparisons(spec.get("comparisons")))
    if found is not None:
        lines += [f"**{'Finding' if found.verdict else 'Learning'}.** {found.text}", ""]
    return "\n".join(lines)


def read_comparisons(path: str | Path | None) -> dict[str, Any] | None:
    """The table's paired comparisons (``vdm compare``'s JSON at the spec's ``comparisons``), or None."""
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReportError(f"comparisons file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not JSON ({e})") from None


def _also_cell(r: Mapping[str, Any], name: str) -> str:
    """'value [low, high], N g / r' of a further metric, or its 'not computed: ...' note."""
    value = r.get(name, math.nan)
    if isinstance(value, float) and math.isnan(value):
        return r.get(f"{name}_note") or "–"
    interval = "" if math.isnan(r[f"{name}_low"]) else f" [{_fmt(r[f'{name}_low'])}, {_fmt(r[f'{name}_high'])}]"
    real = f" (real {_fmt(r[f'{name}_real'], 3)})" if f"{name}_real" in r else ""
    return f"{_fmt(value)}{interval}{real}, N {r[f'{name}_n_generated']} / {r[f'{name}_n_real']}"


def to_html(rows: Sequence[Mapping[str, Any]], spec: Mapping[str, Any], plot: str | Path | None = None) -> str:
    """A standalone HTML page of the table (the Markdown table's cells, escaped) and, given ``plot`` (a PNG),
    the plot below it, embedded: the page the Snakemake report shows for the table."""
    import base64
    import html

    md = to_markdown(rows, spec).splitlines()
    out = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">',
           f"<title>{html.escape(title_of(spec.get('table', '')))}</title>",
           "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:3px 8px;text-align:right}th{background:#eee}"
           "blockquote{color:#555}</style></head><body>"]
    in_table = False
    for line in md:
        if line.startswith("| "):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if not in_table:
                out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells) + "</tr>")
                in_table = True
            else:
                out.append("<tr>" + "".join(f"<td>{html.escape(c.strip('`'))}</td>" for c in cells) + "</tr>")
        elif line.startswith("|"):
            continue  # the Markdown separator row
        else:
            if in_table:
                out.append("</table>")
                in_table = False
            if line.startswith("## "):
                out.append(f"<h2>{html.escape(line[3:])}</h2>")
            elif line.startswith("> "):
                out.append(f"<blockquote>{html.escape(line[2:])}</blockquote>")
            elif line:
                out.append(f"<p>{html.escape(line.replace('**', ''))}</p>")
    if in_table:
        out.append("</table>")
    if plot is not None:
        data = base64.b64encode(Path(plot).read_bytes()).decode()
        out.append(f'<p><img alt="plot of {html.escape(spec.get("table", ""))}" style="max-width:100%" '
                   f'src="data:image/png;base64,{data}"></p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_html(rows: Sequence[Mapping[str, Any]], spec: Mapping[str, Any], path: str | Path,
               plot: str | Path | None = None) -> None:
    with atomic_open(path, "w") as f:
        f.write(to_html(rows, spec, plot))


def write_markdown(rows: Sequence[Mapping[str, Any]], spec: Mapping[str, Any], path: str | Path) -> None:
    with atomic_open(path, "w") as f:
        f.write(to_markdown(rows, spec))
