"""Process-group set-up for DDP: gloo on CPU, NCCL on GPU.

Where the ranks come from, in order: torchrun-style variables (RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT), a submitit job (``submitit.helpers.TorchDistributedEnvironment``: local executor tasks
or SLURM tasks on one or many nodes), else a single process without a process group.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _export_submitit_env() -> bool:
    """Export MASTER_ADDR/PORT, RANK, WORLD_SIZE from the submitit job environment, if inside one."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return False
    from submitit.helpers import TorchDistributedEnvironment

    # overwrite: variables inherited from a submitting SLURM job must not leak into this one;
    # CUDA_VISIBLE_DEVICES is left to SLURM (a rank picks cuda:local_rank among the visible devices).
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    return True


def pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but torch.cuda.is_available() is False")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(device: str = "auto", timeout_s: float = 600.0) -> DistInfo:
    """Initialise the default process group when there is more than one rank; return this rank's info."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        _export_submitit_env()
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    dev = pick_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s),
                                device_id=dev if dev.type == "cuda" else None)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_object(obj: Any, info: DistInfo) -> list[Any]:
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo, src: int = 0) -> Any:
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
