"""``vdm report``: tables, plots, GIF grids, provenance records and the report index.

    vdm report table --spec SPEC_JSON --csv T.csv --md T.md [--html T.html] [--plot T.png] [--gif T.gif]
    vdm report provenance --config C.yaml --train-config TC.yaml --model M.pt --samples S.npz \\
        --metrics M.json --out P.json
    vdm report index --title TITLE [--note NOTE] --tables A.md B.md ... [--plots L.png ...] --out README.md
    vdm report loss --csv RUN/train_log.csv ... [--labels ...] --out loss.png
    vdm report cascade --low EXT.npz --high SR.npz [--videos N] --gif C.gif --png C.png

The table spec is described in :mod:`vdm.report.tables` (the workflow writes it); SPEC_JSON is the
JSON text itself or ``@path`` to a file holding it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from vdm.cliargs import fail
from vdm.report import plots, tables
from vdm.report.cascade import cascade_figures
from vdm.report.plots import plot_loss
from vdm.report.provenance import provenance
from vdm.report.registry import title_of
from vdm.report.tables import ReportError
from vdm.utils.io import atomic_open, write_json

log = logging.getLogger("vdm.report")


def _spec(text: str) -> dict:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--spec is not JSON ({e})") from None


def cmd_table(args: argparse.Namespace) -> int:
    spec = _spec(args.spec)
    rows = tables.build_rows(spec)
    tables.write_csv(rows, args.csv)
    tables.write_markdown(rows, spec, args.md)
    log.info("table %s: %d rows -> %s, %s", spec.get("table"), len(rows), args.csv, args.md)
    if args.plot:
        plots.plot_table(spec["table"], rows, args.plot, title_of(spec["table"]))
        log.info("plot -> %s", args.plot)
    if args.html:  # the table with its plot embedded (the Snakemake report's page of the table)
        tables.write_html(rows, spec, args.html, plot=args.plot)
    if args.gif:
        labels = [plots._label(r) if spec["table"] in ("sampler", "conditioning") else _gif_label(r)
                  for r in rows]
        plots.gif_grid([r["samples"] for r in spec["rows"]], labels, args.gif, n=int(spec.get("gif_videos", 8)))
        log.info("GIF grid -> %s", args.gif)
    return 0


def _gif_label(r: dict) -> str:
    if "step" in r:
        return f"step {r['step']}"
    if "guidance_weight" in r:
        return f"w={r['guidance_weight']:g}"
    if "images_per_video" in r:
        return f"K={r['images_per_video']}"
    return r["setting"]


def cmd_provenance(args: argparse.Namespace) -> int:
    write_json(args.out, provenance(args.config, args.train_config, args.model, args.samples, args.metrics))
    log.info("provenance -> %s", args.out)
    return 0


def cmd_loss(args: argparse.Namespace) -> int:
    plot_loss(args.csv, args.labels or [Path(c).parent.name for c in args.csv], args.out, args.title)
    log.info("loss plot -> %s", args.out)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.spec:  # {"title", "note"} (the workflow's index spec), instead of --title / --note
        spec = _spec(args.spec)
        args.title, args.note = spec.get("title", args.title), spec.get("note", args.note)
    if not args.title:
        raise ValueError("vdm report index needs --title or a --spec with a title")
    lines = [f"# {args.title}", ""]
    if args.note:
        lines += [f"> {args.note}", ""]
    lines += ["Tables (`tables/*.csv|md`), plots (`plots/*.png`), GIF grids of samples (`gifs/*.gif`) and one",
              "provenance record per result (`provenance/<run>/<setting>.json`). See results/README.md.", ""]
    for md in args.tables:
        md = Path(md)
        text = md.read_text().strip()
        lines += [text, ""]
        stem = md.stem
        rel = os.path.relpath(md.parent.parent, out.parent)
        prefix = "" if rel == "." else f"{rel}/"
        lines += [f"![{stem}]({prefix}plots/{stem}.png) ![{stem} samples]({prefix}gifs/{stem}.gif)", ""]
    if args.plots:
        lines += ["## Training", ""]
        for png in args.plots:
            rel = os.path.relpath(png, out.parent)
            lines += [f"![{Path(png).stem}]({rel})", ""]
    with atomic_open(out, "w") as f:
        f.write("\n".join(lines))
    log.info("index -> %s", out)
    return 0


def cmd_cascade(args: argparse.Namespace) -> int:
    cascade_figures(args.low, args.high, args.gif, args.png, videos=args.videos)
    log.info("cascade -> %s, %s", args.gif, args.png)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vdm report", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="CSV + Markdown (+ plot, GIF grid) of one table")
    t.add_argument("--spec", required=True, help="table spec: JSON text or @file")
    t.add_argument("--csv", required=True)
    t.add_argument("--md", required=True)
    t.add_argument("--html", help="the table (and --plot) as a standalone HTML page (the Snakemake report's)")
    t.add_argument("--plot")
    t.add_argument("--gif")
    t.set_defaults(fn=cmd_table)
    p = sub.add_parser("provenance", help="provenance record of one result")
    for name in ("--config", "--train-config", "--model", "--samples", "--metrics", "--out"):
        p.add_argument(name, required=True)
    p.set_defaults(fn=cmd_provenance)
    i = sub.add_parser("index", help="README.md gathering every table")
    i.add_argument("--title", default="")
    i.add_argument("--note", default="")
    i.add_argument("--spec", help='{"title": ..., "note": ...}: JSON text or @file (instead of --title, --note)')
    i.add_argument("--tables", nargs="+", required=True)
    i.add_argument("--plots", nargs="*", default=[], help="further plots shown under 'Training' (loss curves)")
    i.add_argument("--out", required=True)
    i.set_defaults(fn=cmd_index)
    lo = sub.add_parser("loss", help="training-loss curves from train_log.csv files")
    lo.add_argument("--csv", nargs="+", required=True, help="train_log.csv of each run")
    lo.add_argument("--labels", nargs="*", default=[], help="one label per CSV (default: its folder name)")
    lo.add_argument("--title", default="")
    lo.add_argument("--out", required=True)
    lo.set_defaults(fn=cmd_loss)
    c = sub.add_parser("cascade", help="GIF + PNG of the cascade: low-resolution videos beside their super-resolution")
    c.add_argument("--low", required=True, help="samples.npz of the extension stage")
    c.add_argument("--high", required=True, help="samples.npz of the super-resolution stage")
    c.add_argument("--videos", type=int, default=4, help="videos shown")
    c.add_argument("--gif", required=True)
    c.add_argument("--png", required=True)
    c.set_defaults(fn=cmd_cascade)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    try:
        return args.fn(args)
    except (ReportError, FileNotFoundError, ValueError) as e:  # a missing or malformed input
        return fail("vdm report", e)
