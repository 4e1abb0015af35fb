"""Config errors are found when the workflow is parsed, before any job runs, naming the file, the key and
the value; the experiment name cannot inject shell commands; every placeholder of every shell command is
quoted; the {setting} names format and parse every guidance weight the schema accepts."""

from __future__ import annotations

import copy
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
TEST_CONFIG = yaml.safe_load((REPO / "config" / "test.yaml").read_text())


def run_snakemake(cfg: dict, work: Path, *args: str) -> subprocess.CompletedProcess:
    path = work / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return subprocess.run([*SNAKEMAKE, "--directory", str(work), "--configfile", str(path),
                           "--replace-workflow-config", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def edited(**dotted) -> dict:
    cfg = copy.deepcopy(TEST_CONFIG)
    for key, value in dotted.items():
        node = cfg
        *parents, leaf = key.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg


# ---- shell injection ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["inj$(touch PWNED)", "inj`touch PWNED`", "my exp", "../escape", ""])
def test_unsafe_experiment_names_are_refused_before_any_job(name, tmp_path):
    r = run_snakemake(edited(name=name), tmp_path, "--cores", "1")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "name" in out and "letters, digits" in out and "cfg.yaml" in out, out
    assert not (tmp_path / "PWNED").exists() and not (REPO / "PWNED").exists()
    assert not (tmp_path / "results").exists()  # nothing ran, no stray results/my


def test_every_shell_placeholder_is_quoted():
    """Every {placeholder} of every shell command in the rules is shell-quoted (:q)."""
    found = 0
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        for block in re.findall(r"shell:\n((?:\s+\".*\"\n)+)", text):
            for ph in re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", block):
                found += 1
                assert ph.endswith(":q"), f"{path.name}: shell placeholder {{{ph}}} is not quoted"
    assert found >= 20  # the parser saw the rules' shell commands


# ---- every config error at parse time ---------------------------------------------------------------
BAD_CONFIGS = {
    "steps 0": (dict(train__steps=0), r"steps must be >= 1, got 0"),
    "steps -5": (dict(train__steps=-5), r"steps must be >= 1, got -5"),
    "negative lr": (dict(train__lr=-1e-3), r"lr must be > 0, got -0\.001"),
    "no samples": (dict(sample__num_samples=0), r"num_samples must be >= 1, got 0"),
    "cond_frames >= frames": (dict(sample__cond_frames=9), r"sample\.cond_frames 9 must be < .*data\.frames 9"),
    "guidance without conditioning": (dict(model__num_classes=0, data__num_classes=0, sample__guidance_weight=2.0),
                                      r"sample\.guidance_weight 2 needs a class- or text-conditional model"),
    "missing data.root": (dict(data__source="video_folder", data__root="no/such/folder"),
                          r"data\.root 'no/such/folder'.*not a folder"),
    # model fields that follow from the data: set against it in the model section
    "resolution vs image_size": (dict(model__image_size=32), r"model\.image_size 32 != data\.resolution 16"),
    "channels": (dict(model__in_channels=3), r"model\.in_channels 3 != data\.channels 1"),
    "num_classes": (dict(model__num_classes=10), r"model\.num_classes 10 != data\.num_classes 100"),
    "image_size vs levels": (dict(data__resolution=18, model__image_size=18, model__channel_mult=[1, 2, 2]),
                             r"image_size 18 is not divisible by 2\^2"),
    "overlap >= frames": (dict(sample__task="extension", sample__overlap=9, sample__total_frames=18),
                          r"sample\.overlap 9 must be < "),
    "FVD frames": (dict(data__frames=4, sample__cond_frames=2), r"FVD needs videos of at least 9 frames"),
    "unknown key": (dict(train__stepz=3), r"stepz"),
    # the ranges, not a failure in the first job or a bad setting name
    "sampling batch 0": (dict(sample__batch_size=0), r"sample\.batch_size must be >= 1, got 0"),
    "sampler steps -1": (dict(sample__steps=-1), r"sample\.steps must be >= 1, got -1"),
    "seed -1": (dict(seed=-1), r"seed must be in \[0, 2\*\*63\), got -1"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS), ids=list(BAD_CONFIGS))
def test_bad_config_fails_the_dry_run_naming_key_and_file(case, tmp_path):
    changes, message = BAD_CONFIGS[case]
    r = run_snakemake(edited(**changes), tmp_path, "-n")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-2000:]
    assert re.search(message, out), out[-2000:]
    assert str(tmp_path / "cfg.yaml") in out, out[-2000:]  # the file is named
    assert "Job stats" not in out  # no job was planned


def test_data_root_is_not_needed_once_the_shards_exist(tmp_path):
    """data.root is checked while shards are still to be written; existing shards need no inputs."""
    cfg = edited(data__source="video_folder", data__root="no/such/folder")
    for split in ("train", "test"):
        (tmp_path / "results" / "test" / "data" / split).mkdir(parents=True)
        (tmp_path / "results" / "test" / "data" / split / "manifest.json").write_text("{}")
    r = run_snakemake(cfg, tmp_path, "-n")
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]


def test_guidance_weights_with_exponents_get_names_that_parse(tmp_path):
    """1e-05 and 1e9 are valid by the schema: their settings are planned, named without exponents."""
    cfg = edited(ablation__guidance_weights=[1e-05, 1e9, 0.0])
    r = run_snakemake(cfg, tmp_path, "-n")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "ancestral-3-w0.00001" in out and "ancestral-3-w1000000000" in out


# ---- the {setting} grammar -------------------------------------------------------------------------
def test_setting_names_round_trip_for_every_valid_number():
    from vdm.grid import SETTING_RE, num, parse_setting, setting_name

    rng = random.Random(0)
    values = [0.0, 0.5, 1.0, 2.0, 5.0, 1e-05, 1e9, 0.1 + 0.2, 1234567.0, 5e-324, 1.7976931348623157e308]
    values += [rng.uniform(0, 10) for _ in range(200)] + [10 ** rng.uniform(-12, 12) for _ in range(200)]
    for w in values:
        for s in ({"sampler": "ancestral", "steps": 64, "guidance_weight": w},
                  {"sampler": "langevin", "steps": 8, "guidance_weight": 2.0, "task": "extension",
                   "cond_method": "reconstruction", "w_r": w},
                  {"sampler": "ancestral", "steps": 8, "guidance_weight": w, "task": "prediction",
                   "cond_method": "replacement"}):
            name = setting_name(s)
            assert re.fullmatch(SETTING_RE, name), name
            back = parse_setting(name)
            assert back == {"task": "unconditional", **s} or back == {**s, "task": s["task"]}, (name, back)
            assert setting_name(back) == name
    # the names of ordinary values are what they always were (%g): existing results keep their paths
    for w in (0.0, 0.5, 1.0, 2.0, 5.0, 7.5, 50.0, 0.25):
        assert num(w) == f"{w:g}"
    for bad in ("ancestral-8-w1e-05", "ancestral-8-w", "euler-8-w1", "ancestral-8-w1-prediction-recon"):
        with pytest.raises(ValueError, match="not a sampling setting name"):
            parse_setting(bad)


# ---- strict config files ---------------------------------------------------------------------------
def test_a_key_given_twice_is_refused_naming_the_key_and_both_lines(tmp_path):
    text = (REPO / "config" / "test.yaml").read_text() + "\ntrain:\n  steps: 3\n"  # a second train: section
    first = 1 + text.splitlines().index("train:")
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    r = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "--configfile", str(path),
                        "--replace-workflow-config", "-n"], cwd=REPO, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "key 'train' appears twice" in out and f"lines {first} and" in out, out
    assert "twice.yaml" in out
    from vdm.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"key 'train' appears twice"):  # the stage commands' loader
        load_config(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text("train:\n  steps: 3\n  lr: 1.0e-3\n  steps: 4\n")
    with pytest.raises(ConfigError, match=r"key 'steps' appears twice \(lines 2 and 4\)"):
        load_config(nested)


def test_checkpoints_beyond_the_training_are_refused_at_parse_time(tmp_path):
    r = run_snakemake(edited(ablation__checkpoints=[0, 6, 60]), tmp_path, "-n")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "ablation.checkpoints [60] lie beyond train.steps (6)" in out, out


@pytest.mark.parametrize("key", ["is_weights", "c3d_weights"])
def test_missing_evaluation_weights_are_refused_at_parse_time(key, tmp_path):
    extra = {"c3d_weights_sha256": "a" * 64, "c3d_mean_sha256": "b" * 64, "c3d_mean": str(tmp_path / "m.npz")}
    cfg = edited(**{f"evaluate__{key}": str(tmp_path / "absent.file")})
    if key == "c3d_weights":
        cfg["evaluate"].update(extra)
    r = run_snakemake(cfg, tmp_path, "-n")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and f"evaluate.{key}" in out and "absent.file" in out and "is not a file" in out, out
    assert "cfg.yaml" in out
