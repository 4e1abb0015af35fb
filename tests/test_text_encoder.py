"""Frozen text encoder: the packaged MiniLM loads offline, embeddings are cached per caption."""

from __future__ import annotations

import pytest
import torch

from vdm.model.text_encoder import load_text_encoder, minilm_path, resolve_text_encoder


@pytest.fixture(scope="module")
def enc():
    import os

    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # must load with no network
    try:
        yield load_text_encoder("minilm")
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE")
        else:
            os.environ["HF_HUB_OFFLINE"] = old


def test_default_is_packaged_minilm():
    path = minilm_path()
    assert (path / "model.safetensors").is_file()
    assert resolve_text_encoder("") == resolve_text_encoder("minilm") == str(path)
    assert resolve_text_encoder("/some/folder") == "/some/folder"


def test_shapes_mask_and_padding(enc):
    tokens, mask = enc(["a digit three moving left", "seven"])
    assert enc.dim == 384
    assert tokens.dtype == torch.float32 and mask.dtype == torch.bool
    B, L, D = tokens.shape
    assert (B, D) == (2, 384) and mask.shape == (2, L)
    n0, n1 = int(mask[0].sum()), int(mask[1].sum())
    assert n0 == L and n1 < n0  # the short caption is padded...
    assert torch.all(tokens[1, n1:] == 0)  # ...with zeros under a False mask
    assert torch.isfinite(tokens).all() and tokens[:, 0].abs().sum() > 0


def test_cached_and_batch_independent(enc):
    a, ma = enc(["two bouncing digits"])
    before = enc.cache_len
    b, mb = enc(["a much longer caption about two bouncing digits in a box", "two bouncing digits"])
    assert enc.cache_len == before + 1  # only the new caption was encoded
    n = int(ma.sum())
    assert torch.equal(a[0, :n], b[1, :n])  # same caption, same embedding, whatever the batch
    assert not torch.equal(a[0, :n], b[0, :n])


def test_different_captions_differ(enc):
    t, m = enc(["zero", "nine"])
    assert not torch.allclose(t[0], t[1])


def test_bad_input(enc):
    with pytest.raises(TypeError, match="list of captions"):
        enc("just a string")
    with pytest.raises(TypeError, match="strings"):
        enc([3])
    with pytest.raises(FileNotFoundError, match="could not be loaded"):
        load_text_encoder("/nonexistent/encoder/folder")


def _text_cfg(encoder: str):
    from vdm.config import ExperimentConfig

    return ExperimentConfig.from_dict({"data": {"num_classes": 0}, "model": {"size": "tiny", "text_dim": 384},
                                       "train": {"text_encoder": encoder}})


def test_an_uncached_hub_encoder_is_named_at_check_time_warning_online_and_failing_offline(tmp_path, monkeypatch):
    import warnings

    from vdm.checks import check_training
    from vdm.config import ConfigError

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.warns(UserWarning, match=r"train.text_encoder 'bert-large-uncased'.*HF_HOME"):
        check_training(_text_cfg("bert-large-uncased"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"train.text_encoder 'bert-large-uncased'.*HF_HUB_OFFLINE"):
        check_training(_text_cfg("bert-large-uncased"))
    # the packaged default and a local folder need nothing; a missing local path is an error naming it
    folder = tmp_path / "my-encoder"
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_training(_text_cfg("minilm"))
        check_training(_text_cfg(str(folder)))
    with pytest.raises(ConfigError, match="is not a folder"):
        check_training(_text_cfg(str(tmp_path / "missing")))
