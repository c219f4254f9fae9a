"""Helpers shared by several test modules (import them from here, never from
another test module: importing a test module runs its collection-time code
and re-registers its tests' markers).

- paths: ROOT, FIXTURES
- the CLI as a user runs it: run_cli, assert_one_line_error
- a real multi-process launch: launch, wait_for, node_pids, wait_for_tick, alive, finish
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``robot-mirror ARGS`` as a user would, in a child process."""
    return subprocess.run([sys.executable, "-m", "robot_mirror", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The command failed with exit 2 and exactly one clear line, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith("pybullet build time")]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("robot-mirror: error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


FAST = ["--set", "task.blocks=2"]  # a short tower: 2 blocks


def launch(out: Path, *args: str, quiet: bool = True) -> subprocess.Popen:
    """``robot-mirror launch ARGS --out OUT`` in a child process (not waited for)."""
    return subprocess.Popen([sys.executable, "-m", "robot_mirror", "launch", *args, "--out", str(out),
                             *(["--quiet"] if quiet else [])],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, timeout: float = 60.0) -> Path:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)
    return path


def node_pids(out: Path, expected: int) -> dict[str, int]:
    deadline = time.monotonic() + 60
    while True:
        if (out / "processes.json").is_file():
            nodes = json.loads((out / "processes.json").read_text())["nodes"]
            if len(nodes) >= expected:
                return nodes
        assert time.monotonic() < deadline, "nodes did not all start"
        time.sleep(0.05)


def grant(out: Path, name: str):
    """A key pair of the run's for a test client (added to RUN/keys/allowed,
    as an operator would grant one): the ``Security`` to secure its sockets."""
    from robot_mirror.bus.keys import Security, make_keys

    make_keys(out / "keys", [name])
    return Security(out / "keys", names=[name])


def raw_curve(sock, run_dir: Path, name: str):
    """Give a raw pyzmq client socket the run's CURVE credentials for key
    ``name`` (e.g. ``controller.left``), read straight from RUN/keys with
    pyzmq (no project code, as a controller in another language would)."""
    import zmq.auth

    keys = Path(run_dir) / "keys"
    server_public, _ = zmq.auth.load_certificate(str(wait_for(keys / "server.key")))
    public, secret = zmq.auth.load_certificate(str(wait_for(keys / f"{name}.key_secret")))
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server_public, public, secret
    return sock


def wait_for_tick(out: Path, min_t: float = 0.0, timeout: float = 90.0) -> dict:
    """Block until the sim publishes a state at sim time >= ``min_t``: the
    run is really under way (not merely spawned)."""
    from robot_mirror.bus.codec import decode

    endpoints = json.loads(wait_for(out / "endpoints.json").read_text())
    ctx = zmq.Context()
    try:
        sub = ctx.socket(zmq.SUB)
        grant(out, "test.observer").client(sub)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"state")
        sub.connect(endpoints["state"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sub.poll(200):
                msg = decode(sub.recv_multipart())
                if msg.t_sim >= min_t:
                    return endpoints
        raise AssertionError(f"no state at t >= {min_t} within {timeout} s")
    finally:
        ctx.destroy(linger=0)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def finish(proc: subprocess.Popen, out: Path, timeout: float = 240) -> dict:
    """Wait for the launch to end; no node may outlive it. Returns summary.json
    plus ``_returncode``, ``_stdout`` and ``_stderr`` of the launch."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(f"launch did not finish: {stderr[-2000:]}")
    pids = json.loads((out / "processes.json").read_text())["nodes"] if (out / "processes.json").exists() else {}
    leftovers = {name: pid for name, pid in pids.items() if alive(pid)}
    assert not leftovers, f"processes left running: {leftovers}"
    summary = json.loads((out / "summary.json").read_text())
    summary["_returncode"], summary["_stderr"], summary["_stdout"] = proc.returncode, stderr, stdout
    return summary
