"""The files between stages: one writer and one reader each, errors naming the file and the key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vdm.artifacts import ArtifactError
from vdm.artifacts.export import load_export, read_export_meta, save_export
from vdm.artifacts.metrics import read_metrics, write_metrics
from vdm.artifacts.samples import read_samples, read_samples_record, write_samples
from vdm.diffusion.config import DiffusionConfig
from vdm.model import UNet3D, named_size


def test_samples_round_trip_and_record(tmp_path):
    videos = np.random.default_rng(0).integers(0, 256, (5, 9, 8, 8, 1), dtype=np.uint8)
    seeds = np.arange(100, 105, dtype=np.int64)
    path = tmp_path / "samples.npz"
    write_samples(path, {"videos": videos, "seeds": seeds, "cls": np.arange(5)}, {"sampler": "ancestral"})
    got, extra = read_samples(path)
    assert np.array_equal(got, videos) and extra["settings"] == {"sampler": "ancestral"}
    assert extra["seeds"] == seeds.tolist()
    assert read_samples(path, limit=2)[0].shape[0] == 2
    assert isinstance(read_samples(path, arrays=("cls",))[1]["cls"], np.ndarray)
    rec_seeds, settings = read_samples_record(path)
    assert np.array_equal(rec_seeds, seeds) and settings == {"sampler": "ancestral"}
    first = path.read_bytes()
    write_samples(path, {"videos": videos, "seeds": seeds, "cls": np.arange(5)}, {"sampler": "ancestral"})
    assert path.read_bytes() == first  # byte-reproducible


def test_samples_errors_name_the_file_and_key(tmp_path):
    with pytest.raises(ArtifactError, match="missing.npz: file not found"):
        read_samples(tmp_path / "missing.npz")
    np.savez(tmp_path / "x.npz", frames=np.zeros((1, 2, 3), np.uint8))
    with pytest.raises(ArtifactError, match=r"x\.npz: no 'videos' array"):
        read_samples(tmp_path / "x.npz")
    np.savez(tmp_path / "f.npz", videos=np.zeros((1, 9, 4, 4, 1), np.float32))
    with pytest.raises(ArtifactError, match=r"f\.npz: 'videos' must be uint8"):
        read_samples(tmp_path / "f.npz")
    (tmp_path / "t.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match=r"t\.npz: not a readable"):
        read_samples(tmp_path / "t.npz")
    with pytest.raises(ArtifactError, match=r"t\.npz: not a readable"):
        read_samples_record(tmp_path / "t.npz")


def test_metrics_writer_needs_metric_and_value(tmp_path):
    with pytest.raises(ArtifactError, match="'value'"):
        write_metrics(tmp_path / "m.json", {"metric": "fvd"})
    write_metrics(tmp_path / "m.json", {"metric": "fvd", "value": 12.5, "interval": [10.0, 15.0], "n_real": 4})
    m = read_metrics(tmp_path / "m.json")
    assert (m["value"], m["interval_low"], m["interval_high"], m["n_real"]) == (12.5, 10.0, 15.0, 4)


def test_export_meta_is_read_without_building_the_network(tmp_path):
    cfg = named_size("tiny")
    net = UNet3D(cfg)
    save_export(tmp_path / "e.pt", net.state_dict(), cfg, DiffusionConfig(), {"step": 7})
    assert read_export_meta(tmp_path / "e.pt") == {"step": 7}
    ex = load_export(tmp_path / "e.pt")
    assert ex.meta["step"] == 7 and all(torch.equal(a, b) for a, b in zip(ex.net.state_dict().values(),
                                                                        net.state_dict().values()))
    torch.save({"format": "other"}, tmp_path / "o.pt")
    with pytest.raises(ValueError, match=r"o\.pt: not a vdm export"):
        read_export_meta(tmp_path / "o.pt")
