"""The seed rule (vdm.seeds): one keying of every random stream, the historical streams unchanged."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from vdm import seeds
from vdm.seeds import PURPOSES, derive_seed, numpy_rng, seed_words


def test_purposes_are_distinct_word_tuples():
    words = list(PURPOSES.values())
    # purposes sharing a word tuple would share streams; the only sharing allowed is between purposes keyed
    # by different kinds of root (the loader's seed, the data seed, a sample's seed), listed here
    shared = {("loader.eval_record", "mnist.test", "sample.class"), ("loader.batch", "mnist.train")}
    groups = {w: tuple(sorted(n for n, v in PURPOSES.items() if v == w)) for w in words}
    assert {g for g in groups.values() if len(g) > 1} == {tuple(sorted(s)) for s in shared}


def test_unknown_purpose_is_an_error_naming_it():
    with pytest.raises(KeyError, match="no-such-purpose"):
        seed_words(0, "no-such-purpose")


def test_streams_depend_on_every_key_part():
    a = numpy_rng(3, "loader.batch", 1, 2, 0).integers(1 << 30, size=4)
    for other in (numpy_rng(4, "loader.batch", 1, 2, 0), numpy_rng(3, "loader.batch", 1, 3, 0),
                  numpy_rng(3, "loader.batch", 1, 2, 1), numpy_rng(3, "example", 1, 2, 0)):
        assert not np.array_equal(a, other.integers(1 << 30, size=4))
    assert derive_seed(0, "example", 1, 2) != derive_seed(0, "example", 2, 1)
    assert 0 <= derive_seed(2**40, "init") < 2**63


def test_historical_streams_are_reproduced():
    """Shards, evaluation clips, sampled labels and resumed trainings made before the rule keep their draws."""
    def old_numpy(words):
        return np.random.default_rng(words).integers(1 << 30, size=8)

    def new_numpy(*args):
        return numpy_rng(*args).integers(1 << 30, size=8)

    key = zlib.crc32(b"000042")
    assert np.array_equal(new_numpy(7, "loader.batch", 2, 5, 1), old_numpy([7, 0, 2, 5, 1]))
    assert np.array_equal(new_numpy(7, "loader.eval_record", key), old_numpy([7, 1, key]))
    assert np.array_equal(new_numpy(7, "loader.eval_record", key, 3), old_numpy([7, 1, key, 3]))
    assert np.array_equal(new_numpy(7, "eval.order"), old_numpy([7, 1, 0x5EED]))
    assert np.array_equal(new_numpy(7, "mnist.train", 11), old_numpy([7, 0, 11]))
    assert np.array_equal(new_numpy(7, "mnist.test", 11), old_numpy([7, 1, 11]))
    assert np.array_equal(new_numpy(9, "sample.class"), old_numpy([9, 1]))
    old = np.random.SeedSequence([5, zlib.crc32(b"example"), 3, 4]).generate_state(2, np.uint32)
    assert derive_seed(5, "example", 3, 4) == ((int(old[0]) << 31) ^ int(old[1])) & ((1 << 63) - 1)
    assert seeds.key_hash("000042") == key
