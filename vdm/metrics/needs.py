"""What the workflow's metric jobs need, asked of the registry once per sample set: the metrics context of a
set as its jobs see it (the digit classifier set to the workflow's file), the real-features files its
evaluation reads, whether its jobs read the digit classifier, and the names of those files."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from vdm.ablation import Ablation
from vdm.config import ExperimentConfig
from vdm.metrics import registry


@dataclass(frozen=True)
class MetricNeeds:
    grid: Ablation
    _contexts: dict[tuple[str, str], registry.Context] = field(default_factory=dict, repr=False, compare=False)

    @property
    def digit_classifier(self) -> str:
        """The digit classifier the workflow trains (rule digit_classifier) for the data's geometry."""
        return f"{self.grid.out}/metrics/digit-classifier.pt"

    def real_features_file(self, detector: str, split: str, frames: int | str) -> str:
        """metrics/real-features-<T>f.npz for I3D (of evaluate.split), metrics/real-<detector>-<T>f-<split>.npz
        for the others (Inception: real-inception-<T>f-<split>.npz)."""
        if detector == "i3d":
            return f"{self.grid.out}/metrics/real-features-{frames}f.npz"
        return f"{self.grid.out}/metrics/real-{detector}-{frames}f-{split}.npz"

    def context(self, run: str, setting: str) -> registry.Context:
        """The metrics context of sample set {run}/{setting} as its jobs see it (built once per set)."""
        if (run, setting) not in self._contexts:
            exp = copy.deepcopy(self.grid.metrics_config(run, setting))
            exp.setdefault("evaluate", {})["digit_classifier"] = self.digit_classifier
            self._contexts[(run, setting)] = registry.Context(ExperimentConfig.from_dict(exp),
                                                              self.grid.clip_frames(setting))
        return self._contexts[(run, setting)]

    def real_inputs(self, run: str, setting: str) -> list[str]:
        """The real-features files the metrics of the set read (the registry's real_needs)."""
        ctx = self.context(run, setting)
        return [self.real_features_file(d, split, ctx.frames) for d, split in registry.real_needs(ctx)]

    def classifier_inputs(self, run: str, setting: str) -> list[str]:
        """[the digit classifier] when the set's metrics read it, else []."""
        return [self.digit_classifier] if "digits" in registry.generated_detectors(self.context(run, setting)) else []
