"""The metrics (paper §5; DESIGN.md "Metrics: detectors, statistics, one registry").

- :mod:`vdm.metrics.detectors`: the feature networks as one type (``Detector``: id, pinned weights,
  preprocessing, ``load``) and the one batch loop ``detector_outputs``; the networks themselves in
  :mod:`vdm.metrics.i3d` (FVD), :mod:`vdm.metrics.inception` (frame FID), :mod:`vdm.metrics.inception_net`
  (IS), :mod:`vdm.metrics.c3d` (paper Table 1);
- :mod:`vdm.metrics.stats`: Gaussian statistics, the Fréchet distance forms, intervals, the Inception score;
- :mod:`vdm.metrics.registry`: every metric as a named entry (detector, real split, score, why not computed);
- :mod:`vdm.metrics.evaluate` / :mod:`vdm.metrics.cli`: ``vdm evaluate``;
- :mod:`vdm.metrics.videos`: the error type, checked video arrays, TF1 bilinear resize.

Nothing is imported here: ``vdm.config`` imports :mod:`vdm.metrics.config` without paying for torch.
"""
