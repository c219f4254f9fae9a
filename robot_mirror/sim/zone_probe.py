"""Exact shared-zone test for arms in a PyBullet client.

Link bounding boxes are cheap but over-approximate tilted links by
centimetres (a big arm's forearm "enters" the zone while picking next to
it). The probe uses them only as a pre-filter, then confirms each flagged
link against a collision-free ghost cylinder with ``getClosestPoints``.
"""

from __future__ import annotations

import pybullet as p

from robot_mirror.sim.zone import SharedZone


class ZoneProbe:
    def __init__(self, client, zone: SharedZone) -> None:
        self.client = client
        self.zone = zone
        shape = client.createCollisionShape(p.GEOM_CYLINDER, radius=zone.radius, height=zone.height)
        cx, cy = zone.center_xy
        self.ghost = client.createMultiBody(0, shape, -1, [cx, cy, zone.height / 2])
        client.setCollisionFilterGroupMask(self.ghost, -1, 0, 0)  # touches nothing

    def arm_inside(self, arm) -> bool:
        """Is any link of ``arm`` inside the zone?"""
        # Runs for every arm every tick: one link's box at a time (stops at
        # the first confirmed link, and the lookups are hoisted out of the loop).
        get_aabb, box_inside, body = self.client.getAABB, self.zone.box_inside, arm.body
        for link in arm.link_names:
            lo, hi = get_aabb(body, link)
            if box_inside(lo, hi) and self.client.getClosestPoints(body, self.ghost, 0.0, linkIndexA=link):
                return True
        return False
