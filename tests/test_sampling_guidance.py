"""Guidance wrappers (paper §1, §4): exact Gaussian conditionals, classifier-free guidance, super-resolution.

Gaussian case (no network): x ~ N(μ, Σ) over videos [1, 4, 2, 2] with AR(1) frames (ρ_t = 0.9);
x^a = frame 0, x^b = frames 1–3. Reconstruction guidance (w_r = 1) must be closer than replacement
to the exact E[x^b | x^a] and Cov[x^b | x^a], for x^a near (0.5 std) and far (3 std) from the prior
mean, with a margin: error(reconstruction) < 0.8 · error(replacement). N = 4000, 64 steps.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vdm.diffusion import CosineSchedule, Denoiser
from vdm.model import UNet3D, named_size
from vdm.sampling.gaussian import GaussianDenoiser, ar1_video_covariance, conditional_sampling_errors
from vdm.sampling.guidance import ClassifierFreeGuidance, ReconstructionGuidance, ReplacementGuidance
from vdm.sampling.samplers import logsnr_grid, sample_ancestral
from vdm.sampling.tasks import downsample

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def _bench():
    spec = importlib.util.spec_from_file_location("guidance_gaussian", ROOT / "bench" / "guidance_gaussian.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("offset", [0.5, 3.0], ids=["near", "far"])
def test_reconstruction_beats_replacement_on_gaussian(offset):
    bench = _bench()
    den = bench.problem()
    x_a = bench.conditioning_value(den, offset)
    kw = dict(steps=64, gamma=1.0, n=4000, seed=3)
    rep = conditional_sampling_errors(den, 1, x_a, method="replacement", **kw)
    rec = conditional_sampling_errors(den, 1, x_a, method="reconstruction", w_r=1.0, **kw)
    assert rec[0] < 0.8 * rep[0], ("mean", rec, rep)
    assert rec[1] < 0.8 * rep[1], ("cov", rec, rep)


def test_reconstruction_with_langevin_corrector():
    bench = _bench()
    den = bench.problem()
    x_a = bench.conditioning_value(den, 3.0)
    kw = dict(sampler="langevin", steps=32, gamma=0.0, n=2000, seed=4)
    rep = conditional_sampling_errors(den, 1, x_a, method="replacement", **kw)
    rec = conditional_sampling_errors(den, 1, x_a, method="reconstruction", w_r=1.0, **kw)
    assert rec[0] < 0.8 * rep[0] and rec[1] < 0.8 * rep[1], (rec, rep)


def test_replacement_keeps_conditioning_frames_exactly():
    bench = _bench()
    den = bench.problem()
    mask = torch.zeros(1, 1, 4, 1, 1, dtype=torch.bool)
    mask[:, :, :2] = True
    x_a = torch.randn(5, *den.shape, dtype=torch.float64)
    for wrapper in (ReplacementGuidance(den, x_a, mask), ReconstructionGuidance(den, x_a, mask=mask, w_r=3.0)):
        z_1 = torch.randn(5, *den.shape, dtype=torch.float64)
        x = sample_ancestral(wrapper, z_1, logsnr_grid(CosineSchedule(), 8), gamma=0.3)
        assert torch.equal(x[:, :, :2], x_a[:, :, :2])
        assert not torch.equal(x[:, :, 2:], x_a[:, :, 2:])


def test_reconstruction_gradient_matches_formula():
    """x̃^b = x̂^b − (w_r α/2) ∇_{z^b}‖x^a − x̂^a‖², checked against the closed form for the linear denoiser."""
    bench = _bench()
    den = bench.problem()
    D = den.dim
    mask = torch.zeros(1, 1, 4, 1, 1, dtype=torch.bool)
    mask[:, :, :1] = True
    a = mask.expand(1, *den.shape).reshape(D)
    x_a = torch.randn(1, *den.shape, dtype=torch.float64)
    z = torch.randn(1, *den.shape, dtype=torch.float64)
    lam = torch.tensor([0.7], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    noise_draw = torch.randn(z.shape, generator=torch.Generator().manual_seed(0), dtype=z.dtype)
    w_r = 2.5
    rec = ReconstructionGuidance(den, x_a, mask=mask, w_r=w_r,
                                 noise=lambda like: torch.randn(like.shape, generator=g, dtype=like.dtype))
    out = rec(z, lam).reshape(D)
    alpha, sigma = torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
    zr = torch.where(a, (alpha * x_a + sigma * noise_draw).reshape(D), z.reshape(D))  # replaced z
    s, U = den.s, den.U
    G = U @ torch.diag(alpha * s / (alpha**2 * s + sigma**2)) @ U.T  # ∂x̂/∂z
    x_hat = den.mu + G @ (zr - alpha * den.mu)
    grad = -2 * G[a][:, ~a].T @ (x_a.reshape(D)[a] - x_hat[a])  # ∇_{z^b}‖x^a − x̂^a‖²
    expect_b = x_hat[~a] - w_r * alpha / 2 * grad
    torch.testing.assert_close(out[~a], expect_b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out[a], x_a.reshape(D)[a])


# ---------------------------------------------------------------------------------------------
# Classifier-free guidance
# ---------------------------------------------------------------------------------------------
class _Counting(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls, self.batches = net, 0, []

    def forward(self, z, logsnr, **cond):
        self.calls += 1
        self.batches.append(z.shape[0])
        return self.net(z, logsnr, **cond)


@pytest.fixture(scope="module")
def class_net():
    torch.manual_seed(0)
    net = UNet3D(named_size("tiny", num_classes=3)).eval()
    with torch.no_grad():
        for p in net.parameters():  # zero-initialised layers: make outputs and conditioning matter
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.1)
    return net


def test_cfg_weight_zero_is_the_conditional_denoiser_exactly(class_net):
    den = Denoiser(class_net, "eps")
    z, lam, cls = torch.randn(2, 1, 3, 16, 16), torch.tensor([0.5, -1.0]), torch.tensor([0, 2])
    with torch.no_grad():
        assert torch.equal(ClassifierFreeGuidance(den, 0.0)(z, lam, cls=cls), den(z, lam, cls=cls))


def test_cfg_one_batched_call_and_formula(class_net):
    counting = _Counting(class_net)
    den = Denoiser(counting, "eps")
    z, lam, cls = torch.randn(2, 1, 3, 16, 16), torch.tensor([0.5, -1.0]), torch.tensor([0, 2])
    w = 2.0
    with torch.no_grad():
        guided = ClassifierFreeGuidance(den, w)(z, lam, cls=cls)
        assert counting.calls == 1 and counting.batches == [4]
        keep = torch.ones(2, dtype=torch.bool)
        eps_c = den.eps(z, lam, cls=cls, cond_keep=keep)
        eps_u = den.eps(z, lam, cls=cls, cond_keep=~keep)
    eps_tilde = (1 + w) * eps_c - w * eps_u  # paper §1
    alpha, sigma = torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
    expect = (z - sigma[:, None, None, None, None] * eps_tilde) / alpha[:, None, None, None, None]
    torch.testing.assert_close(guided, expect, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(eps_c, eps_u)  # the null branch really differs


# ---------------------------------------------------------------------------------------------
# Super-resolution
# ---------------------------------------------------------------------------------------------
def test_downsample_consistency():
    y = torch.randn(2, 3, 4, 8, 8, dtype=torch.float64)
    up = y.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)  # nearest upsampling ×2
    torch.testing.assert_close(downsample(up, 2), y, rtol=0, atol=1e-12)  # bilinear ×½ = 2×2 mean
    frames = up.transpose(1, 2).reshape(8, 3, 16, 16)
    ref = F.avg_pool2d(frames, 2).reshape(2, 4, 3, 8, 8).transpose(1, 2)
    torch.testing.assert_close(downsample(up, 2), ref)
    assert downsample(up, 4, antialias=True).shape == (2, 3, 4, 4, 4)
    x = torch.randn(1, 1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: downsample(v, 2), (x,))
    with pytest.raises(ValueError, match="not divisible"):
        downsample(torch.zeros(1, 1, 1, 6, 6), 4)


def test_superres_guidance_on_gaussian_matches_low_res():
    """High-res Gaussian prior over [1, 2, 4, 4]; conditioned samples must downsample to x^a."""
    from vdm.sampling.config import SampleConfig
    from vdm.sampling.seeds import StackedGenerator
    from vdm.sampling.tasks import superres

    T, H = 2, 4
    cov = ar1_video_covariance(T, H * H, 0.8, 0.7, 0.5)
    den = GaussianDenoiser(torch.zeros(T * H * H, dtype=torch.float64), cov, (1, T, H, H))
    x_true = den.sample(16, torch.Generator().manual_seed(0))  # [16, 1, 2, 4, 4]
    x_low = downsample(x_true, 2)
    cfg = SampleConfig(steps=64, gamma=1.0, w_r=1.0)
    gen = StackedGenerator(range(16))
    x = superres(cfg, den, x_low, 2, CosineSchedule(), gen, dtype=torch.float64)
    assert x.shape == x_true.shape
    err = (downsample(x, 2) - x_low).pow(2).mean().sqrt()
    prior = (downsample(den.sample(16, torch.Generator().manual_seed(1)), 2) - x_low).pow(2).mean().sqrt()
    assert err < 0.3 * prior, (float(err), float(prior))
    x4 = superres(SampleConfig(steps=64, gamma=1.0, w_r=4.0), den, x_low, 2, CosineSchedule(),
                  StackedGenerator(range(16)), dtype=torch.float64)
    assert (downsample(x4, 2) - x_low).pow(2).mean().sqrt() < err  # a larger w_r pulls closer
    with pytest.raises(ValueError, match="reconstruction"):
        superres(SampleConfig(cond_method="replacement"), den, x_low, 2, CosineSchedule(), gen)


def test_superres_in_blocks_follows_low_res_and_continues_each_block():
    """sample.superres_block: a 6-frame video super-resolved by a 3-frame prior in blocks (overlap 1).
    Every frame must downsample to x^a, and a block must continue the high-resolution frames before it:
    across a block boundary the frames differ less than when the blocks are super-resolved independently."""
    from vdm.sampling.config import SampleConfig
    from vdm.sampling.seeds import StackedGenerator
    from vdm.sampling.tasks import num_superres_blocks, superres

    H, N = 4, 64

    def prior(frames):
        cov = ar1_video_covariance(frames, H * H, 0.95, 0.7, 0.5)
        return GaussianDenoiser(torch.zeros(frames * H * H, dtype=torch.float64), cov, (1, frames, H, H))

    den3, den6 = prior(3), prior(6)
    x_true = den6.sample(N, torch.Generator().manual_seed(0))  # [N, 1, 6, 4, 4]
    x_low = downsample(x_true, 2)  # [N, 1, 6, 2, 2]
    cfg = SampleConfig(steps=64, gamma=1.0, w_r=4.0, superres_block=3, overlap=1)
    calls = []

    def den(z, logsnr, **kw):
        calls.append(z.shape[2])
        return den3(z, logsnr, **kw)

    ticks = []
    x = superres(cfg, den, x_low, 2, CosineSchedule(), StackedGenerator(range(N)), dtype=torch.float64,
                 progress=ticks.append)
    assert x.shape == x_true.shape and set(calls) == {3}  # the 3-frame model only ever sees 3 frames
    assert len(ticks) == num_superres_blocks(6, 3, 1) == 3  # blocks [0, 3), [2, 5), [3, 6)
    err = (downsample(x, 2) - x_low).pow(2).mean().sqrt()
    prior_err = (downsample(den6.sample(N, torch.Generator().manual_seed(1)), 2) - x_low).pow(2).mean().sqrt()
    assert err < 0.3 * prior_err, (float(err), float(prior_err))
    one = SampleConfig(steps=64, gamma=1.0, w_r=4.0)  # superres_block 0: each half in one independent run
    halves = [superres(one, den3, x_low[:, :, a:a + 3], 2, CosineSchedule(), StackedGenerator(range(N)),
                       dtype=torch.float64) for a in (0, 3)]
    x_indep = torch.cat(halves, dim=2)

    def boundary(v):  # mean squared change from frame 2 to frame 3
        return (v[:, :, 3] - v[:, :, 2]).pow(2).mean()

    assert boundary(x) < 0.75 * boundary(x_indep), (float(boundary(x)), float(boundary(x_indep)))
    assert num_superres_blocks(6, 0, 1) == num_superres_blocks(6, 6, 2) == 1
    with pytest.raises(ValueError, match="overlap"):
        superres(SampleConfig(superres_block=3, overlap=3), den3, x_low, 2, CosineSchedule(),
                 StackedGenerator(range(N)), dtype=torch.float64)
