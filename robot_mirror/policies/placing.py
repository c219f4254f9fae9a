"""Where a held block really is, and what it will land on.

The expert plans the tool, but what must end up on the tower is the block.
A suction cup holds a block where it touched it (not where the grasp
aimed), and a block that sits on the tower outside the stacking tolerance
is not counted in the tower's height, yet it is there to be pressed on.
These read both facts off the observation (plain data, no pybullet).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def held_height(obs: dict[str, Any], block: int | None, size: float, default: float) -> float:
    """Tool height above the held block's bottom face, as observed now
    (``default``, the assumed grasp height, when ``block`` is not held). A
    rigid hold that aims even a millimetre too low presses the whole arm's
    force into the tower, squashing it by centimetres."""
    if block is None or obs["holding"] != block:
        return default
    offset = float(obs["ee_pose"][2] - obs["blocks"][block][2]) + size / 2
    return offset if 0.0 < offset < 2 * size else default


def held_offset(obs: dict[str, Any], block: int | None, size: float) -> np.ndarray:
    """The held block's centre relative to the tool in x and y (zero when
    ``block`` is not held or the offset is not sane). Placing the tool, not
    the block, over the spot left a zoo arm's suction-held block 1.6 cm off
    the tower, outside the stacking tolerance, and the next arm squashed it."""
    if block is None or obs["holding"] != block:
        return np.zeros(2)
    offset = np.asarray(obs["blocks"][block][:2], float) - np.asarray(obs["ee_pose"][:2], float)
    return offset if float(np.linalg.norm(offset)) < size / 2 else np.zeros(2)


def landing_surface(obs: dict[str, Any], x: float, y: float, surface: float, size: float,
                    skip: int | None = None) -> float:
    """The height a block put down at (x, y) lands on: ``surface`` (the
    counted tower's top) or the top of the highest unheld block under the
    spot, whichever is higher. ``skip``: the block being placed."""
    for i, pose in enumerate(np.asarray(obs["blocks"], float)):
        if i == obs["holding"] or i == skip:
            continue
        if float(np.hypot(pose[0] - x, pose[1] - y)) < size:
            surface = max(surface, float(pose[2]) + size / 2)
    return surface
