"""Scenario files: loading, overrides, and one clear line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from robot_mirror.errors import ConfigError
from robot_mirror.config.scenario import load_scenario
from tests.conftest import ROOT, assert_one_line_error, run_cli

SHIPPED = sorted((ROOT / "launch").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenarios_load(path: Path) -> None:
    sc = load_scenario(path)
    assert len(sc.robots) == 2
    assert sc.physics_hz % sc.control_hz == 0


def test_overrides_by_dotted_path_and_robot_name() -> None:
    sc = load_scenario(ROOT / "launch/tower.yaml",
                       ["task.blocks=8", "seed=3", "robots.right.urdf=kuka_iiwa/model.urdf",
                        "robots.left.base=[-0.5, 0.1, 0]"])
    assert sc.task.blocks == 8 and sc.seed == 3
    assert sc.robot("right").urdf == "kuka_iiwa/model.urdf"
    assert sc.robot("left").base == [-0.5, 0.1, 0.0]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


GOOD = (ROOT / "launch/tower.yaml").read_text()

BAD_CASES = {
    "broken yaml": (GOOD.replace("robots:", "robots: [", 1), ["invalid YAML", "line"]),
    "unknown field": (GOOD.replace("seed: 0", "seed: 0\nsede: 3"), ["sede", "unknown field"]),
    "unknown robot field": (GOOD.replace("gripper: auto", "grip: auto", 1), ["robots[0].grip", "unknown field"]),
    "unknown task": (GOOD.replace("kind: tower", "kind: juggling"), ["task.kind", "juggling", "tower"]),
    "out of range": (GOOD.replace("blocks: 6", "blocks: 50"), ["task.blocks", "50", "1..10"]),
    "wrong type": (GOOD.replace("blocks: 6", "blocks: six"), ["task.blocks", "six", "integer"]),
    "bad gripper": (GOOD.replace("gripper: auto", "gripper: magnet", 1), ["gripper", "magnet", "suction"]),
    "one robot": (GOOD[: GOOD.index("  - name: right")] + "task:\n  kind: tower\n", ["robots", "exactly two"]),
    "rates": (GOOD.replace("control_hz: 60", "control_hz: 70"), ["control_hz", "70", "divide"]),
    "empty": ("", ["empty"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_scenario_is_one_clear_error(tmp_path: Path, case: str) -> None:
    text, needles = BAD_CASES[case]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    message = str(err.value)
    assert "\n" not in message and str(path.name) in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_bad_override_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="no robot named 'middle'"):
        load_scenario(ROOT / "launch/tower.yaml", ["robots.middle.urdf=x.urdf"])
    with pytest.raises(ConfigError, match="task.blocks"):
        load_scenario(ROOT / "launch/tower.yaml", ["task.blocks=0"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_scenario(ROOT / "launch/tower.yaml", ["task.blocks"])


# --- through the real command line: one line on stderr, exit 2, no traceback ---

def test_cli_missing_scenario_file(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("launch", str(tmp_path / "nope.yaml")), "nope.yaml", "not found")


def test_cli_bad_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD_CASES["broken yaml"][0])
    assert_one_line_error(run_cli("launch", str(path), "--out", str(tmp_path / "run")), "invalid YAML")
    assert not (tmp_path / "run").exists(), "a rejected scenario must not leave a run folder"


def test_cli_missing_urdf(tmp_path: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", "robots.left.urdf=no/such/arm.urdf",
                   "--out", str(tmp_path / "run"))
    assert_one_line_error(proc, "no/such/arm.urdf", "not found")


def test_cli_urdf_without_movable_joints(tmp_path: Path, fixtures: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", f"robots.left.urdf={fixtures / 'no_joints.urdf'}",
                   "--out", str(tmp_path / "run"))
    assert_one_line_error(proc, "no_joints.urdf", "no movable joints")


def test_cli_malformed_urdf(tmp_path: Path, fixtures: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", f"robots.left.urdf={fixtures / 'malformed.urdf'}",
                   "--out", str(tmp_path / "run"))
    assert_one_line_error(proc, "malformed.urdf", "malformed XML")


def test_cli_unreachable_base_pose(tmp_path: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", "robots.left.base=[-1.6, 0, 0]",
                   "--out", str(tmp_path / "run"))
    assert_one_line_error(proc, "robot 'left'", "cannot reach")


def test_cli_out_of_range_override(tmp_path: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", "task.blocks=99")
    assert_one_line_error(proc, "task.blocks", "99", "1..10")


def test_cli_unknown_task(tmp_path: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", "task.kind=juggling")
    assert_one_line_error(proc, "task.kind", "juggling")
