"""sample.precision: bf16 autocast of the network only; samples agree with fp32 to a stated tolerance,
the sampler's arithmetic and the reconstruction-guidance gradient stay float32 (CPU autocast)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_unet_with_signal

from vdm.diffusion import CosineSchedule, Denoiser
from vdm.sampling import tasks
from vdm.sampling.config import SampleConfig
from vdm.sampling.seeds import StackedGenerator

pytestmark = pytest.mark.usefixtures("one_thread")

# bf16 has an 8-bit mantissa (relative rounding 2^-9 ≈ 0.2 %, ~1 % through a network): the samples
# (x in [-1, 1]) of 8 steps of the tiny network differ from fp32 by a few 1e-3 on average;
# 0.05 max / 0.01 mean is the stated tolerance.
MAX_ABS, MEAN_ABS = 0.05, 0.01


@pytest.fixture(scope="module")
def net():
    # the zero-initialised output layer small enough that x̂ is of order 1, as a trained network's
    # (a random one's x̂ of order 10 turns the 1 % bf16 error into clipping flips)
    return tiny_unet_with_signal(0.03)


def _sample(net, precision, **kw):
    cfg = SampleConfig(steps=8, precision=precision, clip_x=True, **kw)
    den = tasks.make_denoiser(net, "v", cfg, "cpu")
    extra = {"cls": torch.tensor([1, 3])}
    with torch.no_grad():
        if cfg.task == "prediction":
            x_a = torch.rand(2, 1, 4, 16, 16, generator=torch.Generator().manual_seed(5)) * 2 - 1
            return tasks.predict(cfg, den, x_a[:, :, :2], 4, CosineSchedule(), StackedGenerator([0, 1]),
                                 extra_args=extra)
        return tasks.sample_block(cfg, den, (2, 1, 4, 16, 16), CosineSchedule(), StackedGenerator([0, 1]),
                                  extra_args=extra)


@pytest.mark.parametrize("kw", [dict(guidance_weight=2.0),
                                dict(task="prediction", cond_frames=2, cond_method="reconstruction", w_r=4.0)],
                         ids=["guided", "reconstruction"])
def test_bf16_samples_agree_with_fp32(net, kw):
    x32, x16 = _sample(net, "fp32", **kw), _sample(net, "bf16", **kw)
    assert x32.dtype == x16.dtype == torch.float32  # the sampler's output stays float32
    diff = (x32 - x16).abs()
    print(f"bf16 vs fp32 ({list(kw)}): max |dx| = {diff.max():.2e}, mean {diff.mean():.2e}")
    assert diff.max() < MAX_ABS and diff.mean() < MEAN_ABS
    assert diff.max() > 0  # bf16 really ran (not silently fp32)


def test_network_runs_in_bf16_and_everything_around_it_in_fp32(net):
    seen = []
    hook = net.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    den = Denoiser(net, "v", autocast=torch.bfloat16)
    z = torch.randn(2, 1, 4, 16, 16, requires_grad=True)
    x = den(z, torch.tensor([-2.0, 1.0]), cls=torch.tensor([0, 1]))
    hook.remove()
    assert seen == [torch.bfloat16] and x.dtype == torch.float32
    (g,) = torch.autograd.grad(x.square().sum(), z)  # reconstruction guidance's gradient w.r.t. z
    assert g.dtype == torch.float32 and torch.isfinite(g).all()


def test_precision_auto_is_bf16_on_cuda_only():
    assert tasks.autocast_dtype(SampleConfig(), "cpu") is None
    assert tasks.autocast_dtype(SampleConfig(), "cuda") is torch.bfloat16
    assert tasks.autocast_dtype(SampleConfig(precision="fp32"), "cuda") is None
    assert tasks.autocast_dtype(SampleConfig(precision="bf16"), "cpu") is torch.bfloat16


def test_bf16_if_native_follows_the_cpu(monkeypatch):
    """bf16_if_native: bf16 on CUDA always, on CPU exactly when the CPU has AMX tiles or AVX512-BF16."""
    from vdm.utils import precision as P

    cfg = SampleConfig(precision="bf16_if_native")
    assert tasks.autocast_dtype(cfg, "cuda") is torch.bfloat16
    for amx, avx in ((True, False), (False, True), (False, False)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx: v, raising=False)
        assert P.cpu_has_native_bf16() is (amx or avx)
        assert tasks.autocast_dtype(cfg, "cpu") is (torch.bfloat16 if amx or avx else None)
        assert P.uses_bf16("auto", "cpu") is False and P.uses_bf16("bf16", "cpu") is True
    with pytest.raises(ValueError, match="fp16"):
        P.uses_bf16("fp16", "cpu")
