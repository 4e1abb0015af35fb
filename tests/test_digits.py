"""The Moving MNIST digit classifier and its metrics (vdm/metrics/digits.py): deterministic training,
held-out accuracy, the metrics' math on constructed logits, calibration on real clips, the weights-file
checks through `vdm evaluate` (exit 2), and the workflow's digit_classifier job feeding the evaluations.

Training here uses a reduced setting (16 px frames of a 32 px canvas, 150 steps): seconds on one thread.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, tiny_config_dict, write_config

from vdm.config import ExperimentConfig, load_config
from vdm.metrics import digits, registry, stats
from vdm.metrics.detectors import Networks
from vdm.metrics.evaluate import real_features

SMALL = digits.Settings(resolution=16, canvas=32, steps=150, batch_size=32, num_test=400, lr=5e-3)
HELDOUT_BAR = 0.8  # held-out accuracy of the reduced setting (measured: see test_heldout_accuracy)
LABELS = np.zeros(2, np.int64)
ONE_DIGIT = dict(mnist_num_digits=1, mnist_canvas=32, num_classes=10, frames=9, mnist_video_length=12,
                 mnist_test_videos=8, mnist_train_videos=8)


def one_digit_dict(shards: str | Path = "unused", **sections: dict) -> dict:
    cfg = tiny_config_dict(shards, data=ONE_DIGIT, **sections)
    cfg["model"].pop("num_classes")  # follows from data.num_classes
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """The reduced classifier, saved: (weights file, record)."""
    net, record = digits.train(SMALL)
    path = tmp_path_factory.mktemp("digits") / "digit-classifier.pt"
    digits.save(path, net, record)
    return path, record


@pytest.fixture(scope="module")
def one_digit_cfg(tmp_path_factory, trained) -> Path:
    """A 1-digit Moving MNIST config (16 px, 32 px canvas) with its test shards and the classifier set."""
    from vdm.data.cli import main as shard

    root = tmp_path_factory.mktemp("mnist1")
    cfg = one_digit_dict(root / "data", evaluate={"num_real": 8, "batch_size": 4,
                                                  "digit_classifier": str(trained[0])})
    path = write_config(root / "cfg.yaml", cfg)
    assert shard(["--config", str(path), "--split", "test", "--quiet"]) == 0
    return path


def test_training_is_deterministic(trained, tmp_path):
    """The same settings give byte-identical weights files (one thread, seeded streams)."""
    net, record = digits.train(SMALL)
    again = tmp_path / "again.pt"
    digits.save(again, net, record)
    assert again.read_bytes() == trained[0].read_bytes()
    other = digits.train(digits.Settings(**{**SMALL.__dict__, "steps": 5, "seed": 1}))[1]
    assert other["weights_sha256"] != trained[1]["weights_sha256"]


def test_heldout_accuracy_and_record(trained):
    path, record = trained
    print(f"reduced classifier: held-out accuracy {record['heldout_accuracy']:.4f}, "
          f"{record['parameters']} parameters, {record['train_seconds']} s")
    assert record["heldout_accuracy"] >= HELDOUT_BAR
    default = sum(p.numel() for p in digits.DigitNet(digits.Settings().widths).parameters())
    assert record["parameters"] == default and 10_000 <= default <= 100_000
    side = json.loads(digits.record_path(path).read_text())
    assert side["weights_sha256"] == record["weights_sha256"] and len(side["file_sha256"]) == 64
    net, loaded = digits.load(path, resolution=16)
    assert loaded["heldout_accuracy"] == record["heldout_accuracy"]
    with pytest.raises(digits.DigitClassifierError, match="trained on 16 px"):
        digits.load(path, resolution=32)


def test_class_accuracy_and_identity_by_hand():
    """Constructed logits: 2 videos of 4 frames. Video 0 predicts 3,3,3,5 (label 3); video 1 7,1,1,7 (label 2)."""
    pred = np.array([[3, 3, 3, 5], [7, 1, 1, 7]])
    logits = np.eye(10)[pred] * 5.0  # [2, 4, 10]
    labels = np.array([3, 2])
    hits = stats.class_hits(logits, labels)
    assert hits.tolist() == [[True, True, True, False], [False] * 4]
    acc = stats.share_entry(hits, 0.95)
    assert acc["value"] == pytest.approx(3 / 8) and acc["n_videos"] == 2 and acc["n_frames"] == 8
    assert acc["interval"][0] < 3 / 8 < acc["interval"][1]
    # identity: video 0's majority is 3 (3 of 4), video 1's a tie 7/1 -> the smaller digit 1 (2 of 4)
    assert stats.majority(pred).tolist() == [3, 1]
    assert stats.share_entry(stats.identity_hits(logits), 0.95)["value"] == pytest.approx(5 / 8)
    # identity kept, frames 0-1 given: video 0 keeps 3 (frames 2, 3: 3, 5), video 1's given 7, 1 -> 1 (1, 7)
    kept = stats.kept_hits(logits, [0, 1])
    assert kept.tolist() == [[True, False], [True, False]]
    # every frame right: value 1, a Wilson interval at N = videos below it, not the empty [1, 1]
    perfect = stats.share_entry(np.ones((10, 9), bool), 0.95)
    assert perfect["value"] == 1.0 and perfect["interval"][1] == 1.0 and perfect["interval"][0] < 0.8
    # clustered frames make a wider interval than as many independent frames
    clustered = np.repeat(np.arange(40)[:, None] % 2 == 0, 9, axis=1)  # [40, 9]: whole videos right or wrong
    scattered = np.arange(360).reshape(40, 9) % 2 == 0  # the same share, spread within videos
    lo_c, hi_c = stats.share_entry(clustered, 0.95)["interval"]
    lo_s, hi_s = stats.share_entry(scattered, 0.95)["interval"]
    assert hi_c - lo_c > 2 * (hi_s - lo_s)


def test_statuses():
    """Which digit metrics apply (None: left out), are computed ("") or say why not."""
    base = one_digit_dict(evaluate={"digit_classifier": "x.pt"})

    def status(labels: np.ndarray | None = LABELS, cond: tuple[int, ...] = (), **data):
        c = ExperimentConfig.from_dict({**base, "data": {**base["data"], **data}})
        return {k: v for k, v in registry.statuses(registry.Context(c, 9, labels=labels, cond_frames=cond)).items()
                if k.startswith("digit")}
    assert status() == {"digit_class_accuracy": "", "digit_identity": "", "digit_fd": ""}
    assert status(cond=(0, 1, 2))["digit_identity_kept"] == ""
    assert "none generated" in status(cond=tuple(range(9)))["digit_identity_kept"]
    assert "no class labels" in status(labels=None)["digit_class_accuracy"]
    two = status(mnist_num_digits=2, num_classes=100)
    assert two["digit_fd"] == "" and "one digit per video" in two["digit_class_accuracy"]
    assert status(source="ucf101", root="/x") == {}


def test_real_clips_calibration(one_digit_cfg):
    """The real clips' class accuracy and identity (from the real-features file) are high, and a metrics
    entry carries them beside the generated set's values (here: the real clips themselves as the set)."""
    cfg = load_config(one_digit_cfg)
    nets = Networks(cfg.evaluate, "cpu")
    out, _ = real_features(cfg, "digits", "test", 9, nets, path=one_digit_cfg.parent / "real.npz", mode="write",
                           progress=False)
    assert out["logits"].shape == (8, 9, 10) and out["features"].shape == (8, 64) and out["cls"].shape == (8,)
    ctx = registry.Context(cfg, 9, labels=out["cls"].astype(np.int64))
    acc = registry.METRICS["digit_class_accuracy"].score(out, out, ctx, False)
    ident = registry.METRICS["digit_identity"].score(out, out, ctx, False)
    print(f"real clips: class accuracy {acc['real_value']:.3f}, identity {ident['real_value']:.3f}")
    assert acc["real_value"] == acc["value"] >= 0.75 and acc["n_real"] == 8  # measured 7 of 8 videos
    assert ident["real_value"] >= 0.85 and ident["real_interval"][0] <= ident["real_value"]
    kept = registry.METRICS["digit_identity_kept"].score(out, out, ctx.__class__(cfg, 9, cond_frames=(0, 1, 2)),
                                                         False)
    assert kept["real_value"] == kept["value"] >= 0.85 and kept["n_frames"] == 8 * 6
    fd = registry.METRICS["digit_fd"].score(out, out, ctx, False)
    assert fd["value"] == pytest.approx(0.0, abs=1e-6)


def test_tables_show_the_real_clips_value():
    from vdm.report.tables import _also_cell, also_columns

    entry = {"computed": True, "value": 0.9, "interval": [0.8, 0.95], "n_generated": 4, "n_real": 8,
             "real_value": 0.98, "real_interval": [0.95, 0.99]}
    cols = also_columns("digit_identity", entry)
    assert cols["digit_identity_note"] == "real clips: 0.980 [0.950, 0.990]" and cols["digit_identity_real"] == 0.98
    assert _also_cell(cols, "digit_identity") == "0.90 [0.80, 0.95] (real 0.980), N 4 / 8"


def _real_only(cfg: Path, classifier: Path, capsys) -> tuple[int, str]:
    from vdm.metrics.cli import main

    code = main(["--config", str(cfg), "--set", f"evaluate.digit_classifier={classifier}", "--real-only",
                 "--detector", "digits", "--out", str(cfg.parent / "r.npz"), "--quiet"])
    return code, capsys.readouterr().err


def test_weights_file_errors_exit_2(one_digit_cfg, trained, tmp_path, capsys):
    missing = tmp_path / "missing.pt"
    code, err = _real_only(one_digit_cfg, missing, capsys)
    assert code == 2 and "digit classifier not found" in err and str(missing) in err
    obj = torch.load(trained[0], weights_only=True)
    obj["state_dict"]["head.bias"] = obj["state_dict"]["head.bias"] + 1.0
    altered = tmp_path / "altered.pt"
    torch.save(obj, altered)
    code, err = _real_only(one_digit_cfg, altered, capsys)
    assert code == 2 and "altered" in err and str(altered) in err
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    code, err = _real_only(one_digit_cfg, garbage, capsys)
    assert code == 2 and "not a digit-classifier weights file" in err


def test_cli_bad_input_exit_2(tmp_path, capsys):
    from vdm.metrics.digits_cli import main

    cfg = write_config(tmp_path / "ucf.yaml", tiny_config_dict(data={"source": "ucf101", "root": str(tmp_path)}))
    assert main(["--config", str(cfg), "--out", str(tmp_path / "d.pt")]) == 2
    assert "data.source" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "d.pt")]) == 2
    assert "none.yaml" in capsys.readouterr().err


def test_workflow_evaluations_read_the_classifier(tmp_path):
    """Dry run of config/test.yaml: the digit_classifier job is an input of the features, real-features and
    evaluate jobs, which pass it as evaluate.digit_classifier."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-n",
           "-p", "--configfile", str(REPO / "config" / "test.yaml"), "--replace-workflow-config"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    jobs = re.split(r"\n(?=(?:local)?rule \w+:)", r.stdout)
    weights = "results/test/metrics/digit-classifier.pt"
    by_rule: dict[str, list[str]] = {}
    for job in jobs:
        m = re.match(r"(?:local)?rule (\w+):", job)
        if m:
            by_rule.setdefault(m.group(1), []).append(job)
    assert len(by_rule["digit_classifier"]) == 1
    for rule in ("evaluate", "features_chunk", "real_features_digits"):
        assert by_rule[rule], rule
        for job in by_rule[rule]:
            inputs = re.search(r"input: (.*)", job).group(1)
            assert weights in inputs, (rule, inputs)
            assert f"--set evaluate.digit_classifier={weights}" in job, rule
    assert all(weights not in re.search(r"input: (.*)", j).group(1) for j in by_rule["real_features_i3d"])
