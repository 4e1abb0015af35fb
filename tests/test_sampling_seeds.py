"""Per-sample seeds: sample i depends only on (network, settings, seed i), not on the batch size."""

from __future__ import annotations

import pytest
import torch

from vdm.diffusion import CosineSchedule, Denoiser
from vdm.model import UNet3D, named_size
from vdm.sampling import tasks
from vdm.sampling.config import SampleConfig
from vdm.sampling.seeds import StackedGenerator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    net = UNet3D(named_size("tiny")).eval().requires_grad_(False)
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.1)
    return net


def test_stacked_generator_rows_depend_on_own_seed_only():
    a = StackedGenerator([3, 4, 5]).randn((3, 2, 5))
    b = torch.cat([StackedGenerator([3]).randn((1, 2, 5)), StackedGenerator([4, 5]).randn((2, 2, 5))])
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    with pytest.raises(ValueError, match="does not match"):
        StackedGenerator([1, 2]).randn((3, 4))


def _sample(cfg, net, seeds, batch, fn):
    out = []
    for i in range(0, len(seeds), batch):
        gen = StackedGenerator(seeds[i : i + batch])
        out.append(fn(cfg, Denoiser(net, "v"), gen))
    return torch.cat(out)


@pytest.mark.parametrize("task", ["unconditional", "prediction_reconstruction", "langevin_replacement"])
def test_batch_size_invariance(net, task):
    seeds = [11, 12, 13]
    schedule = CosineSchedule()
    cond = torch.rand(3, 1, 1, 16, 16) * 2 - 1

    if task == "unconditional":
        cfg = SampleConfig(steps=3, gamma=0.3)

        def fn(cfg, den, gen):
            return tasks.sample_block(cfg, den, (len(gen), 1, 3, 16, 16), schedule, gen)
    else:
        method = "reconstruction" if "reconstruction" in task else "replacement"
        sampler = "langevin" if "langevin" in task else "ancestral"
        cfg = SampleConfig(steps=3, gamma=0.0, sampler=sampler, cond_method=method, w_r=2.0)

        def fn(cfg, den, gen):
            lo = seeds.index(gen.seeds[0])
            return tasks.predict(cfg, den, cond[lo : lo + len(gen)], 3, schedule, gen)

    full = _sample(cfg, net, seeds, 3, fn)
    split = _sample(cfg, net, seeds, 1, fn)
    torch.testing.assert_close(full, split, rtol=1e-5, atol=1e-5)
    assert (full[0] - full[1]).abs().max() > 1e-3  # different seeds give different videos
    other = _sample(cfg, net, [11, 99, 13], 3, fn)
    torch.testing.assert_close(other[0], full[0], rtol=1e-5, atol=1e-5)
    assert (other[1] - full[1]).abs().max() > 1e-3
