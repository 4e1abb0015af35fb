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
