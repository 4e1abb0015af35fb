"""``train_log.csv``: the training's CSV log (one row per ``train.log_every`` steps)."""

from __future__ import annotations

import csv
from pathlib import Path

from vdm.utils.io import atomic_open

CSV_COLUMNS = ("step", "samples_seen", "loss", "lr", "samples_per_s", "grad_norm", "elapsed_s")


class CsvLog:
    """``train_log.csv``: one row per ``log_every`` steps; rows after the resumed step are dropped."""

    def __init__(self, path: Path, resumed_step: int):
        self.path = path
        rows = []
        if path.is_file():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= resumed_step]
        with atomic_open(path, "w", newline="") as f:
            w = csv.DictWriter(f, CSV_COLUMNS)
            w.writeheader()
            w.writerows({k: r.get(k, "") for k in CSV_COLUMNS} for r in rows)
        self.f = open(path, "a", newline="")
        self.w = csv.DictWriter(self.f, CSV_COLUMNS)

    def write(self, **row: float) -> None:
        self.w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self.f.flush()

    def close(self) -> None:
        self.f.close()
