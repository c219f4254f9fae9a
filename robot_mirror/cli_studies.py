"""``robot-mirror demos | export | train | train-motor | evaluate``: the study commands.

Kept apart from :mod:`robot_mirror.cli` (launch, nodes, keys, URDF checks)
so each file stays one screenful of argument handling; ``cli.build_parser``
adds these through :func:`add_study_commands`. Every user-caused problem is
one ``RobotMirrorError`` line, as everywhere in the command line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from robot_mirror.errors import RobotMirrorError
from robot_mirror.files import check_output

MAX_MOTOR_NOISE = 0.05  # m: a larger drift would knock the tower while recording


def add_study_commands(sub) -> None:
    """Register demos, export, train and evaluate on ``sub`` (argparse subparsers)."""
    _add_demos(sub)
    _add_export(sub)
    _add_train(sub)
    _add_train_motor(sub)
    _add_evaluate(sub)


def _add_demos(sub) -> None:
    p = sub.add_parser("demos", help="record expert demonstrations for the mirror network (docs/demos.md)")
    p.add_argument("scenario", help="scenario YAML, e.g. launch/imitation.yaml")
    p.add_argument("--episodes", type=int, help="number of episodes (default: the scenario's)")
    p.add_argument("--out", required=True, help="folder for meta.json and episode_NNNN.npz (new or empty)")
    p.add_argument("--seed", type=int, help="seed of the first episode (default: the scenario's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. task.rounds=2")
    p.add_argument("--motor-noise", type=float, default=0.0, metavar="M",
                   help="perturb the scripted arms' tool paths by this standard deviation (m, at most "
                        f"{MAX_MOTOR_NOISE}; DART) so the motor readout learns to recover (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demos)


def cmd_demos(args) -> int:
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.studies.demos import run_demos

    if args.episodes is not None and args.episodes < 1:
        raise RobotMirrorError(f"--episodes {args.episodes}: must be at least 1")
    if not (math.isfinite(args.motor_noise) and 0.0 <= args.motor_noise <= MAX_MOTOR_NOISE):
        raise RobotMirrorError(f"--motor-noise {args.motor_noise}: must be a number of metres in [0, {MAX_MOTOR_NOISE}]")
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    check_output(args.out, "--out", folder=True, empty=True)
    scenario = load_scenario(args.scenario, overrides)
    episodes = args.episodes if args.episodes is not None else scenario.episodes
    meta = run_demos(scenario, episodes=episodes, out=args.out, progress=not args.quiet,
                     motor_noise=args.motor_noise)
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
    p.add_argument("--data", required=True, nargs="+",
                   help="demonstration folder(s) written by `robot-mirror demos`; several (of one task, e.g. "
                        "different arm pairs) are trained on together")
    p.add_argument("--out", required=True, help="checkpoint file to write, e.g. models/mirror_tower.pt")
    p.add_argument("--epochs", type=int, help="passes over the training ticks (default 12)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, split and sampling (default 0)")
    p.add_argument("--no-align", action="store_true",
                   help="no synchronous alignment term (the ablation: align_weight = 0)")
    p.add_argument("--hidden", type=int, default=128, help="recurrent core size (default 128)")
    p.add_argument("--init", help="fine-tune: start from this checkpoint (e.g. sim_assets/mirror_tower_multi.pt) "
                                  "instead of fresh weights; its size and normalisation are kept (--hidden is "
                                  "not used)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    check_output(args.out, "--out", folder=False)  # before the training, not after it
    from robot_mirror.studies.training import cmd_train as run

    return run(args)


def _add_train_motor(sub) -> None:
    p = sub.add_parser("train-motor", help="fit the motor readout (motor: network) on a trained network's frozen "
                                           "core (docs/mirror.md)")
    p.add_argument("--checkpoint", required=True, help="a trained checkpoint of the task, e.g. sim_assets/mirror_tower.pt")
    p.add_argument("--data", required=True, nargs="+", help="demonstration folder(s) recorded with motor arrays")
    p.add_argument("--out", required=True, help="checkpoint file to write: the input plus the readout")
    p.add_argument("--seed", type=int, default=0, help="seed of the readout's weights, split and sampling")
    p.add_argument("--steps", type=int, default=20000, help="optimiser steps (default 20000, about a minute)")
    p.add_argument("--blind", action="store_true",
                   help="the ablation: the readout never sees the core state (context only)")
    p.set_defaults(func=cmd_train_motor)


def cmd_train_motor(args) -> int:
    check_output(args.out, "--out", folder=False)
    if args.steps < 1:
        raise RobotMirrorError(f"--steps {args.steps}: must be at least 1")
    from robot_mirror.mirror.motor_train import MotorOptions, train_motor

    metrics = train_motor(args.checkpoint, args.data, args.out,
                          MotorOptions(seed=args.seed, steps=args.steps, blind=args.blind))
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items() if k != "data"}
    print(json.dumps(shown))
    print(f"-> {args.out}")
    return 0


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
