"""Issue 8, item 1: an external arm whose controller never connects.

It used to be granted the turn and have it taken back every tick (~7,500
"turns"), and the episode's summary then outgrew one message header, so the
sim crashed at the time limit and summary.json stayed incomplete."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import finish, launch

pytestmark = pytest.mark.multiprocess


def test_absent_controller_is_announced_its_turns_pass_and_the_run_completes(tmp_path: Path) -> None:
    out = tmp_path / "absent"
    proc = launch(out, "launch/tower_external.yaml", "--set", "task.blocks=2", "--set", "task.time_limit=8",
                  "--set", "bus.controller_timeout=1")
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    assert summary["complete"], summary.get("stopped_because")
    episode = summary["episodes"][0]
    assert episode["absent_controllers"] == ["left"]
    # The expert's one turn, plus at most the first grant made before the timeout (given back at once).
    assert episode["turns"] <= 2, episode["turns"]
    assert episode["bus"]["robots"]["left"]["turns_passed"] >= 1
    log = (out / "logs" / "sim.log").read_text()
    lines = [l for l in log.splitlines() if "no controller for 'left'" in l]
    assert len(lines) == 1 and "bus.controller_timeout" in lines[0], log[-2000:]
