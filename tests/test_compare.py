"""`vdm compare`: the paired Δ between the arms of a table, from their chunk features and one real set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import chunked_set_with_features

from vdm.metrics import resampling


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    """Two arms of 8 paired samples (chunked, with their features), a third with other seeds, the real features."""
    from vdm.__main__ import main

    tmp = tmp_path_factory.mktemp("compare")
    cfg = {"name": "cmp", "data": {"source": "moving_mnist", "resolution": 16, "channels": 1, "frames": 9,
                                   "images_per_video": 0, "mnist_video_length": 10, "mnist_train_videos": 4,
                                   "mnist_test_videos": 8, "shard_size": 8, "shards": str(tmp / "data")},
           "model": {"size": "tiny"}, "evaluate": {"num_real": 8, "batch_size": 4}}
    cfg_path = tmp / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    assert main(["shard", "--config", str(cfg_path), "--split", "test", "--quiet"]) == 0
    real = tmp / "real-features-9f.npz"
    assert main(["evaluate", "--config", str(cfg_path), "--real-only", "--out", str(real), "--quiet"]) == 0
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (8, 9, 16, 16, 1), dtype=np.uint8)
    rows = []
    for name, videos in (("a", base), ("b", np.clip(base.astype(int) + 60, 0, 255).astype(np.uint8)), ("c", base)):
        (tmp / name).mkdir()
        samples, feats = chunked_set_with_features(tmp / name, cfg_path, videos, [(0, 4), (4, 8)],
                                                   {"sample": {"steps": 8, "arm": name}, "experiment": "cmp"})
        if name == "c":  # the same videos under other seeds: not a paired arm
            z = dict(np.load(samples))
            np.savez(samples, **{**z, "seeds": z["seeds"] + 100})
        rows.append({"run": "img0", "setting": f"set-{name}", "samples": str(samples), "features": feats})
    return main, cfg_path, real, rows


def test_compare_gives_the_paired_delta_of_b_minus_a(arms, tmp_path):
    from vdm.metrics.stats import frechet_distance_fast

    main, cfg_path, real, rows = arms
    out = tmp_path / "cmp.json"
    spec = json.dumps({"table": "t", "rows": rows[:2]})
    assert main(["compare", "--config", str(cfg_path), "--spec", spec, "--real-features", str(real), "--out",
                 str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["table"] == "t" and result["delta"] == "metric(b) - metric(a)" and len(result["pairs"]) == 1
    pair = result["pairs"][0]
    assert pair["a"] == {"run": "img0", "setting": "set-a"} and pair["n"] == 8 and set(pair["metrics"]) == {"fvd"}
    d = pair["metrics"]["fvd"]
    # the same numbers from the features directly: Δ = d(real, b) - d(real, a), the paired jackknife of both
    with np.load(real) as z:
        r = z["out.features"].astype(np.float64)

    def feats(row):
        return np.concatenate([np.load(f)["i3d.features"] for f in row["features"]]).astype(np.float64)

    fa, fb = feats(rows[0]), feats(rows[1])
    assert d["value_a"] == pytest.approx(frechet_distance_fast(r, fa), rel=1e-8)
    assert d["value_b"] == pytest.approx(frechet_distance_fast(r, fb), rel=1e-8)
    ref = resampling.paired_difference(r, fb, fa, num_groups=20, seed=0)
    assert (d["value"], d["low"], d["high"]) == pytest.approx((ref["value"], ref["low"], ref["high"]), rel=1e-8)
    assert d["low"] < d["value"] < d["high"] and d["min_detectable"] > 0
    assert "real set fixed" in d["target"]


def test_compare_refuses_arms_of_other_seeds_and_missing_real_features(arms, tmp_path, capsys):
    main, cfg_path, real, rows = arms
    out = tmp_path / "cmp.json"
    spec = json.dumps({"table": "t", "rows": [rows[0], rows[2]]})
    assert main(["compare", "--config", str(cfg_path), "--spec", spec, "--real-features", str(real),
                 "--out", str(out)]) == 2
    assert "not paired (their seeds" in capsys.readouterr().err
    assert main(["compare", "--config", str(cfg_path), "--spec", json.dumps({"table": "t", "rows": rows[:2]}),
                 "--out", str(out)]) == 2
    assert "no i3d features of the test clips" in capsys.readouterr().err
    assert not out.exists()


def test_paired_metrics_include_the_digit_shares_as_paired_per_video_differences():
    """The digit metrics' shares of frames (class accuracy, identity, identity kept) of two paired arms: Δ is the
    mean of the per-video differences of the shares, flagged higher_is_better; the digit FD beside it as ever."""
    from vdm.config import ExperimentConfig
    from vdm.metrics import registry
    from vdm.metrics.compare import paired_metrics

    cfg = ExperimentConfig.from_dict({"data": {"source": "moving_mnist", "mnist_num_digits": 1, "num_classes": 10},
                                      "evaluate": {"digit_classifier": "digit-classifier.pt", "split": "test"}})
    n, t = 40, 10
    rng = np.random.default_rng(3)
    labels = np.arange(n) % 10  # [N]
    ctx = registry.Context(cfg, t, labels=labels, cond_frames=(0, 1, 2, 3), task="prediction")

    def arm(p_right: float) -> dict[str, np.ndarray]:
        right = rng.random((n, t)) < p_right  # [N, T]: frames showing the requested digit
        right[:, :4] = True  # the given frames
        digit = np.where(right, labels[:, None], (labels[:, None] + 1) % 10)  # [N, T]
        logits = np.eye(10)[digit] * 5.0  # [N, T, 10]
        return {"logits": logits.astype(np.float32), "features": rng.normal(size=(n, 16)).astype(np.float32)}

    a, b = arm(0.5), arm(0.9)
    real = {("digits", "test"): {"features": rng.normal(size=(64, 16))}}
    out = paired_metrics(ctx, real, {"digits": a}, {"digits": b})
    assert set(out) == {"digit_class_accuracy", "digit_identity", "digit_identity_kept", "digit_fd"}
    share = lambda o: (o["logits"].argmax(-1) == labels[:, None]).mean(1)  # noqa: E731
    d = out["digit_class_accuracy"]
    assert d["value"] == pytest.approx(float((share(b) - share(a)).mean())) and d["higher_is_better"] is True
    assert d["low"] > 0 and d["value_a"] == pytest.approx(share(a).mean())
    kept = out["digit_identity_kept"]
    assert kept["value"] == pytest.approx(float(((b["logits"].argmax(-1)[:, 4:] == labels[:, None]).mean(1)
                                                 - (a["logits"].argmax(-1)[:, 4:] == labels[:, None]).mean(1)).mean()))
    assert "higher_is_better" not in out["digit_fd"]
