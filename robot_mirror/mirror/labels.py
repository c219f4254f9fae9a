"""Action labels as the network can learn them: in the actor's own frame.

The network sees every body in the observer's (for the own body: its own)
base frame, so a label must mean the same own-frame movement whichever arm
makes it. Task-level numbering (world slots) does not: see
:func:`egocentric_slots`. Streams are :class:`robot_mirror.mirror.dataset.Stream`.
"""

from __future__ import annotations

import numpy as np


def egocentric_slots(streams: list, n_targets: int, place_segment: int) -> list[bool]:
    """Number imitation slots in each actor's own frame, in place.

    The task numbers slots in the world (slot s has the same world y on both
    sides), but the network sees every body in its own frame: for two arms
    facing each other, "left places at slot s" and "right places at slot
    K-1-s" are the same own-body movement. With world labels the own-action
    heads get contradictory targets. Here slot order follows the actor's own
    lateral axis: a robot whose placed tool moves to a smaller own-frame y
    as the slot index grows has its labels reversed (target -> K-1-target), as
    its partner's labels are wherever they describe it. Returns the flip per
    robot (what ``MirrorPolicy.recognised_slot`` undoes for the partner)."""
    flips = []
    for r in (0, 1):
        ys, ts = [], []
        for s in streams:
            if s.robot == r:
                m = (s.segment == place_segment) & (s.target >= 0)
                ys.append(s.own[m, 16])  # tool position y, own frame
                ts.append(s.target[m])
        y, t = np.concatenate(ys or [np.zeros(0)]), np.concatenate(ts or [np.zeros(0)])
        flips.append(bool(t.size > 1 and np.std(t) > 0 and np.corrcoef(t, y)[0, 1] < 0))
    for s in streams:
        for attr, robot in (("target", s.robot), ("partner_target", 1 - s.robot)):
            if flips[robot]:
                v = getattr(s, attr)
                setattr(s, attr, np.where(v >= 0, n_targets - 1 - v, v))
    return flips
