"""The workflow's JSON schema is generated from the config dataclasses; configs are strict.

A typo anywhere (an experiment section, the ablation grid, a workflow section) is an error that names
the key before any job runs.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Literal, Optional

import jsonschema
import pytest
import yaml

from vdm import schema as vschema
from vdm.config import ExperimentConfig

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [REPO / "config" / "config.yaml", REPO / "config" / "test.yaml",
           *sorted((REPO / "config" / "paper").glob("*.yaml"))]
WORKFLOW_SECTIONS = ("ablation", "cascade", "resources", "report")


def test_committed_schema_equals_the_generated_one():
    committed = vschema.OUTPUT_SCHEMA.read_text()
    assert committed == vschema.render(vschema.build_schema()), (
        "workflow/schemas/config.schema.json is stale: a config dataclass changed; run `vdm schema --write`"
    )
    r = subprocess.run([sys.executable, "-m", "vdm", "schema", "--check"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr


def _objects(node, path="$"):
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            yield path, node
        for k, v in node.items():
            yield from _objects(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _objects(v, f"{path}[{i}]")


def test_every_object_is_strict_and_every_experiment_field_documented():
    s = vschema.build_schema()
    for path, obj in _objects(s):
        assert obj.get("additionalProperties") is False, f"{path} accepts unknown keys"
    exp = vschema.experiment_schema()
    for section, sub in exp["properties"].items():
        for key, field in sub.get("properties", {}).items():
            assert field.get("description"), f"{section}.{key} has no description (add a comment to its field)"


def test_schema_carries_types_defaults_enums_and_comments_of_the_dataclasses():
    p = vschema.build_schema()["properties"]
    assert p["data"]["properties"]["frames"] == {
        "description": "frames per training clip (T)", "type": "integer", "default": 16}
    assert p["sample"]["properties"]["sampler"]["enum"] == ["ancestral", "langevin"]
    assert p["model"]["properties"]["channel_mult"]["type"] == "array"
    # model fields come from the named size: no schema default that would override it
    assert "default" not in p["model"]["properties"]["base_channels"]
    assert "unless set by the named size" in p["model"]["properties"]["base_channels"]["description"]
    assert "demo" in p["model"]["properties"]["size"]["enum"]
    assert "one more on the way up" in p["model"]["properties"]["num_res_blocks"]["description"]


def test_field_comment_parser():
    @dataclasses.dataclass(frozen=True)
    class Example:
        # ---- a section rule, not a description ----
        a: int = 1  # trailing comment
        # block comment above
        # on two lines
        b: float = 2.0
        c: str = "x"  # continued
        #               on the next line
        d: Optional[int] = None
        e: Literal["p", "q"] = "p"
        f: tuple[int, ...] = (1, 2)

    comments = vschema.field_comments(Example)
    assert comments == {"a": "trailing comment", "b": "block comment above on two lines",
                        "c": "continued on the next line"}
    s = vschema.dataclass_schema(Example)
    assert s["properties"]["d"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert s["properties"]["e"]["enum"] == ["p", "q"]
    assert s["properties"]["f"] == {"type": "array", "items": {"type": "integer"}, "default": [1, 2]}
    with pytest.raises(TypeError, match="x.bad"):
        vschema.type_schema(set[int], "x.bad")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_configs_validate_and_their_experiment_sections_load_strictly(config):
    data = yaml.safe_load(config.read_text())
    jsonschema.Draft202012Validator(json.loads(vschema.OUTPUT_SCHEMA.read_text())).validate(data)
    exp = ExperimentConfig.from_dict({k: v for k, v in data.items() if k not in WORKFLOW_SECTIONS}, str(config))
    assert exp.name == data["name"]


def test_embedded_default_is_the_moving_mnist_demo():
    data = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    exp = ExperimentConfig.from_dict({k: v for k, v in data.items() if k not in WORKFLOW_SECTIONS})
    assert (exp.data.source, exp.data.resolution, exp.data.channels) == ("moving_mnist", 32, 1)
    assert exp.model.size == "demo" and exp.model.num_classes == exp.data.num_classes > 0
    abl = data["ablation"]
    # Table 4: no images per video vs the main run's; Table 5: unguided vs the main weight and above; Table 6:
    # extension (and prediction) by both methods; the untrained network vs the final one (the learning criterion)
    assert sorted(abl["images_per_video"]) == [0, exp.data.images_per_video] and exp.data.images_per_video > 0
    assert 0.0 in abl["guidance_weights"] and exp.sample.guidance_weight in abl["guidance_weights"]
    assert max(abl["guidance_weights"]) > exp.sample.guidance_weight > 0
    assert "extension" in abl["conditioning"]["task"]
    assert sorted(abl["conditioning"]["methods"]) == ["reconstruction", "replacement"]
    assert abl["checkpoints"] == [0, exp.train.steps]


def _dry_run_with(tmp_path: Path, edit) -> subprocess.CompletedProcess:
    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    edit(cfg)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"),
                           "--directory", str(tmp_path), "--configfile", str(path), "--replace-workflow-config"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["train"].update(stepz=3), "stepz"),  # experiment section
        (lambda c: c.update(sampel={"steps": 3}), "sampel"),  # unknown section
        (lambda c: c["ablation"].update(guidance_weight=[1.0]), "guidance_weight"),  # workflow section
        (lambda c: c["resources"]["sample"].update(mem_gb=3) if "sample" in c["resources"]
         else c["resources"].update(sample={"mem_gb": 3}), "mem_gb"),
        (lambda c: c["ablation"].update(samplers=[{"sampler": "ancestrl", "steps": 3}]), "ancestrl"),  # grid value
        (lambda c: c["model"].update(size="tinny"), "tinny"),
        (lambda c: c["ablation"].update(images_per_video=[0, 4]), "images_per_video"),  # main run missing
    ],
    ids=["train-key", "section", "ablation-key", "resources-key", "grid-value", "model-size", "main-run"],
)
def test_typo_is_an_error_naming_the_key_before_any_job(tmp_path, edit, expected):
    r = _dry_run_with(tmp_path, edit)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and expected in out, out[-2000:]
    assert not (tmp_path / "results").exists()  # nothing ran


def test_the_slurm_plugins_resource_names_and_timespan_runtimes_pass_and_reach_the_rules(tmp_path):
    """Resources the slurm executor plugin reads (cpus_per_task, mem_mb_per_cpu, nodes, tasks, clusters, ...) are
    accepted per rule, and a runtime may be a timespan string ("2h") as Snakemake reads it; a malformed one is an
    error naming the value."""
    def edit(c):
        c["resources"]["sample"] = {"cpus_per_task": 4, "mem_mb_per_cpu": 2000, "nodes": 1, "tasks": 1,
                                    "clusters": "gpu-cluster", "cpus_per_gpu": 8, "runtime": "2h"}
        c["resources"]["default"] = {**c["resources"].get("default", {}), "runtime": "90m"}

    r = _dry_run_with(tmp_path, edit)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    sample_job = r.stdout[r.stdout.index("rule sample_chunk:"):][:1500]
    assert "runtime=120" in sample_job and "clusters=gpu-cluster" in sample_job and "cpus_per_task=4" in sample_job
    bad = _dry_run_with(tmp_path, lambda c: c["resources"].update(default={"runtime": "two hours"}))
    assert bad.returncode != 0 and "two hours" in bad.stdout + bad.stderr


def test_runtime_minutes_reads_what_the_schema_admits():
    from vdm.jobs import runtime_minutes

    assert [runtime_minutes(v) for v in (45, "45", "90m", "2h", "1.5 hours", "2d", "30 s")] == [
        45, 45, 90, 120, 90, 2880, 0.5]
    with pytest.raises(ValueError, match="two hours"):
        runtime_minutes("two hours")
    import re

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "workflow.schema.yaml").read_text())
    pattern = schema["$defs"]["rule_resources"]["properties"]["runtime"]["oneOf"][1]["pattern"]
    for text in ("90m", "2h", "1.5 hours", "2d", "30 s"):
        assert re.match(pattern, text), text
    assert not re.match(pattern, "two hours") and not re.match(pattern, "1d 6h")
