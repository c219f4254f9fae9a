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
inprocess ticks/s (goal >= 0.7). The script also checks that both modes
simulated the same number of seconds (lock-step determinism) and reports
the load average before/after and the machine.

    python bench/pipeline_speed.py [--scenario launch/tower.yaml] [--blocks 6]
                                   [--seed 0] [--rounds 3] [--json out.json]

About ``rounds * 35`` s with the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import (BenchError, launch_command, launch_summary, loadavg, machine_info,  # noqa: E402
                     median_of, package_version, print_load, print_round, round_order, run_on_scenario,
                     temp_folder, write_json)


def one_run(mode: str, args, tmp: Path, index: int) -> dict:
    out = tmp / f"{mode}{index}"
    extra = ["--seed", str(args.seed)]
    if args.blocks is not None:
        extra += ["--set", f"task.blocks={args.blocks}"]
    if mode == "inprocess":
        extra.append("--inprocess")
    summary, process_wall = launch_summary(launch_command(args.scenario, out, extra), out, args.timeout,
                                           f"{mode} run {index}")
    eps = summary.get("episodes") or []
    if not summary.get("complete") or not eps:
        raise BenchError(f"{mode} run {index}: incomplete summary ({summary.get('stopped_because')})")
    ep = eps[0]
    ticks = ep["sim_seconds"] * args.control_hz
    return {"ticks_per_s": round(ticks / ep["wall_seconds"], 1), "ticks": round(ticks),
            "sim_seconds": ep["sim_seconds"], "wall_seconds": ep["wall_seconds"],
            "process_wall_seconds": round(process_wall, 2), "success": ep.get("success")}


def run(args) -> dict:
    from robot_mirror.config.scenario import load_scenario

    overrides = [f"seed={args.seed}"] + ([f"task.blocks={args.blocks}"] if args.blocks is not None else [])
    sc = load_scenario(args.scenario, overrides)
    args.control_hz = sc.control_hz
    results: dict[str, list[dict]] = {"multiprocess": [], "inprocess": []}
    load_before = loadavg()
    with temp_folder("pipeline_speed-") as tmp:
        for r in range(args.rounds):
            line = []
            for mode in round_order(r, "multiprocess", "inprocess"):
                res = one_run(mode, args, tmp, r)
                results[mode].append(res)
                line.append(f"{mode} {res['ticks_per_s']:7.1f} ticks/s ({res['ticks']} ticks, "
                            f"{res['wall_seconds']:.1f} s)")
            print_round(r, args.rounds, line)
    load_after = loadavg()
    multi = median_of(results["multiprocess"], "ticks_per_s")
    single = median_of(results["inprocess"], "ticks_per_s")
    sims = {x["sim_seconds"] for v in results.values() for x in v}
    return {
        "ratio": round(multi / single, 3),
        "goal": "ratio >= 0.7",
        "paired_ratio_median": round(statistics.median(
            m["ticks_per_s"] / s["ticks_per_s"] for m, s in zip(results["multiprocess"], results["inprocess"])), 3),
        "multiprocess_ticks_per_s": multi,
        "inprocess_ticks_per_s": single,
        "multiprocess_ms_per_tick": round(1000.0 / multi, 3),
        "inprocess_ms_per_tick": round(1000.0 / single, 3),
        "same_episode_in_both_modes": len(sims) == 1,
        "rounds": results,
        "scenario": args.scenario, "seed": args.seed, "blocks": sc.task.blocks, "control_hz": sc.control_hz,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "machine": machine_info({"pybullet": package_version("pybullet"), "pyzmq": package_version("pyzmq")}),
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
    result = run_on_scenario("pipeline_speed", run, args)
    if result is None:
        return 1
    print(f"multiprocess: {result['multiprocess_ticks_per_s']:7.1f} ticks/s "
          f"({result['multiprocess_ms_per_tick']:.2f} ms/tick)")
    print(f"inprocess   : {result['inprocess_ticks_per_s']:7.1f} ticks/s "
          f"({result['inprocess_ms_per_tick']:.2f} ms/tick)")
    print(f"ratio multiprocess/inprocess: {result['ratio']:.3f}  (goal >= 0.7)   "
          f"paired median: {result['paired_ratio_median']:.3f}"
          + ("" if result["same_episode_in_both_modes"] else "   WARNING: sim_seconds differ between runs"))
    print_load(result)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
