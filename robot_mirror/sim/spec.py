"""Plain description of one robot, free of pybullet so that any process can
carry it (the same spec builds the simulated arm and the policies' twins)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from robot_mirror.geometry import Frame, quat_from_euler


@dataclass
class RobotSpec:
    name: str
    urdf: str
    base_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    base_yaw: float = 0.0  # radians
    gripper: str = "auto"
    ee_link: str | None = None
    home_q: list[float] | None = None
    urdf_base_dir: Path | None = field(default=None, compare=False)

    def base_orientation(self) -> tuple[float, float, float, float]:
        return tuple(float(v) for v in quat_from_euler(0.0, 0.0, self.base_yaw))  # type: ignore[return-value]

    def base_frame(self) -> Frame:
        return Frame(self.base_position, self.base_yaw)

    @classmethod
    def from_config(cls, cfg, base_dir: Path | None = None) -> "RobotSpec":
        """From a scenario's ``RobotConfig``."""
        return cls(
            name=cfg.name, urdf=cfg.urdf, base_position=tuple(cfg.base),
            base_yaw=math.radians(cfg.yaw_deg), gripper=cfg.gripper, ee_link=cfg.ee_link,
            home_q=list(cfg.home_q) if cfg.home_q is not None else None, urdf_base_dir=base_dir,
        )
