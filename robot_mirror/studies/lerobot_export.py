"""Export a demonstration folder as LeRobot datasets (``robot-mirror export``).

Why: LeRobot is the common format of robot-learning data; a demonstration
folder exported here loads with ``lerobot.datasets.lerobot_dataset.LeRobotDataset``
and its policies and tools. The layout (LeRobot codebase version ``v3.0``, the
format of lerobot 0.4 to 0.6.1) is written directly with pyarrow, without
importing lerobot: lerobot 0.6.1 needs Python >= 3.12 and torch < 2.12, which
this project (Python 3.10+, torch 2.13.0) cannot take as a dependency.

One dataset per arm, ``OUT/<robot name>/``, because each arm is one agent with
its own joint count (a Panda and an iiwa differ): ``observation.state`` (own
joints and gripper), ``observation.partner`` (the partner as this arm saw it,
in its own base frame), ``observation.turn`` (who holds the turn) and
``action`` (own joints and gripper at the next tick: the demonstrations keep
what the arm did, not its raw commands, which may be tool-pose targets).
Files and columns: docs/lerobot.md.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robot_mirror.errors import RobotMirrorError
from robot_mirror.files import write_atomic
from robot_mirror.mirror.dataset import episodes_sha256, load_meta
from robot_mirror.mirror.features import robot_type_of

CODEBASE_VERSION = "v3.0"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)  # LeRobot's DEFAULT_QUANTILES: stats keys q01 ... q99
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")  # LeRobot's DEFAULT_FEATURES
PARTNER_NAMES = ([f"kp{i}_{a}" for i in range(5) for a in "xyz"] + [f"ee_{a}" for a in ("x", "y", "z", "qx", "qy",
                                                                                         "qz", "qw")]
                 + ["gripper", "observed"])
TURN_NAMES = ["my_turn", "partner_turn"]
TASKS = {  # the task string of every episode, by meta.json's `task`
    "tower": "Build a tower with the partner arm, taking turns: place one block on the tower in your turn, "
             "keep clear while the partner places its block.",
    "imitation": "Play the mirror game with the partner arm, taking turns: when leading, place your block in a "
                 "slot; when following, place yours in the same slot on your side as the leader did.",
}
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class LeRobotExportConfig:
    """How the LeRobot files are cut. The defaults are LeRobot's own
    (``DEFAULT_CHUNK_SIZE``, ``DEFAULT_DATA_FILE_SIZE_IN_MB``); a smaller
    ``data_files_size_in_mb`` spreads the frames over several data files."""

    data_files_size_in_mb: float = 100
    chunks_size: int = 1000
    video_files_size_in_mb: int = 200

    def __post_init__(self) -> None:
        if not self.data_files_size_in_mb > 0 or self.chunks_size < 1:
            raise RobotMirrorError(f"export: data_files_size_in_mb {self.data_files_size_in_mb} and chunks_size "
                                   f"{self.chunks_size} must be positive")


def task_string(kind: str) -> str:
    return TASKS.get(kind, f"Do the {kind} task with the partner arm, taking turns.")


def arm_features(dof: int) -> dict[str, dict[str, Any]]:
    """LeRobot feature declarations (info.json ``features``) of one arm with ``dof`` joints."""
    state = [f"joint_{j}" for j in range(dof)] + ["gripper"]
    ours = {"observation.state": state, "observation.partner": PARTNER_NAMES, "observation.turn": TURN_NAMES,
            "action": state}
    features = {k: {"dtype": "float32", "shape": [len(n)], "names": list(n)} for k, n in ours.items()}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for key in INDEX_FEATURES[1:]:
        features[key] = {"dtype": "int64", "shape": [1], "names": None}
    return features


def arm_frames(arrays: dict[str, np.ndarray], r: int) -> dict[str, np.ndarray]:
    """The per-frame vectors of robot ``r`` (0/1) from one episode's NPZ arrays."""
    p, o = f"r{r}_", f"r{1 - r}_"
    T = arrays[p + "q"].shape[0]
    state = np.concatenate([arrays[p + "q"], arrays[p + "gripper"][:, None]], axis=1).astype(np.float32)
    partner = np.concatenate([arrays[p + "seen_partner_keypoints"].reshape(T, 15), arrays[p + "seen_partner_ee_pose"],
                              arrays[p + "seen_partner_gripper"][:, None], arrays[p + "partner_observed"][:, None]],
                             axis=1).astype(np.float32)
    turn = np.stack([arrays[p + "my_turn"], arrays[o + "my_turn"]], axis=1).astype(np.float32)
    action = np.concatenate([state[1:], state[-1:]], axis=0)  # the next tick's state; the last frame holds
    return {"observation.state": state, "observation.partner": partner, "observation.turn": turn, "action": action}


NPZ_SHAPES = {"q": ("dof",), "gripper": (), "seen_partner_keypoints": (5, 3), "seen_partner_ee_pose": (7,),
              "seen_partner_gripper": (), "partner_observed": (), "my_turn": ()}


def read_episode(path: Path, dofs: list[int], ticks: int | None) -> dict[str, np.ndarray]:
    """One episode's arrays, every one checked; a problem is one line naming file and array."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise RobotMirrorError(f"{path}: cannot be read as .npz ({type(exc).__name__}: {exc})") from None
    if "r0_q" not in arrays:
        raise RobotMirrorError(f"{path}: missing array r0_q")
    T = arrays["r0_q"].shape[0]
    if T < 1 or (ticks is not None and T != ticks):
        raise RobotMirrorError(f"{path}: r0_q has {T} rows; meta.json says ticks = {ticks}")
    for r in (0, 1):
        for key, tail in NPZ_SHAPES.items():
            name, want = f"r{r}_{key}", (T,) + tuple(dofs[r] if d == "dof" else d for d in tail)
            if name not in arrays:
                raise RobotMirrorError(f"{path}: missing array {name}")
            if arrays[name].shape != want:
                raise RobotMirrorError(f"{path}: {name} has shape {arrays[name].shape}, expected {want}")
            if not np.isfinite(arrays[name].astype(np.float64)).all():  # would poison LeRobot's stats
                raise RobotMirrorError(f"{path}: {name} holds NaN or infinite values")
    return arrays


def feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's per-feature statistics over frames (axis 0): min, max, mean,
    std, count and the quantiles q01..q99 (exact here, not from histograms)."""
    v = values.reshape(len(values), -1).astype(np.float64)
    stats = {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0),
             "count": np.array([len(v)], dtype=np.int64)}
    for q, value in zip(QUANTILES, np.quantile(v, QUANTILES, axis=0)):
        stats[f"q{round(q * 100):02d}"] = value
    return stats


def frame_columns(frames: dict[str, np.ndarray], episode: int, start: int, fps: int) -> dict[str, np.ndarray]:
    """Every column of one episode's rows: the arm's vectors and LeRobot's index columns."""
    T = len(frames["action"])
    k = np.arange(T, dtype=np.int64)
    return {**frames, "timestamp": (k / fps).astype(np.float32), "frame_index": k,
            "episode_index": np.full(T, episode, np.int64), "index": start + k,
            "task_index": np.zeros(T, np.int64)}


def hf_features(features: dict[str, dict]) -> dict[str, Any]:
    """The ``huggingface`` schema metadata ``datasets`` writes into each data file."""
    out: dict[str, Any] = {}
    for key, ft in features.items():
        value = {"dtype": ft["dtype"], "_type": "Value"}
        out[key] = value if ft["shape"] == [1] else {"feature": value, "length": ft["shape"][0], "_type": "List"}
    return {"info": {"features": out}}


def data_table(columns: dict[str, np.ndarray], features: dict[str, dict]) -> pa.Table:
    arrays = []
    for key, ft in features.items():
        col = columns[key]
        if ft["shape"] == [1]:
            arrays.append(pa.array(col))
        else:
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(col.reshape(-1)), ft["shape"][0]))
    schema = pa.schema([pa.field(k, a.type) for k, a in zip(features, arrays)],
                       metadata={"huggingface": json.dumps(hf_features(features))})
    return pa.Table.from_arrays(arrays, schema=schema)


def next_file(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    """LeRobot's ``update_chunk_file_indices``: files 0..chunks_size-1 per chunk."""
    return (chunk + 1, 0) if file == chunks_size - 1 else (chunk, file + 1)


def write_parquet(path: Path, tables: list[pa.Table]) -> None:
    """One row group per table (per episode, as LeRobot writes), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(str(tmp), tables[0].schema, compression="snappy") as writer:
            for table in tables:
                writer.write_table(table)

    write_atomic(path, write)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=4) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text))


def write_data(root: Path, tables: list[pa.Table], config: LeRobotExportConfig) -> list[tuple[int, int]]:
    """Data files, cut at LeRobot's size limit on episode boundaries; returns
    each episode's (chunk, file)."""
    limit = config.data_files_size_in_mb * 1024 ** 2
    where, groups, chunk, file, size = [], [[]], 0, 0, 0
    for table in tables:
        if groups[-1] and size + table.nbytes >= limit:
            write_parquet(root / DATA_PATH.format(chunk_index=chunk, file_index=file), groups[-1])
            chunk, file = next_file(chunk, file, config.chunks_size)
            groups.append([])
            size = 0
        groups[-1].append(table)
        size += table.nbytes
        where.append((chunk, file))
    write_parquet(root / DATA_PATH.format(chunk_index=chunk, file_index=file), groups[-1])
    return where


def episodes_table(rows: list[dict[str, Any]]) -> pa.Table:
    """``meta/episodes`` rows; stats as lists of doubles (counts int64), as LeRobot writes them."""
    columns: dict[str, pa.Array] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if key == "tasks":
            columns[key] = pa.array(values, pa.list_(pa.string()))
        elif key.startswith("stats/"):
            kind = pa.int64() if key.endswith("/count") else pa.float64()
            columns[key] = pa.array([np.asarray(v).tolist() for v in values], pa.list_(kind))
        else:
            columns[key] = pa.array(values, pa.int64())
    return pa.table(columns)


def tasks_table(tasks: list[str]) -> pa.Table:
    """``meta/tasks.parquet``: LeRobot reads it with pandas, indexed by the task
    string; the ``pandas`` metadata (pandas' documented parquet metadata)
    makes ``task`` that index without pandas being needed to write it."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
                     "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                     "metadata": None}],
        "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.0.0",
    }
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})


def write_arm(root: Path, episodes: list[dict[str, np.ndarray]], robot: dict[str, Any], task: str, fps: int,
              config: LeRobotExportConfig) -> dict[str, Any]:
    """One arm's LeRobot dataset in ``root``; info.json last, so a folder
    without it is an interrupted export. Returns info.json's content."""
    features = arm_features(int(robot["dof"]))
    tables, rows, parts, start = [], [], [], 0
    for i, frames in enumerate(episodes):
        columns = frame_columns(frames, i, start, fps)
        parts.append(columns)
        tables.append(data_table(columns, features))
        T = len(frames["action"])
        row = {"episode_index": i, "tasks": [task], "length": T, "data/chunk_index": 0, "data/file_index": 0,
               "dataset_from_index": start, "dataset_to_index": start + T}
        row.update({f"stats/{k}/{s}": v for k in features for s, v in feature_stats(columns[k]).items()})
        rows.append({**row, "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        start += T
    for row, (chunk, file) in zip(rows, write_data(root, tables, config)):
        row["data/chunk_index"], row["data/file_index"] = chunk, file
    write_parquet(root / EPISODES_PATH.format(chunk_index=0, file_index=0), [episodes_table(rows)])
    write_parquet(root / "meta/tasks.parquet", [tasks_table([task])])
    stats = {k: {s: v.tolist() for s, v in feature_stats(np.concatenate([c[k] for c in parts])).items()}
             for k in features}
    write_json(root / "meta/stats.json", stats)
    info = {"codebase_version": CODEBASE_VERSION, "fps": fps, "features": features,
            "total_episodes": len(episodes), "total_frames": start, "total_tasks": 1,
            "chunks_size": config.chunks_size, "data_files_size_in_mb": config.data_files_size_in_mb,
            "video_files_size_in_mb": config.video_files_size_in_mb, "data_path": DATA_PATH, "video_path": None,
            "robot_type": robot_type_of(str(robot["urdf"])), "splits": {"train": f"0:{len(episodes)}"}}
    write_json(root / "meta/info.json", info)
    return info


def arm_folders(robots: list[dict[str, Any]]) -> list[str]:
    """``OUT/<robot name>``; ``r0``/``r1`` when a name is not a safe folder name or both are the same."""
    names = [str(r.get("name", "")) for r in robots]
    if len(set(names)) == len(names) and all(SAFE_NAME.match(n) for n in names):
        return names
    return [f"r{i}" for i in range(len(robots))]


def export_lerobot(demos: str | Path, out: str | Path, config: LeRobotExportConfig | None = None) -> dict[str, Any]:
    """Write one LeRobot dataset per arm of demonstration folder ``demos`` under
    ``out`` (new or empty). Returns ``{folder: info.json content}``."""
    config = config or LeRobotExportConfig()
    demos, out = Path(demos), Path(out)
    meta = load_meta(demos)
    files = [e["file"] for e in meta["episodes"]]
    for name in files:
        if not (demos / name).is_file():
            raise RobotMirrorError(f"{demos / name}: missing (listed in meta.json)")
    if episodes_sha256(demos, files) != meta["sha256"]:
        raise RobotMirrorError(f"{demos / 'meta.json'}: sha256 does not match the episode files "
                               "(files changed since `robot-mirror demos` wrote them)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RobotMirrorError(f"--out {out}: exists and is not an empty folder; give a new or empty folder")
    dofs = [int(r["dof"]) for r in meta["robots"]]
    frames: list[list[dict[str, np.ndarray]]] = [[], []]
    for e in meta["episodes"]:
        arrays = read_episode(demos / e["file"], dofs, e.get("ticks"))
        for r in (0, 1):
            frames[r].append(arm_frames(arrays, r))
    task, fps = task_string(str(meta.get("task", "tower"))), int(meta["control_hz"])
    return {folder: write_arm(out / folder, frames[r], meta["robots"][r], task, fps, config)
            for r, folder in enumerate(arm_folders(meta["robots"]))}
