"""`vdm info FILE`: what each kind of file the pipeline writes is and holds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vdm.info import InfoError, describe, main


def test_an_export_a_sample_set_and_a_metrics_file_are_described(tmp_path, capsys):
    from vdm.artifacts.export import save_export
    from vdm.artifacts.metrics import write_metrics
    from vdm.artifacts.samples import write_samples
    from vdm.diffusion.config import DiffusionConfig
    from vdm.model.config import named_size
    from vdm.model.unet import UNet3D

    cfg = named_size("tiny")
    net = UNet3D(cfg)
    export = tmp_path / "img4.pt"
    save_export(export, net.state_dict(), cfg, DiffusionConfig(prediction="v"),
                {"step": 1500, "samples_seen": 12000, "experiment": "mmnist", "data": {"images_per_video": 4}})
    info = describe(export)
    assert info["kind"].startswith("export") and info["step"] == 1500 and info["images_per_video"] == 4
    assert info["parameters"] == sum(p.numel() for p in net.parameters()) and info["diffusion"]["prediction"] == "v"

    samples = tmp_path / "samples.npz"
    write_samples(samples, {"videos": np.zeros((3, 10, 16, 16, 1), np.uint8), "seeds": np.arange(5, 8)},
                  {"sampler": "ancestral", "steps": 32, "guidance_weight": 3.0})
    info = describe(samples)
    assert info["videos"].endswith("[3, 10, 16, 16, 1]") and info["seeds"] == "5..7 (3)"
    assert info["settings"] == {"sampler": "ancestral", "steps": 32, "guidance_weight": 3.0}
    # as the sampler writes them: the sample section nested in the settings
    write_samples(samples, {"videos": np.zeros((3, 10, 16, 16, 1), np.uint8), "seeds": np.arange(5, 8)},
                  {"sample": {"sampler": "langevin", "steps": 16, "task": "prediction"}, "export": "m.pt"})
    info = describe(samples)
    assert info["settings"] == {"sampler": "langevin", "steps": 16, "task": "prediction"} and info["export"] == "m.pt"

    metrics = tmp_path / "m.json"
    write_metrics(metrics, {"metric": "fvd", "value": 170.2, "interval": [158.7, 181.8], "n_generated": 64,
                            "n_real": 256, "also": {"digit_class_accuracy": {"value": 0.916, "interval": [0.877, 0.943],
                                                                             "n_generated": 64, "n_real": 256,
                                                                             "real_value": 0.969},
                                                    "fid_avg_test": {"computed": False, "reason": "frame_fid off"}}})
    assert main([str(export), str(samples), str(metrics)]) == 0
    out = capsys.readouterr().out
    assert "fvd: 170.2 [158.7, 181.8]  N 64 / 256" in out
    assert "digit_class_accuracy: 0.916 [0.877, 0.943]  N 64 / 256  real clips 0.969" in out
    assert "fid_avg_test: not computed: frame_fid off" in out and "step: 1500" in out
    assert main(["--json", str(metrics)]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "metrics of a sample set"


def test_a_file_it_does_not_know_is_an_error_naming_it(tmp_path, capsys):
    odd = tmp_path / "weights.pt"
    torch.save({"a": torch.zeros(1)}, odd)
    with pytest.raises(InfoError, match="weights.pt: a torch file with keys"):
        describe(odd)
    text = tmp_path / "notes.txt"
    text.write_text("x")
    assert main([str(text), str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "notes.txt: unknown kind of file" in err and "missing.json: not a file" in err
