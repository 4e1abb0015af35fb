"""One registry of the metrics: each a named entry of a detector, the real split it compares with, a score
function and the reason it is not computed for a given config and data.

The evaluation (:mod:`vdm.metrics.evaluate`) computes every entry whose :meth:`Metric.status` is ``""``,
records "not computed: <reason>" for one with a reason, and leaves out one that does not apply (None); the
workflow asks :func:`real_needs` which real-features files an evaluation reads and the features job asks
:func:`generated_detectors` which networks it runs. ``fvd`` is the metrics JSON's headline metric, every
other entry one of its ``also`` entries; their table titles and paper names are the metrics JSON contract's
(:data:`vdm.artifacts.metrics.METRIC_COLUMNS`). Adding a metric on an existing detector is one entry here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vdm.artifacts.samples import read_labels
from vdm.config import ExperimentConfig
from vdm.metrics import prediction, stats
from vdm.metrics.config import C3D_FILE, MEAN_FILE, PYTORCH_FID_FILE, EvalConfig
from vdm.sampling.config import CLIP_TASKS

Outputs = dict[str, np.ndarray]  # a detector's named outputs, [N, ...] each


@dataclass(frozen=True)
class Context:
    """What decides which metrics an evaluation computes: the config, the videos' length, whether the
    real clips are a user's ``--real`` npz (only the FVD's I3D then) rather than the protocol's clips, and
    the sample set's class labels (``cls`` [N] of the samples file, None without; the digit class accuracy)."""
    cfg: ExperimentConfig
    frames: int
    real_npz: bool = False
    labels: np.ndarray | None = field(default=None, compare=False)
    cond_frames: tuple[int, ...] = ()  # the frames of each video that were given (prediction, extension)
    # (lo, hi): the frames of each video the clip detectors see (an extension set's block, evaluate.extension_window);
    # ``frames`` is then hi - lo, the real clips' length. None: every frame.
    window: tuple[int, int] | None = None
    task: str = ""  # sample.task of the set ("" = not known: a context built without the samples file)
    draws_per_clip: int = 1  # sample.samples_per_clip: the set's other metrics read each clip's first draw

    @property
    def ev(self) -> EvalConfig:
        return self.cfg.evaluate

    def first_draws(self, rows: np.ndarray) -> np.ndarray:
        """The rows [N, ...] of each conditioning clip's first draw (every row when draws_per_clip is 1)."""
        return rows[::self.draws_per_clip]


def extension_window(mode: str, task: str, block: int, total: int) -> tuple[int, int] | None:
    """(lo, hi) of the frames of a set's ``total``-frame videos that the clip metrics compare with real clips: for an
    extension set with ``mode`` (evaluate.extension_window) "last" / "first", its last / first block of ``block``
    frames; None = the whole video (not an extension set, "whole", or one block only)."""
    if task != "extension" or mode == "whole" or block >= total:
        return None
    return (total - block, total) if mode == "last" else (0, block)


def set_context(cfg: ExperimentConfig, frames: int, samples: str | Path, meta: dict[str, Any], *,
                real_npz: bool = False) -> Context:
    """The context of the sample set ``samples`` of ``frames``-frame videos (``meta``: its entries): its class
    labels, given frames and the window its clip metrics see (:func:`extension_window`)."""
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    sample = settings.get("sample") or {}
    task = str(sample.get("task", ""))
    window = extension_window(cfg.evaluate.extension_window, task, int(settings.get("frames") or frames), frames)
    k = int(sample.get("samples_per_clip", 1)) if task in CLIP_TASKS else 1
    labels = read_labels(samples)
    ctx = Context(cfg, window[1] - window[0] if window else frames, real_npz, cond_frames=tuple(
        int(i) for i in meta.get("cond_frame_indices") or ()), window=window, task=task, draws_per_clip=k)
    return dataclasses.replace(ctx, labels=ctx.first_draws(labels) if labels is not None else None)


Score = Callable[[Outputs, "Outputs | None", Context, bool], dict[str, Any]]  # (generated, real, ctx, progress)


@dataclass(frozen=True)
class Metric:
    name: str
    detector: str  # a key of vdm.metrics.detectors.DETECTORS
    real_split: Callable[[EvalConfig], str] | None  # the split of its real clips; None: the generated set only
    score: Score
    # "" = computed; a reason = "not computed: <reason>"; None = does not apply here (left out of the JSON)
    status: Callable[[Context], str | None] = lambda ctx: ""
    # A Fréchet distance of one output to the real clips' (output name, covariance ddof): compared between arms
    # with a paired interval (vdm.metrics.compare); None: not a distance of that form
    paired: tuple[str, int] | None = None


# --------------------------------------------------------------------------------------------
# Reasons
# --------------------------------------------------------------------------------------------
def _frame_reason(ctx: Context) -> str:
    if not ctx.ev.frame_fid:
        return "evaluate.frame_fid is off"
    if ctx.real_npz:
        return "real clips given as --real npz (frame FID uses each split's protocol clips)"
    return ""


def _fid_status(split: str) -> Callable[[Context], str | None]:
    return lambda ctx: _frame_reason(ctx) if split in ctx.ev.frame_fid_splits else None


def _is_status(ctx: Context) -> str:
    return _frame_reason(ctx) or ("" if ctx.ev.is_weights else
                                  f"needs pytorch-fid's {PYTORCH_FID_FILE} (evaluate.is_weights): the Inception "
                                  "logits layer")


def _c3d_status(ctx: Context) -> str | None:
    if ctx.ev.c3d_weights:
        return ""
    if ctx.cfg.data.source == "ucf101":
        return (f"needs TGANv2's C3D UCF-101 files {C3D_FILE} and {MEAN_FILE} (evaluate.c3d_weights, "
                "evaluate.c3d_mean, each with its sha256): no package ships them")
    return None


def _is_i3d_status(ctx: Context) -> str | None:
    if ctx.cfg.data.source != "kinetics600":
        return None  # paper Table 3 (Kinetics-600) only
    return "" if ctx.ev.features == "logits" else f"needs I3D logits (evaluate.features is {ctx.ev.features!r})"


def _digit_status(ctx: Context) -> str | None:
    if ctx.cfg.data.source != "moving_mnist":
        return None  # the classifier knows Moving MNIST digits only
    return "" if ctx.ev.digit_classifier else ("needs the digit classifier (evaluate.digit_classifier: "
                                               "`vdm digits` makes it; the workflow sets it)")


def _one_digit_status(ctx: Context) -> str | None:
    why = _digit_status(ctx)
    if why or why is None:
        return why
    n = ctx.cfg.data.mnist_num_digits
    return "" if n == 1 else f"needs one digit per video (data.mnist_num_digits is {n}; the classifier reads one)"


def _class_accuracy_status(ctx: Context) -> str | None:
    why = _one_digit_status(ctx)
    if why or why is None:
        return why
    return "" if ctx.labels is not None else "the sample set has no class labels (no cls in the samples file)"


def _identity_kept_status(ctx: Context) -> str | None:
    why = _one_digit_status(ctx)
    if why is None or not ctx.cond_frames:
        return None  # for sets with given frames only
    if why:
        return why
    return "" if len(ctx.cond_frames) < ctx.frames else "every frame is given: none generated"


def _prediction_status(best: bool) -> Callable[[Context], str | None]:
    def status(ctx: Context) -> str | None:
        if ctx.task != "prediction" or (best and ctx.draws_per_clip == 1):
            return None  # prediction sets only; best-of-k with k > 1 draws per clip only
        return "" if len(ctx.cond_frames) < ctx.frames else "every frame is given: none predicted"
    return status


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------
def _fvd(gen: Outputs, real: Outputs | None, ctx: Context, progress: bool) -> dict[str, Any]:
    return stats.compute_fvd(real["features"], gen["features"], ctx.ev, progress=progress)


def _fvd2048_16f(gen: Outputs, real: Outputs | None, ctx: Context, progress: bool) -> dict[str, Any]:
    return stats.fvd2048_16f(real["features"], gen["features"], ctx.frames, ctx.ev.features, ctx.ev,
                             progress=progress)


def _frame_fid(kind: str, split: str) -> Score:
    frames = "all, averaged" if kind == "avg" else "first"
    return lambda gen, real, ctx, progress: stats.fid_entry(real[kind], gen[kind], ctx.ev, split=split, frames=frames)


def _inception_score(kind: str, splits: int) -> Score:
    def score(gen: Outputs, real: Outputs | None, ctx: Context, progress: bool) -> dict[str, Any]:
        probs = gen[f"probs_{kind}"]
        return stats.is_entry(probs, splits, f"{len(probs)} videos < {splits} splits")
    return score


def _c3d_fid(gen: Outputs, real: Outputs | None, ctx: Context, progress: bool) -> dict[str, Any]:
    return stats.fid_entry(real["fc7"], gen["fc7"], ctx.ev, split=ctx.ev.c3d_fid_split)


def _c3d_is(gen: Outputs, real: Outputs | None, ctx: Context, progress: bool) -> dict[str, Any]:
    splits, probs = ctx.ev.c3d_is_splits, gen["probs"]
    return stats.is_entry(probs, splits, f"{len(probs)} videos < {splits} parts (evaluate.c3d_is_splits)")


# Kinetics-600 IS of paper Table 3: the softmax of the (time-averaged) I3D logits of each video, one split:
# the whole set (the paper does not say how many; its 50,000 samples give one score).
IS_I3D_SPLITS = 1


def _is_i3d(gen: Outputs, real: Outputs | None, ctx: Context, progress: bool) -> dict[str, Any]:
    logits = gen["features"].astype(np.float64)  # [N, 400]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)  # [N, 400]
    return stats.is_entry(probs, IS_I3D_SPLITS, f"{len(probs)} videos < {IS_I3D_SPLITS} splits")


def _digit_share(kind: str) -> Score:
    """Class accuracy ("class") or identity ("identity") of the generated set, the real clips' beside it."""
    def hits(out: Outputs, labels: np.ndarray | None) -> np.ndarray | None:
        return share_hits(f"digit_{'identity' if kind == 'identity' else 'class_accuracy'}", out, labels)

    def score(gen: Outputs, real: Outputs | None, ctx: Context, progress: bool) -> dict[str, Any]:
        if len(ctx.labels if ctx.labels is not None else gen["logits"]) != len(gen["logits"]):
            raise ValueError(f"{len(ctx.labels)} class labels for {len(gen['logits'])} videos")
        entry = {"computed": True, **stats.share_entry(hits(gen, ctx.labels), ctx.ev.interval_level)}
        entry["n_generated"], entry["split"] = entry["n_videos"], ctx.ev.split
        real_hits = hits(real, real.get("cls")) if real is not None else None
        if real_hits is None:
            return {**entry, "real_value": None, "n_real": 0, "real_note": "the real clips carry no class labels"}
        r = stats.share_entry(real_hits, ctx.ev.interval_level)
        return {**entry, "real_value": r["value"], "real_interval": r["interval"], "n_real": r["n_videos"]}
    return score


def _identity_kept(gen: Outputs, real: Outputs | None, ctx: Context, progress: bool) -> dict[str, Any]:
    """Share of generated frames showing the most frequent digit of the video's given frames; the real clips'
    value: the same for their frames at those positions."""
    level, given = ctx.ev.interval_level, list(ctx.cond_frames)
    kept = share_hits("digit_identity_kept", gen, given=given)  # [N, T - len(given)]
    entry = {"computed": True, **stats.share_entry(kept, level), "given_frames": given, "split": ctx.ev.split,
             "per_frame": [round(float(v), 6) for v in kept.mean(0)]}  # along the generated frames (blocks)
    entry["n_generated"] = entry["n_videos"]
    r = stats.share_entry(share_hits("digit_identity_kept", real, given=given), level)
    return {**entry, "real_value": r["value"], "real_interval": r["interval"], "n_real": r["n_videos"]}


def _digit_fd(gen: Outputs, real: Outputs | None, ctx: Context, progress: bool) -> dict[str, Any]:
    return stats.fid_entry(real["features"], gen["features"], ctx.ev, split=ctx.ev.split, frames="all, averaged")


def _pixels(kind: str, best: bool) -> Score:
    """PSNR / SSIM of the predicted frames against the real continuation: mean over every draw, or best of k."""
    entry = prediction.best_of_k_entry if best else prediction.pixel_entry
    return lambda gen, real, ctx, progress: entry(gen[kind], ctx.cond_frames, ctx.draws_per_clip,
                                                  ctx.ev.interval_level)


def _eval_split(ev: EvalConfig) -> str:
    return ev.split


def _c3d_split(ev: EvalConfig) -> str:
    return ev.c3d_fid_split


def _fixed(split: str) -> Callable[[EvalConfig], str]:
    return lambda ev: split


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("fvd", "i3d", _eval_split, _fvd, paired=("features", 1)),
    Metric("fvd2048_16f", "i3d", _eval_split, _fvd2048_16f,
           lambda ctx: stats.fvd2048_16f_unavailable(ctx.frames, ctx.ev.features)),
    Metric("is_i3d", "i3d", None, _is_i3d, _is_i3d_status),
    *(Metric(f"fid_{kind}_{split}", "inception", _fixed(split), _frame_fid(kind, split), _fid_status(split),
             paired=(kind, 1))
      for split in ("train", "test") for kind in ("avg", "first")),
    *(Metric(f"is_{kind}_{splits}", "inception_logits", None, _inception_score(kind, splits), _is_status)
      for kind in ("avg", "first") for splits in (1, 10)),
    Metric("c3d_fid", "c3d", _c3d_split, _c3d_fid, _c3d_status, paired=("fc7", 1)),
    Metric("c3d_is", "c3d", None, _c3d_is, _c3d_status),
    Metric("digit_class_accuracy", "digits", _eval_split, _digit_share("class"), _class_accuracy_status),
    Metric("digit_identity", "digits", _eval_split, _digit_share("identity"), _one_digit_status),
    Metric("digit_identity_kept", "digits", _eval_split, _identity_kept, _identity_kept_status),
    Metric("digit_fd", "digits", _eval_split, _digit_fd, _digit_status, paired=("features", 1)),
    *(Metric(f"{kind}{'_best' if best else ''}", "prediction", None, _pixels(kind, best), _prediction_status(best))
      for kind in ("psnr", "ssim") for best in (False, True)),
)}
# Shares of frames (higher is better), compared between paired arms by their per-video shares (vdm compare).
SHARES = ("digit_class_accuracy", "digit_identity", "digit_identity_kept")


def share_hits(name: str, out: Outputs, labels: np.ndarray | None = None, given: Sequence[int] = ()
               ) -> np.ndarray | None:
    """bool [N, T'] of the share metric ``name`` (:data:`SHARES`) for the digit outputs ``out`` of a set: its
    class ``labels`` [N] (class accuracy; None without: None) or its ``given`` frames (identity kept)."""
    if name == "digit_class_accuracy":
        return None if labels is None else stats.class_hits(out["logits"], labels)
    if name == "digit_identity":
        return stats.identity_hits(out["logits"])
    if name == "digit_identity_kept":
        return stats.kept_hits(out["logits"], list(given))
    raise KeyError(f"{name!r} is not a share metric (known: {', '.join(SHARES)})")


# The detector whose outputs are read for every draw of a set (sample.samples_per_clip): the others' first draws.
ALL_DRAWS = ("prediction",)
HEADLINE = "fvd"  # the metrics JSON's own metric; every other entry is one of its "also"


def statuses(ctx: Context) -> dict[str, str]:
    """{name: "" (computed) or the reason it is not} of every metric that applies here."""
    out = {}
    for name, m in METRICS.items():
        s = m.status(ctx)
        if s is not None:
            out[name] = s
    return out


def generated_detectors(ctx: Context) -> list[str]:
    """The detectors whose outputs of the generated videos the computed metrics read, in registry order."""
    return list(dict.fromkeys(METRICS[n].detector for n, s in statuses(ctx).items() if not s))


def real_needs(ctx: Context) -> list[tuple[str, str]]:
    """(detector, split) of every real-features file the computed metrics read, in registry order."""
    out = []
    for name, s in statuses(ctx).items():
        m = METRICS[name]
        if not s and m.real_split is not None:
            out.append((m.detector, m.real_split(ctx.ev)))
    return list(dict.fromkeys(out))


def real_detectors() -> list[str]:
    """The detectors some metric compares with real clips: each has a real-features job in the workflow."""
    return list(dict.fromkeys(m.detector for m in METRICS.values() if m.real_split is not None))
