"""DDP: 2 gloo ranks with per-rank batch B/2 match 1 process with batch B on the same data.

The 2 ranks are the 2 tasks of a submitit local job (process group from TorchDistributedEnvironment,
the launcher's path); the reference is 1 process started by torch.multiprocessing.

Tolerance: the two runs differ only in float summation order (gradient all-reduce, per-rank loss
means), so after 4 Adam steps every weight agrees to 1e-5 absolute (measured differences ~1e-7).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import REPO, ArrayLoader, load_final_state, tiny_config_dict

ATOL = 1e-5
STEPS = 4


def _cfg(**train):
    from vdm.config import ExperimentConfig

    # dropout 0: model dropout draws from each rank's own generator, so it cannot match across splits.
    d = tiny_config_dict(train=dict(steps=STEPS, batch_size=4, checkpoint_every=STEPS, **train),
                         model={"dropout": 0.0})
    return ExperimentConfig.from_dict(d)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, workdir: str, train_overrides: dict) -> None:
    """One rank started by torch.multiprocessing (torchrun-style variables)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    _train(workdir, train_overrides)


def _train(workdir: str, train_overrides: dict) -> None:
    torch.set_num_threads(1)
    from vdm.train import distributed as D
    from vdm.train.loop import train

    try:
        train(_cfg(**train_overrides), workdir, None, make_loader=ArrayLoader)
    finally:
        D.teardown()


def _run(world: int, workdir: Path, **train_overrides) -> dict:
    mp.spawn(_rank_main, args=(world, _free_port(), str(workdir), train_overrides), nprocs=world, join=True)
    return load_final_state(workdir)


def _run_submitit_local(world: int, workdir: Path, monkeypatch) -> dict:
    """``world`` tasks of a submitit local job: ranks from TorchDistributedEnvironment, as under SLURM."""
    import submitit

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), str(REPO)]))
    ex = submitit.AutoExecutor(folder=workdir / "submitit", cluster="local")
    ex.update_parameters(tasks_per_node=world, timeout_min=5, cpus_per_task=1)
    job = ex.submit(_train, str(workdir), {})
    job.results()  # raises with the tasks' errors
    return load_final_state(workdir)


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def one(tmp_path_factory) -> dict:
    """Reference: 1 process, batch B."""
    return _run(1, tmp_path_factory.mktemp("ddp") / "one")


def test_ddp_two_ranks_match_one_process(tmp_path, one, monkeypatch):
    two = _run_submitit_local(2, tmp_path / "two", monkeypatch)
    assert two["world_size"] == 2 and len(two["rng"]) == 2 and len(two["loader"]) == 2
    assert two["loader"][0] == two["loader"][1] == one["loader"][0] == {"epoch": 0, "position": STEPS}
    d_model = _max_diff(one["model"], two["model"])
    d_ema = _max_diff(one["ema"]["shadow"], two["ema"]["shadow"])
    print(f"max |Δ| after {STEPS} steps: weights {d_model:.2e}, EMA {d_ema:.2e}")
    assert d_model < ATOL and d_ema < ATOL, (d_model, d_ema)
    # The runs did train (a broken all-reduce, e.g. summing instead of averaging, would not match).
    from vdm.model.unet import UNet3D
    from vdm.seeds import derive_seed

    torch.manual_seed(derive_seed(3, "init"))
    fresh = UNet3D(_cfg().model).state_dict()
    assert _max_diff(fresh, one["model"]) > 1e-3


def test_grad_accumulation_matches_full_batch(tmp_path, one):
    """1 rank, 2 micro-batches of B/2 ≡ 1 rank, batch B (same per-example noise by construction)."""
    accum = _run(1, tmp_path / "accum", grad_accum=2)
    d = _max_diff(one["model"], accum["model"])
    print(f"grad accumulation: max |Δ| weights {d:.2e}")
    assert d < ATOL
