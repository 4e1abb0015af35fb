"""The learning-curve pilots (config/pilots/*.yaml) as a picture and a table: FVD and the digit metrics of the main
arm at each evaluated step, per pilot, with the settings that differ in the legend.

    python scripts/pilot_curves.py base min_snr lr2e-3 --out docs/pilot_curves.png [--md docs/pilot_curves.md]

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

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
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
    axes[2].legend(fontsize=7, loc="lower right")
    axes[0].legend(fontsize=7)
    fig.suptitle("Learning-curve pilots (config/pilots/): Moving MNIST, 1 digit, 10x32x32, main arm (4 images per "
                 "video), 750-step schedules, 32 ancestral steps", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pilots", nargs="+", help="names of config/pilots/<name>.yaml")
    ap.add_argument("--results", default="results", help="folder holding results/pilot_<name>/")
    ap.add_argument("--out", required=True, help="PNG of the curves")
    ap.add_argument("--md", default=None, help="also write the table here")
    args = ap.parse_args(argv)
    rows, rates = [], {}
    for name in args.pilots:
        results = Path(args.results) / f"pilot_{name}"
        got = curve(results, name)
        if not got:
            print(f"pilot_curves: no metrics under {results}/metrics (run the pilot first)", file=sys.stderr)
            return 2
        rows += got
        cfg = yaml.safe_load((REPO / "config" / "pilots" / f"{name}.yaml").read_text())
        rates[name] = seconds_per_step(results, f"img{cfg['data']['images_per_video']}")
    plot(rows, args.pilots, Path(args.out))
    text = table(rows, rates)
    print(text, end="")
    if args.md:
        Path(args.md).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
