"""Training and launcher settings (paper Appendix A; options the paper is silent on are named).

Paper values per model are in ``vdm_facts.md`` §6: Adam(β1, β2), learning rate, weight decay, batch,
EMA decay and steps. The paper gives no warm-up, learning-rate schedule, gradient clipping or
classifier-free-guidance dropout probability; those are the named options below (defaults: off / 0.1).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from vdm.config_base import ConfigError
from vdm.utils.precision import Precision


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000  # optimizer steps (one step = one update of the global batch)
    batch_size: int = 128  # global batch (videos per optimizer step, all ranks and accumulation together)
    lr: float = 3e-4  # Adam learning rate (paper: 3e-4 UCF-101/text, 2e-4 BAIR/Kinetics/text 9x128)
    adam_beta1: float = 0.9  # Adam β1 (paper: 0.9)
    adam_beta2: float = 0.99  # Adam β2 (paper: 0.99; BAIR 0.999)
    adam_eps: float = 1e-8  # Adam ε (paper silent; the common default)
    weight_decay: float = 0.0  # weight decay coefficient (paper: 0.0; BAIR 0.01)
    # How weight decay is applied (paper silent): "decoupled" = AdamW (decay the weights by lr·wd each step),
    # "l2" = torch.optim.Adam's L2 term added to the gradient.
    weight_decay_mode: Literal["decoupled", "l2"] = "decoupled"
    ema_decay: float = 0.9999  # EMA of the weights per step (paper: 0.9999, BAIR 0.999)
    # EMA warm-up (paper silent): decay_k = min(ema_decay, (1 + k) / (10 + k)) at step k, so that short
    # runs get a usable EMA. Off = the paper's constant decay from step 0.
    ema_warmup: bool = False
    # EDM2's power-function EMA (Karras et al. 2024; paper silent): > 0 = its relative standard deviation σ_rel
    # (EDM2: 0.05-0.10), the decay at step k then (1 − 1/k)^(γ+1) and ema_decay / ema_warmup unused; 0 = off.
    ema_std: float = 0.0
    cond_drop_prob: float = 0.1  # probability of dropping the conditioning (classifier-free guidance; paper silent)
    warmup_steps: int = 0  # linear learning-rate warm-up from 0 over this many steps (paper silent; 0 = off)
    # Learning-rate schedule after the warm-up (paper silent; the paper trains at a constant rate):
    # "constant", or "cosine" = half a cosine from lr down to lr·lr_final over the steps after the warm-up,
    # reaching lr·lr_final at the last step. A cosine run follows train.steps: resuming with other steps
    # changes the rest of the schedule.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_final: float = 0.0  # lr at the last step as a fraction of lr ("cosine" only)
    grad_clip: float = 0.0  # clip the global gradient L2 norm to this value (paper silent; 0 = off)
    grad_accum: int = 1  # micro-batches accumulated per optimizer step (per-rank micro-batch = batch / (ranks·accum))
    # Relative loss weight of the K appended independent image frames against the video frames
    # (paper §3 silent: 1.0 = every frame counts the same in the per-example mean).
    image_loss_weight: float = 1.0
    # auto: bf16 autocast on CUDA, fp32 on CPU; bf16: autocast on any device; bf16_if_native: bf16 on CUDA and
    # on CPUs with AMX / AVX512-BF16, fp32 elsewhere (vdm/utils/precision.py)
    precision: Precision = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when available
    # Divergence check (paper silent), the "state sanity check": a training state counts as good when its
    # weights and EMA are finite and the loss of the first step taken from it is finite and <= max_loss.
    # A step whose loss fails it stops training; the state that gave that loss is moved out of the way,
    # so a rerun resumes from the last good one. The diffusion losses start near 1 (unit-variance
    # targets); 0 = only require finite values.
    max_loss: float = 1000.0
    checkpoint_every: int = 1000  # save the full training state every N steps (and at the end)
    keep_checkpoints: int = 3  # number of newest training states kept in <workdir>/checkpoints
    log_every: int = 10  # CSV log row every N steps (loss averaged over those steps)
    # ---- watching a run (vdm.train.watch) ---------------------------------------------------------
    # Sample a fixed-seed grid from the EMA model every N steps and at the end, into <workdir>/samples/
    # (GIF + PNG) and TensorBoard (0 = off).
    sample_every: int = 0
    sample_grid: int = 8  # videos in the grid (seeds 0..N-1; class i mod num_classes)
    sample_steps: int = 32  # ancestral steps of the grid's sampler (x̂ clipping for ε-models)
    tensorboard: bool = True  # TensorBoard event files in <workdir>/tb (loss, lr, grad norm, samples/s, grids)
    # Extra exports (EMA weights) at these steps, as <workdir>/exports/step-<N>.pt (0: the network before
    # training), e.g. for FVD along training (the workflow's ablation.checkpoints).
    export_steps: tuple[int, ...] = ()
    num_workers: int = 0  # data-loader worker processes per rank
    progress: bool = True  # tqdm progress bar on rank 0
    # Intel MKL conditional numerical reproducibility (CPU BLAS), exported as MKL_CBWR before the first
    # BLAS call unless already set: MKL's default may round differently depending on memory alignment,
    # which breaks bit-identical resume. "" = MKL's default (slightly faster).
    mkl_cbwr: str = "AUTO,STRICT"
    # Frozen text encoder for models with text_dim > 0 (vdm.model.text_encoder): "" = "minilm" (packaged
    # offline MiniLM, 384-d), or a Hugging Face name/path (paper: BERT-large, 1024-d). Recorded in the export.
    text_encoder: str = ""
    # Resume a training state with other code than the segment before it (another hash of the vdm
    # package's sources, e.g. a requeue days later after a `git pull`): False = refuse with an error
    # naming both commits; True = continue, and record the change in <workdir>/runs.jsonl.
    allow_code_change: bool = False

    def validate(self) -> None:
        positive = {"steps": self.steps, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "checkpoint_every": self.checkpoint_every, "keep_checkpoints": self.keep_checkpoints,
                    "log_every": self.log_every}
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if not self.lr > 0:  # also refuses NaN
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.lr == float("inf"):
            raise ConfigError(f"lr must be finite, got {self.lr}")
        if not (self.ema_std == 0.0 or 0.0 < self.ema_std < 12 ** -0.5):
            raise ConfigError(f"ema_std must be 0 (off) or in (0, {12 ** -0.5:.4f}) (EDM2's sigma_rel), "
                              f"got {self.ema_std}")
        for name in ("adam_beta1", "adam_beta2", "ema_decay"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {v}")
        if not 0.0 <= self.cond_drop_prob <= 1.0:
            raise ConfigError(f"cond_drop_prob must be in [0, 1], got {self.cond_drop_prob}")
        for name in ("weight_decay", "grad_clip", "image_loss_weight", "adam_eps", "max_loss"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.sample_every < 0 or self.sample_grid < 1 or self.sample_steps < 1:
            raise ConfigError("sample_every must be >= 0, sample_grid and sample_steps >= 1")
        bad = [s for s in self.export_steps if not 0 <= s <= self.steps]
        if bad:
            raise ConfigError(f"export_steps {list(self.export_steps)}: {bad} outside [0, steps={self.steps}]")
        if self.warmup_steps < 0 or self.num_workers < 0:
            raise ConfigError("warmup_steps and num_workers must be >= 0")
        if not 0.0 <= self.lr_final <= 1.0:
            raise ConfigError(f"lr_final must be in [0, 1] (a fraction of lr), got {self.lr_final}")
        if self.lr_schedule == "cosine" and self.warmup_steps >= self.steps:
            raise ConfigError(f"lr_schedule cosine needs warmup_steps ({self.warmup_steps}) < steps ({self.steps})")


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    executor: Literal["local", "debug", "slurm"] = "local"  # submitit executor (debug: in this process)
    partition: str = ""  # SLURM partition ("" = the cluster's default)
    nodes: int = 1  # SLURM nodes
    gpus_per_node: int = 0  # GPUs requested per node (gres/gpu); 0 = CPU job
    # How the GPUs are asked for: "gpus_per_node" = sbatch --gpus-per-node=[type:]N; "gres" =
    # --gres=gpu:[type:]N (sites whose SLURM accounts GPUs only as generic resources).
    gpu_request: Literal["gpus_per_node", "gres"] = "gpus_per_node"
    gpu_type: str = ""  # GPU model in the request, e.g. "a100" ("" = any)
    constraint: str = ""  # sbatch --constraint (node features, e.g. "a100&ib")
    qos: str = ""  # sbatch --qos
    # Processes per node: one per GPU (must equal gpus_per_node when that is > 0); on CPU the number of
    # gloo DDP processes.
    tasks_per_node: int = 1
    cpus_per_task: int = 2  # CPU cores per process (data loading, gloo)
    mem_gb: float = 0.0  # memory per node in GiB (0 = the cluster's default, e.g. DefMemPerCPU)
    timeout_min: int = 60  # wall-clock limit per job (minutes); at the limit the job is requeued and resumes
    signal_delay_s: int = 120  # SLURM sends USR2 this many seconds before the limit: save state and requeue
    max_num_timeout: int = 3  # how many times a job may be requeued after hitting its time limit
    slurm_account: str = ""  # SLURM account ("" = the user's default)
    job_name: str = "vdm-train"  # SLURM job name
    slurm_setup: tuple[str, ...] = ()  # shell lines run in the sbatch script before the job (module load ...)
    slurm_additional_parameters: dict[str, Any] = dataclasses.field(default_factory=dict)  # extra sbatch options
    folder: str = ""  # submitit job folder (logs, pickles); "" = <workdir>/submitit
    wait_timeout_min: float = 0.0  # give up waiting for the job after this long (0 = wait until it ends)
    # When the launcher is stopped (SIGINT, SIGTERM) it stops its job (local: SIGTERM to the job's processes;
    # SLURM: scancel) and waits this long for it to end -- the trainer saves its state at the step boundary --
    # before it exits; a local job still running then is killed.
    cancel_wait_s: float = 300.0

    def validate(self) -> None:
        for name in ("nodes", "tasks_per_node", "cpus_per_task", "timeout_min"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.cancel_wait_s >= 0:  # also refuses NaN
            raise ConfigError(f"cancel_wait_s must be >= 0, got {self.cancel_wait_s}")
        if self.gpus_per_node < 0 or self.signal_delay_s < 0 or self.max_num_timeout < 0:
            raise ConfigError("gpus_per_node, signal_delay_s and max_num_timeout must be >= 0")
        if self.gpus_per_node > 0 and self.tasks_per_node != self.gpus_per_node:
            raise ConfigError(
                f"tasks_per_node ({self.tasks_per_node}) must equal gpus_per_node ({self.gpus_per_node}): "
                "one process per GPU"
            )
