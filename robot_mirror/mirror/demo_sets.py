"""Several demonstration folders as one training set (joint training on several bodies).

One network for every body has to see several bodies: a Panda pair, a Panda
beside an iiwa, the project's own arm beside a Panda, each recorded by
``robot-mirror demos`` into its own folder. :func:`load_demo_sets` reads each
folder with :func:`~robot_mirror.mirror.dataset.load_demos` (so every check
and the own-frame slot numbering happen per folder, where the arms' frames are
known) and joins them: episodes are renumbered one after the other, so the
two streams of an episode stay a pair and a held-out split draws whole
episodes from any folder.

Folders can only be joined when they describe the same task the same way:
the same task kind, segment vocabulary, number of targets and control rate.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from robot_mirror.errors import RobotMirrorError
from robot_mirror.mirror.dataset import DemoSet, load_demos


def load_demo_sets(paths: str | Path | Sequence[str | Path]) -> DemoSet:
    """One folder -> :func:`load_demos`; several -> their episodes joined (one-line
    error naming the folder that does not match the first)."""
    if isinstance(paths, (str, Path)):
        return load_demos(paths)
    sets = [load_demos(p) for p in paths]
    if not sets:
        raise RobotMirrorError("--data: give at least one demonstration folder")
    return join_demo_sets(sets) if len(sets) > 1 else sets[0]


def join_demo_sets(sets: list[DemoSet]) -> DemoSet:
    first = sets[0]
    for d in sets[1:]:
        for what, a, b in (("task", first.meta.get("task"), d.meta.get("task")),
                           ("segments", first.segments, d.segments),
                           ("n_targets", first.n_targets, d.n_targets),
                           ("control_hz", first.control_hz, d.control_hz)):
            if a != b:
                raise RobotMirrorError(f"{d.path}: {what} {b!r} differs from {first.path}'s {a!r}; "
                                       f"only demonstrations of one task can be trained together")
    streams, episodes, offset = [], [], 0
    for d in sets:
        streams.extend(replace(s, episode=s.episode + offset) for s in d.streams)
        episodes.extend({**e, "source": str(d.path)} for e in d.meta["episodes"])
        offset += d.n_episodes
    meta = {**first.meta, "episodes": episodes, "sources": [str(Path(d.path).resolve()) for d in sets],
            "robots_by_source": [d.meta["robots"] for d in sets]}
    digest = hashlib.sha256("".join(d.sha256 for d in sets).encode()).hexdigest()
    types = list(dict.fromkeys(t for d in sets for t in d.robot_types))
    return DemoSet(Path(first.path), meta, streams, first.segments, first.n_targets, first.control_hz, digest,
                   types)
