"""sample.clip_x: the guided x̃ is clipped once, after every guidance wrapper -- classifier-free guidance
combines and reconstruction guidance differentiates the raw x̂ (a clamp inside the denoiser zeroed
the reconstruction gradient wherever |x̂| > 1 and let guided outputs leave [-1, 1]); and an
ε-model trained briefly gives samples in range at few steps with clipping, saturated frames without."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_unet_with_signal

from vdm.diffusion import CosineSchedule, Denoiser
from vdm.diffusion.config import DiffusionConfig
from vdm.sampling import tasks
from vdm.sampling.config import SampleConfig
from vdm.sampling.guidance import ReconstructionGuidance
from vdm.sampling.seeds import StackedGenerator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net():
    return tiny_unet_with_signal(0.3)  # the zero-initialised output layer: give the untrained net a signal


def denoiser_given_to_the_sampler(monkeypatch, run) -> object:
    """The denoiser a task hands to the sampler (what every sampling step calls)."""
    got = {}

    def fake_sample(cfg, denoiser, z_1, grid, **kw):
        got["den"] = denoiser
        return z_1

    monkeypatch.setattr(tasks, "sample", fake_sample)
    run()
    return got["den"]


def test_classifier_free_guidance_is_clipped_after_combining(net, monkeypatch):
    cfg = SampleConfig(clip_x=True, guidance_weight=5.0, steps=2)
    shape, schedule = (2, 1, 3, 16, 16), CosineSchedule()
    den = denoiser_given_to_the_sampler(monkeypatch, lambda: tasks.sample_block(
        cfg, tasks.make_denoiser(net, "eps", cfg), shape, schedule, StackedGenerator([0, 1])))
    g = torch.Generator().manual_seed(1)
    z, lam, cls = torch.randn(shape, generator=g), torch.tensor([-4.0, -4.0]), torch.tensor([1, 3])
    with torch.no_grad():
        raw = Denoiser(net, "eps")
        x_c = raw(z, lam, cls=cls, cond_keep=torch.tensor([True, True]))
        x_u = raw(z, lam, cls=cls, cond_keep=torch.tensor([False, False]))
        guided = x_c + 5.0 * (x_c - x_u)
        out = den(z, lam, cls=cls)
        clamped_first = x_c.clamp(-1, 1) + 5.0 * (x_c.clamp(-1, 1) - x_u.clamp(-1, 1))  # the old order
    assert guided.abs().max() > 1 and clamped_first.abs().max() > 1.5  # the case matters
    # (one batched 2B call vs two B calls: float32 rounding, amplified by σ/α and 1 + w)
    torch.testing.assert_close(out, guided.clamp(-1, 1), atol=2e-3, rtol=0)
    assert out.abs().max() <= 1.0


def test_reconstruction_guidance_differentiates_the_raw_x_hat(net, monkeypatch):
    """At λ = -8 an ε-model's x̂ is far outside [-1, 1]; the reconstruction gradient must survive."""
    cfg = SampleConfig(clip_x=True, task="prediction", cond_method="reconstruction", w_r=8.0, cond_frames=2,
                       steps=2)
    schedule, seeds = CosineSchedule(), [4, 5]
    x_cond = torch.rand(2, 1, 2, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1  # [B, C, k, H, W]
    den = denoiser_given_to_the_sampler(monkeypatch, lambda: tasks.predict(
        cfg, tasks.make_denoiser(net, "eps", cfg), x_cond, 4, schedule, StackedGenerator(seeds)))
    z, lam = torch.randn(2, 1, 4, 16, 16, generator=torch.Generator().manual_seed(3)), torch.tensor([-8.0, -8.0])
    x_a = torch.zeros(2, 1, 4, 16, 16)
    x_a[:, :, :2] = x_cond
    mask = tasks.frame_mask(4, 2)

    def expected(inner):
        gen = StackedGenerator(seeds)
        gen.randn((2, 1, 4, 16, 16))  # the z_1 the task drew first, so the replacement noise agrees
        return ReconstructionGuidance(inner, x_a, w_r=8.0, mask=mask, noise=gen.randn_like)(z, lam)

    out = den(z, lam)
    raw_guided = expected(Denoiser(net, "eps"))
    torch.testing.assert_close(out, raw_guided.clamp(-1, 1))
    # what a clamp inside the denoiser gave: the gradient vanishes where |x̂| > 1, the correction collapses
    def x_hat_at_replaced_z(inner):
        gen = StackedGenerator(seeds)
        gen.randn((2, 1, 4, 16, 16))
        with torch.no_grad():
            z_rep = ReconstructionGuidance(inner, x_a, mask=mask, noise=gen.randn_like).replacement.replace(z, lam)
            return inner(z_rep, lam)

    clamped = lambda zz, ll, **kw: Denoiser(net, "eps")(zz, ll, **kw).clamp(-1, 1)  # noqa: E731
    correction = (raw_guided - x_hat_at_replaced_z(Denoiser(net, "eps")))[:, :, 2:].abs().mean()
    correction_clamped_inside = (expected(clamped) - x_hat_at_replaced_z(clamped))[:, :, 2:].abs().mean()
    print(f"reconstruction correction: raw x̂ {float(correction):.3g}, "
          f"clamped inside {float(correction_clamped_inside):.3g}")
    assert correction > 10 * correction_clamped_inside, (float(correction), float(correction_clamped_inside))


def test_briefly_trained_eps_model_stays_in_range_at_few_steps(tmp_path):
    """A tiny ε-model after a few dozen steps, 4 ancestral steps: without clipping whole frames
    saturate to 0 or 255; with clipping (the ε configs' setting) they do not."""
    from conftest import ArrayLoader, tiny_config_dict

    from vdm.artifacts.export import load_export
    from vdm.config import ExperimentConfig
    from vdm.train.loop import train

    cfg = ExperimentConfig.from_dict(tiny_config_dict(diffusion={"prediction": "eps"},
                                                      train={"steps": 40, "checkpoint_every": 40, "lr": 2e-3}))
    train(cfg, tmp_path, tmp_path / "export.pt", make_loader=ArrayLoader)
    export = load_export(tmp_path / "export.pt")

    def saturated(clip_x: bool) -> float:
        sc = SampleConfig(steps=4, clip_x=clip_x, guidance_weight=0.0)
        with torch.no_grad():
            x = tasks.sample_block(sc, tasks.make_denoiser(export.net, "eps", sc), (8, 1, 4, 16, 16),
                                   CosineSchedule.from_config(DiffusionConfig(prediction="eps")),
                                   StackedGenerator(list(range(8))), extra_args={"cls": torch.arange(8) % 5})
        return float((x.abs() >= 0.999).float().mean())  # fraction of pixels at 0 or 255

    off, on = saturated(False), saturated(True)
    print(f"saturated pixels: clip_x off {off:.3f}, on {on:.3f}")
    assert on < 0.5 * off


def test_eps_configs_sample_with_clipping():
    """Every shipped config of an ε-model samples with clip_x (the reference sampler's x̂ clipping)."""
    from pathlib import Path

    from vdm.config import load_config

    repo = Path(__file__).resolve().parents[1]
    eps = [p for p in sorted(repo.glob("config/**/*.yaml")) if load_config(p).diffusion.prediction == "eps"]
    # the ε-models among the shipped configs (the default and the pilots are v-prediction)
    assert {p.relative_to(repo / "config").as_posix() for p in eps} >= {"paper/text.yaml", "paper/ucf101.yaml",
                                                                           "test.yaml"}
    for path in eps:
        assert load_config(path).sample.clip_x, f"{path}: an ε-model sampled without clip_x"
