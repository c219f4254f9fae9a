"""Load exported datasets with the real ``LeRobotDataset`` and print what it yields, as JSON.

Run by tests/test_lerobot_export.py in an interpreter that has lerobot
(``$LEROBOT_PYTHON``, else the test's own): lerobot 0.6.1 needs Python >= 3.12
and torch < 2.12, so it usually lives in a venv of its own, beside the
project's. Imports nothing of robot_mirror.

    python tests/lerobot_load.py ROOT [ROOT ...]
"""

from __future__ import annotations

import json
import sys
import warnings


def describe(root: str) -> dict:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("robot_mirror/export", root=root)
    first, last = ds[0], ds[len(ds) - 1]
    rows = {k: [ds[i][k].tolist() for i in range(len(ds))] for k in ("observation.state", "action", "episode_index",
                                                                       "frame_index", "index")}
    shapes = {k: list(v.shape) for k, v in first.items() if hasattr(v, "shape")}
    one = LeRobotDataset("robot_mirror/export", root=root, episodes=[1],
                         delta_timestamps={"action": [k / ds.fps for k in range(4)]})
    chunk = one[len(one) - 1]
    return {"episodes": ds.num_episodes, "frames": ds.num_frames, "len": len(ds), "fps": ds.fps,
            "robot_type": ds.meta.robot_type, "shapes": shapes, "task": first["task"],
            "last": {"episode_index": int(last["episode_index"]), "frame_index": int(last["frame_index"])},
            "rows": rows, "stats_mean_state": ds.meta.stats["observation.state"]["mean"].tolist(),
            "episode1": {"len": len(one), "episode_index": int(chunk["episode_index"]),
                         "action_chunk": list(chunk["action"].shape), "is_pad": chunk["action_is_pad"].tolist()}}


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    print(json.dumps({root: describe(root) for root in sys.argv[1:]}))
