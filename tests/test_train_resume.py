"""Exact resume on CPU: `vdm train` stopped by SIGTERM and killed by SIGKILL at random steps, then
resumed, ends bit-identical (weights, EMA, optimizer) to an uninterrupted run of the same seed.

The runs are real CLI processes (`python -m vdm train --executor debug`) on real tiny Moving-MNIST
shards read by the project's loader. The kill steps are random; the seed is printed (VDM_TEST_SEED
replays it).
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_states_identical, load_final_state, tiny_config_dict, write_config

STEPS = 12
pytestmark = pytest.mark.timeout(600)


def _cmd(cfg: Path, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "vdm", "train", "--config", str(cfg), "--workdir", str(workdir),
            "--export", str(workdir / "export.pt"), "--executor", "debug"]


def _start(cfg: Path, workdir: Path) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / f"cli-{time.monotonic_ns()}.log", "w")
    # One thread per process: the reference runs alongside, and both must use the same thread count.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(_cmd(cfg, workdir), cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)


def _logged_steps(workdir: Path) -> list[int]:
    try:
        with open(workdir / "train_log.csv", newline="") as f:
            return [int(r["step"]) for r in csv.DictReader(f) if r.get("step", "").isdigit()]
    except (OSError, ValueError, KeyError):
        return []


def _interrupt_at(proc: subprocess.Popen, workdir: Path, step: int, sig: int, timeout: float = 90) -> None:
    """Send ``sig`` once the run has logged ``step`` (every step is logged)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = _logged_steps(workdir)
        if steps and steps[-1] >= step:
            proc.send_signal(sig)
            return
        assert proc.poll() is None, f"run ended (rc {proc.returncode}) before step {step}"
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"run did not reach step {step} within {timeout} s")


def _logs(workdir: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(workdir.glob("cli-*.log")))


def test_exact_resume_after_sigterm_and_sigkill(tmp_path, tiny_shards):
    seed = int(os.environ.get("VDM_TEST_SEED", random.SystemRandom().randrange(1 << 30)))
    rng = random.Random(seed)
    k_term = rng.randint(1, STEPS // 2 - 1)
    k_kill = rng.randint(k_term + 2, STEPS - 2)
    print(f"VDM_TEST_SEED={seed}: SIGTERM after step {k_term}, SIGKILL after step {k_kill}")
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config_dict(tiny_shards, train={"steps": STEPS,
                                                                                      "checkpoint_every": 3}))
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "interrupted"
    reference = _start(cfg, ref_dir)  # runs alongside the interrupted chain
    try:
        # 1. SIGTERM: the run finishes its step, saves its state and exits with 128 + 15.
        p = _start(cfg, run_dir)
        _interrupt_at(p, run_dir, k_term, signal.SIGTERM)
        assert p.wait(timeout=90) == 143, _logs(run_dir)
        stopped = load_final_state(run_dir)["step"]
        assert k_term <= stopped < STEPS
        # 2. Resume, then SIGKILL (no chance to save: the newest periodic state is used).
        p = _start(cfg, run_dir)
        _interrupt_at(p, run_dir, k_kill, signal.SIGKILL)
        assert p.wait(timeout=90) == -signal.SIGKILL
        assert load_final_state(run_dir)["step"] < STEPS
        # 3. Resume to the end.
        p = _start(cfg, run_dir)
        assert p.wait(timeout=120) == 0, _logs(run_dir)
        assert reference.wait(timeout=120) == 0, _logs(ref_dir)
    finally:
        for proc in (reference, p):
            if proc.poll() is None:
                proc.kill()
    a, b = load_final_state(ref_dir), load_final_state(run_dir)
    assert a["step"] == STEPS
    assert_states_identical(a, b)
    assert a["loader"] == b["loader"] and a["samples_seen"] == b["samples_seen"] == STEPS * 4
    # The log of the resumed run has every step once, in order, and the exports are identical.
    assert _logged_steps(run_dir) == list(range(1, STEPS + 1))
    from vdm.artifacts.export import load_export

    ea, eb = load_export(ref_dir / "export.pt"), load_export(run_dir / "export.pt")
    for (k, va), vb in zip(ea.net.state_dict().items(), eb.net.state_dict().values()):
        assert va.equal(vb), k
    assert ea.meta["step"] == STEPS
