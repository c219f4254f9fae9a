"""Files that are never seen half written, in places that can take them.

Every file the project writes for a user (``summary.json``, demonstration
episodes, checkpoints) goes through :func:`write_atomic`: the bytes land in a
temporary file beside the target, which then replaces it in one rename. A
run that is killed mid-write leaves the previous version, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from robot_mirror.errors import RobotMirrorError


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


def check_output(value: str, flag: str, *, folder: bool, empty: bool = False) -> Path:
    """Refuse an output path that cannot be written, before any work starts.

    Why up front: a training run or a launch that only finds out at the end
    that its output cannot be written wastes the run, and a half-made run
    folder is worse than none. ``folder``: the path is a folder to create or
    reuse (``empty``: it must be new or empty); else a file whose folder must
    take new files (written atomically: temp file + rename). Nothing is
    created here: writability is probed with an anonymous file.
    """
    path = Path(value)
    if path.exists():
        if folder and not path.is_dir():
            raise RobotMirrorError(f"{flag} {value}: exists and is not a folder")
        if not folder and path.is_dir():
            raise RobotMirrorError(f"{flag} {value}: is a folder; give a file path")
        if folder and empty and any(path.iterdir()):
            raise RobotMirrorError(f"{flag} {value}: the folder is not empty; give a new or empty folder")
    target = path.absolute() if folder else path.absolute().parent
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir():
        raise RobotMirrorError(f"{flag} {value}: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise RobotMirrorError(f"{flag} {value}: cannot write in {existing} ({exc.strerror})") from None
    return path
