"""The files stages hand each other, each with one writer and one reader (docs/DESIGN.md, contracts).

* :mod:`vdm.artifacts.export` -- the exported model (EMA weights + the configs to rebuild the network):
  written by training, read by sampling and the report (``torch.load(weights_only=True)`` only).
* :mod:`vdm.artifacts.samples` -- a sample set ``samples.npz`` (uint8 videos [N, T, H, W, C], per-sample
  seeds, labels, the settings as JSON; no pickles): written by sampling, read by evaluation and the report.
* :mod:`vdm.artifacts.metrics` -- a metrics JSON (metric, value, interval, N): written by evaluation,
  read by the report.
"""

import contextlib
import zipfile
import zlib
from typing import Iterator


class ArtifactError(ValueError):
    """A file between stages is missing or malformed; the message names the file and the key."""


# What reading a damaged ``.npz`` raises (a truncated zip, a bad CRC, a torn member): every such error becomes an
# ArtifactError naming the file, never a traceback that names none.
NPZ_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


@contextlib.contextmanager
def npz_errors(path: object) -> Iterator[None]:
    """The errors of reading the ``.npz`` ``path`` (NPZ_ERRORS) as an :class:`ArtifactError` naming it."""
    try:
        yield
    except ArtifactError:
        raise
    except NPZ_ERRORS as e:
        raise ArtifactError(f"{path}: not a readable .npz ({type(e).__name__}: {e}); "
                            "delete it and rerun the job that writes it") from None
