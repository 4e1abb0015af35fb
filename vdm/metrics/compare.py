"""Paired comparisons between the arms of one table: Δ = metric(B) − metric(A) with a paired interval.

The arms of an ablation are drawn with the same seeds (sample i of every set uses ``sample.seed + i``; checked
here, a set of other seeds is refused), and measured against one real set, so the noise of a draw is shared by
both arms. For every Fréchet distance of the registry that both arms computed (``Metric.paired``: FVD, the
frame FIDs, C3D FID, ...), Δ and its interval come from :func:`vdm.metrics.resampling.paired_difference`: the
same jackknife groups deleted from both arms, the real set held fixed; for the digit metrics' shares of frames
(class accuracy, identity, identity kept: higher is better) from the paired per-video shares
(:func:`vdm.metrics.resampling.paired_share_difference`); beside each the smallest Δ this N detects with 80 %
power. Every pair (A, B) of rows, A before B in the table's order, is compared; the findings
(:mod:`vdm.report.findings`) pick the pairs their paper finding names, fixed by the rows' settings, not by
their values.

    vdm compare --config EVAL.yaml --spec SPEC_JSON --real-features R.npz ... --out COMPARISONS.json

SPEC_JSON (text or ``@file``): ``{"table": name, "rows": [{"run", "setting", "samples", "features": [...]}]}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vdm.artifacts import ArtifactError
from vdm.artifacts.samples import read_samples_header
from vdm.cliargs import add_config_flags, config_from_args, fail
from vdm.config import ConfigError, ExperimentConfig
from vdm.metrics import registry
from vdm.metrics.detectors import Networks
from vdm.metrics.evaluate import generated_outputs, real_outputs
from vdm.metrics.resampling import ResamplingError, fixed_real_distance, paired_difference, paired_share_difference
from vdm.metrics.videos import FVDError
from vdm.utils.io import write_json

log = logging.getLogger("vdm.compare")

Outputs = dict[str, np.ndarray]


def _arm(cfg: ExperimentConfig, row: dict[str, Any], nets: Networks
         ) -> tuple[registry.Context, np.ndarray, dict[str, Outputs]]:
    """(context, seeds [N], {detector: outputs}) of one row's sample set, gathered from its chunk features files."""
    shape, meta = read_samples_header(row["samples"])
    ctx = registry.set_context(cfg, int(shape[1]), row["samples"], meta)
    outputs = generated_outputs(ctx, nets, None, meta, int(shape[0]), row["features"], False)
    return ctx, ctx.first_draws(np.asarray(meta.get("seeds", np.arange(shape[0])))), outputs


def paired_metrics(ctx: registry.Context, real: dict[tuple[str, str], Outputs], a: dict[str, Outputs],
                   b: dict[str, Outputs], ctx_b: registry.Context | None = None) -> dict[str, dict[str, Any]]:
    """{metric: paired Δ = metric(b) − metric(a)} of every paired metric computed for the arms: the Fréchet
    distances (lower is better) and the shares of frames of the digit metrics (``higher_is_better``; Δ of the
    per-video shares, :func:`paired_share_difference`). ``ctx_b``: arm b's context (its class labels), else
    ``ctx``'s."""
    ev, out = ctx.ev, {}
    ctx_b = ctx_b or ctx
    status_b = registry.statuses(ctx_b)
    for name, why in registry.statuses(ctx).items():
        m = registry.METRICS[name]
        if name in registry.SHARES and not why and not status_b.get(name) and "digits" in a and "digits" in b:
            hits_a = registry.share_hits(name, a["digits"], ctx.labels, ctx.cond_frames)
            hits_b = registry.share_hits(name, b["digits"], ctx_b.labels, ctx_b.cond_frames)
            if hits_a is not None and hits_b is not None:
                out[name] = paired_share_difference(hits_a.mean(axis=1), hits_b.mean(axis=1),
                                                    level=ev.interval_level)
            continue
        if why or m.paired is None or m.detector not in a or m.detector not in b:
            continue
        key, ddof = m.paired
        r = real[(m.detector, m.real_split(ev))][key].astype(np.float64)  # [M, D]
        d = paired_difference(r, b[m.detector][key].astype(np.float64), a[m.detector][key].astype(np.float64),
                              distance=fixed_real_distance(r, ddof), level=ev.interval_level,
                              num_groups=ev.jackknife_groups, seed=ev.bootstrap_seed)
        out[name] = {**d, "value_a": d["value_b"], "value_b": d["value_a"]}  # Δ = b − a: name the arms so
    return out


def compare_rows(cfg: ExperimentConfig, rows: Sequence[dict[str, Any]], real_files: Sequence[str | Path]
                 ) -> dict[str, Any]:
    """Every pair of ``rows`` (A before B) with the paired Δ of each metric (see module docstring)."""
    nets = Networks(cfg.evaluate, "cpu")  # nothing is loaded: every output is read from a file
    arms = [_arm(cfg, row, nets) for row in rows]
    real: dict[tuple[str, str], Outputs] = {}
    for ctx, _, _ in arms:  # the protocol's real clips of each (detector, split), each file checked against it
        for key, (outputs, _) in real_outputs(ctx, nets, None, real_files, False, require=True).items():
            real[key] = outputs
    pairs = []
    for (i, (ctx_a, seeds_a, out_a)), (j, (ctx_b, seeds_b, out_b)) in itertools.combinations(enumerate(arms), 2):
        a, b = rows[i], rows[j]
        if ctx_a.frames != ctx_b.frames or not np.array_equal(seeds_a, seeds_b):
            raise FVDError(f"{a['samples']} and {b['samples']}: not paired (their seeds or clip lengths differ); "
                           "arms of a table are drawn with the same sample.seed and num_samples")
        pairs.append({"a": {"run": a["run"], "setting": a["setting"]}, "b": {"run": b["run"], "setting": b["setting"]},
                      "n": int(len(seeds_a)), "metrics": paired_metrics(ctx_a, real, out_a, out_b, ctx_b)})
    return {"delta": "metric(b) - metric(a)", "level": cfg.evaluate.interval_level, "pairs": pairs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vdm compare", description=__doc__.split("\n\n")[0])
    add_config_flags(p)
    p.add_argument("--spec", required=True, help="the table's rows: JSON text or @file")
    p.add_argument("--real-features", nargs="+", default=[], metavar="NPZ", help="the real-features files")
    p.add_argument("--out", required=True, help="comparisons JSON to write")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = config_from_args(args)
        text = Path(args.spec[1:]).read_text() if args.spec.startswith("@") else args.spec
        spec = json.loads(text)
        out = {"table": spec.get("table"), **compare_rows(cfg, spec["rows"], args.real_features)}
    except (ConfigError, FVDError, ArtifactError, ResamplingError, KeyError, json.JSONDecodeError) as e:
        return fail("vdm compare", e)
    write_json(args.out, out)
    log.info("%d pairs of table %s -> %s", len(out["pairs"]), out["table"], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
