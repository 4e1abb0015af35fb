"""bench/gpu.py, the GPU acceptance check, on CPU with tiny shapes (``--device cpu --tiny``): every part
runs and reports, the facts a CPU can check hold (exact resume bitwise, 2 gloo ranks under torchrun equal
to one process, bf16 samples within the stated tolerance of fp32, the feature networks reproducible),
every null names its reason, and ``vdm plan`` reads the measured rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from conftest import REPO

pytestmark = pytest.mark.timeout(400)

GPU_CHECK = REPO / "bench" / "gpu.py"


def _run(out, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    cmd = [sys.executable, str(GPU_CHECK), "--device", "cpu", "--tiny", "--threads", "1", "--train-steps", "2",
           "--ddp-steps", "2", "--out", str(out), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=380,
                       env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))
    assert out.is_file(), f"no JSON written (rc {r.returncode}):\n{r.stdout}\n{r.stderr[-3000:]}"
    return r, json.loads(out.read_text())


@pytest.fixture(scope="module")
def check(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    return _run(tmp_path_factory.mktemp("gpu_check") / "check.json")


def _nulls_without_reason(node: Any, path: str = "") -> list[str]:
    """Paths of null values whose dict does not name a reason for them in ``null_reasons``."""
    bad: list[str] = []
    if isinstance(node, dict):
        reasons = node.get("null_reasons", {})
        for k, v in node.items():
            if v is None and not (isinstance(reasons.get(k), str) and reasons[k].strip()):
                bad.append(f"{path}.{k}")
            bad += _nulls_without_reason(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            bad += _nulls_without_reason(v, f"{path}[{i}]")
    return bad


def test_every_part_reports_and_every_null_has_a_reason(check):
    r, rep = check
    assert r.returncode == 0, r.stderr[-3000:]
    assert rep["format"] == "vdm-gpu-check-1" and rep["tiny"] is True and rep["device"]["type"] == "cpu"
    parts = rep["parts"]
    assert list(parts) == ["train", "train_compile", "train_ucf101", "ddp", "resume", "sample", "features"]
    for name in ("train", "ddp", "resume", "sample", "features"):
        assert parts[name]["status"] == "ok", (name, parts[name])
    for name in ("train_compile", "train_ucf101"):  # CUDA-only parts: skipped, saying why
        assert parts[name]["status"] == "skipped" and parts[name]["reason"]
    assert _nulls_without_reason(rep) == []
    assert rep["peak_bf16"]["tflops"] is None and rep["device"]["bf16_supported"] is None
    # the table names the device beside the figures
    assert "CPU" in r.stdout and "vdm plan --spec SPEC --tflops" in r.stdout


def test_training_settings(check):
    rows = check[1]["parts"]["train"]["result"]["settings"]
    assert {(s["precision"], s["gradient_checkpointing"]) for s in rows} == {
        ("bf16", False), ("bf16", True), ("fp32", False), ("fp32", True)}
    for s in rows:  # bf16 too: autocast on CPU when asked for
        assert s["step_s"] > 0 and s["samples_per_s"] == pytest.approx(s["batch"] / s["step_s"])
        assert s["achieved_TFLOPs"] == pytest.approx(s["model_TFLOP_per_step"] / s["step_s"])
        assert s["peak_mem_GiB"] is None and s["MFU"] is None  # GPU figures
        assert set(s["sdpa_kernel"]) == {"spatial", "temporal"}
        assert all(v != "none seen" for v in s["sdpa_kernel"].values()), s["sdpa_ops"]
        # model FLOPs as vdm plan counts a step: 3 x forward of batch x (T + K) frames
        from vdm.model import named_size
        from vdm.plan import forward_flops

        flops = 3 * forward_flops(named_size("tiny", num_classes=0, dropout=0.0), 6) * s["batch"]
        assert s["model_TFLOP_per_step"] * 1e12 == pytest.approx(flops, rel=1e-9)
    fp32 = [s for s in rows if s["precision"] == "fp32"]
    assert fp32[0]["loss"] == pytest.approx(fp32[1]["loss"], rel=1e-5)  # checkpointing changes no number


def test_ddp_two_gloo_ranks_equal_one_process(check):
    d = check[1]["parts"]["ddp"]["result"]
    assert d["world_size"] == 2 and d["backend"] == "gloo" and d["devices"] == ["cpu", "cpu"]
    assert d["weights_identical_across_ranks"] is True and d["trained"] is True
    assert len(d["loss_ddp"]) == len(d["loss_single"]) == 2
    assert d["loss_max_rel_diff"] <= d["loss_rtol"] == 1e-4 and d["loss_equal_within_tol"]
    assert d["weights_max_abs_diff_vs_single"] <= d["weight_atol"] == 1e-5 and d["weights_within_tol"]


def test_resume_is_bitwise_on_cpu(check):
    res = check[1]["parts"]["resume"]["result"]
    for mode in ("default", "deterministic"):
        r = res[mode]
        assert r["bitwise_equal"] is True and max(r["max_abs_diff"].values()) == 0.0, (mode, r)
        assert 0 < r["stopped_after"] < r["steps"]


def test_sampling_bf16_within_tolerance_and_chunk_size(check):
    s = check[1]["parts"]["sample"]["result"]
    assert set(s["runs"]) == {"fp32", "bf16"} and all(v["evals_per_s"] > 0 for v in s["runs"].values())
    assert 0 < s["bf16_vs_fp32_max_abs"] < s["tolerance"]["max_abs"] == 0.05
    assert s["bf16_vs_fp32_mean_abs"] < s["tolerance"]["mean_abs"] == 0.01 and s["bf16_within_tol"]
    p = s["plan"]
    assert p["chunk_size"] % p["batch_size"] == 0 and p["chunk_size"] >= p["batch_size"]
    # the chunk is the largest whole number of batches that fits the runtime
    assert p["chunk_size"] * p["hours_per_sample"] <= p["runtime_min"] / 60 + 1e-9 or p["chunk_size"] == p["batch_size"]
    assert (p["chunk_size"] + p["batch_size"]) * p["hours_per_sample"] > p["runtime_min"] / 60


def test_feature_networks_reproducible_on_cpu(check):
    f = check[1]["parts"]["features"]["result"]
    for name in ("i3d", "inception", "c3d"):
        assert f[name]["max_abs_diff"] == 0.0 and f[name]["max_abs_reference"] > 0, (name, f[name])
        assert f[name]["clips_per_s_device"] > 0 and f[name]["clips_per_s_cpu"] > 0
    assert f["c3d"]["weights"].startswith("random")  # no evaluate.c3d_weights given


def test_vdm_plan_takes_the_measured_rate(check, tmp_path):
    rep = check[1]
    tflops = rep["plan"]["tflops"]
    assert tflops > 0 and rep["plan"]["command"] == f"vdm plan --spec SPEC --tflops {tflops:g}"
    assert rep["plan"]["from_setting"]["precision"] == "bf16"  # the paper run's setting, measured on CPU too
    from vdm.plan import build_parser, tflops_from_gpu_check

    path = tmp_path / "check.json"
    path.write_text(json.dumps(rep))
    assert tflops_from_gpu_check(str(path)) == tflops
    assert build_parser().parse_args(["--spec", "x", "--from-gpu-check", str(path)]).from_gpu_check == str(path)
    path.write_text(json.dumps({**rep, "plan": {"tflops": None}}))
    with pytest.raises(ValueError, match="no measured rate"):
        tflops_from_gpu_check(str(path))


def test_a_failing_part_is_reported_and_the_others_still_run(tmp_path):
    r, rep = _run(tmp_path / "broken.json", "--parts", "sample,train_ucf101",
                  env={"VDM_GPU_CHECK_BREAK": "sample"})
    assert r.returncode == 1
    assert rep["parts"]["sample"]["status"] == "failed" and "broken on purpose" in rep["parts"]["sample"]["error"]
    assert rep["parts"]["train_ucf101"]["status"] == "skipped"
    assert rep["plan"]["tflops"] is None and rep["plan"]["null_reasons"]["tflops"]


def test_peak_table():
    sys.path.insert(0, str(REPO / "bench"))
    import gpu

    assert gpu.peak_bf16("NVIDIA H100 80GB HBM3", None)["tflops"] == 989.0
    assert gpu.peak_bf16("NVIDIA H100 PCIe", None)["tflops"] == 756.0
    assert gpu.peak_bf16("NVIDIA H200", None)["tflops"] == 989.0
    assert gpu.peak_bf16("NVIDIA A100-SXM4-80GB", None)["tflops"] == 312.0
    assert gpu.peak_bf16("NVIDIA L40S", None)["tflops"] == 362.0
    assert gpu.peak_bf16("NVIDIA L4", None)["tflops"] == 121.0
    assert "datasheet" in gpu.peak_bf16("NVIDIA H200", None)["source"]
    unknown = gpu.peak_bf16("Some GPU", None)
    assert unknown["tflops"] is None and "--peak-tflops" in unknown["null_reasons"]["tflops"]
    assert gpu.peak_bf16("Some GPU", 123.0) == {"device_name": "Some GPU", "tflops": 123.0, "source": "--peak-tflops"}
