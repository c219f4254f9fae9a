"""Saving and loading a trained mirror network.

A checkpoint is ``torch.save`` of a plain dict (loaded back with
``weights_only=True``: tensors, numbers, strings, lists and dicts only)::

    format          "robot_mirror.mirror/2"
    config          MirrorConfig as a dict (sizes, loss weights, vocabularies, held-out pairs)
    state_dict      the network's weights and normalisation buffers
    normalisation   {"body": [mean], [std], "turn_scale"}
    robot_types     arm types in its training data (report only: the network has no per-type
                    part, so it runs on any arm)
    segments        action vocabulary; n_targets
    data            {"path", "sha256", "episodes", "train_episodes", "held_out_episodes"}
    seed, train_seconds, created, torch
    metrics         evaluation on the held-out episodes (robot_mirror.studies.metrics)

Every problem loading one is a one-line :class:`RobotMirrorError`.
"""

from __future__ import annotations

import datetime as _dt
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from robot_mirror.errors import RobotMirrorError
from robot_mirror.files import write_atomic
from robot_mirror.mirror.model import MirrorConfig, MirrorNet

CHECKPOINT_FORMAT = "robot_mirror.mirror/2"
REQUIRED = ("format", "config", "state_dict", "normalisation", "robot_types", "segments", "n_targets", "data",
            "seed", "train_seconds", "metrics")
MAX_BYTES = 5 * 1024 * 1024


@dataclass
class Checkpoint:
    model: MirrorNet
    info: dict          # everything but the state dict
    path: Path

    @property
    def robot_types(self) -> list[str]:
        return list(self.info["robot_types"])

    @property
    def segments(self) -> list[str]:
        return list(self.info["segments"])

    @property
    def metrics(self) -> dict:
        return self.info.get("metrics", {})


def _plain(x):
    """JSON-like copy (numpy scalars/arrays and tuples -> floats/lists) that weights_only loading accepts."""
    import numpy as np

    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    return x


def _reason(exc: BaseException) -> str:
    """The first sentence of an exception's message, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    first = first.split(". ")[0]
    return first[:120] + ("..." if len(first) > 120 else "")


def save_checkpoint(path: str | Path, model: MirrorNet, *, normalisation: dict, data: dict, seed: int,
                    train_seconds: float, metrics: dict, extra: Optional[dict] = None) -> Path:
    """Write a checkpoint atomically; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = model.config
    blob = {
        "format": CHECKPOINT_FORMAT,
        "config": _plain(c.to_dict()),
        "state_dict": {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
        "normalisation": _plain(normalisation),
        "robot_types": list(c.trained_on),
        "segments": list(c.segments),
        "n_targets": int(c.n_targets),
        "data": _plain(data),
        "seed": int(seed),
        "train_seconds": float(train_seconds),
        "metrics": _plain(metrics),
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "torch": str(torch.__version__),
    }
    if extra:
        blob.update(_plain(extra))
    write_atomic(path, lambda tmp: torch.save(blob, tmp))
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise RobotMirrorError(f"{path}: checkpoint is {size / 1e6:.1f} MB, over the 5 MB limit; use a smaller --hidden")
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The raw checked dict (no network built)."""
    path = Path(path)
    if not path.exists():
        raise RobotMirrorError(f"{path}: no such checkpoint (train one with `robot-mirror train --data DIR --out {path}`)")
    if not path.is_file():
        raise RobotMirrorError(f"{path}: not a file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, ValueError,
            AttributeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        reason = ("unreadable, or holds objects other than tensors and plain data"
                  if isinstance(exc, pickle.UnpicklingError) else _reason(exc))
        raise RobotMirrorError(f"{path}: not a mirror checkpoint or corrupt ({reason})") from None
    if not isinstance(blob, dict) or "format" not in blob:
        raise RobotMirrorError(f"{path}: not a mirror checkpoint (no 'format' entry)")
    if blob["format"] != CHECKPOINT_FORMAT:
        raise RobotMirrorError(f"{path}: checkpoint format {blob['format']!r} is not {CHECKPOINT_FORMAT!r}; "
                               "retrain with this version")
    missing = [k for k in REQUIRED if k not in blob]
    if missing:
        raise RobotMirrorError(f"{path}: corrupt checkpoint, missing {', '.join(missing)}")
    return blob


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load, check and build the network (in eval mode). It has no per-arm part:
    any arm can run it."""
    path = Path(path)
    blob = read_checkpoint(path)
    try:
        config = MirrorConfig.from_dict(blob["config"])
        model = MirrorNet(config)
        model.load_state_dict(blob["state_dict"], strict=True)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise RobotMirrorError(f"{path}: corrupt checkpoint, weights do not fit its config ({_reason(exc)})") from None
    model.eval()
    info = {k: v for k, v in blob.items() if k != "state_dict"}
    return Checkpoint(model=model, info=info, path=path)
