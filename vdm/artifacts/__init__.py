"""The files stages hand each other, each with one writer and one reader (docs/DESIGN.md, contracts).

* :mod:`vdm.artifacts.export` -- the exported model (EMA weights + the configs to rebuild the network):
  written by training, read by sampling and the report (``torch.load(weights_only=True)`` only).
* :mod:`vdm.artifacts.samples` -- a sample set ``samples.npz`` (uint8 videos [N, T, H, W, C], per-sample
  seeds, labels, the settings as JSON; no pickles): written by sampling, read by evaluation and the report.
* :mod:`vdm.artifacts.metrics` -- a metrics JSON (metric, value, interval, N): written by evaluation,
  read by the report.
"""


class ArtifactError(ValueError):
    """A file between stages is missing or malformed; the message names the file and the key."""
