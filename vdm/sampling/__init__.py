"""Sampling (paper §1, §4): samplers as functions of a denoiser, guidance as denoiser wrappers.

- ``samplers``: ``sample_ancestral``, ``sample_predictor_corrector``, ``logsnr_grid``, ``sample`` (by config);
- ``guidance``: ``ClassifierFreeGuidance``, ``ReplacementGuidance``, ``ReconstructionGuidance``, ``condition``;
- ``tasks``: ``sample_block``, ``predict``, ``extend``, ``superres``, ``downsample``;
- ``seeds``: ``StackedGenerator`` (one generator per sample); ``gaussian``: exact reference denoiser;
- ``cli``: ``vdm sample``.
"""

from vdm.sampling.config import SampleConfig

__all__ = ["SampleConfig"]
