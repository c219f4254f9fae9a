"""An arm zoo: the test bed for every claim about "any URDF".

A seeded generator writes URDF arms built from primitives (5-7 revolute
joints, Panda-like, UR-like, iiwa-like, offset-wrist and the plain arm a new
user would try first), with or without a two-finger gripper, and the zoo adds
the arms users already bring: pybullet_data's Panda, iiwa and xArm6 and the
project's ``urdf/mirror_arm.urdf``. Generated arms are drawn so the tower task
*should* be within reach; whether it really is, is decided by
:mod:`robot_mirror.sim.zoo_reach`, which shares no code with the IK under test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

# Axis of each revolute joint, base to wrist.
PATTERNS: dict[str, tuple[str, ...]] = {
    "plain": ("z", "y", "y", "y", "z", "y"),         # the arm a new user would try
    "ur": ("z", "y", "y", "y", "z", "y"),            # lateral shoulder/elbow offsets
    "five": ("z", "y", "y", "y", "z"),               # 5-DoF: top-down grasps still reachable
    "iiwa": ("z", "y", "z", "y", "z", "y", "z"),
    "panda": ("z", "y", "z", "y", "z", "y", "z"),    # elbow and flange offsets along x
    "offset_wrist": ("z", "y", "y", "x", "y", "z"),  # side-offset wrist with an x-axis joint
}
_AXES = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}


@dataclass(frozen=True)
class ZooArm:
    """One arm of the zoo and the base it is tried from."""

    name: str
    urdf: str                       # a path, or a pybullet_data name
    base: tuple[float, float, float] = (-0.6, 0.0, 0.0)
    yaw_deg: float = 0.0
    gripper: str = "auto"
    pattern: str = "named"

    @property
    def generated(self) -> bool:
        return self.pattern != "named"


NAMED_ARMS = (
    ZooArm("panda", "franka_panda/panda.urdf"),
    ZooArm("iiwa", "kuka_iiwa/model.urdf", base=(-0.75, 0.0, 0.0), gripper="suction"),
    ZooArm("xarm6", "xarm/xarm6_robot.urdf", gripper="suction"),
    ZooArm("mirror_arm", str(ROOT / "urdf/mirror_arm.urdf"), gripper="suction"),
)


# --------------------------------------------------------------- geometry
def _layout(pattern: str, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """Offset of each joint from the previous one (zero pose: arm straight
    up), then of the tool flange from the last joint."""
    u = rng.uniform
    shoulder, l1, l2 = u(0.24, 0.32), u(0.40, 0.46), u(0.38, 0.44)
    wrist = u(0.10, 0.16)
    base = (0.0, 0.0, 0.08)
    up = (0.0, 0.0, shoulder - 0.08)
    if pattern in ("plain", "ur"):
        side = u(0.05, 0.10) if pattern == "ur" else 0.0
        return [base, up, (0, side, l1), (0, -side, l2), (0, 0, wrist * 0.5), (0, 0, wrist * 0.5),
                (0, 0, 0.02)]
    if pattern == "five":
        return [base, up, (0, 0, l1), (0, 0, l2), (0, 0, wrist), (0, 0, 0.02)]
    if pattern in ("iiwa", "panda"):
        dx = u(0.06, 0.09) if pattern == "panda" else 0.0
        return [base, up, (0, 0, l1 * 0.5), (dx, 0, l1 * 0.5), (-dx, 0, l2 * 0.5), (0, 0, l2 * 0.5),
                (0, 0, wrist), (0, 0, 0.02)]
    side = u(0.05, 0.10)
    return [base, up, (0, 0, l1), (0, 0, l2), (0, side, wrist * 0.5), (0, -side, wrist * 0.5), (0, 0, 0.02)]


def _limits(pattern: str, axes: tuple[str, ...], rng: np.random.Generator) -> list[tuple[float, float]]:
    """Joint limits: rolls turn far, pitches fold (the elbow both ways)."""
    out = []
    for i, axis in enumerate(axes):
        if pattern == "plain":
            out.append((-3.05, 3.05))
        elif axis == "z":
            span = rng.uniform(2.8, 3.1)
            out.append((-span, span))
        else:
            span = rng.uniform(2.6, 2.95) if i > 1 else rng.uniform(1.9, 2.2)
            out.append((-span, span))
    return out


def _cylinder(a: np.ndarray, b: np.ndarray, radius: float) -> str:
    """Visual and collision cylinder from ``a`` to ``b`` (link frame)."""
    d = b - a
    length = float(np.linalg.norm(d))
    if length < 1e-6:
        return ""
    mid = (a + b) / 2
    pitch = math.atan2(math.hypot(d[0], d[1]), d[2])
    yaw = math.atan2(d[1], d[0])
    geom = (f'<origin xyz="{mid[0]:.4f} {mid[1]:.4f} {mid[2]:.4f}" rpy="0 {pitch:.4f} {yaw:.4f}"/>'
            f'<geometry><cylinder radius="{radius}" length="{length:.4f}"/></geometry>')
    return f"<visual>{geom}</visual><collision>{geom}</collision>"


def _link(name: str, shape: str, mass: float = 0.8) -> str:
    i = 0.004 * mass
    return (f'<link name="{name}"><inertial><mass value="{mass}"/>'
            f'<inertia ixx="{i}" ixy="0" ixz="0" iyy="{i}" iyz="0" izz="{i}"/></inertial>{shape}</link>')


def _joint(name: str, kind: str, parent: str, child: str, xyz, axis=(0, 0, 1), limits=None,
           yaw: float = 0.0) -> str:
    lim = (f'<limit lower="{limits[0]:.3f}" upper="{limits[1]:.3f}" effort="{limits[2]}" velocity="2.0"/>'
           if limits else "")
    return (f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
            f'<origin xyz="{xyz[0]:.4f} {xyz[1]:.4f} {xyz[2]:.4f}" rpy="0 0 {yaw:.6f}"/>'
            f'<axis xyz="{axis[0]} {axis[1]} {axis[2]}"/>{lim}<dynamics damping="0.5"/></joint>')


def _gripper(parent: str, xyz) -> list[str]:
    """A two-finger hand: prismatic fingers (open = upper limit) and a tool
    frame between the fingertips. Turned half a turn, as the bare tool."""
    parts = [_link("hand", _box((0.0, 0.0, 0.02), (0.04, 0.12, 0.04)), 0.4),
             _joint("hand_mount", "fixed", parent, "hand", xyz, yaw=math.pi)]
    for side, sign in (("left", 1), ("right", -1)):
        parts.append(_link(f"finger_{side}", _box((0.0, sign * 0.006, 0.075), (0.02, 0.012, 0.07)), 0.05))
        parts.append(_joint(f"finger_{side}_joint", "prismatic", "hand", f"finger_{side}", (0, sign * 0.005, 0.0),
                            (0, sign, 0), (0.0, 0.04, 40)))
    parts.append(_link("tool", ""))
    parts.append(_joint("tool_mount", "fixed", "hand", "tool", (0, 0, 0.095)))
    return parts


def _box(xyz, size) -> str:
    geom = (f'<origin xyz="{xyz[0]} {xyz[1]} {xyz[2]}" rpy="0 0 0"/>'
            f'<geometry><box size="{size[0]} {size[1]} {size[2]}"/></geometry>')
    return f"<visual>{geom}</visual><collision>{geom}</collision>"


def arm_urdf(name: str, pattern: str, rng: np.random.Generator, fingers: bool) -> str:
    """URDF text of one generated arm."""
    axes = PATTERNS[pattern]
    offsets = _layout(pattern, rng)
    limits = _limits(pattern, axes, rng)
    signs = [1 if pattern == "plain" else int(rng.choice((-1, 1))) for _ in axes]
    parts = [_link("base_link", _cylinder(np.zeros(3), np.array(offsets[0]), 0.07), 3.0)]
    parent = "base_link"
    for i, axis in enumerate(axes):
        child = f"link{i + 1}"
        reach = np.array(offsets[i + 1])
        parts.append(_link(child, _cylinder(np.zeros(3), reach, 0.035)))
        vec = tuple(signs[i] * a for a in _AXES[axis])
        parts.append(_joint(f"joint{i + 1}", "revolute", parent, child, offsets[i], vec, (*limits[i], 200)))
        parent = child
    if fingers:
        parts += _gripper(parent, offsets[-1])
    else:
        cup = _cylinder(np.array([0, 0, -0.04]), np.zeros(3), 0.02)
        # Half a turn about the tool axis: folded over to point down, the
        # tool's x then faces the way the arm reaches, as on real arms.
        parts += [_link("tool", cup, 0.1), _joint("tool_mount", "fixed", parent, "tool", offsets[-1], yaw=math.pi)]
    body = "\n  ".join(parts)
    return f'<?xml version="1.0"?>\n<robot name="{name}">\n  {body}\n</robot>\n'


def generate(count: int, out_dir: str | Path, seed: int = 0) -> list[ZooArm]:
    """``count`` generated arms written into ``out_dir``; the same seed
    writes the same arms. Patterns cycle so every kind is represented; every
    other arm of a kind gets fingers."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kinds = list(PATTERNS)
    arms = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        pattern = kinds[i % len(kinds)]
        fingers = (i // len(kinds)) % 2 == 1
        name = f"zoo{i:03d}_{pattern}" + ("_fingers" if fingers else "")
        path = out / f"{name}.urdf"
        path.write_text(arm_urdf(name, pattern, rng, fingers))
        arms.append(ZooArm(name, str(path), gripper="auto" if fingers else "suction", pattern=pattern))
    return arms


def plain_arm(out_dir: str | Path) -> ZooArm:
    """The issue's plain 6-DoF arm (z base, three y joints, z/y wrist)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "plain_arm.urdf"
    path.write_text(arm_urdf("plain_arm", "plain", np.random.default_rng(7), False))
    return ZooArm("plain_arm", str(path), gripper="suction", pattern="plain")


def zoo(count: int, out_dir: str | Path, seed: int = 0) -> list[ZooArm]:
    """The named arms, then ``count`` generated ones."""
    return [*NAMED_ARMS, *generate(count, out_dir, seed)]
