"""Checks that must fail before any work starts: data settings the network cannot take."""

from __future__ import annotations

from vdm.data.common import DataError


def check_data_for_model(data, model) -> None:
    """Raise :class:`DataError` when clips of ``data`` (DataConfig) cannot enter a ``model`` (UNetConfig).

    The factorized U-Net (paper §2) downsamples space only, so any frame count T + K >= 1 passes
    through it; the frame side must equal the network's ``image_size`` (itself divisible by
    2^(levels-1)), the channel count its ``in_channels``, and class labels must fit its embedding.
    """
    levels = len(model.channel_mult)
    if data.resolution != model.image_size:
        raise DataError(f"data.resolution {data.resolution} != model.image_size {model.image_size}")
    if data.resolution % (2 ** (levels - 1)):
        raise DataError(f"data.resolution {data.resolution} is not divisible by 2^{levels - 1} "
                        f"(the U-Net has {levels} levels)")
    if data.channels != model.in_channels:
        raise DataError(f"data.channels {data.channels} != model.in_channels {model.in_channels}")
    if data.frames + data.images_per_video < 1:
        raise DataError(f"data.frames + data.images_per_video must be >= 1, "
                        f"got {data.frames} + {data.images_per_video}")
    if model.num_classes and data.num_classes != model.num_classes:
        raise DataError(f"data.num_classes {data.num_classes} != model.num_classes {model.num_classes}")
    if data.source == "moving_mnist" and data.num_classes and data.num_classes < 10 ** data.mnist_num_digits:
        raise DataError(f"Moving MNIST with {data.mnist_num_digits} digits has {10 ** data.mnist_num_digits} "
                        f"classes, data.num_classes is {data.num_classes}")
