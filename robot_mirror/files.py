"""Files that are never seen half written.

Every file the project writes for a user (``summary.json``, demonstration
episodes, checkpoints) goes through :func:`write_atomic`: the bytes land in a
temporary file beside the target, which then replaces it in one rename. A
run that is killed mid-write leaves the previous version, never a torn one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text))
