"""Evaluation (FVD) settings (paper §5; protocol in DESIGN.md "FVD, the canonical way")."""

from __future__ import annotations

import dataclasses
from typing import Literal

from vdm.config_base import ConfigError

I3D_MIN_FRAMES = 9  # fewer frames leave < 2 positions for I3D's final 2x7x7 average pool
# The weights files no package ships, named here (torch-free) for the reasons a metric is not computed:
C3D_FILE = "conv3d_deepnetA_ucf.npz"  # TGANv2's C3D UCF-101 weights (vdm.metrics.c3d)
MEAN_FILE = "mean2.npz"  # TGANv2's mean clip (vdm.metrics.c3d)
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's Inception with logits (inception_net)


# Keys of the evaluate section that only a sample set's statistics read (its interval, resampling and reliability
# guard) or a hand-run evaluation's cache: the features of the generated videos never depend on them, so the
# workflow leaves them out of the features jobs' resolved config (editing one recomputes no features, only metrics).
STATISTICS_ONLY = ("interval", "jackknife_groups", "num_bootstrap", "num_chunks", "interval_level", "bootstrap_seed",
                   "bootstrap_bias_correction", "min_samples", "cache_dir")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    num_real: int = 256  # real clips in the reference statistics (paper BAIR: the 256 test examples)
    batch_size: int = 8  # videos per I3D forward pass
    split: str = "test"  # data split the real clips are cut from
    # Seed of the protocol-fixed clip offsets of the real clips (vdm.data.loader.eval_clips). The
    # paper is silent; one fixed seed makes every sample set of an experiment meet the same clips.
    real_seed: int = 0
    # I3D features: "logits" = the 400-d time-averaged logits (canonical FVD); "pool" = the 1024-d
    # time-averaged Mixed_5c pool (not comparable with published FVD numbers).
    features: Literal["logits", "pool"] = "logits"
    # Uncertainty of the value (the paper reports "±" without saying how). What an interval covers: the expected
    # distance at this N over fresh draws of the generated set, the real set held fixed (it is the protocol's
    # fixed set, shared by every arm) -- vdm.metrics.resampling:
    #   "jackknife": value on all samples; interval = value ± t * the grouped (delete-d, jackknife_groups groups)
    #                jackknife SE of the distance over the generated set. Coverage measured by simulation
    #                (tests/test_resampling.py, bench/intervals.py): 0.92-0.96 at 64/256, 256/256, 64/64.
    #   "bootstrap": percentile interval over num_bootstrap resamples (with replacement) of both feature sets,
    #                shifted by the bootstrap's bias estimate when bootstrap_bias_correction is on; measured
    #                2-3x too wide at N = 64 (a resample holds ~63 % distinct videos), kept for comparison;
    #   "chunks":    the generated set is cut into num_chunks disjoint chunks, each compared with all
    #                real clips (paper §5.2, BAIR: 100 x 256 samples vs 256 real); value = mean over
    #                chunks, interval = mean ± z * std / sqrt(num_chunks) (FVD; the other distances: jackknife).
    interval: Literal["jackknife", "bootstrap", "chunks"] = "jackknife"
    jackknife_groups: int = 20  # groups of the jackknife (delete-1 when N <= groups); also the paired comparisons
    num_bootstrap: int = 100  # bootstrap resamples (0: no interval)
    num_chunks: int = 10  # chunks of the generated set for interval="chunks"
    interval_level: float = 0.95  # coverage of the reported interval (fraction)
    bootstrap_seed: int = 0  # seed of the bootstrap resampling and of the jackknife's groups
    # A resample with replacement holds ~63 % distinct videos, and the Fréchet distance of fewer distinct
    # samples is larger: at small N (e.g. 64 vs 256) the whole resampled distribution lies above the value
    # and the plain percentile interval does not contain it. True: both percentiles are shifted down by the
    # bootstrap's bias estimate (mean of the resampled distances − value), so the interval describes the
    # spread around the value; False: the plain percentile interval.
    bootstrap_bias_correction: bool = True
    # Guard: fewer samples (on either side) than this are reported as unreliable in the metrics JSON
    # and warned about. None: feature dimension + 1 (401 for logits), the fewest samples whose
    # covariance can have full rank. Below 2 samples there is no covariance at all (error).
    min_samples: int | None = None
    # Frame-level FID (paper §5.4): FID-avg (Inception pool3 features averaged over each video's frames) and
    # FID-first (its first frame), each against the real clips of every split in frame_fid_splits (the
    # paper: training and validation set). Costs one Inception pass per frame (~0.13 s on one CPU thread).
    frame_fid: bool = False
    frame_fid_splits: tuple[str, ...] = ("train", "test")  # the real splits frame FID is measured against
    # IS-avg / IS-first (class probabilities of the Inception logits, averaged over a video's frames / of its
    # first frame; 1 and 10 splits), with evaluate.frame_fid: needs pytorch-fid's published weights file
    # pt_inception-2015-12-05-6726825d.pth (the logits layer; no package ships it). "" = not computed.
    is_weights: str = ""
    # C3D FID / IS of paper Table 1 (UCF-101, TGANv2's protocol; vdm.metrics.c3d): the paths of TGANv2's
    # published conv3d_deepnetA_ucf.npz (weights) and mean2.npz (mean clip), which no package ships, and the
    # sha256 of each as published (recorded by the user: the files are read only when they match; this
    # project cannot state the hashes itself). "" = not computed (a UCF-101 table then says what is needed).
    c3d_weights: str = ""
    c3d_weights_sha256: str = ""  # sha256 of the published conv3d_deepnetA_ucf.npz
    c3d_mean: str = ""  # path of TGANv2's mean2.npz
    c3d_mean_sha256: str = ""  # sha256 of the published mean2.npz
    # Split of the real clips the C3D FID compares with (TGANv2: statistics of the training set); the clips
    # follow the FVD's protocol (evaluate.num_real clips, evaluate.real_seed).
    c3d_fid_split: str = "train"
    # C3D IS: the generated set cut into this many equal parts, IS of each, reported as mean ± std over the
    # parts (TGANv2: 10 sets of 2,048 samples, one split each; the paper: 10,000 samples).
    c3d_is_splits: int = 10
    # The frames of an extension set (sample.task extension) that the clip metrics (FVD, frame FIDs, the digit
    # features' distance) compare with real clips (paper silent on how Table 6's 64-frame videos were measured):
    # "whole" = the whole extended video, against real clips of as many frames (needs real videos that long);
    # "last" / "first" = its last / first block (sample.frames or data.frames frames), against real clips of one
    # block -- "last" holds the last block boundary, the frames furthest from the given ones. The digit
    # classifier's per-frame metrics (class accuracy, identity, identity kept) always read every frame.
    extension_window: Literal["whole", "last", "first"] = "whole"
    # Digit metrics of Moving MNIST (vdm.metrics.digits; class accuracy, identity, Fréchet distance in the
    # classifier's features): the path of the digit-classifier weights file that `vdm digits` trains for the
    # data's resolution and canvas. The workflow always sets it to its rule digit_classifier's output
    # (metrics/digit-classifier.pt); "" = the digit metrics are not computed (the JSON says why).
    digit_classifier: str = ""
    # Adam steps of the digit classifier the workflow trains (`vdm digits`; 1,200 reach 0.97 held-out accuracy at
    # 32 px); fewer only for plumbing checks (config/test.yaml), whose numbers mean nothing.
    digit_steps: int = 1200
    # Folder of the real clips' features that `vdm evaluate` run by hand (without --real-features) keeps, one file
    # per detector, split, data settings and seed; "" disables it. The workflow never writes here: every real-
    # features file is a declared job output (metrics/real-*.npz) that the evaluations name as inputs.
    cache_dir: str = "results/fvd_cache"

    def validate(self) -> None:
        if self.num_real < 2:
            raise ConfigError(f"num_real must be >= 2 (a covariance needs 2 samples), got {self.num_real}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_bootstrap < 0:
            raise ConfigError(f"num_bootstrap must be >= 0, got {self.num_bootstrap}")
        if self.jackknife_groups < 2:
            raise ConfigError(f"jackknife_groups must be >= 2, got {self.jackknife_groups}")
        if self.interval == "chunks" and self.num_chunks < 2:
            raise ConfigError(f"num_chunks must be >= 2 for interval 'chunks', got {self.num_chunks}")
        if not 0.0 < self.interval_level < 1.0:
            raise ConfigError(f"interval_level must be in (0, 1), got {self.interval_level}")
        for split in self.frame_fid_splits:
            if split not in ("train", "test"):
                raise ConfigError(f"frame_fid_splits: {split!r} is not a split (train, test)")
        if self.c3d_weights or self.c3d_mean:
            for key in ("c3d_weights", "c3d_mean", "c3d_weights_sha256", "c3d_mean_sha256"):
                if not getattr(self, key):
                    raise ConfigError(f"evaluate.{key} is empty: the C3D metrics need both of TGANv2's files "
                                      "(c3d_weights, c3d_mean) and the sha256 of each")
            for key in ("c3d_weights_sha256", "c3d_mean_sha256"):
                h = getattr(self, key)
                if len(h) != 64 or any(ch not in "0123456789abcdefABCDEF" for ch in h):
                    raise ConfigError(f"evaluate.{key} must be a sha256 (64 hex digits), got {h!r}")
        if self.digit_steps < 1:
            raise ConfigError(f"digit_steps must be >= 1, got {self.digit_steps}")
        if self.c3d_fid_split not in ("train", "test"):
            raise ConfigError(f"c3d_fid_split: {self.c3d_fid_split!r} is not a split (train, test)")
        if self.c3d_is_splits < 1:
            raise ConfigError(f"c3d_is_splits must be >= 1, got {self.c3d_is_splits}")
        if self.min_samples is not None and self.min_samples < 2:
            raise ConfigError(f"min_samples must be >= 2 or null, got {self.min_samples}")
