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
from robot_mirror.studies.scorecard import scorecard


def held_out_evaluation(*, permutations: int = 200, controls: bool = True, seed: int = 0) -> Evaluate:
    """``evaluate`` for :func:`~robot_mirror.mirror.train.train`: the scorecard of
    the trained network on the held-out streams (its ``mirror_units`` are what
    ``policy: mirror_lesioned`` silences)."""
    def evaluate(model, train_streams, test_streams, hz) -> dict:
        return scorecard(model, train_streams, test_streams, hz=hz, permutations=permutations,
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
    h = m["heads"]
    lines = [
        f"held-out ({m['evaluated_on']}, {m['ticks']} ticks): action from the own-action heads: own "
        f"{h['own']:.3f}, partner {h['partner']:.3f}",
        f"probe_self_to_obs {m['probe_self_to_obs']:.3f} (chance {m['probe_self_to_obs_chance']:.3f}, "
        f"untrained {m.get('probe_self_to_obs_untrained', float('nan')):.3f})",
        f"mirror_index_corr {m['mirror_index_corr']:.3f} (p scrambled {m['mirror_index_corr_p_scrambled']:.4f}, "
        f"p shuffled {m['mirror_index_corr_p_shuffled']:.4f}, untrained "
        f"{m.get('mirror_index_corr_untrained', float('nan')):.3f}); CMNI {m['mirror_index']:.4f}",
        f"early_recognition_at_half {m['early_recognition_at_half']:.3f} (public heuristic "
        f"{m['early_recognition_at_half_public_heuristic']:.3f}); held-out pair "
        f"{m['heldout_action_recognition']['partner']:.3f}",
    ]
    if "lesion" in m:
        lines.append(f"lesion top/random: own {m['lesion_top_vs_random_own']:.2f}, partner "
                     f"{m['lesion_top_vs_random_obs']:.2f}")
    return lines


def cmd_train(args) -> int:
    """``robot-mirror train`` (argument parsing lives in robot_mirror.cli)."""
    # One thread: reproducible results whatever the machine, and small ops (the probes' L-BFGS)
    # are many times slower with a thread pool on a busy 2-core machine.
    torch.set_num_threads(1)
    options = TrainOptions(seed=args.seed, hidden=args.hidden, progress=not args.quiet, init=args.init,
                           align_weight=0.0 if args.no_align else TrainOptions.align_weight)
    if args.epochs is not None:
        options.epochs = args.epochs
    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise RobotMirrorError(f"--out {out}: is a folder; give a checkpoint file path, e.g. {out}/mirror.pt")
    result = train(args.data, out, options, evaluate=held_out_evaluation(seed=options.seed))
    print(format_report(result))
    return 0
