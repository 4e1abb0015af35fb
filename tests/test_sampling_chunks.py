"""Chunked sample sets: `vdm sample --chunk I` + `vdm gather` give the unchunked set byte for byte, for
any chunk size; the gather refuses chunks that are not one whole set; eval clips by range."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, tiny_config_dict, write_config
from test_sampling_cli import _export

from vdm.artifacts import ArtifactError
from vdm.artifacts.samples import gather_samples
from vdm.config import ConfigError, load_config
from vdm.data.loader import eval_clips
from vdm.sampling.cli import main as sample_main
from vdm.sampling.config import SampleConfig, chunk_range, num_chunks
from vdm.sampling.gather import main as gather_main

pytestmark = pytest.mark.usefixtures("one_thread")

N = 6
# prediction: conditioning clips, class labels and guidance all depend on the sample's index
PREDICTION = ["--set", "sample.task=prediction", "--set", "sample.cond_frames=2", "--set", "sample.guidance_weight=1",
              "--set", "sample.cond_method=reconstruction", "--set", "sample.w_r=2"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("chunks")
    cfg_dict = tiny_config_dict(root / "data", sample=dict(steps=2, num_samples=N, batch_size=2, gamma=0.1))
    cfg_dict["model"] = {"size": "tiny"}
    cfg = write_config(root / "cfg.yaml", cfg_dict)
    r = subprocess.run([sys.executable, "-m", "vdm", "shard", "--config", str(cfg), "--split", "test", "--quiet",
                        "--workers", "1"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    classes = load_config(cfg).data.num_classes
    assert classes > 0  # the labels must be a per-sample input of the test
    return root, cfg, _export(root / "export.pt", num_classes=classes)


def _chunked(root, cfg, export, chunk_size, tag, extra=()):
    sets = ["--set", f"sample.chunk_size={chunk_size}", *extra]
    n = num_chunks(SampleConfig(num_samples=N, batch_size=2, chunk_size=chunk_size))
    paths = []
    for i in reversed(range(n)):  # any order
        p = root / f"{tag}-c{chunk_size}-{i}.npz"
        assert sample_main(["--export", str(export), "--config", str(cfg), "--chunk", str(i), "--out", str(p),
                            "--quiet", *sets]) == 0
        paths.append(str(p))
    out = root / f"{tag}-c{chunk_size}.npz"
    assert gather_main(["--out", str(out), *paths, "--gif", str(root / f"{tag}-c{chunk_size}.gif")]) == 0
    return out, paths


@pytest.mark.parametrize("task", ["unconditional", "prediction"])
def test_gathered_set_is_byte_identical_for_any_chunk_size(setup, task):
    root, cfg, export = setup
    extra = PREDICTION if task == "prediction" else []
    whole = root / f"{task}-whole.npz"
    assert sample_main(["--export", str(export), "--config", str(cfg), "--out", str(whole), "--quiet", *extra]) == 0
    data = whole.read_bytes()
    for chunk_size in (0, 2, 4, 6):  # one chunk (the set's own size), 3 x 2, 4 + 2 (a short last chunk), 1 x 6
        out, paths = _chunked(root, cfg, export, chunk_size, task, extra)
        assert out.read_bytes() == data, f"chunk_size {chunk_size}: gathered set differs from the unchunked one"
        assert (root / f"{task}-c{chunk_size}.gif").stat().st_size > 0
    with np.load(whole) as z:
        assert z["videos"].shape[0] == N and z["seeds"].tolist() == list(range(N))
        assert "chunk" not in json.loads(str(z["settings"]))  # a gathered set is not a chunk
        assert "chunk_size" not in json.loads(str(z["settings"]))["sample"]
        assert len(set(z["cls"].tolist())) > 1  # per-sample labels
        if task == "prediction":
            assert not np.array_equal(z["cond_videos"][0], z["cond_videos"][1])


def test_gather_refuses_sets_with_missing_overlapping_or_foreign_chunks(setup, tmp_path):
    root, cfg, export = setup
    _, paths = _chunked(root, cfg, export, 2, "refuse")  # paths: chunk 2, 1, 0
    with pytest.raises(ArtifactError, match="expected 2 .missing"):
        gather_samples(tmp_path / "a.npz", [paths[2], paths[0]])  # chunk 1 missing
    with pytest.raises(ArtifactError, match="last chunk"):
        gather_samples(tmp_path / "b.npz", [paths[2], paths[1]])  # chunk 2 missing
    with pytest.raises(ArtifactError, match="overlapping"):
        gather_samples(tmp_path / "c.npz", [paths[2], paths[1], paths[1], paths[0]])
    other = tmp_path / "other.npz"  # another set: another sampler setting
    assert sample_main(["--export", str(export), "--config", str(cfg), "--chunk", "1", "--out", str(other), "--quiet",
                        "--set", "sample.chunk_size=2", "--set", "sample.steps=1"]) == 0
    with pytest.raises(ArtifactError, match="different sample sets"):
        gather_samples(tmp_path / "d.npz", [paths[2], str(other), paths[0]])
    with pytest.raises(ArtifactError, match="not a sample chunk"):
        gather_samples(tmp_path / "e.npz", [str(_whole(root, cfg, export))])
    assert not list(tmp_path.glob("[a-e].npz"))  # nothing half-written
    assert gather_main(["--out", str(tmp_path / "f.npz"), paths[0]]) == 2  # the CLI: bad input, exit 2


def test_damaged_chunks_and_records_are_named_not_tracebacks(setup, tmp_path, capsys):
    """A chunk cut short (a full disk) or with a corrupted member, and a torn chunk record (.run.json): the gather
    exits 2 naming the damaged chunk, or, for the record (provenance only), goes on and says it is unreadable; a
    features job given a damaged chunk exits 2 naming it."""
    import shutil

    from vdm.metrics.cli import main as evaluate_main
    from vdm.runinfo import read_sidecar

    root, cfg, export = setup
    _, paths = _chunked(root, cfg, export, 2, "damaged")  # chunk 2, 1, 0
    chunks = [tmp_path / f"{i}.npz" for i in range(3)]
    for i, src in enumerate(reversed(paths)):
        shutil.copyfile(src, chunks[i])
        shutil.copyfile(f"{src}.run.json", f"{chunks[i]}.run.json")
    whole = chunks[1].read_bytes()
    for damage in (whole[: len(whole) // 2], whole[:200] + bytes(len(whole) - 400) + whole[-200:]):
        chunks[1].write_bytes(damage)
        assert gather_main(["--out", str(tmp_path / "set.npz"), *map(str, chunks)]) == 2
        err = capsys.readouterr().err
        assert f"{chunks[1]}: not a readable .npz" in err and "Traceback" not in err, err
        assert evaluate_main(["--config", str(cfg), "--features-only", "--samples", str(chunks[1]),
                              "--out", str(tmp_path / "f.npz"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"{chunks[1]}: not a readable .npz" in err and "Traceback" not in err, err
    chunks[1].write_bytes(whole)
    record = chunks[1].with_name("1.npz.run.json")
    record.write_text(record.read_text()[:25])  # torn
    assert gather_main(["--out", str(tmp_path / "set.npz"), *map(str, chunks)]) == 0
    gathered = read_sidecar(tmp_path / "set.npz")
    assert "not JSON" in gathered["chunks"][1]["unreadable"] and gathered["chunks"][0]["job"] == "sample"


def _whole(root, cfg, export):
    p = root / "w.npz"
    assert sample_main(["--export", str(export), "--config", str(cfg), "--out", str(p), "--quiet"]) == 0
    return p


def test_chunk_size_must_be_whole_batches_and_chunk_in_range():
    with pytest.raises(ConfigError, match="multiple of batch_size 4"):
        SampleConfig(batch_size=4, chunk_size=6).validate()
    sc = SampleConfig(num_samples=10, batch_size=2, chunk_size=4)
    assert num_chunks(sc) == 3 and [chunk_range(sc, i) for i in range(3)] == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ConfigError, match="chunk 3 out of range: the sample set has 3"):
        chunk_range(sc, 3)
    assert num_chunks(SampleConfig(num_samples=10)) == 1 and chunk_range(SampleConfig(num_samples=10), 0) == (0, 10)


def test_eval_clips_by_range_are_the_same_clips(setup):
    root, cfg, _ = setup
    c = load_config(cfg).data
    full, meta = eval_clips(c, "test", 40, 3, frames=4, return_meta=True)  # more draws than records: repeats
    part, pmeta = eval_clips(c, "test", 40, 3, frames=4, return_meta=True, start=25)
    assert np.array_equal(part, full[25:]) and pmeta["key"] == meta["key"][25:]
    with pytest.raises(ValueError, match="start"):
        eval_clips(c, "test", 4, 3, start=4)
