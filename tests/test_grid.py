"""The ablation grid (vdm/ablation.py) and its {run} names (vdm/grid.py): the runs, table rows, cascade stages
and resolved-config overrides of the shipped configs, each loaded as the Snakefile loads it (the file as
written, then the schema's defaults filled in by validation), and the errors of a grid that cannot be built."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from vdm.ablation import SR_RUN, Ablation, GridError, float_or
from vdm.grid import RUN_RE, TRAINING_RUN_RE, base_run, parse_run, run_images, run_name

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.json"


def grid_of(name: str, **dotted) -> Ablation:
    """The grid of config/<name>.yaml with ``dotted`` edits (section__key=value), as the workflow builds it."""
    config = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    for key, value in dotted.items():
        node = config
        *parents, leaf = key.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    user_config = copy.deepcopy(config)  # USER_CONFIG: the file as written
    validate(config, str(SCHEMA))  # fills in the schema's defaults, as the Snakefile's validate()
    return Ablation(config, user_config, f"results/{config['name']}")


# ---- {run} names --------------------------------------------------------------------------------------
@pytest.mark.parametrize("images", [0, 2, 8, 123])
@pytest.mark.parametrize("step", [None, 0, 500, 1000000])
def test_run_names_round_trip(images, step):
    name = run_name(images, step)
    assert re.fullmatch(RUN_RE, name)
    assert parse_run(name) == (images, step)
    assert base_run(name) == f"img{images}"
    assert run_images(name) == images


def test_run_names_are_what_they_always_were():
    assert run_name(8) == "img8" and run_name(8.0) == "img8"
    assert run_name(8, 500) == "img8-step500"
    assert base_run("img8-step500") == "img8"
    assert re.fullmatch(TRAINING_RUN_RE, "img8") and not re.fullmatch(TRAINING_RUN_RE, "img8-step500")


@pytest.mark.parametrize("bad", ["img", "img-1", "img8-step", "img8-stepx", "img8-step5-step6", "IMG8", "img8 ",
                                 "superres", "cascade", "img8-500", "8"])
def test_bad_run_names_are_rejected(bad):
    assert re.fullmatch(RUN_RE, bad) is None
    with pytest.raises(ValueError, match="not a run name"):
        parse_run(bad)


# ---- the tables of the shipped configs -----------------------------------------------------------------
def test_table_rows_of_config_yaml():
    g = grid_of("config")
    assert g.main_run == "img4" and g.main_setting == "ancestral-32-w3"
    assert g.runs == ("img0", "img4")
    assert g.table_rows("main") == [({"images_per_video": 4}, "img4", "ancestral-32-w3")]
    # a sampler row (paper Tables 2-3: the same network evaluations), where a config has one
    g = grid_of("config", ablation__samplers=[{"sampler": "ancestral", "steps": 32},
                                             {"sampler": "langevin", "steps": 16}])
    assert "sampler" in g.tables
    assert g.table_rows("sampler") == [({"sampler": "ancestral", "steps": 32}, "img4", "ancestral-32-w3"),
                                       ({"sampler": "langevin", "steps": 16}, "img4", "langevin-16-w3")]


def test_table_rows_of_test_yaml():
    g = grid_of("test")
    assert g.tables == ("main", "training", "joint_training", "conditioning")  # no guidance or sampler axis
    assert g.table_rows("guidance") == [] and g.table_rows("sampler") == []
    assert g.table_rows("training") == [({"step": 0}, "img2-step0", "ancestral-3-w2"),
                                        ({"step": 6}, "img2", "ancestral-3-w2")]
    assert g.table_rows("conditioning") == [  # conditioning.guidance_weights empty: sample.guidance_weight
        ({"task": "prediction", "guidance_weight": 2.0, "cond_method": "replacement"}, "img2",
         "ancestral-3-w2-prediction-replace"),
        ({"task": "prediction", "guidance_weight": 2.0, "cond_method": "reconstruction", "w_r": 1.0}, "img2",
         "ancestral-3-w2-prediction-recon1"),
    ]
    assert g.cells == (("img0", "ancestral-3-w2"), ("img2", "ancestral-3-w2"),
                       ("img2", "ancestral-3-w2-prediction-recon1"), ("img2", "ancestral-3-w2-prediction-replace"),
                       ("img2-step0", "ancestral-3-w2"))


def test_table_rows_of_the_embedded_default():
    g = grid_of("config")
    assert g.tables == ("main", "training", "joint_training", "guidance", "conditioning")
    assert g.table_rows("training") == [({"step": 0}, "img4-step0", "ancestral-32-w3"),
                                        ({"step": 1500}, "img4", "ancestral-32-w3")]
    assert g.table_rows("joint_training") == [({"images_per_video": 0}, "img0", "ancestral-32-w3"),
                                              ({"images_per_video": 4}, "img4", "ancestral-32-w3")]
    assert g.table_rows("guidance") == [({"guidance_weight": 0.0}, "img4", "ancestral-32-w0"),
                                        ({"guidance_weight": 3.0}, "img4", "ancestral-32-w3"),
                                        ({"guidance_weight": 5.0}, "img4", "ancestral-32-w5")]
    assert [(keys["task"], setting) for keys, _, setting in g.table_rows("conditioning")] == [
        ("prediction", "ancestral-32-w0-prediction-replace"), ("prediction", "ancestral-32-w0-prediction-recon2"),
        ("extension", "ancestral-32-w0-extension-replace"), ("extension", "ancestral-32-w0-extension-recon2")]
    # the extension sets are measured on their last 10-frame block: the same real clips as every other set
    assert g.clip_frames("ancestral-32-w0-extension-recon2") == 10
    assert grid_of("config", evaluate__extension_window="whole").clip_frames(
        "ancestral-32-w0-extension-recon2") == 16
    assert len(g.cells) == 9 and g.cells == tuple(sorted(set(g.cells)))  # each set drawn once for all its tables
    assert ("img4-step0", "ancestral-32-w3") in g.cells


def test_a_single_run_has_no_joint_training_table():
    g = grid_of("test", ablation__images_per_video=[])
    assert g.runs == ("img2",) and g.table_rows("joint_training") == [] and "joint_training" not in g.tables


def test_table_spec_names_each_rows_files():
    spec = grid_of("test").table_spec("main")
    assert spec["table"] == "main" and spec["experiment"] == "test" and spec["gif_videos"] == 4
    assert spec["rows"] == [{"keys": {"images_per_video": 2}, "run": "img2", "setting": "ancestral-3-w2",
                             "metrics": "results/test/metrics/img2/ancestral-3-w2.json",
                             "samples": "results/test/samples/img2/ancestral-3-w2/samples.npz"}]
    assert grid_of("test").table_spec("conditioning")["paper"] == {  # setting_contains: the schema's default
        "table": "T6_recon_vs_replacement", "metric": "FVD_val", "setting_contains": ""}


def test_a_table_without_rows_here_is_an_error():
    with pytest.raises(ValueError, match="table 'nope' of vdm/report/registry.py has no rows here"):
        grid_of("test").table_rows("nope")


# ---- errors -------------------------------------------------------------------------------------------
def test_main_run_missing_from_images_per_video():
    with pytest.raises(GridError, match=re.escape(
            "config: ablation.images_per_video [0, 8] must contain data.images_per_video (4), the main run")):
        grid_of("config", ablation__images_per_video=[0, 8])
    assert issubclass(GridError, ValueError)


def test_a_change_the_setting_name_does_not_encode_is_an_error():
    g = grid_of("test")
    assert g.setting_with(guidance_weight=5) == "ancestral-3-w5"  # a YAML 5 is the name's 5.0
    with pytest.raises(GridError, match=re.escape(
            "config: the setting name 'ancestral-3-w2' does not encode {'gamma': 0.5} (vdm/grid.py)")):
        g.setting_with(gamma=0.5)
    assert float_or(2) == 2.0 and float_or(True) is True and float_or("eval") == "eval"


def test_check_names_the_file_and_the_grid_cell():
    g = grid_of("test", train__steps=0)
    with pytest.raises(GridError, match=r"^config error: cfg\.yaml: training run img0: .*steps must be >= 1, got 0"):
        g.check("cfg.yaml")


# ---- resolved-config overrides ------------------------------------------------------------------------
def test_train_overrides_with_export_steps():
    g = grid_of("config", ablation__checkpoints=[0, 750, 1500])
    assert g.export_steps == (0, 750) and g.final_step == 1500  # 1500 = train.steps: the final export
    assert g.train_overrides("img0") == {"data.images_per_video": 0, "train.export_steps": [0, 750]}
    cfg = g.train_config("img4")
    assert cfg["train"]["export_steps"] == [0, 750] and cfg["data"]["images_per_video"] == 4
    assert cfg["data"]["shards"] == "results/mmnist/data"
    assert "sample" not in cfg and "evaluate" not in cfg and "ablation" not in cfg
    assert list(cfg) == sorted(cfg)
    # a step export is sampled with the weights of its run: the same training overrides
    assert g.sample_overrides("img4-step750", "ancestral-32-w5") == {
        "data.images_per_video": 4, "train.export_steps": [0, 750], "sample.sampler": "ancestral",
        "sample.steps": 32, "sample.guidance_weight": 5.0, "sample.task": "unconditional"}


def test_train_overrides_without_export_steps():
    assert grid_of("paper/text").train_overrides("img4") == {"data.images_per_video": 4}
    assert grid_of("test", ablation__checkpoints=[6]).train_overrides("img0") == {"data.images_per_video": 0}


def test_conditional_settings_of_a_class_conditional_model_take_the_clips_labels():
    g = grid_of("test")  # data.num_classes 100
    assert g.setting_overrides("ancestral-3-w2-prediction-recon1") == {
        "sample.sampler": "ancestral", "sample.steps": 3, "sample.guidance_weight": 2.0, "sample.task": "prediction",
        "sample.cond_method": "reconstruction", "sample.w_r": 1.0, "sample.class_labels": "eval"}
    assert "sample.class_labels" not in g.setting_overrides("ancestral-3-w2")


def test_cascade_overrides_of_the_text_config():
    g = grid_of("paper/text")
    assert g.cascade_on and g.superres_factor == 2
    assert g.cascade_overrides("extension") == {
        "data.images_per_video": 8, "sample.task": "extension", "sample.total_frames": 64, "sample.overlap": 8,
        "sample.cond_frames": 0, "sample.num_samples": 64}
    sr_train = {"data.frames": 9, "data.images_per_video": 7, "model.size": "text-large-9x128",
                "train.steps": 800000, "train.lr": 2.0e-4, "data.resolution": 128,
                "data.shards": "results/text/data-superres"}
    assert g.superres_train_overrides() == sr_train == g.train_overrides(SR_RUN)
    assert g.cascade_overrides("superres") == {
        **sr_train, "sample.task": "superres", "sample.cond_method": "reconstruction", "sample.superres_factor": 2,
        "sample.cond_npz": "results/text/cascade/extension/samples.npz", "sample.frames": 64,
        "sample.cond_frames": 0, "sample.superres_block": 9,  # blocks of the 9-frame high-resolution model
        "sample.overlap": 4, "sample.w_r": 2.0, "sample.batch_size": 16, "sample.chunk_size": 16,
        "sample.num_samples": 64}  # text-conditional (num_classes 0): no class_labels
    spec = g.plan_spec()
    assert list(spec["runs"]) == ["img0", "img4", "img8", "superres"]
    assert [(s["run"], s["setting"], s["train_run"]) for s in spec["sets"][-2:]] == [
        ("cascade", "extension", "img8"), ("cascade", "superres", "superres")]
    assert len(spec["sets"]) == len(g.cells) + 2


def test_cascade_of_a_class_conditional_config_reuses_the_extensions_labels():
    g = grid_of("test")  # cascade configured, not enabled: the `cascade` target only
    assert not g.cascade_on and "superres" not in g.plan_spec()["runs"]
    over = g.cascade_overrides("superres")
    assert over["sample.class_labels"] == "eval" and over["sample.superres_block"] == 5 and over["sample.frames"] == 12


def test_clip_frames_of_a_sample_set():
    text = grid_of("paper/text")  # data.frames 16; extension to sample.total_frames 64
    assert text.clip_frames("ancestral-256-w2") == 16
    assert text.clip_frames("ancestral-256-w2-extension-recon2") == 64
    assert grid_of("test").clip_frames("ancestral-3-w2-prediction-replace") == 9
    assert grid_of("test", sample__frames=12).clip_frames("ancestral-3-w2") == 12


def test_chunks_and_table_files():
    g = grid_of("test")  # 4 samples in chunks of 2; the cascade: 2 samples
    assert g.num_chunks("img2", "ancestral-3-w2") == 2 and g.cascade_num_chunks("extension") == 1
    assert g.table_files("joint_training") == {
        "metrics": ["results/test/metrics/img0/ancestral-3-w2.json", "results/test/metrics/img2/ancestral-3-w2.json"],
        "samples": ["results/test/samples/img0/ancestral-3-w2/samples.npz",
                    "results/test/samples/img2/ancestral-3-w2/samples.npz"],
        "comparisons": ["results/test/report/comparisons/joint_training.json"]}
    spec = g.compare_spec("joint_training")  # what `vdm compare` reads: every row's samples and chunk features
    assert [(r["run"], r["features"]) for r in spec["rows"]] == [
        (run, [f"results/test/features/{run}/ancestral-3-w2/{i}.npz" for i in (0, 1)]) for run in ("img0", "img2")]
    assert g.table_spec("joint_training")["comparisons"] == "results/test/report/comparisons/joint_training.json"


# ---- the workflow's resources and own jobs (vdm/jobs.py) ----------------------------------------------
def test_rule_resources_fall_back_to_the_default():
    from vdm.jobs import rule_resources, rule_threads

    resources = {"default": {"threads": 1, "mem_mb": 4000, "runtime": 60}, "sample": {"threads": 8, "gpu": 1},
                 "train": {"threads": 1, "gpu": 0}}
    assert rule_threads(resources, "sample") == 8 and rule_threads(resources, "shard") == 1
    assert rule_threads({}, "shard") == 1
    assert rule_resources(resources, "sample") == {"mem_mb": 4000, "runtime": 60, "gpu": 1}
    assert rule_resources(resources, "train") == {"mem_mb": 4000, "runtime": 60}  # no --gpus=0


def test_copy_step_export_names_the_fix_when_the_export_is_missing(tmp_path):
    from vdm.jobs import MissingStepExport, copy_step_export

    src, dst, log = tmp_path / "step-000000500.pt", tmp_path / "img8-step500.pt", tmp_path / "log"
    with pytest.raises(MissingStepExport, match=r"run img8 has no export at that step.*rm -r OUT/train/img8"):
        copy_step_export(str(src), str(dst), str(log), "img8", "OUT")
    src.write_bytes(b"weights")
    copy_step_export(str(src), str(dst), str(log), "img8", "OUT")
    assert dst.read_bytes() == b"weights" and not (tmp_path / "img8-step500.pt.run.json").exists()
