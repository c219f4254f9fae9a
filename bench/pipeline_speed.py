"""Lock-step ticks per second of the launched multi-process system vs ``--inprocess``.

Method. Each round launches the same scenario, seed and task twice, exactly
as a user would, once per mode::

    python -m robot_mirror launch launch/tower.yaml --episodes 1 --seed SEED
        --set task.blocks=N --out TMP --quiet [--inprocess]

(``python -m robot_mirror`` is the ``robot-mirror`` CLI; default policies =
the scripted expert, bus mode = lock-step, so both modes simulate the very
same episode). From each run's ``summary.json`` episode:
ticks/s = ``sim_seconds * control_hz / wall_seconds``. ``wall_seconds`` is
the environment's own clock (from ``env.reset`` to the episode's end), so
process start-up is not counted, but in the multi-process run it does
include the sim's wait for the first tick's answers (nodes still setting
up). The process wall time of each launch (start-up and shutdown included)
is reported beside it.

Rounds alternate the two modes (order swapped every other round) so that
load from other jobs on a small machine hits both alike; medians over the
rounds are reported. Headline: ``ratio`` = multiprocess ticks/s /
inprocess ticks/s (goal >= 0.5). The script also checks that both modes
simulated the same number of seconds (lock-step determinism) and reports
the load average before/after and the machine.

    python bench/pipeline_speed.py [--scenario launch/tower.yaml] [--blocks 6]
                                   [--seed 0] [--rounds 3] [--json out.json]

About ``rounds * 35`` s with the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    pass


def run_launch(cmd: list[str], timeout: float) -> subprocess.CompletedProcess | None:
    """Run one ``robot-mirror launch``; None if it ran past ``timeout`` (it is
    then interrupted like Ctrl-C, so the supervisor stops its nodes, and
    killed if it still has not ended 15 s later)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def scenario_path(text: str) -> str:
    """A scenario given relative to the current folder or to the project root."""
    p = Path(text)
    if not p.is_absolute() and not p.exists():
        p = ROOT / p
    if not p.is_file():
        raise BenchError(f"scenario {text}: file not found")
    return str(p.resolve())


def one_run(mode: str, args, tmp: Path, index: int) -> dict:
    out = tmp / f"{mode}{index}"
    cmd = [sys.executable, "-m", "robot_mirror", "launch", args.scenario, "--episodes", "1",
           "--seed", str(args.seed), "--out", str(out), "--quiet"]
    if args.blocks is not None:
        cmd += ["--set", f"task.blocks={args.blocks}"]
    if mode == "inprocess":
        cmd.append("--inprocess")
    start = time.perf_counter()
    proc = run_launch(cmd, args.timeout)
    if proc is None:
        raise BenchError(f"{mode} run {index} did not finish within {args.timeout:.0f} s")
    process_wall = time.perf_counter() - start
    path = out / "summary.json"
    if proc.returncode != 0 or not path.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"{mode} run {index} failed (exit {proc.returncode}): {last}")
    summary = json.loads(path.read_text())
    eps = summary.get("episodes") or []
    if not summary.get("complete") or not eps:
        raise BenchError(f"{mode} run {index}: incomplete summary ({summary.get('stopped_because')})")
    ep = eps[0]
    ticks = ep["sim_seconds"] * args.control_hz
    return {"ticks_per_s": round(ticks / ep["wall_seconds"], 1), "ticks": round(ticks),
            "sim_seconds": ep["sim_seconds"], "wall_seconds": ep["wall_seconds"],
            "process_wall_seconds": round(process_wall, 2), "success": ep.get("success")}


def machine_info() -> dict:
    from importlib.metadata import version

    def ver(name: str) -> str:
        try:
            return version(name)
        except Exception:
            return "unknown"

    return {"python": platform.python_version(), "pybullet": ver("pybullet"), "pyzmq": ver("pyzmq"),
            "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def run(args) -> dict:
    from robot_mirror.launch.scenario import load_scenario

    overrides = [f"seed={args.seed}"] + ([f"task.blocks={args.blocks}"] if args.blocks is not None else [])
    sc = load_scenario(args.scenario, overrides)
    args.control_hz = sc.control_hz
    results: dict[str, list[dict]] = {"multiprocess": [], "inprocess": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True, prefix="pipeline_speed-") as tmp:
        for r in range(args.rounds):
            order = ("multiprocess", "inprocess") if r % 2 == 0 else ("inprocess", "multiprocess")
            line = []
            for mode in order:
                res = one_run(mode, args, Path(tmp), r)
                results[mode].append(res)
                line.append(f"{mode} {res['ticks_per_s']:7.1f} ticks/s ({res['ticks']} ticks, "
                            f"{res['wall_seconds']:.1f} s)")
            print(f"round {r + 1}/{args.rounds}: " + "   ".join(line), flush=True)
    load_after = os.getloadavg()
    multi = statistics.median(x["ticks_per_s"] for x in results["multiprocess"])
    single = statistics.median(x["ticks_per_s"] for x in results["inprocess"])
    sims = {x["sim_seconds"] for v in results.values() for x in v}
    return {
        "ratio": round(multi / single, 3),
        "goal": "ratio >= 0.5",
        "paired_ratio_median": round(statistics.median(
            m["ticks_per_s"] / s["ticks_per_s"] for m, s in zip(results["multiprocess"], results["inprocess"])), 3),
        "multiprocess_ticks_per_s": multi,
        "inprocess_ticks_per_s": single,
        "multiprocess_ms_per_tick": round(1000.0 / multi, 3),
        "inprocess_ms_per_tick": round(1000.0 / single, 3),
        "same_episode_in_both_modes": len(sims) == 1,
        "rounds": results,
        "scenario": args.scenario, "seed": args.seed, "blocks": sc.task.blocks, "control_hz": sc.control_hz,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "machine": machine_info(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="launch/tower.yaml", help="scenario YAML (relative to the current folder or the project root)")
    ap.add_argument("--blocks", type=int, default=None, help="task.blocks (default: the scenario's, 6)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600.0, help="wall s allowed per launched run")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    from robot_mirror.errors import RobotMirrorError

    try:
        args.scenario = scenario_path(args.scenario)
        result = run(args)
    except (BenchError, RobotMirrorError) as exc:
        print(f"pipeline_speed: error: {exc}", file=sys.stderr)
        return 1
    print(f"multiprocess: {result['multiprocess_ticks_per_s']:7.1f} ticks/s "
          f"({result['multiprocess_ms_per_tick']:.2f} ms/tick)")
    print(f"inprocess   : {result['inprocess_ticks_per_s']:7.1f} ticks/s "
          f"({result['inprocess_ms_per_tick']:.2f} ms/tick)")
    print(f"ratio multiprocess/inprocess: {result['ratio']:.3f}  (goal >= 0.5)   "
          f"paired median: {result['paired_ratio_median']:.3f}"
          + ("" if result["same_episode_in_both_modes"] else "   WARNING: sim_seconds differ between runs"))
    print(f"load average before {result['loadavg_before']} after {result['loadavg_after']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
