"""The training loop (paper §1 loss, §3 joint image+video training, Appendix A hyperparameters).

One optimizer step consumes the global batch ``train.batch_size``, split across ranks and
``grad_accum`` micro-batches. The noise of every example (t, ε, and the classifier-free-guidance
dropout coin) is drawn from a generator seeded by (seed, step, global example index), so the
training trajectory does not depend on how the batch is split over ranks or micro-batches, and a
resumed run replays exactly what an uninterrupted one does. Everything else that is random (model
dropout, the loader) is restored from the training state of each rank.

Stops: SIGTERM/SIGINT finish the current step, save the state and raise :class:`TrainingInterrupted`;
under submitit, SIGUSR2 (preemption or time limit) does the same and then hands over to submitit,
which requeues the job; a NaN/inf loss or gradient norm raises :class:`NonFiniteLossError` without
saving, and the state that gave a diverged loss is moved to ``checkpoints/diverged/`` (the state sanity
check, ``train.max_loss``), so the newest state left is the last good one and a rerun resumes from it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from vdm.artifacts.export import save_export
from vdm.checks import check_training
from vdm.config import ExperimentConfig, dump_config, to_dict
from vdm.data.loader import VideoLoader
from vdm.diffusion import CosineSchedule, diffusion_loss
from vdm.diffusion.weighting import loss_weight
from vdm.model.unet import UNet3D
from vdm.runinfo import append_run_record, read_run_records, run_record, write_sidecar
from vdm.seeds import derive_seed
from vdm.train import checkpoint as ckpt
from vdm.train import distributed as D
from vdm.train.config import TrainConfig
from vdm.train.csvlog import CSV_COLUMNS, CsvLog  # noqa: F401 (CSV_COLUMNS re-exported)
from vdm.train.ema import EMA
from vdm.train.seeds import draw_noise, get_rng_state, set_rng_state
from vdm.train.signals import StopSignals
from vdm.train.text import TextConditioning
from vdm.train.watch import Board, SampleGrids
from vdm.utils.io import WorkdirLock, remove_stale_temporaries, remove_stale_temporaries_of
from vdm.utils.precision import uses_bf16

log = logging.getLogger(__name__)

LOCK_NAME = "train.lock"  # <workdir>/train.lock: held by the training that writes this folder
# Model fields that change how the network is run (memory, time), not the network: a resume may change
# them (with the warning of a changed setting: float rounding may differ); any other model field may not.
MODEL_EXECUTION_FIELDS = ("gradient_checkpointing", "recompute_norm_act")


def _network_fields(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in MODEL_EXECUTION_FIELDS}


# Config sections/fields that may change between a run and its resumption without breaking exactness
# of what was already trained (a longer run, other logging/checkpoint cadence, other launcher).
_RESUME_FREE = {"train.steps", "train.checkpoint_every", "train.keep_checkpoints", "train.log_every",
                "train.progress", "train.num_workers", "train.max_loss", "train.sample_every", "train.sample_grid",
                "train.sample_steps", "train.tensorboard", "train.export_steps", "train.allow_code_change", "launch",
                "sample", "evaluate", "name"}


def lr_at(tc: TrainConfig, step: int) -> float:
    """Learning rate of (0-based) optimizer step ``step``: constant (paper), with an optional linear warm-up
    over ``warmup_steps`` and an optional cosine decay to ``lr·lr_final`` at the last step (paper silent)."""
    w = tc.warmup_steps
    if w > 0 and step < w:
        return tc.lr * (step + 1) / w
    if tc.lr_schedule == "constant":
        return tc.lr
    # cosine over the steps after the warm-up: progress 0 at step w, 1 at the last step (steps - 1)
    progress = min(1.0, (step - w) / max(1, tc.steps - 1 - w))
    return tc.lr * (tc.lr_final + (1.0 - tc.lr_final) * 0.5 * (1.0 + math.cos(math.pi * progress)))


class CodeChangedError(RuntimeError):
    """A training state would be resumed by other code than the one that wrote it (see
    ``TrainConfig.allow_code_change``)."""


class NonFiniteLossError(RuntimeError):
    """A step failed the state sanity check (see ``TrainConfig.max_loss``) or its input held NaN/inf;
    nothing was saved and the newest state left in ``checkpoints/`` is the last good one."""


class TrainingInterrupted(RuntimeError):
    """A stop signal arrived; the state was saved at a step boundary. Rerun the same command to resume."""


LoaderFactory = Callable[..., Iterable[dict[str, Any]]]


# ------------------------------------------------------------------------------------------------
# Data and conditioning.
# ------------------------------------------------------------------------------------------------
def default_loader(cfg: ExperimentConfig, *, batch_size: int, seed: int, rank: int, world_size: int,
                   num_workers: int) -> Iterable[dict[str, Any]]:
    """The project's loader over the training shards (``vdm shard``), ``batch_size`` videos per rank."""

    return VideoLoader(cfg.data, "train", batch_size=batch_size, seed=seed, rank=rank, world_size=world_size,
                       num_workers=num_workers, mode="train")


# ------------------------------------------------------------------------------------------------
# The trainer.
# ------------------------------------------------------------------------------------------------
class Trainer:
    def __init__(self, cfg: ExperimentConfig, workdir: str | Path, export_path: str | Path | None,
                 *, make_loader: LoaderFactory | None = None):
        self.cfg = cfg
        self.tc = cfg.train
        self.workdir = Path(workdir)
        self.ckpt_dir = self.workdir / "checkpoints"
        self.export_path = Path(export_path) if export_path else None
        self.segments: list[dict[str, Any]] = []  # run records of the training segments (runs.jsonl)
        self.make_loader = make_loader or default_loader
        self.dist = D.setup(self.tc.device)
        self.device = self.dist.device
        self._check_config()
        W, A = self.dist.world_size, self.tc.grad_accum
        if self.tc.batch_size % (W * A):
            raise ValueError(
                f"train.batch_size={self.tc.batch_size} is not divisible by ranks ({W}) × grad_accum ({A})"
            )
        self.micro_batch = self.tc.batch_size // (W * A)  # videos per rank per micro-batch
        self.use_bf16 = uses_bf16(self.tc.precision, self.device)  # vdm/utils/precision.py

        # Model, EMA, optimizer (Appendix A: Adam(β1, β2), lr, weight decay per model).

        torch.manual_seed(derive_seed(cfg.seed, "init"))  # identical initial weights on every rank
        self.model = UNet3D(cfg.model).to(self.device)
        self.ema = EMA(self.model, self.tc.ema_decay, warmup=self.tc.ema_warmup, std=self.tc.ema_std)
        self.optimizer = self._build_optimizer()
        self.net: nn.Module = self.model
        if self.dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )
        self.logsnr_fn = CosineSchedule.from_config(cfg.diffusion)
        self.text = TextConditioning(self.tc.text_encoder, cfg.model.text_dim) if cfg.model.text_dim > 0 else None
        self.step = 0
        torch.manual_seed(derive_seed(cfg.seed, "rank", self.dist.rank))  # dropout etc., per rank
        # Python's and numpy's global generators are saved in every state (a resume restores them for any code that
        # draws from them): seeded here too, so that the same config and seed give byte-identical states
        random.seed(derive_seed(cfg.seed, "python", self.dist.rank))
        np.random.seed(derive_seed(cfg.seed, "numpy", self.dist.rank) % 2**32)
        self.loader = self.make_loader(cfg, batch_size=self.micro_batch, seed=derive_seed(cfg.seed, "data") % 2**31,
                                       rank=self.dist.rank, world_size=W, num_workers=self.tc.num_workers)
        self.signals = StopSignals()
        self.stop_now = self.preempt_now = False  # stop flags agreed by all ranks at the last step
        self._bad_inputs: list[str] = []  # records of this step's batch with non-finite pixels
        self._unconfirmed = False  # the newest saved state has not yet given a step that passed the check

    # ---- set-up helpers ---------------------------------------------------------------------------
    def _check_config(self) -> None:
        check_training(self.cfg)  # data vs network (ConfigError, a ValueError), as the workflow checks it

    def _build_optimizer(self) -> torch.optim.Optimizer:
        tc = self.tc
        # foreach: one multi-tensor kernel per Adam operation instead of a loop over the parameter tensors
        # (≈ 9,000 fewer operator calls per step for a 355-tensor U-Net); the same arithmetic, bitwise
        # (tests/test_train_units.py::test_foreach_adam_is_bitwise_the_per_tensor_loop)
        kw = dict(lr=tc.lr, betas=(tc.adam_beta1, tc.adam_beta2), eps=tc.adam_eps, weight_decay=tc.weight_decay,
                  foreach=True)
        if tc.weight_decay_mode == "decoupled":
            return torch.optim.AdamW(self.model.parameters(), **kw)
        return torch.optim.Adam(self.model.parameters(), **kw)

    def lr_at(self, step: int) -> float:
        """lr of (0-based) ``step``; see ``lr_at``."""
        return lr_at(self.tc, step)

    # ---- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Training state; collective (gathers every rank's RNG and loader state), complete on rank 0."""
        rank_state = {"rng": get_rng_state(),
                      "loader": self.loader.state_dict() if hasattr(self.loader, "state_dict") else None}
        ranks = D.all_gather_object(rank_state, self.dist)
        return {
            "step": self.step,
            "samples_seen": self.step * self.tc.batch_size,
            "world_size": self.dist.world_size,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": [r["rng"] for r in ranks],
            "loader": [r["loader"] for r in ranks],
            "config": to_dict(self.cfg),
        }

    def save(self) -> Path:
        problem = self._insane_weights()  # the same weights on every rank: all stop together
        if problem:
            raise NonFiniteLossError(self._stopped_message(f"at step {self.step}: {problem}; not saved."))
        state = self.state_dict()
        path = ckpt.state_path(self.ckpt_dir, self.step)
        if self.dist.is_main:
            # The newest state is not known to be good until a step taken from it passes the sanity check:
            # keep one more until then (see _confirm_states).
            path = ckpt.save_state(self.ckpt_dir, state, keep=self.tc.keep_checkpoints + 1)
            self._unconfirmed = True
            log.info("saved training state %s", path)
        D.barrier(self.dist)
        return path

    def resume(self) -> bool:
        """Load the newest complete state, if any. Returns True when resumed."""
        found = ckpt.load_latest(self.ckpt_dir)
        if found is None:
            return False
        state, path = found
        if state["world_size"] != self.dist.world_size:
            raise ValueError(
                f"{path} was written by {state['world_size']} ranks, this run has {self.dist.world_size}: "
                "an exact resume needs the same number (launch.nodes × launch.tasks_per_node)"
            )
        self._compare_config(state["config"], path)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        set_rng_state(state["rng"][self.dist.rank])
        loader_state = state["loader"][self.dist.rank]
        if loader_state is not None:
            self.loader.load_state_dict(loader_state)
        log.info("resumed from %s (step %d)", path, self.step)
        return True

    def _compare_config(self, saved: dict[str, Any], path: Path) -> None:
        now = to_dict(self.cfg)
        if _network_fields(saved.get("model", {})) != _network_fields(now["model"]):
            raise ValueError(f"{path}: model config differs from the current one; use a new workdir")
        diffs = [k for k in _flat_diff(saved, now) if not any(k == f or k.startswith(f + ".") for f in _RESUME_FREE)]
        if diffs:
            log.warning("resuming %s with changed settings (resume not exact for them): %s", path, ", ".join(diffs))

    # ---- one optimizer step -----------------------------------------------------------------------
    def _conditioning(self, batch: dict[str, Any], coin: Tensor) -> dict[str, Any]:
        m = self.cfg.model
        cond: dict[str, Any] = {}
        # Joint batches carry each frame's own conditioning (frame_cls / frame_txt: an appended image frame
        # has the class / caption of the video it was taken from; paper §3); the U-Net embeds it per frame.
        if m.num_classes > 0:
            if "cls" not in batch:
                raise KeyError(f"model.num_classes={m.num_classes} but the batches carry no 'cls' labels")
            cond["cls"] = batch.get("frame_cls", batch["cls"]).to(self.device)  # [b] or [b, T+K]
        if self.text is not None:
            if "txt" not in batch:
                raise KeyError(f"model.text_dim={m.text_dim} but the batches carry no 'txt' captions")
            if "frame_txt" in batch:
                rows = [list(r) for r in batch["frame_txt"]]
                F_ = len(rows[0])
                tokens, mask = self.text([c for r in rows for c in r], self.device)  # [b·F, L, D], [b·F, L]
                cond["text"] = tokens.reshape(len(rows), F_, *tokens.shape[1:])  # [b, F, L, D]
                cond["text_mask"] = mask.reshape(len(rows), F_, -1)  # [b, F, L]
            else:
                cond["text"], cond["text_mask"] = self.text(list(batch["txt"]), self.device)  # [b, L, D], [b, L]
        if cond:
            # Classifier-free guidance (paper §1): null conditioning with probability cond_drop_prob.
            cond["cond_keep"] = coin >= self.tc.cond_drop_prob  # [b]
        return cond

    def _micro_loss(self, batch: dict[str, Any], micro: int) -> Tensor:
        x = batch["video"].to(self.device, non_blocking=True)  # [b, C, T+K, H, W] in [-1, 1]
        if x.shape[0] != self.micro_batch:
            raise ValueError(f"loader gave {x.shape[0]} videos, expected {self.micro_batch} per rank")
        finite = torch.isfinite(x).flatten(1).all(1)  # [b]
        if not bool(finite.all()):  # a data problem, not divergence: reported after the step's all-reduce
            keys = batch.get("key") or [f"#{i} of the micro-batch" for i in range(len(finite))]
            self._bad_inputs += [str(k) for k, ok in zip(keys, finite.tolist()) if not ok]
        is_image = batch.get("is_image")
        if is_image is not None:
            is_image = is_image.to(self.device)  # [b, T+K]
        # Global example index: micro-batch-major, then rank (the order of ArrayLoader-style streams).
        first = (micro * self.dist.world_size + self.dist.rank) * self.micro_batch
        t, eps, coin = draw_noise(self.cfg.seed, self.step, first, self.tc.batch_size, tuple(x.shape), self.device,
                                  low_discrepancy=self.cfg.diffusion.t_sampling == "low_discrepancy")
        frame_weight = None
        if is_image is not None:
            # Joint training (paper §3): image frames weighted by image_loss_weight in the per-example mean.
            frame_weight = torch.where(is_image, self.tc.image_loss_weight, 1.0)  # [b, T+K]
        cond = self._conditioning(batch, coin)
        # bf16 autocast of the forward pass (weights, optimizer and EMA stay float32), on CUDA or CPU
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
            per_example = diffusion_loss(self.net, x, self.logsnr_fn, prediction=self.cfg.diffusion.prediction,
                                         t=t, eps=eps, frame_weight=frame_weight, is_image=is_image, **cond)  # [b]
        dc = self.cfg.diffusion
        if dc.loss_weighting != "none":  # "none": the paper's loss, bit for bit
            per_example = per_example * loss_weight(dc.loss_weighting, dc.prediction, t, self.logsnr_fn,
                                                    gamma=dc.min_snr_gamma, bias=dc.sigmoid_bias).to(per_example)
        return per_example

    @staticmethod
    def _next_batch(batches: Iterator[dict[str, Any]]) -> dict[str, Any]:
        """The next batch, without letting the loader draw from this rank's global generators: the loader
        is seeded on its own, and e.g. a DataLoader with workers draws its base seed from the global torch
        RNG when it starts — at step 0 in one run, at the resumed step in another."""
        rng = get_rng_state()
        batch = next(batches)
        set_rng_state(rng)
        return batch

    def train_step(self, batches: Iterator[dict[str, Any]]) -> tuple[float, float, float]:
        """One optimizer step; returns (mean loss over the global batch, grad norm, lr)."""
        lr = self.lr_at(self.step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        A = self.tc.grad_accum
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        self._bad_inputs = []
        for micro in range(A):
            per_example = self._micro_loss(self._next_batch(batches), micro)
            sync = contextlib.nullcontext()
            if self.dist.enabled and micro < A - 1:
                sync = self.net.no_sync()  # type: ignore[operator]
            with sync:
                (per_example.mean() / A).backward()
            loss_sum += per_example.detach().double().sum()
        # One collective per step: global loss sum and the stop flags (every rank stops at the same step).
        # The handlers only set pending flags; acting on the reduced ones keeps every rank in step (a signal
        # arriving after this point is acted on at the next step).
        flags = torch.tensor([loss_sum.item(), float(self.signals.stop), float(self.signals.preempt),
                              float(len(self._bad_inputs))], dtype=torch.float64, device=self.device)
        D.all_reduce_sum(flags, self.dist)
        loss = flags[0].item() / self.tc.batch_size
        self.stop_now, self.preempt_now = bool(flags[1] > 0), bool(flags[2] > 0)
        if flags[3] > 0:
            found = f" (records {', '.join(self._bad_inputs)} on rank {self.dist.rank})" if self._bad_inputs else ""
            raise NonFiniteLossError(self._stopped_message(
                f"the input batch of step {self.step} holds non-finite pixels{found}."))
        max_norm = self.tc.grad_clip if self.tc.grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        problem = self._insane_step(loss, grad_norm)
        if problem:
            raise NonFiniteLossError(self._diverged(problem))
        self._confirm_states()
        self.optimizer.step()
        self.ema.update(self.model)
        self.step += 1
        return loss, grad_norm, lr

    # ---- the state sanity check (train.max_loss) -------------------------------------------------------
    def _insane_step(self, loss: float, grad_norm: float) -> str:
        """Why the step just taken from the current weights fails the check ("" when it passes)."""
        if not math.isfinite(loss):
            return f"non-finite loss ({loss})"
        if not math.isfinite(grad_norm):
            return f"non-finite gradient norm ({grad_norm})"
        if self.tc.max_loss > 0 and loss > self.tc.max_loss:
            return f"loss {loss:.4g} > train.max_loss {self.tc.max_loss:g}"
        return ""

    def _confirm_states(self) -> None:
        """The newest state just passed the check: keep train.keep_checkpoints states from now on."""
        if self._unconfirmed and self.dist.is_main:
            ckpt.prune(self.ckpt_dir, self.tc.keep_checkpoints)
        self._unconfirmed = False

    def _insane_weights(self) -> str:
        for what, tensors in (("model", self.model.state_dict()), ("EMA", self.ema.shadow)):
            for name, t in tensors.items():
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    return f"non-finite {what} weight {name}"
        return ""

    def _diverged(self, problem: str) -> str:
        """Move the state that gave the failing step out of the way; the message says how to go on."""
        bad = ckpt.state_path(self.ckpt_dir, self.step)
        moved = ""
        if self.dist.is_main and bad.is_file():
            quarantine = self.ckpt_dir / "diverged"
            quarantine.mkdir(exist_ok=True)
            bad.replace(quarantine / bad.name)
            moved = f" The state of step {self.step}, whose weights gave this step, was moved to {quarantine}/."
        D.barrier(self.dist)
        return self._stopped_message(f"training diverged at step {self.step}: {problem}.{moved}")

    def _stopped_message(self, what: str) -> str:
        newest = ckpt.list_states(self.ckpt_dir)
        if newest:
            step, path = newest[-1]
            how = (f"Last good state: {path} (step {step}); rerunning the same command resumes from it, so first "
                   "change what made it diverge (a lower train.lr, train.warmup_steps or train.grad_clip). "
                   f"To start from step 0 instead, remove {self.ckpt_dir}.")
        else:
            how = f"No good state is left in {self.ckpt_dir}: rerunning starts from step 0."
        return f"{what} Training stopped, nothing saved. {how}"

    # ---- the run --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train to ``train.steps`` (resuming), holding the work directory's lock on rank 0."""
        # WorkdirBusy: a second training on this folder stops here, before touching it.
        with WorkdirLock(self.workdir, LOCK_NAME, "training") if self.dist.is_main else contextlib.nullcontext():
            if self.dist.is_main:
                self._remove_stale_temporaries()
            return self._run()

    def _remove_stale_temporaries(self) -> None:
        """A kill while saving leaves ``.<name>.<random>.tmp`` files (GBs for a paper-size state): ours go."""
        removed = remove_stale_temporaries(self.ckpt_dir, "state-*.pt")
        removed += remove_stale_temporaries_of(self.workdir / "train_log.csv", self.workdir / "config.yaml",
                                               self.export_path)
        for p in removed:
            log.info("removed stale temporary %s", p)

    def _record_segment(self) -> None:
        """Append this segment's run record to ``runs.jsonl``; a resume on other code (another vdm
        package hash than the segment before) is logged and recorded, and refused unless
        ``train.allow_code_change``."""
        path = self.workdir / "runs.jsonl"
        record = {**run_record("train"), "start_step": self.step}
        previous = read_run_records(path)  # a torn line is skipped, with a warning
        if previous and self.step > 0 and previous[-1].get("code_id") != record["code_id"]:
            before, now = previous[-1].get("git", {}), record["git"]
            message = (f"{self.workdir}: resuming at step {self.step} with other code than the segment before "
                       f"(vdm sources {previous[-1].get('code_id', '?')[:12]} -> {record['code_id'][:12]}; git "
                       f"{str(before.get('commit'))[:12]}{' +changes' if before.get('dirty') else ''} -> "
                       f"{str(now.get('commit'))[:12]}{' +changes' if now.get('dirty') else ''})")
            if not self.tc.allow_code_change:
                raise CodeChangedError(message + ": set train.allow_code_change=true to continue on it, or "
                                       "rerun the code that started this run")
            log.warning("%s (allowed by train.allow_code_change)", message)
            record["code_changed"] = True
        if self.dist.is_main:
            append_run_record(path, record)
        self.segments = [*previous, record]

    def _run(self) -> dict[str, Any]:
        tc = self.tc
        self.resume()
        self._record_segment()
        if self.dist.is_main:
            dump_config(self.cfg, self.workdir / "config.yaml")
        csv_log = CsvLog(self.workdir / "train_log.csv", self.step) if self.dist.is_main else None
        board = Board(self.workdir / "tb", self.step) if self.dist.is_main and tc.tensorboard else None
        grids = (SampleGrids(self.cfg, self.model, self.workdir / "samples")
                 if self.dist.is_main and tc.sample_every else None)
        sampled = -1
        if self.step == 0:
            self._export_at_step()  # export_steps may ask for the network before training
        batches = iter(self.loader)
        bar = None
        if self.dist.is_main and tc.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=tc.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        self.signals.install()
        t_start = t_last = time.perf_counter()
        losses: list[float] = []
        last_saved = self.step
        try:
            while self.step < tc.steps:
                loss, grad_norm, lr = self.train_step(batches)
                losses.append(loss)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    now = time.perf_counter()
                    row = dict(loss=sum(losses) / len(losses), lr=lr,
                               samples_per_s=len(losses) * tc.batch_size / max(now - t_last, 1e-9),
                               grad_norm=grad_norm)
                    if csv_log is not None:
                        csv_log.write(step=self.step, samples_seen=self.step * tc.batch_size, **row,
                                      elapsed_s=now - t_start)
                    if board is not None:
                        board.scalars(self.step, **row)
                    losses, t_last = [], now
                self._export_at_step()
                if grids is not None and (self.step % tc.sample_every == 0 or self.step == tc.steps):
                    grids.write(self.step, self.ema.shadow, board.writer if board is not None else None)
                    sampled = self.step
                    t_last = time.perf_counter()  # samples/s counts training only
                stopping = self.stop_now or self.preempt_now
                if self.step % tc.checkpoint_every == 0 or self.step == tc.steps or stopping:
                    path = self.save()
                    last_saved = self.step
                if stopping:
                    self._stop(path)
            if last_saved != self.step:
                self.save()
            self._confirm_states()  # the run is complete: its final state is its result
            if grids is not None and sampled != self.step:
                grids.write(self.step, self.ema.shadow, board.writer if board is not None else None)
        finally:
            self.signals.restore()
            if bar is not None:
                bar.close()
            if csv_log is not None:
                csv_log.close()
            if board is not None:
                board.close()
        summary = {"step": self.step, "samples_seen": self.step * tc.batch_size}
        if self.export_path is not None and self.dist.is_main:
            self.export()
        D.barrier(self.dist)
        return summary

    def _stop(self, path: Path) -> None:
        if self.preempt_now and not self.stop_now:
            log.warning("preempted at step %d; state saved to %s; handing over to submitit (requeue)", self.step, path)
            if self.dist.is_main:
                self.signals.hand_over_preemption()  # submitit: requeue, then SystemExit
            else:
                # The requeue stops every task of the job; do not end before rank 0 has requeued, and
                # let the requeue's SIGTERM end this process at once.
                self.signals.restore()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                time.sleep(300)
            raise SystemExit(-1)
        raise TrainingInterrupted(
            f"stopped by {self.signals.signame or 'a signal'} at step {self.step}; state saved to {path}; "
            "run the same command again to resume"
        )

    def _export_at_step(self) -> None:
        """``train.export_steps``: the EMA weights at this step as <workdir>/exports/step-<N>.pt (rank 0)."""
        if self.step in self.tc.export_steps and self.dist.is_main:
            path = self.workdir / "exports" / f"step-{self.step:09d}.pt"
            self.export(path)

    def export(self, path: Path | None = None) -> None:
        meta = {"step": self.step, "samples_seen": self.step * self.tc.batch_size, "seed": self.cfg.seed,
                "experiment": self.cfg.name, "world_size": self.dist.world_size,
                "text_encoder": self.text.name if self.text is not None else "",
                "train": to_dict(self.tc), "data": to_dict(self.cfg.data)}
        path = path or self.export_path
        save_export(path, self.ema.shadow, self.cfg.model, self.cfg.diffusion, meta)
        write_sidecar(path, {"job": "train", "segments": self.segments})  # beside, not inside:
        log.info("wrote export %s (step %d)", path, self.step)  # the export's bytes stay reproducible


def train(cfg: ExperimentConfig, workdir: str | Path, export_path: str | Path | None = None,
          *, make_loader: LoaderFactory | None = None) -> dict[str, Any]:
    """Train (resuming from ``workdir`` if it holds a state) and write the export; returns {step, samples_seen}."""
    trainer = Trainer(cfg, workdir, export_path, make_loader=make_loader)
    return trainer.run()


def _flat_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _flat_diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
        return out
    return [] if a == b else [prefix]
