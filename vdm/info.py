"""``vdm info FILE...``: what a file of a run is and what it holds (a sample set's videos are not read, only their
shape; a torch file is loaded whole, weights-only).

Knows every file the pipeline writes: an export (``models/<run>.pt``: step, network, parameters, diffusion), a
training state (``train/<run>/checkpoints/state-*.pt``), the digit classifier, a sample set or chunk
(``samples.npz``: videos' shape, seeds, settings), a metrics JSON (every metric with its interval and N), a
shard manifest, a run record (``*.run.json``), a webdataset shard (``.tar``: its records). ``--json`` prints the
same as one JSON object per file.

    vdm info results/mmnist/models/img4.pt results/mmnist/metrics/img4/ancestral-32-w3.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vdm.artifacts.export import EXPORT_FORMAT
from vdm.artifacts.samples import read_samples_header, read_samples_record
from vdm.cliargs import EXIT_BAD_INPUT, EXIT_OK

EXAMPLES = """examples:
  vdm info results/mmnist/models/img4.pt                       # an export: step, network, parameters
  vdm info results/mmnist/samples/img4/ancestral-32-w3/samples.npz
  vdm info results/mmnist/metrics/img4/ancestral-32-w3.json --json
"""


class InfoError(ValueError):
    """A file this command cannot describe (names the file and why)."""


def _torch_file(path: Path) -> dict[str, Any]:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file is reported as such
        raise InfoError(f"{path}: not a readable torch file ({type(e).__name__}: {e})") from None
    if not isinstance(blob, dict):
        raise InfoError(f"{path}: a torch file holding {type(blob).__name__}, not one of the pipeline's")
    if blob.get("format") == EXPORT_FORMAT:
        ema = blob["ema"]
        meta = blob.get("meta", {})
        m = blob["model_config"]
        return {"kind": "export (EMA weights + the configs to rebuild the network)", "step": meta.get("step"),
                "samples_seen": meta.get("samples_seen"), "experiment": meta.get("experiment"),
                "parameters": int(sum(v.numel() for v in ema.values())),
                "network": {k: m.get(k) for k in ("image_size", "in_channels", "base_channels", "channel_mult",
                                                  "attention_resolutions", "num_classes", "text_dim")},
                "diffusion": {k: blob["diffusion_config"].get(k) for k in
                              ("prediction", "schedule", "loss_weighting", "min_snr_gamma")},
                "images_per_video": meta.get("data", {}).get("images_per_video"),
                "train": {k: meta.get("train", {}).get(k) for k in ("steps", "batch_size", "lr", "precision")}}
    if {"step", "model", "optimizer", "ema"} <= set(blob):
        cfg = blob.get("config", {})
        return {"kind": "training state (exact resume)", "step": blob["step"], "samples_seen": blob.get("samples_seen"),
                "world_size": blob.get("world_size"), "experiment": cfg.get("name"),
                "parameters": int(sum(v.numel() for v in blob["model"].values())),
                "train_steps": cfg.get("train", {}).get("steps")}
    if "state_dict" in blob and "record" in blob:
        rec = json.loads(blob["record"]) if isinstance(blob["record"], str) else blob["record"]
        return {"kind": "digit classifier (the digit metrics)",
                "parameters": int(sum(v.numel() for v in blob["state_dict"].values())),
                **{k: rec[k] for k in ("heldout_accuracy", "heldout_frames", "settings") if k in rec}}
    raise InfoError(f"{path}: a torch file with keys {sorted(blob)[:8]}, not one of the pipeline's")


def _npz(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as z:
            files = sorted(z.files)
    except Exception as e:  # any unreadable file is reported as such
        raise InfoError(f"{path}: not a readable .npz ({type(e).__name__}: {e})") from None
    if "videos" in files:
        shape, _ = read_samples_header(path)
        seeds, settings = read_samples_record(path)
        out: dict[str, Any] = {"kind": "sample chunk" if "chunk" in files else "sample set",
                               "videos": "uint8 [N, T, H, W, C] = " + str(list(shape))}
        if seeds is not None and len(seeds):
            out["seeds"] = f"{int(seeds.min())}..{int(seeds.max())} ({len(seeds)})"
        if settings:
            sample = settings["sample"] if isinstance(settings.get("sample"), dict) else settings  # the sample section
            out["settings"] = {k: sample[k] for k in ("sampler", "steps", "guidance_weight", "task", "cond_method",
                                                      "w_r", "precision") if k in sample}
            out["export"] = settings.get("export")
        return out
    return {"kind": "features or real statistics (.npz)", "arrays": files}


def _json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InfoError(f"{path}: not JSON ({e})") from None
    if not isinstance(raw, dict):
        raise InfoError(f"{path}: JSON holding {type(raw).__name__}, not one of the pipeline's")
    if "metric" in raw and "value" in raw:
        def line(m: dict[str, Any]) -> str:
            if m.get("computed") is False:
                return f"not computed: {m.get('reason', '')}"
            iv = m.get("interval")
            text = f"{m['value']:.4g}" + (f" [{iv[0]:.4g}, {iv[1]:.4g}]" if iv else "")
            n = f"N {m.get('n_generated', '?')} / {m.get('n_real', '?')}" if "n_generated" in m else ""
            real = f"real clips {m['real_value']:.4g}" if "real_value" in m else ""
            return "  ".join(t for t in (text, n, real) if t)
        metrics = {raw["metric"]: line(raw)}
        metrics.update({k: line(v) for k, v in raw.get("also", {}).items() if isinstance(v, dict) and (
            "value" in v or v.get("computed") is False)})
        return {"kind": "metrics of a sample set", "metrics": metrics}
    if path.name.endswith(".run.json"):
        return {"kind": "run record (what the job ran with)", "job": raw.get("job"),
                "time_utc": raw.get("time_utc"), "commit": raw.get("git", {}).get("commit"),
                "host": raw.get("host")}
    if path.name == "manifest.json":
        return {"kind": "shard manifest", **{k: raw[k] for k in ("source", "split", "num_records", "num_shards",
                                                                 "num_frames") if k in raw}}
    if "pairs" in raw:
        return {"kind": "paired comparisons of a table", "pairs": len(raw["pairs"])}
    return {"kind": "JSON", "keys": sorted(raw)}


def _tar(path: Path) -> dict[str, Any]:
    try:
        with tarfile.open(path) as t:
            names = t.getnames()
    except tarfile.TarError as e:
        raise InfoError(f"{path}: not a readable tar ({e})") from None
    keys = sorted({n.split(".", 1)[0] for n in names})
    exts = sorted({n.split(".", 1)[1] for n in names if "." in n})
    return {"kind": "webdataset shard", "records": len(keys), "fields": exts, "first": keys[:3]}


def describe(path: str | Path) -> dict[str, Any]:
    """What ``path`` is and holds (a dict of plain values); raises :class:`InfoError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InfoError(f"{path}: not a file")
    readers = {".pt": _torch_file, ".npz": _npz, ".json": _json, ".tar": _tar}
    reader = readers.get(path.suffix)
    if reader is None:
        raise InfoError(f"{path}: unknown kind of file (known: {', '.join(readers)})")
    return {"file": str(path), "bytes": path.stat().st_size, **reader(path)}


def _print(info: dict[str, Any]) -> None:
    print(f"{info['file']}: {info['kind']} ({info['bytes']:,} bytes)")
    for key, value in info.items():
        if key in ("file", "kind", "bytes") or value in (None, {}, []):
            continue
        if isinstance(value, dict):
            print(f"  {key}:")
            for k, v in value.items():
                print(f"    {k}: {v}")
        else:
            print(f"  {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vdm info", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="files of a run (exports, states, sample sets, metrics, shards, ...)")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    args = p.parse_args(argv)
    code = EXIT_OK
    for f in args.files:
        try:
            info = describe(f)
        except InfoError as e:
            print(f"vdm info: error: {e}", file=sys.stderr)
            code = EXIT_BAD_INPUT
            continue
        if args.json:
            print(json.dumps(info, default=str))
        else:
            _print(info)
    return code


if __name__ == "__main__":
    sys.exit(main())
