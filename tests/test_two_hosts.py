"""Two hosts: a launch in one network namespace, the left arm's policy in
another, joined by a veth pair, CURVE on (the run's own keys).

The test makes its own namespaces and addresses (10.231.x inside them only)
and removes them afterwards; it is skipped where `ip netns` is not allowed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.helpers import ROOT, finish, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

HOST1, HOST2 = "10.231.0.1", "10.231.0.2"


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def two_hosts():
    tag = uuid.uuid4().hex[:6]
    ns1, ns2 = f"rm{tag}a", f"rm{tag}b"
    made = []
    try:
        for ns in (ns1, ns2):
            if _ip("netns", "add", ns).returncode != 0:
                pytest.skip("`ip netns add` is not permitted here")
            made.append(ns)
        steps = [("link", "add", f"v{tag}a", "netns", ns1, "type", "veth", "peer", "name", f"v{tag}b", "netns", ns2),
                 ("-n", ns1, "addr", "add", f"{HOST1}/24", "dev", f"v{tag}a"),
                 ("-n", ns2, "addr", "add", f"{HOST2}/24", "dev", f"v{tag}b")]
        steps += [("-n", ns, "link", "set", dev, "up") for ns, dev in
                  ((ns1, "lo"), (ns2, "lo"), (ns1, f"v{tag}a"), (ns2, f"v{tag}b"))]
        for step in steps:
            proc = _ip(*step)
            if proc.returncode != 0:
                pytest.skip(f"network namespace setup not permitted: ip {' '.join(step)}: {proc.stderr.strip()}")
        yield ns1, ns2
    finally:
        for ns in made:  # deleting a namespace deletes its end of the veth pair
            _ip("netns", "del", ns)
        assert not {ns1, ns2} & set(_ip("netns", "list").stdout.split())


def _in(ns: str, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "robot_mirror", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def test_policy_on_a_second_host_with_the_runs_keys(two_hosts, tmp_path: Path) -> None:
    """Host 2 runs the run's own scenario (its left arm says `external`) as
    a policy node: it picks the expert with a note, authenticates with
    controller.left's key (found beside endpoints.json), builds its half of
    the tower, and exits by itself once the run has ended."""
    ns1, ns2 = two_hosts
    out = tmp_path / "run"
    proc = _in(ns1, "launch", "launch/tower_external.yaml", "--set", f"bus.interface={HOST1}",
               "--set", "task.blocks=2", "--set", "bus.controller_timeout=60", "--out", str(out), "--quiet")
    endpoints = wait_for(out / "endpoints.json")
    assert HOST1 in endpoints.read_text()
    remote = _in(ns2, "node", "policy", "--robot", "left", "--scenario", "launch/tower_external.yaml",
                 "--endpoints-file", str(endpoints), "--unsupervised")
    try:
        summary = finish(proc, out, timeout=300)
        _, remote_err = remote.communicate(timeout=60)  # idle exit: 15 s after the last observation
    finally:
        for p in (proc, remote):
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert summary["_returncode"] == 0, summary["_stderr"]
    episode = summary["episodes"][0]
    assert episode["success"] and episode["turns"] == 2, episode
    assert episode["bus"]["robots"]["left"]["commands"] > 100
    assert remote.returncode == 0, remote_err[-2000:]
    assert "running 'expert'" in remote_err and "the run has ended" in remote_err
