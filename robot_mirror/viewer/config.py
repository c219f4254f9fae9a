"""Where the viewer's data goes (``launch --viewer [URL]`` / ``--rrd FILE``),
and the one place that imports rerun."""

from __future__ import annotations

import os
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_mirror.errors import RobotMirrorError

SPAWN = "spawn"  # --viewer without a URL: start a local viewer (or reuse the one listening)
DEFAULT_PORT = 9876  # rerun's gRPC port
CAMERA_EVERY = 30  # ticks between camera images with --viewer-camera (0.5 s at 60 Hz)
INSTALL_HINT = "pip install 'robot_mirror[viewer]' (or: pip install rerun-sdk)"


@dataclass(frozen=True)
class ViewerConfig:
    """``connect``: :data:`SPAWN`, a rerun gRPC URL
    (``rerun+http://HOST:9876/proxy``) or None; ``rrd``: a recording file or
    None. Both may be given: the data then goes to both.
    ``heatmap_every`` / ``heatmap_window``: the core heatmap is a picture of
    the last ``heatmap_window`` ticks, logged every ``heatmap_every`` ticks
    (a picture per tick would be ~100x the data of the rest of the log).
    ``camera_every``: ticks between camera images (0: none; in process only,
    since only there is the rendering world at hand). ``scene_hz``: how
    often (per simulated s) the arms and blocks are drawn; the turn
    timeline and the readouts get every tick. Drawing costs ~1.6 ms per
    frame (one rerun call per link), a third of a control tick of the
    simulation itself: at 20 Hz the viewer slows a run by ~10 %, not ~30 %."""

    connect: str | None = None
    rrd: str | None = None
    scene_hz: float = 20.0
    heatmap_every: int = 15
    heatmap_window: int = 240
    camera_every: int = 0

    @property
    def enabled(self) -> bool:
        return self.connect is not None or self.rrd is not None


def viewer_from_flags(*, show: bool, url: str | None, rrd: str | None, camera: bool,
                      inprocess: bool) -> ViewerConfig | None:
    """``launch --viewer / --viewer-url / --rrd / --viewer-camera`` as a
    config (None: no viewer), checked before anything runs: the flags fit
    together, a local viewer has a display, rerun is installed."""
    connect = url or (SPAWN if show else None)
    if connect is None and rrd is None:
        if camera:
            raise RobotMirrorError("--viewer-camera: give --viewer, --viewer-url or --rrd FILE as well")
        return None
    if camera and not inprocess:
        raise RobotMirrorError("--viewer-camera needs --inprocess (only there is the rendering world at hand)")
    if connect == SPAWN and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RobotMirrorError("--viewer needs a display (DISPLAY is not set): record with --rrd FILE, "
                               "or send to a viewer elsewhere with --viewer-url URL")
    if url is not None:
        check_listening(url)
    require_rerun()
    return ViewerConfig(connect=connect, rrd=str(Path(rrd).absolute()) if rrd else None,
                        camera_every=CAMERA_EVERY if camera else 0)


def check_listening(url: str) -> None:
    """A viewer must listen at ``url`` before the run starts: rerun's sink
    would otherwise retry in the background and only complain at the end."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme.startswith("rerun") or not parts.hostname:
        raise RobotMirrorError(f"--viewer-url {url}: not a rerun URL (e.g. rerun+http://HOST:9876/proxy)")
    try:
        with socket.create_connection((parts.hostname, parts.port or DEFAULT_PORT), timeout=2.0):
            pass
    except OSError as exc:
        raise RobotMirrorError(f"--viewer-url {url}: no viewer listening there ({exc.strerror or exc}); "
                               "start `rerun` there first") from None


def require_rerun() -> Any:
    """The ``rerun`` module, or one line saying how to install it."""
    try:
        import rerun
    except ImportError:
        raise RobotMirrorError(f"the viewer needs rerun-sdk, which is not installed: {INSTALL_HINT}") from None
    return rerun


def open_stream(config: ViewerConfig, application: str, recording_id: str | None = None) -> Any:
    """A rerun ``RecordingStream`` sending to every sink ``config`` names.

    ``recording_id``: streams that share it are merged by the viewer (the
    run folder's name, so a node restarted mid-run continues the same
    recording)."""
    rr = require_rerun()
    stream = rr.RecordingStream(application, recording_id=recording_id)
    sinks = []
    if config.rrd is not None:
        sinks.append(rr.FileSink(str(config.rrd)))
    if config.connect == SPAWN:
        try:
            rr.spawn(connect=False, hide_welcome_screen=True)
        except Exception as exc:  # the viewer binary could not start (no display, ...)
            raise RobotMirrorError(f"--viewer: could not start a rerun viewer ({exc}); "
                                   "record with --rrd FILE and open it elsewhere with `rerun FILE`") from None
        sinks.append(rr.GrpcSink())
    elif config.connect is not None:
        sinks.append(rr.GrpcSink(config.connect))
    stream.set_sinks(*sinks)
    return stream
