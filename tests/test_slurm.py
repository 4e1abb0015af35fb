"""Training through a real SLURM cluster (CI: the single-node cluster of .ci/local-slurm/).

Two tiny trainings are submitted at once with `vdm train --executor slurm`, each requesting a GPU
(the fake gres/gpu of the CI cluster: the resource plumbing is exercised, training runs on CPU).
One runs uninterrupted; the other gets `scancel --signal=USR2` (what SLURM sends on preemption or
before the time limit) mid-run, is requeued by submitit and must end with the same weights.
A third submission runs 2 tasks (2 GPUs requested) as gloo DDP through TorchDistributedEnvironment
and is preempted the same way. Everything that waits on SLURM has a timeout; jobs are cancelled on exit.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, assert_states_identical, load_final_state, tiny_config_dict, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(900)]  # hard cap: CI never hangs on SLURM

STEPS = 14
WAIT_S = 240  # upper bound for one CLI run (requeue delay on the CI cluster: ~15 s)


class Run:
    def __init__(self, tmp: Path, name: str, cfg: Path, *sets: str):
        self.dir = tmp / name
        self.dir.mkdir(parents=True)
        self.out = self.dir / "cli.log"
        cmd = [sys.executable, "-m", "vdm", "train", "--config", str(cfg), "--workdir", str(self.dir),
               "--export", str(self.dir / "export.pt"), "--executor", "slurm"]
        for s in sets:
            cmd += ["--set", s]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=open(self.out, "w"),
                                     stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def job_id(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"submitted slurm job (\d+)", self.text())
            if m:
                return m.group(1)
            assert self.proc.poll() is None, self.text()
            time.sleep(0.2)
        raise AssertionError(f"no job id after {timeout} s:\n{self.text()}")

    def wait_logged_step(self, step: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.dir / "train_log.csv", newline="") as f:
                    rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit()]
                if rows and int(rows[-1]["step"]) >= step:
                    return
            except OSError:
                pass
            assert self.proc.poll() is None, f"run ended before step {step}:\n{self.text()}"
            time.sleep(0.1)
        raise AssertionError(f"job did not reach step {step} within {timeout} s:\n{self.text()}")

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"vdm train did not finish within {WAIT_S} s:\n{self.text()}") from None

    def job_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted((self.dir / "submitit").rglob("*_log.*")))


def _scontrol(job: str) -> str:
    r = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30)
    return r.stdout


@pytest.fixture(scope="module")
def runs(slurm, tmp_path_factory, tiny_shards):
    tmp = tmp_path_factory.mktemp("slurm")
    cfg = write_config(tmp / "tiny.yaml", tiny_config_dict(
        tiny_shards, train={"steps": STEPS, "checkpoint_every": 100},
        launch={"executor": "slurm", "cpus_per_task": 1, "timeout_min": 10, "wait_timeout_min": 4}))
    one_gpu = ("launch.gpus_per_node=1", "launch.tasks_per_node=1")
    started: list[Run] = []
    try:
        reference = Run(tmp, "reference", cfg, *one_gpu)
        preempted = Run(tmp, "preempted", cfg, *one_gpu)
        started += [reference, preempted]
        job = preempted.job_id()
        preempted.wait_logged_step(4)
        subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
        rc_ref, rc_pre = reference.wait(), preempted.wait()
        # 2 ranks (2 fake GPUs, 2 tasks), preempted the same way; runs after the others (2 CPUs on the node).
        ddp = Run(tmp, "ddp", cfg, "launch.gpus_per_node=2", "launch.tasks_per_node=2", "train.steps=8")
        started.append(ddp)
        ddp_job = ddp.job_id()
        ddp.wait_logged_step(3)
        subprocess.run(["scancel", "--signal=USR2", ddp_job], check=True, timeout=30)
        rc_ddp = ddp.wait()
        # 2 loader worker processes (the paper configs use 6-8), the GPU asked for as a generic resource;
        # preempted the same way: must end bit for bit as the uninterrupted reference (0 workers)
        workers = Run(tmp, "workers", cfg, "train.num_workers=2", "launch.gpus_per_node=1",
                      "launch.tasks_per_node=1", "launch.gpu_request=gres")
        started.append(workers)
        workers_job = workers.job_id()
        workers.wait_logged_step(4)
        subprocess.run(["scancel", "--signal=USR2", workers_job], check=True, timeout=30)
        rc_workers = workers.wait()
        yield {"reference": (reference, rc_ref), "preempted": (preempted, rc_pre, job),
               "ddp": (ddp, rc_ddp, ddp_job), "workers": (workers, rc_workers, workers_job)}
    finally:
        for r in started:
            if r.proc.poll() is None:
                r.proc.kill()
            m = re.search(r"submitted slurm job (\d+)", r.text())
            if m and r.proc.returncode != 0:  # a finished job is left alone (its last task may still exit)
                subprocess.run(["scancel", m.group(1)], capture_output=True, timeout=30)


def test_slurm_training_with_gpu_request_completes(runs):
    run, rc = runs["reference"]
    assert rc == 0, run.text()
    assert (run.dir / "export.pt").is_file()
    assert load_final_state(run.dir)["step"] == STEPS
    script = next((run.dir / "submitit").rglob("*_submission.sh")).read_text()
    assert "#SBATCH --gpus-per-node=1" in script and "#SBATCH --signal=USR2@30" in script
    # SLURM granted the (fake) GPU to the task.
    assert re.search(r"SLURM_GPUS_ON_NODE=1 .*CUDA_VISIBLE_DEVICES=\d", run.job_logs()), run.job_logs()[-2000:]


def test_slurm_preemption_requeues_and_matches_uninterrupted(runs):
    (reference, _), (run, rc, job) = runs["reference"], runs["preempted"]
    assert rc == 0, run.text()
    logs = run.job_logs()
    assert "Requeued job" in logs and re.search(r"resumed from .*state-0+\d+\.pt", logs), logs[-3000:]
    assert "SLURM_RESTART_COUNT=1" in logs
    assert re.search(r"Restarts=1\b", _scontrol(job)) or "SLURM_RESTART_COUNT=1" in logs
    assert_states_identical(load_final_state(reference.dir), load_final_state(run.dir))


def test_slurm_ddp_two_tasks_preempted_and_requeued(runs):
    run, rc, job = runs["ddp"]
    assert rc == 0, run.text()
    logs = run.job_logs()
    assert "SLURM_PROCID=1 SLURM_NTASKS=2" in logs and "Requeued job" in logs, logs[-3000:]
    assert re.search(r"resumed from .*state-000000\d+\.pt", logs) and "SLURM_RESTART_COUNT=1" in logs
    state = load_final_state(run.dir)
    assert state["step"] == 8 and state["world_size"] == 2 and len(state["rng"]) == 2


def test_slurm_preemption_with_loader_workers_matches_uninterrupted(runs):
    (reference, _), (run, rc, _job) = runs["reference"], runs["workers"]
    assert rc == 0, run.text()
    script = next((run.dir / "submitit").rglob("*_submission.sh")).read_text()
    assert "#SBATCH --gres=gpu:1" in script and "--gpus-per-node" not in script
    logs = run.job_logs()
    assert "Requeued job" in logs and re.search(r"resumed from .*state-0+\d+\.pt", logs), logs[-3000:]
    assert re.search(r"SLURM_GPUS_ON_NODE=1 .*CUDA_VISIBLE_DEVICES=\d", logs), logs[-2000:]
    assert yaml.safe_load((run.dir / "config.yaml").read_text())["train"]["num_workers"] == 2
    assert_states_identical(load_final_state(reference.dir), load_final_state(run.dir))


def test_a_stopped_launcher_stops_its_slurm_job_after_the_state_is_saved(slurm, tmp_path, tiny_shards):
    """`vdm train --executor slurm` started with SIGINT ignored (as `nohup` and `&` in a script start it) is sent
    SIGTERM: it cancels its job (scancel: SLURM sends SIGTERM to the job's processes, the trainer saves its state at
    the step boundary) and waits for the job to end before it exits (130); the job is then no longer running."""
    import os
    import signal

    cfg = write_config(tmp_path / "tiny.yaml", tiny_config_dict(
        tiny_shards, train={"steps": 100000, "checkpoint_every": 100000, "log_every": 1},
        launch={"executor": "slurm", "cpus_per_task": 1, "timeout_min": 10}))
    workdir = tmp_path / "stopped"
    workdir.mkdir()
    out = workdir / "cli.log"
    proc = subprocess.Popen([sys.executable, "-m", "vdm", "train", "--config", str(cfg), "--workdir", str(workdir),
                             "--executor", "slurm"], cwd=REPO, stdin=subprocess.DEVNULL, stdout=open(out, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    job = None
    try:
        deadline = time.monotonic() + WAIT_S
        while job is None and time.monotonic() < deadline:
            m = re.search(r"submitted slurm job (\d+)", out.read_text(errors="replace"))
            job = m.group(1) if m else None
            assert proc.poll() is None, out.read_text(errors="replace")
            time.sleep(0.2)
        steps: list[int] = []
        while len(steps) < 3 and time.monotonic() < deadline:
            try:
                with open(workdir / "train_log.csv", newline="") as f:
                    steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("step", "").isdigit()]
            except OSError:
                pass
            assert proc.poll() is None, out.read_text(errors="replace")
            time.sleep(0.2)
        assert len(steps) >= 3, out.read_text(errors="replace")
        seen = max(steps)
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        if job:
            subprocess.run(["scancel", job], capture_output=True, timeout=30)
    text = out.read_text(errors="replace")
    assert rc == 130 and "stopped (state saved at the step boundary)" in text, text
    state = _scontrol(job)
    assert not re.search(r"JobState=(RUNNING|PENDING|COMPLETING)", state), state
    states = sorted(int(p.stem.split("-")[1]) for p in (workdir / "checkpoints").glob("state-*.pt"))
    assert states and states[-1] >= seen, (states, seen)
