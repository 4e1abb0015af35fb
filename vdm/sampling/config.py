"""Sampling settings (paper §1, §4, Appendix A).

Every field the paper is silent on is named here with the choice we made and why.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from vdm.config_base import ConfigError
from vdm.utils.precision import Precision

# Tasks whose samples condition on real clips, so that sample.samples_per_clip draws can share one.
CLIP_TASKS = ("prediction", "extension")


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    # ---- sampler (paper §1) ------------------------------------------------------------------
    # "ancestral": the paper's ancestral sampler; "langevin": the predictor-corrector sampler
    # (each ancestral step followed by `corrector_steps` Langevin correction steps).
    sampler: Literal["ancestral", "langevin"] = "ancestral"
    steps: int = 256  # ancestral steps on a uniform t grid from 1 to 0 (paper: 256; Kinetics 128)
    gamma: float = 0.1  # log-variance interpolation γ (paper: UCF 0.1, BAIR/Kinetics 0.0, text 0.3)
    langevin_delta: float = 0.1  # Langevin step size δ (dimensionless, scaled by σ_s²); paper: 0.1
    corrector_steps: int = 1  # Langevin corrections after each ancestral step (paper: 1); "langevin" only
    # What the last step (t = 1/steps → 0) returns. Paper silent. "x_hat": the denoiser's x̂ at
    # t = 1/steps, no noise added (as in the authors' reference sampler code); "z_0": the ancestral
    # update to t = 0 (λ = logsnr_max), including its noise term.
    final_step: Literal["x_hat", "z_0"] = "x_hat"
    # Clamp the guided x̃ to [−1, 1] at every step, after all guidance (paper silent; the authors'
    # reference sampler clips x̂). ε-prediction needs it: x̂ = (z − σ ε̂)/α multiplies errors of ε̂ by
    # σ/α ≈ 2·10^4 at λ = −20, so early steps saturate whole frames without it.
    clip_x: bool = False
    # ---- classifier-free guidance (paper §1) -------------------------------------------------
    # ε̃ = (1 + w) ε(z, c) − w ε(z, ∅). w = 0: no guidance (one network call per step).
    # lucidrains' `cond_scale` equals 1 + w. Paper's Table 5 values: 1, 2, 5 (convention UNCONFIRMED).
    guidance_weight: float = 0.0
    # ---- how many, in which batches, with which seeds ---------------------------------------------
    num_samples: int = 16  # videos to generate
    batch_size: int = 8  # videos per sampler call (results do not depend on it: per-sample seeds)
    seed: int = 0  # sample i uses seed `seed + i` (one torch.Generator per sample)
    # Samples per chunk of a sample set: each chunk is its own job and file (a rerun redoes only missing
    # chunks), gathered into one set; 0 = one chunk. A multiple of batch_size, so that every batch, and
    # hence every sample bit for bit, is the same for any chunk size.
    chunk_size: int = 0
    frames: int = 0  # frames per sampled block (0: data.frames, the training clip length)
    # ---- numerics ----------------------------------------------------------------------------------
    # The network's precision (paper silent): "bf16" = bf16 autocast of the network only (the sampler's
    # arithmetic, x̂, guidance combinations and reconstruction-guidance gradients w.r.t. z stay float32);
    # "auto" = bf16 on CUDA, fp32 on CPU; "bf16_if_native" = bf16 on CUDA and on CPUs with AMX / AVX512-BF16,
    # fp32 where bf16 is emulated (vdm/utils/precision.py).
    precision: Precision = "auto"
    # TF32 tensor-core matmuls/convolutions for the float32 work on CUDA (Ampere or newer; no effect on CPU).
    tf32: bool = True
    # ---- task (paper §4) -----------------------------------------------------------------------
    # unconditional; prediction (condition on the first `cond_frames` frames of real test clips);
    # extension (block-autoregressive, to `total_frames`); superres (x^a = low-resolution video).
    task: Literal["unconditional", "prediction", "extension", "superres"] = "unconditional"
    cond_frames: int = 1  # k conditioning frames for prediction (paper: BAIR 1, Kinetics 5); for
    #                       extension, k > 0 starts the first block from k real frames, 0 samples it
    cond_method: Literal["replacement", "reconstruction"] = "reconstruction"  # paper §4
    w_r: float = 1.0  # reconstruction-guidance weight (paper: BAIR 50, Kinetics 9; text UNCONFIRMED)
    total_frames: int = 64  # extension: frames of the final video (paper Table 6: 64)
    # extension: frames of the previous block used as x^a for the next one (paper silent, UNCONFIRMED);
    # each new block adds `frames − overlap` frames.
    overlap: int = 8
    superres_factor: int = 2  # superres: high-res side / low-res side (paper Fig. 2: 128/64 = 2)
    # superres: the differentiable downsampling x̂^a = D(x̂) ("such as bilinear interpolation").
    # antialias False = plain bilinear (for factor 2: the mean of each 2×2 block); True = PyTorch's
    # antialiased bilinear (triangle filter widened by the factor; better for factor ≥ 4).
    superres_antialias: bool = False
    # superres: frames super-resolved per sampler run (paper silent, UNCONFIRMED; Fig. 2 makes 64 frames
    # at 128x128 with a 9-frame model). 0 = the whole low-resolution video in one run; k > 0 = blocks of
    # k frames (the high-resolution model's clip length), each guided by its low-resolution frames and by
    # the last `overlap` high-resolution frames already made (reconstruction guidance on both).
    superres_block: int = 0
    # ---- where conditioning videos come from ---------------------------------------------------------
    cond_npz: str = ""  # "" = real clips (eval_clips); else a samples .npz whose `videos` are x^a (cascades)
    cond_split: str = "test"  # split of the real clips used as conditioning
    # Samples drawn per conditioning clip (prediction, extension from real frames; other tasks ignore it):
    # sample i conditions on clip i // samples_per_clip, so the set holds num_samples / samples_per_clip clips
    # with k draws each (the PSNR / SSIM best-of-k of the video-prediction literature; Moving MNIST papers
    # report best-of-100). With k > 1 the set's other metrics read each clip's first draw only (independent
    # samples, as with k = 1).
    samples_per_clip: int = 1
    clips_seed: int = -1  # eval_clips seed (protocol-fixed clips); −1: the experiment's root seed
    # ---- class / text conditioning --------------------------------------------------------------
    # Labels of class-conditional models: "eval" = the conditioning clips' labels (prediction);
    # "round_robin" = sample i gets class i mod num_classes; "uniform" = drawn from sample i's seed.
    class_labels: Literal["eval", "round_robin", "uniform"] = "round_robin"
    prompts: tuple[str, ...] = ()  # captions for text models, used round-robin; () = the clips' captions
    text_encoder: str = ""  # "" = the export's meta["text_encoder"], else "minilm"; HF name or path
    # ---- output --------------------------------------------------------------------------------
    gif_max_videos: int = 16  # videos shown in the GIF grid
    gif_fps: float = 8.0  # frames per second of the GIF grid

    def validate(self) -> None:
        checks = [
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}"),
            (self.langevin_delta > 0.0, f"langevin_delta must be > 0, got {self.langevin_delta}"),
            (self.corrector_steps >= 0, f"corrector_steps must be >= 0, got {self.corrector_steps}"),
            (self.guidance_weight >= 0.0, f"guidance_weight must be >= 0, got {self.guidance_weight}"),
            (self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.batch_size < 1 or (self.chunk_size >= 0 and self.chunk_size % self.batch_size == 0),
             f"chunk_size must be 0 (one chunk) or a multiple of batch_size {self.batch_size}, got {self.chunk_size}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (self.frames >= 0, f"frames must be >= 0, got {self.frames}"),
            (self.samples_per_clip >= 1 and self.num_samples % self.samples_per_clip == 0,
             f"samples_per_clip must be >= 1 and divide num_samples {self.num_samples}, got {self.samples_per_clip}"),
            (self.cond_frames >= 0, f"cond_frames must be >= 0, got {self.cond_frames}"),
            (self.w_r >= 0.0, f"w_r must be >= 0, got {self.w_r}"),
            (self.total_frames >= 1, f"total_frames must be >= 1, got {self.total_frames}"),
            (self.overlap >= 1, f"overlap must be >= 1, got {self.overlap}"),
            (self.superres_factor >= 1, f"superres_factor must be >= 1, got {self.superres_factor}"),
            (self.superres_block >= 0, f"superres_block must be >= 0, got {self.superres_block}"),
            (self.gif_max_videos >= 0, f"gif_max_videos must be >= 0, got {self.gif_max_videos}"),
            (self.gif_fps > 0, f"gif_fps must be > 0, got {self.gif_fps}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        if self.task == "prediction" and self.cond_frames < 1:
            raise ConfigError("task prediction needs cond_frames >= 1")


def num_chunks(sc: SampleConfig) -> int:
    """Chunks of the sample set (``sample.chunk_size``; 0 = one)."""
    return 1 if sc.chunk_size == 0 else -(-sc.num_samples // sc.chunk_size)


def chunk_range(sc: SampleConfig, chunk: int) -> tuple[int, int]:
    """Sample indices [lo, hi) of chunk ``chunk``."""
    n = num_chunks(sc)
    if not 0 <= chunk < n:
        raise ConfigError(f"chunk {chunk} out of range: the sample set has {n} chunk(s) "
                          f"(num_samples {sc.num_samples}, chunk_size {sc.chunk_size})")
    if sc.chunk_size == 0:
        return 0, sc.num_samples
    return chunk * sc.chunk_size, min(sc.num_samples, (chunk + 1) * sc.chunk_size)
