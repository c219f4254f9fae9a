"""The shared zone: a vertical cylinder around the tower that only the
turn holder may enter. Tested against link bounding boxes, which slightly
over-approximate the links, so the rule errs on the safe side."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SharedZone:
    center_xy: tuple[float, float]
    radius: float
    height: float = 1.0

    def box_inside(self, lo, hi) -> bool:
        """Does the axis-aligned box [lo, hi] intersect the cylinder?"""
        if hi[2] < 0.0 or lo[2] > self.height:
            return False
        cx, cy = self.center_xy
        nx = min(max(cx, lo[0]), hi[0])
        ny = min(max(cy, lo[1]), hi[1])
        return (nx - cx) ** 2 + (ny - cy) ** 2 < self.radius ** 2
