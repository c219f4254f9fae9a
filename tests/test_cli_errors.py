"""The CLI's output paths, --set values and small output lines: one clear line, nothing written."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from robot_mirror.cli import partial_summary_error
from robot_mirror.client import Controller, ControllerError
from robot_mirror.bus.transport import Endpoints
from robot_mirror.config.scenario import apply_overrides, load_scenario
from robot_mirror.errors import RobotMirrorError
from robot_mirror.launch.summary import format_summary, totals
from robot_mirror.launch.supervisor import Supervisor
from tests.conftest import ROOT, assert_one_line_error, run_cli

TOWER = str(ROOT / "launch" / "tower.yaml")
UNWRITABLE = "/sys/robot_mirror_test/run"  # even root cannot create files under /sys


def _sys_is_writable() -> bool:
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            return True
    except OSError:
        return False


needs_sys = pytest.mark.skipif(_sys_is_writable(), reason="needs a /sys nobody can create files in")


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_launch_out_naming_a_file_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("mine")
    proc = run_cli("launch", TOWER, "--out", str(target), "--inprocess", cwd=tmp_path)
    assert_one_line_error(proc, "--out", str(target), "not a folder")
    assert target.read_text() == "mine" and _listing(tmp_path) == ["taken"]


def test_launch_out_below_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("mine")
    proc = run_cli("launch", TOWER, "--out", str(tmp_path / "taken" / "run"), "--inprocess", cwd=tmp_path)
    assert_one_line_error(proc, "--out", "is not a folder")
    assert _listing(tmp_path) == ["taken"]


@needs_sys
def test_launch_out_unwritable_is_refused(tmp_path: Path) -> None:
    proc = run_cli("launch", TOWER, "--out", UNWRITABLE, "--inprocess", cwd=tmp_path)
    assert_one_line_error(proc, "--out", UNWRITABLE, "cannot write in /sys")
    assert _listing(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_launch_out_in_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        proc = run_cli("launch", TOWER, "--out", str(locked / "run"), "--inprocess", cwd=tmp_path)
        assert_one_line_error(proc, "--out", "cannot write in")
    finally:
        locked.chmod(0o700)
    assert _listing(locked) == []


@needs_sys
def test_train_out_unwritable_fails_before_training(tmp_path: Path) -> None:
    start = time.monotonic()
    proc = run_cli("train", "--data", str(tmp_path), "--out", "/sys/robot_mirror_test/m.pt", cwd=tmp_path)
    assert_one_line_error(proc, "--out", "cannot write in /sys")
    assert time.monotonic() - start < 60


def test_train_out_below_a_file_fails_before_training(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("mine")
    proc = run_cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "taken" / "m.pt"), cwd=tmp_path)
    assert_one_line_error(proc, "--out", "is not a folder")


def test_keys_on_an_existing_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "keys"
    target.write_text("mine")
    proc = run_cli("keys", str(target), cwd=tmp_path)
    assert_one_line_error(proc, "keys", str(target), "not a folder")
    assert target.read_text() == "mine" and _listing(tmp_path) == ["keys"]


@needs_sys
def test_keys_in_an_unwritable_place_is_refused(tmp_path: Path) -> None:
    proc = run_cli("keys", "/sys/robot_mirror_test/keys", cwd=tmp_path)
    assert_one_line_error(proc, "keys", "cannot write in /sys")


def test_demos_out_non_empty_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "demos"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = run_cli("demos", TOWER, "--out", str(out), "--episodes", "1", cwd=tmp_path)
    assert_one_line_error(proc, "--out", "not empty", "new or empty")
    assert _listing(out) == ["notes.txt"]


def test_set_keeps_text_fields_as_text() -> None:
    """YAML would make `::` the map {':': None} and `007` the number 7."""
    raw = {"name": "t", "bus": {}, "robots": [{"name": "left"}], "task": {"kind": "tower"}}
    data = apply_overrides(raw, ["bus.interface=::", "name=007", "robots.left.ee_link=a: b",
                                 "task.blocks=4", "bus.keys_dir=null", "robots.left.home_q=[0, 1]"], "f.yaml")
    assert data["bus"]["interface"] == "::"
    assert data["name"] == "007"
    assert data["robots"][0]["ee_link"] == "a: b"
    assert data["task"]["blocks"] == 4 and data["bus"]["keys_dir"] is None
    assert data["robots"][0]["home_q"] == [0, 1]


def test_set_interface_reaches_the_scenario_as_text() -> None:
    scenario = load_scenario(TOWER, ["bus.interface=::", "task.first=null"])
    assert scenario.bus.interface == "::" and scenario.task.first is None


def test_set_non_text_field_still_reports_a_bad_value() -> None:
    with pytest.raises(RobotMirrorError, match=r"task.blocks = 'abc': must be an integer"):
        load_scenario(TOWER, ["task.blocks=abc"])


def test_summary_with_no_episode_shows_no_none() -> None:
    data = {"scenario": "tower", "mode": "multiprocess", "seed": 0, "complete": False,
            "stopped_because": "error: the sim stopped", "totals": totals([])}
    text = format_summary(data, Path("runs/x"))
    assert "None" not in text and "real-time factor -)" in text


def test_a_stopped_sim_names_the_partial_summary_once(tmp_path: Path) -> None:
    """The supervisor's own line for a crashed sim, as the CLI prints it."""
    child = SimpleNamespace(name="sim", restart_at=None, proc=SimpleNamespace(poll=lambda: 1), hello=True,
                            last_heard=0.0, policy=None, restarts=0)
    supervisor = Supervisor.__new__(Supervisor)
    supervisor.children = {"sim": child}
    supervisor._last_log_line = lambda _child: "boom"
    with pytest.raises(RobotMirrorError) as err:
        supervisor._watch(0.0)
    line = str(partial_summary_error(err.value, tmp_path))
    assert line.count("partial summary") == 1, line
    assert str(tmp_path / "summary.json") in line and "boom" in line


def test_wait_reply_names_the_timeout_it_used() -> None:
    arm = Controller("left", Endpoints.allocate(), timeout=20.0).connect()
    try:
        with pytest.raises(ControllerError, match=r"within 0\.2 s"):
            arm.wait_reply(timeout=0.2)
    finally:
        arm.close()


@pytest.mark.parametrize("override, needles", [
    ("perception.level=foggy", ("perception.level", "'foggy'", "default, stress, perfect")),
    ("perception.noise_std=-0.1", ("perception.noise_std", "-0.1")),
    ("perception.delay_ticks=2.5", ("perception.delay_ticks", "2.5")),
])
def test_bad_perception_level_or_number_is_one_line(override: str, needles: tuple, tmp_path: Path) -> None:
    proc = run_cli("launch", TOWER, "--inprocess", "--set", override, "--out", str(tmp_path / "run"))
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, needles", [
    (("--levels", "default,foggy"), ("--levels", "default, stress")),
    (("--episodes", "1"), ("--episodes 1", "at least 2")),
])
def test_bad_evaluate_flags_are_one_line(args: tuple, needles: tuple, tmp_path: Path) -> None:
    proc = run_cli("evaluate", "--checkpoint", "sim_assets/mirror_tower.pt", "--scenario", TOWER, *args,
                   "--out", str(tmp_path / "eval"))
    assert_one_line_error(proc, *needles)
