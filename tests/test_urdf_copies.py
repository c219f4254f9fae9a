"""Rewritten URDF copies do not outlive the process that loaded them, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.world import World
w = World()
w.reset()
w.add_arm(RobotSpec(name="a", urdf=sys.argv[1]))
print("loaded", flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_a_killed_process_leaves_no_urdf_copy_behind(tmp_path: Path, fixtures: Path) -> None:
    """SIGKILL skips atexit: a copy written to a temp folder would stay there."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    urdf = fixtures / "pkg_arm" / "urdf" / "pkg_arm.urdf"  # package:// meshes: must be rewritten
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(urdf)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "loaded", proc.stderr.read() if proc.poll() is not None else line
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sorted(p.name for p in tmp.iterdir()) == []
    assert urdf.read_text().count("package://pkg_arm/") >= 4  # the user's file is untouched
