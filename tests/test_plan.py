"""`vdm plan` / `snakemake plan`: FLOPs counted on the meta device equal a real forward's, the sampler's
cost factors, the time-limit warning with a chunk size that fits, and the workflow target."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import REPO, tiny_config_dict
from torch.utils.flop_counter import FlopCounterMode

from vdm.config import ExperimentConfig
from vdm.model import UNet3D, named_size
from vdm.plan import format_plan, forward_flops, plan, sample_cost_factor
from vdm.sampling.config import SampleConfig


def test_meta_device_count_equals_a_real_forward():
    mc = named_size("tiny", num_classes=3)
    net = UNet3D(mc).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.randn(2, 1, 5, 16, 16), torch.zeros(2), cls=torch.tensor([0, 1]))
    assert forward_flops(mc, 5) * 2 == pytest.approx(counter.get_total_flops(), rel=1e-9)
    assert forward_flops(mc, 10) > 1.9 * forward_flops(mc, 5)  # roughly linear in frames


def test_sampler_cost_factors():
    assert sample_cost_factor(SampleConfig()) == 1
    assert sample_cost_factor(SampleConfig(guidance_weight=2.0)) == 2
    assert sample_cost_factor(SampleConfig(task="prediction", cond_method="reconstruction")) == 2
    assert sample_cost_factor(SampleConfig(task="prediction", cond_method="replacement", guidance_weight=1)) == 2
    assert sample_cost_factor(SampleConfig(task="extension", cond_method="reconstruction", guidance_weight=1)) == 4


def _spec(tmp_path, **sample):
    d = tiny_config_dict(tmp_path / "data", sample=dict(steps=100, num_samples=1000, batch_size=10, **sample))
    sets = [{"run": "img2", "setting": "s", "train_run": "img2", "config": d}]
    return {"name": "t", "runs": {"img2": d}, "sets": sets,
            "resources": {"default": {"runtime": 10}, "sample": {"runtime": 60}}}


def test_plan_counts_and_warns_with_a_chunk_size_that_fits(tmp_path):
    spec = _spec(tmp_path)
    cfg = ExperimentConfig.from_dict(spec["runs"]["img2"])
    mc, frames = cfg.model, cfg.data.frames
    # a rate at which the whole set takes 4 h: over the 1 h limit
    per_sample = 100 * forward_flops(mc, frames)
    rate_tflops = per_sample * 1000 / (4 * 3600) / 1e12
    p = plan(spec, rate_tflops)
    row = next(r for r in p["rows"] if r["stage"] == "sample")
    assert row["network_evaluations"] == 100 * 1000 and row["gpu_hours"] == pytest.approx(4.0)
    assert row["jobs"] == 1 and len(p["warnings"]) == 1 and "sample.chunk_size <= 250 fits" in p["warnings"][0]
    chunked = plan(_spec(tmp_path, chunk_size=200), rate_tflops)
    row = next(r for r in chunked["rows"] if r["stage"] == "sample")
    assert row["jobs"] == 5 and row["wall_hours_per_job"] == pytest.approx(0.8) and chunked["warnings"] == []
    train = next(r for r in p["rows"] if r["stage"] == "train")
    assert train["network_evaluations"] == spec["runs"]["img2"]["train"]["steps"] * spec["runs"]["img2"]["train"][
        "batch_size"]
    text = format_plan(p)
    assert "| sample | img2/s | 1 | 100,000 |" in text and "WARNING" in text


def test_snakemake_plan_target(tmp_path):
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                        "--cores", "1", "plan", "--configfile", str(REPO / "config" / "test.yaml"),
                        "--replace-workflow-config"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    text = (tmp_path / "results" / "test" / "plan.md").read_text()
    assert "| train | img0 |" in text and "| train | img2 |" in text and "| real features |" in text
    assert "prediction-recon1" in text and not (tmp_path / "results" / "test" / "data").exists()  # nothing ran


def test_plan_counts_superres_blocks_at_the_block_length_and_skips_unevaluated_sets(tmp_path):
    """A cascade's super-resolution stage: a 12-frame video in blocks of 5 frames (overlap 2: 4 blocks), each
    network evaluation over 5 frames, reconstruction guidance x 2; no FVD features for it ("evaluate": False)."""
    from vdm.sampling.tasks import num_superres_blocks

    spec = _spec(tmp_path, task="superres", cond_method="reconstruction", frames=12, superres_block=5, overlap=2)
    spec["sets"][0]["evaluate"] = False
    p = plan(spec, 1.0)
    row = next(r for r in p["rows"] if r["stage"] == "sample")
    assert num_superres_blocks(12, 5, 2) == 4
    assert row["network_evaluations"] == 100 * 4 * 1000
    mc = ExperimentConfig.from_dict(spec["runs"]["img2"]).model
    assert row["tflop"] == pytest.approx(100 * 4 * 2 * forward_flops(mc, 5) * 1000 / 1e12)
    assert not [r for r in p["rows"] if r["stage"] in ("features", "real features")]


@pytest.mark.parametrize("tflops", ["0", "-3", "nan", "inf", "fast"])
def test_plan_refuses_a_rate_that_is_not_a_positive_number(tflops, tmp_path, capsys):
    from vdm.plan import main

    spec = tmp_path / "spec.json"
    spec.write_text('{"runs": {}, "sets": []}')
    with pytest.raises(SystemExit) as e:
        main(["--spec", str(spec), "--tflops", tflops])
    assert e.value.code == 2 and "--tflops: " in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [("[1, 2", "not JSON"), ('{"bad": 1}', "not a plan spec"),
                                           ("[]", "not a plan spec")])
def test_plan_names_a_malformed_spec(text, message, tmp_path, capsys):
    from vdm.plan import main

    spec = tmp_path / "spec.json"
    spec.write_text(text)
    assert main(["--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}: {message}" in err and "Traceback" not in err, err
