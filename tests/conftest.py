"""Shared fixtures: tiny Moving-MNIST shards and configs, an in-memory loader, and SLURM availability.

SLURM tests are skipped with a visible reason when no SLURM controller answers, and FAIL instead when
``VDM_REQUIRE_SLURM=1`` (CI sets it after starting the local cluster with .ci/local-slurm/).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

# A training config small enough for seconds on 2 CPU cores: the tiny U-Net (16×16, 1 channel) on
# Moving MNIST clips of 4 frames + 2 appended image frames, class-conditional (CFG dropout active).
TINY_DATA = dict(source="moving_mnist", resolution=16, channels=1, frames=4, images_per_video=2, num_classes=100,
                 mnist_train_videos=32, mnist_test_videos=8, mnist_video_length=8, shard_size=16,
                 shuffle_buffer=8, image_pool=8)
TINY_TRAIN = dict(steps=8, batch_size=4, lr=1e-3, ema_decay=0.9, checkpoint_every=2, keep_checkpoints=2,
                  log_every=1, progress=False)


def tiny_config_dict(shards: str | Path = "unused", **sections: dict[str, Any]) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "tiny", "seed": 3,
        "data": dict(TINY_DATA, shards=str(shards)),
        "model": {"size": "tiny", "num_classes": 100, "dropout": 0.1},
        "diffusion": {"prediction": "v"},
        "train": dict(TINY_TRAIN),
        "launch": {"executor": "debug", "timeout_min": 10, "signal_delay_s": 30, "cpus_per_task": 1},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def tiny_unet_with_signal(out_scale: float, num_classes: int = 5):
    """The tiny U-Net (seed 0) in eval mode, its zero-initialised output layer filled with seeded normal
    values times ``out_scale``, so that an untrained network's output depends on its input."""
    from vdm.model import UNet3D, named_size

    torch.manual_seed(0)
    net = UNet3D(named_size("tiny", num_classes=num_classes))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.copy_(torch.randn(p.shape, generator=g) * out_scale)
    return net.eval()


@pytest.fixture
def one_thread():
    """Tiny models: one thread is faster than two fighting over a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def chunked_set_with_features(folder: Path, cfg_path: Path, videos, ranges: list[tuple[int, int]],
                              settings: dict[str, Any]) -> tuple[Path, list[str]]:
    """A sample set of ``videos`` written as chunks over ``ranges`` (with their chunk records), each chunk's
    `vdm evaluate --features-only` file, and the gathered set: (``folder``/samples.npz, [features files])."""
    import numpy as np

    from vdm.__main__ import main
    from vdm.artifacts.samples import gather_samples, write_samples

    chunks, feats = [], []
    for i, (lo, hi) in enumerate(ranges):
        p = folder / f"chunk{i}.npz"
        write_samples(p, {"seeds": np.arange(lo, hi), "videos": videos[lo:hi]},
                      {**settings, "chunk": {"index": i, "range": [lo, hi], "num_samples": len(videos)}})
        chunks.append(p)
        f = folder / f"feat{i}.npz"
        assert main(["evaluate", "--config", str(cfg_path), "--features-only", "--samples", str(p), "--out", str(f),
                     "--quiet"]) == 0
        feats.append(str(f))
    samples = folder / "samples.npz"
    gather_samples(samples, chunks)
    return samples, feats


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> Path:
    """Real webdataset shards of the tiny Moving-MNIST train split, written by ``vdm shard``."""
    root = tmp_path_factory.mktemp("shards")
    cfg = write_config(root / "shard.yaml", tiny_config_dict(root / "data"))
    r = subprocess.run([sys.executable, "-m", "vdm", "shard", "--config", str(cfg), "--split", "train"],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, f"vdm shard failed:\n{r.stdout}\n{r.stderr}"
    return root / "data"


# ------------------------------------------------------------------------------------------------
# In-memory loader with the VideoLoader interface (for unit tests that need exact control of the data).
# ------------------------------------------------------------------------------------------------
class ArrayLoader:
    """Deterministic synthetic stream of examples, example n drawn from seed + n. Position p is the
    p-th global micro-batch (b × world examples); rank r takes rows [r·b, (r+1)·b) of it. So 2 ranks
    with b = B/2, or 1 rank with 2 accumulated micro-batches of B/2, see exactly 1 rank's batch B."""

    def __init__(self, cfg, *, batch_size: int, seed: int, rank: int, world_size: int, num_workers: int = 0,
                 nan_at: int | None = None):
        self.cfg, self.b, self.seed, self.rank, self.world = cfg, batch_size, seed, rank, world_size
        self.position = 0
        self.nan_at = nan_at

    def state_dict(self) -> dict[str, int]:
        return {"epoch": 0, "position": self.position}

    def load_state_dict(self, d: dict[str, int]) -> None:
        self.position = int(d["position"])

    def __iter__(self):
        d = self.cfg.data
        T, K, B = d.frames, d.images_per_video, self.b * self.world
        while True:
            first = self.position * B + self.rank * self.b
            rows = []
            for n in range(first, first + self.b):
                g = torch.Generator().manual_seed(self.seed + n)
                video = torch.rand(d.channels, T + K, d.resolution, d.resolution, generator=g) * 2 - 1  # [C, T+K, H, W]
                rows.append((video, int(torch.randint(0, max(d.num_classes, 1), (), generator=g))))
            video = torch.stack([r[0] for r in rows])  # [b, C, T+K, H, W]
            cls = torch.tensor([r[1] for r in rows])  # [b]
            is_image = torch.zeros(self.b, T + K, dtype=torch.bool)  # [b, T+K]
            is_image[:, T:] = True
            if self.nan_at is not None and self.position == self.nan_at:
                video[0, 0, 0, 0, 0] = float("nan")
            self.position += 1
            yield {"video": video, "is_image": is_image, "cls": cls,
                   "key": [str(n) for n in range(first, first + self.b)]}


# ------------------------------------------------------------------------------------------------
# SLURM: skip (visible reason) or fail (VDM_REQUIRE_SLURM=1) when no controller answers.
# ------------------------------------------------------------------------------------------------
def _slurm_unreachable_reason() -> str | None:
    for tool in ("sbatch", "sinfo", "squeue", "scancel", "sacct"):
        if shutil.which(tool) is None:
            return f"no SLURM client ({tool} not on PATH)"
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s"
    states = r.stdout.split()
    if r.returncode != 0:
        return f"sinfo failed: {r.stderr.strip()[:200]}"
    if not any(s.rstrip("*~#") in ("idle", "mix", "alloc") for s in states):
        return f"no usable SLURM node (states: {states})"
    return None


@pytest.fixture(scope="session")
def slurm() -> None:
    check_slurm()


def check_slurm() -> None:
    """Return if SLURM answers; else skip with the reason, or fail under VDM_REQUIRE_SLURM=1."""
    reason = _slurm_unreachable_reason()
    if reason is None:
        return
    if os.environ.get("VDM_REQUIRE_SLURM") == "1":
        pytest.fail(f"VDM_REQUIRE_SLURM=1 but SLURM is not reachable: {reason}")
    pytest.skip(f"SLURM not reachable ({reason}); set up .ci/local-slurm/setup_local_slurm.sh or run on a cluster")


def load_final_state(workdir: Path) -> dict[str, Any]:
    from vdm.train.checkpoint import load_latest

    found = load_latest(Path(workdir) / "checkpoints")
    assert found is not None, f"no training state in {workdir}/checkpoints"
    return found[0]


def assert_states_identical(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Weights, EMA and optimizer state bit-identical."""
    assert a["step"] == b["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), f"model weight {k} differs"
    for k in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]), f"EMA weight {k} differs"
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for name in sa[i]:
            assert torch.equal(torch.as_tensor(sa[i][name]), torch.as_tensor(sb[i][name])), f"optimizer {i}.{name}"
