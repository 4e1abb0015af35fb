"""The seed rule: every random stream of the project is keyed by (root seed, purpose, indices).

    stream(seed, purpose, *ints)  =  numpy SeedSequence([seed, *PURPOSES[purpose], *ints])

``purpose`` names what the stream is for (one entry of :data:`PURPOSES`, which holds every purpose of
the project in one place), ``ints`` are the integers that identify one stream of that purpose (step,
global example index, rank, epoch, batch position, record-key hash, repeat, video index). A stream
depends only on what identifies it -- never on batch splits, rank counts, worker counts or
resumption -- and streams of different purposes or indices do not collide by design (SeedSequence
hashes the whole word list).

Three ways to consume a stream, all from the same words:

* :func:`numpy_rng` -- a ``numpy.random.Generator`` (data: Moving MNIST videos, clip offsets, image
  frames, evaluation clips; sampling: class labels);
* :func:`derive_seed` -- a 63-bit integer for ``torch.Generator.manual_seed`` (training: weight init,
  per-rank dropout, per-example t/ε/dropout coin, low-discrepancy offset, the loader's root);
* sampling is keyed one level down: sample ``i`` of a set uses the seed ``sample.seed + i`` itself
  (recorded in the samples file) as the root of its own streams -- its noise is
  ``torch.Generator().manual_seed(seed_i)`` and its class label ``numpy_rng(seed_i, "sample.class")``.

Purpose words: a new purpose gets ``crc32(name)``. The purposes of the data loader, Moving MNIST and
the sampled class labels keep the small words they have always had (0, 1, ...), so that shards,
evaluation clips and exactly-resumed training runs made before this module reproduce bit for bit;
their word tuples differ from each other in value or length.

One exception: the two shuffles handed to webdataset (the shard order of an epoch and the shuffle
buffer) are seeded with webdataset's own ``make_seed`` over (seed, epoch[, rank], word), as webdataset
seeds its shuffles, so that runs in flight resume on the same record order.
"""

from __future__ import annotations

import zlib

import numpy as np


def _crc(name: str) -> tuple[int]:
    return (zlib.crc32(name.encode()),)


#: purpose name -> the words that follow the root seed (see the module docstring)
PURPOSES: dict[str, tuple[int, ...]] = {
    # training (vdm.train): crc32 of the historical purpose names
    "init": _crc("init"),  # initial weights, identical on every rank
    "rank": _crc("rank"),  # (rank): the global generators of one rank (dropout)
    "python": _crc("python"),  # (rank): Python's global `random` of one rank (saved in every state)
    "numpy": _crc("numpy"),  # (rank): numpy's global generator of one rank (saved in every state)
    "data": _crc("data"),  # the loader's root seed
    "example": _crc("example"),  # (step, global example index): t, ε and the guidance-dropout coin
    "t0": _crc("t0"),  # (step): the low-discrepancy offset of the step's t
    # data loader (vdm.data.loader), keyed by the loader's root seed
    "loader.batch": (0,),  # (epoch, position, rank): clip offsets, flips, appended image frames
    "loader.eval_record": (1,),  # (crc32 of the record key[, repeat]): eval-mode clip offset of a record
    "eval.order": (1, 0x5EED),  # the record permutation of evaluation clips
    # Moving MNIST (vdm.data.moving_mnist), keyed by the data seed
    "mnist.train": (0,),  # (video index)
    "mnist.test": (1,),  # (video index)
    # sampling (vdm.sampling), keyed by the seed of one sample
    "sample.class": (1,),  # the class label drawn under sample.class_labels=uniform
    # the digit classifier of the Moving MNIST metrics (vdm.metrics.digits), keyed by its own seed
    "digits.init": _crc("digits.init"),  # its initial weights
    "digits.train": _crc("digits.train"),  # the root of its training frames (one-frame videos of the train digits)
    "digits.noise": _crc("digits.noise"),  # (step): the pixel-noise augmentation of one step
    "digits.test": _crc("digits.test"),  # the root of its held-out frames (test digits)
}


def seed_words(seed: int, purpose: str, *ints: int) -> list[int]:
    """``[seed, *PURPOSES[purpose], *ints]`` -- the entropy of one stream; an unknown purpose is an error."""
    try:
        words = PURPOSES[purpose]
    except KeyError:
        raise KeyError(f"unknown seed purpose {purpose!r}; register it in vdm.seeds.PURPOSES") from None
    return [int(seed), *words, *(int(i) for i in ints)]


def numpy_rng(seed: int, purpose: str, *ints: int) -> np.random.Generator:
    """The stream as a numpy Generator."""
    return np.random.default_rng(np.random.SeedSequence(seed_words(seed, purpose, *ints)))


def derive_seed(seed: int, purpose: str, *ints: int) -> int:
    """The stream as a 63-bit integer (for ``torch.Generator.manual_seed``)."""
    words = np.random.SeedSequence(seed_words(seed, purpose, *ints)).generate_state(2, np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & ((1 << 63) - 1)


def key_hash(key: str) -> int:
    """A record key as one 32-bit word (crc32 of its UTF-8 bytes)."""
    return zlib.crc32(key.encode("utf-8"))
