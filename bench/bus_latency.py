"""Bus round trip of the real launched system vs a raw pyzmq echo of the same bytes.

Definition. "Bus round trip" = per lock-step tick, the wall time from the sim
publishing state(k) until the sim holds every robot's cmd(k). Path:
sim -> perception (state decoded, one observation per robot built and
encoded) -> policy.left / policy.right (obs decoded; the policy is ``hold``,
so no compute; cmd encoded) -> sim (cmd decoded, validated, accepted). The
sim itself measures it (``SimNode.latencies``: from the moment the state
frames are handed to ZeroMQ until the last command of that tick has been
accepted; tick 0 is left out because it includes start-up) and reports
per-episode p50/p99 in ``summary.json`` under
``episodes[0].bus.tick_latency_ms``.

bus side: one real launch per round, exactly as a user would start it::

    python -m robot_mirror launch launch/tower.yaml --episodes 1
        --set robots.left.policy=hold --set robots.right.policy=hold
        --set task.time_limit=S --out TMP --quiet

(``python -m robot_mirror`` is the ``robot-mirror`` CLI). With
``control_hz`` 60 and S = ``--seconds`` (default 10) that is 600 ticks, 599
measured. The summary only has p50/p99 per run, so per-run figures are
reported and the headline uses the median over rounds of the per-run p50
(and of the per-run p99).

raw side: four plain Python processes using only pyzmq, same topology, same
socket types and options (LINGER 0, HWM 1000, DEALER identities
``policy.<robot>``, non-blocking sends with ``copy=False``, a poller with a
20 ms timeout and drain-to-latest loops, like the nodes), and the SAME frame
layout and byte sizes as the real messages (measured from
``robot_mirror.bus.codec.encode`` of a realistic state taken from
``TurnTakingEnv`` after a few hold steps, of the observations
``build_observation`` makes from it, and of a hold ``cmd``):

* A (this process): PUB "state" frames -> B; ROUTER receives the cmds.
* B: SUB state, PUB the two obs payloads (topics ``obs.left``/``obs.right``).
* C1, C2: SUB their obs topic, DEALER send the cmd payload to A's ROUTER.

No encoding or decoding anywhere (that is the point of the comparison); the
tick number rides in the first 8 bytes of each header frame so that a stale
reply is never counted. A measures from right after the publish until both
replies of that tick are in; tick 0 is the readiness handshake (re-sent
every 0.25 s, like the sim's), then the same number of ticks as the bus run
is measured, and p50/p99 are computed per round the same way as the sim
does (``numpy.percentile``, linear interpolation).

Rounds alternate bus and raw (order swapped every other round) so that load
from other jobs on a small machine hits both alike; the medians over rounds
are reported. Headline: ``ratio`` = bus p50 / raw p50 (goal <= 2). Also the
median of the per-round paired ratios, the load average before/after, and
the machine.

    python bench/bus_latency.py [--scenario launch/tower.yaml] [--seconds 10]
                                [--rounds 3] [--json out.json]

Takes about 1 minute with the defaults on 2 cores (each launch also starts 6 processes).
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import (BenchError, launch_command, launch_summary, loadavg, machine_info,  # noqa: E402
                     median_of, package_version, percentiles, print_load, print_round, round_order,
                     run_on_scenario, temp_folder, write_json)

HOLD = ["--set", "robots.left.policy=hold", "--set", "robots.right.policy=hold"]
POLL_MS = 20
RESEND_S = 0.25
TICK = struct.Struct("<q")


# ------------------------------------------------------------ payload sizes
def real_layout(scenario_path: str, overrides: list[str]) -> dict:
    """Frame sizes of the real state, obs (per robot) and cmd messages."""
    import numpy as np

    from robot_mirror.bus.codec import decode, encode
    from robot_mirror.common.commands import ArmCommand
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.bus.wire import decode_state, encode_state
    from robot_mirror.bus.wire import encode_obs
    from robot_mirror.common.observation import build_observation
    from robot_mirror.common.perception import make_observers

    sc = load_scenario(scenario_path, overrides)
    env = TurnTakingEnv(sc)
    try:
        env.reset(seed=sc.seed)
        hold = {n: ArmCommand(q_target=env.twin(n).home_q.copy(), gripper=0.0) for n in env.robot_names}
        for _ in range(5):
            env.step(hold)
        state_frames = encode_state(env.world_state([]), 5)
        state = decode_state(decode(state_frames))
        observers = make_observers(sc, state.seed)
        obs = {n: encode_obs(n, build_observation(state, n, observers[n]), tick=state.tick,
                             episode=state.episode, seq=6) for n in state.arms}
        cmd = {n: encode("cmd", "cmd", robot=n, seq=7, tick=state.tick, t_sim=state.t,
                         fields={"mode": "joint", "gripper": 0.0, "turn": ""},
                         arrays={"q_target": np.asarray(env.twin(n).home_q, float)}) for n in state.arms}
    finally:
        env.close()
    sizes = lambda frames: [len(f) for f in frames]  # noqa: E731
    return {"robots": list(state.arms), "control_hz": sc.control_hz,
            "state": sizes(state_frames), "obs": {n: sizes(f) for n, f in obs.items()},
            "cmd": {n: sizes(f) for n, f in cmd.items()}}


def frames_for(topic: str, sizes: list[int]) -> list[bytes]:
    """Frames of the given sizes: the topic frame, then filler (the first
    frame after the topic is the "header" that carries the tick)."""
    return [topic.encode()] + [b"\x00" * max(n, TICK.size if i == 0 else 0) for i, n in enumerate(sizes[1:])]


def with_tick(frames: list[bytes], tick_bytes: bytes) -> list[bytes]:
    head = frames[1]
    return [frames[0], tick_bytes + head[TICK.size:], *frames[2:]]


def _socket(ctx: zmq.Context, kind: int, identity: str | None = None) -> zmq.Socket:
    """Same options as robot_mirror.bus.transport.make_socket."""
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 1000)
    s.setsockopt(zmq.RCVHWM, 1000)
    if identity is not None:
        s.setsockopt(zmq.IDENTITY, identity.encode())
    if kind == zmq.ROUTER:
        s.setsockopt(zmq.ROUTER_HANDOVER, 1)
        s.setsockopt(zmq.ROUTER_MANDATORY, 0)
    return s


# --------------------------------------------------------------- raw roles
def _subscriber(ctx: zmq.Context, topic: bytes, endpoint: str) -> tuple[zmq.Socket, zmq.Poller]:
    """A SUB socket on ``topic`` connected to ``endpoint``, and a poller on it."""
    sub = _socket(ctx, zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, topic)
    sub.connect(endpoint)
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    return sub, poller


def latest_tick(sub: zmq.Socket, poller: zmq.Poller) -> bytes | None:
    """Wait up to POLL_MS for ``sub``, drain it to the latest message (like
    the nodes) and return that message's tick bytes; None if nothing came."""
    if not dict(poller.poll(POLL_MS)):
        return None
    latest = None
    while True:
        try:
            latest = sub.recv_multipart(flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            break
    return None if latest is None else bytes(latest[1].buffer[:TICK.size])


def send_nowait(sock: zmq.Socket, frames: list[bytes]) -> None:
    """A non-blocking, zero-copy send; dropped if the queue is full."""
    try:
        sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
    except zmq.Again:
        pass


def role_b(spec: dict) -> int:
    """Perception stand-in: SUB state, PUB one obs payload per robot."""
    ctx = zmq.Context()
    sub, poller = _subscriber(ctx, b"state", spec["state"])
    pub = _socket(ctx, zmq.PUB)
    pub.bind("tcp://127.0.0.1:*")
    print(pub.getsockopt(zmq.LAST_ENDPOINT).decode(), flush=True)
    obs = [frames_for(f"obs.{n}", spec["obs"][n]) for n in spec["robots"]]
    try:
        while True:
            tick_bytes = latest_tick(sub, poller)
            if tick_bytes is None:
                continue
            for frames in obs:
                send_nowait(pub, with_tick(frames, tick_bytes))
            if TICK.unpack(tick_bytes)[0] < 0:  # stop sentinel, passed on to C1/C2
                time.sleep(0.1)
                return 0
    finally:
        ctx.destroy(linger=0)


def role_c(spec: dict) -> int:
    """Policy stand-in: SUB its obs topic, DEALER the cmd payload back to A."""
    robot = spec["robot"]
    ctx = zmq.Context()
    sub, poller = _subscriber(ctx, f"obs.{robot}".encode(), spec["obs_ep"])
    dealer = _socket(ctx, zmq.DEALER, identity=f"policy.{robot}")
    dealer.connect(spec["cmd_ep"])
    cmd = frames_for("cmd", spec["cmd"][robot])
    try:
        while True:
            tick_bytes = latest_tick(sub, poller)
            if tick_bytes is None:
                continue
            if TICK.unpack(tick_bytes)[0] < 0:
                return 0
            send_nowait(dealer, with_tick(cmd, tick_bytes))
    finally:
        ctx.destroy(linger=0)


def raw_round(layout: dict, ticks: int, timeout: float = 60.0) -> list[float]:
    """A in this process, B, C1, C2 as child processes. Latencies in ms of
    ticks 1..ticks (tick 0 = readiness handshake)."""
    ctx = zmq.Context()
    procs: list[subprocess.Popen] = []
    robots = layout["robots"]
    try:
        pub = _socket(ctx, zmq.PUB)
        pub.bind("tcp://127.0.0.1:*")
        router = _socket(ctx, zmq.ROUTER)
        router.bind("tcp://127.0.0.1:*")
        state_ep = pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        cmd_ep = router.getsockopt(zmq.LAST_ENDPOINT).decode()
        me = [sys.executable, str(Path(__file__).resolve())]
        b = subprocess.Popen(me + ["--_role", "B", "--_spec", json.dumps({**layout, "state": state_ep})],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        procs.append(b)
        obs_ep = b.stdout.readline().strip()
        if not obs_ep:
            raise BenchError(f"raw echo: process B did not start (exit {b.poll()})")
        for r in robots:
            procs.append(subprocess.Popen(me + ["--_role", "C", "--_spec", json.dumps(
                {**layout, "robot": r, "obs_ep": obs_ep, "cmd_ep": cmd_ep})], stdin=subprocess.DEVNULL))
        state = frames_for("state", layout["state"])
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        out: list[float] = []
        deadline = time.monotonic() + timeout
        for k in range(ticks + 1):
            tick_bytes = TICK.pack(k)
            frames = with_tick(state, tick_bytes)
            pub.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
            t0 = last = time.perf_counter()
            waiting = set(robots)
            while waiting:
                if dict(poller.poll(POLL_MS)):
                    while True:
                        try:
                            msg = router.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        if bytes(msg[2].buffer[:TICK.size]) == tick_bytes:
                            waiting.discard(msg[0].bytes.decode().removeprefix("policy."))
                now = time.perf_counter()
                if waiting and now - last > RESEND_S:
                    pub.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                    last = now
                if waiting and time.monotonic() > deadline:
                    dead = [p.returncode for p in procs if p.poll() is not None]
                    raise BenchError(f"raw echo: no reply for tick {k} within {timeout:.0f} s"
                                     + (f" (a child exited: {dead})" if dead else ""))
            if k > 0:
                out.append((now - t0) * 1000.0)
        stop = with_tick(state, TICK.pack(-1))
        for _ in range(3):
            pub.send_multipart(stop, flags=zmq.NOBLOCK, copy=False)
            time.sleep(0.05)
        return out
    finally:
        for p in procs:
            try:
                p.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()
        ctx.destroy(linger=0)


# --------------------------------------------------------------- bus side
def bus_round(scenario: str, seconds: float, tmp: Path, index: int, timeout: float) -> dict:
    out = tmp / f"bus{index}"
    cmd = launch_command(scenario, out, [*HOLD, "--set", f"task.time_limit={seconds:g}"])
    summary, _ = launch_summary(cmd, out, timeout, f"bus run {index}")
    eps = summary.get("episodes") or []
    lat = eps[0].get("bus", {}).get("tick_latency_ms") if eps else None
    if not summary.get("complete") or not lat:
        raise BenchError(f"bus run {index}: incomplete summary (complete={summary.get('complete')}, "
                         f"tick_latency_ms={lat})")
    misses = sum(r.get("deadline_misses", 0) for r in eps[0]["bus"].get("robots", {}).values())
    return {"p50": lat["p50"], "p99": lat["p99"], "ticks": lat["ticks"], "deadline_misses": misses,
            "real_time_factor": eps[0].get("real_time_factor")}


# ------------------------------------------------------------------- main
def run(args) -> dict:
    from statistics import median

    overrides = [HOLD[1], HOLD[3], f"task.time_limit={args.seconds:g}"]
    layout = real_layout(args.scenario, overrides)
    ticks = int(round(args.seconds * layout["control_hz"])) - 1  # what the sim measures
    print(f"payloads (bytes per frame): state {layout['state']} = {sum(layout['state'])}; "
          + "; ".join(f"obs.{n} {sum(s)}" for n, s in layout["obs"].items()) + "; "
          + "; ".join(f"cmd {n} {sum(s)}" for n, s in layout["cmd"].items()), flush=True)
    load_before = loadavg()
    bus, raw = [], []
    with temp_folder("bus_latency-") as tmp:
        raw_round(layout, 50)  # warm-up (imports, page cache)
        for r in range(args.rounds):
            line = []
            for side in round_order(r, "bus", "raw"):
                if side == "bus":
                    res = bus_round(args.scenario, args.seconds, tmp, r, args.timeout)
                    bus.append(res)
                    line.append(f"bus p50 {res['p50']:6.3f} p99 {res['p99']:7.3f} ms ({res['ticks']} ticks)")
                else:
                    lat = raw_round(layout, ticks)
                    p50, p99 = percentiles(lat, 50, 99)
                    res = {"p50": round(p50, 3), "p99": round(p99, 3), "ticks": len(lat)}
                    raw.append(res)
                    line.append(f"raw p50 {res['p50']:6.3f} p99 {res['p99']:7.3f} ms ({res['ticks']} ticks)")
            print_round(r, args.rounds, line)
    load_after = loadavg()
    bus_p50, bus_p99 = median_of(bus, "p50"), median_of(bus, "p99")
    raw_p50, raw_p99 = median_of(raw, "p50"), median_of(raw, "p99")
    return {
        "ratio": round(bus_p50 / raw_p50, 3),
        "ratio_p99": round(bus_p99 / raw_p99, 3),
        "paired_ratio_median": round(median(b["p50"] / w["p50"] for b, w in zip(bus, raw)), 3),
        "goal": "ratio <= 2",
        "bus_p50_ms": bus_p50, "bus_p99_ms": bus_p99, "raw_p50_ms": raw_p50, "raw_p99_ms": raw_p99,
        "bus_rounds": bus, "raw_rounds": raw,
        "ticks_per_round": ticks, "rounds": args.rounds, "seconds": args.seconds,
        "scenario": args.scenario,
        "payload_bytes": {"state": sum(layout["state"]),
                          **{f"obs.{n}": sum(s) for n, s in layout["obs"].items()},
                          **{f"cmd.{n}": sum(s) for n, s in layout["cmd"].items()}},
        "frame_sizes": {k: layout[k] for k in ("state", "obs", "cmd")},
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "machine": machine_info({"pyzmq": zmq.pyzmq_version(), "libzmq": zmq.zmq_version(),
                                 "msgpack": package_version("msgpack"), "numpy": package_version("numpy")}),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="launch/tower.yaml", help="scenario YAML (relative to the current folder or the project root)")
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="simulated seconds per bus run (ticks = seconds * control_hz)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0, help="wall s allowed per launched run")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--_role", choices=("B", "C"), help=argparse.SUPPRESS)
    ap.add_argument("--_spec", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._role:
        spec = json.loads(args._spec)
        try:
            return role_b(spec) if args._role == "B" else role_c(spec)
        except KeyboardInterrupt:
            return 0
    if args.rounds < 1 or args.seconds < 5:
        ap.error("--rounds must be >= 1 and --seconds >= 5 (the scenario's minimum time_limit)")
    result = run_on_scenario("bus_latency", run, args)
    if result is None:
        return 1
    print(f"bus : p50 {result['bus_p50_ms']:.3f} ms  p99 {result['bus_p99_ms']:.3f} ms  (median of "
          f"{args.rounds} launched runs)")
    print(f"raw : p50 {result['raw_p50_ms']:.3f} ms  p99 {result['raw_p99_ms']:.3f} ms  (pyzmq echo, same "
          f"payloads/topology)")
    print(f"ratio bus/raw p50: {result['ratio']:.2f}  (goal <= 2)   p99: {result['ratio_p99']:.2f}   "
          f"paired p50 ratio median: {result['paired_ratio_median']:.2f}")
    print_load(result)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
