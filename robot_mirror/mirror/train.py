"""Training the mirror network (``robot-mirror train``).

CPU only and seeded. Episodes are split into training and held-out episodes;
both robots of every training episode are used (each robot's self stream and
its observed stream of the partner). Training is truncated BPTT over
consecutive windows of each stream with the hidden states carried (detached)
from one window to the next, so the core learns from the same zero state and
the same long rollouts it meets online. One epoch = as many steps as it takes
to cover the training ticks once. After training, the ``evaluate`` callable
given to :func:`train` (if any; ``robot-mirror train`` passes
:func:`robot_mirror.studies.metrics.evaluate_model`, see
:mod:`robot_mirror.studies.training`) measures the network on the held-out
episodes and its metrics go into the checkpoint.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from robot_mirror.errors import RobotMirrorError
from robot_mirror.mirror.dataset import DemoSet, Stream, WindowSampler, compute_stats, load_demos
from robot_mirror.mirror.model import MirrorConfig, MirrorNet, info_nce, sample_contrastive


@dataclass
class TrainOptions:
    epochs: int = 30
    seed: int = 0
    window: int = 96            # ticks per truncated-BPTT window
    lanes: int = 16             # windows per step (split over robot types)
    lr: float = 2e-3
    clip: float = 1.0
    held_out: float = 0.2       # fraction of episodes kept for evaluation
    hidden: int = 128
    contrastive_weight: float = 0.2
    progress: bool = True
    max_steps: Optional[int] = None
    config_overrides: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    model: MirrorNet
    checkpoint: Optional[Path]
    history: list[dict]
    metrics: dict
    seconds: float
    steps: int


Evaluate = Callable[[MirrorNet, list[Stream]], dict]  # (trained model, held-out streams) -> metrics


def make_config(demos: DemoSet, options: TrainOptions) -> MirrorConfig:
    return MirrorConfig(robot_types=list(demos.robot_types), dofs=[demos.dofs[t] for t in demos.robot_types],
                        segments=list(demos.segments), n_targets=demos.n_targets, hidden=options.hidden,
                        contrastive_weight=options.contrastive_weight, **options.config_overrides)


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    return np.random.default_rng(seed)


def step_loss(model: MirrorNet, batches: dict[str, dict], hidden: dict[str, tuple], gen: torch.Generator,
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted training loss of one step's ``batches`` (robot type -> window
    batch) and its parts; ``hidden`` (robot type -> carried core state) is
    advanced in place, detached."""
    c = model.config
    parts: dict[str, torch.Tensor] = {}
    pools = []
    for t, batch in batches.items():
        keep = (~batch["reset"]).float().unsqueeze(1)
        h_self, h_obs = hidden[t]
        out = model(t, batch["own"], batch["seen"], batch["target"], (h_self * keep, h_obs * keep))
        hidden[t] = (out.state[0].detach(), out.state[1].detach())
        for k, v in model.losses(t, batch, out).items():
            parts[k] = parts.get(k, 0.0) + v / len(batches)
        if c.contrastive_weight > 0:
            pools.append(sample_contrastive(out, batch, c.n_targets, c.contrastive_samples, gen))
    loss = (parts["seg_self"] + parts["tgt_self"] + parts["seg_obs"] + parts["tgt_obs"]
            + c.predict_weight * parts["predict"] + c.turn_weight * parts["turn"]
            + c.motor_weight * parts["motor"])
    if c.contrastive_weight > 0:
        sz, sl, oz, ol = (torch.cat([p[i] for p in pools]) for i in range(4))
        parts["contrastive"] = info_nce(sz, sl, oz, ol, c.temperature)
        loss = loss + c.contrastive_weight * parts["contrastive"]
    return loss, parts


def train_model(model: MirrorNet, streams: list[Stream], options: TrainOptions,
                rng: np.random.Generator) -> tuple[list[dict], int]:
    """Optimise ``model`` in place on ``streams``; returns (per-epoch mean losses, steps)."""
    from tqdm import tqdm

    c = model.config
    sampler = WindowSampler(streams, lanes=options.lanes, window=options.window, horizon=c.motor_horizon, rng=rng)
    steps_per_epoch = max(1, math.ceil(sampler.total_ticks() / sampler.ticks_per_step()))
    total = steps_per_epoch * max(1, options.epochs)
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=options.lr, total_steps=total, pct_start=0.1)
    gen = torch.Generator().manual_seed(options.seed)
    hidden = {t: model.initial_state(n) for t, n in sampler.lanes.items()}
    history: list[dict] = []
    sums: dict[str, float] = {}
    model.train()
    bar = tqdm(range(total), desc="train", unit="step", disable=not options.progress, leave=False,
               dynamic_ncols=True)
    for step in bar:
        loss, parts = step_loss(model, sampler.next(), hidden, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), options.clip)
        opt.step()
        sched.step()
        parts["total"] = loss
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        n_in_epoch = step % steps_per_epoch + 1
        if options.progress:
            bar.set_postfix(epoch=step // steps_per_epoch + 1, loss=f"{sums['total'] / n_in_epoch:.3f}")
        if n_in_epoch == steps_per_epoch or step == total - 1:
            history.append({k: v / n_in_epoch for k, v in sums.items()})
            sums = {}
    bar.close()
    return history, total


def train(data: str | Path, out: Optional[str | Path], options: TrainOptions, *,
          demos: Optional[DemoSet] = None, evaluate: Optional[Evaluate] = None) -> TrainResult:
    """Load ``data``, train, measure on held-out episodes with ``evaluate`` (if
    given), save to ``out`` (if given)."""
    from robot_mirror.mirror.checkpoint import save_checkpoint

    if options.epochs < 1:
        raise RobotMirrorError(f"--epochs {options.epochs}: must be at least 1")
    if options.hidden < 4:
        raise RobotMirrorError(f"--hidden {options.hidden}: must be at least 4")
    demos = demos if demos is not None else load_demos(data)
    rng = seed_everything(options.seed)
    train_eps, test_eps = demos.split(options.held_out, seed=options.seed)
    train_streams = demos.streams_of(train_eps)
    test_streams = demos.streams_of(test_eps) or train_streams
    config = make_config(demos, options)
    model = MirrorNet(config)
    stats = compute_stats(train_streams)
    model.set_normalisation(stats)
    start = time.perf_counter()
    history, steps = train_model(model, train_streams, options, rng)
    seconds = time.perf_counter() - start
    model.eval()
    metrics: dict = {"held_out_episodes": test_eps, "evaluated_on": "held_out" if demos.streams_of(test_eps)
                     else "training (only one episode)"}
    if evaluate is not None:
        metrics.update(evaluate(model, test_streams))
    metrics["final_loss"] = history[-1] if history else {}
    path = None
    if out is not None:
        path = save_checkpoint(
            out, model, normalisation=stats, seed=options.seed, train_seconds=seconds, metrics=metrics,
            data={"path": str(Path(demos.path).resolve()), "sha256": demos.sha256, "episodes": demos.n_episodes,
                  "train_episodes": train_eps, "held_out_episodes": test_eps,
                  "scenario": demos.meta.get("scenario"), "task": demos.meta.get("task")},
            extra={"training": {"epochs": options.epochs, "steps": steps, "window": options.window,
                                "lanes": options.lanes, "lr": options.lr, "history": history}})
    return TrainResult(model=model, checkpoint=path, history=history, metrics=metrics, seconds=seconds, steps=steps)
