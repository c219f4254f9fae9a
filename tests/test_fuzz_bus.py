"""Fuzzing a live multi-process run on every socket (issue 8, "Fuzzing in
the suite" and "Bounded messages").

Random junk and schema-valid-but-hostile messages (tests/fuzz_frames.py:
wrong types in every field, non-finite numbers, degenerate quaternions,
stale and future ticks, spoofed identities, odd subscriptions) go to every
bound socket during the first episode, plus one 50 MB frame to each.
Afterwards every episode succeeds, the drops are counted per episode (the
last, quiet episode counts none), and no node's memory grew. Reply codes
are not asserted: they belong to the sim's edge checks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz_frames import CASES, NODE_IDENTITIES, PUBLISHERS, ROUTERS, connect, zmtp_send
from tests.helpers import finish, grant, launch, node_pids, wait_for_tick

pytestmark = pytest.mark.multiprocess

BIG = 50 * 1024 * 1024
RSS_SLACK_MB = 25.0


def rss_mb(pids: dict[str, int]) -> dict[str, float]:
    """VmRSS of each node (RUN/processes.json), in MiB."""
    out = {}
    for name, pid in pids.items():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out[name] = int(line.split()[1]) / 1024
    return out


FUZZ_KEYS = {"cmd": "controller.left", "turn_rpc": "sim"}


class Fuzzer:
    """One raw socket per (endpoint, identity), reused for every case."""

    def __init__(self, endpoints: dict, run_dir: Path) -> None:
        self.ctx = zmq.Context()
        self.endpoints, self.run_dir = endpoints, run_dir
        self.sockets: dict[tuple[str, bytes], zmq.Socket] = {}
        self.sent = 0
        # Admitted but hostile: a controller key for an arm that has a policy,
        # the sim's own key on the arbiter's socket, a stranger's run key elsewhere.
        for name in ("controller.left", "fuzz"):
            grant(run_dir, name)

    def socket(self, where: str, identity: bytes) -> zmq.Socket:
        key = (where, identity)
        if key not in self.sockets:
            kind = zmq.XSUB if where in PUBLISHERS else zmq.DEALER
            self.sockets[key] = connect(self.ctx, kind, self.endpoints[where], identity=identity or None,
                                        run_dir=self.run_dir, key=FUZZ_KEYS.get(where, "fuzz"))
        return self.sockets[key]

    def send(self, where: str, identity: bytes, frames: list[bytes]) -> None:
        if not frames:
            frames = [b""]
        try:
            self.socket(where, identity).send_multipart(frames, flags=zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:
            pass

    def huge(self) -> None:
        """A 50 MB frame to each bound socket; to a publisher, as a subscription."""
        for where in ROUTERS:
            self.send(where, b"huge", [b"x" * BIG])
        for where in PUBLISHERS:
            zmtp_send(self.endpoints[where], b"SUB", [b"\x01" + b"s" * BIG])
            zmtp_send(self.endpoints[where], b"XSUB", [b"\x02" + b"s" * BIG])

    def close(self) -> None:
        time.sleep(1.0)  # LINGER 0: let what is queued go out first
        self.ctx.destroy(linger=0)


def fuzz_run(tmp_path: Path, n: int, episodes: int = 8) -> tuple[dict, dict, dict, int]:
    """Launch a run, fuzz every socket while it plays, measure each node's memory
    before and after. The run has to outlive the fuzzing (the memory is read
    from the live processes, and the last episode must see no hostile
    message): two-block episodes, 8 per 1000 messages or more, about three
    times the fuzzing's length on a loaded 2-core machine."""
    out = tmp_path / "fuzz"
    proc = launch(out, "launch/tower.yaml", "--episodes", str(episodes), "--set", "task.blocks=2")
    try:
        pids = node_pids(out, expected=5)
        endpoints = wait_for_tick(out, min_t=0.3)
        before = rss_mb(pids)
        fuzzer = Fuzzer(endpoints, out)

        @settings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(CASES)
        def one(case) -> None:
            fuzzer.send(*case)

        one()
        fuzzer.huge()
        fuzzer.close()
        time.sleep(1.0)
        assert proc.poll() is None, "the run ended before the fuzzing did: give it more episodes"
        after = rss_mb(pids)
    except BaseException:
        proc.kill()
        raise
    summary = finish(proc, out, timeout=600)
    return summary, before, after, fuzzer.sent


def check(summary: dict, before: dict, after: dict) -> None:
    assert summary["_returncode"] == 0, summary["_stderr"][-3000:]
    assert summary["complete"]
    episodes = summary["episodes"]
    assert all(ep["success"] for ep in episodes), [ep.get("failure") for ep in episodes]
    first, last = episodes[0], episodes[-1]
    assert first["bus"]["dropped_messages"]["total"] > 0, first["bus"]
    assert last["bus"]["dropped_messages"]["total"] == 0, last["bus"]  # per episode, not the run total
    assert first["dropped_messages_by_node"]["turn"] > 0 and first["dropped_messages_by_node"]["supervisor"] > 0
    assert all(v == 0 for v in last["dropped_messages_by_node"].values()), last["dropped_messages_by_node"]
    run = summary["dropped_messages_by_node"]
    for node, total in run.items():
        assert sum(ep["dropped_messages_by_node"].get(node, 0) for ep in episodes) <= total, node
    assert first["bus"]["endpoints"]["state"]["accepted"] > 0
    grown = {n: round(after[n] - before[n], 1) for n in before}
    assert all(g < RSS_SLACK_MB for g in grown.values()), grown


def fuzz_and_check(tmp_path: Path, n: int) -> None:
    """``n`` hostile messages; at least 90 % must leave (a full queue drops)."""
    summary, before, after, sent = fuzz_run(tmp_path, n, episodes=max(8, 8 * n // 1000))
    print("RSS before", json.dumps(before), "after", json.dumps(after))
    assert sent >= 0.9 * n
    check(summary, before, after)


def test_fuzz_1000_messages_on_every_socket(tmp_path: Path) -> None:
    fuzz_and_check(tmp_path, 1000)


@pytest.mark.slow
def test_fuzz_10000_messages_on_every_socket(tmp_path: Path) -> None:
    fuzz_and_check(tmp_path, 10_000)


@pytest.mark.slow
def test_spoofed_node_identities_do_not_hang_the_run(tmp_path: Path) -> None:
    out = tmp_path / "spoof"
    proc = launch(out, "launch/tower.yaml", "--episodes", "1", "--set", "task.blocks=2")
    try:
        endpoints = wait_for_tick(out, min_t=0.3)
        fuzzer = Fuzzer(endpoints, out)
        for where, identities in NODE_IDENTITIES.items():
            for identity in identities:
                fuzzer.send(where, identity.encode(), [b"junk"])
        fuzzer.close()
        summary = finish(proc, out, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert summary["_returncode"] == 0 and all(ep["success"] for ep in summary["episodes"])
