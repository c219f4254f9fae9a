"""``robot-mirror``: the command line.

Every user-caused problem ends in one line on stderr (``robot-mirror: error:
...``) and exit status 2; tracebacks are kept for real bugs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from robot_mirror.cli_studies import add_study_commands
from robot_mirror.errors import RobotMirrorError
from robot_mirror.files import check_output


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
    add_study_commands(sub)
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
