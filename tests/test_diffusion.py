"""Diffusion math (paper §1): schedule, forward process, parameterizations, loss."""

import math

import pytest
import torch

from vdm.diffusion import (
    CosineSchedule,
    Denoiser,
    alpha_sigma,
    diffusion_loss,
    eps_from_v,
    eps_from_x,
    logsnr_cosine,
    q_sample,
    sample_t,
    t_from_logsnr_cosine,
    v_from_x,
    v_from_x_eps,
    x_from_eps,
    x_from_v,
)


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_alpha_sigma_variance_preserving():
    lam = torch.linspace(-20, 20, 101)
    alpha, sigma = alpha_sigma(lam)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(lam), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.log(alpha**2 / sigma**2), lam, rtol=0, atol=1e-6)


@pytest.mark.parametrize("lmin,lmax", [(-20.0, 20.0), (-15.0, 10.0)])
def test_cosine_schedule_endpoints_and_monotone(lmin, lmax):
    t = torch.linspace(0, 1, 1001)
    lam = logsnr_cosine(t, lmin, lmax)
    assert lam[0].item() == pytest.approx(lmax, abs=1e-6)
    assert lam[-1].item() == pytest.approx(lmin, abs=1e-6)
    assert bool((lam[1:] < lam[:-1]).all()), "log-SNR must decrease with t"
    assert bool((lam >= lmin).all() and (lam <= lmax).all())
    torch.testing.assert_close(t_from_logsnr_cosine(lam, lmin, lmax), t, rtol=0, atol=1e-9)


def test_cosine_schedule_matches_reference_formula():
    # λ(t) = −2 log tan(a t + b), b = arctan(e^{−λmax/2}), a = arctan(e^{−λmin/2}) − b
    b = math.atan(math.exp(-10.0))
    a = math.atan(math.exp(10.0)) - b
    for t in (0.1, 0.5, 0.9):
        expected = -2 * math.log(math.tan(a * t + b))
        assert CosineSchedule()(torch.tensor(t)).item() == pytest.approx(expected, rel=1e-12)
    # t = 0.5 of the symmetric schedule is λ = 0 (α = σ)
    assert abs(CosineSchedule()(torch.tensor(0.5)).item()) < 1e-9


@pytest.mark.parametrize("shape", [(3, 2, 5, 4, 4), (3, 2, 4, 4)])
def test_parameterizations_round_trip(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    eps = torch.randn(shape, generator=g)
    lam = torch.tensor([-7.0, 0.3, 9.0])
    z = q_sample(x, lam, eps)
    alpha, sigma = alpha_sigma(lam)
    view = (-1, *[1] * (len(shape) - 1))
    torch.testing.assert_close(z, alpha.view(view) * x + sigma.view(view) * eps)
    torch.testing.assert_close(x_from_eps(z, eps, lam), x)
    torch.testing.assert_close(eps_from_x(z, x, lam), eps)
    v = v_from_x_eps(x, eps, lam)
    torch.testing.assert_close(x_from_v(z, v, lam), x)
    torch.testing.assert_close(eps_from_v(z, v, lam), eps)
    torch.testing.assert_close(v_from_x(z, x, lam), v)


class _Oracle(torch.nn.Module):
    """Returns the exact ε, v or x target for a known (x, ε)."""

    def __init__(self, x, eps, prediction):
        super().__init__()
        self.x, self.eps, self.prediction = x, eps, prediction
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, z_t, logsnr_t, **cond):
        if self.prediction == "eps":
            return self.eps + self.w
        if self.prediction == "v":
            return v_from_x_eps(self.x, self.eps, logsnr_t) + self.w
        return self.x + self.w


@pytest.mark.parametrize("prediction", ["eps", "v", "x"])
def test_denoiser_recovers_x_for_every_parameterization(prediction):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 3, 4, 4, generator=g)
    eps = torch.randn(x.shape, generator=g)
    lam = torch.tensor([-3.0, 4.0])
    z = q_sample(x, lam, eps)
    den = Denoiser(_Oracle(x, eps, prediction), prediction)
    torch.testing.assert_close(den(z, lam), x)
    torch.testing.assert_close(den.eps(z, lam), eps)


@pytest.mark.parametrize("prediction", ["eps", "v", "x"])
def test_loss_zero_for_exact_prediction_and_positive_otherwise(prediction):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 1, 3, 4, 4, generator=g)
    eps = torch.randn(x.shape, generator=g)
    t = torch.rand(4, generator=g)
    net = _Oracle(x, eps, prediction)
    loss = diffusion_loss(net, x, CosineSchedule(), prediction=prediction, t=t, eps=eps)
    assert loss.shape == (4,)
    assert float(loss.detach().abs().max()) < 1e-20
    with torch.no_grad():
        net.w.fill_(0.5)
    loss = diffusion_loss(net, x, CosineSchedule(), prediction=prediction, t=t, eps=eps)
    torch.testing.assert_close(loss, torch.full((4,), 0.25))


def test_loss_frame_weight_excludes_frames():
    x = torch.zeros(2, 1, 4, 2, 2)
    eps = torch.zeros_like(x)

    def net(z_t, logsnr_t):  # error 1 on frame 3 only
        out = torch.zeros_like(z_t)
        out[:, :, 3] = 1.0
        return out

    w = torch.ones(2, 4)
    w[0, 3] = 0.0
    loss = diffusion_loss(net, x, CosineSchedule(), t=torch.rand(2), eps=eps, frame_weight=w)
    torch.testing.assert_close(loss, torch.tensor([0.0, 0.25]))


def test_low_discrepancy_t_is_stratified():
    g = torch.Generator().manual_seed(3)
    t = sample_t(8, g, low_discrepancy=True)
    bins = torch.floor(torch.sort(t).values * 8)
    assert bins.tolist() == list(range(8))
    assert sample_t(5, g).shape == (5,)
