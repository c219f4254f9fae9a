"""The network's per-tick input: a body, described the same way whoever it is.

Both streams read one *body description* (:func:`body_features`): a body's
keypoints and tool pose in the observer's base frame, its gripper closure and
whether it was seen this tick. The self stream describes the arm's own body
(its own keypoints in its own base frame, as "seeing one's own hand" in the
MNS model); the observed stream describes the partner as perceived. One input
layer reads both, so nothing in the architecture tells the core which body it
is looking at: whatever separates "me" from "my partner" has to be learned,
and whatever they share can be.

The tool orientation enters as the first two columns of its rotation matrix
(the continuous 6D representation of Zhou et al., CVPR 2019): a quaternion's
sign is arbitrary (q and -q are one pose), and the sign PyBullet returns flips
between samples of the same pose, which a network would read as a jump.
"""

from __future__ import annotations

import numpy as np

BODY_DIM = 26  # keypoints 5x3 + tool position 3 + tool rotation 6D + gripper 1 + seen flag 1
KEYPOINTS = 5


def rotation_6d(quat_xyzw: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) xyzw -> the first two rotation-matrix columns (..., 6).
    q and -q give the same numbers; NaN stays NaN."""
    q = np.asarray(quat_xyzw, np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        x, y, z, w = np.moveaxis(q / norm, -1, 0)
    col0 = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], axis=-1)
    col1 = np.stack([2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)], axis=-1)
    return np.concatenate([col0, col1], axis=-1).astype(np.float32)


def body_features(keypoints: np.ndarray, ee_pose: np.ndarray, gripper: np.ndarray,
                  seen: np.ndarray) -> np.ndarray:
    """A body in the observer's base frame: keypoints (…, 5, 3), tool pose
    (…, 7, xyzw), gripper (…), seen flag (…) -> (…, 26) float32. Leading axes
    are kept (one tick or a whole episode); NaN is kept (the model zeroes it)."""
    kp = np.asarray(keypoints, np.float32)
    kp = kp.reshape(*kp.shape[:-2], kp.shape[-2] * kp.shape[-1])
    pose = np.asarray(ee_pose, np.float32)
    return np.concatenate([kp, pose[..., :3], rotation_6d(pose[..., 3:]),
                           np.asarray(gripper, np.float32)[..., None],
                           np.asarray(seen, np.float32)[..., None]], axis=-1)


def robot_type_of(urdf: str) -> str:
    """A readable name of an arm's type, for reports (``franka_panda/panda.urdf``):
    the URDF's last two path parts. The network itself has no per-type parts."""
    parts = [p for p in str(urdf).replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:]) if parts else str(urdf)
