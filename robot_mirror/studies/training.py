"""``robot-mirror train``: train the mirror network and report its held-out metrics.

The training itself is :func:`robot_mirror.mirror.train.train`; this module
gives it the study's measure of a network
(:func:`robot_mirror.studies.metrics.evaluate_model`, with the controls) and
prints the report.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robot_mirror.errors import RobotMirrorError
from robot_mirror.mirror.train import Evaluate, TrainOptions, TrainResult, train
from robot_mirror.studies.metrics import evaluate_model


def held_out_evaluation(*, controls: bool = True, seed: int = 0) -> Evaluate:
    """``evaluate`` for :func:`~robot_mirror.mirror.train.train`: every offline
    metric of the trained network on the held-out streams (vocabulary from the
    network's config), with the controls when ``controls``."""
    def evaluate(model, streams) -> dict:
        return evaluate_model(model, streams, segments=model.config.segments, n_targets=model.config.n_targets,
                              controls=controls, seed=seed)

    return evaluate


def format_report(result: TrainResult) -> str:
    m = result.metrics
    lines = [f"trained {result.steps} steps in {result.seconds:.0f} s"]
    if result.checkpoint is not None:
        lines.append(f"checkpoint: {result.checkpoint} ({result.checkpoint.stat().st_size / 1e6:.2f} MB)")
    if "heads" in m:
        lines += _metric_lines(m)
    return "\n".join(lines)


def _metric_lines(m: dict) -> list[str]:
    h, ps, pt, mi = m["heads"], m["probe_segment"], m["probe_target"], m["mirror_index"]
    lines = [
        f"held-out ({m['evaluated_on']}, {m['ticks']} ticks): segment acc self {h['segment_self']:.3f} / "
        f"observed {h['segment_obs']:.3f}; target acc self {h['target_self']:.3f} / observed {h['target_obs']:.3f}",
        f"cross-condition probe, segment: self->obs {ps['self_to_obs']:.3f}, obs->self {ps['obs_to_self']:.3f}"
        f" (chance {ps['chance_obs']:.3f}); target: self->obs {pt['self_to_obs']:.3f}, "
        f"obs->self {pt['obs_to_self']:.3f} (chance {pt['chance_obs']:.3f})",
        f"mirror index (CMNI) {mi['cmni']:.4f}, mirror units {mi['mirror_units']:.2f}",
        f"early recognition at half turn {m['early_recognition_at_half']:.3f}; turn-end MAE "
        f"{m['turn_end']['mae_s']:.2f} s, lead {m['turn_end']['lead_time_s']:.2f} s; motor MAE "
        f"{m['motor']['mae_rad']:.4f} rad (hold {m['motor']['hold_baseline_mae_rad']:.4f})",
    ]
    if "controls" in m:
        u, s = m["controls"]["untrained"], m["controls"]["shuffled_partner"]
        shuffled = (f"shuffled partner probe self->obs {s['probe_segment_self_to_obs']:.3f}, CMNI {s['cmni']:.4f}"
                    if s else "shuffled partner n/a (one held-out episode)")
        lines.append(f"controls: untrained probe self->obs {u['probe_segment_self_to_obs']:.3f}, CMNI "
                     f"{u['cmni']:.4f}; {shuffled}")
    return lines


def cmd_train(args) -> int:
    """``robot-mirror train`` (argument parsing lives in robot_mirror.cli)."""
    # One thread: reproducible results whatever the machine, and small ops (the probes' L-BFGS)
    # are many times slower with a thread pool on a busy 2-core machine.
    torch.set_num_threads(1)
    options = TrainOptions(seed=args.seed, hidden=args.hidden, progress=not args.quiet,
                           contrastive_weight=0.0 if args.no_contrastive else TrainOptions.contrastive_weight)
    if args.epochs is not None:
        options.epochs = args.epochs
    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise RobotMirrorError(f"--out {out}: is a folder; give a checkpoint file path, e.g. {out}/mirror.pt")
    result = train(args.data, out, options, evaluate=held_out_evaluation(seed=options.seed))
    print(format_report(result))
    return 0
