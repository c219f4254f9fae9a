"""Silence PyBullet's C-level chatter (``argv[0]=``, URDF importer warnings).

PyBullet prints from C straight to file descriptors 1 and 2, which Python's
``sys.stdout`` redirection cannot catch; a run's summary would drown in it.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def c_output_suppressed():
    if os.environ.get("ROBOT_MIRROR_VERBOSE_BULLET"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
