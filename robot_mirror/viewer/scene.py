"""The 3D scene: both arms drawn from their URDFs, the table, the blocks,
the shared zone and the tower.

The arms are drawn from what PyBullet itself loaded: each arm's URDF goes
into a private DIRECT client (never stepped), whose visual shapes (meshes
or primitives, with their colours) are logged once, and whose forward
kinematics, set to the joint angles of each ``state``, give the link poses
logged per tick. The same code serves the in-process run and the viewer
node, which has nothing but the bus's ``state`` messages: joint angles,
gripper closure, block poses, the task's part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pybullet as p
from pybullet_utils.bullet_client import BulletClient

from robot_mirror.common.observation import WorldState
from robot_mirror.config.scenario import Scenario
from robot_mirror.sim.arm import Arm
from robot_mirror.sim.assets import asset
from robot_mirror.sim.quiet import c_output_suppressed
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.tasks import make_task

WORLD = "world"
ARM_COLOURS = [(230, 120, 40), (60, 130, 230)]  # blocks of the first / second robot (the sim's sides)
NEUTRAL = (200, 200, 200)
ZONE_RGBA = (255, 210, 0, 70)
MESH_TYPES = (".obj", ".stl", ".glb", ".gltf")  # what rerun's Asset3D reads


class BodyDrawing:
    """One body of a private PyBullet client, as rerun entities:
    ``<entity>/<link>`` (one transform per link) and under it
    ``visual_<k>`` (the shape, in the link frame)."""

    def __init__(self, client: BulletClient, body: int, entity: str) -> None:
        self.client = client
        self.body = body
        self.entity = entity
        info = client.getBodyInfo(body)
        self.links = {-1: info[0].decode()} | {
            j: client.getJointInfo(body, j)[12].decode() for j in range(client.getNumJoints(body))}

    def link_path(self, link: int) -> str:
        return f"{self.entity}/{self.links[link]}"

    def log_shapes(self, rr: Any, stream: Any) -> int:
        """Log every visual shape once (static); returns how many were drawn."""
        drawn = 0
        for k, shape in enumerate(self.client.getVisualShapeData(self.body)):
            archetype = shape_archetype(rr, shape)
            if archetype is None:
                continue
            path = f"{self.link_path(shape[1])}/visual_{k}"
            stream.log(path, rr.Transform3D(translation=shape[5], quaternion=rr.Quaternion(xyzw=shape[6])),
                       static=True)
            stream.log(path, archetype, static=True)
            drawn += 1
        return drawn

    def link_frames(self) -> dict[int, tuple[tuple, tuple]]:
        """World pose (position, xyzw) of every link frame (the frame the
        visual shapes are given in; for the base, its link frame, not its
        centre of mass)."""
        c = self.client
        pos, orn = c.getBasePositionAndOrientation(self.body)
        local = c.getDynamicsInfo(self.body, -1)[3:5]
        frames = {-1: c.multiplyTransforms(pos, orn, *c.invertTransform(*local))}
        joints = [j for j in self.links if j >= 0]
        if joints:
            states = c.getLinkStates(self.body, joints, computeForwardKinematics=True)
            frames.update({j: (s[4], s[5]) for j, s in zip(joints, states)})
        return frames

    def log_pose(self, rr: Any, stream: Any, *, static: bool = False) -> None:
        for link, (pos, orn) in self.link_frames().items():
            stream.log(self.link_path(link), rr.Transform3D(translation=pos, quaternion=orn), static=static)  # xyzw


def shape_archetype(rr: Any, shape) -> Any:
    """A PyBullet visual shape (``getVisualShapeData`` row) as a rerun archetype."""
    kind, dims, mesh, rgba = shape[2], shape[3], shape[4].decode(errors="replace"), shape[7]
    colour = [int(round(255 * c)) for c in rgba]
    if kind == p.GEOM_BOX:
        return rr.Boxes3D(half_sizes=[[d / 2 for d in dims]], colors=[colour], fill_mode="solid")
    if kind == p.GEOM_SPHERE:
        return rr.Ellipsoids3D(radii=[[dims[0]] * 3], colors=[colour], fill_mode="solid")
    if kind == p.GEOM_CYLINDER:
        return rr.Cylinders3D(lengths=[dims[0]], radii=[dims[1]], colors=[colour], fill_mode="solid")
    if kind == p.GEOM_CAPSULE:  # PyBullet's capsule is centred; rerun's starts at the origin
        return rr.Capsules3D(lengths=[dims[0]], radii=[dims[1]], translations=[[0, 0, -dims[0] / 2]],
                             colors=[colour])
    if kind == p.GEOM_MESH and Path(mesh).suffix.lower() in MESH_TYPES and Path(mesh).is_file():
        asset3d = rr.Asset3D(path=mesh)
        if any(abs(s - 1.0) > 1e-9 for s in dims):
            return [asset3d, rr.Transform3D(scale=list(dims))]
        return asset3d
    return None


class Scene:
    """Log a scenario's static scene once, then one ``WorldState`` per tick."""

    def __init__(self, scenario: Scenario) -> None:
        self.robots = [r.name for r in scenario.robots]
        specs = [RobotSpec.from_config(r, scenario.base_dir) for r in scenario.robots]
        self.zone = make_task(scenario.task, specs).zone
        self.block_size = float(scenario.task.block_size)
        with c_output_suppressed():
            self.client = BulletClient(connection_mode=p.DIRECT)
            self.arms = {s.name: Arm(self.client, s) for s in specs}
            table = self.client.loadURDF(str(asset("table.urdf")), useFixedBase=True)
        self.table = BodyDrawing(self.client, table, f"{WORLD}/table")
        self.drawings = {n: BodyDrawing(self.client, a.body, f"{WORLD}/arms/{n}") for n, a in self.arms.items()}

    def log_static(self, rr: Any, stream: Any) -> None:
        stream.log(WORLD, rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        self.table.log_shapes(rr, stream)
        self.table.log_pose(rr, stream, static=True)
        for drawing in self.drawings.values():
            drawing.log_shapes(rr, stream)
        z = self.zone
        stream.log(f"{WORLD}/zone", rr.Cylinders3D(
            lengths=[z.height], radii=[z.radius], centers=[[*z.center_xy, z.height / 2]],
            colors=[ZONE_RGBA], fill_mode="solid", labels=["shared zone"]), static=True)

    def log_state(self, rr: Any, stream: Any, state: WorldState) -> None:
        for name, arm in state.arms.items():
            self._pose_arm(name, arm.q, arm.gripper)
            self.drawings[name].log_pose(rr, stream)
        self._log_blocks(rr, stream, state)
        self._log_tower(rr, stream, state)

    def _pose_arm(self, name: str, q: np.ndarray, gripper: float) -> None:
        """Set the drawing's joints: the arm's from the state, the fingers
        from the gripper closure (0 open .. 1 closed)."""
        arm = self.arms[name]
        arm.reset_joints(q, gripper_open=False)
        for j in arm.finger_joints:
            value = j.upper - float(gripper) * (j.upper - j.lower)
            self.client.resetJointState(arm.body, j.index, value, 0.0)

    def _log_blocks(self, rr: Any, stream: Any, state: WorldState) -> None:
        blocks = np.asarray(state.blocks, dtype=float).reshape(-1, 7)
        colours = [NEUTRAL] * len(blocks)
        for side, name in enumerate(self.robots):
            mine = (state.task_obs.get(name) or {}).get("my_blocks")
            for i, is_mine in enumerate(np.asarray(mine if mine is not None else [], dtype=bool)[:len(blocks)]):
                if is_mine:
                    colours[i] = ARM_COLOURS[side % len(ARM_COLOURS)]
        half = self.block_size / 2
        stream.log(f"{WORLD}/blocks", rr.Boxes3D(
            centers=blocks[:, :3], half_sizes=[[half] * 3] * len(blocks),
            quaternions=[rr.Quaternion(xyzw=q) for q in blocks[:, 3:]], colors=colours, fill_mode="solid",
            labels=[str(i) for i in range(len(blocks))]))

    def _log_tower(self, rr: Any, stream: Any, state: WorldState) -> None:
        task = next(iter(state.task_obs.values()), None) or {}
        xy = task.get("tower_xy", self.zone.center_xy)
        count = task.get("tower_count")
        label = "tower" if count is None else f"tower: {int(count)}"
        stream.log(f"{WORLD}/tower", rr.Points3D([[float(xy[0]), float(xy[1]), 0.002]], radii=[0.012],
                                                colors=[(40, 40, 40)], labels=[label]))

    def close(self) -> None:
        try:
            self.client.disconnect()
        except p.error:
            pass
