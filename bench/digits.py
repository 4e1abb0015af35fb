"""Calibration of the digit metrics: the digit classifier's class accuracy and identity on a config's REAL
clips (the protocol's: evaluate.num_real clips of evaluate.split, evaluate.real_seed), as the evaluation
records them beside a generated set's values (``real_value``).

    python bench/digits.py --config config/config.yaml --classifier digit-classifier.pt [--shards DIR]

The classifier comes from ``vdm digits --config CFG --out digit-classifier.pt``; ``--shards``: the folder of
the config's shards (``vdm shard --split test --out DIR``; default data.shards). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from vdm.config import load_config
from vdm.metrics import digits, registry, stats
from vdm.metrics.detectors import Networks
from vdm.metrics.evaluate import real_features


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--classifier", required=True)
    p.add_argument("--shards", default=None)
    args = p.parse_args()
    overrides = {"evaluate.digit_classifier": args.classifier, **({"data.shards": args.shards} if args.shards else {})}
    cfg = load_config(args.config, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        out, info = real_features(cfg, "digits", cfg.evaluate.split, cfg.data.frames, Networks(cfg.evaluate, "cpu"),
                                  path=Path(tmp) / "real.npz", mode="write", progress=False)
    level = cfg.evaluate.interval_level
    result = {"config": args.config, "split": cfg.evaluate.split, "clips": list(out["logits"].shape[:2]),
              "digits_per_video": cfg.data.mnist_num_digits,
              "identity": stats.share_entry(stats.identity_hits(out["logits"]), level)}
    if cfg.data.mnist_num_digits == 1 and "cls" in out:
        result["class_accuracy"] = stats.share_entry(stats.class_hits(out["logits"], out["cls"]), level)
    ctx = registry.Context(cfg, cfg.data.frames, labels=out.get("cls", np.zeros(0)).astype(np.int64))
    result["statuses"] = {k: v for k, v in registry.statuses(ctx).items() if k.startswith("digit")}
    result["classifier"] = {k: v for k, v in json.loads(digits.record_path(args.classifier).read_text()).items()
                            if k in ("heldout_accuracy", "parameters", "train_seconds", "file_sha256")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
