"""The network's per-tick inputs, computed the same way offline and online.

:func:`self_features` and :func:`other_features` turn one tick of a robot's
observation (or whole recorded arrays, leading axes kept) into the self- and
observed-stream inputs; :func:`robot_type_of` names the robot type whose self
adapter reads them.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np


def robot_type_of(urdf: str) -> str:
    """The key of a robot type: the URDF's last two path parts, e.g.
    ``franka_panda/panda.urdf`` (a pybullet_data name stays as it is; a local
    path ``/x/y/pkg_arm/arm.urdf`` becomes ``pkg_arm/arm.urdf``)."""
    parts = PurePosixPath(str(urdf).replace("\\", "/")).parts
    parts = [p for p in parts if p not in ("/", "")]
    return "/".join(parts[-2:]) if parts else str(urdf)


def self_features(q: np.ndarray, dq: np.ndarray, gripper: np.ndarray) -> np.ndarray:
    """Own-stream input: q, dq, gripper -> (..., 2*dof+1) float32."""
    g = np.asarray(gripper, np.float32)[..., None]
    return np.concatenate([np.asarray(q, np.float32), np.asarray(dq, np.float32), g], axis=-1)


def other_features(keypoints: np.ndarray, ee_pose: np.ndarray, gripper: np.ndarray,
                   observed: np.ndarray) -> np.ndarray:
    """Observed-stream input: seen keypoints (…,5,3), seen ee pose (…,7), seen
    gripper, observed flag -> (..., 24) float32 (NaN kept; the model zeroes it)."""
    kp = np.asarray(keypoints, np.float32)
    kp = kp.reshape(*kp.shape[:-2], kp.shape[-2] * kp.shape[-1])
    return np.concatenate([kp, np.asarray(ee_pose, np.float32), np.asarray(gripper, np.float32)[..., None],
                           np.asarray(observed, np.float32)[..., None]], axis=-1)
