"""``robot-mirror``: the command line.

Every user-caused problem ends in one line on stderr (``robot-mirror: error:
...``) and exit status 2; tracebacks are kept for real bugs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robot_mirror.errors import RobotMirrorError


def _add_launch(sub) -> None:
    p = sub.add_parser("launch", help="run a scenario (headless by default) and write summary.json")
    p.add_argument("scenario", help="scenario YAML, e.g. launch/tower.yaml")
    p.add_argument("--episodes", type=int, help="number of episodes (default: the scenario's)")
    p.add_argument("--seed", type=int, help="seed of the first episode (default: the scenario's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. task.blocks=8 or robots.left.urdf=my.urdf")
    p.add_argument("--record", action="store_true", help="write a video of each episode")
    p.add_argument("--gui", action="store_true", help="show the PyBullet window (needs a display)")
    p.add_argument("--out", help="run folder (default runs/<time>-<scenario>)")
    p.add_argument("--inprocess", action="store_true",
                   help="run everything in this process (default: one process per node over ZeroMQ)")
    p.add_argument("--quiet", action="store_true", help="no per-episode lines")
    p.set_defaults(func=cmd_launch)


def cmd_launch(args) -> int:
    import os

    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.launch.runner import run_inprocess
    from robot_mirror.launch.summary import format_summary, make_run_dir

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.episodes is not None:
        if args.episodes < 1:
            raise RobotMirrorError(f"--episodes {args.episodes}: must be at least 1")
        overrides.append(f"episodes={args.episodes}")
    if args.gui and not os.environ.get("DISPLAY"):
        raise RobotMirrorError("--gui needs a display (DISPLAY is not set); run headless without --gui")
    scenario = load_scenario(args.scenario, overrides)
    import robot_mirror.mirror  # noqa: F401  (registers policy: mirror)
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.policies import check_policies

    if not args.inprocess:
        from robot_mirror.bus.keys import Security

        Security.for_scenario(scenario)  # refuse an unsafe bus before making anything
        if args.gui:
            raise RobotMirrorError("--gui is available with --inprocess")
    elif any(r.policy == "external" for r in scenario.robots):
        raise RobotMirrorError(f"{scenario.source}: policy 'external' needs the multi-process launcher "
                               "(drop --inprocess)")
    # Before any process or run folder exists: the robots load and reach the
    # task (the environment's own checks), then every policy can run.
    env = TurnTakingEnv(scenario, gui=args.gui and args.inprocess)
    if not args.inprocess:
        env.close()
    check_policies(scenario, inprocess=args.inprocess)
    run_dir = make_run_dir(scenario, args.out)
    if args.inprocess:
        data = run_inprocess(env, episodes=scenario.episodes, run_dir=run_dir, overrides=overrides,
                             record=args.record, quiet=args.quiet)
    else:
        from robot_mirror.launch.supervisor import Supervisor

        supervisor = Supervisor(scenario, args.scenario, run_dir, overrides, quiet=args.quiet, record=args.record)
        try:
            data = supervisor.run()
        except RobotMirrorError as exc:
            raise RobotMirrorError(f"{exc} (partial summary: {run_dir / 'summary.json'})") from None
    print(format_summary(data, run_dir))
    return 0 if data["complete"] else 130


def _add_check_urdf(sub) -> None:
    p = sub.add_parser("check-urdf", help="inspect a URDF: joints, limits, end effector, gripper, reach")
    p.add_argument("urdf", help="URDF path or pybullet_data name")
    p.add_argument("--base", type=float, nargs=3, default=[-0.6, 0.0, 0.0], metavar=("X", "Y", "Z"))
    p.add_argument("--yaw", type=float, default=0.0, help="base heading, degrees")
    p.add_argument("--gripper", default="auto", choices=("auto", "fingers", "suction"))
    p.add_argument("--ee-link", help="end-effector link (default: detected)")
    p.add_argument("--scenario", default=None,
                   help="take task geometry from this scenario (default launch/tower.yaml settings)")
    p.add_argument("--robot", default="arm", help="robot name for the proposed --set lines (default arm)")
    p.set_defaults(func=cmd_check_urdf)


def cmd_check_urdf(args) -> int:
    from robot_mirror.sim.reach import check_urdf_report

    report = check_urdf_report(args.urdf, base=tuple(args.base), yaw_deg=args.yaw,
                               gripper=args.gripper, ee_link=args.ee_link, scenario=args.scenario,
                               robot=args.robot)
    print(report.text)
    if not report.reachable:
        raise RobotMirrorError(report.error)
    return 0


def _add_node(sub) -> None:
    from robot_mirror.nodes import NODE_KINDS

    p = sub.add_parser("node", help="run one process of the system (normally started by `launch`)")
    p.add_argument("kind", choices=NODE_KINDS)
    p.add_argument("--scenario", required=True, help="scenario YAML")
    p.add_argument("--endpoints", help="JSON map of endpoints (see docs/protocol.md)")
    p.add_argument("--endpoints-file", help="file with that JSON map (e.g. RUN/endpoints.json)")
    p.add_argument("--robot", help="robot name (policy nodes)")
    p.add_argument("--name", help="node name on the control channel")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--unsupervised", action="store_true",
                   help="no supervisor: no control channel, no heartbeats (e.g. a node on another machine)")
    p.add_argument("--record", metavar="DIR", help="sim node: write a video per episode into DIR")
    p.set_defaults(func=cmd_node)


def cmd_node(args) -> int:
    import logging

    from robot_mirror.bus.transport import Endpoints
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.nodes import NODE_KINDS, node_name

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    scenario = load_scenario(args.scenario, args.overrides)
    if bool(args.endpoints) == bool(args.endpoints_file):
        raise RobotMirrorError("node: give exactly one of --endpoints JSON or --endpoints-file PATH")
    endpoints = Endpoints.from_json(args.endpoints) if args.endpoints else Endpoints.load(args.endpoints_file)
    kind = NODE_KINDS[args.kind]
    options = {option: getattr(args, option) for option in kind.options}
    if kind.per_robot and args.robot not in scenario.robot_names:
        raise RobotMirrorError(f"node {args.kind}: --robot {args.robot!r} is not one of {scenario.robot_names}")
    name = args.name or node_name(args.kind, args.robot if kind.per_robot else None)
    node = kind.load()(scenario, endpoints, name=name, supervised=not args.unsupervised, **options)
    return node.run()


def _add_demos(sub) -> None:
    p = sub.add_parser("demos", help="record expert demonstrations for the mirror network (docs/demos.md)")
    p.add_argument("scenario", help="scenario YAML, e.g. launch/imitation.yaml")
    p.add_argument("--episodes", type=int, help="number of episodes (default: the scenario's)")
    p.add_argument("--out", required=True, help="folder for meta.json and episode_NNNN.npz (new or empty)")
    p.add_argument("--seed", type=int, help="seed of the first episode (default: the scenario's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. task.rounds=2")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demos)


def cmd_demos(args) -> int:
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.studies.demos import run_demos

    if args.episodes is not None and args.episodes < 1:
        raise RobotMirrorError(f"--episodes {args.episodes}: must be at least 1")
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    scenario = load_scenario(args.scenario, overrides)
    episodes = args.episodes if args.episodes is not None else scenario.episodes
    meta = run_demos(scenario, episodes=episodes, out=args.out, progress=not args.quiet)
    ticks = sum(e["ticks"] for e in meta["episodes"])
    ok = sum(e["success"] for e in meta["episodes"])
    print(f"{len(meta['episodes'])} episode(s), {ticks} ticks, {ok} successful -> {Path(args.out) / 'meta.json'}")
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train the mirror network on demonstrations (docs/mirror.md)")
    p.add_argument("--data", required=True, help="demonstration folder written by `robot-mirror demos`")
    p.add_argument("--out", required=True, help="checkpoint file to write, e.g. models/mirror_tower.pt")
    p.add_argument("--epochs", type=int, help="passes over the training ticks (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, split and sampling (default 0)")
    p.add_argument("--no-contrastive", action="store_true",
                   help="no InfoNCE term (the ablation: contrastive_weight = 0)")
    p.add_argument("--hidden", type=int, default=128, help="recurrent core size (default 128)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from robot_mirror.studies.training import cmd_train as run

    return run(args)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="mirror-network metrics, controls, ablations and plots")
    p.add_argument("--checkpoint", action="append", required=True,
                   help="MirrorNet checkpoint (repeat: one per task, e.g. tower and imitation)")
    p.add_argument("--scenario", action="append", required=True, help="scenario to evaluate on (repeatable)")
    p.add_argument("--episodes", type=int, default=4, help="evaluation episodes per scenario (default 4)")
    p.add_argument("--online-episodes", type=int, help="closed-loop episodes per policy (default: --episodes)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first evaluation episode")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--cross", default="launch/tower_mixed.yaml",
                   help="scenario with a partner of another make, for the zero-shot figures ('' to skip)")
    p.add_argument("--out", required=True, help="folder for metrics.json and the plots")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from robot_mirror.studies.evaluate import evaluate

    if args.episodes < 1:
        raise RobotMirrorError(f"--episodes {args.episodes}: must be at least 1")
    metrics = evaluate(args.checkpoint, args.scenario, episodes=args.episodes, out=args.out, seed=args.seed,
                       overrides=args.overrides, online_episodes=args.online_episodes,
                       cross_scenario=args.cross or None)
    print(f"\n== evaluation ({', '.join(metrics['measured_tasks'])}) -> {args.out}/metrics.json ==")
    for key, value in metrics.items():
        if key in ("plots", "per_task", "seed", "episodes", "measured_tasks"):
            continue
        shown = "-" if value is None else (f"{value:.4f}" if isinstance(value, float) else value)
        print(f"  {key:<40} {shown}")
    print(f"  plots: {', '.join(metrics['plots'])}")
    return 0


def _add_keys(sub) -> None:
    p = sub.add_parser("keys", help="make CURVE key pairs for a bus bound beyond loopback")
    p.add_argument("folder")
    p.set_defaults(func=cmd_keys)


def cmd_keys(args) -> int:
    from robot_mirror.bus.keys import make_keys

    for path in make_keys(args.folder):
        print(path)
    print(f"set bus.keys_dir: {args.folder} in the scenario (and bus.interface to the address to bind)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robot-mirror",
        description="Two simulated arms taking turns on a shared task.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_launch(sub)
    _add_check_urdf(sub)
    _add_node(sub)
    _add_keys(sub)
    _add_demos(sub)
    _add_train(sub)
    _add_evaluate(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RobotMirrorError as exc:
        print(f"robot-mirror: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robot-mirror: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
