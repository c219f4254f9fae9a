"""``robot-mirror demos``: the recorded format (robot_mirror.demos/2, see
docs/demos.md), written exactly, meta.json last; bad input in one line."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from robot_mirror.config.scenario import load_scenario
from robot_mirror.mirror.dataset import SEGMENTS
from robot_mirror.studies import demos
from tests.conftest import ROOT, assert_one_line_error, run_cli

META_KEYS = {"format", "scenario", "scenario_file", "task", "control_hz", "robots", "segments", "n_targets",
             "block_size", "tower_xy", "perception", "motor_noise", "episodes", "created", "sha256"}
PER_ROBOT = {  # key: (dtype, shape after T; "dof" = the robot's dof)
    "q": (np.float32, ("dof",)), "dq": (np.float32, ("dof",)), "gripper": (np.float32, ()),
    "ee_pose": (np.float32, (7,)), "own_keypoints": (np.float32, (5, 3)), "own_ee_pose": (np.float32, (7,)),
    "seen_partner_keypoints": (np.float32, (5, 3)), "seen_partner_ee_pose": (np.float32, (7,)),
    "seen_partner_gripper": (np.float32, ()), "partner_observed": (np.bool_, ()),
    "segment": (np.int8, ()), "target": (np.int8, ()), "block": (np.int8, ()),
    "my_turn": (np.bool_, ()), "partner_turn_end_in": (np.float32, ()),
    # the motor readout's teacher and what its input is rebuilt from (robot_mirror.mirror.motor)
    "blocks": (np.float32, ("blocks", 7)), "placed": (np.bool_, ("blocks",)), "tower_count": (np.int8, ()),
    "holding": (np.int8, ()), "motor_block": (np.int8, ()), "motor_state": (np.int8, ()),
    "motor_waypoint": (np.float32, (4,)), "motor_speed": (np.float32, ()), "motor_grip": (np.float32, ()),
    "motor_place": (np.float32, (3,)),
}


def check_folder(out, n_episodes: int) -> tuple[dict, list]:
    meta = json.loads((out / "meta.json").read_text())
    assert set(meta) == META_KEYS
    assert meta["format"] == "robot_mirror.demos/2"
    assert meta["segments"] == ["wait", "reach", "grasp", "carry", "place", "retreat"]
    assert [set(r) for r in meta["robots"]] == [{"name", "urdf", "dof", "gripper", "base", "yaw_deg"}] * 2
    assert set(meta["perception"]) == {"noise_std", "delay_ticks", "drop_rate"}
    assert len(meta["episodes"]) == n_episodes
    h = hashlib.sha256()
    for e in meta["episodes"]:
        assert set(e) == {"file", "seed", "ticks", "success"}
        h.update((out / e["file"]).read_bytes())
    assert meta["sha256"] == h.hexdigest()
    meta_time = (out / "meta.json").stat().st_mtime_ns
    assert all((out / e["file"]).stat().st_mtime_ns <= meta_time for e in meta["episodes"])
    assert not list(out.glob("*.tmp"))
    episodes = []
    for e in meta["episodes"]:
        with np.load(out / e["file"]) as z:
            data = {k: z[k] for k in z.files}
        T = e["ticks"]
        expected = {"t"} | {f"r{i}_{k}" for i in range(2) for k in PER_ROBOT}
        assert set(data) == expected
        assert data["t"].dtype == np.float32 and data["t"].shape == (T,)
        assert np.all(np.diff(data["t"]) > 0)
        for i, robot in enumerate(meta["robots"]):
            for key, (dtype, shape) in PER_ROBOT.items():
                arr = data[f"r{i}_{key}"]
                sizes = {"dof": robot["dof"], "blocks": data["r0_blocks"].shape[1]}
                want = (T, *(sizes.get(s, s) for s in shape))
                assert arr.dtype == dtype and arr.shape == want, (key, arr.dtype, arr.shape)
            p = f"r{i}_"
            assert set(np.unique(data[p + "segment"])) <= set(range(len(meta["segments"])))
            assert data[p + "target"].min() >= -1 and data[p + "target"].max() < meta["n_targets"]
            assert data[p + "block"].min() >= -1
            # the planner's command is there exactly while a pick-and-place is under way
            state, waypoint = data[p + "motor_state"], data[p + "motor_waypoint"]
            assert set(np.unique(state)) <= {-1, 0, 1} and (state == 0).any()
            assert np.all(np.isfinite(waypoint[state == 0])) and np.all(np.isnan(waypoint[state != 0]))
            assert np.all(data[p + "motor_block"][state >= 0] >= 0)
            idle = data[p + "segment"] == 0
            assert np.all(data[p + "target"][idle] == -1) and np.all(data[p + "block"][idle] == -1)
            assert np.all(data[p + "target"][~idle] >= 0)
            # own keypoints in the own base frame: the first one is the base itself
            assert np.allclose(data[p + "own_keypoints"][:, 0], 0.0, atol=1e-5)
            # finite exactly when the partner holds the turn, then positive and counting down
            partner_turn = data[f"r{1 - i}_my_turn"]
            pte = data[p + "partner_turn_end_in"]
            assert np.array_equal(np.isfinite(pte), partner_turn)
            assert partner_turn.any() and np.all(pte[partner_turn] > 0)
            for k in np.flatnonzero(partner_turn[:-1] & partner_turn[1:]):
                if pte[k] > 1.5 / meta["control_hz"]:  # not the last tick of a turn
                    assert pte[k] - pte[k + 1] == pytest.approx(1 / meta["control_hz"], abs=1e-4)
        # a finished pick-and-place hands over to the way home (the last one may end the episode first)
        assert any((data[f"r{i}_motor_state"] == 1).any() for i in range(2))
        assert not np.any(data["r0_my_turn"] & data["r1_my_turn"])
        assert np.all(data["r0_segment"] >= 0)
        episodes.append(data)
    return meta, episodes


def test_demos_cli_writes_the_format(tmp_path) -> None:
    out = tmp_path / "demos"
    proc = run_cli("demos", "launch/imitation.yaml", "--episodes", "1", "--out", str(out),
                   "--set", "task.rounds=2", "--seed", "4")
    assert proc.returncode == 0, proc.stderr
    meta, [ep] = check_folder(out, 1)
    assert meta["task"] == "imitation" and meta["n_targets"] == 4 and meta["control_hz"] == 60
    assert meta["episodes"][0]["seed"] == 4 and meta["episodes"][0]["success"]
    assert [r["name"] for r in meta["robots"]] == ["left", "right"]
    # each arm placed its block once per round: as leader and as follower
    # (counted by "place" segments: a missed grasp is retried from "reach")
    place = SEGMENTS.index("place")
    for i in range(2):
        seg = ep[f"r{i}_segment"]
        starts = np.flatnonzero((seg[1:] == place) & (seg[:-1] != place)) + 1
        assert len(starts) + (seg[0] == place) == 2
        # its own block only (a synchronous follower is never idle: it pre-positions during the lead)
        assert i in set(np.unique(ep[f"r{i}_block"])) <= {-1, i}


def test_demos_tower_targets_are_levels(tmp_path) -> None:
    sc = load_scenario(ROOT / "launch/tower.yaml", ["task.blocks=2"])
    meta = demos.run_demos(sc, episodes=1, out=tmp_path / "d", progress=False)
    assert meta["n_targets"] == 2 and meta["task"] == "tower"
    _, [ep] = check_folder(tmp_path / "d", 1)
    assert set(np.unique(ep["r0_target"])) == {-1, 0} and set(np.unique(ep["r1_target"])) == {-1, 1}


def test_interrupted_run_never_looks_complete(tmp_path, monkeypatch) -> None:
    calls = []

    def fake(env, policies, seed):
        calls.append(seed)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {"t": np.zeros(3, np.float32)}, 3, True

    monkeypatch.setattr(demos, "record_episode", fake)
    sc = load_scenario(ROOT / "launch/tower.yaml", ["task.blocks=2"])
    with pytest.raises(KeyboardInterrupt):
        demos.run_demos(sc, episodes=3, out=tmp_path / "d", progress=False)
    assert (tmp_path / "d/episode_0000.npz").exists()
    assert not (tmp_path / "d/meta.json").exists() and not list((tmp_path / "d").glob("*.tmp"))


def test_partner_turn_end_in() -> None:
    # partner holds ticks 2..4 (ends at 5), and 5..6 again after an immediate re-grant (ends at 7),
    # and from 8 until the episode ends at tick 10 (censored)
    holds = np.array([0, 0, 1, 1, 1, 1, 1, 0, 1, 1], bool)
    out = demos.partner_turn_end_in(holds, [5, 7], final_tick=10, control_hz=10)
    want = [np.nan, np.nan, 0.3, 0.2, 0.1, 0.2, 0.1, np.nan, 0.2, 0.1]
    np.testing.assert_allclose(out, np.array(want, np.float32), rtol=1e-6)


def test_demos_bad_input_is_one_line(tmp_path) -> None:
    assert_one_line_error(run_cli("demos", "launch/nope.yaml", "--episodes", "1", "--out", str(tmp_path / "a")),
                          "nope.yaml", "not found")
    assert_one_line_error(run_cli("demos", "launch/imitation.yaml", "--episodes", "0", "--out",
                                  str(tmp_path / "b")), "--episodes 0")
    (tmp_path / "c").mkdir()
    (tmp_path / "c/meta.json").write_text("{}")
    assert_one_line_error(run_cli("demos", "launch/imitation.yaml", "--episodes", "1", "--out",
                                  str(tmp_path / "c")), "not empty")
    assert_one_line_error(run_cli("demos", "launch/imitation.yaml", "--episodes", "1", "--out", str(tmp_path / "e"),
                                  "--set", "task.slots=99"), "task.slots")


def test_motor_noise_perturbs_the_paths_reproducibly_and_the_teacher_still_succeeds(tmp_path) -> None:
    sc = lambda: load_scenario(ROOT / "launch/tower.yaml", ["task.blocks=2"])  # noqa: E731
    plain = demos.run_demos(sc(), episodes=1, out=tmp_path / "plain", progress=False)
    noisy = [demos.run_demos(sc(), episodes=1, out=tmp_path / f"noisy{k}", progress=False, motor_noise=0.01)
             for k in range(2)]
    assert plain["motor_noise"] == 0.0 and noisy[0]["motor_noise"] == 0.01
    assert noisy[0]["episodes"][0]["success"] and noisy[0]["sha256"] == noisy[1]["sha256"]  # seeded
    a, b = (np.load(tmp_path / d / "episode_0000.npz") for d in ("plain", "noisy0"))
    n = min(len(a["r0_ee_pose"]), len(b["r0_ee_pose"]))
    gap = np.linalg.norm(a["r0_ee_pose"][:n, :3] - b["r0_ee_pose"][:n, :3], axis=1)
    assert gap.max() > 0.01  # the path left the planner's own


def test_motor_noise_bad_values_are_one_line(tmp_path) -> None:
    for value in ("-0.01", "nan", "0.5"):
        assert_one_line_error(run_cli("demos", "launch/tower.yaml", "--episodes", "1", "--out",
                                      str(tmp_path / value), "--motor-noise", value), f"--motor-noise {value}")
