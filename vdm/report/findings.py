"""The paper's findings, tested on one table of ours: reproduced, not reproduced, or inconclusive.

Each ablation table states the finding the paper reports for it and what our rows say about it. The
rule is the same for every finding: two arms are *separated* when their 95 % intervals do not overlap
(lower FVD is better). A finding is

* **reproduced** when the arm the paper finds better is better than the other arm, separated;
* **not reproduced** when the other arm is better, separated (the opposite of the paper's ordering);
* **inconclusive** when the intervals overlap (the N of the table cannot tell the arms apart).

The findings (FVD, paper §4):

* Table 4 (joint training): more independent image frames per video give a lower FVD (0 vs 8 images:
  202.3 vs 57.8 FVD_train). Tested: the most vs the fewest images per video.
* Table 5 (classifier-free guidance): FVD first improves, then degrades as the guidance weight grows
  (frameskip 1: 41.7 / 50.2 / 163.7 at 1 / 2 / 5). Tested: the largest weight against the best of the
  smaller ones — the largest weight has the worse FVD.
* Table 6 (conditioning): reconstruction guidance gives a lower FVD than replacement (136.2 vs 451.5 at
  guidance 2). Tested: every reconstruction arm against the replacement arm with the same other settings.

The ``training`` table gets the learning criterion instead (not a paper finding): the final EMA
model's FVD against the same network's at step 0, as a ratio, with the separation rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


@dataclass(frozen=True)
class Finding:
    verdict: str  # REPRODUCED / NOT_REPRODUCED / INCONCLUSIVE, or "" for the learning criterion
    text: str  # one paragraph of Markdown


def _arm(row: Mapping[str, Any]) -> str:
    lo, hi = row["interval_low"], row["interval_high"]
    iv = "" if math.isnan(lo) else f" [{lo:.1f}, {hi:.1f}]"
    return f"{row['value']:.1f}{iv}"


def _has_interval(row: Mapping[str, Any]) -> bool:
    return not (math.isnan(row["interval_low"]) or math.isnan(row["interval_high"]))


def compare(better: Mapping[str, Any], worse: Mapping[str, Any]) -> str:
    """The verdict on "``better`` has the lower FVD" from two rows (value, interval_low/high)."""
    if not (_has_interval(better) and _has_interval(worse)):
        return INCONCLUSIVE
    if better["interval_high"] < worse["interval_low"]:
        return REPRODUCED
    if worse["interval_high"] < better["interval_low"]:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _n(rows: Sequence[Mapping[str, Any]]) -> str:
    gen = sorted({r["n_generated"] for r in rows if r.get("n_generated") is not None})
    real = sorted({r["n_real"] for r in rows if r.get("n_real") is not None})
    return f"N = {'/'.join(map(str, gen)) or '?'} generated vs {'/'.join(map(str, real)) or '?'} real clips"


def joint_training(rows: Sequence[Mapping[str, Any]]) -> Finding | None:
    arms = sorted((r for r in rows if "images_per_video" in r), key=lambda r: r["images_per_video"])
    if len(arms) < 2 or arms[0]["images_per_video"] == arms[-1]["images_per_video"]:
        return None
    few, many = arms[0], arms[-1]
    verdict = compare(better=many, worse=few)
    return Finding(verdict, (
        f"Paper (Table 4): more image frames per video give a lower FVD. Ours: "
        f"{many['images_per_video']} images per video {_arm(many)} vs {few['images_per_video']} "
        f"{_arm(few)} ({_n([few, many])}): **{verdict}** at this scale."
    ))


def guidance(rows: Sequence[Mapping[str, Any]]) -> Finding | None:
    arms = sorted((r for r in rows if "guidance_weight" in r), key=lambda r: r["guidance_weight"])
    if len(arms) < 2:
        return None
    largest = arms[-1]
    best_smaller = min(arms[:-1], key=lambda r: r["value"])
    verdict = compare(better=best_smaller, worse=largest)
    order = ", ".join(f"w = {r['guidance_weight']:g}: {_arm(r)}" for r in arms)
    return Finding(verdict, (
        f"Paper (Table 5): FVD first improves, then degrades as the guidance weight grows — the largest "
        f"weight has a worse FVD than a smaller one. Ours: {order}; the largest weight (w = "
        f"{largest['guidance_weight']:g}) against the best smaller one (w = {best_smaller['guidance_weight']:g}) "
        f"({_n(arms)}): **{verdict}** at this scale."
    ))


_CONDITIONING_OTHER_KEYS = ("sampler", "steps", "guidance_weight", "images_per_video", "run")


def conditioning(rows: Sequence[Mapping[str, Any]]) -> Finding | None:
    pairs = []
    for recon in (r for r in rows if r.get("cond_method") == "reconstruction"):
        others = [
            r for r in rows if r.get("cond_method") == "replacement"
            and all(r.get(k) == recon.get(k) for k in _CONDITIONING_OTHER_KEYS)
        ]
        if others:
            pairs.append((recon, others[0], compare(better=recon, worse=others[0])))
    if not pairs:
        return None
    verdicts = {v for _, _, v in pairs}
    (verdict,) = verdicts if len(verdicts) == 1 else (INCONCLUSIVE,)
    parts = "; ".join(
        f"reconstruction (w_r = {rc.get('w_r', '?')}) {_arm(rc)} vs replacement {_arm(rp)}"
        + (f": {v}" if len(pairs) > 1 else "")
        for rc, rp, v in pairs
    )
    mixed = " (the w_r arms disagree)" if len(verdicts) > 1 else ""
    return Finding(verdict, (
        f"Paper (Table 6): reconstruction guidance gives a lower FVD than replacement. Ours: {parts} "
        f"({_n([r for p in pairs for r in p[:2]])}): **{verdict}**{mixed} at this scale."
    ))


def training(rows: Sequence[Mapping[str, Any]]) -> Finding | None:
    arms = sorted((r for r in rows if "step" in r), key=lambda r: r["step"])
    if len(arms) < 2 or arms[0]["step"] != 0:
        return None
    first, last = arms[0], arms[-1]
    ratio = last["value"] / first["value"] if first["value"] else math.nan
    separated = compare(better=last, worse=first) == REPRODUCED
    along = ", ".join(f"step {r['step']}: {r['value']:.1f}" for r in arms)
    return Finding("", (
        f"Learning: FVD {along}. Step {last['step']} {_arm(last)} vs step 0 {_arm(first)}: "
        f"ratio {ratio:.3f} ({'≤' if ratio <= 0.1 else '>'} 1/10), intervals "
        f"{'separated' if separated else 'not separated'} ({_n(arms)})."
    ))


FINDINGS = {
    "joint_training": joint_training,
    "guidance": guidance,
    "conditioning": conditioning,
    "training": training,
}


def finding_of(table: str, rows: Sequence[Mapping[str, Any]]) -> Finding | None:
    """The finding a table tests, or None (no finding for this table, or too few arms)."""
    fn = FINDINGS.get(table)
    return fn(rows) if fn else None
