# Targets, path helpers, wildcard constraints and the ablation grid (paper Tables 2-6).
#
# Paths (every one follows from the wildcards; OUT = results/<config name>):
#   OUT/configs/data.yaml                      resolved config of sharding
#   OUT/configs/train/{run}.yaml               resolved training config of one run
#   OUT/configs/sample/{run}/{setting}.yaml    resolved sampling + evaluation config
#   OUT/data/{split}/                          webdataset shards + manifest.json
#   OUT/train/{run}/                           training state (checkpoints, logs); resumed when rerun
#   OUT/models/{run}.pt                        export (EMA weights + model config)
#   OUT/samples/{run}/{setting}/samples.npz    sampled videos (+ samples.gif), gathered from
#   OUT/samples/{run}/{setting}/chunks/{i}.npz its chunks (sample.chunk_size samples each)
#   OUT/metrics/real-features-<T>f.npz         I3D outputs of the real clips of evaluate.split (T frames)
#   OUT/metrics/real-<detector>-<T>f-<split>.npz  another detector's (Inception, C3D) of one split
#   OUT/features/{run}/{setting}/{i}.npz       every detector's outputs of the generated videos, per chunk
#   OUT/metrics/{run}/{setting}.json           FVD and the further metrics of one sample set
#   OUT/report/...                             tables, plots, GIF grids, provenance
#   OUT/logs/<rule>/...                        one log per job
# The Figure 2 cascade (config `cascade`, target `cascade`; workflow/rules/cascade.smk):
#   OUT/configs/data-superres.yaml, OUT/data-superres/{split}/   shards at cascade.superres.factor x resolution
#   OUT/configs/train/superres.yaml, OUT/train/superres/, OUT/models/superres.pt   its high-resolution model
#   OUT/configs/cascade/{stage}.yaml           stage = extension (main run) | superres (the model above)
#   OUT/cascade/{stage}/samples.npz            each stage's samples (+ .gif), gathered from chunks/{i}.npz
#   OUT/report/cascade.gif, cascade.png        low-resolution extension beside its super-resolution
#
# {run} = "img<K>": a training run with K independent images appended per video (img0 = video-only);
# "superres": the cascade's high-resolution model.
# {setting} = "<sampler>-<steps>-w<guidance>[-<task>-<replace|recon<w_r>>]", every sampling parameter
# that the grid varies (DiT style), e.g. "ancestral-64-w2" or "langevin-32-w0-extension-recon5".

import copy
import os
import json
import sys
from types import SimpleNamespace

import yaml

from vdm.checks import check_data_inputs, check_sampling, check_training
from vdm.config import WORKFLOW_SECTIONS, ConfigError, ExperimentConfig
from vdm.grid import SETTING_RE, parse_setting, setting_name
from vdm.metrics.registry import Context as MetricsContext, real_detectors, real_needs
from vdm.report.registry import TABLE_NAMES
from vdm.sampling.config import num_chunks
from vdm.utils.io import atomic_path


# Jobs call the `vdm` console script. `.venv/bin/snakemake` is often run without activating the
# virtualenv: put the running interpreter's bin folder first on PATH (a conda job environment, when
# used, is activated on top of it and wins).
envvars:
    "PATH",


_path = os.environ["PATH"]
os.environ.update(PATH=os.path.dirname(sys.executable) + os.pathsep + _path)

TRAIN_SKIPPED = ("sample", "evaluate")  # sections training never reads: editing them retrains nothing
OUT = f"results/{config['name']}"
CONDA_ENV = "../../envs/vdm.yaml"  # for --software-deployment-method conda (relative to this file)
SHARDS = f"{OUT}/data"
REAL_DETECTORS = real_detectors()  # one real-features rule each (evaluate.smk)


# --------------------------------------------------------------------------------------------
# Names (the {setting} grammar lives in vdm/grid.py)
# --------------------------------------------------------------------------------------------
def run_name(images_per_video, step=None):
    """img<K>: the run trained with K images per video; img<K>-step<N>: its EMA weights at step N."""
    return f"img{int(images_per_video)}" + ("" if step is None else f"-step{int(step)}")


def base_run(run):
    """The training run of a run name (img8-step500 -> img8)."""
    return run.split("-")[0]


def run_images(run):
    return int(base_run(run)[len("img") :])


def setting_overrides(name):
    """The sample.* overrides that a {setting} folder name stands for."""
    fields = parse_setting(name)
    out = {f"sample.{k}": v for k, v in fields.items()}
    if fields["task"] != "unconditional" and config["data"]["num_classes"] > 0:
        # class-conditional: labels of the conditioning clips
        out["sample.class_labels"] = config["ablation"]["conditioning"]["class_labels"]
    return out


# --------------------------------------------------------------------------------------------
# Resolved configs: the experiment sections with one run's / setting's overrides applied
# --------------------------------------------------------------------------------------------
def _set(d, dotted, value):
    node = d
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def experiment(overrides=(), skip=()):
    """Experiment sections of the config as written, with dotted overrides applied (a new dict).
    Defaults are left to the dataclasses (not copied from the schema): adding an option with a
    default to the code changes no resolved config and so reruns nothing."""
    exp = {k: copy.deepcopy(v) for k, v in USER_CONFIG.items() if k not in WORKFLOW_SECTIONS and k not in skip}
    exp.setdefault("data", {})["shards"] = SHARDS  # the workflow owns every path
    for key, value in dict(overrides).items():
        _set(exp, key, value)
    return _sorted(exp)


def _sorted(d):
    """Keys in sorted order, recursively: reordering config.yaml changes no params, reruns nothing."""
    return {k: _sorted(v) for k, v in sorted(d.items())} if isinstance(d, dict) else d


def train_overrides(run):
    if run == SR_RUN:
        return superres_train_overrides()
    out = {"data.images_per_video": run_images(run)}
    if EXPORT_STEPS:  # exports along training for the "training" table (FVD vs step)
        out["train.export_steps"] = EXPORT_STEPS
    return out


def sample_overrides(run, setting):
    return {**train_overrides(run), **setting_overrides(setting)}


# --------------------------------------------------------------------------------------------
# The Figure 2 cascade (config `cascade`): the main run's samples extended to more frames, then
# super-resolved by a model trained on the same data at `factor` x the resolution
# --------------------------------------------------------------------------------------------
CASCADE = config.get("cascade", {})
CASCADE_ON = bool(CASCADE.get("enabled", False))
SR_RUN = "superres"
SR_SHARDS = f"{OUT}/data-superres"
CASCADE_STAGES = ("extension", "superres")


def _dotted(section, values):
    return {f"{section}.{k}": v for k, v in (values or {}).items()}


def superres_factor():
    return int(CASCADE.get("superres", {}).get("factor", 2))


def superres_train_overrides():
    """The high-resolution model's training: the experiment's sections with cascade.superres.{data,model,train}
    applied, its own shards, and data.resolution = factor x data.resolution (its frames are data.frames,
    or cascade.superres.data.frames: the paper's 9x128x128 model is shorter than its 16x64x64 base)."""
    c = CASCADE.get("superres", {})
    out = {**_dotted("data", c.get("data")), **_dotted("model", c.get("model")), **_dotted("train", c.get("train"))}
    out["data.resolution"] = superres_factor() * int(config["data"]["resolution"])
    out["data.shards"] = SR_SHARDS
    return out


def cascade_samples(stage):
    return f"{OUT}/cascade/{stage}/samples.npz"


def cascade_overrides(stage):
    """Resolved-config overrides of a cascade stage: "extension" samples cascade.num_samples videos of
    cascade.extension.total_frames frames from the main run (its main sampling setting, task extension, with
    cascade.extension's sample.* values); "superres" super-resolves exactly those videos (sample.cond_npz) in
    blocks of the high-resolution model's frames, with reconstruction guidance (cascade.superres.sample)."""
    n = int(CASCADE.get("num_samples", SAMPLE["num_samples"]))
    if stage == "extension":
        return {
            **train_overrides(MAIN_RUN),
            "sample.task": "extension",
            **_dotted("sample", CASCADE.get("extension")),
            "sample.num_samples": n,
        }
    low = ExperimentConfig.from_dict(experiment(cascade_overrides("extension")))
    out = {
        **superres_train_overrides(),
        "sample.task": "superres",
        "sample.cond_method": "reconstruction",
        "sample.superres_factor": superres_factor(),
        "sample.cond_npz": cascade_samples("extension"),
        "sample.frames": low.sample.total_frames,
        "sample.cond_frames": 0,
    }
    high_frames = ExperimentConfig.from_dict(experiment(superres_train_overrides())).data.frames
    out["sample.superres_block"] = high_frames if high_frames < low.sample.total_frames else 0
    if config["data"]["num_classes"] > 0:
        out["sample.class_labels"] = "eval"  # the labels the extension stage drew (stored in its samples)
    out.update(_dotted("sample", CASCADE.get("superres", {}).get("sample")))
    out["sample.num_samples"] = n
    return out


# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------
ABL = config["ablation"]
FINAL_STEP = int(USER_CONFIG.get("train", {}).get("steps", ExperimentConfig().train.steps))
CHECKPOINTS = sorted({int(s) for s in ABL.get("checkpoints", [])})
EXPORT_STEPS = [s for s in CHECKPOINTS if s < FINAL_STEP]
MAIN_RUN = run_name(config["data"]["images_per_video"])
RUNS = [run_name(k) for k in ABL["images_per_video"]] or [MAIN_RUN]
if MAIN_RUN not in RUNS:
    raise ValueError(
        f"config: ablation.images_per_video {ABL['images_per_video']} must contain "
        f"data.images_per_video ({config['data']['images_per_video']}), the main run"
    )
SAMPLE = config["sample"]
MAIN_SETTING = setting_name(SAMPLE)


def _with(**changes):
    """The {setting} of the main sampling setting with ``changes``; every change must survive the name's
    round trip (a grid axis the name does not encode would silently sample the main setting)."""
    name = setting_name({**SAMPLE, **changes})
    back = parse_setting(name)
    lost = {k: v for k, v in changes.items() if k not in back or float_or(back[k]) != float_or(v)}
    if lost:
        raise WorkflowError(f"config: the setting name {name!r} does not encode {lost} (vdm/grid.py)")
    return name


def float_or(v):
    """Numbers compare as floats (a YAML 2 is the name's 2.0); other values as they are."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def table_rows(table):
    """Rows of one of our tables: (row keys, run, setting). Empty when the grid has no such axis."""
    if table == "main":
        return [({"images_per_video": run_images(MAIN_RUN)}, MAIN_RUN, MAIN_SETTING)]
    if table == "joint_training":
        if len(RUNS) < 2:
            return []
        return [({"images_per_video": run_images(r)}, r, MAIN_SETTING) for r in RUNS]
    if table == "guidance":
        return [({"guidance_weight": float(w)}, MAIN_RUN, _with(guidance_weight=w)) for w in ABL["guidance_weights"]]
    if table == "sampler":
        return [
            (
                {"sampler": s["sampler"], "steps": int(s["steps"])},
                MAIN_RUN,
                _with(sampler=s["sampler"], steps=s["steps"]),
            )
            for s in ABL["samplers"]
        ]
    if table == "training":
        return [
            ({"step": s}, MAIN_RUN if s >= FINAL_STEP else run_name(run_images(MAIN_RUN), s), MAIN_SETTING)
            for s in CHECKPOINTS
        ]
    if table == "conditioning":
        c = ABL["conditioning"]
        rows = []
        for w in c["guidance_weights"] or [SAMPLE["guidance_weight"]]:
            for method in c["methods"]:
                for w_r in (c["w_r"] or [SAMPLE["w_r"]]) if method == "reconstruction" else [None]:
                    keys = {"guidance_weight": float(w), "cond_method": method}
                    extra = {"task": c["task"], "guidance_weight": w, "cond_method": method}
                    if w_r is not None:
                        keys["w_r"] = float(w_r)
                        extra["w_r"] = w_r
                    rows.append((keys, MAIN_RUN, _with(**extra)))
        return rows
    raise ValueError(f"table {table!r} of vdm/report/registry.py has no rows here (table_rows)")


TABLES = [t for t in TABLE_NAMES if table_rows(t)]
CELLS = sorted({(run, setting) for t in TABLES for _, run, setting in table_rows(t)})


def _checked(exp, what, check):
    """Build the ExperimentConfig of a resolved config dict as the vdm commands will, and ``check`` it;
    an error names the config file, the grid cell ("training run img8", "sample set ..."), key and value."""
    try:
        check(ExperimentConfig.from_dict(exp, source=f"{CONFIG_SOURCE}: {what}"))
    except ConfigError as e:
        message = str(e) if str(e).startswith(CONFIG_SOURCE) else f"{CONFIG_SOURCE}: {what}: {e}"
        raise WorkflowError(f"config error: {message}") from None


def _check_configs():
    """Build and check every resolved training and sampling config of the grid before any job runs: a bad
    value fails here, not hours later in a job. While the shards are still to be written, their inputs
    (data.root) must exist."""
    for run in RUNS:
        _checked(experiment(train_overrides(run), skip=TRAIN_SKIPPED), f"training run {run}", check_training)
    for run, setting in CELLS:
        _checked(experiment(sample_overrides(run, setting)), f"sample set {run}/{setting}", check_sampling)
    if not all(os.path.isfile(f"{SHARDS}/{split}/manifest.json") for split in ("train", "test")):
        _checked(experiment(train_overrides(MAIN_RUN), skip=TRAIN_SKIPPED), "data", check_data_inputs)
    if CASCADE:  # configured (in `all` or not)
        _checked(experiment(train_overrides(SR_RUN), skip=TRAIN_SKIPPED), "cascade.superres model", check_training)
        for stage in CASCADE_STAGES:
            _checked(experiment(cascade_overrides(stage)), f"cascade stage {stage}", check_sampling)


_check_configs()


# --------------------------------------------------------------------------------------------
# Resources (config `resources`, per rule, falling back to resources.default)
# --------------------------------------------------------------------------------------------
def threads_of(rule):
    r = config["resources"]
    return int(r.get(rule, {}).get("threads", r.get("default", {}).get("threads", 1)))


def resources_of(rule):
    r = config["resources"]
    out = {**r.get("default", {}), **r.get(rule, {})}
    out.pop("threads", None)
    if not out.get("gpu"):
        out.pop("gpu", None)  # no GPU request at all rather than --gpus=0
    return out


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------
def metrics_path(run, setting):
    return f"{OUT}/metrics/{run}/{setting}.json"


def samples_path(run, setting):
    return f"{OUT}/samples/{run}/{setting}/samples.npz"


def table_outputs(table):
    return {
        "csv": f"{OUT}/report/tables/{table}.csv",
        "md": f"{OUT}/report/tables/{table}.md",
        "html": f"{OUT}/report/tables/{table}.html",
        "png": f"{OUT}/report/plots/{table}.png",
        "gif": f"{OUT}/report/gifs/{table}.gif",
    }


# `snakemake --report report.html`: the results people look at, one category per paper table
# (captions: workflow/report/*.rst).
REPORT_CATEGORIES = {
    "main": "Main result",
    "training": "Along training",
    "joint_training": "Table 4: joint video-image training",
    "guidance": "Table 5: classifier-free guidance",
    "sampler": "Tables 2-3: samplers",
    "conditioning": "Table 6: conditioning method",
}


def _report_category(wildcards):
    return REPORT_CATEGORIES.get(wildcards.table, wildcards.table)


def table_report_outputs(table):
    """table_outputs with the table (HTML), its plot and its sample GIF flagged for the Snakemake report."""
    out = table_outputs(table)
    for key, what in (("html", "table"), ("png", "plot"), ("gif", "samples")):
        out[key] = report(
            out[key],
            caption=f"../report/{'gif' if key == 'gif' else what}.rst",
            category=_report_category,
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
        out += cascade_outputs()
    return out


def cascade_outputs():
    return [f"{OUT}/report/cascade.gif", f"{OUT}/report/cascade.png"]


# --------------------------------------------------------------------------------------------
# Input and params functions of the rules
# --------------------------------------------------------------------------------------------
def parent_of_output(wildcards, output):
    """The folder holding the first output (e.g. the shard root above OUT/data/<split>)."""
    return os.path.dirname(output[0])


def set_frames(cfg):
    """Frames of the videos of a sample set with the resolved ExperimentConfig ``cfg``."""
    return cfg.sample.total_frames if cfg.sample.task == "extension" else (cfg.sample.frames or cfg.data.frames)


def real_features_file(detector, split, frames):
    """The real clips' outputs of a detector: metrics/real-features-<T>f.npz for I3D (of evaluate.split),
    metrics/real-<detector>-<T>f-<split>.npz for the others (Inception: real-inception-<T>f-<split>.npz)."""
    if detector == "i3d":
        return f"{OUT}/metrics/real-features-{frames}f.npz"
    return f"{OUT}/metrics/real-{detector}-{frames}f-{split}.npz"


def real_features_log(detector):
    name = os.path.basename(real_features_file(detector, "{split}", "{frames}"))
    return f"{OUT}/logs/evaluate/{name.removesuffix('.npz')}.log"


def real_features_inputs(wildcards):
    """The real-features files the metrics of sample set {run}/{setting} read (the registry's real_needs)."""
    cfg = ExperimentConfig.from_dict(_sample_config(wildcards))
    ctx = MetricsContext(cfg, set_frames(cfg))
    return [real_features_file(detector, split, ctx.frames) for detector, split in real_needs(ctx)]


def real_features_shards(wildcards):
    """The shards of the split whose real clips a real-features job reads (I3D's: evaluate.split)."""
    return f"{SHARDS}/{getattr(wildcards, 'split', None) or config['evaluate']['split']}"


def real_features_split_args(wildcards):
    return ["--split", wildcards.split] if "split" in wildcards.keys() else []


def write_resolved_config(path, cfg, log, what):
    with open(path, "w") as f:
        f.write(f"# {what}: resolved by the workflow from the configuration; do not edit.\n")
        yaml.safe_dump(json.loads(json.dumps(cfg)), f, sort_keys=False)  # plain types only
    with open(log, "w") as f:
        f.write(f"wrote {path}\n")


def copy_step_export(src, dst, log, run):
    """Copy an export the training wrote at an intermediate step (atomically)."""
    import shutil

    if not os.path.isfile(src):
        raise WorkflowError(
            f"{src} not found: run {run} has no export at that step. Its training ended before "
            f"ablation.checkpoints listed the step (train.export_steps); to evaluate it, retrain from step 0 "
            f"(rm -r {OUT}/train/{run} {OUT}/models/{run}.pt)."
        )
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    if os.path.isfile(f"{src}.run.json"):  # the record of the training segments that made it
        with atomic_path(f"{dst}.run.json") as tmp:
            shutil.copyfile(f"{src}.run.json", tmp)
    with open(log, "w") as f:
        f.write(f"copied {src} -> {dst}\n")


def _train_config(wildcards):
    return experiment(train_overrides(wildcards.run), skip=TRAIN_SKIPPED)


def _sample_config(wildcards):
    return experiment(sample_overrides(wildcards.run, wildcards.setting))


def _sample_inputs(wildcards):
    inputs = {
        "cfg": f"{OUT}/configs/sample/{wildcards.run}/{wildcards.setting}.yaml",
        "model": f"{OUT}/models/{wildcards.run}.pt",
    }
    if setting_overrides(wildcards.setting)["sample.task"] != "unconditional":
        inputs["shards"] = f"{SHARDS}/{SAMPLE['cond_split']}"
    return inputs


def _chunk_indices(wildcards):
    """The chunks of the sample set {run}/{setting} (sample.chunk_size)."""
    return range(num_chunks(ExperimentConfig.from_dict(_sample_config(wildcards)).sample))


def _cascade_config(wildcards):
    return experiment(cascade_overrides(wildcards.stage))


def _cascade_num_chunks(stage):
    return num_chunks(ExperimentConfig.from_dict(experiment(cascade_overrides(stage))).sample)


def _cascade_inputs(wildcards):
    stage = wildcards.stage
    inputs = {
        "cfg": f"{OUT}/configs/cascade/{stage}.yaml",
        "model": f"{OUT}/models/{MAIN_RUN if stage == 'extension' else SR_RUN}.pt",
    }
    if stage == "superres":
        inputs["low"] = cascade_samples("extension")
    elif ExperimentConfig.from_dict(_cascade_config(wildcards)).sample.cond_frames > 0:
        inputs["shards"] = f"{SHARDS}/{SAMPLE['cond_split']}"  # the first block starts from real frames
    return inputs


def _cascade_chunks(wildcards):
    return [f"{OUT}/cascade/{wildcards.stage}/chunks/{i}.npz" for i in range(_cascade_num_chunks(wildcards.stage))]


def _train_shards(wildcards):
    return f"{SR_SHARDS if wildcards.run == SR_RUN else SHARDS}/train"


def _sample_chunks(wildcards):
    return [f"{OUT}/samples/{wildcards.run}/{wildcards.setting}/chunks/{i}.npz" for i in _chunk_indices(wildcards)]


def _feature_chunks(wildcards):
    return [f"{OUT}/features/{wildcards.run}/{wildcards.setting}/{i}.npz" for i in _chunk_indices(wildcards)]


def _plan_spec():
    """What `vdm plan` needs: every training run's and sample set's resolved config, and the resources."""
    cascade = [
        {
            "run": "cascade",
            "setting": stage,
            "train_run": MAIN_RUN if stage == "extension" else SR_RUN,
            "config": _cascade_config(SimpleNamespace(stage=stage)),
            "evaluate": False,
        }
        for stage in (CASCADE_STAGES if CASCADE_ON else ())
    ]
    return {
        "name": config["name"],
        "runs": {run: _train_config(SimpleNamespace(run=run)) for run in RUNS + ([SR_RUN] if CASCADE_ON else [])},
        "sets": [
            {
                "run": run,
                "setting": setting,
                "train_run": base_run(run),
                "config": _sample_config(SimpleNamespace(run=run, setting=setting)),
            }
            for run, setting in CELLS
        ]
        + cascade,
        "resources": config["resources"],
    }


def _table_spec(table):
    rows = [
        {
            "keys": keys,
            "run": run,
            "setting": setting,
            "metrics": metrics_path(run, setting),
            "samples": samples_path(run, setting),
        }
        for keys, run, setting in table_rows(table)
    ]
    return {
        "table": table,
        "experiment": config["name"],
        "rows": rows,
        "note": config["report"]["dataset_note"],
        "paper": config["report"]["paper"].get(table),
        "gif_videos": config["report"]["gif_videos"],
    }


def _table_inputs(wildcards):
    rows = table_rows(wildcards.table)
    return {
        "metrics": [metrics_path(run, setting) for _, run, setting in rows],
        "samples": [samples_path(run, setting) for _, run, setting in rows],
    }


def _table_spec_json(wildcards):
    return json.dumps(_table_spec(wildcards.table), sort_keys=True)


wildcard_constraints:
    run=r"img[0-9]+(-step[0-9]+)?",
    step=r"[0-9]+",
    setting=SETTING_RE,
    split=r"train|test",
    frames=r"[0-9]+",
    chunk=r"[0-9]+",
    table="|".join(TABLE_NAMES),
    stage="|".join(CASCADE_STAGES),
    dataset=r"data|data-superres",
