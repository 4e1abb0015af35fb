"""The ablation grid of one configuration (paper Tables 2-6 and the Figure 2 cascade): its training runs,
sample sets and tables, and the resolved config of each, built once when the workflow is parsed
(``workflow/rules/common.smk`` holds the paths and the rules' input functions over it).

A resolved config holds the experiment sections as written (``USER_CONFIG``) with one run's / sample set's
dotted overrides applied; the grid itself is read from the validated config (schema defaults applied).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from vdm.checks import check_data_inputs, check_sampling, check_training
from vdm.config import WORKFLOW_SECTIONS, ConfigError, ExperimentConfig
from vdm.grid import base_run, parse_setting, run_images, run_name, setting_name
from vdm.metrics.config import STATISTICS_ONLY
from vdm.metrics.registry import extension_window
from vdm.report.registry import TABLE_NAMES
from vdm.sampling.config import num_chunks
from vdm.utils.yamlfile import load_yaml

Overrides = dict[str, Any]
Row = tuple[dict[str, Any], str, str]  # (row keys, run, setting) of a table

TRAIN_SKIPPED = ("sample", "evaluate")  # sections training never reads: editing them retrains nothing
DRAW_SKIPPED = ("evaluate",)  # the section drawing a sample set never reads: editing it resamples nothing
SR_RUN = "superres"  # the cascade's high-resolution model
CASCADE_STAGES = ("extension", "superres")


class GridError(ValueError):
    """A configuration the grid cannot be built from (the workflow reports it as a WorkflowError)."""


def float_or(v: Any) -> Any:
    """Numbers compare as floats (a YAML 2 is the name's 2.0); other values as they are."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _set(d: dict, dotted: str, value: Any) -> None:
    node = d
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def _sorted(d: Any) -> Any:
    """Keys in sorted order, recursively: reordering config.yaml changes no params, reruns nothing."""
    return {k: _sorted(v) for k, v in sorted(d.items())} if isinstance(d, dict) else d


def _dotted(section: str, values: Mapping[str, Any] | None) -> Overrides:
    return {f"{section}.{k}": v for k, v in (values or {}).items()}


def _drop_statistics(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` without the evaluate keys only statistics read (vdm.metrics.config.STATISTICS_ONLY), in place."""
    for key in STATISTICS_ONLY:
        cfg.get("evaluate", {}).pop(key, None)
    return cfg


def conditioning_tasks(c: Mapping[str, Any]) -> list[str]:
    """The tasks of the conditioning ablation (``ablation.conditioning.task``: one task or a list of them)."""
    task = c.get("task", "extension")
    return [task] if isinstance(task, str) else list(task)


@dataclass(frozen=True, eq=False)
class Ablation:
    """The grid of ``config`` (validated, schema defaults applied; ``user_config``: as written) whose outputs
    lie under ``out`` (results/<name>). Raises GridError for a grid that cannot be built."""

    config: Mapping[str, Any] = field(repr=False)
    user_config: Mapping[str, Any] = field(repr=False)
    out: str
    source: str = ""  # the config file, named in errors
    shards: str = field(init=False)  # OUT/data: the shards of every run of the grid
    sr_shards: str = field(init=False)  # OUT/data-superres: the cascade's high-resolution model's
    cascade: Mapping[str, Any] = field(init=False)  # config `cascade` ({} when not configured)
    cascade_on: bool = field(init=False)  # cascade.enabled: part of `all`
    final_step: int = field(init=False)  # train.steps
    checkpoints: tuple[int, ...] = field(init=False)  # ablation.checkpoints, sorted
    export_steps: tuple[int, ...] = field(init=False)  # those before the final step (train.export_steps)
    main_run: str = field(init=False)  # the run with data.images_per_video
    runs: tuple[str, ...] = field(init=False)  # the training runs (ablation.images_per_video)
    sample: Mapping[str, Any] = field(init=False)  # the main sampling setting (section `sample`)
    main_setting: str = field(init=False)
    tables: tuple[str, ...] = field(init=False)  # the tables of vdm/report/registry.py the grid has rows of
    cells: tuple[tuple[str, str], ...] = field(init=False)  # (run, setting) of every table row, sorted
    _chunks: dict[tuple[str, str], int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _chunk_sizes: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        config, abl = self.config, self.config["ablation"]
        put("shards", f"{self.out}/data")
        put("sr_shards", f"{self.out}/data-superres")
        try:  # the sample section as written, before any setting name is formed from it (steps -1: a range error)
            ExperimentConfig.from_dict({"sample": copy.deepcopy(dict(self.user_config.get("sample", {})))},
                                       source=self.source)
        except ConfigError as e:
            raise GridError(f"config error: {e}") from None
        put("cascade", config.get("cascade", {}))
        put("cascade_on", bool(self.cascade.get("enabled", False)))
        put("final_step", int(self.user_config.get("train", {}).get("steps", ExperimentConfig().train.steps)))
        put("checkpoints", tuple(sorted({int(s) for s in abl.get("checkpoints", [])})))
        put("export_steps", tuple(s for s in self.checkpoints if s < self.final_step))
        put("main_run", run_name(config["data"]["images_per_video"]))
        put("runs", tuple(run_name(k) for k in abl["images_per_video"]) or (self.main_run,))
        if self.main_run not in self.runs:
            raise GridError(
                f"config: ablation.images_per_video {abl['images_per_video']} must contain "
                f"data.images_per_video ({config['data']['images_per_video']}), the main run"
            )
        put("sample", config["sample"])
        put("main_setting", setting_name(self.sample))
        put("tables", tuple(t for t in TABLE_NAMES if self.table_rows(t)))
        put("cells", tuple(sorted({(run, setting) for t in self.tables for _, run, setting in self.table_rows(t)})))

    # ---- resolved configs ---------------------------------------------------------------------------
    def experiment(self, overrides: Mapping[str, Any] = (), skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """Experiment sections of the config as written, with dotted overrides applied (a new dict).
        Defaults are left to the dataclasses (not copied from the schema): adding an option with a
        default to the code changes no resolved config and so reruns nothing."""
        exp = {k: copy.deepcopy(v) for k, v in self.user_config.items() if k not in WORKFLOW_SECTIONS and k not in skip}
        exp.setdefault("data", {})["shards"] = self.shards  # the workflow owns every path
        for key, value in dict(overrides).items():
            _set(exp, key, value)
        return _sorted(exp)

    def setting_overrides(self, setting: str) -> Overrides:
        """The sample.* overrides that a {setting} folder name stands for."""
        fields = parse_setting(setting)
        out = {f"sample.{k}": v for k, v in fields.items()}
        if fields["task"] != "unconditional" and self.config["data"]["num_classes"] > 0:
            # class-conditional: labels of the conditioning clips
            out["sample.class_labels"] = self.config["ablation"]["conditioning"]["class_labels"]
        return out

    def train_overrides(self, run: str) -> Overrides:
        if run == SR_RUN:
            return self.superres_train_overrides()
        out: Overrides = {"data.images_per_video": run_images(run)}
        if self.export_steps:  # exports along training for the "training" table (FVD vs step)
            out["train.export_steps"] = list(self.export_steps)
        return out

    def sample_overrides(self, run: str, setting: str) -> Overrides:
        return {**self.train_overrides(run), **self.setting_overrides(setting)}

    def train_config(self, run: str) -> dict[str, Any]:
        """The resolved training config of a run (img<K> or superres)."""
        return self.experiment(self.train_overrides(run), skip=TRAIN_SKIPPED)

    def evaluation_config(self, part: str = "all") -> dict[str, Any]:
        """The resolved config of the evaluation beside the sample sets: "all" (data and evaluate; the comparisons),
        "real" (without the evaluate keys only statistics read; the real clips' features), "digits" (data and
        evaluate.digit_steps; the digit classifier)."""
        cfg = self.experiment(skip=("model", "diffusion", "train", "launch", "sample"))
        ev = cfg.setdefault("evaluate", {})
        if part == "real":
            _drop_statistics(cfg)
        elif part == "digits":
            cfg["evaluate"] = {k: v for k, v in ev.items() if k == "digit_steps"}
        elif part != "all":
            raise ValueError(f"unknown evaluation config part {part!r}")
        return cfg

    # A sample set has three resolved configs, each holding what its jobs read, so that an edit reruns only the
    # jobs that read the edited value: the draw's (configs/sample/: every section but evaluate; rules
    # sample_chunk, sample), the features' (configs/features/: without the evaluate keys only statistics read;
    # rule features_chunk) and the metrics' (configs/metrics/: all of it; rules evaluate, provenance).
    def draw_config_path(self, run: str, setting: str) -> str:
        return f"{self.out}/configs/sample/{run}/{setting}.yaml"

    def draw_config(self, run: str, setting: str) -> dict[str, Any]:
        """The resolved config of the draw of sample set {run}/{setting} (every section but evaluate; sample.chunk_size
        as :meth:`chunk_size` keeps it)."""
        return self._with_chunk_size(run, setting, self.experiment(self.sample_overrides(run, setting),
                                                                   skip=DRAW_SKIPPED))

    def features_config(self, run: str, setting: str) -> dict[str, Any]:
        """The resolved config of the chunk features jobs of sample set {run}/{setting}: the metrics' config without
        the evaluate keys only the statistics read (vdm.metrics.config.STATISTICS_ONLY)."""
        return _drop_statistics(self.metrics_config(run, setting))

    def metrics_config(self, run: str, setting: str) -> dict[str, Any]:
        """The resolved sampling + evaluation config of the sample set {run}/{setting} (what its evaluation reads)."""
        return self._with_chunk_size(run, setting, self.experiment(self.sample_overrides(run, setting)))

    def _with_chunk_size(self, run: str, setting: str, cfg: dict[str, Any]) -> dict[str, Any]:
        size = self.chunk_size(run, setting)
        cfg["sample"].pop("chunk_size", None)
        if size is not None:
            cfg["sample"]["chunk_size"] = size
        return _sorted(cfg)

    def chunk_size(self, run: str, setting: str) -> Any:
        """sample.chunk_size of a sample set as written (None: not written, the default). A set already drawn and
        gathered keeps the chunk size it was drawn with when nothing else its draw reads has changed: the gathered
        set does not depend on the chunking (tests/test_sampling_chunks.py), so a new chunk size applies to the sets
        not drawn yet and redraws none. The record is the draw's resolved config on disk."""
        key = (run, setting)
        if key not in self._chunk_sizes:
            cfg = self.experiment(self.sample_overrides(run, setting), skip=DRAW_SKIPPED)
            size = cfg["sample"].pop("chunk_size", None)
            drawn = self._drawn_chunk_size(run, setting, cfg)
            if drawn is not None and drawn != (size,):
                print(f"vdm: sample set {run}/{setting} is drawn: it keeps its chunks (sample.chunk_size "
                      f"{drawn[0] if drawn[0] is not None else 'default'}; the config's "
                      f"{size if size is not None else 'default'} applies to sets not drawn yet)", file=sys.stderr)
                size = drawn[0]
            self._chunk_sizes[key] = size
        return self._chunk_sizes[key]

    def _drawn_chunk_size(self, run: str, setting: str, cfg: Mapping[str, Any]) -> tuple[Any] | None:
        """(chunk size,) of the set's draw config on disk when its gathered samples exist and that config equals
        ``cfg`` (without its chunk size) in everything else; else None."""
        path = self.draw_config_path(run, setting)
        if not (os.path.isfile(path) and os.path.isfile(self.samples_path(run, setting))):
            return None
        try:
            on_disk = load_yaml(path)
        except Exception:  # noqa: BLE001 - an unreadable record keeps nothing; the workflow rewrites it
            return None
        if not isinstance(on_disk, dict) or not isinstance(on_disk.get("sample"), dict):
            return None
        size = on_disk["sample"].pop("chunk_size", None)
        same = json.dumps(on_disk, sort_keys=True) == json.dumps(json.loads(json.dumps(cfg)), sort_keys=True)
        return (size,) if same else None

    def num_chunks(self, run: str, setting: str) -> int:
        """Chunks of the sample set {run}/{setting} (sample.chunk_size samples each), a job each (built once)."""
        if (run, setting) not in self._chunks:
            cfg = ExperimentConfig.from_dict(self.draw_config(run, setting))
            self._chunks[(run, setting)] = num_chunks(cfg.sample)
        return self._chunks[(run, setting)]

    def clip_frames(self, setting: str) -> int:
        """Frames of the clips a {setting}'s sample set is measured on (the real clips FVD compares with have as
        many): sample.frames or data.frames (one block); for extension sample.total_frames, unless
        evaluate.extension_window measures one block of the extended videos (vdm.metrics.registry.extension_window)."""
        sample = {**self.sample, **{k.split(".", 1)[1]: v for k, v in self.setting_overrides(setting).items()}}
        block = int(sample["frames"] or self.config["data"]["frames"])
        if sample["task"] != "extension":
            return block
        total = int(sample["total_frames"])
        window = extension_window(self.config["evaluate"].get("extension_window", "whole"), "extension", block, total)
        return window[1] - window[0] if window else total

    # ---- the Figure 2 cascade (config `cascade`): the main run's samples extended to more frames, then
    # super-resolved by a model trained on the same data at `factor` x the resolution -------------------
    @property
    def superres_factor(self) -> int:
        return int(self.cascade.get("superres", {}).get("factor", 2))

    def superres_train_overrides(self) -> Overrides:
        """The high-resolution model's training: the experiment's sections with cascade.superres.{data,model,train}
        applied, its own shards, and data.resolution = factor x data.resolution (its frames are data.frames,
        or cascade.superres.data.frames: the paper's 9x128x128 model is shorter than its 16x64x64 base)."""
        c = self.cascade.get("superres", {})
        out = {**_dotted("data", c.get("data")), **_dotted("model", c.get("model")), **_dotted("train", c.get("train"))}
        out["data.resolution"] = self.superres_factor * int(self.config["data"]["resolution"])
        out["data.shards"] = self.sr_shards
        return out

    def cascade_samples(self, stage: str) -> str:
        return f"{self.out}/cascade/{stage}/samples.npz"

    def cascade_overrides(self, stage: str) -> Overrides:
        """Resolved-config overrides of a cascade stage: "extension" samples cascade.num_samples videos of
        cascade.extension.total_frames frames from the main run (its main sampling setting, task extension, with
        cascade.extension's sample.* values); "superres" super-resolves exactly those videos (sample.cond_npz) in
        blocks of the high-resolution model's frames, with reconstruction guidance (cascade.superres.sample)."""
        n = int(self.cascade.get("num_samples", self.sample["num_samples"]))
        if stage == "extension":
            return {
                **self.train_overrides(self.main_run),
                "sample.task": "extension",
                **_dotted("sample", self.cascade.get("extension")),
                "sample.num_samples": n,
            }
        low = ExperimentConfig.from_dict(self.experiment(self.cascade_overrides("extension")))
        out = {
            **self.superres_train_overrides(),
            "sample.task": "superres",
            "sample.cond_method": "reconstruction",
            "sample.superres_factor": self.superres_factor,
            "sample.cond_npz": self.cascade_samples("extension"),
            "sample.frames": low.sample.total_frames,
            "sample.cond_frames": 0,
        }
        high_frames = ExperimentConfig.from_dict(self.experiment(self.superres_train_overrides())).data.frames
        out["sample.superres_block"] = high_frames if high_frames < low.sample.total_frames else 0
        if self.config["data"]["num_classes"] > 0:
            out["sample.class_labels"] = "eval"  # the labels the extension stage drew (stored in its samples)
        out.update(_dotted("sample", self.cascade.get("superres", {}).get("sample")))
        out["sample.num_samples"] = n
        return out

    def cascade_config(self, stage: str) -> dict[str, Any]:
        return self.experiment(self.cascade_overrides(stage))

    def cascade_num_chunks(self, stage: str) -> int:
        return num_chunks(ExperimentConfig.from_dict(self.cascade_config(stage)).sample)

    # ---- the tables -----------------------------------------------------------------------------------
    def setting_with(self, **changes: Any) -> str:
        """The {setting} of the main sampling setting with ``changes``; every change must survive the name's
        round trip (a grid axis the name does not encode would silently sample the main setting)."""
        name = setting_name({**self.sample, **changes})
        back = parse_setting(name)
        lost = {k: v for k, v in changes.items() if k not in back or float_or(back[k]) != float_or(v)}
        if lost:
            raise GridError(f"config: the setting name {name!r} does not encode {lost} (vdm/grid.py)")
        return name

    def table_rows(self, table: str) -> list[Row]:
        """Rows of one of our tables: (row keys, run, setting). Empty when the grid has no such axis."""
        abl, main, sample = self.config["ablation"], self.main_run, self.sample
        if table == "main":
            return [({"images_per_video": run_images(main)}, main, self.main_setting)]
        if table == "joint_training":
            if len(self.runs) < 2:
                return []
            return [({"images_per_video": run_images(r)}, r, self.main_setting) for r in self.runs]
        if table == "guidance":
            return [({"guidance_weight": float(w)}, main, self.setting_with(guidance_weight=w))
                    for w in abl["guidance_weights"]]
        if table == "sampler":
            return [
                (
                    {"sampler": s["sampler"], "steps": int(s["steps"])},
                    main,
                    self.setting_with(sampler=s["sampler"], steps=s["steps"]),
                )
                for s in abl["samplers"]
            ]
        if table == "training":
            return [
                ({"step": s}, main if s >= self.final_step else run_name(run_images(main), s), self.main_setting)
                for s in self.checkpoints
            ]
        if table == "conditioning":
            c = abl["conditioning"]
            rows = []
            for task in conditioning_tasks(c):
                for w in c["guidance_weights"] or [sample["guidance_weight"]]:
                    for method in c["methods"]:
                        for w_r in (c["w_r"] or [sample["w_r"]]) if method == "reconstruction" else [None]:
                            keys = {"task": task, "guidance_weight": float(w), "cond_method": method}
                            extra = {"task": task, "guidance_weight": w, "cond_method": method}
                            if w_r is not None:
                                keys["w_r"] = float(w_r)
                                extra["w_r"] = w_r
                            rows.append((keys, main, self.setting_with(**extra)))
            return rows
        raise ValueError(f"table {table!r} of vdm/report/registry.py has no rows here (table_rows)")

    # ---- what the commands are given ----------------------------------------------------------------
    def metrics_path(self, run: str, setting: str) -> str:
        return f"{self.out}/metrics/{run}/{setting}.json"

    def samples_path(self, run: str, setting: str) -> str:
        return f"{self.out}/samples/{run}/{setting}/samples.npz"

    def comparisons_path(self, table: str) -> str:
        """The paired comparisons of a table's arms (`vdm compare`)."""
        return f"{self.out}/report/comparisons/{table}.json"

    def feature_paths(self, run: str, setting: str) -> list[str]:
        """The chunk features files of a sample set, in chunk order."""
        return [f"{self.out}/features/{run}/{setting}/{i}.npz" for i in range(self.num_chunks(run, setting))]

    def table_files(self, table: str) -> dict[str, list[str]]:
        """The metrics and samples files of a table's rows, in row order, and its comparisons (its job's inputs)."""
        rows = self.table_rows(table)
        return {"metrics": [self.metrics_path(r, s) for _, r, s in rows],
                "samples": [self.samples_path(r, s) for _, r, s in rows],
                "comparisons": [self.comparisons_path(table)]}

    def compare_spec(self, table: str) -> dict[str, Any]:
        """What `vdm compare` needs: the table's rows in order, each with its samples and chunk features files."""
        return {"table": table, "rows": [
            {"run": run, "setting": setting, "samples": self.samples_path(run, setting),
             "features": self.feature_paths(run, setting)} for _, run, setting in self.table_rows(table)]}

    def plan_spec(self) -> dict[str, Any]:
        """What `vdm plan` needs: every training run's and sample set's resolved config, and the resources."""
        cascade = [
            {
                "run": "cascade",
                "setting": stage,
                "train_run": self.main_run if stage == "extension" else SR_RUN,
                "config": self.cascade_config(stage),
                "evaluate": False,
            }
            for stage in (CASCADE_STAGES if self.cascade_on else ())
        ]
        runs = self.runs + ((SR_RUN,) if self.cascade_on else ())
        return {
            "name": self.config["name"],
            "runs": {run: self.train_config(run) for run in runs},
            "sets": [
                {"run": run, "setting": setting, "train_run": base_run(run),
                 "config": self.metrics_config(run, setting)}
                for run, setting in self.cells
            ]
            + cascade,
            "resources": self.config["resources"],
        }

    def table_spec(self, table: str) -> dict[str, Any]:
        """What `vdm report table` needs: the table's rows (keys, cell, metrics and samples files) and notes."""
        report = self.config["report"]
        rows = [
            {
                "keys": keys,
                "run": run,
                "setting": setting,
                "metrics": self.metrics_path(run, setting),
                "samples": self.samples_path(run, setting),
            }
            for keys, run, setting in self.table_rows(table)
        ]
        return {
            "table": table,
            "experiment": self.config["name"],
            "rows": rows,
            "note": report["dataset_note"],
            "paper": report["paper"].get(table),
            "gif_videos": report["gif_videos"],
            "comparisons": self.comparisons_path(table),
        }

    # ---- parse-time checks --------------------------------------------------------------------------
    def _resolved(self) -> Iterator[tuple[dict[str, Any], str, Callable[[ExperimentConfig], None]]]:
        """(resolved config, what it is, its check) of every job config the grid makes."""
        for run in self.runs:
            yield self.train_config(run), f"training run {run}", check_training
        for run, setting in self.cells:
            yield self.metrics_config(run, setting), f"sample set {run}/{setting}", check_sampling
        if not all(os.path.isfile(f"{self.shards}/{split}/manifest.json") for split in ("train", "test")):
            yield self.train_config(self.main_run), "data", check_data_inputs
        if self.cascade:  # configured (in `all` or not)
            yield self.train_config(SR_RUN), "cascade.superres model", check_training
            for stage in CASCADE_STAGES:
                yield self.cascade_config(stage), f"cascade stage {stage}", check_sampling

    def check(self, source: str) -> None:
        """Build and check every resolved training and sampling config of the grid before any job runs: a bad
        value fails here, not hours later in a job. While the shards are still to be written, their inputs
        (data.root) must exist. The error names ``source`` (the config file), the grid cell ("training run
        img8", "sample set ..."), key and value."""
        for exp, what, check in self._resolved():
            try:
                check(ExperimentConfig.from_dict(exp, source=f"{source}: {what}"))
            except ConfigError as e:
                message = str(e) if str(e).startswith(source) else f"{source}: {what}: {e}"
                raise GridError(f"config error: {message}") from None
        late = [s for s in self.checkpoints if s > self.final_step]
        if late:
            raise GridError(f"config error: {source}: ablation.checkpoints {late} lie beyond train.steps "
                            f"({self.final_step}): the training never reaches them")
