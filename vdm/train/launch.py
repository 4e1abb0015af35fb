"""Training jobs through submitit (local / debug / SLURM), resuming automatically; the library behind
``vdm train`` (its flags live in :mod:`vdm.train.cli`).

The job is a :class:`submitit.helpers.Checkpointable`: on preemption or at its time limit SLURM sends
SIGUSR2 (``launch.signal_delay_s`` before the limit); the trainer finishes its step, saves its state
and submitit requeues the job, which resumes from ``DIR/checkpoints``. Multi-task jobs set up DDP
through ``submitit.helpers.TorchDistributedEnvironment``. The command waits for the job and, on
failure, exits non-zero naming the job's log files. Submitting from inside a SLURM job runs in
``submitit.helpers.clean_env()`` so the outer job's SLURM_* variables do not leak into the new one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from submitit.helpers import Checkpointable

from vdm.config import ExperimentConfig
from vdm.train import distributed as D
from vdm.train.config import LaunchConfig
from vdm.train.loop import TrainingInterrupted, train

log = logging.getLogger("vdm.train.launch")


class TrainJob(Checkpointable):
    """The submitted callable: train from a resolved config dict; requeued on preemption (Checkpointable)."""

    def __init__(self, cfg_dict: dict[str, Any], workdir: str, export: str | None):
        self.cfg_dict = cfg_dict
        self.workdir = workdir
        self.export = export

    def __call__(self) -> dict[str, Any]:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        cfg = ExperimentConfig.from_dict(self.cfg_dict, source=f"{self.workdir}/config")
        if cfg.train.mkl_cbwr:  # before the first MKL call
            os.environ.setdefault("MKL_CBWR", cfg.train.mkl_cbwr)
        _limit_threads()
        _log_job_environment()
        try:
            return train(cfg, self.workdir, self.export)
        except TrainingInterrupted as e:
            # Stopped by SIGTERM/SIGINT at a step boundary, state saved: a result, not a crash (no
            # post-mortem debugger under the debug executor); the command exits with 128 + SIGTERM.
            logging.getLogger("vdm.train").warning("%s", e)
            return {"interrupted": str(e)}
        finally:
            D.teardown()

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on SIGUSR2 (after the trainer saved its state): resubmit the same job."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(TrainJob(self.cfg_dict, self.workdir, self.export))


def _limit_threads() -> None:
    """Inside a SLURM task use the allocated cores (cpus_per_task) unless OMP_NUM_THREADS says otherwise;
    more threads than cores makes CPU training many times slower."""
    import torch

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, int(cpus)))


def _log_job_environment() -> None:
    keys = ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_JOB_GPUS", "SLURM_GPUS_ON_NODE",
            "CUDA_VISIBLE_DEVICES", "SLURM_RESTART_COUNT")
    found = [f"{k}={os.environ[k]}" for k in keys if k in os.environ]
    if found:
        log.info("job environment: %s", " ".join(found))


def sbatch_parameters(lc: LaunchConfig) -> dict[str, Any]:
    """The SLURM request of ``lc`` (a LaunchConfig), named as submitit's SlurmExecutor and its sbatch script
    name them (``job_name``, ``time``, ``ntasks_per_node``, ``mem``, ...)."""
    from submitit.slurm.slurm import _convert_mem

    params: dict[str, Any] = dict(job_name=lc.job_name, time=lc.timeout_min, nodes=lc.nodes,
                                  ntasks_per_node=lc.tasks_per_node, cpus_per_task=lc.cpus_per_task,
                                  signal_delay_s=lc.signal_delay_s)
    if lc.gpus_per_node:
        typed = f"{lc.gpu_type}:{lc.gpus_per_node}" if lc.gpu_type else lc.gpus_per_node
        if lc.gpu_request == "gres":
            params["gres"] = f"gpu:{typed}"
        else:
            params["gpus_per_node"] = typed
    if lc.constraint:
        params["constraint"] = lc.constraint
    if lc.qos:
        params["qos"] = lc.qos
    if lc.mem_gb:
        params["mem"] = _convert_mem(lc.mem_gb)
    if lc.partition:
        params["partition"] = lc.partition
    if lc.slurm_account:
        params["account"] = lc.slurm_account
    if lc.slurm_setup:
        params["setup"] = list(lc.slurm_setup)
    if lc.slurm_additional_parameters:
        params["additional_parameters"] = dict(lc.slurm_additional_parameters)
    return params


def sbatch_script(lc: LaunchConfig, folder: str | Path, command: str) -> str:
    """The sbatch script submitit writes for ``lc`` (no SLURM client needed: for checks and dry runs)."""
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(command=command, folder=folder, **sbatch_parameters(lc))


def make_executor(cfg: ExperimentConfig, workdir: Path, executor: str) -> Any:
    """A submitit executor with the resources of ``cfg.launch`` (SLURM: :func:`sbatch_parameters`)."""
    import submitit

    lc = cfg.launch
    folder = Path(lc.folder) if lc.folder else workdir / "submitit"
    # The job runs `python -m submitit.core._submit`, which would put the working directory first on sys.path: a
    # folder named `vdm` there (a clone under its default name, one level up) would shadow the installed package.
    # -P (Python >= 3.11) keeps it off, so the job imports what the launcher imported.
    python = f"{shlex.quote(sys.executable)} -P"
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster=executor, slurm_max_num_timeout=lc.max_num_timeout,
                               local_python=python, slurm_python=python)
    if executor == "slurm":
        ex.update_parameters(**{f"slurm_{k}": v for k, v in sbatch_parameters(lc).items()})
        return ex
    params: dict[str, Any] = dict(name=lc.job_name, timeout_min=lc.timeout_min, nodes=lc.nodes,
                                  tasks_per_node=lc.tasks_per_node, cpus_per_task=lc.cpus_per_task)
    if lc.gpus_per_node:
        params["gpus_per_node"] = lc.gpus_per_node
    ex.update_parameters(**params)
    return ex


def _log_paths(job: Any) -> str:
    try:
        return f"stdout: {job.paths.stdout}\n  stderr: {job.paths.stderr}"
    except Exception:  # debug jobs have no per-task files
        return "(no log files)"


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


@contextlib.contextmanager
def _local_controller_ignores_sigint(executor: str) -> Iterator[None]:
    """While a local job is submitted, SIGINT is ignored, and so it stays in the job's controller process (an ignored
    signal is inherited): a Ctrl-C to the terminal's process group would otherwise make submitit's controller kill
    the trainer one second after passing the signal on, before the trainer saved its state at the step boundary.
    The trainer handles SIGINT itself (its own handler), and the launcher stops the job with SIGTERM."""
    if executor != "local" or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_job(job: Any, executor: str, wait_s: float) -> bool:
    """Stop a submitted training job and wait up to ``wait_s`` seconds for it to end; True if it ended. Local: SIGTERM
    to its controller, which passes it to the trainer (whatever signals the trainer inherited as ignored); the
    trainer saves its state at the step boundary and exits; still running at the deadline: killed, the controller and
    the trainer. SLURM: scancel (SLURM sends SIGTERM to every process of the job), then wait for its end."""
    deadline = time.monotonic() + wait_s
    process = getattr(job, "_process", None) if executor == "local" else None
    if executor == "local" and process is not None:
        children = _child_pids(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
            return True
        except subprocess.TimeoutExpired:
            for pid in [*_child_pids(process.pid), *children]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait()
            return False
    if executor == "debug":
        return True
    job.cancel(check=False)
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # sacct may lag behind scancel
            if job.done():
                return True
        time.sleep(2)
    return False


def _child_pids(pid: int) -> list[int]:
    """The direct children of process ``pid`` (Linux /proc; [] where it is not available)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            children += [int(c) for c in (task / "children").read_text().split()]
    return children


def submit_and_wait(cfg: ExperimentConfig, workdir: Path, export: Path | None, executor: str) -> int:
    import submitit

    ex = make_executor(cfg, workdir, executor)
    job_fn = TrainJob(cfg.to_dict(), str(workdir), str(export) if export else None)

    def _cancel(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    with submitit.helpers.clean_env(), _local_controller_ignores_sigint(executor):
        job = ex.submit(job_fn)
    print(f"vdm train: submitted {executor} job {job.job_id}\n  {_log_paths(job)}", flush=True)
    if executor != "debug":
        # both, whatever the launcher inherited: under `nohup` or `&` in a script SIGINT starts out ignored
        signal.signal(signal.SIGTERM, _cancel)
        signal.signal(signal.SIGINT, _cancel)
    deadline = time.monotonic() + cfg.launch.wait_timeout_min * 60 if cfg.launch.wait_timeout_min > 0 else None
    try:
        if deadline is not None:
            while not job.done():
                if time.monotonic() > deadline:
                    job.cancel(check=False)
                    print(f"vdm train: gave up waiting for job {job.job_id} after {cfg.launch.wait_timeout_min} min "
                          f"(launch.wait_timeout_min); cancelled\n  {_log_paths(job)}", file=sys.stderr)
                    return 1
                time.sleep(2)
        result = job.results()[0]  # one result per task; rank 0's is the run's
    except KeyboardInterrupt as e:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the wait for the saved state
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ended = stop_job(job, executor, cfg.launch.cancel_wait_s)
        print(f"vdm train: interrupted ({e}); job {job.job_id} "
              + ("stopped (state saved at the step boundary); rerun to resume" if ended else
                 f"did not end within launch.cancel_wait_s = {cfg.launch.cancel_wait_s:g} s and was killed; "
                 "rerun to resume from its newest checkpoint") + f"\n  {_log_paths(job)}", file=sys.stderr)
        return 130
    except Exception as e:  # submitit raises FailedJobError / UncompletedJobError with the job's traceback
        stderr = getattr(getattr(job, "paths", None), "stderr", None)
        print(f"vdm train: job {job.job_id} failed: {type(e).__name__}: {e}\n  {_log_paths(job)}", file=sys.stderr)
        if stderr is not None:
            print(f"--- last lines of {stderr} ---\n{_tail(stderr)}", file=sys.stderr)
        return 1
    if "interrupted" in result:
        print(f"vdm train: job {job.job_id} {result['interrupted']}", file=sys.stderr)
        return 143
    print(f"vdm train: job {job.job_id} done: step {result['step']}, {result['samples_seen']} samples seen"
          + (f"; export {export}" if export else ""), flush=True)
    return 0
