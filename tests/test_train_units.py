"""Trainer parts: config validation, EMA, training states on disk, seeded example noise, learning rate,
conditioning dropout, the NaN stop, and the submitit/SLURM parameters of the launcher."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math

import pytest
import torch
from conftest import ArrayLoader, load_final_state, tiny_config_dict

from vdm.config import ConfigError, ExperimentConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(**sections) -> ExperimentConfig:
    return ExperimentConfig.from_dict(tiny_config_dict(**sections))


# ---- config -------------------------------------------------------------------------------------
@pytest.mark.parametrize("section,values,needle", [
    ("train", {"batch_size": 0}, "batch_size"),
    ("train", {"ema_decay": 1.0}, "ema_decay"),
    ("train", {"cond_drop_prob": 1.5}, "cond_drop_prob"),
    ("train", {"precision": "fp16"}, "precision"),
    ("train", {"grad_clip": -1.0}, "grad_clip"),
    ("train", {"warmup": 10}, "warmup"),  # unknown key
    ("launch", {"gpus_per_node": 2, "tasks_per_node": 1}, "tasks_per_node"),
    ("launch", {"executor": "kubernetes"}, "executor"),
])
def test_bad_train_and_launch_config_names_the_key(section, values, needle):
    with pytest.raises(ConfigError, match=needle):
        _cfg(**{section: values})


def test_paper_defaults():
    """Appendix A: Adam(0.9, 0.99), lr 3e-4, no weight decay, EMA 0.9999 (UCF-101/text)."""
    from vdm.train.config import TrainConfig

    tc = TrainConfig()
    assert (tc.adam_beta1, tc.adam_beta2, tc.lr, tc.weight_decay, tc.ema_decay) == (0.9, 0.99, 3e-4, 0.0, 0.9999)
    assert tc.warmup_steps == 0 and tc.grad_clip == 0.0  # paper silent: off


def test_batch_not_divisible_by_ranks_times_accumulation(tmp_path):
    from vdm.train.loop import Trainer

    with pytest.raises(ValueError, match="not divisible"):
        Trainer(_cfg(train={"batch_size": 3, "grad_accum": 2}), tmp_path, None, make_loader=ArrayLoader)


# ---- EMA ----------------------------------------------------------------------------------------
def test_ema_update_and_warmup():
    from vdm.train.ema import EMA

    net = torch.nn.Linear(2, 1)
    ema = EMA(net, 0.9)
    w0 = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.shadow["weight"], w0 + 0.1)  # 0.9·w0 + 0.1·(w0 + 1)
    warm = EMA(net, 0.9999, warmup=True)
    assert warm.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    for _ in range(5):
        warm.update(net)
    assert warm.current_decay() == pytest.approx(6 / 15)
    state = warm.state_dict()
    again = EMA(net, 0.9999, warmup=True)
    again.load_state_dict(state)
    assert again.num_updates == 5 and torch.equal(again.shadow["weight"], warm.shadow["weight"])


# ---- training states on disk --------------------------------------------------------------------
def test_states_keep_newest_and_skip_unreadable(tmp_path, caplog):
    from vdm.train import checkpoint as ckpt

    for step in (2, 4, 6, 8):
        ckpt.save_state(tmp_path, {"step": step, "w": torch.full((3,), float(step))}, keep=3)
    assert [s for s, _ in ckpt.list_states(tmp_path)] == [4, 6, 8]
    (tmp_path / ".state-000000010.pt.abc.tmp").write_bytes(b"partial")  # a save killed midway: ignored
    ckpt.state_path(tmp_path, 8).write_bytes(b"\x00garbage")  # damaged newest: fall back to step 6
    state, path = ckpt.load_latest(tmp_path)
    assert state["step"] == 6 and path.name == "state-000000006.pt"
    assert "skipping training state" in caplog.text
    assert ckpt.load_latest(tmp_path / "none") is None


# ---- noise, learning rate, conditioning dropout -------------------------------------------------
def test_example_noise_does_not_depend_on_the_split():
    from vdm.train.loop import draw_noise

    shape = (4, 1, 3, 8, 8)
    t, eps, coin = draw_noise(7, 5, 0, 4, shape, torch.device("cpu"), low_discrepancy=False)
    t2, eps2, coin2 = draw_noise(7, 5, 2, 4, (2, *shape[1:]), torch.device("cpu"), low_discrepancy=False)
    assert torch.equal(t[2:], t2) and torch.equal(eps[2:], eps2) and torch.equal(coin[2:], coin2)
    t_next, *_ = draw_noise(7, 6, 0, 4, shape, torch.device("cpu"), low_discrepancy=False)
    assert not torch.equal(t, t_next)  # a new step draws new noise
    ld, *_ = draw_noise(7, 5, 0, 4, shape, torch.device("cpu"), low_discrepancy=True)
    gaps = torch.sort(ld).values.diff()
    torch.testing.assert_close(gaps, torch.full((3,), 0.25))  # stratified over the global batch


def test_lr_warmup(tmp_path):
    from vdm.train.loop import Trainer

    tr = Trainer(_cfg(train={"warmup_steps": 4, "lr": 1e-3}), tmp_path, None, make_loader=ArrayLoader)
    assert [tr.lr_at(s) for s in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert isinstance(tr.optimizer, torch.optim.AdamW)
    tr2 = Trainer(_cfg(train={"weight_decay_mode": "l2"}), tmp_path / "b", None, make_loader=ArrayLoader)
    assert type(tr2.optimizer) is torch.optim.Adam and tr2.lr_at(0) == tr2.tc.lr


def test_lr_cosine_schedule():
    """Cosine: full lr right after the warm-up, lr·lr_final at the last step, half-way in between at the
    midpoint, never increasing; a bad lr_final or a warm-up as long as training is refused."""
    import math

    from vdm.config_base import ConfigError
    from vdm.train.config import TrainConfig
    from vdm.train.loop import lr_at

    tc = TrainConfig(steps=105, lr=1e-3, warmup_steps=5, lr_schedule="cosine", lr_final=0.1)
    lrs = [lr_at(tc, s) for s in range(tc.steps)]
    assert lrs[:5] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3])  # the warm-up as before
    assert lrs[5] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4)
    assert lrs[55] == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * 50 / 99)))
    assert all(b <= a for a, b in zip(lrs[5:], lrs[6:])) and lrs[6] < lrs[5]
    assert lr_at(TrainConfig(steps=10, lr=1e-3, lr_schedule="cosine"), 9) == 0.0  # default lr_final 0
    assert lr_at(TrainConfig(steps=10, lr=1e-3), 9) == 1e-3  # constant (the paper) stays the default
    with pytest.raises(ConfigError, match="lr_final"):
        TrainConfig(lr_final=1.5).validate()
    with pytest.raises(ConfigError, match="warmup_steps"):
        TrainConfig(steps=10, warmup_steps=10, lr_schedule="cosine").validate()


def test_trainer_applies_the_cosine_lr(tmp_path):
    """The optimizer steps with the schedule's lr (read back from the CSV log's lr column)."""
    import csv

    from vdm.train.loop import Trainer, lr_at

    cfg = _cfg(train={"steps": 6, "lr": 1e-3, "lr_schedule": "cosine", "log_every": 1})
    tr = Trainer(cfg, tmp_path, None, make_loader=ArrayLoader)
    tr.run()
    rows = list(csv.DictReader(open(tmp_path / "train_log.csv")))
    assert [float(r["lr"]) for r in rows] == pytest.approx([lr_at(tr.tc, s) for s in range(6)], rel=1e-5)
    assert float(rows[0]["lr"]) > float(rows[-1]["lr"]) == 0.0


@pytest.mark.parametrize("mode", ["decoupled", "l2"])
def test_foreach_adam_is_bitwise_the_per_tensor_loop(tmp_path, mode):
    """The trainer's optimizer is the multi-tensor (foreach) Adam/AdamW, and its steps are bitwise those of
    torch's per-tensor loop (so the speed-up changes no number)."""
    from vdm.train.loop import Trainer

    tr = Trainer(_cfg(train={"weight_decay_mode": mode, "weight_decay": 0.01}), tmp_path, None,
                 make_loader=ArrayLoader)
    assert tr.optimizer.defaults["foreach"] is True
    loop_model = copy.deepcopy(tr.model)
    accepted = inspect.signature(type(tr.optimizer)).parameters
    kw = {k: v for k, v in tr.optimizer.defaults.items() if k in accepted}
    loop_opt = type(tr.optimizer)(loop_model.parameters(), **{**kw, "foreach": False})
    g = torch.Generator().manual_seed(0)
    for step in range(3):
        for p, q in zip(tr.model.parameters(), loop_model.parameters()):
            p.grad = torch.randn(p.shape, generator=g) * (step + 1)
            q.grad = p.grad.clone()
        tr.optimizer.step()
        loop_opt.step()
    for p, q in zip(tr.model.parameters(), loop_model.parameters()):
        assert torch.equal(p, q)


def test_conditioning_dropout(tmp_path):
    from vdm.train.loop import Trainer

    tr = Trainer(_cfg(train={"cond_drop_prob": 0.25}), tmp_path, None, make_loader=ArrayLoader)
    coin = torch.linspace(0, 0.999, 1000)
    cond = tr._conditioning({"cls": torch.zeros(1000, dtype=torch.long)}, coin)
    assert cond["cond_keep"].float().mean().item() == pytest.approx(0.75, abs=0.002)
    with pytest.raises(KeyError, match="cls"):
        tr._conditioning({}, coin)
    uncond = Trainer(_cfg(model={"num_classes": 0}), tmp_path / "u", None, make_loader=ArrayLoader)
    assert uncond._conditioning({}, coin) == {}  # nothing to drop: no cond_keep


def test_joint_batches_condition_each_frame_on_its_own_label(tmp_path):
    """The trainer hands the U-Net the per-frame labels of a joint batch (not the host's for every frame)."""
    from vdm.train.loop import Trainer

    tr = Trainer(_cfg(train={"batch_size": 2}), tmp_path, None, make_loader=ArrayLoader)
    frame_cls = torch.tensor([[5, 5, 5, 5, 7, 9], [1, 1, 1, 1, 2, 3]])
    cond = tr._conditioning({"cls": torch.tensor([5, 1]), "frame_cls": frame_cls}, torch.ones(2))
    assert torch.equal(cond["cls"], frame_cls) and cond["cond_keep"].tolist() == [True, True]
    batch = next(iter(ArrayLoader(tr.cfg, batch_size=2, seed=0, rank=0, world_size=1)))
    batch["frame_cls"] = frame_cls
    loss = tr._micro_loss(batch, 0)  # the U-Net takes [b, T+K] labels
    assert loss.shape == (2,) and torch.isfinite(loss).all()


# ---- loop behaviour -----------------------------------------------------------------------------
def test_nan_loss_stops_and_keeps_last_good_state(tmp_path):
    from vdm.train.loop import NonFiniteLossError, train

    def nan_loader(cfg, **kw):
        return ArrayLoader(cfg, nan_at=5, **kw)  # the 6th batch has a NaN pixel

    cfg = _cfg(train={"steps": 8, "checkpoint_every": 2})
    with pytest.raises(NonFiniteLossError,
                       match=r"step 5 holds non-finite pixels \(records 20 on rank 0\).*state-000000004\.pt"):
        train(cfg, tmp_path, tmp_path / "export.pt", make_loader=nan_loader)
    assert load_final_state(tmp_path)["step"] == 4
    assert not (tmp_path / "export.pt").exists()


def test_diverged_state_is_not_kept_as_last_good(tmp_path):
    """train.lr 1e6 after 4 good steps: the step-5 state (weights after the first huge update) gives a
    NaN/huge loss. It must not stay the newest state (else a rerun with a lower lr resumes from it and
    fails again): it is moved to checkpoints/diverged/, the message names the last good state and how to
    restart, and a rerun with a sane lr resumes from step 4 and finishes -- even with keep_checkpoints 1."""
    from vdm.train.loop import NonFiniteLossError, train

    def cfg(lr, steps):
        return _cfg(train={"steps": steps, "checkpoint_every": 1, "keep_checkpoints": 1, "lr": lr})

    train(cfg(1e-3, 4), tmp_path, None, make_loader=ArrayLoader)
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg(1e6, 8), tmp_path, None, make_loader=ArrayLoader)
    msg = str(err.value)
    assert "diverged at step 5" in msg and "state-000000004.pt (step 4)" in msg, msg
    assert f"remove {tmp_path / 'checkpoints'}" in msg and "diverged/" in msg, msg
    assert (tmp_path / "checkpoints" / "diverged" / "state-000000005.pt").is_file()
    assert load_final_state(tmp_path)["step"] == 4
    assert train(cfg(1e-3, 8), tmp_path, None, make_loader=ArrayLoader)["step"] == 8
    final = load_final_state(tmp_path)
    assert all(torch.isfinite(v).all() for v in final["model"].values())
    assert [p.name for p in (tmp_path / "checkpoints").glob("state-*.pt")] == ["state-000000008.pt"]


def test_loss_above_max_loss_counts_as_diverged(tmp_path):
    """A finite but absurd loss (here: any loss, with train.max_loss 1e-6) stops like a NaN."""
    from vdm.train.loop import NonFiniteLossError, train

    with pytest.raises(NonFiniteLossError, match=r"diverged at step 0: loss .* > train\.max_loss 1e-06"):
        train(_cfg(train={"steps": 2, "max_loss": 1e-6}), tmp_path, None, make_loader=ArrayLoader)


def test_csv_log_and_export(tmp_path):
    import csv

    from vdm.artifacts.export import load_export
    from vdm.train.loop import CSV_COLUMNS, train

    cfg = _cfg(train={"steps": 4, "log_every": 2, "grad_clip": 1.0})
    out = train(cfg, tmp_path, tmp_path / "export.pt", make_loader=ArrayLoader)
    assert out == {"step": 4, "samples_seen": 16}
    rows = list(csv.DictReader(open(tmp_path / "train_log.csv")))
    assert tuple(rows[0]) == CSV_COLUMNS and [r["step"] for r in rows] == ["2", "4"]
    assert all(math.isfinite(float(r["loss"])) and float(r["samples_per_s"]) > 0 for r in rows)
    ex = load_export(tmp_path / "export.pt")
    assert ex.meta["step"] == 4 and ex.model_cfg == cfg.model and ex.diffusion_cfg.prediction == "v"
    state = load_final_state(tmp_path)
    for k, v in ex.net.state_dict().items():
        assert torch.equal(v, state["ema"]["shadow"][k])
    # A second call finds the run complete: no step is trained again, the export is rewritten.
    assert train(cfg, tmp_path, tmp_path / "export2.pt", make_loader=ArrayLoader)["step"] == 4
    assert (tmp_path / "export2.pt").is_file()


def test_watching_a_run_sample_grids_tensorboard_and_step_exports(tmp_path):
    """sample_every: fixed-seed EMA grids (GIF + PNG) at steps 2, 4 (the end); TensorBoard scalars and
    images; export_steps 0 and 2. Watching changes nothing in training: the states equal a plain run."""
    from conftest import assert_states_identical
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vdm.artifacts.export import load_export
    from vdm.train.loop import train

    watched = _cfg(train={"steps": 4, "sample_every": 2, "sample_grid": 3, "sample_steps": 2,
                          "export_steps": [0, 2], "log_every": 1})
    train(watched, tmp_path / "w", tmp_path / "w.pt", make_loader=ArrayLoader)
    for step in (2, 4):
        gif = Image.open(tmp_path / "w" / "samples" / f"step-{step:09d}.gif")
        assert gif.n_frames == watched.data.frames
        png = Image.open(tmp_path / "w" / "samples" / f"step-{step:09d}.png")
        assert png.size[1] > png.size[0] / watched.data.frames  # 3 rows of frames
    assert sorted(p.name for p in (tmp_path / "w" / "exports").glob("*.pt")) == ["step-000000000.pt",
                                                                                 "step-000000002.pt"]
    assert load_export(tmp_path / "w" / "exports" / "step-000000002.pt").meta["step"] == 2
    acc = EventAccumulator(str(tmp_path / "w" / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]
    assert {"train/lr", "train/grad_norm", "train/samples_per_s"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Images("samples/frames")] == [2, 4]
    plain = _cfg(train={"steps": 4, "log_every": 1})
    train(plain, tmp_path / "p", None, make_loader=ArrayLoader)
    assert_states_identical(load_final_state(tmp_path / "w"), load_final_state(tmp_path / "p"))
    # the same seeds every time: a second grid of the same weights is the same video
    from vdm.train.watch import SampleGrids

    ex = load_export(tmp_path / "w.pt")
    grids = SampleGrids(watched, ex.net, tmp_path / "g")
    assert (grids.sample(ex.net.state_dict()) == grids.sample(ex.net.state_dict())).all()


def test_resume_refuses_other_model_or_world_size(tmp_path):
    from vdm.train.loop import train

    train(_cfg(train={"steps": 2}), tmp_path, None, make_loader=ArrayLoader)
    with pytest.raises(ValueError, match="model config differs"):
        train(_cfg(train={"steps": 4}, model={"base_channels": 8}), tmp_path, None, make_loader=ArrayLoader)


def test_resume_may_change_how_the_network_is_run(tmp_path, caplog):
    """gradient_checkpointing / recompute_norm_act change memory and time, not the network: a run resumes
    across them, warning that the resume is not exact for them."""
    from vdm.train.loop import train

    train(_cfg(train={"steps": 2}, model={"recompute_norm_act": True}), tmp_path, None, make_loader=ArrayLoader)
    with caplog.at_level("WARNING", logger="vdm.train.loop"):
        train(_cfg(train={"steps": 3}, model={"recompute_norm_act": False, "gradient_checkpointing": True}),
              tmp_path, None, make_loader=ArrayLoader)
    assert "model.recompute_norm_act" in caplog.text and "model.gradient_checkpointing" in caplog.text


# ---- launcher -----------------------------------------------------------------------------------
_SLURM_LAUNCH = {"executor": "slurm", "partition": "gpu", "nodes": 2, "gpus_per_node": 4, "tasks_per_node": 4,
                 "cpus_per_task": 8, "mem_gb": 64, "timeout_min": 240, "signal_delay_s": 300,
                 "slurm_account": "proj", "slurm_additional_parameters": {"qos": "high"},
                 "slurm_setup": ["module load cuda"]}


def test_slurm_parameters_reach_the_sbatch_script(tmp_path):
    """The sbatch script of the launch section, built without a SLURM client (runs anywhere)."""
    from vdm.train.launch import TrainJob, sbatch_script

    cfg = _cfg(launch=_SLURM_LAUNCH)
    text = sbatch_script(cfg.launch, tmp_path, "python -m x")
    for line in ("--partition=gpu", "--nodes=2", "--gpus-per-node=4", "--ntasks-per-node=4", "--cpus-per-task=8",
                 "--mem=64GB", "--time=240", "--signal=USR2@300", "--account=proj", "--qos=high",
                 "--job-name=vdm-train"):
        assert f"#SBATCH {line}" in text, line
    assert "module load cuda" in text
    job = TrainJob(cfg.to_dict(), str(tmp_path), None)
    again = job.checkpoint()  # what submitit requeues: the same job, which resumes from the workdir
    assert again.function.cfg_dict == job.cfg_dict and again.function.workdir == job.workdir


def test_gpu_request_as_gres_with_type_constraint_and_qos(tmp_path):
    """Sites that account GPUs as generic resources: --gres=gpu:<type>:N instead of --gpus-per-node."""
    from vdm.train.launch import sbatch_script

    lc = _cfg(launch={**_SLURM_LAUNCH, "slurm_additional_parameters": {}, "gpu_request": "gres", "gpu_type": "a100",
                      "constraint": "ib", "qos": "low"}).launch
    text = sbatch_script(lc, tmp_path, "python -m x")
    for line in ("--gres=gpu:a100:4", "--constraint=ib", "--qos=low", "--ntasks-per-node=4"):
        assert f"#SBATCH {line}" in text, line
    assert "--gpus-per-node" not in text
    typed = sbatch_script(_cfg(launch={**_SLURM_LAUNCH, "gpu_type": "h100"}).launch, tmp_path, "python -m x")
    assert "#SBATCH --gpus-per-node=h100:4" in typed and "--gres" not in typed


@pytest.mark.usefixtures("slurm")
def test_slurm_executor_writes_that_sbatch_script(tmp_path):
    """SLURM counterpart: submitit's real SlurmExecutor (needs srun) writes exactly that script."""
    from vdm.train.launch import make_executor, sbatch_script

    cfg = _cfg(launch=_SLURM_LAUNCH)
    ex = make_executor(cfg, tmp_path, "slurm")
    text = ex._executor._make_submission_file_text("python -m x", "%j")
    assert text == sbatch_script(cfg.launch, ex._executor.folder, "python -m x")
    assert ex._executor.max_num_timeout == cfg.launch.max_num_timeout


def test_cli_dry_run_and_bad_override(tmp_path, capsys):
    import yaml

    from vdm.train.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict()))
    assert main(["--config", str(path), "--workdir", str(tmp_path / "w"), "--dry-run",
                 "--set", "train.steps=3"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["steps"] == 3
    assert main(["--config", str(path), "--workdir", str(tmp_path / "w"), "--set", "train.stepz=3"]) == 2
    assert "train.stepz" in capsys.readouterr().err


def test_dataclass_fields_are_documented():
    """Every TrainConfig/LaunchConfig field has a comment where it is declared."""
    import inspect

    from vdm.train import config as mod

    src = inspect.getsource(mod)
    for cls in (mod.TrainConfig, mod.LaunchConfig):
        for f in dataclasses.fields(cls):
            line = next(line for line in src.splitlines() if line.strip().startswith(f"{f.name}:"))
            idx = src.splitlines().index(line)
            assert "#" in line or src.splitlines()[idx - 1].strip().startswith("#"), f.name


def test_text_conditioning_reaches_the_unet(tmp_path, monkeypatch):
    """Text models: captions → encoder tokens + mask, dropped together with the class for CFG.
    (Encoder stubbed here; the real encoder is tested with vdm.model.text_encoder.)"""
    import vdm.model.text_encoder as te
    from vdm.model.unet import UNet3D
    from vdm.train.loop import Trainer

    class StubEncoder:
        dim = 8

        def __call__(self, captions):
            L = max(len(c.split()) for c in captions)
            tokens = torch.zeros(len(captions), L, 8)  # [B, L, D]
            mask = torch.zeros(len(captions), L, dtype=torch.bool)  # [B, L]
            for i, c in enumerate(captions):
                n = len(c.split())
                tokens[i, :n] = float(len(c))
                mask[i, :n] = True
            return tokens, mask

    monkeypatch.setattr(te, "load_text_encoder", lambda name: StubEncoder())
    seen = {}
    forward = UNet3D.forward

    def spy(self, z_t, logsnr_t, **cond):
        seen.update(cond)
        return forward(self, z_t, logsnr_t, **cond)

    monkeypatch.setattr(UNet3D, "forward", spy)

    def captioned(cfg, **kw):
        for batch in ArrayLoader(cfg, **kw):
            batch["txt"] = ["a b", "c", "d e f", "g"][: len(batch["key"])]
            yield batch

    tr = Trainer(_cfg(model={"text_dim": 8}, train={"cond_drop_prob": 0.5, "steps": 1}), tmp_path, None,
                 make_loader=captioned)
    tr.train_step(iter(tr.loader))
    assert seen["text"].shape == (4, 3, 8) and seen["text_mask"].sum(1).tolist() == [2, 1, 3, 1]
    assert seen["cond_keep"].dtype == torch.bool and seen["cls"].shape == (4,)
    with pytest.raises(ValueError, match="text_dim=16"):
        Trainer(_cfg(model={"text_dim": 16}), tmp_path / "b", None, make_loader=captioned)


@pytest.mark.parametrize("require", ["0", "1"])
def test_slurm_tests_skip_visibly_or_fail_when_required(require, monkeypatch):
    """Without a SLURM client: skipped with the reason, or failed under VDM_REQUIRE_SLURM=1."""
    from conftest import check_slurm

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("VDM_REQUIRE_SLURM", require)
    expected = pytest.fail.Exception if require == "1" else pytest.skip.Exception
    with pytest.raises(expected, match="sbatch not on PATH"):
        check_slurm()


def test_grad_clip_bounds_the_update_norm(tmp_path):
    from vdm.train.loop import Trainer

    tr = Trainer(_cfg(train={"grad_clip": 1e-3}), tmp_path, None, make_loader=ArrayLoader)
    _, grad_norm, _ = tr.train_step(iter(tr.loader))
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in tr.model.parameters()])).item()
    assert grad_norm > 1e-2 and clipped == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_image_loss_weight(tmp_path, weight):
    """Weight 0: the K appended image frames do not enter the loss (changing them changes nothing)."""
    from vdm.train.loop import Trainer

    tr = Trainer(_cfg(train={"image_loss_weight": weight}, model={"dropout": 0.0}), tmp_path, None,
                 make_loader=ArrayLoader)
    batch = next(iter(tr.loader))
    with torch.no_grad():
        a = tr._micro_loss(batch, 0)
        batch["video"][:, :, batch["is_image"][0]] *= -1  # flip the image frames only
        b = tr._micro_loss(batch, 0)
    assert torch.equal(a, b) == (weight == 0.0)


def test_resume_exact_even_if_the_loader_draws_from_global_rng(tmp_path):
    """A loader that draws from the global torch RNG (as a DataLoader with workers does when it
    starts) must not shift the model's dropout draws between a resumed and an uninterrupted run."""
    from conftest import assert_states_identical

    from vdm.train.loop import train

    class GreedyLoader(ArrayLoader):
        def __iter__(self):
            torch.rand(1)  # at start, like DataLoader's base seed
            for batch in super().__iter__():
                torch.rand(1)
                yield batch

    def cfg(steps):
        return _cfg(train={"steps": steps, "checkpoint_every": 2}, model={"dropout": 0.3})

    train(cfg(4), tmp_path / "a", None, make_loader=GreedyLoader)
    train(cfg(2), tmp_path / "b", None, make_loader=GreedyLoader)
    train(cfg(4), tmp_path / "b", None, make_loader=GreedyLoader)
    assert_states_identical(load_final_state(tmp_path / "a"), load_final_state(tmp_path / "b"))


def test_resume_on_other_code_is_refused_unless_allowed(tmp_path):
    """Every training segment appends its run record (code hash, git state, host, SLURM ids) to runs.jsonl;
    a resume whose vdm sources differ from the segment before is refused, or with
    train.allow_code_change continued and recorded; the export's sidecar lists the segments."""
    import json

    from vdm.runinfo import package_sha256, read_sidecar
    from vdm.train.loop import CodeChangedError, Trainer

    export = tmp_path / "export.pt"
    Trainer(_cfg(train={"steps": 2}), tmp_path, export, make_loader=ArrayLoader).run()
    runs = tmp_path / "runs.jsonl"
    first = json.loads(runs.read_text().splitlines()[0])
    assert first["code_id"] == package_sha256() and first["start_step"] == 0 and first["git"]["commit"]
    assert read_sidecar(export)["segments"][0]["code_id"] == first["code_id"]
    Trainer(_cfg(train={"steps": 3}), tmp_path, export, make_loader=ArrayLoader).run()  # same code: resumes
    lines = runs.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["start_step"] == 2
    # the segment before ran other code (as after a `git pull` between a requeue and its restart)
    other = {**json.loads(lines[1]), "code_id": "0" * 64}
    runs.write_text("\n".join([lines[0], json.dumps(other)]) + "\n")
    with pytest.raises(CodeChangedError, match="other code than the segment before.*allow_code_change"):
        Trainer(_cfg(train={"steps": 4}), tmp_path, export, make_loader=ArrayLoader).run()
    assert len(runs.read_text().splitlines()) == 2  # the refused attempt trained nothing, recorded nothing
    Trainer(_cfg(train={"steps": 4, "allow_code_change": True}), tmp_path, export, make_loader=ArrayLoader).run()
    last = json.loads(runs.read_text().splitlines()[-1])
    assert last["code_changed"] is True and last["start_step"] == 3
    assert [s["start_step"] for s in read_sidecar(export)["segments"]] == [0, 2, 3]


def test_a_torn_last_line_of_runs_jsonl_does_not_block_the_resume(tmp_path, caplog):
    """A kill or a full disk during an append leaves a torn last line in runs.jsonl: the resume goes on with a
    warning naming the file and the line, the torn line is kept as it was, and the new record is a line of its own."""
    import json
    import logging

    from vdm.runinfo import append_run_record, read_run_records
    from vdm.train.loop import Trainer

    export = tmp_path / "export.pt"
    Trainer(_cfg(train={"steps": 2}), tmp_path, export, make_loader=ArrayLoader).run()
    runs = tmp_path / "runs.jsonl"
    whole = runs.read_text()
    torn = '{"job": "train", "start_st'  # no newline: cut during the write
    runs.write_text(whole + torn)
    with caplog.at_level(logging.WARNING, logger="vdm.runinfo"):
        Trainer(_cfg(train={"steps": 3}), tmp_path, export, make_loader=ArrayLoader).run()
    assert f"{runs}: line 2 skipped, not JSON" in caplog.text
    lines = runs.read_text().splitlines()
    assert lines[1] == torn and json.loads(lines[2])["start_step"] == 2, lines
    assert [r["start_step"] for r in read_run_records(runs)] == [0, 2]
    append_run_record(runs, {"x": 1})  # the append itself: whole file renamed onto the old one
    assert runs.read_text().endswith('{"x": 1}\n') and not list(tmp_path.glob(".runs.jsonl.*"))


def test_bf16_training_on_cpu_runs_the_network_in_bf16_and_keeps_float32_state(tmp_path):
    """train.precision=bf16 on CPU: the network's convolutions run under bf16 autocast, the loss, weights, EMA
    and optimizer state stay float32, and the step is close to the float32 step (same seeds and batch)."""
    from vdm.train.loop import Trainer

    losses, seen = {}, {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        tr = Trainer(_cfg(train={"precision": precision}), tmp_path / precision, None, make_loader=ArrayLoader)
        assert tr.use_bf16 is (precision == "bf16")
        conv = next(m for m in tr.model.modules() if isinstance(m, torch.nn.Conv2d))
        dtypes: list[torch.dtype] = []
        hook = conv.register_forward_hook(lambda m, i, o, seen_dtypes=dtypes: seen_dtypes.append(o.dtype))
        loss, grad_norm, _ = tr.train_step(iter(tr.loader))
        hook.remove()
        seen[precision] = set(dtypes)
        losses[precision] = (loss, grad_norm)
        assert math.isfinite(loss) and math.isfinite(grad_norm)
        assert all(p.dtype == torch.float32 for p in tr.model.parameters())
        assert all(v.dtype == torch.float32 for s in tr.optimizer.state.values() for v in s.values()
                   if torch.is_tensor(v) and v.is_floating_point())
    assert seen == {"fp32": {torch.float32}, "bf16": {torch.bfloat16}}
    # the first loss is that of the zero-initialised output layer in both; the gradients differ by bf16 rounding
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=1e-3)
    assert losses["bf16"][1] == pytest.approx(losses["fp32"][1], rel=0.05)
    assert losses["bf16"][1] != losses["fp32"][1]
