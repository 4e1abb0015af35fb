"""Training you can watch: fixed-seed sample grids of the EMA model, TensorBoard event files, and
exports at chosen steps (for FVD along training).

Every ``train.sample_every`` steps (and at the end) the EMA model samples ``train.sample_grid`` videos
with the same seeds every time (sample i: seed i; class-conditional models: class i mod num_classes;
text models: the null caption), ancestral sampler with ``train.sample_steps`` steps and x̂ clipping for
ε-models. The grid is written to ``<workdir>/samples/step-<N>.gif`` (the videos) and ``.png`` (rows:
videos, columns: frames), and to TensorBoard. Sampling uses its own generators and a separate copy of
the network, so it changes nothing in training (an exact resume stays exact).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vdm.config import ExperimentConfig
from vdm.diffusion import CosineSchedule
from vdm.sampling import tasks
from vdm.sampling.config import SampleConfig
from vdm.sampling.generate import to_uint8
from vdm.sampling.gif import video_grid, write_gif_grid
from vdm.sampling.seeds import StackedGenerator
from vdm.utils.io import atomic_path

log = logging.getLogger(__name__)


def frame_strip(videos: np.ndarray, pad: int = 1) -> np.ndarray:
    """uint8 [N, T, H, W, C] -> one image uint8 [N·(H+pad)+pad, T·(W+pad)+pad, C]: row i = video i's frames
    (the GIF grid's layout with every frame as a one-frame video, T per row)."""

    N, T, H, W, C = videos.shape
    return video_grid(videos.reshape(N * T, 1, H, W, C), ncols=T, pad=pad)[0]


def write_png(path: str | Path, image: np.ndarray, scale: int = 1) -> None:
    from PIL import Image

    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image[..., 0] if image.shape[-1] == 1 else image)).save(tmp, format="PNG")


class SampleGrids:
    """Fixed-seed sample grids of the EMA weights (see the module docstring)."""

    def __init__(self, cfg: ExperimentConfig, model: nn.Module, folder: Path):
        self.cfg = cfg
        self.folder = folder
        self.net = copy.deepcopy(model).eval().requires_grad_(False)  # the EMA weights go here, not into training
        self.schedule = CosineSchedule.from_config(cfg.diffusion)
        self.sample_cfg = SampleConfig(sampler="ancestral", steps=cfg.train.sample_steps, gamma=0.1,
                                       clip_x=cfg.diffusion.prediction == "eps")

    @torch.no_grad()
    def sample(self, ema_shadow: dict[str, torch.Tensor]) -> np.ndarray:
        """uint8 [N, T, H, W, C] from the EMA weights, the same seeds every call."""

        self.net.load_state_dict(ema_shadow)  # by name; copied into the network's dtype
        m, d = self.cfg.model, self.cfg.data
        N = self.cfg.train.sample_grid
        device = next(self.net.parameters()).device
        extra: dict[str, Any] = {}
        if m.num_classes > 0:
            extra["cls"] = torch.arange(N, device=device) % m.num_classes  # [N]
        den = tasks.make_denoiser(self.net, self.cfg.diffusion.prediction, self.sample_cfg, device)
        x = tasks.sample_block(self.sample_cfg, den, (N, m.in_channels, d.frames, m.image_size, m.image_size),
                               self.schedule, StackedGenerator(list(range(N)), device), extra_args=extra)
        return to_uint8(x)  # [N, T, H, W, C]

    def write(self, step: int, ema_shadow: dict[str, torch.Tensor], tb: Any = None) -> Path:
        videos = self.sample(ema_shadow)
        self.folder.mkdir(parents=True, exist_ok=True)
        gif = self.folder / f"step-{step:09d}.gif"
        write_gif_grid(gif, videos, fps=8.0, ncols=min(len(videos), 8))
        strip = frame_strip(videos)  # [rows, cols, C]
        write_png(gif.with_suffix(".png"), strip, scale=max(1, 96 // videos.shape[2]))
        if tb is not None:
            tb.add_image("samples/frames", strip, step, dataformats="HWC")
        log.info("step %d: sample grid %s", step, gif)
        return gif


class Board:
    """TensorBoard event files in ``<workdir>/tb`` (rank 0); a resumed run drops events after its step."""

    def __init__(self, folder: Path, resumed_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder), purge_step=resumed_step if resumed_step > 0 else None)

    def scalars(self, step: int, **values: float) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
