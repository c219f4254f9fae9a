"""Exact shared-zone test for arms in a PyBullet client.

Link bounding boxes are cheap but over-approximate tilted links by
centimetres (a big arm's forearm "enters" the zone while picking next to
it). The probe uses them only as a pre-filter, then confirms each flagged
link against a collision-free ghost cylinder with ``getClosestPoints``.

With ``stepped=True`` (the environment's world) one broadphase query first
narrows the links to those whose box meets the zone's bounding box, instead
of asking every link of every arm for its box each tick. A link's broadphase
box is its ``getAABB`` box grown by the contact threshold (2 cm), kept up to
date by every physics step, so no link that the full test could flag is left
out: the answer is the same. Kinematic twins (only ever teleported) keep the
plain loop over every link.
"""

from __future__ import annotations

import pybullet as p

from robot_mirror.sim.zone import SharedZone


class ZoneProbe:
    def __init__(self, client, zone: SharedZone, stepped: bool = False) -> None:
        self.client = client
        self.zone = zone
        self.stepped = stepped
        shape = client.createCollisionShape(p.GEOM_CYLINDER, radius=zone.radius, height=zone.height)
        cx, cy = zone.center_xy
        self.ghost = client.createMultiBody(0, shape, -1, [cx, cy, zone.height / 2])
        client.setCollisionFilterGroupMask(self.ghost, -1, 0, 0)  # touches nothing
        r = zone.radius
        self._zone_box = ([cx - r, cy - r, 0.0], [cx + r, cy + r, zone.height])  # bounds the cylinder

    def arm_inside(self, arm) -> bool:
        """Is any link of ``arm`` inside the zone?"""
        body = arm.body
        if self.stepped:
            near = self.client.getOverlappingObjects(*self._zone_box) or ()
            links = [link for b, link in near if b == body]
        else:
            links = list(arm.link_names)
        get_aabb, box_inside = self.client.getAABB, self.zone.box_inside
        for link in links:
            lo, hi = get_aabb(body, link)
            if box_inside(lo, hi) and self.client.getClosestPoints(body, self.ghost, 0.0, linkIndexA=link):
                return True
        return False
