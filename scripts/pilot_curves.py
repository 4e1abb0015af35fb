"""The learning-curve pilots (config/pilots/*.yaml) as a picture and a table: FVD and the digit metrics of the main
arm at each evaluated step, per pilot, with the settings that differ in the legend.

    python scripts/pilot_curves.py base min_snr lr2e-3 --out docs/pilot_curves.png [--md docs/pilot_curves.md]
    python scripts/pilot_curves.py base min_snr lr2e-3 bf16_min_snr --points docs/pilot_points.csv \
        --out docs/pilot_curves.png

`--points CSV` records every pilot's points (values, intervals, the real clips' values, s/step): a pilot whose
results/ folder is there is read from it and its rows are written to the CSV; a pilot whose results are gone is
read from the CSV, so the picture can be drawn again from what was measured.

Each pilot is a workflow run of config/pilots/<name>.yaml (results/pilot_<name>/); its sets are the main arm's
exports at ablation.checkpoints, sampled and evaluated like every other set (64 samples, seeds 0..63, against the
same 256 real test clips). The wall time per step is read from the run's train_log.csv (the median over logged
intervals): it includes whatever else ran on the machine, so it is comparable only between runs made alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def setting_note(name: str) -> str:
    """What the pilot's config says it varies (its first comment line, after the colon)."""
    first = (REPO / "config" / "pilots" / f"{name}.yaml").read_text().splitlines()[0]
    return first.split(":", 1)[1].strip() if ":" in first else name


def curve(results: Path, name: str) -> list[dict[str, Any]]:
    """One row per evaluated step of the pilot's main arm."""
    cfg = yaml.safe_load((REPO / "config" / "pilots" / f"{name}.yaml").read_text())
    steps = sorted(int(s) for s in cfg["ablation"]["checkpoints"])
    final = int(cfg["train"]["steps"])
    run = f"img{cfg['data']['images_per_video']}"
    rows = []
    for step in steps:
        export = run if step == final else f"{run}-step{step}"
        paths = sorted((results / "metrics" / export).glob("*.json"))
        paths = [p for p in paths if not p.name.endswith(".run.json")]
        if not paths:
            continue
        m = json.loads(paths[0].read_text())
        also = m.get("also", {})

        def entry(key: str, also: dict[str, Any] = also) -> dict[str, Any]:
            e = also.get(key, {})
            return e if e.get("computed", True) and "value" in e else {}

        rows.append({"pilot": name, "step": step, "fvd": m["value"], "fvd_interval": m.get("interval"),
                     "class_accuracy": entry("digit_class_accuracy"), "identity": entry("digit_identity"),
                     "digit_fd": entry("digit_fd"), "n": m.get("n_generated"), "n_real": m.get("n_real")})
    return rows


def seconds_per_step(results: Path, run: str) -> float | None:
    path = results / "train" / run / "train_log.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = [(int(r["step"]), float(r["elapsed_s"])) for r in csv.DictReader(f)]
    rates = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(rows, rows[1:]) if s1 > s0]
    return statistics.median(rates) if rates else None


POINT_FIELDS = ("pilot", "step", "fvd", "fvd_low", "fvd_high", "n", "n_real", "s_per_step") + tuple(
    f"{k}{suffix}" for k in ("class_accuracy", "identity", "digit_fd") for suffix in ("", "_low", "_high", "_real"))
DIGIT_KEYS = ("class_accuracy", "identity", "digit_fd")


def _num(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def point_row(r: dict[str, Any], rate: float | None) -> dict[str, Any]:
    """One CSV row of a curve point (``curve``'s dict)."""
    iv = r["fvd_interval"] or (None, None)
    out: dict[str, Any] = {"pilot": r["pilot"], "step": r["step"], "fvd": r["fvd"], "fvd_low": iv[0],
                           "fvd_high": iv[1], "n": r["n"], "n_real": r["n_real"], "s_per_step": rate}
    for k in DIGIT_KEYS:
        e = r[k] or {}
        div = e.get("interval") or (None, None)
        out.update({k: e.get("value"), f"{k}_low": div[0], f"{k}_high": div[1], f"{k}_real": e.get("real_value")})
    return {f: ("" if out[f] is None else out[f]) for f in POINT_FIELDS}


def read_points(path: Path) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """The curve points and s/step of every pilot recorded in ``path`` (the inverse of :func:`point_row`)."""
    rows, rates = [], {}
    with open(path, newline="") as f:
        for c in csv.DictReader(f):
            lo, hi = _num(c["fvd_low"]), _num(c["fvd_high"])
            r: dict[str, Any] = {"pilot": c["pilot"], "step": int(c["step"]), "fvd": float(c["fvd"]),
                                 "fvd_interval": [lo, hi] if lo is not None else None,
                                 "n": int(c["n"]) if c["n"] else None,
                                 "n_real": int(c["n_real"]) if c["n_real"] else None}
            for k in DIGIT_KEYS:
                v = _num(c[k])
                e: dict[str, Any] = {}
                if v is not None:
                    e = {"value": v}
                    if c[f"{k}_low"]:
                        e["interval"] = [float(c[f"{k}_low"]), float(c[f"{k}_high"])]
                    if c[f"{k}_real"]:
                        e["real_value"] = float(c[f"{k}_real"])
                r[k] = e
            rows.append(r)
            rates[c["pilot"]] = _num(c["s_per_step"])
    return rows, rates


def write_points(path: Path, rows: list[dict[str, Any]], rates: dict[str, float | None]) -> None:
    """Write ``rows`` to ``path`` (atomically), keeping the recorded rows of the pilots not in ``rows``."""
    kept, old_rates = read_points(path) if path.is_file() else ([], {})
    names = {r["pilot"] for r in rows}
    lines = [point_row(r, old_rates.get(r["pilot"])) for r in kept if r["pilot"] not in names]
    lines += [point_row(r, rates.get(r["pilot"])) for r in rows]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=POINT_FIELDS)
        w.writeheader()
        w.writerows(lines)
    tmp.replace(path)


def _fmt(e: dict[str, Any], digits: int = 3) -> str:
    if not e:
        return "n/a"
    iv = e.get("interval")
    return f"{e['value']:.{digits}f}" + (f" [{iv[0]:.{digits}f}, {iv[1]:.{digits}f}]" if iv else "")


def table(rows: list[dict[str, Any]], rates: dict[str, float | None]) -> str:
    lines = ["| pilot | what differs | step | FVD [95 % CI] | class accuracy [CI] | identity [CI] | digit FD "
             "| s/step |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        iv = r["fvd_interval"]
        fvd = f"{r['fvd']:.1f}" + (f" [{iv[0]:.1f}, {iv[1]:.1f}]" if iv else "")
        rate = rates.get(r["pilot"])
        lines.append(f"| {r['pilot']} | {setting_note(r['pilot'])} | {r['step']} | {fvd} | "
                     f"{_fmt(r['class_accuracy'])} | {_fmt(r['identity'])} | {_fmt(r['digit_fd'], 1)} | "
                     f"{'' if rate is None else f'{rate:.2f}'} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], names: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2 + 0.3 * len(names)))
    for name in names:
        rs = [r for r in rows if r["pilot"] == name]
        if not rs:
            continue
        label = f"{name}: {setting_note(name)}"
        steps = [r["step"] for r in rs]
        for ax, key in zip(axes, ("fvd", "class_accuracy", "identity")):
            if key == "fvd":
                vals = [r["fvd"] for r in rs]
                ivs = [r["fvd_interval"] for r in rs]
            else:
                vals = [r[key].get("value") if r[key] else None for r in rs]
                ivs = [r[key].get("interval") if r[key] else None for r in rs]
            pts = [(s, v, iv) for s, v, iv in zip(steps, vals, ivs) if v is not None]
            if not pts:
                continue
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            err = [[y - (iv[0] if iv else y) for _, y, iv in pts], [(iv[1] if iv else y) - y for _, y, iv in pts]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
    real = next((r for r in rows if r["class_accuracy"]), None)
    axes[0].set(title="FVD (64 samples vs 256 real test clips)", xlabel="training step", ylabel="FVD (lower is better)")
    axes[1].set(title="digit class accuracy (share of frames)", xlabel="training step", ylim=(0, 1.02))
    axes[2].set(title="identity over frames (share of frames)", xlabel="training step", ylim=(0, 1.02))
    if real is not None:
        for ax, key in ((axes[1], "class_accuracy"), (axes[2], "identity")):
            rv = real[key].get("real_value")
            if rv is not None:
                ax.axhline(rv, color="grey", ls="--", lw=1, label=f"real test clips: {rv:.3f}")
    for ax in axes:
        ax.grid(alpha=0.3)
    # one legend below the panels (the pilots' notes are long); the real clips' lines are labelled in their panels
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=8, ncol=1, frameon=False)
    for ax in axes[1:]:
        lines = [(h, lab) for h, lab in zip(*ax.get_legend_handles_labels()) if lab.startswith("real")]
        if lines:
            ax.legend(*zip(*lines), fontsize=7, loc="upper left")
    fig.suptitle("Learning-curve pilots (config/pilots/): Moving MNIST, 1 digit, 10x32x32, main arm (4 images per "
                 "video), unguided, 32 ancestral steps, 64 samples; each pilot's own schedule (legend)", fontsize=9)
    fig.tight_layout(rect=(0, 0.06 * len(names), 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pilots", nargs="+", help="names of config/pilots/<name>.yaml")
    ap.add_argument("--results", default="results", help="folder holding results/pilot_<name>/")
    ap.add_argument("--out", required=True, help="PNG of the curves")
    ap.add_argument("--md", default=None, help="also write the table here")
    ap.add_argument("--points", default=None, type=Path,
                    help="CSV of recorded points: written for the pilots read from results/, read for the others")
    args = ap.parse_args(argv)
    recorded, recorded_rates = read_points(args.points) if args.points and args.points.is_file() else ([], {})
    rows, rates, measured = [], {}, []
    for name in args.pilots:
        results = Path(args.results) / f"pilot_{name}"
        got = curve(results, name)
        if got:
            measured += got
            cfg = yaml.safe_load((REPO / "config" / "pilots" / f"{name}.yaml").read_text())
            rates[name] = seconds_per_step(results, f"img{cfg['data']['images_per_video']}")
        else:
            got = [r for r in recorded if r["pilot"] == name]
            rates[name] = recorded_rates.get(name)
        if not got:
            where = f"{results}/metrics" + (f" or {args.points}" if args.points else "")
            print(f"pilot_curves: no metrics of pilot {name} under {where} (run the pilot first)", file=sys.stderr)
            return 2
        rows += got
    if args.points and measured:
        write_points(args.points, measured, rates)
    plot(rows, args.pilots, Path(args.out))
    text = table(rows, rates)
    print(text, end="")
    if args.md:
        Path(args.md).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
