"""The Snakemake workflow: lint, dry runs of the paper configs, the tiny config end to end (locally
and through SLURM), resume after a kill during training, and rerun semantics.

The end-to-end runs use config/test.yaml in a temporary working directory (``--directory``), so they
touch nothing under the repository's results/.
"""

from __future__ import annotations

import csv
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
TEST_CONFIG = REPO / "config" / "test.yaml"
PAPER_CONFIGS = sorted((REPO / "config" / "paper").glob("*.yaml"))


def snakemake(*args: str, cwd: Path | None = None, timeout: int = 600,
              prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = [*prefix, *SNAKEMAKE, *(["--directory", str(cwd)] if cwd else []), *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def config_args(path: Path = TEST_CONFIG) -> list[str]:
    return ["--configfile", str(path), "--replace-workflow-config"]


def rules_run(output: str) -> list[str]:
    """Names of the rules whose jobs a Snakemake run (or dry run) lists."""
    return re.findall(r"^(?:local)?rule (\w+):$", output, flags=re.M)


# --------------------------------------------------------------------------------------------
# Static checks
# --------------------------------------------------------------------------------------------
def test_lint_is_clean():
    r = snakemake("--lint")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Congratulations, your workflow is in a good condition!" in r.stdout + r.stderr, r.stdout + r.stderr


# The tables each configuration asks for (paper Tables 1-6 for the paper configs).
EXPECTED_TABLES = {"config": {"main", "training", "joint_training", "guidance", "conditioning"},
                   "ucf101": {"main"}, "bair": {"main", "sampler"}, "kinetics600": {"main", "sampler"},
                   "text": {"main", "joint_training", "guidance", "conditioning"}}


@pytest.mark.parametrize("config", [REPO / "config" / "config.yaml", *PAPER_CONFIGS], ids=lambda p: p.stem)
def test_dry_run_builds_the_dag_within_5_s(config, tmp_path):
    """The DAG of every config builds, with the tables of its paper; 5 s of CPU time at most (CPU,
    not wall time, so that a busy test machine does not make it flaky; the wall time is printed).
    In an empty working directory: existing results/ must not hide jobs (with the config's data.root
    there: the workflow checks that the inputs of sharding exist)."""
    root = yaml.safe_load(config.read_text())["data"].get("root")
    if root:
        (tmp_path / root).mkdir(parents=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = snakemake("-n", *config_args(config), cwd=tmp_path)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{config.name}: dry run {wall:.2f} s wall, {cpu:.2f} s CPU")
    assert r.returncode == 0, r.stdout + r.stderr
    assert cpu <= 5.0, f"dry run of {config.name} took {cpu:.2f} s CPU"
    jobs = rules_run(r.stdout)
    assert "train" in jobs and "evaluate" in jobs and "table" in jobs
    assert set(re.findall(r"wildcards: table=(\w+)", r.stdout)) == EXPECTED_TABLES[config.stem]


@pytest.mark.parametrize("config", [REPO / "config" / "config.yaml", *PAPER_CONFIGS], ids=lambda p: p.stem)
def test_setting_names_round_trip_over_the_whole_grid(config, tmp_path):
    """Every {setting} of the config's grid (the sample jobs of its dry run) parses to sampling fields that
    format to the same name, and agrees with the config's sample section on every field the grid does not
    vary (vdm/grid.py is the one place that formats and parses them; the workflow also checks, when it
    builds the grid, that each cell's changes survive the round trip)."""
    from vdm.config import load_config, to_dict
    from vdm.grid import parse_setting, setting_name

    raw = yaml.safe_load(config.read_text())
    root = raw["data"].get("root")
    if root:
        (tmp_path / root).mkdir(parents=True)
    r = snakemake("-n", *config_args(config), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    settings = sorted(set(re.findall(r"wildcards: run=img[0-9]+(?:-step[0-9]+)?, setting=([^\s,]+)", r.stdout)))
    assert settings, r.stdout
    sample = to_dict(load_config(config).sample)
    ablation = raw.get("ablation", {})
    varied = {"guidance_weight"} if ablation.get("guidance_weights") else set()
    varied |= {"sampler", "steps"} if ablation.get("samplers") else set()
    if ablation.get("conditioning", {}).get("methods"):
        varied |= {"task", "cond_method", "w_r", "guidance_weight"}
    assert setting_name(sample) in settings  # the main setting is a cell
    for setting in settings:
        fields = parse_setting(setting)
        assert setting_name({**sample, **fields}) == setting
        assert {k: v for k, v in fields.items() if k not in varied} == {
            k: sample[k] for k in fields if k not in varied}, setting


def test_a_given_config_file_is_the_whole_configuration_in_every_job(tmp_path):
    """`--configfile X --replace-workflow-config` from a folder holding config/config.yaml (the repository root, as
    the README runs it): a key X leaves out must not come back from config/config.yaml in the resolved configs that
    spawned jobs (here the `run:` jobs that write them) compute, or the evaluation reads other settings than the plan
    made files for (evaluate.frame_fid: Inception features no job computed)."""
    work = tmp_path / "wf"
    (work / "config").mkdir(parents=True)
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    default["evaluate"]["frame_fid"] = True  # a key the given file leaves out, which a merge would bring back
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(default))
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    del cfg["evaluate"]["frame_fid"]
    cfg["name"] = "merge"
    config = tmp_path / "given.yaml"
    config.write_text(yaml.safe_dump(cfg))
    targets = [f"results/merge/configs/{kind}/img0/ancestral-3-w2.yaml" for kind in ("metrics", "features")]
    r = snakemake("--cores", "1", *config_args(config), *targets, "results/merge/configs/evaluate.yaml", cwd=work)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for target in [*targets, "results/merge/configs/evaluate.yaml"]:
        written = yaml.safe_load((work / target).read_text())
        assert "frame_fid" not in written["evaluate"], (target, written["evaluate"])
    plan = snakemake("-n", *config_args(config), cwd=work)
    assert "real_features_inception" not in plan.stdout


def test_the_workflow_runs_as_a_module_of_another_workflow(tmp_path):
    """README "Use as a module": an outer Snakefile in another folder imports this workflow with `module` and
    `use rule * from vdm`; its dry run plans the tiny config's whole grid, and one of its config jobs runs."""
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "Snakefile").write_text(f"""
module vdm:
    snakefile:
        "{REPO / 'Snakefile'}"
    config:
        config


use rule * from vdm as vdm_*
""")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(outer / "Snakefile"), *config_args(TEST_CONFIG)]
    r = subprocess.run([*cmd, "-n"], cwd=outer, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert re.search(r"^vdm_train\s+2$", r.stdout, re.M) and re.search(r"^vdm_table\s+\d+$", r.stdout, re.M), r.stdout
    r = subprocess.run([*cmd, "--cores", "1", "results/test/configs/data.yaml"], cwd=outer, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert yaml.safe_load((outer / "results/test/configs/data.yaml").read_text())["data"]["source"] == "moving_mnist"


def test_profiles_are_found_by_name_and_point_at_slurm():
    for path in (REPO / "slurm" / "config.yaml", REPO / "profiles" / "slurm-ci" / "config.yaml"):
        prof = yaml.safe_load(path.read_text())
        assert prof["executor"] == "slurm"
        assert any("'executor': 'slurm'" in c for c in prof["config"])  # training goes to SLURM too
    assert (REPO / "slurm").resolve() == (REPO / "profiles" / "slurm").resolve()


# --------------------------------------------------------------------------------------------
# Rerun semantics (dry runs on top of the end-to-end run below)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, float]:
    """config/test.yaml end to end, locally: shard -> train video-only and joint -> sample -> FVD -> tables."""
    work = tmp_path_factory.mktemp("wf-local")
    t0 = time.monotonic()
    r = snakemake("--cores", "2", *config_args(), cwd=work, timeout=900)
    return work, r, time.monotonic() - t0


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_tiny_config_runs_end_to_end_locally(local_run):
    work, r, wall = local_run
    print(f"tiny config end to end (local): {wall:.1f} s")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    out = work / "results" / "test"
    assert (out / "data" / "train" / "manifest.json").is_file()
    # video-only, joint, joint at step 0
    assert {p.stem for p in (out / "models").glob("*.pt")} == {"img0", "img2", "img2-step0"}
    # every table the grid covers, with real FVD values, intervals and N
    for table in ("main", "training", "joint_training", "conditioning"):
        rows = read_csv(out / "report" / "tables" / f"{table}.csv")
        assert rows, table
        for row in rows:
            assert row["metric"] == "fvd" and float(row["value"]) > 0, row
            assert float(row["interval_low"]) <= float(row["value"]) <= float(row["interval_high"]), row
            assert int(row["n_generated"]) == 4 and int(row["n_real"]) == 8, row
        assert (out / "report" / "plots" / f"{table}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "report" / "gifs" / f"{table}.gif").read_bytes()[:3] == b"GIF"
    # frame FID (evaluate.frame_fid in config/test.yaml): FID-avg / FID-first against train and test
    main_row = read_csv(out / "report" / "tables" / "main.csv")[0]
    for name in ("fid_avg_train", "fid_avg_test", "fid_first_train", "fid_first_test"):
        assert float(main_row[name]) > 0 and float(main_row[f"{name}_low"]) <= float(main_row[f"{name}_high"])
    assert main_row["fvd2048_16f_note"] == "not computed: needs 16-frame videos (these have 9)"
    assert "FID-avg vs train" in (out / "report" / "tables" / "main.md").read_text()
    joint = read_csv(out / "report" / "tables" / "joint_training.csv")
    assert [int(r["images_per_video"]) for r in joint] == [0, 2]
    assert joint[0]["paper_value"] == "205.42"  # paper Table 4, 0 image frames, FVD vs validation set
    # FVD along training (ablation.checkpoints [0, 6]): the network before training and the final export
    training = read_csv(out / "report" / "tables" / "training.csv")
    assert [(int(r["step"]), r["run"]) for r in training] == [(0, "img2-step0"), (6, "img2")]
    from vdm.artifacts.export import load_export

    assert load_export(out / "models" / "img2-step0.pt").meta["step"] == 0
    assert (out / "report" / "plots" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert "plots/loss.png" in (out / "report" / "README.md").read_text()
    cond = read_csv(out / "report" / "tables" / "conditioning.csv")
    assert {r["cond_method"] for r in cond} == {"replacement", "reconstruction"}
    # the metrics behind a row are the FVD the evaluation wrote for that sample set
    m = json.loads((out / "metrics" / "img0" / "ancestral-3-w2.json").read_text())
    assert float(joint[0]["value"]) == pytest.approx(m["value"])
    prov = json.loads((out / "report" / "provenance" / "img0" / "ancestral-3-w2.json").read_text())
    assert len(prov["config"]["sha256"]) == 64 and len(prov["git"]["commit"]) == 40
    assert prov["samples"]["seeds"]["count"] == 4 and prov["packages"]["torch"]
    # records of the jobs that made each input, written when they ran (vdm.runinfo)
    runs = prov["runs"]
    assert runs["training"]["segments"][0]["job"] == "train" and len(runs["training"]["segments"][0]["code_id"]) == 64
    assert [c["job"] for c in runs["samples"]["chunks"]] == ["sample", "sample"] and runs["samples"]["job"] == "gather"
    assert runs["metrics"]["job"] == "evaluate" and [f["job"] for f in runs["metrics"]["features"]] == ["features"] * 2
    assert runs["metrics"]["git"]["commit"] == prov["git"]["commit"]
    assert "Tiny test configuration" in (out / "report" / "README.md").read_text()
    # resolved configs: the run's override applied, loaded strictly by the vdm CLIs
    from vdm.config import load_config

    assert load_config(out / "configs" / "train" / "img0.yaml").data.images_per_video == 0
    s = load_config(out / "configs" / "sample" / "img2" / "ancestral-3-w2-prediction-recon1.yaml").sample
    assert (s.task, s.cond_method, s.w_r, s.guidance_weight) == ("prediction", "reconstruction", 1.0, 2.0)


def test_every_table_has_paired_comparisons_of_arms_drawn_with_the_same_seeds(local_run):
    """`vdm compare` per table: every pair of its rows, each with the paired Δ of FVD and the frame FIDs; the
    arms of a table are drawn with the same seeds (what makes them paired), and the finding states Δ."""
    work, r, _ = local_run
    assert r.returncode == 0
    out = work / "results" / "test"
    for table in ("main", "training", "joint_training", "conditioning"):
        rows = read_csv(out / "report" / "tables" / f"{table}.csv")
        seeds = [np.load(out / "samples" / row["run"] / row["setting"] / "samples.npz")["seeds"] for row in rows]
        assert all(np.array_equal(seeds[0], s) for s in seeds), table
        comparisons = json.loads((out / "report" / "comparisons" / f"{table}.json").read_text())
        assert len(comparisons["pairs"]) == len(rows) * (len(rows) - 1) // 2, table
        for pair in comparisons["pairs"]:
            assert set(pair["metrics"]) == {"fvd", "fid_avg_train", "fid_avg_test", "fid_first_train", "fid_first_test",
                                            "digit_fd"}
            d = pair["metrics"]["fvd"]
            assert d["low"] <= d["value"] <= d["high"] and d["min_detectable"] > 0 and pair["n"] == 4
    md = (out / "report" / "tables" / "joint_training.md").read_text()
    assert "Δ FVD = " in md and "smallest detectable" in md, md


def test_complete_run_has_nothing_to_do_and_sampling_edits_retrain_nothing(local_run, tmp_path):
    work, r, _ = local_run
    assert r.returncode == 0
    again = snakemake("-n", *config_args(), cwd=work)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout
    # A new number of sampling steps: sampling and everything after it reruns; sharding and training do not.
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["sample"]["steps"] = 4
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(cfg))
    dry = snakemake("-n", *config_args(edited), cwd=work)
    assert dry.returncode == 0, dry.stderr
    jobs = set(rules_run(dry.stdout))
    assert {"sample", "evaluate", "table"} <= jobs and not {"shard", "train", "train_config"} & jobs, jobs


def _edited(tmp_path: Path, name: str, edit) -> Path:
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    edit(cfg)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


SAMPLING_JOBS = {"sample_config", "sample_chunk", "sample", "train", "train_config", "shard"}


def test_evaluation_and_chunking_edits_resample_nothing(local_run, tmp_path):
    """A job reruns only when a value it reads changes: a statistics edit reruns the metrics only (no sampling, no
    features, no real features, no digit classifier); a detector setting reruns the features but draws nothing; a
    new chunk size leaves the drawn sets as they are (their gathered sets do not depend on the chunking)."""
    work, r, _ = local_run
    assert r.returncode == 0

    def planned(config: Path) -> tuple[set[str], str]:
        dry = snakemake("-n", *config_args(config), cwd=work)
        assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
        return set(rules_run(dry.stdout)), dry.stdout + dry.stderr

    stats, _ = planned(_edited(tmp_path, "stats", lambda c: c["evaluate"].update(num_bootstrap=20)))
    assert {"evaluate", "compare", "table"} <= stats, stats
    assert not (SAMPLING_JOBS | {"features_chunk", "real_features_i3d", "digit_classifier"}) & stats, stats

    feats, _ = planned(_edited(tmp_path, "feats", lambda c: c["evaluate"].update(batch_size=3)))
    assert {"features_chunk", "real_features_i3d", "evaluate"} <= feats and not SAMPLING_JOBS & feats, feats
    assert "digit_classifier" not in feats, feats

    chunked, out = planned(_edited(tmp_path, "chunks", lambda c: c["sample"].update(chunk_size=4)))
    assert not chunked and "Nothing to be done" in out, chunked
    assert "keeps its chunks (sample.chunk_size 2; the config's 4 applies to sets not drawn yet)" in out
    # a chunk size and a value the draw reads: that set is drawn anew, in chunks of the new size
    both, out = planned(_edited(tmp_path, "both", lambda c: c["sample"].update(chunk_size=4, steps=4)))
    assert {"sample_chunk", "sample"} <= both and "train" not in both, both
    assert "chunk=1" not in out and "chunk=0" in out  # 4 samples in one chunk of 4


def test_sets_are_gathered_from_chunks_and_real_features_are_one_job(local_run):
    """config/test.yaml draws every set in 2 chunks (a job each) with their I3D features (a job each); the
    real clips' features are one job that every evaluation reads."""
    work, r, _ = local_run
    assert r.returncode == 0
    out = work / "results" / "test"
    sets = sorted(p.parent for p in (out / "samples").glob("*/*/samples.npz"))
    assert len(sets) >= 5
    for d in sets:
        assert sorted(p.name for p in (d / "chunks").glob("*.npz")) == ["0.npz", "1.npz"], d
        run, setting = d.parent.name, d.name
        assert sorted(p.name for p in (out / "features" / run / setting).glob("*.npz")) == ["0.npz", "1.npz"]
    jobs = rules_run(r.stdout + r.stderr)
    assert jobs.count("real_features_i3d") == 1 and jobs.count("evaluate") == len(sets), jobs
    assert jobs.count("real_features_inception") == 2  # train and test, once for every evaluation
    assert not (work / "results" / "fvd_cache").exists()  # every file between jobs is a declared one
    assert jobs.count("sample_chunk") == jobs.count("features_chunk") == 2 * len(sets)
    real = out / "metrics" / "real-features-9f.npz"
    assert real.is_file() and real.stat().st_mtime < min((out / "metrics").glob("*/*.json"),
                                                         key=lambda p: p.stat().st_mtime).stat().st_mtime


def test_cascade_target_extends_then_super_resolves(local_run, tmp_path):
    """`snakemake cascade` (paper Fig. 2, config/test.yaml's `cascade`): the main run's samples extended from
    9 to 12 frames, then super-resolved 16 -> 32 px by a model trained on its own shards at 32 px, in
    blocks of its 5 frames; the trained main run is reused, a rerun has nothing to do."""
    from vdm.artifacts.export import load_export

    work, r, _ = local_run
    assert r.returncode == 0
    copy = tmp_path / "wf"
    shutil.copytree(work, copy, symlinks=True)
    run = snakemake("--cores", "2", *config_args(), "cascade", cwd=copy, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    jobs = rules_run(run.stdout + run.stderr)
    assert jobs.count("train") == 1 and jobs.count("shard") == 1, jobs  # only the high-resolution model and its shards
    assert {"cascade_chunk", "cascade_gather", "cascade"} <= set(jobs), jobs
    out = copy / "results" / "test"
    assert load_export(out / "models" / "superres.pt").model_cfg.image_size == 32
    assert (out / "data-superres" / "train" / "manifest.json").is_file()
    low = np.load(out / "cascade" / "extension" / "samples.npz")
    high = np.load(out / "cascade" / "superres" / "samples.npz")
    assert low["videos"].shape == (2, 12, 16, 16, 1) and high["videos"].shape == (2, 12, 32, 32, 1)
    assert np.array_equal(high["cond_videos"], low["videos"])  # x^a of stage 2 = the videos of stage 1
    assert np.array_equal(high["cls"], low["cls"])  # the labels the extension drew (class_labels eval)
    settings = json.loads(str(high["settings"]))["sample"]
    assert (settings["task"], settings["superres_block"], settings["overlap"]) == ("superres", 5, 2)
    assert settings["w_r"] == 2.0 and settings["cond_method"] == "reconstruction"
    assert (out / "report" / "cascade.gif").read_bytes()[:3] == b"GIF"
    assert (out / "report" / "cascade.png").read_bytes()[:4] == b"\x89PNG"
    again = snakemake("-n", *config_args(), "cascade", cwd=copy)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout


def test_config_text_reaches_the_report_as_text_and_no_command_line(local_run, tmp_path):
    """A 200 KB report.dataset_note holding markup (`</script><script>alert(1)</script>`): the report jobs read it
    from spec files (no argument-length limit), the report README holds it as written, and the HTML report built
    by `snakemake --report` has exactly the script elements of the report without it (parsed)."""
    from html.parser import HTMLParser

    class Scripts(HTMLParser):
        def __init__(self):
            super().__init__()
            self.count, self.texts, self._in = 0, [], False

        def handle_starttag(self, tag, attrs):
            if tag == "script":
                self.count, self._in = self.count + 1, True
                self.texts.append("")

        def handle_endtag(self, tag):
            self._in = self._in and tag != "script"

        def handle_data(self, data):
            if self._in:
                self.texts[-1] += data

    def scripts(path: Path) -> Scripts:
        parser = Scripts()
        parser.feed(path.read_text())
        return parser

    work, r, _ = local_run
    assert r.returncode == 0
    copy = tmp_path / "wf"
    shutil.copytree(work, copy, symlinks=True)
    plain = tmp_path / "plain.html"
    rep = snakemake(*config_args(), "--report", str(plain), cwd=copy)
    assert rep.returncode == 0, rep.stderr[-3000:]
    note = "Tiny </script><script>alert(1)</script> & <b>x</b> " + "y" * 200_000
    config = _edited(tmp_path, "note", lambda c: c["report"].update(dataset_note=note))
    run = snakemake("--cores", "2", *config_args(config), cwd=copy)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert not {"sample_chunk", "evaluate", "train"} & set(rules_run(run.stdout)), rules_run(run.stdout)
    readme = (copy / "results" / "test" / "report" / "README.md").read_text()
    assert f"> {note}" in readme
    hostile = tmp_path / "hostile.html"
    rep = snakemake(*config_args(config), "--report", str(hostile), cwd=copy)
    assert rep.returncode == 0, rep.stderr[-3000:]
    found, expected = scripts(hostile), scripts(plain)
    assert found.count == expected.count, (found.count, expected.count)
    assert not any("alert(1)" in t for t in found.texts)


def test_html_report_opens_in_a_browser_with_a_results_table_and_plot(local_run, tmp_path):
    """`snakemake --report report.html` of the tiny run: the tables, plots, GIFs and loss curves as report items
    in one category per paper table; headless Chromium renders the "Main result" page (scripts/
    report_screenshot.py) and the screenshot holds the table and its plot (a light page with dark text and
    the plot's blue bars)."""
    import importlib.util

    from PIL import Image

    work, r, _ = local_run
    assert r.returncode == 0
    spec = importlib.util.spec_from_file_location("report_screenshot", REPO / "scripts" / "report_screenshot.py")
    shot_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shot_mod)
    if shot_mod.chromium() is None:
        if os.environ.get("VDM_REQUIRE_CHROMIUM"):
            pytest.fail("VDM_REQUIRE_CHROMIUM is set but no Chromium is installed")
        pytest.skip("no Chromium (apt-get install chromium): the browser check of the HTML report is skipped")
    html = tmp_path / "report.html"
    rep = snakemake(*config_args(), "--report", str(html), cwd=work)
    assert rep.returncode == 0 and html.is_file(), rep.stderr[-3000:]
    text = html.read_text()
    for item in ("report/tables/main.html", "report/plots/joint_training.png", "report/gifs/conditioning.gif",
                 "report/plots/loss.png"):
        assert item in text, item
    for category in ("Main result", "Table 4: joint video-image training", "Table 6: conditioning method"):
        assert category in text, category
    shot = tmp_path / "shot.png"
    assert shot_mod.main([str(html), "--table", "main", "--out", str(shot)]) == 0
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)  # [H, W, 3]
    assert img.shape[:2] == (1000, 1600)
    right = img[:, 400:]  # the content pane (the navigation bar is on the left)
    dark = (right.sum(axis=2) < 150).mean()  # text and table lines
    blue = ((right[..., 2] > 150) & (right[..., 0] < 80)).mean()  # the plot's bars (matplotlib's C0 blue)
    assert dark > 0.002 and blue > 0.01, (dark, blue)
    assert shot_mod.main([str(html), "--table", "guidance", "--out", str(tmp_path / "x.png")]) == 2  # not in this grid


def test_killed_sample_set_reruns_only_its_missing_chunks(local_run, tmp_path):
    """Kill the workflow while a set's chunks are being drawn, rerun: the finished chunks are not redone
    (same mtimes), the missing ones are, and the gathered set is whole."""
    from vdm.grid import setting_name

    work, r, _ = local_run
    assert r.returncode == 0
    copy = tmp_path / "wf"
    shutil.copytree(work, copy, symlinks=True)  # the trained runs, reused; a new sample set below
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["sample"].update(steps=200, num_samples=8)  # 4 chunks of 2, several seconds each
    config = tmp_path / "chunks.yaml"
    config.write_text(yaml.safe_dump(cfg))
    setting = setting_name(cfg["sample"])
    sdir = copy / "results" / "test" / "samples" / "img0" / setting
    target = f"results/test/samples/img0/{setting}/samples.npz"
    cmd = [*SNAKEMAKE, "--directory", str(copy), "--cores", "1", *config_args(config), target]
    # SIGINT must reach Snakemake even where this test runs with SIGINT ignored (a background job)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    logs = copy / "results" / "test" / "logs" / "sample" / "img0" / setting
    deadline = time.monotonic() + 300
    # one core: when the second chunk job has started (its log exists), the first one has finished
    while len(list(logs.glob("chunk-*.log"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the workflow ended before it could be interrupted:\n" + proc.stdout.read()[-3000:]
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    done = {p.name: p.stat().st_mtime_ns for p in (sdir / "chunks").glob("*.npz")}
    assert len(done) == 1 and not (copy / target).exists(), done

    second = snakemake("--cores", "2", *config_args(config), target, cwd=copy, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    redone = re.findall(r"wildcards: run=img0, setting=\S+, chunk=(\d+)", second.stdout + second.stderr)
    assert sorted(f"{c}.npz" for c in redone) == sorted(set(["0.npz", "1.npz", "2.npz", "3.npz"]) - set(done))
    assert {p.name: p.stat().st_mtime_ns for p in (sdir / "chunks").glob("*.npz") if p.name in done} == done
    with np.load(copy / target) as z:
        assert z["seeds"].tolist() == list(range(8))


def test_the_same_command_goes_on_after_a_kill_left_outputs_marked_incomplete(local_run, tmp_path):
    """Snakemake killed outright (SIGKILL: a lost session, the OOM killer) while a chunk job runs: the job finishes on
    its own and its output stays marked incomplete. After `--unlock` (the lock a killed Snakemake leaves), the same
    command (no --rerun-incomplete: the workflow's default profile, profiles/default, sets it) goes on instead of
    stopping with IncompleteFilesException, and the gathered set is whole."""
    from vdm.grid import setting_name

    work, r, _ = local_run
    assert r.returncode == 0
    copy = tmp_path / "wf"
    shutil.copytree(work, copy, symlinks=True)
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["sample"].update(steps=100, num_samples=4)
    config = tmp_path / "killed.yaml"
    config.write_text(yaml.safe_dump(cfg))
    setting = setting_name(cfg["sample"])
    target = f"results/test/samples/img0/{setting}/samples.npz"
    logs = copy / "results" / "test" / "logs" / "sample" / "img0" / setting
    cmd = [*SNAKEMAKE, "--directory", str(copy), "--cores", "1", *config_args(config), target]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(logs.glob("chunk-*.log")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the workflow ended before it could be killed:\n" + proc.stdout.read()[-3000:]
    proc.kill()  # Snakemake alone: its running chunk job goes on
    proc.communicate(timeout=60)
    chunks = copy / "results" / "test" / "samples" / "img0" / setting / "chunks"
    while not list(chunks.glob("*.npz")) and time.monotonic() < deadline:  # the chunk job, finishing on its own
        time.sleep(0.2)
    time.sleep(1.0)  # its shell's last writes (the log)
    unlock = snakemake("--unlock", *config_args(config), target, cwd=copy)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    again = snakemake("--cores", "2", *config_args(config), target, cwd=copy, timeout=600)
    out = again.stdout + again.stderr
    assert again.returncode == 0 and "IncompleteFilesException" not in out, out[-3000:]
    assert "workflow specific profile" in out and "profiles/default" in out  # the profile that sets rerun-incomplete
    with np.load(copy / target) as z:
        assert z["seeds"].tolist() == list(range(4))


# --------------------------------------------------------------------------------------------
# Kill during training, rerun: training resumes, nothing complete is redone
# --------------------------------------------------------------------------------------------
def _newest_state_step(workdir: Path) -> int:
    steps = [int(re.search(r"(\d+)", p.stem).group(1)) for p in (workdir / "checkpoints").glob("state-*.pt")]
    return max(steps, default=0)


def test_kill_during_training_then_rerun_resumes(tmp_path):
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["train"].update(steps=20, checkpoint_every=2)
    config = tmp_path / "resume.yaml"
    config.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "wf"
    work.mkdir()
    target = "results/test/models/img2.pt"
    workdir = work / "results" / "test" / "train" / "img2"
    cmd = [*SNAKEMAKE, "--directory", str(work), "--cores", "2", *config_args(config), target]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while _newest_state_step(workdir) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the workflow ended before it could be interrupted:\n" + proc.stdout.read()[-3000:]
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
    try:
        proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    killed_at = _newest_state_step(workdir)
    assert 4 <= killed_at < 20 and not (work / target).exists()

    second = snakemake("--cores", "2", *config_args(config), target, cwd=work, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert rules_run(second.stdout + second.stderr) == ["train"]  # configs and shards were complete
    logs = "\n".join(p.read_text(errors="replace") for p in (workdir / "submitit").rglob("*.err"))
    resumed = [int(s) for s in re.findall(r"resumed from \S+ \(step (\d+)\)", logs)]
    assert resumed and resumed[-1] >= killed_at - 2, logs[-2000:]  # SIGINT may save one more state
    with open(workdir / "train_log.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps.count(1) == 1 and max(steps) == 20, steps  # never restarted from step 0
    assert (work / target).is_file()


# --------------------------------------------------------------------------------------------
# The same tiny config through SLURM
# --------------------------------------------------------------------------------------------
@pytest.mark.slurm
def test_tiny_config_runs_end_to_end_with_profile_slurm(slurm, tmp_path):
    """`--profile slurm` with the local cluster's settings (profiles/slurm-ci): sharding, sampling,
    evaluation go through Snakemake's SLURM executor, training through submitit's SLURM executor.
    SIGINT (not SIGTERM) makes Snakemake cancel its cluster jobs, hence `timeout -s INT`."""
    # a site's own requests, passed through to sbatch: GPUs as generic resources, any other option
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["resources"]["evaluate"] = {**cfg["resources"].get("evaluate", {}), "gres": "gpu:1"}
    cfg["resources"]["sample"] = {**cfg["resources"].get("sample", {}), "slurm_extra": "--nice=3"}
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump(cfg))
    t0 = time.monotonic()
    r = snakemake("--profile", str(REPO / "profiles" / "slurm-ci"), *config_args(config), cwd=tmp_path,
                  timeout=900, prefix=("timeout", "-s", "INT", "-k", "60", "840"))
    print(f"tiny config end to end (SLURM): {time.monotonic() - t0:.1f} s")
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-6000:]
    assert re.search(r"submitted with SLURM jobid \d+", log), log[-3000:]
    out = tmp_path / "results" / "test"
    train_log = (out / "logs" / "train" / "img2.log").read_text()
    assert "submitted slurm job" in train_log, train_log
    for table in ("main", "training", "joint_training", "conditioning"):
        rows = read_csv(out / "report" / "tables" / f"{table}.csv")
        assert rows and all(float(row["value"]) > 0 for row in rows), table
    assert shutil.which("sacct")
    ids = re.findall(r"submitted with SLURM jobid (\d+)", log)
    acct = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(ids), "--format=SubmitLine"],
                          capture_output=True, text=True, timeout=60).stdout.splitlines()
    lines = {rule: [x for x in acct if f"rule_{rule}_" in x] for rule in ("evaluate", "features_chunk",
                                                                         "real_features_i3d", "sample_chunk",
                                                                         "shard")}
    assert all(lines.values()), (lines, acct[:5])
    for rule in ("evaluate", "features_chunk", "real_features_i3d"):
        assert all("--gres=gpu:1" in x for x in lines[rule]), lines[rule][:2]
    assert all("--nice=3" in x and "--gres" not in x for x in lines["sample_chunk"]), lines["sample_chunk"][:2]
    assert not any("--gres" in x or "--nice" in x for x in lines["shard"])
