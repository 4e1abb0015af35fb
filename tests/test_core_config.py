"""Strict frozen configs: unknown keys and bad values are errors naming the key and the file."""

import dataclasses

import pytest

from vdm.config import ConfigError, ExperimentConfig, dump_config, load_config, parse_override
from vdm.model.config import SIZES, named_size


def test_unknown_key_names_key_and_file(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("train:\n  stpes: 3\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml.*'train\.stpes'"):
        load_config(p)
    p.write_text("modle: {}\n")
    with pytest.raises(ConfigError, match="'modle'"):
        load_config(p)


def test_wrong_type_names_key(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("train:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"train\.lr.*number"):
        load_config(p)
    p.write_text("diffusion:\n  prediction: score\n")
    with pytest.raises(ConfigError, match=r"diffusion\.prediction.*'score'"):
        load_config(p)
    p.write_text("diffusion:\n  logsnr_min: 5\n  logsnr_max: -5\n")
    with pytest.raises(ConfigError, match="logsnr_min"):
        load_config(p)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/exp.yaml")


def test_named_size_with_overrides_and_round_trip(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("model:\n  size: bair\n  dropout: 0.0\n")
    cfg = load_config(p, overrides={"train.steps": 7, "sample.guidance_weight": 2.0})
    assert cfg.model.base_channels == SIZES["bair"]["base_channels"]
    assert cfg.model.channel_mult == (1, 2, 3, 4)
    assert cfg.model.dropout == 0.0
    assert cfg.train.steps == 7
    out = tmp_path / "resolved.yaml"
    dump_config(cfg, out)
    assert load_config(out) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.steps = 3  # type: ignore[misc]


def test_unknown_size_and_bad_override():
    with pytest.raises(ConfigError, match="unknown size 'huge'"):
        ExperimentConfig.from_dict({"model": {"size": "huge"}})
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("train.steps")
    assert parse_override("sample.guidance_weight=2.5") == ("sample.guidance_weight", 2.5)


def test_image_size_must_fit_levels():
    with pytest.raises(ConfigError, match="image_size"):
        named_size("demo", image_size=30)


def test_model_fields_follow_from_the_data(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("data:\n  resolution: 32\n  channels: 1\n  num_classes: 10\nmodel:\n  size: tiny\n")
    m = load_config(p).model
    assert (m.image_size, m.in_channels, m.num_classes) == (32, 1, 10)  # over the preset's 16
    p.write_text("model:\n  size: demo\n")  # no data section: the data defaults
    m = load_config(p).model
    assert (m.image_size, m.in_channels, m.num_classes) == (64, 3, 0)
    # agreeing values and an unconditional model of labelled data are allowed
    p.write_text("data:\n  resolution: 32\n  num_classes: 10\nmodel:\n  image_size: 32\n  num_classes: 0\n")
    m = load_config(p).model
    assert (m.image_size, m.num_classes) == (32, 0)


@pytest.mark.parametrize("model, data, message", [
    ("image_size: 16", "resolution: 32", r"exp\.yaml: model\.image_size 16 != data\.resolution 32"),
    ("in_channels: 3", "channels: 1", r"model\.in_channels 3 != data\.channels 1"),
    ("num_classes: 100", "num_classes: 10", r"model\.num_classes 100 != data\.num_classes 10"),
])
def test_inconsistent_model_fields_are_errors_naming_both(tmp_path, model, data, message):
    p = tmp_path / "exp.yaml"
    p.write_text(f"data:\n  {data}\nmodel:\n  {model}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(p)


def test_an_override_against_the_data_is_an_error(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("data:\n  resolution: 32\n")
    assert load_config(p, {"data.resolution": 16}).model.image_size == 16
    with pytest.raises(ConfigError, match="model.image_size 64 != data.resolution 32"):
        load_config(p, {"model.image_size": 64})
