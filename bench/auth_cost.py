"""What CURVE authentication costs on one bus round trip.

Topology (one hop of the lock-step loop, both directions): process A binds a
PUB (``state``) and a ROUTER (``cmd``); process B subscribes and answers each
state with one DEALER message. A measures publish -> answer received. The
payloads have the sizes of the real messages (``--state-bytes``, default
20 kB like a two-Panda ``state``; ``--cmd-bytes``, default 300 like a joint
``cmd``). Run twice per round, alternating: in the clear, and with the
project's own ``bus.keys.Security`` (per-run keys, ZAP, one key pair per
process), so the difference is exactly what the run's credentials cost.

    python bench/auth_cost.py [--ticks 2000] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from robot_mirror.bus.keys import Security, make_keys


def _answer(endpoints: tuple[str, str], keys: str | None, cmd_bytes: int, ticks: int) -> None:
    ctx = zmq.Context()
    security = Security(keys, names=["policy.left"])
    sub, dealer = ctx.socket(zmq.SUB), ctx.socket(zmq.DEALER)
    for sock in (sub, dealer):
        sock.linger = 0
        security.client(sock)
    sub.setsockopt(zmq.SUBSCRIBE, b"state")
    sub.connect(endpoints[0])
    dealer.connect(endpoints[1])
    payload = os.urandom(cmd_bytes)
    seen = set()
    while len(seen) < ticks + 1:
        if not sub.poll(5000):
            break
        topic, tick, _ = sub.recv_multipart()
        dealer.send_multipart([b"cmd", tick, payload])
        seen.add(tick)
    ctx.destroy(linger=0)


def one_run(keys: str | None, ticks: int, state_bytes: int, cmd_bytes: int) -> list[float]:
    """Round-trip times (s) of ``ticks`` ticks after a readiness handshake."""
    ctx = zmq.Context()
    security = Security(keys, names=["sim"])
    pub, router = ctx.socket(zmq.PUB), ctx.socket(zmq.ROUTER)
    for sock, domain in ((pub, "state"), (router, "cmd")):
        sock.linger = 0
        security.server(sock, domain)
    endpoints = (f"tcp://127.0.0.1:{pub.bind_to_random_port('tcp://127.0.0.1')}",
                 f"tcp://127.0.0.1:{router.bind_to_random_port('tcp://127.0.0.1')}")
    peer = mp.Process(target=_answer, args=(endpoints, keys, cmd_bytes, ticks))
    peer.start()
    payload = os.urandom(state_bytes)
    times = []
    try:
        for tick in range(ticks + 1):
            key = tick.to_bytes(8, "little")
            while True:  # tick 0 is the handshake: re-sent until answered
                start = time.perf_counter()
                pub.send_multipart([b"state", key, payload])
                if router.poll(250 if tick == 0 else 5000):
                    _, _, got, _ = router.recv_multipart()
                    if got == key:
                        break
                elif tick > 0:
                    raise RuntimeError("peer stopped answering")
            if tick:
                times.append(time.perf_counter() - start)
    finally:
        peer.join(timeout=10)
        security.close()
        ctx.destroy(linger=0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--state-bytes", type=int, default=20_000)
    ap.add_argument("--cmd-bytes", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_keys(Path(tmp), ["sim", "policy.left"])
        result: dict[str, list[float]] = {"plain_p50_us": [], "curve_p50_us": [], "plain_p99_us": [],
                                          "curve_p99_us": []}
        for r in range(args.rounds):
            order = [("plain", None), ("curve", tmp)]
            for name, keys in (order if r % 2 == 0 else order[::-1]):
                t = np.asarray(one_run(keys, args.ticks, args.state_bytes, args.cmd_bytes)) * 1e6
                result[f"{name}_p50_us"].append(round(float(np.percentile(t, 50)), 1))
                result[f"{name}_p99_us"].append(round(float(np.percentile(t, 99)), 1))
    summary = {k: statistics.median(v) for k, v in result.items()}
    summary["curve_cost_p50_us"] = round(summary["curve_p50_us"] - summary["plain_p50_us"], 1)
    summary["curve_ratio_p50"] = round(summary["curve_p50_us"] / summary["plain_p50_us"], 3)
    out = {"rounds": result, "median": summary, "ticks": args.ticks, "state_bytes": args.state_bytes,
           "cmd_bytes": args.cmd_bytes, "loadavg": os.getloadavg(), "cpus": os.cpu_count()}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
