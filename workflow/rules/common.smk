# Targets, paths, input functions and wildcard constraints of the ablation grid (paper Tables 2-6; vdm/ablation.py).
#
# Paths (every one follows from the wildcards; OUT = results/<config name>):
#   OUT/configs/data.yaml                      resolved config of sharding
#   OUT/configs/train/{run}.yaml               resolved training config of one run
#   OUT/configs/sample/{run}/{setting}.yaml    resolved config of a sample set's draw (no evaluate section)
#   OUT/configs/features/{run}/{setting}.yaml  ... of its chunk features (no evaluate keys only statistics read)
#   OUT/configs/metrics/{run}/{setting}.yaml   ... of its evaluation (sampling + evaluation)
#   OUT/data/{split}/                          webdataset shards + manifest.json
#   OUT/train/{run}/                           training state (checkpoints, logs); resumed when rerun
#   OUT/models/{run}.pt                        export (EMA weights + model config)
#   OUT/samples/{run}/{setting}/samples.npz    sampled videos (+ samples.gif), gathered from
#   OUT/samples/{run}/{setting}/chunks/{i}.npz its chunks (sample.chunk_size samples each)
#   OUT/metrics/real-features-<T>f.npz         I3D outputs of the real clips of evaluate.split (T frames)
#   OUT/metrics/real-<detector>-<T>f-<split>.npz  another detector's (Inception, C3D) of one split
#   OUT/features/{run}/{setting}/{i}.npz       every detector's outputs of the generated videos, per chunk
#   OUT/metrics/{run}/{setting}.json           FVD and the further metrics of one sample set
#   OUT/report/comparisons/{table}.json        paired differences between the table's arms (vdm compare)
#   OUT/report/...                             tables, plots, GIF grids, provenance
#   OUT/logs/<rule>/...                        one log per job
# The Figure 2 cascade (config `cascade`, target `cascade`; workflow/rules/cascade.smk):
#   OUT/configs/data-superres.yaml, OUT/data-superres/{split}/   shards at cascade.superres.factor x resolution
#   OUT/configs/train/superres.yaml, OUT/train/superres/, OUT/models/superres.pt   its high-resolution model
#   OUT/configs/cascade/{stage}.yaml           stage = extension (main run) | superres (the model above)
#   OUT/cascade/{stage}/samples.npz            each stage's samples (+ .gif), gathered from chunks/{i}.npz
#   OUT/report/cascade.gif, cascade.png        low-resolution extension beside its super-resolution
#
# {run} = "img<K>": a training run with K independent images appended per video (img0 = video-only),
# "img<K>-step<N>": its EMA weights at step N, "superres": the cascade's high-resolution model; {setting} =
# "<sampler>-<steps>-w<guidance>[-<task>-<replace|recon<w_r>>]", every sampling parameter that the grid varies
# (DiT style), e.g. "ancestral-64-w2" or "langevin-32-w0-extension-recon5" (both named in vdm/grid.py).

import os
import json
import sys
from functools import partial

from vdm.ablation import CASCADE_STAGES, SR_RUN, Ablation, GridError
from vdm.config import ExperimentConfig
from vdm.grid import RUN_RE, SETTING_RE, TRAINING_RUN_RE, base_run
from vdm.jobs import copy_step_export, rule_resources, rule_threads, spec_json, write_resolved_config, write_spec
from vdm.metrics.needs import MetricNeeds
from vdm.metrics.registry import real_detectors
from vdm.report.registry import REPORT_CATEGORIES, TABLE_NAMES


# Jobs call the `vdm` console script. `.venv/bin/snakemake` is often run without activating the
# virtualenv: put the running interpreter's bin folder first on PATH (a conda job environment, when
# used, is activated on top of it and wins).
envvars:
    "PATH",


_path = os.environ["PATH"]
os.environ.update(PATH=os.path.dirname(sys.executable) + os.pathsep + _path)
# The workflow's own source, for envs/vdm.post-deploy.sh (--software-deployment-method conda): the new environment
# gets vdm from here, not from the working directory (another folder with --directory, or an outer workflow that uses
# this one as a module).
os.environ.update(VDM_WORKFLOW_SOURCE=os.path.abspath(os.path.join(str(workflow.current_basedir), "..", "..")))

OUT = f"results/{config['name']}"
CONDA_ENV = "../../envs/vdm.yaml"  # for --software-deployment-method conda (relative to this file)


# ---- The grid (vdm/ablation.py), its configs checked before any job; the resources of each rule ----------
try:
    GRID = Ablation(config, USER_CONFIG, OUT, source=CONFIG_SOURCE)
    GRID.check(CONFIG_SOURCE)
except GridError as e:
    raise WorkflowError(str(e)) from None
SHARDS, SR_SHARDS, SAMPLE, CASCADE_ON = GRID.shards, GRID.sr_shards, GRID.sample, GRID.cascade_on
MAIN_RUN, RUNS, TABLES, CELLS = GRID.main_run, list(GRID.runs), list(GRID.tables), list(GRID.cells)
experiment, cascade_samples, setting_overrides = GRID.experiment, GRID.cascade_samples, GRID.setting_overrides
# config `resources`, per rule, falling back to resources.default (vdm/jobs.py)
threads_of, resources_of = partial(rule_threads, config["resources"]), partial(rule_resources, config["resources"])
REAL_DETECTORS = real_detectors()  # one real-features rule each (evaluate.smk)
NEEDS = MetricNeeds(GRID)  # what each sample set's metric jobs read (vdm/metrics/needs.py)
DIGIT_CLASSIFIER = NEEDS.digit_classifier
# Every metrics job gets the classifier's path on its command line, not in the resolved configs (inputs of
# sampling): adding it reruns no sampling.
DIGITS_SETTING = f"evaluate.digit_classifier={DIGIT_CLASSIFIER}"


# ---- Targets -------------------------------------------------------------------------------
def table_outputs(table):
    folders = {"csv": "tables", "md": "tables", "html": "tables", "png": "plots", "gif": "gifs"}
    return {kind: f"{OUT}/report/{folder}/{table}.{kind}" for kind, folder in folders.items()}


def table_report_outputs(table):
    """table_outputs with the table (HTML), its plot and its sample GIF flagged for the Snakemake report."""
    out = table_outputs(table)
    for key, what in (("html", "table"), ("png", "plot"), ("gif", "samples")):
        out[key] = report(
            out[key],
            caption=f"../report/{'gif' if key == 'gif' else what}.rst",
            category=lambda wildcards: REPORT_CATEGORIES.get(wildcards.table, wildcards.table),
            labels={"table": "{table}", "item": what},
        )
    return out


def loss_plot_path():
    return f"{OUT}/report/plots/loss.png"


def all_targets():
    out = [f"{OUT}/report/README.md", loss_plot_path()]
    for t in TABLES:
        out += list(table_outputs(t).values())
    out += [f"{OUT}/report/provenance/{run}/{setting}.json" for run, setting in CELLS]
    if CASCADE_ON:
        out += [f"{OUT}/report/cascade.gif", f"{OUT}/report/cascade.png"]
    return out


# ---- Input and params functions of the rules -------------------------------------------------
def parent_of_output(wildcards, output):
    """The folder holding the first output (e.g. the shard root above OUT/data/<split>)."""
    return os.path.dirname(output[0])


def real_features_file(detector, split, frames):
    return NEEDS.real_features_file(detector, split, frames)


def real_features_log(detector):
    name = os.path.basename(real_features_file(detector, "{split}", "{frames}"))
    return f"{OUT}/logs/evaluate/{name.removesuffix('.npz')}.log"


def real_features_inputs(wildcards):
    """The real-features files the metrics of sample set {run}/{setting} read (the registry's real_needs)."""
    return NEEDS.real_inputs(wildcards.run, wildcards.setting)


def digit_classifier_input(wildcards):
    return NEEDS.classifier_inputs(wildcards.run, wildcards.setting)


def real_features_shards(wildcards):
    """The shards of the split whose real clips a real-features job reads (I3D's: evaluate.split)."""
    return f"{SHARDS}/{getattr(wildcards, 'split', None) or config['evaluate']['split']}"


def real_features_split_args(wildcards):
    return ["--split", wildcards.split] if "split" in wildcards.keys() else []


def _train_config(wildcards):
    return GRID.train_config(wildcards.run)


def _draw_config(wildcards):
    return GRID.draw_config(wildcards.run, wildcards.setting)


def _features_config(wildcards):
    return GRID.features_config(wildcards.run, wildcards.setting)


def _metrics_config(wildcards):
    return GRID.metrics_config(wildcards.run, wildcards.setting)


def _superres_data_config(wildcards):
    """The sharding config of the cascade's high-resolution model (the sections sharding reads)."""
    return experiment(GRID.superres_train_overrides(), skip=("diffusion", "train", "launch", "sample", "evaluate"))


def _train_shards(wildcards):
    return f"{SR_SHARDS if wildcards.run == SR_RUN else SHARDS}/train"


def _base_train_config(wildcards):
    """The training config of the run a {run} export comes from (img8-step500 -> img8)."""
    return f"{OUT}/configs/train/{base_run(wildcards.run)}.yaml"


def _step_export_src(wildcards):
    """Where the training of {run} wrote its EMA weights at {step} (train.export_steps)."""
    return f"{OUT}/train/{wildcards.run}/exports/step-{int(wildcards.step):09d}.pt"


def _sample_inputs(wildcards):
    inputs = {
        "cfg": GRID.draw_config_path(wildcards.run, wildcards.setting),
        "model": f"{OUT}/models/{wildcards.run}.pt",
    }
    if setting_overrides(wildcards.setting)["sample.task"] != "unconditional":
        inputs["shards"] = f"{SHARDS}/{SAMPLE['cond_split']}"
    return inputs


def _sample_chunks(wildcards):
    n = GRID.num_chunks(wildcards.run, wildcards.setting)  # sample.chunk_size samples each
    return [f"{OUT}/samples/{wildcards.run}/{wildcards.setting}/chunks/{i}.npz" for i in range(n)]


def _feature_chunks(wildcards):
    return GRID.feature_paths(wildcards.run, wildcards.setting)


def _compare_inputs(wildcards):
    """The evaluation config, every row's samples and chunk features, and the real-features files they read."""
    rows = GRID.compare_spec(wildcards.table)["rows"]
    return {
        "cfg": f"{OUT}/configs/evaluate.yaml",
        "samples": [r["samples"] for r in rows],
        "features": [f for r in rows for f in r["features"]],
        "real": list(dict.fromkeys(f for r in rows for f in NEEDS.real_inputs(r["run"], r["setting"]))),
        "classifier": list(dict.fromkeys(f for r in rows for f in NEEDS.classifier_inputs(r["run"], r["setting"]))),
    }


def spec_file(name):
    """A job's spec as a file, written by the spec rule: table-<t>, compare-<t>, plan, index."""
    return f"{OUT}/specs/{name}.json"


def _spec_json(wildcards):
    """The spec of job {spec} as HTML-safe JSON text (vdm.jobs.spec_json; the params of the spec rule)."""
    kind, _, table = wildcards.spec.partition("-")
    if kind == "table":
        return spec_json(GRID.table_spec(table))
    if kind == "compare":
        return spec_json(GRID.compare_spec(table))
    if kind == "plan":
        return spec_json(GRID.plan_spec())
    return spec_json({"title": f"vdm results: {config['name']}", "note": config["report"]["dataset_note"]})


def _cascade_config(wildcards):
    return GRID.cascade_config(wildcards.stage)


def _cascade_inputs(wildcards):
    inputs = {
        "cfg": f"{OUT}/configs/cascade/{wildcards.stage}.yaml",
        "model": f"{OUT}/models/{MAIN_RUN if wildcards.stage == 'extension' else SR_RUN}.pt",
    }
    if wildcards.stage == "superres":
        inputs["low"] = cascade_samples("extension")
    elif ExperimentConfig.from_dict(_cascade_config(wildcards)).sample.cond_frames > 0:
        inputs["shards"] = f"{SHARDS}/{SAMPLE['cond_split']}"  # the first block starts from real frames
    return inputs


def _cascade_chunks(wildcards):
    return [f"{OUT}/cascade/{wildcards.stage}/chunks/{i}.npz" for i in range(GRID.cascade_num_chunks(wildcards.stage))]


def _table_inputs(wildcards):
    return GRID.table_files(wildcards.table)


wildcard_constraints:
    run=RUN_RE,
    step=r"[0-9]+",
    setting=SETTING_RE,
    split=r"train|test",
    frames=r"[0-9]+",
    chunk=r"[0-9]+",
    table="|".join(TABLE_NAMES),
    stage="|".join(CASCADE_STAGES),
    dataset=r"data|data-superres",
    spec="|".join([*(f"{k}-{t}" for k in ("table", "compare") for t in TABLE_NAMES), "plan", "index"]),
