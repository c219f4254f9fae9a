"""``robot-mirror export DEMOS --format lerobot``: one LeRobot v3.0 dataset per
arm (docs/lerobot.md). The default set reads the written files with pyarrow
alone; the slow test loads them with the real ``LeRobotDataset``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from robot_mirror.config.scenario import load_scenario
from robot_mirror.mirror.synthetic import write_synthetic_demos
from robot_mirror.studies import lerobot_export as lx
from robot_mirror.studies.demos import run_demos
from tests.helpers import ROOT, assert_one_line_error, run_cli

ARMS = ("panda", "iiwa")  # tower_mixed.yaml, in scenario order
VECTORS = {"observation.state": "dof+1", "observation.partner": 24, "observation.turn": 2, "action": "dof+1"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path, dict]:
    """Real demonstrations of a Panda and an iiwa (2 episodes), exported by the CLI."""
    base = tmp_path_factory.mktemp("lerobot")
    scenario = load_scenario(ROOT / "launch" / "tower_mixed.yaml", ["task.blocks=2"])
    meta = run_demos(scenario, episodes=2, out=base / "demos", progress=False)
    proc = run_cli("export", str(base / "demos"), "--format", "lerobot", "--out", str(base / "ds"))
    assert proc.returncode == 0, proc.stderr
    assert "panda: 2 episode(s)" in proc.stdout and "iiwa: 2 episode(s)" in proc.stdout
    return base / "demos", base / "ds", meta


def dofs(meta: dict) -> dict[str, int]:
    assert tuple(r["name"] for r in meta["robots"]) == ARMS
    return {r["name"]: int(r["dof"]) for r in meta["robots"]}


def npz(demos: Path, meta: dict) -> list[dict[str, np.ndarray]]:
    out = []
    for e in meta["episodes"]:
        with np.load(demos / e["file"]) as z:
            out.append({k: z[k] for k in z.files})
    return out


def data_rows(root: Path) -> dict[str, np.ndarray]:
    """Every data file's rows, in file order, as numpy (vectors as (N, n))."""
    tables = [pq.read_table(p) for p in sorted((root / "data").glob("chunk-*/file-*.parquet"))]
    cols = {}
    for name in tables[0].column_names:
        parts = [t.column(name).to_pylist() for t in tables]
        cols[name] = np.asarray([v for part in parts for v in part])
    return cols


def test_info_declares_every_feature_of_each_arm(exported) -> None:
    _, ds, meta = exported
    assert sorted(p.name for p in ds.iterdir()) == ["iiwa", "panda"]
    frames = sum(e["ticks"] for e in meta["episodes"])
    for name, dof in dofs(meta).items():
        info = json.loads((ds / name / "meta" / "info.json").read_text())
        assert info["codebase_version"] == "v3.0" and info["fps"] == meta["control_hz"] == 60
        assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, frames, 1)
        assert info["splits"] == {"train": "0:2"} and info["video_path"] is None
        assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
        assert list(info["features"]) == [*VECTORS, *lx.INDEX_FEATURES]
        for key, n in VECTORS.items():
            ft = info["features"][key]
            want = dof + 1 if n == "dof+1" else n
            assert ft["dtype"] == "float32" and ft["shape"] == [want] and len(ft["names"]) == want, key
        schema = pq.read_schema(ds / name / "data" / "chunk-000" / "file-000.parquet")
        assert str(schema.field("observation.state").type) == f"fixed_size_list<element: float>[{dof + 1}]"
        assert str(schema.field("timestamp").type) == "float" and str(schema.field("index").type) == "int64"


def test_rows_are_the_demonstrations(exported) -> None:
    demos, ds, meta = exported
    eps = npz(demos, meta)
    for r, name in enumerate(ARMS):
        rows = data_rows(ds / name)
        ticks = [e["ticks"] for e in meta["episodes"]]
        assert len(rows["index"]) == sum(ticks)
        assert np.array_equal(rows["index"], np.arange(sum(ticks)))
        assert np.array_equal(rows["episode_index"], np.repeat([0, 1], ticks))
        assert np.array_equal(rows["frame_index"], np.concatenate([np.arange(t) for t in ticks]))
        assert np.all(rows["task_index"] == 0)
        p, o = f"r{r}_", f"r{1 - r}_"
        state = np.concatenate([np.c_[e[p + "q"], e[p + "gripper"]] for e in eps])
        assert np.array_equal(rows["observation.state"], state.astype(np.float32))
        assert np.allclose(rows["timestamp"], np.concatenate([e["t"] for e in eps]), atol=1e-4)
        start = 0
        for t in ticks:  # action = the next tick's state; the episode's last frame holds
            assert np.array_equal(rows["action"][start:start + t - 1], state[start + 1:start + t])
            assert np.array_equal(rows["action"][start + t - 1], state[start + t - 1])
            start += t
        seen = np.concatenate([np.c_[e[p + "seen_partner_keypoints"].reshape(len(e["t"]), 15),
                                     e[p + "seen_partner_ee_pose"], e[p + "seen_partner_gripper"],
                                     e[p + "partner_observed"]] for e in eps])
        assert np.array_equal(rows["observation.partner"], seen.astype(np.float32))
        turn = np.concatenate([np.c_[e[p + "my_turn"], e[o + "my_turn"]] for e in eps])
        assert np.array_equal(rows["observation.turn"], turn.astype(np.float32))
        assert rows["observation.turn"][:, 0].any() and rows["observation.turn"][:, 1].any()


def test_episodes_tasks_and_stats_index_the_rows(exported) -> None:
    _, ds, meta = exported
    for name, dof in dofs(meta).items():
        root = ds / name
        eps = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
        rows = data_rows(root)
        assert [e["episode_index"] for e in eps] == [0, 1]
        assert [e["length"] for e in eps] == [e["ticks"] for e in meta["episodes"]]
        assert [e["tasks"] for e in eps] == [[lx.TASKS["tower"]]] * 2
        for e in eps:
            span = rows["episode_index"][e["dataset_from_index"]:e["dataset_to_index"]]
            assert len(span) == e["length"] and np.all(span == e["episode_index"])
            assert (e["data/chunk_index"], e["data/file_index"]) == (0, 0)
            assert e["stats/action/count"] == [e["length"]]
        assert pq.ParquetFile(root / "data" / "chunk-000" / "file-000.parquet").num_row_groups == 2  # 1 per episode
        tasks = pq.read_table(root / "meta" / "tasks.parquet")
        assert tasks.to_pylist() == [{"task_index": 0, "task": lx.TASKS["tower"]}]
        assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]  # pandas: indexed by task
        stats = json.loads((root / "meta" / "stats.json").read_text())
        assert set(stats) == set(lx.arm_features(dof))
        assert np.allclose(stats["observation.state"]["mean"], rows["observation.state"].mean(0), atol=1e-5)
        assert stats["index"]["max"] == [len(rows["index"]) - 1] and stats["index"]["count"] == [len(rows["index"])]
        assert set(stats["action"]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}


def test_data_files_are_cut_on_episode_boundaries(tmp_path) -> None:
    demos = write_synthetic_demos(tmp_path / "demos", episodes=5, dofs=(4, 6))
    config = lx.LeRobotExportConfig(data_files_size_in_mb=0.001, chunks_size=2)  # ~1 kB: one episode per file
    infos = lx.export_lerobot(demos, tmp_path / "ds", config)
    root = tmp_path / "ds" / "right"
    files = sorted(str(p.relative_to(root / "data")) for p in (root / "data").rglob("*.parquet"))
    assert files == ["chunk-000/file-000.parquet", "chunk-000/file-001.parquet", "chunk-001/file-000.parquet",
                     "chunk-001/file-001.parquet", "chunk-002/file-000.parquet"]
    eps = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    for e in eps:  # each episode's (chunk, file) holds exactly its rows
        path = root / infos["right"]["data_path"].format(chunk_index=e["data/chunk_index"],
                                                         file_index=e["data/file_index"])
        table = pq.read_table(path)
        assert table.column("episode_index").to_pylist() == [e["episode_index"]] * e["length"]
        assert table.column("index").to_pylist() == list(range(e["dataset_from_index"], e["dataset_to_index"]))
    assert infos["left"]["features"]["action"]["shape"] == [5] and infos["right"]["features"]["action"]["shape"] == [7]


def test_bad_input_is_one_line(exported, tmp_path) -> None:
    demos, ds, _ = exported
    out = str(tmp_path / "out")
    assert_one_line_error(run_cli("export", str(tmp_path / "nope"), "--format", "lerobot", "--out", out),
                          "nope", "no such demonstration folder")
    assert_one_line_error(run_cli("export", str(ds / "panda"), "--format", "lerobot", "--out", out),
                          "meta.json", "not a demonstration folder")
    assert_one_line_error(run_cli("export", str(demos), "--format", "rlds", "--out", out), "--format rlds")
    assert_one_line_error(run_cli("export", str(demos), "--format", "lerobot", "--out", str(ds)),
                          "--out", "not empty")
    assert not (tmp_path / "out").exists()


def test_a_changed_or_foreign_folder_is_refused(tmp_path) -> None:
    demos = write_synthetic_demos(tmp_path / "demos", episodes=2)
    meta = json.loads((demos / "meta.json").read_text())
    (demos / "meta.json").write_text(json.dumps({**meta, "format": "robot_mirror.demos/9"}))
    with pytest.raises(lx.RobotMirrorError, match="format 'robot_mirror.demos/9'"):
        lx.export_lerobot(demos, tmp_path / "a")
    (demos / "meta.json").write_text(json.dumps(meta))
    with open(demos / meta["episodes"][1]["file"], "ab") as f:
        f.write(b"x")
    with pytest.raises(lx.RobotMirrorError, match="sha256"):
        lx.export_lerobot(demos, tmp_path / "b")
    arrays = dict(np.load(demos / meta["episodes"][0]["file"]))
    del arrays["r1_my_turn"]
    np.savez(tmp_path / "x.npz", **arrays)
    with pytest.raises(lx.RobotMirrorError, match="missing array r1_my_turn"):
        lx.read_episode(tmp_path / "x.npz", [4, 4], None)
    arrays["r1_my_turn"] = arrays["r0_my_turn"]
    arrays["r0_seen_partner_ee_pose"][3, 1] = np.nan
    np.savez(tmp_path / "x.npz", **arrays)
    with pytest.raises(lx.RobotMirrorError, match="r0_seen_partner_ee_pose holds NaN"):
        lx.read_episode(tmp_path / "x.npz", [4, 4], None)
    with pytest.raises(lx.RobotMirrorError, match="r0_q has .* rows; meta.json says ticks = 3"):
        lx.read_episode(tmp_path / "x.npz", [4, 4], 3)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ---- the real LeRobotDataset (slow; needs an interpreter with lerobot) ------------------------

LEROBOT_PYTHON = os.environ.get("LEROBOT_PYTHON", sys.executable)


def lerobot_python() -> str:
    probe = subprocess.run([LEROBOT_PYTHON, "-c", "import lerobot.datasets.lerobot_dataset"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        pytest.skip(f"lerobot is not importable by {LEROBOT_PYTHON} (lerobot 0.6.1 needs Python >= 3.12 and "
                    "torch < 2.12, so it is not in the test extra): set LEROBOT_PYTHON to a venv's python with "
                    "`pip install 'lerobot[dataset]==0.6.1'` (docs/lerobot.md)")
    return LEROBOT_PYTHON


@pytest.mark.slow
def test_lerobot_dataset_loads_the_export(exported, tmp_path) -> None:
    python = lerobot_python()
    demos, ds, meta = exported
    split = tmp_path / "split"
    lx.export_lerobot(demos, split, lx.LeRobotExportConfig(data_files_size_in_mb=0.05, chunks_size=1))
    roots = [ds / "panda", ds / "iiwa", split / "iiwa"]
    proc = subprocess.run([python, str(ROOT / "tests" / "lerobot_load.py"), *map(str, roots)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    ticks = [e["ticks"] for e in meta["episodes"]]
    for root, dof in zip(roots, (dofs(meta)["panda"], dofs(meta)["iiwa"], dofs(meta)["iiwa"])):
        g = got[str(root)]
        assert (g["episodes"], g["frames"], g["len"], g["fps"]) == (2, sum(ticks), sum(ticks), 60)
        assert g["shapes"]["observation.state"] == [dof + 1] and g["shapes"]["action"] == [dof + 1]
        assert g["shapes"]["observation.partner"] == [24] and g["shapes"]["observation.turn"] == [2]
        assert g["task"] == lx.TASKS["tower"] and g["last"] == {"episode_index": 1, "frame_index": ticks[1] - 1}
        rows = data_rows(root)
        for key in ("observation.state", "action", "episode_index", "frame_index", "index"):
            assert np.allclose(np.asarray(g["rows"][key]), rows[key]), key
        assert g["episode1"] == {"len": ticks[1], "episode_index": 1, "action_chunk": [4, dof + 1],
                                 "is_pad": [False, True, True, True]}
    assert len(list((split / "iiwa" / "data").rglob("*.parquet"))) > 1
