"""The paper's findings, tested on one table of ours: reproduced, contradicted, or inconclusive.

Each ablation table states the finding the paper reports for it and tests it on a *paired difference* of two
of its arms, fixed by their settings (never by their values): Δ = metric(B) − metric(A) of the arms' sample
sets, drawn with the same seeds, with its paired interval (``vdm compare``, :mod:`vdm.metrics.compare`: the same
jackknife groups deleted from both arms, the real set fixed). For FVD and every further Fréchet distance both
arms have (frame FIDs, ...), and for the digit metrics' shares of frames (class accuracy, identity, identity kept;
higher is better, so the paper's "lower FVD" reads as a higher share), a finding is

* **reproduced** when the Δ interval excludes 0 on the side the paper reports (lower is better);
* **contradicted** when it excludes 0 on the other side;
* **inconclusive** when it holds 0 — stated with the smallest |Δ| this N detects with 80 % power, so a null
  result says how large an effect the run could have seen.

The verdict of a table is FVD's (the paper's metric); the others are listed beside it. The findings (paper §4):

* Table 4 (joint training): more independent image frames per video give a lower FVD (0 vs 8 images:
  202.3 vs 57.8 FVD_train). Tested: the most vs the fewest images per video, Δ < 0.
* Table 5 (classifier-free guidance): FVD first improves, then degrades as the guidance weight grows
  (frameskip 1: 41.7 / 50.2 / 163.7 at 1 / 2 / 5). Tested: the largest weight against the next smaller
  one, Δ > 0 (the top of the range degrades).
* Table 6 (conditioning): reconstruction guidance gives a lower FVD than replacement (136.2 vs 451.5 at
  guidance 2). Tested: every reconstruction arm against the replacement arm with the same other settings, Δ < 0.

The ``training`` table gets the learning criterion instead (not a paper finding): the final EMA model against
the same network at step 0, Δ < 0, with the ratio of the two FVDs.

:func:`compare` is the former rule ("separated when the 95 % intervals do not overlap"), kept for the
simulation that shows it cannot see gaps of ~5 SD of the difference (tests/test_resampling.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from vdm.artifacts.metrics import ALSO_TITLES

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
NOT_REPRODUCED = "not reproduced"  # the former rule's word for the opposite order (compare)
Comparisons = Mapping[str, Any] | None  # a `vdm compare` JSON: {"pairs": [{"a", "b", "n", "metrics"}]}


@dataclass(frozen=True)
class Finding:
    verdict: str  # REPRODUCED / CONTRADICTED / INCONCLUSIVE, or "" for the learning criterion
    text: str  # one paragraph of Markdown


def _arm(row: Mapping[str, Any]) -> str:
    lo, hi = row["interval_low"], row["interval_high"]
    iv = "" if math.isnan(lo) else f" [{lo:.1f}, {hi:.1f}]"
    return f"{row['value']:.1f}{iv}"


def _has_interval(row: Mapping[str, Any]) -> bool:
    return not (math.isnan(row["interval_low"]) or math.isnan(row["interval_high"]))


def compare(better: Mapping[str, Any], worse: Mapping[str, Any]) -> str:
    """The former rule on "``better`` has the lower FVD": separated when the intervals do not overlap."""
    if not (_has_interval(better) and _has_interval(worse)):
        return INCONCLUSIVE
    if better["interval_high"] < worse["interval_low"]:
        return REPRODUCED
    if worse["interval_high"] < better["interval_low"]:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def delta_verdict(low: float, high: float, expected_sign: int) -> str:
    """The verdict of a Δ interval on a finding that expects Δ of sign ``expected_sign`` (+1 / -1)."""
    if low > 0.0:
        return REPRODUCED if expected_sign > 0 else CONTRADICTED
    if high < 0.0:
        return REPRODUCED if expected_sign < 0 else CONTRADICTED
    return INCONCLUSIVE


def _key(row: Mapping[str, Any]) -> tuple[str, str]:
    return (row["run"], row["setting"])


def deltas(comparisons: Comparisons, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """{metric: Δ dict (value, low, high, min_detectable, n_generated)} of metric(b) − metric(a), or None when
    the comparisons hold no such pair (a pair stored the other way round is negated)."""
    for pair in (comparisons or {}).get("pairs", ()):
        ka, kb = (pair["a"]["run"], pair["a"]["setting"]), (pair["b"]["run"], pair["b"]["setting"])
        if (ka, kb) == (_key(a), _key(b)):
            return dict(pair["metrics"])
        if (ka, kb) == (_key(b), _key(a)):
            return {name: {**d, "value": -d["value"], "low": -d["high"], "high": -d["low"]}
                    for name, d in pair["metrics"].items()}
    return None


def _title(name: str) -> str:
    return "FVD" if name == "fvd" else ALSO_TITLES.get(name, name)


def _delta_text(found: dict[str, dict[str, Any]], expected_sign: int) -> str:
    """'Δ FVD = -12.3 [-20.1, -4.5] (smallest detectable 6.2): reproduced; Δ FID-avg vs test = ...'."""
    parts = []
    for name in sorted(found, key=lambda n: (n != "fvd", bool(found[n].get("higher_is_better")), n)):
        d = found[name]
        # a share of frames (the digit metrics) is better higher: the paper's "lower FVD" is a higher share
        sign = -expected_sign if d.get("higher_is_better") else expected_sign
        f = ".3f" if d.get("higher_is_better") else ".2f"
        v = delta_verdict(d["low"], d["high"], sign)
        parts.append(f"Δ {_title(name)} = {d['value']:{f}} [{d['low']:{f}}, {d['high']:{f}}] (smallest detectable "
                     f"±{d['min_detectable']:{f}}): {v}{_n_needed(d) if v == INCONCLUSIVE else ''}")
    return "; ".join(parts)


def _n_needed(d: Mapping[str, Any]) -> str:
    """' (about N per arm would detect a Δ of this size)': the standard error falls as 1/sqrt(N) at a fixed real
    set, so a Δ of the observed size reaches the 80 % power threshold at N (min_detectable / |Δ|)^2."""
    n, mdd, value = d.get("n_generated"), d.get("min_detectable"), abs(float(d.get("value", 0.0)))
    if not n or not mdd or value == 0.0 or mdd <= value:
        return ""
    return f" (about {math.ceil(n * (mdd / value) ** 2):,} samples per arm would detect a Δ of this size)"


def _paired(comparisons: Comparisons, a: Mapping[str, Any], b: Mapping[str, Any], expected_sign: int
            ) -> tuple[str, str]:
    """(FVD's verdict, the text of every metric's Δ) of the pair (a, b), or inconclusive with the reason."""
    found = deltas(comparisons, a, b)
    if not found or "fvd" not in found:
        return INCONCLUSIVE, "no paired comparison of these arms (the table was built without `vdm compare`)"
    d = found["fvd"]
    return delta_verdict(d["low"], d["high"], expected_sign), _delta_text(found, expected_sign)


def _n(rows: Sequence[Mapping[str, Any]]) -> str:
    gen = sorted({r["n_generated"] for r in rows if r.get("n_generated") is not None})
    real = sorted({r["n_real"] for r in rows if r.get("n_real") is not None})
    return f"N = {'/'.join(map(str, gen)) or '?'} generated vs {'/'.join(map(str, real)) or '?'} real clips, paired"


def joint_training(rows: Sequence[Mapping[str, Any]], comparisons: Comparisons = None) -> Finding | None:
    arms = sorted((r for r in rows if "images_per_video" in r), key=lambda r: r["images_per_video"])
    if len(arms) < 2 or arms[0]["images_per_video"] == arms[-1]["images_per_video"]:
        return None
    few, many = arms[0], arms[-1]
    verdict, text = _paired(comparisons, few, many, -1)
    return Finding(verdict, (
        f"Paper (Table 4): more image frames per video give a lower FVD. Ours: "
        f"{many['images_per_video']} images per video {_arm(many)} vs {few['images_per_video']} "
        f"{_arm(few)}; {many['images_per_video']} − {few['images_per_video']} images: {text} "
        f"({_n([few, many])}): **{verdict}** at this scale."
    ))


def guidance(rows: Sequence[Mapping[str, Any]], comparisons: Comparisons = None) -> Finding | None:
    arms = sorted((r for r in rows if "guidance_weight" in r), key=lambda r: r["guidance_weight"])
    if len(arms) < 2:
        return None
    largest, below = arms[-1], arms[-2]
    verdict, text = _paired(comparisons, below, largest, +1)
    order = ", ".join(f"w = {r['guidance_weight']:g}: {_arm(r)}" for r in arms)
    return Finding(verdict, (
        f"Paper (Table 5): FVD first improves, then degrades as the guidance weight grows — the largest "
        f"weight has a worse FVD than a smaller one. Ours: {order}; the largest weight (w = "
        f"{largest['guidance_weight']:g}) − the next smaller one (w = {below['guidance_weight']:g}): {text} "
        f"({_n(arms)}): **{verdict}** at this scale."
    ))


_CONDITIONING_OTHER_KEYS = ("task", "sampler", "steps", "guidance_weight", "images_per_video", "run")


def conditioning(rows: Sequence[Mapping[str, Any]], comparisons: Comparisons = None) -> Finding | None:
    """Every reconstruction arm against the replacement arm of the same task and other settings. The verdict is
    the extension arms' when the table has them (the paper's Table 6 extends videos), else that of its one task;
    the other tasks' (e.g. prediction) are stated beside it, each with its own verdict."""
    pairs = []
    for recon in (r for r in rows if r.get("cond_method") == "reconstruction"):
        others = [
            r for r in rows if r.get("cond_method") == "replacement"
            and all(r.get(k) == recon.get(k) for k in _CONDITIONING_OTHER_KEYS)
        ]
        if others:
            pairs.append((recon, others[0], *_paired(comparisons, others[0], recon, -1)))
    if not pairs:
        return None
    tasks = list(dict.fromkeys(rc.get("task", "") for rc, _, _, _ in pairs))
    deciding = [p for p in pairs if p[0].get("task", "") == ("extension" if "extension" in tasks else tasks[0])]
    verdicts = {v for _, _, v, _ in deciding}
    (verdict,) = verdicts if len(verdicts) == 1 else (INCONCLUSIVE,)
    def part(rc: Mapping[str, Any], rp: Mapping[str, Any], v: str, text: str) -> str:
        task = rc.get("task", "")
        head, tail = (f"{task}: ", f" — {task} verdict: {v}") if len(tasks) > 1 else ("", "")
        return (f"{head}reconstruction (w_r = {rc.get('w_r', '?')}) {_arm(rc)} vs replacement {_arm(rp)}, "
                f"reconstruction − replacement: {text}{tail}")

    parts = "; ".join(part(*p) for p in pairs)
    mixed = " (the w_r arms disagree)" if len(verdicts) > 1 else ""
    which = f" (decided on the {deciding[0][0]['task']} arms)" if len(tasks) > 1 else ""
    return Finding(verdict, (
        f"Paper (Table 6): reconstruction guidance gives a lower FVD than replacement. Ours: {parts} "
        f"({_n([r for p in pairs for r in p[:2]])}): **{verdict}**{mixed}{which} at this scale."
    ))


def training(rows: Sequence[Mapping[str, Any]], comparisons: Comparisons = None) -> Finding | None:
    arms = sorted((r for r in rows if "step" in r), key=lambda r: r["step"])
    if len(arms) < 2 or arms[0]["step"] != 0:
        return None
    first, last = arms[0], arms[-1]
    ratio = last["value"] / first["value"] if first["value"] else math.nan
    verdict, text = _paired(comparisons, first, last, -1)
    along = ", ".join(f"step {r['step']}: {r['value']:.1f}" for r in arms)
    return Finding("", (
        f"Learning: FVD {along}. Step {last['step']} {_arm(last)} vs step 0 {_arm(first)}: "
        f"ratio {ratio:.3f} ({'≤' if ratio <= 0.1 else '>'} 1/10); step {last['step']} − step 0: {text} "
        f"({_n(arms)}): {'learned (lower, decided)' if verdict == REPRODUCED else 'not decided lower'}."
    ))


FINDINGS = {
    "joint_training": joint_training,
    "guidance": guidance,
    "conditioning": conditioning,
    "training": training,
}


def finding_of(table: str, rows: Sequence[Mapping[str, Any]], comparisons: Comparisons = None) -> Finding | None:
    """The finding a table tests, from its rows and its paired comparisons (``vdm compare``'s JSON), or None
    (no finding for this table, or too few arms)."""
    fn = FINDINGS.get(table)
    return fn(rows, comparisons) if fn else None
