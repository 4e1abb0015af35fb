"""The training work directory: stale temporaries of a killed save are removed on the next start, and a
second training on the same folder is refused (advisory lock) instead of overwriting the first one's
states. The stage commands read the workflow's own config files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, ArrayLoader, tiny_config_dict, write_config

from vdm.config import ExperimentConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def test_stale_temporaries_of_a_killed_save_are_removed(tmp_path):
    from vdm.train.loop import train

    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    stale = [ckpt / ".state-000000002.pt.k3j4h5.tmp", tmp_path / ".train_log.csv.x1y2.tmp",
             tmp_path / ".export.pt.abc.tmp"]
    for p in stale:
        p.write_bytes(b"\0" * 1024)
    keep = [ckpt / "notes.txt", tmp_path / ".other.pt.abc.tmp"]  # not ours: left alone
    for p in keep:
        p.write_text("x")
    cfg = ExperimentConfig.from_dict(tiny_config_dict(train={"steps": 2}))
    train(cfg, tmp_path, tmp_path / "export.pt", make_loader=ArrayLoader)
    assert not [p for p in stale if p.exists()]
    assert all(p.exists() for p in keep)
    assert not list(ckpt.glob(".*.tmp"))


def test_stale_sample_and_metrics_temporaries_are_removed(tmp_path):
    from vdm.utils.io import remove_stale_temporaries_of

    out = tmp_path / "samples.npz"
    left = [tmp_path / ".samples.npz.abcd.tmp", tmp_path / ".samples.gif.efgh.tmp"]
    for p in left:
        p.write_text("partial")
    (tmp_path / ".samples.npz.bak").write_text("not a temporary")
    assert sorted(remove_stale_temporaries_of(out, tmp_path / "samples.gif")) == sorted(left)
    assert (tmp_path / ".samples.npz.bak").exists()


def test_second_training_on_one_workdir_is_refused(tmp_path, tiny_shards):
    """A real `vdm train` holds the folder; a second one on it exits 1 naming the first (its pid)."""
    from vdm.train.cli import main

    cfg = write_config(tmp_path / "tiny.yaml", tiny_config_dict(
        tiny_shards, train={"steps": 100000, "checkpoint_every": 1000}))
    workdir = tmp_path / "w"
    first = subprocess.Popen([sys.executable, "-m", "vdm", "train", "--config", str(cfg), "--workdir", str(workdir),
                              "--executor", "debug"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while not (workdir / "train_log.csv").is_file():  # written once the lock is held
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "first training did not start"
            time.sleep(0.2)
        holder = (workdir / "train.lock").read_text()
        assert f"pid {first.pid}" in holder
        r = subprocess.run([sys.executable, "-m", "vdm", "train", "--config", str(cfg), "--workdir", str(workdir),
                            "--executor", "debug"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r.stderr
        assert "is in use by another training" in r.stderr and f"pid {first.pid}" in r.stderr, r.stderr
        # In-process, past the CLI's check, the trainer itself refuses too.
        from vdm.train.loop import train
        from vdm.utils.io import WorkdirBusy

        with pytest.raises(WorkdirBusy, match=f"pid {first.pid}"):
            train(ExperimentConfig.from_dict(yaml.safe_load(cfg.read_text())), workdir, None,
                  make_loader=ArrayLoader)
        assert main(["--config", str(cfg), "--workdir", str(workdir), "--executor", "debug"]) == 1
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    # The first one is gone (lock released with its process): the folder can be trained again.
    from vdm.utils.io import WorkdirLock

    WorkdirLock(workdir, "train.lock", "training").acquire().release()


@pytest.mark.parametrize("config", ["config/config.yaml", "config/test.yaml", *sorted(
    str(p.relative_to(REPO)) for p in (REPO / "config" / "paper").glob("*.yaml"))])
def test_stage_commands_read_the_workflow_config_files(config, capsys, tmp_path):
    """`vdm train/sample --config config/test.yaml` used to fail on the ablation/resources/report sections."""
    from vdm.config import ConfigError, load_config
    from vdm.sampling.cli import main as sample_main
    from vdm.train.cli import main as train_main

    path = REPO / config
    cfg = load_config(path)
    assert cfg.name == yaml.safe_load(path.read_text())["name"]
    assert train_main(["--config", str(path), "--workdir", "unused", "--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["steps"] == cfg.train.steps
    assert sample_main(["--export", "unused.pt", "--config", str(path), "--dry-run"] + ["--out", "x.npz"]) == 0
    # only the workflow's own sections are skipped: a typo at the top level is still an error
    bad = yaml.safe_load(path.read_text())
    bad["reprot"] = {}
    with pytest.raises(ConfigError, match="reprot"):
        load_config(write_config(tmp_path / "typo.yaml", bad))


def test_local_training_job_imports_the_installed_package_from_any_folder(tmp_path, tiny_shards):
    """`vdm train` started in a folder that holds a folder named `vdm` (e.g. the root of another clone, whose package
    is another version): the submitit job (`python -m submitit.core._submit`, which puts the working directory
    first on sys.path) must import the installed package, not that folder."""
    console = Path(sys.executable).parent / "vdm"
    if not console.is_file():
        pytest.skip(f"no console script {console}: vdm is not installed in this interpreter's environment")
    other = tmp_path / "vdm"
    other.mkdir()
    (other / "__init__.py").write_text("")
    (other / "config.py").write_text("OLDER_VERSION = True  # no ExperimentConfig here\n")
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config_dict(tiny_shards, train={"steps": 2}))
    r = subprocess.run([str(console), "train", "--config", str(cfg), "--workdir", str(tmp_path / "w"),
                        "--executor", "local"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "done: step 2" in r.stdout, r.stdout


def _processes_naming(text: str) -> list[int]:
    """Live processes whose command line holds ``text`` (Linux /proc)."""
    pids = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (p / "status").read_text()
        except OSError:
            continue
        if text in cmdline and "State:\tZ" not in status:
            pids.append(int(p.name))
    return pids


def _logged_steps(workdir: Path) -> list[int]:
    try:
        return [int(line.split(",")[0]) for line in (workdir / "train_log.csv").read_text().splitlines()[1:] if line]
    except (OSError, ValueError):
        return []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_launcher_stops_its_local_job_after_the_state_is_saved(tmp_path, tiny_shards, signum):
    """`vdm train` (local executor) started with SIGINT ignored, as `nohup` and `&` in a script start it, is sent
    SIGTERM or SIGINT: its training job ends too (no process of it is left once the launcher has exited), the state
    was saved at the step boundary (no periodic checkpoint in this run), and the launcher says so (exit 130)."""
    console = Path(sys.executable).parent / "vdm"
    if not console.is_file():
        pytest.skip(f"no console script {console}: vdm is not installed in this interpreter's environment")
    workdir = tmp_path / "w"
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config_dict(
        tiny_shards, train={"steps": 100000, "checkpoint_every": 100000, "log_every": 1}, launch={"executor": "local"}))
    launcher = subprocess.Popen([str(console), "train", "--config", str(cfg), "--workdir", str(workdir)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 180
        while len(_logged_steps(workdir)) < 3:
            assert launcher.poll() is None, launcher.communicate()
            assert time.monotonic() < deadline, "the training did not start"
            time.sleep(0.2)
        assert _processes_naming(str(workdir / "submitit")), "no job process found"
        seen = max(_logged_steps(workdir))
        launcher.send_signal(signum)  # the launcher only, as a scheduler or a supervisor stops it
        out, err = launcher.communicate(timeout=180)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for pid in _processes_naming(str(workdir / "submitit")):
            os.kill(pid, signal.SIGKILL)
    assert launcher.returncode == 130, out + err
    assert "stopped (state saved at the step boundary)" in err, err
    assert not _processes_naming(str(workdir / "submitit")), "the job outlived its launcher"
    states = sorted(int(p.stem.split("-")[1]) for p in (workdir / "checkpoints").glob("state-*.pt"))
    assert states and states[-1] >= seen, (states, seen)
