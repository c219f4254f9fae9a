"""The live viewer: a run drawn in rerun (https://rerun.io), opt-in.

``launch --viewer`` opens (or connects to) a rerun viewer; ``launch --rrd
FILE`` records the same data headless for later viewing. What is logged,
under which entity paths, and the readouts contract a policy may offer:
docs/viewer.md.

Nothing here imports rerun at module load: only a run that asks for a viewer
pays for it (``config.open_stream`` imports it), so ``make run`` and the
rest never do.
"""

from __future__ import annotations

from robot_mirror.viewer.config import ViewerConfig

__all__ = ["ViewerConfig"]
