"""Continuous-time diffusion math (paper §1): pure tensor functions for images and videos alike."""

from vdm.diffusion.denoiser import Denoiser, x_from_output
from vdm.diffusion.loss import diffusion_loss, sample_t
from vdm.diffusion.process import (
    eps_from_v,
    eps_from_x,
    q_sample,
    v_from_x,
    v_from_x_eps,
    x_from_eps,
    x_from_v,
)
from vdm.diffusion.schedule import CosineSchedule, alpha_sigma, append_dims, logsnr_cosine, t_from_logsnr_cosine

__all__ = [
    "CosineSchedule", "Denoiser", "alpha_sigma", "append_dims", "diffusion_loss", "eps_from_v", "eps_from_x",
    "logsnr_cosine", "q_sample", "sample_t", "t_from_logsnr_cosine", "v_from_x", "v_from_x_eps", "x_from_eps",
    "x_from_output", "x_from_v",
]
