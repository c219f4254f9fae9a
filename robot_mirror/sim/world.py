"""The PyBullet world: one client, a table, blocks, arms. The only place a
physics server is created for simulation (policies' kinematic twins aside)."""

from __future__ import annotations

import functools
import numpy as np
import pybullet as p
from pybullet_utils.bullet_client import BulletClient

from robot_mirror.sim.arm import Arm
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.assets import asset
from robot_mirror.sim.quiet import c_output_suppressed

SIDE_COLOURS = [(0.85, 0.35, 0.2, 1.0), (0.2, 0.45, 0.85, 1.0), (0.3, 0.7, 0.3, 1.0)]


class BoundClient(BulletClient):
    """A ``BulletClient`` that binds each pybullet function to its client once.

    The stock wrapper runs ``inspect.isbuiltin`` and builds a new
    ``functools.partial`` on every attribute access (about 1 us); an
    environment tick makes dozens of calls, so that alone was a sizeable part
    of its overhead. The bound function is cached on the instance, where
    normal attribute lookup finds it before ``__getattr__`` runs. ``disconnect``
    is never cached (the stock wrapper marks the client closed there)."""

    def __getattr__(self, name):
        attribute = super().__getattr__(name)
        if name != "disconnect" and isinstance(attribute, functools.partial):
            self.__dict__[name] = attribute
        return attribute


class World:
    """Facade over one PyBullet client. Bodies are addressed by name."""

    def __init__(self, physics_hz: int = 240, gui: bool = False) -> None:
        self.physics_hz = physics_hz
        self.dt = 1.0 / physics_hz
        mode = p.GUI if gui else p.DIRECT
        with c_output_suppressed():
            self.client = BoundClient(connection_mode=mode)
        self.gui = gui
        self.arms: dict[str, Arm] = {}
        self.blocks: list[int] = []
        self.sim_time = 0.0

    def reset(self) -> None:
        """Empty the world and rebuild the table. A full reset (not a
        teleport of the old bodies) is what makes seeded runs repeat bit for bit."""
        c = self.client
        c.resetSimulation()
        c.setGravity(0, 0, -9.81)
        c.setTimeStep(self.dt)
        c.setPhysicsEngineParameter(deterministicOverlappingPairs=1, numSolverIterations=50)
        if self.gui:
            c.configureDebugVisualizer(p.COV_ENABLE_GUI, 0)
        self.table = c.loadURDF(str(asset("table.urdf")), useFixedBase=True)
        self.arms = {}
        self.blocks = []
        self.sim_time = 0.0

    def add_marker(self, name: str, xy: tuple[float, float]) -> int:
        return self.client.loadURDF(str(asset(name)), basePosition=(xy[0], xy[1], 0.0005), useFixedBase=True)

    def add_arm(self, spec: RobotSpec) -> Arm:
        with c_output_suppressed():
            arm = Arm(self.client, spec)
        self.arms[spec.name] = arm
        return arm

    def add_block(self, position, yaw: float, colour=(0.8, 0.8, 0.8, 1.0), size: float = 0.05) -> int:
        scale = size / 0.05
        block = self.client.loadURDF(
            str(asset("block.urdf")), basePosition=list(position),
            baseOrientation=p.getQuaternionFromEuler((0.0, 0.0, yaw)), globalScaling=scale,
        )
        self.client.changeVisualShape(block, -1, rgbaColor=colour)
        self.blocks.append(block)
        return block

    def block_poses(self) -> np.ndarray:
        get = self.client.getBasePositionAndOrientation
        rows = [(*pos, *orn) for pos, orn in map(get, self.blocks)]  # one array build, not 2 per block
        return np.array(rows, dtype=float).reshape(len(self.blocks), 7)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.client.stepSimulation()
        self.sim_time += n * self.dt

    def min_distance(self, a: str, b: str, cap: float = 1.0) -> float:
        """Closest distance between two arms' bodies (capped at ``cap`` m)."""
        points = self.client.getClosestPoints(self.arms[a].body, self.arms[b].body, cap)
        if not points:
            return cap
        return float(min(pt[8] for pt in points))

    def render(self, width: int = 320, height: int = 240, target=(0.0, 0.0, 0.15),
               distance: float = 1.6, yaw: float = 0.0, pitch: float = -35.0) -> np.ndarray:
        """RGB frame from a fixed camera with the CPU TinyRenderer (works headless)."""
        c = self.client
        view = c.computeViewMatrixFromYawPitchRoll(list(target), distance, yaw, pitch, 0.0, 2)
        proj = c.computeProjectionMatrixFOV(50.0, width / height, 0.05, 10.0)
        _, _, rgba, _, _ = c.getCameraImage(width, height, view, proj, renderer=p.ER_TINY_RENDERER)
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3]

    def close(self) -> None:
        try:
            self.client.disconnect()
        except p.error:
            pass
