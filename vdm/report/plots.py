"""Plots of the ablation tables and GIF grids of samples.

- ``guidance``: metric vs classifier-free guidance weight w (paper Table 5);
- ``joint_training``: metric vs images per video K (paper Table 4);
- ``conditioning``: reconstruction guidance vs replacement, grouped by guidance weight (paper Table 6);
- ``training``: metric vs training step of the main run (its EMA weights at ablation.checkpoints);
- ``sampler`` / ``main``: one bar per setting.
Our values have their interval as error bars; the paper's values, where a row has one, are drawn on
a second y axis (a different data set: the scale is not comparable, the trend is).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vdm.artifacts.samples import read_samples
from vdm.report.registry import TABLES
from vdm.utils.io import atomic_path

# line plots: the table's axis (row key, label) from the registry; the other tables get one bar per row
LINE_AXES = {name: t.axis for name, t in TABLES.items() if t.axis is not None}
LOG_SCALE_SPAN = 20.0  # a line plot whose values span more than this factor gets a log y axis


def _draw_intervals(ax: Any, xs: np.ndarray, rows: Sequence[Mapping[str, Any]], color: str = "black") -> None:
    """Each row's interval [low, high] as a capped vertical bar at its x (drawn from the interval itself:
    an interval need not be centred on, or even contain, the value)."""
    lo = np.array([r["interval_low"] for r in rows], dtype=float)
    hi = np.array([r["interval_high"] for r in rows], dtype=float)
    ok = ~(np.isnan(lo) | np.isnan(hi))
    if ok.any():
        ax.errorbar(np.asarray(xs, dtype=float)[ok], (lo[ok] + hi[ok]) / 2, yerr=(hi[ok] - lo[ok]) / 2, fmt="none",
                    capsize=3, ecolor=color, elinewidth=1)


def _label(r: Mapping[str, Any]) -> str:
    if r.get("cond_method"):
        m = "recon" if r["cond_method"] == "reconstruction" else "replace"
        return f"{m} w_r={r['w_r']:g}" if r.get("w_r") is not None and m == "recon" else m
    if r.get("sampler"):
        return f"{r['sampler']} {r['steps']}"
    return r["setting"]


def plot_table(table: str, rows: Sequence[Mapping[str, Any]], out: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = rows[0]["metric"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    values = np.array([r["value"] for r in rows], dtype=float)
    paper = np.array([r.get("paper_value", math.nan) for r in rows], dtype=float)
    if table in LINE_AXES:
        key, xlabel = LINE_AXES[table]
        x = np.array([r[key] for r in rows], dtype=float)
        order = np.argsort(x)
        ax.plot(x[order], values[order], marker="o", label="ours")
        _draw_intervals(ax, x[order], [rows[i] for i in order])
        ax.set_xlabel(xlabel)
        ax.set_xticks(x[order])
        finite = values[np.isfinite(values) & (values > 0)]
        if len(finite) > 1 and finite.max() / finite.min() > LOG_SCALE_SPAN:
            ax.set_yscale("log")  # e.g. FVD along training: 10^4 at step 0, 10^2 later
        xs = x
    elif table == "conditioning":
        weights = sorted({r["guidance_weight"] for r in rows})
        labels = sorted({_label(r) for r in rows})
        width = 0.8 / len(labels)
        # one bar per row: grouped by guidance weight, one colour per method (and w_r)
        xs = np.array([weights.index(r["guidance_weight"]) + (labels.index(_label(r)) - (len(labels) - 1) / 2) * width
                       for r in rows], dtype=float)
        for lab in labels:
            sel = [i for i, r in enumerate(rows) if _label(r) == lab]
            ax.bar(xs[sel], values[sel], width, label=lab)
            _draw_intervals(ax, xs[sel], [rows[i] for i in sel])
        ax.set_xticks(range(len(weights)), [f"w={w:g}" for w in weights])
        ax.set_xlabel("classifier-free guidance weight")
    else:
        xs = np.arange(len(rows), dtype=float)
        ax.bar(xs, values, 0.6, label="ours")
        _draw_intervals(ax, xs, rows)
        ax.set_xticks(xs, [_label(r) for r in rows])
    ax.set_ylabel(f"{metric.upper()} (ours, ↓ better)" if metric.upper() == "FVD" else metric)
    if not np.isnan(paper).all():
        ax2 = ax.twinx()
        ok = ~np.isnan(paper)
        order = np.argsort(xs[ok])
        style = "s--" if table in LINE_AXES else "s"  # bars: one marker per bar, no line
        ax2.plot(xs[ok][order], paper[ok][order], style, color="gray", label="paper (right axis)")
        lo, hi = np.nanmin(paper), np.nanmax(paper)
        ax2.set_ylim(lo - 0.1 * (hi - lo + 1), hi + 0.35 * (hi - lo + 1))  # headroom for the legends
        ax2.set_ylabel(f"paper {rows[0].get('paper_metric', '')}", color="gray")
        ax2.tick_params(axis="y", colors="gray")
        ax2.legend(loc="upper right", fontsize=8)
    top = np.nanmax(np.concatenate([values, [r["interval_high"] for r in rows]]).astype(float))
    ax.set_ylim(top=top * 1.3 if top > 0 else None)  # headroom for the legends
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(textwrap.fill(title or table, 60), fontsize=9)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_loss(csv_paths: Sequence[str | Path], labels: Sequence[str], out: str | Path, title: str = "") -> None:
    """Training loss (each ``train_log.csv`` row: the mean over log_every steps) against the step, one
    line per run, log-scaled loss axis."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    for path, label in zip(csv_paths, labels):
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit()]
        if not rows:
            raise ValueError(f"{path}: no training log rows")
        ax.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (mean per logged interval)")
    ax.legend(fontsize=8)
    ax.set_title(textwrap.fill(title or "training loss", 60), fontsize=9)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# GIF grids
# --------------------------------------------------------------------------------------------
def load_videos(path: str | Path, n: int) -> np.ndarray:
    """First ``n`` videos of a samples .npz: uint8 [n, T, H, W, C]."""
    return read_samples(path, limit=n)[0]


def grid_frames(blocks: Sequence[np.ndarray], labels: Sequence[str], scale: int = 2, pad: int = 2) -> list:
    """One row per sample set (its label on the left), its videos side by side; a PIL frame per time step.
    Shorter videos hold their last frame."""
    from PIL import Image, ImageDraw

    T = max(b.shape[1] for b in blocks)
    H, W = blocks[0].shape[2] * scale, blocks[0].shape[3] * scale
    n = max(b.shape[0] for b in blocks)
    label_w = 8 + 7 * max(len(s) for s in labels)
    width = label_w + n * (W + pad) + pad
    height = len(blocks) * (H + pad) + pad
    frames = []
    for t in range(T):
        canvas = Image.new("RGB", (width, height), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        for i, (b, lab) in enumerate(zip(blocks, labels)):
            y = pad + i * (H + pad)
            draw.text((4, y + H // 2 - 5), lab, fill=(0, 0, 0))
            for j in range(b.shape[0]):
                f = b[j, min(t, b.shape[1] - 1)]  # [H, W, C]
                if f.shape[-1] == 1:
                    f = np.repeat(f, 3, axis=-1)
                img = Image.fromarray(f).resize((W, H), Image.NEAREST)
                canvas.paste(img, (label_w + pad + j * (W + pad), y))
        frames.append(canvas)
    return frames


def gif_grid(npz_paths: Sequence[str | Path], labels: Sequence[str], out: str | Path, n: int = 8,
             fps: float = 8.0) -> None:
    blocks = [load_videos(p, n) for p in npz_paths]
    frames = grid_frames(blocks, labels)
    with atomic_path(out) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=int(1000 / fps), loop=0)
