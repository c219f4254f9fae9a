"""How long does one online tick of the mirror network take on one CPU core?

Method. A MirrorNet is loaded from ``--checkpoint`` (or, without one, built
with the default sizes for a 7-joint arm and random weights: the cost does not
depend on the weights). One tick = ``MirrorNet.step`` for one robot (batch 1):
both streams (self and observed) through their adapters and the shared core,
every head (segment and target for both streams, next-step prediction,
turn end, motor head), with the hidden states carried from the previous tick.
``torch.set_num_threads(1)``, ``torch.inference_mode()``; inputs are drawn
once up front, so only the network is timed. After ``--warmup`` ticks,
``--ticks`` ticks are timed one by one with ``time.perf_counter_ns``.
Headline: ``ratio`` = p50 ms per tick / 1.0 ms (the budget; below 1 is within it).

    python bench/mirror_inference.py [--checkpoint PATH] [--ticks 5000] [--warmup 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import machine_info, percentiles, write_json  # noqa: E402

BUDGET_MS = 1.0


def build_model(checkpoint: str | None):
    from robot_mirror.mirror.dataset import SEGMENTS
    from robot_mirror.mirror.model import MirrorConfig, MirrorNet

    if checkpoint:
        from robot_mirror.mirror.checkpoint import load_checkpoint

        model = load_checkpoint(checkpoint).model
    else:
        torch.manual_seed(0)
        model = MirrorNet(MirrorConfig(robot_types=["franka_panda/panda.urdf"], dofs=[7], segments=SEGMENTS,
                                       n_targets=6))
    return model.eval()


def measure(model, ticks: int, warmup: int, seed: int = 0) -> np.ndarray:
    rtype = model.config.robot_types[0]
    f_self = model.config.self_dim(rtype)
    g = torch.Generator().manual_seed(seed)
    n = ticks + warmup
    own = torch.randn(n, 1, f_self, generator=g)
    seen = torch.randn(n, 1, model.config.other_dim, generator=g)
    target = torch.randint(-1, model.config.n_targets, (n, 1), generator=g)
    times = np.empty(ticks)
    state = None
    with torch.inference_mode():
        for i in range(n):
            t0 = time.perf_counter_ns()
            out = model.step(rtype, own[i], seen[i], target[i], state)
            state = out.state
            t1 = time.perf_counter_ns()
            if i >= warmup:
                times[i - warmup] = (t1 - t0) / 1e6
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="a trained checkpoint (default: random weights, default sizes)")
    ap.add_argument("--ticks", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = build_model(args.checkpoint)
    ms = measure(model, args.ticks, args.warmup)
    p50, p90, p99 = percentiles(ms, 50, 90, 99)
    result = {
        "ratio": p50 / BUDGET_MS,
        "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": float(ms.mean()), "max_ms": float(ms.max()),
        "budget_ms": BUDGET_MS, "ticks": args.ticks, "warmup": args.warmup,
        "model": {"checkpoint": args.checkpoint, "parameters": model.n_parameters(),
                  "hidden": model.config.hidden, "robot_type": model.config.robot_types[0]},
        "machine": machine_info({"torch": str(torch.__version__), "threads": torch.get_num_threads()}),
    }
    print(f"mirror step (both streams, all heads, batch 1, 1 thread): p50 {p50:.3f} ms, p90 {p90:.3f} ms, "
          f"p99 {p99:.3f} ms per tick over {args.ticks} ticks; ratio {result['ratio']:.3f} of the "
          f"{BUDGET_MS:.1f} ms budget")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
