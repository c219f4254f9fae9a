"""``robot-mirror``: the command line.

Every user-caused problem ends in one line on stderr (``robot-mirror: error:
...``) and exit status 2; tracebacks are kept for real bugs.
"""

from __future__ import annotations

import json

import argparse
import os
import sys
import tempfile
from pathlib import Path

from robot_mirror.errors import RobotMirrorError


def check_output(value: str, flag: str, *, folder: bool, empty: bool = False) -> Path:
    """Refuse an output path that cannot be written, before any work starts.

    Why up front: a training run or a launch that only finds out at the end
    that its output cannot be written wastes the run, and a half-made run
    folder is worse than none. ``folder``: the path is a folder to create or
    reuse (``empty``: it must be new or empty); else a file whose folder must
    take new files (written atomically: temp file + rename). Nothing is
    created here: writability is probed with an anonymous file.
    """
    path = Path(value)
    if path.exists():
        if folder and not path.is_dir():
            raise RobotMirrorError(f"{flag} {value}: exists and is not a folder")
        if not folder and path.is_dir():
            raise RobotMirrorError(f"{flag} {value}: is a folder; give a file path")
        if folder and empty and any(path.iterdir()):
            raise RobotMirrorError(f"{flag} {value}: the folder is not empty; give a new or empty folder")
    target = path.absolute() if folder else path.absolute().parent
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir():
        raise RobotMirrorError(f"{flag} {value}: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise RobotMirrorError(f"{flag} {value}: cannot write in {existing} ({exc.strerror})") from None
    return path


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
    p.add_argument("--viewer", action="store_true",
                   help="show the run live in a rerun viewer (starts one, or uses the one already open; docs/viewer.md)")
    p.add_argument("--viewer-url", metavar="URL",
                   help="send the viewer's data to the rerun viewer at URL (e.g. rerun+http://HOST:9876/proxy)")
    p.add_argument("--rrd", metavar="FILE", help="record the viewer's data headless to FILE (open it with `rerun FILE`)")
    p.add_argument("--viewer-camera", action="store_true",
                   help="with --inprocess and a viewer or --rrd: add a camera image every 0.5 s simulated")
    p.set_defaults(func=cmd_launch)


def cmd_launch(args) -> int:
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
    if args.out is not None:
        check_output(args.out, "--out", folder=True)
    viewer = launch_viewer(args)
    scenario = load_scenario(args.scenario, overrides)
    import robot_mirror.mirror  # noqa: F401  (registers policy: mirror)
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.policies import check_policies

    if not args.inprocess:
        check_keys_dir(scenario)  # before anything is made
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
                             record=args.record, quiet=args.quiet, viewer=viewer)
    else:
        from robot_mirror.launch.supervisor import Supervisor

        supervisor = Supervisor(scenario, args.scenario, run_dir, overrides, quiet=args.quiet, record=args.record,
                                viewer=viewer)
        try:
            data = supervisor.run()
        except RobotMirrorError as exc:
            raise partial_summary_error(exc, run_dir) from None
    print(format_summary(data, run_dir))
    return 0 if data["complete"] else 130


def launch_viewer(args):
    """The launch's viewer settings (None: no viewer), checked before anything runs."""
    from robot_mirror.viewer.config import viewer_from_flags

    if args.rrd is not None:
        check_output(args.rrd, "--rrd", folder=False)
    return viewer_from_flags(show=args.viewer, url=args.viewer_url, rrd=args.rrd, camera=args.viewer_camera,
                             inprocess=args.inprocess)


def check_keys_dir(scenario) -> None:
    """``bus.keys_dir``, if set, names a folder made by ``robot-mirror keys``
    (the launch adds the missing per-node pairs); else the launch makes
    fresh keys in ``RUN/keys``."""
    keys = scenario.bus.keys_dir
    if keys is None:
        return
    path = Path(keys) if Path(keys).is_absolute() else scenario.base_dir / keys
    if not (path / "server.key_secret").is_file():
        raise RobotMirrorError(f"{scenario.source}: bus.keys_dir = '{keys}': no server key there "
                               "(make the folder with `robot-mirror keys DIR`, or leave bus.keys_dir unset: "
                               "every launch makes its own keys in RUN/keys)")


def partial_summary_error(exc: RobotMirrorError, run_dir: Path) -> RobotMirrorError:
    """The one line for a run that stopped early: what stopped it, then where
    the partial summary is (said once, with its path)."""
    reason = str(exc).removesuffix("; partial summary kept")
    return RobotMirrorError(f"{reason}; partial summary: {run_dir / 'summary.json'}")


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
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, as for launch")
    p.add_argument("--keys", metavar="DIR",
                   help="the run's CURVE keys: server.key and this node's own NAME.key_secret "
                        "(default: the keys/ folder next to --endpoints-file, if any)")
    p.add_argument("--policy", metavar="NAME",
                   help="policy nodes: run this policy for --robot instead of the scenario's (needed when the "
                        "scenario says 'external'; without it such a node runs the task's expert)")
    p.add_argument("--unsupervised", action="store_true",
                   help="no supervisor: no control channel, no heartbeats (e.g. a node on another machine); "
                        "a policy or perception node exits once the run has ended")
    p.add_argument("--record", metavar="DIR", help="sim node: write a video per episode into DIR")
    p.add_argument("--viewer", metavar="WHERE",
                   help="viewer node: 'spawn' (start or use a local rerun viewer) or a rerun URL")
    p.add_argument("--rrd", metavar="FILE", help="viewer node: record to FILE")
    p.set_defaults(func=cmd_node)


def cmd_node(args) -> int:
    import logging

    from robot_mirror.bus.keys import check_endpoints
    from robot_mirror.bus.transport import Endpoints
    from robot_mirror.nodes import NODE_KINDS, node_name

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if bool(args.endpoints) == bool(args.endpoints_file):
        raise RobotMirrorError("node: give exactly one of --endpoints JSON or --endpoints-file PATH")
    endpoints = Endpoints.from_json(args.endpoints) if args.endpoints else Endpoints.load(args.endpoints_file)
    kind = NODE_KINDS[args.kind]
    scenario = load_node_scenario(args, kind.per_robot)
    options = {option: getattr(args, option) for option in kind.options}
    keys = node_keys(args, scenario)
    if keys is None:
        check_endpoints(endpoints, f"node {args.kind}")
    name = args.name or node_name(args.kind, args.robot if kind.per_robot else None)
    node = kind.load()(scenario, endpoints, name=name, supervised=not args.unsupervised, keys_dir=keys, **options)
    return node.run()


def load_node_scenario(args, per_robot: bool):
    """The scenario as this node runs it: a policy node for a robot the
    scenario drives from outside (``policy: external``, e.g. the run's own
    tower_external.yaml on the remote machine) runs ``--policy`` or, without
    it, the task's scripted expert, said in one line."""
    from robot_mirror.config.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    if args.policy is not None and not per_robot:
        raise RobotMirrorError(f"node {args.kind}: --policy is for policy nodes")
    if not per_robot:
        return scenario
    if args.robot not in scenario.robot_names:
        raise RobotMirrorError(f"node {args.kind}: --robot {args.robot!r} is not one of {scenario.robot_names}")
    policy = args.policy
    if policy is None and scenario.robot(args.robot).policy == "external":
        policy = "expert"
        print(f"node {args.kind}: robots.{args.robot}.policy is 'external' in {scenario.source}; "
              "running 'expert' (choose with --policy NAME)", file=sys.stderr, flush=True)
    if policy is None:
        return scenario
    return load_scenario(args.scenario, [*args.overrides, f"robots.{args.robot}.policy={policy}"])


def node_keys(args, scenario) -> Path | None:
    """``--keys``; else ``keys/`` beside ``--endpoints-file`` (a run folder);
    else ``bus.keys_dir``; else None (loopback only)."""
    if args.keys:
        return Path(args.keys)
    if args.endpoints_file and (Path(args.endpoints_file).parent / "keys").is_dir():
        return Path(args.endpoints_file).parent / "keys"
    keys = scenario.bus.keys_dir
    if keys is None:
        return None
    return Path(keys) if Path(keys).is_absolute() else scenario.base_dir / keys


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
    check_output(args.out, "--out", folder=True, empty=True)
    scenario = load_scenario(args.scenario, overrides)
    episodes = args.episodes if args.episodes is not None else scenario.episodes
    meta = run_demos(scenario, episodes=episodes, out=args.out, progress=not args.quiet)
    ticks = sum(e["ticks"] for e in meta["episodes"])
    ok = sum(e["success"] for e in meta["episodes"])
    print(f"{len(meta['episodes'])} episode(s), {ticks} ticks, {ok} successful -> {Path(args.out) / 'meta.json'}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write a demonstration folder as LeRobot datasets, one per arm "
                                      "(docs/lerobot.md)")
    p.add_argument("demos", help="demonstration folder written by `robot-mirror demos`")
    p.add_argument("--format", required=True, help="output format: lerobot (LeRobotDataset v3.0)")
    p.add_argument("--out", required=True, help="folder for the datasets, OUT/<robot name>/ (new or empty)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    if args.format != "lerobot":
        raise RobotMirrorError(f"--format {args.format}: unknown; the one format is lerobot")
    check_output(args.out, "--out", folder=True, empty=True)
    from robot_mirror.studies.lerobot_export import export_lerobot

    for folder, info in export_lerobot(args.demos, args.out).items():
        print(f"{folder}: {info['total_episodes']} episode(s), {info['total_frames']} frames "
              f"-> {Path(args.out) / folder} (LeRobotDataset {info['codebase_version']})")
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train the mirror network on demonstrations (docs/mirror.md)")
    p.add_argument("--data", required=True, help="demonstration folder written by `robot-mirror demos`")
    p.add_argument("--out", required=True, help="checkpoint file to write, e.g. models/mirror_tower.pt")
    p.add_argument("--epochs", type=int, help="passes over the training ticks (default 12)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, split and sampling (default 0)")
    p.add_argument("--no-align", action="store_true",
                   help="no synchronous alignment term (the ablation: align_weight = 0)")
    p.add_argument("--hidden", type=int, default=128, help="recurrent core size (default 128)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    check_output(args.out, "--out", folder=False)  # before the training, not after it
    from robot_mirror.studies.training import cmd_train as run

    return run(args)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="mirror-network metrics with their nulls, baselines and plots (docs/mirror.md)")
    p.add_argument("--checkpoint", action="append", required=True,
                   help="MirrorNet checkpoint (repeat: one per task); its _seedN / _noalign siblings are found")
    p.add_argument("--scenario", action="append", required=True, help="scenario to evaluate on (repeatable)")
    p.add_argument("--episodes", type=int, default=8, help="demonstration episodes per level (half fit, half scored)")
    p.add_argument("--online-episodes", type=int, default=0,
                   help="closed-loop episodes per policy variant and level (0: offline only)")
    p.add_argument("--levels", default="default,stress", help="perception levels, comma-separated")
    p.add_argument("--permutations", type=int, default=1000, help="permutations of each null (default 1000)")
    p.add_argument("--workers", type=int, choices=(1, 2), default=1, help="processes for the online episodes")
    p.add_argument("--seed", type=int, default=0, help="seed of the first evaluation episode (below 1000: unseen)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", required=True, help="folder for metrics.json and the plots")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from robot_mirror.studies.evaluate import LEVELS, evaluate

    if args.episodes < 2:
        raise RobotMirrorError(f"--episodes {args.episodes}: must be at least 2 (half fit, half scored)")
    levels = [lv.strip() for lv in args.levels.split(",") if lv.strip()]
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise RobotMirrorError(f"--levels {args.levels}: each must be one of {', '.join(LEVELS)}")
    metrics = evaluate(args.checkpoint, args.scenario, episodes=args.episodes, out=args.out, seed=args.seed,
                       overrides=args.overrides, online_episodes=args.online_episodes, levels=levels,
                       permutations=args.permutations, workers=args.workers)
    print(f"\n== evaluation -> {args.out}/metrics.json ==")
    for key, value in metrics.items():
        if key in ("tasks", "plots", "seeds", "baselines"):
            continue
        print(f"  {key:<44} {json.dumps(value, default=str)[:110]}")
    print(f"  plots: {', '.join(metrics['plots'])}")
    return 0


def _add_keys(sub) -> None:
    p = sub.add_parser("keys", help="make a CURVE key folder to reuse across runs (each launch otherwise "
                                     "makes its own in RUN/keys)")
    p.add_argument("folder")
    p.add_argument("--client", action="append", default=[], metavar="NAME",
                   help="also make a client pair NAME (e.g. controller.left); the launch adds its nodes' pairs")
    p.set_defaults(func=cmd_keys)


def cmd_keys(args) -> int:
    from robot_mirror.bus.keys import make_keys

    check_output(args.folder, "keys", folder=True)
    for path in make_keys(args.folder, args.client):
        print(path)
    print(f"set bus.keys_dir: {args.folder} in the scenario; give a remote process server.key and its own "
          "NAME.key_secret; remove allowed/NAME.key to revoke NAME")
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
    _add_export(sub)
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
