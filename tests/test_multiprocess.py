"""The multi-process system: real processes, real ZeroMQ sockets, real physics.

Each test launches `robot-mirror launch` as a child process (as a user
would) and checks, after it ends, that none of its node processes is left.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from robot_mirror.bus.codec import encode
from robot_mirror.client import Controller
from robot_mirror.config.scenario import load_scenario
from robot_mirror.bus.keys import Security
from tests.helpers import FAST, ROOT, finish, grant, launch, node_pids, wait_for, wait_for_tick

pytestmark = pytest.mark.multiprocess



def comparable(episode: dict) -> dict:
    keys = ("success", "turns", "turn_durations", "handoff_gaps", "zone_violations", "sim_seconds",
            "min_arm_distance", "blocks_stacked")
    return {k: episode[k] for k in keys}


def test_lockstep_matches_inprocess(tmp_path: Path) -> None:
    """Two episodes: the second must not see anything left over from the first."""
    args = ["launch/tower.yaml", "--episodes", "2", "--seed", "7", "--set", "task.blocks=3"]
    multi = finish(launch(tmp_path / "multi", *args), tmp_path / "multi")
    single = subprocess.run([sys.executable, "-m", "robot_mirror", "launch", *args, "--inprocess", "--quiet",
                             "--out", str(tmp_path / "single")], cwd=ROOT, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    single_eps = json.loads((tmp_path / "single/summary.json").read_text())["episodes"]
    assert multi["_returncode"] == 0, multi["_stderr"]
    assert multi["mode"] == "multiprocess" and multi["complete"]
    assert len(multi["episodes"]) == len(single_eps) == 2
    for multi_ep, single_ep in zip(multi["episodes"], single_eps):
        assert multi_ep["success"] and multi_ep["turns"] == 3
        assert comparable(multi_ep) == comparable(single_ep)


def test_external_controller_example_completes_its_episode(tmp_path: Path) -> None:
    out = tmp_path / "ext"
    proc = launch(out, "launch/tower_external.yaml", *FAST)
    wait_for(out / "endpoints.json")
    example = subprocess.run([sys.executable, "examples/external_controller.py", "--endpoints",
                              str(out / "endpoints.json")], cwd=ROOT, capture_output=True, text=True, timeout=240)
    summary = finish(proc, out)
    assert example.returncode == 0, example.stderr
    assert summary["_returncode"] == 0, summary["_stderr"]
    episode = summary["episodes"][0]
    assert episode["success"] and episode["turns"] == 2 and episode["zone_violations"] == 0


def test_killed_perception_and_policy_are_restarted_and_the_episode_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "kill"
    proc = launch(out, "launch/tower.yaml", "--episodes", "1", "--set", "task.blocks=4")
    pids = node_pids(out, expected=5)
    wait_for_tick(out, min_t=2.0)  # mid-episode: the first turn is under way
    os.kill(pids["perception"], signal.SIGKILL)
    wait_for_tick(out, min_t=5.0)
    os.kill(pids["policy.left"], signal.SIGKILL)
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    episode = summary["episodes"][0]
    assert episode["success"], episode
    assert episode["restarts"].get("perception", 0) >= 1 and episode["restarts"].get("policy.left", 0) >= 1


def _junk(rng: random.Random) -> list[bytes]:
    good = encode("cmd", "cmd", robot="left", fields={"mode": "joint", "gripper": 0.0, "turn": ""},
                  arrays={"q_target": np.zeros(7)})
    choice = rng.randrange(5)
    if choice == 0:
        return [rng.randbytes(rng.randrange(1, 64)) for _ in range(rng.randrange(1, 5))]
    if choice == 1:
        return good[:2]  # header promises an array that is missing
    if choice == 2:
        return [good[0], rng.randbytes(len(good[1])), good[2]]
    if choice == 3:
        return [b"cmd", good[1], good[2][:-8]]
    return [b"", b"", b""]


def test_malformed_frames_on_every_socket_crash_nothing(tmp_path: Path) -> None:
    out = tmp_path / "fuzz"
    proc = launch(out, "launch/tower.yaml", "--episodes", "1", *FAST)
    endpoints = wait_for_tick(out, min_t=0.5)
    rng = random.Random(3)
    ctx = zmq.Context()
    sockets = []  # keep every socket alive until its junk is out (LINGER 0 drops queued messages)
    try:
        # The bound ROUTER sockets, with keys the run admits there (CURVE
        # refuses keyless junk before any node sees it: tests/test_security.py).
        for name, key in (("cmd", "test.fuzz"), ("turn_rpc", "sim"), ("control", "test.fuzz")):
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            (grant(out, key) if key != "sim" else Security(out / "keys", names=["sim"])).client(sock)
            sock.connect(endpoints[name])
            sockets.append(sock)
            for _ in range(60):
                sock.send_multipart(_junk(rng))
        for name, endpoint in endpoints.items():  # raw bytes at every port, PUBs included
            host, port = endpoint.replace("tcp://", "").split(":")
            with socket.create_connection((host, int(port)), timeout=2) as raw:
                raw.sendall(rng.randbytes(512))
        time.sleep(1.0)
    finally:
        ctx.destroy(linger=0)
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    episode = summary["episodes"][0]
    assert episode["success"]
    drops = summary["dropped_messages_by_node"]
    assert drops["sim"] > 0 and drops["turn"] > 0 and drops["supervisor"] > 0, json.dumps(drops)


def test_zone_entry_refused_and_second_controller_refused(tmp_path: Path) -> None:
    out = tmp_path / "guard"
    proc = launch(out, "launch/tower_external.yaml", *FAST, "--set", "task.first=right",
                  "--set", "bus.controller_timeout=30")
    path = wait_for(out / "endpoints.json")
    try:
        with Controller("left", path) as arm, Controller("left", path) as intruder:
            obs = arm.next_observation()
            assert obs["holder"] == "right" and not obs["my_turn"]
            # Straight at the tower while the partner holds the turn.
            target = [0.0, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0]
            codes = []
            for _ in range(30):
                arm.send_ee(target)
                codes.append(arm.wait_reply().fields["code"])
                obs = arm.next_observation()
            assert "refused_zone" in codes, codes
            assert not obs["in_zone"]
            intruder.next_observation()
            intruder.hold()
            reply = intruder.wait_reply()
            assert reply.fields["code"] == "busy" and not reply.fields["ok"]
            # Beyond the joint limits: clamped, counted, answered (this answers the
            # observation the arm already holds: lock-step waits for it).
            q = np.array(obs["q"])
            q[-1] = 10.0  # the last wrist joint turns at most about +-2.97 rad
            arm.send_joint(q)
            reply = arm.wait_reply()
            assert reply.fields["code"] == "clamped" and reply.fields["clamped"] == 1 and reply.fields["ok"]
    finally:
        proc.send_signal(signal.SIGINT)
    summary = finish(proc, out)
    assert summary["stopped_because"] == "interrupted" and not summary["complete"]


def test_silent_controller_trips_the_watchdog(tmp_path: Path) -> None:
    """Real time: a controller that stops sending gets its arm held still."""
    out = tmp_path / "dog"
    proc = launch(out, "launch/tower_external.yaml", "--set", "task.blocks=1", "--set", "task.first=right",
                  "--set", "bus.mode=realtime", "--set", "bus.realtime_factor=3", "--set", "bus.watchdog=0.3")
    path = wait_for(out / "endpoints.json")
    with Controller("left", path) as arm:
        for _ in range(10):
            arm.next_observation()
            arm.hold()
    summary = finish(proc, out)  # the expert's block finishes the episode meanwhile
    assert summary["_returncode"] == 0, summary["_stderr"]
    episode = summary["episodes"][0]
    assert episode["success"]
    assert episode["bus"]["robots"]["left"]["watchdog_trips"] >= 1
    assert episode["bus"]["robots"]["left"]["commands"] >= 10


def test_realtime_mode_runs_paced_and_counts_misses(tmp_path: Path) -> None:
    """Two paced episodes with built-in policies: the counters hold values a
    broken one would get wrong (nothing counted, counted more than once per
    tick, tripped or 'busy' without cause). The watchdog is set long: healthy
    policies never trip it, even on a loaded machine."""
    out = tmp_path / "rt"
    overrides = ["task.blocks=1", "bus.mode=realtime", "bus.realtime_factor=4", "bus.watchdog=5"]
    proc = launch(out, "launch/tower.yaml", "--episodes", "2", *[a for o in overrides for a in ("--set", o)])
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    hz = load_scenario(ROOT / "launch/tower.yaml", overrides).control_hz
    assert len(summary["episodes"]) == 2
    for episode in summary["episodes"]:
        assert episode["success"]
        assert episode["real_time_factor"] <= 4.5  # paced, not free-running
        ticks = round(episode["sim_seconds"] * hz)
        for name, robot in episode["bus"]["robots"].items():
            # At most one command per published state (per episode: the counters
            # restart; on a machine where the policies keep up, a counter carried
            # over from episode 0 would pass this), and at most one miss per tick.
            # How many the policies answer depends on the machine's load.
            assert 1 <= robot["commands"] <= ticks + 1, (name, ticks, robot)
            assert 0 <= robot["deadline_misses"] <= ticks, (name, ticks, robot)
            assert robot["watchdog_trips"] == 0 and robot["busy"] == 0, (name, robot)


def test_sigterm_stops_everything_and_keeps_a_partial_summary(tmp_path: Path) -> None:
    out = tmp_path / "term"
    proc = launch(out, "launch/tower.yaml", "--episodes", "3", *FAST)
    node_pids(out, expected=5)
    deadline = time.monotonic() + 180
    while not json.loads(wait_for(out / "summary.json").read_text())["episodes"]:  # one episode done
        assert time.monotonic() < deadline and proc.poll() is None, "no episode finished"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    summary = finish(proc, out, timeout=30)
    assert summary["complete"] is False and summary["stopped_because"] == "interrupted"
    assert summary["_returncode"] == 130
    done = summary["episodes"]
    assert 1 <= len(done) < 3 and all(e["success"] for e in done)  # the finished episode is kept
    totals = summary["totals"]
    assert totals["episodes"] == len(done) and totals["successes"] == len(done)
    # The printed summary says what summary.json says, and where it is.
    lines = summary["_stdout"].splitlines()
    printed = dict(parts for line in lines if len(parts := re.split(r"\s{2,}", line.strip(), maxsplit=1)) == 2)
    assert "  (incomplete: interrupted)" in lines
    assert printed["success rate"] == f"{totals['successes']}/{totals['episodes']} ({100 * totals['success_rate']:.0f}%)"
    assert printed["turns"] == str(totals["turns"])
    assert printed["zone violations"] == str(totals["zone_violations"])
    assert Path(printed["summary"]) == out / "summary.json"
