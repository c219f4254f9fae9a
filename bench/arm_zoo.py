"""Does "any URDF" hold? The arm zoo, judged two independent ways.

For the named arms (pybullet_data's Panda, iiwa, xArm6 and
``urdf/mirror_arm.urdf``) plus N generated ones (``robot_mirror.sim.zoo``):

1. an independent judge (``robot_mirror.sim.zoo_reach``: its own URDF
   reader, numpy forward kinematics sampled densely, its own polish; no IK
   code shared) decides whether the tower task is reachable from the arm's base;
2. ``check-urdf``'s verdict (``robot_mirror.sim.reach.check_urdf_report``)
   is compared with it: ``check_urdf_pass_rate`` among reachable arms,
   ``false_reach_rate`` = check-urdf said reachable, the judge said not
   (over the arms check-urdf passed);
3. every reachable arm plays one tower episode with the scripted expert
   opposite a Panda (``tower_success_with_panda``), and reachable arms play
   each other in pairs (``tower_success_pairs``); zone violations and tower
   disturbances (``tower_disturbances``: tower blocks moved while unheld)
   summed, and the arms' smallest distance (``min_arm_distance``);
4. every ``Kinematics.ik`` call during those episodes is timed
   (``ik_ms_p50``/``ik_ms_p99``: the per-tick cost), and so are the cold
   reach-check solves (``ik_check_ms_p50``/``p99``).

    python bench/arm_zoo.py --arms 50 --json docs/results/arm_zoo.json [--workers 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import from_root, percentiles, pool_figures, run_episode, run_pool, write_json  # noqa: E402

_TIMES: list[float] = []  # per worker: seconds of each timed ik call


def _timed_ik() -> None:
    """Wrap Kinematics.ik so every call is timed (in this process)."""
    from robot_mirror.sim.kinematics import Kinematics

    if getattr(Kinematics.ik, "_timed", False):
        return
    original = Kinematics.ik

    def ik(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            _TIMES.append(time.perf_counter() - start)

    ik._timed = True
    Kinematics.ik = ik


def judge(arm) -> dict:
    """check-urdf's verdict and the independent one, for one zoo arm."""
    from robot_mirror.sim.assets import resolve_urdf
    from robot_mirror.sim.reach import check_urdf_report
    from robot_mirror.sim.zoo_reach import ReachOracle, reachable

    _timed_ik()
    _TIMES.clear()
    start = time.perf_counter()
    report = check_urdf_report(arm.urdf, base=arm.base, yaw_deg=arm.yaw_deg, gripper=arm.gripper)
    check_s = time.perf_counter() - start
    ik_times = list(_TIMES)
    ee, offset, poses = _arm_facts(arm)
    oracle = ReachOracle(resolve_urdf(arm.urdf, None), ee, arm.base, math.radians(arm.yaw_deg), offset)
    return {"name": arm.name, "pattern": arm.pattern, "check_urdf": report.reachable,
            "reachable": reachable(oracle, poses), "check_seconds": round(check_s, 3),
            "error": report.error, "ik_times": ik_times}


def _arm_facts(arm) -> tuple[str, float, list]:
    """End-effector link, tool offset and the task's poses, as check-urdf sees them."""
    from robot_mirror.config.scenario import TowerConfig
    from robot_mirror.sim.kinematics import Kinematics
    from robot_mirror.sim.spec import RobotSpec
    from robot_mirror.sim.tasks import make_task

    spec = RobotSpec(name="candidate", urdf=arm.urdf, base_position=arm.base,
                     base_yaw=math.radians(arm.yaw_deg), gripper=arm.gripper)
    partner = RobotSpec(name="partner", urdf=arm.urdf, base_position=(-arm.base[0], -arm.base[1], arm.base[2]),
                        base_yaw=math.radians(arm.yaw_deg) + math.pi)
    task = make_task(TowerConfig(), [spec, partner])
    kin = Kinematics(spec, home_reach=task.home_reach(spec), zone=task.zone)
    try:
        return kin.arm.ee_link_name, kin.arm.tool_offset, [p for _, p in task.reach_poses()["candidate"]]
    finally:
        kin.close()


def _robot_overrides(side: str, arm, mirrored: bool) -> list[str]:
    x, y, z = arm.base
    base = [-x, -y, z] if mirrored else [x, y, z]
    yaw = arm.yaw_deg + 180.0 if mirrored else arm.yaw_deg
    return [f"robots.{side}.urdf={arm.urdf}", f"robots.{side}.gripper={arm.gripper}",
            f"robots.{side}.base=[{base[0]},{base[1]},{base[2]}]", f"robots.{side}.yaw_deg={yaw}",
            f"robots.{side}.policy=expert"]


def episode(job) -> dict:
    """One tower episode: ``left`` arm on the left, ``right`` mirrored (None: a Panda)."""
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.env import TurnTakingEnv

    kind, left, right, seed = job
    _timed_ik()
    overrides = _robot_overrides("left", left, False)
    overrides += _robot_overrides("right", right, True) if right is not None else ["robots.right.policy=expert"]
    env = None
    try:
        env = TurnTakingEnv(load_scenario(from_root("launch/tower.yaml"), overrides))
        _TIMES.clear()
        summary = run_episode(env, seed)
        return {"kind": kind, "arms": [left.name, right.name if right else "panda"], "seed": seed,
                "success": bool(summary["success"]), "zone_violations": int(summary["zone_violations"]),
                "tower_disturbances": int(summary.get("tower_disturbances", 0)),
                "min_arm_distance": float(summary["min_arm_distance"]), "ik_times": list(_TIMES)}
    except Exception as exc:  # noqa: BLE001 - a zoo arm that cannot play is a figure, not a crash
        return {"kind": kind, "arms": [left.name, right.name if right else "panda"], "seed": seed,
                "success": False, "zone_violations": 0, "tower_disturbances": 0, "min_arm_distance": 1.0,
                "ik_times": [], "error": f"{type(exc).__name__}: {exc}"}
    finally:
        if env is not None:
            env.close()


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def summarise(verdicts: list[dict], episodes: list[dict]) -> dict:
    reachable = [v for v in verdicts if v["reachable"]]
    passed = [v for v in verdicts if v["check_urdf"]]
    false_reach = [v for v in passed if not v["reachable"]]
    with_panda = [e for e in episodes if e["kind"] == "panda"]
    pairs = [e for e in episodes if e["kind"] == "pair"]
    tick_ms = [1000 * t for e in episodes for t in e["ik_times"]]
    check_ms = [1000 * t for v in verdicts for t in v["ik_times"]]
    p50, p99 = percentiles(tick_ms, 50, 99) if tick_ms else (None, None)
    c50, c99 = percentiles(check_ms, 50, 99) if check_ms else (None, None)
    return {
        "arms": len(verdicts), "reachable_arms": len(reachable),
        "check_urdf_pass_rate": _rate(sum(v["check_urdf"] for v in reachable), len(reachable)),
        "false_reach_rate": _rate(len(false_reach), len(passed)),
        "tower_success_with_panda": _rate(sum(e["success"] for e in with_panda), len(with_panda)),
        "tower_success_pairs": _rate(sum(e["success"] for e in pairs), len(pairs)),
        "zone_violations": sum(e["zone_violations"] for e in episodes),
        "tower_disturbances": sum(e["tower_disturbances"] for e in episodes),
        "min_arm_distance": min((e["min_arm_distance"] for e in episodes), default=None),
        "ik_ms_p50": None if p50 is None else round(p50, 4), "ik_ms_p99": None if p99 is None else round(p99, 4),
        "ik_check_ms_p50": None if c50 is None else round(c50, 3),
        "ik_check_ms_p99": None if c99 is None else round(c99, 3),
        "missed_reachable": [v["name"] for v in reachable if not v["check_urdf"]],
        "false_reachable": [v["name"] for v in false_reach],
        "failed_episodes": [{k: e[k] for k in ("kind", "arms", "seed", *(("error",) if "error" in e else ()))}
                            for e in episodes if not e["success"]],
        "unsafe_episodes": [{k: e[k] for k in ("kind", "arms", "seed", "zone_violations", "tower_disturbances",
                                                "min_arm_distance")} for e in episodes
                            if e["zone_violations"] or e["tower_disturbances"] or e["min_arm_distance"] < 0.05],
        "verdicts": [{k: v[k] for k in ("name", "pattern", "reachable", "check_urdf", "check_seconds")}
                     for v in verdicts],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arms", type=int, default=10, help="generated arms (the named four come on top)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated arms and the episodes")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--no-episodes", action="store_true", help="verdicts and reach-check timing only")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)
    from robot_mirror.sim.zoo import zoo

    folder = Path(tempfile.mkdtemp(prefix="arm_zoo_"))
    arms = zoo(args.arms, folder, seed=args.seed)
    by_name = {a.name: a for a in arms}
    verdicts: list[dict] = []
    wall = run_pool(judge, arms, args.workers, verdicts.append)
    verdicts.sort(key=lambda v: list(by_name).index(v["name"]))
    playable = [by_name[v["name"]] for v in verdicts if v["reachable"] and v["check_urdf"]]
    jobs = [("panda", a, None, args.seed + i) for i, a in enumerate(playable)]
    jobs += [("pair", playable[i], playable[i + 1], args.seed + i) for i in range(0, len(playable) - 1, 2)]
    episodes: list[dict] = []
    if not args.no_episodes:
        wall += run_pool(episode, jobs, args.workers, episodes.append)
    result = {**summarise(verdicts, episodes), "generated_arms": args.arms, "arm_seed": args.seed,
              **pool_figures(len(jobs), args.workers, wall)}
    for key in ("arms", "reachable_arms", "check_urdf_pass_rate", "false_reach_rate", "tower_success_with_panda",
                "tower_success_pairs", "zone_violations", "tower_disturbances", "min_arm_distance", "ik_ms_p50", "ik_ms_p99", "ik_check_ms_p50",
                "ik_check_ms_p99", "missed_reachable", "false_reachable"):
        print(f"  {key:<26} {result[key]}")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
