"""The training options for the CPU-scale pilots, each against its math: min-SNR-γ and sigmoid loss weightings
(vdm/diffusion/weighting.py) and EDM2's power-function EMA (vdm/train/ema.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vdm.config import ConfigError, ExperimentConfig
from vdm.diffusion.schedule import CosineSchedule
from vdm.diffusion.weighting import loss_weight, sigmoid_normaliser, space_factor
from vdm.train.ema import EMA, power_exponent, power_std

SCHEDULE = CosineSchedule()


def test_min_snr_is_min_snr_gamma_in_x_space_for_every_target():
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    snr = torch.exp(SCHEDULE(t))
    for prediction in ("eps", "v", "x"):
        w = loss_weight("min_snr", prediction, t, SCHEDULE, gamma=5.0)
        x_space = w * space_factor(prediction, SCHEDULE(t))  # the weight on ||x_hat - x||^2
        assert torch.allclose(x_space, torch.clamp(snr, max=5.0), rtol=1e-10)
    eps = loss_weight("min_snr", "eps", t, SCHEDULE, gamma=5.0)
    assert torch.all(eps <= 1.0) and torch.allclose(eps[snr < 5], torch.ones_like(eps[snr < 5]))
    assert torch.equal(loss_weight("none", "v", t, SCHEDULE), torch.ones_like(t))


def test_dlogsnr_dt_is_the_derivative_of_the_schedule():
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(SCHEDULE(t).sum(), t)
    assert torch.allclose(SCHEDULE.dlogsnr_dt(t.detach()), grad, rtol=1e-9)


def test_sigmoid_weighting_integrates_sigmoid_over_lambda():
    """E_t[factor(t) err(λ(t))] for t ~ U[0,1] equals ∫ sigmoid(b − λ) err(λ) dλ / Z: the weighting is over λ."""
    bias = -2.0
    t = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000  # midpoint rule over t
    lam = SCHEDULE(t)
    err = torch.exp(-0.5 * ((lam - 1.0) / 3.0) ** 2)  # any smooth function of λ; ε-space errors
    over_t = float((loss_weight("sigmoid", "eps", t, SCHEDULE, bias=bias) * err).mean())
    grid = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    f = torch.sigmoid(bias - grid) * torch.exp(-0.5 * ((grid - 1.0) / 3.0) ** 2)
    over_lambda = float(torch.trapezoid(f, grid)) / sigmoid_normaliser(bias, -20.0, 20.0)
    assert over_t == pytest.approx(over_lambda, rel=2e-3)
    ones = float(loss_weight("sigmoid", "eps", t, SCHEDULE, bias=bias).mean())
    assert ones == pytest.approx(1.0, rel=2e-3)  # normalised: averages 1 over t
    z = sigmoid_normaliser(bias, -20.0, 20.0)
    assert z == pytest.approx(float(torch.trapezoid(torch.sigmoid(bias - grid), grid)), rel=1e-6)
    v = loss_weight("sigmoid", "v", t[:5], SCHEDULE, bias=bias)  # the same x-space weight in v-space
    e = loss_weight("sigmoid", "eps", t[:5], SCHEDULE, bias=bias)
    assert torch.allclose(v * space_factor("v", lam[:5]), e * space_factor("eps", lam[:5]))


def test_power_ema_profile_and_sigma_rel():
    assert power_exponent(0.10) == pytest.approx(6.94, abs=0.01)  # EDM2: σ_rel 0.10 <-> γ 6.94
    for std in (0.05, 0.10, 0.2):
        assert power_std(power_exponent(std)) == pytest.approx(std, rel=1e-9)
    net = nn.Linear(1, 1, bias=False)
    ema = EMA(net, 0.999, std=0.10)
    gamma, steps = ema.gamma, 400
    for tau in range(1, steps + 1):  # θ_τ = τ
        with torch.no_grad():
            net.weight.fill_(float(tau))
        ema.update(net)
    # exact discrete weights: (1 − β_τ) Π_{s>τ} β_s = (1 − β_τ) (τ / T)^(γ+1), summing to 1
    taus = np.arange(1, steps + 1, dtype=np.float64)
    beta = (1 - 1 / taus) ** (gamma + 1)
    weights = (1 - beta) * (taus / steps) ** (gamma + 1)
    assert weights.sum() == pytest.approx(1.0, rel=1e-9)
    assert float(ema.shadow["weight"]) == pytest.approx(float((weights * taus).sum()), rel=1e-5)
    # ≈ the average weighted ∝ τ^γ (EDM2's profile), and its relative width σ_rel
    profile = taus**gamma / (taus**gamma).sum()
    assert float(ema.shadow["weight"]) == pytest.approx(float((profile * taus).sum()), rel=0.01)
    mean = (weights * taus / steps).sum()
    assert math.sqrt((weights * (taus / steps - mean) ** 2).sum()) == pytest.approx(0.10, rel=0.02)
    with pytest.raises(ValueError, match="profile std"):
        EMA(net, 0.999).load_state_dict(ema.state_dict())


@pytest.mark.parametrize("section,key,value,match", [
    ("train", "ema_std", 0.5, "ema_std"), ("train", "lr", float("nan"), "lr must be > 0, got nan"),
    ("train", "lr", float("inf"), "lr must be finite"),
    ("diffusion", "min_snr_gamma", 0.0, "min_snr_gamma"), ("diffusion", "loss_weighting", "snr", "loss_weighting"),
])
def test_bad_values_are_refused(section, key, value, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        ExperimentConfig.from_dict({section: {key: value}})


@pytest.mark.usefixtures("one_thread")
def test_the_trainer_weights_each_example(tmp_path):
    """The trainer's per-example loss under min_snr is the plain one times the weight at the example's t."""
    from conftest import ArrayLoader, tiny_config_dict

    from vdm.train.loop import Trainer
    from vdm.train.seeds import draw_noise

    def micro(weighting: str, where: str) -> torch.Tensor:
        cfg = ExperimentConfig.from_dict(tiny_config_dict(diffusion={"loss_weighting": weighting, "prediction": "v"}))
        tr = Trainer(cfg, tmp_path / where, None, make_loader=ArrayLoader)
        batch = next(iter(ArrayLoader(cfg, batch_size=cfg.train.batch_size, seed=0, rank=0, world_size=1)))
        with torch.no_grad():
            return tr._micro_loss(batch, 0), tr, batch

    plain, tr, batch = micro("none", "a")
    weighted, _, _ = micro("min_snr", "b")
    t, _, _ = draw_noise(tr.cfg.seed, 0, 0, tr.tc.batch_size, tuple(batch["video"].shape), tr.device,
                         low_discrepancy=False)
    w = loss_weight("min_snr", "v", t, SCHEDULE, gamma=5.0)
    assert torch.allclose(weighted, plain * w.to(plain), rtol=1e-5) and not torch.allclose(weighted, plain)
