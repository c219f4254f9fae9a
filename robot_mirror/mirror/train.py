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
from robot_mirror.mirror.dataset import DemoSet, EpisodeSampler, Stream, compute_stats, mask_pairs
from robot_mirror.mirror.demo_sets import load_demo_sets
from robot_mirror.mirror.model import (MirrorConfig, MirrorNet, alignment_loss, supervised_losses,
                                       synchronous_pairs)


@dataclass
class TrainOptions:
    epochs: int = 12
    seed: int = 0
    window: int = 96            # ticks per truncated-BPTT window
    lanes: int = 16             # rows per step (8 episodes x 2 robots)
    lr: float = 3e-3
    clip: float = 1.0
    held_out: float = 0.2       # fraction of episodes kept for evaluation
    hidden: int = 128
    align_weight: float = 1.0   # 0 = the "no alignment" ablation
    heldout_pairs: list = field(default_factory=lambda: [["carry", -1]])  # -1: the last target
    progress: bool = True
    init: Optional[str] = None  # fine-tune: start from this checkpoint's weights and normalisation
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


Evaluate = Callable[[MirrorNet, list[Stream], list[Stream], float], dict]  # (model, train, held out, hz) -> metrics


def make_config(demos: DemoSet, options: TrainOptions) -> MirrorConfig:
    pairs = [[s, int(t) % max(1, demos.n_targets)] for s, t in options.heldout_pairs]
    noise = float((demos.meta.get("perception") or {}).get("noise_std", 0.0) or 0.0)
    return MirrorConfig(segments=list(demos.segments), n_targets=demos.n_targets, trained_on=list(demos.robot_types),
                        hidden=options.hidden, align_weight=options.align_weight, heldout_pairs=pairs,
                        self_noise_std=noise, **options.config_overrides)


def initial_model(demos: DemoSet, train_streams: list[Stream], options: TrainOptions) -> tuple[MirrorNet, dict]:
    """A fresh network normalised on ``train_streams``, or with ``options.init`` the
    checkpoint's network, its normalisation kept (the weights were learnt on
    it), its arm types joined with the new ones."""
    if options.init is None:
        model = MirrorNet(make_config(demos, options))
        stats = compute_stats(train_streams)
        model.set_normalisation(stats)
        return model, stats
    from robot_mirror.mirror.checkpoint import load_checkpoint

    ck = load_checkpoint(options.init)
    if ck.segments != list(demos.segments) or ck.model.config.n_targets != demos.n_targets:
        raise RobotMirrorError(f"--init {options.init}: trained on {ck.model.config.n_targets} targets and segments "
                               f"{ck.segments}, the data has {demos.n_targets} and {list(demos.segments)}")
    model = ck.model
    model.config.trained_on = list(dict.fromkeys([*model.config.trained_on, *demos.robot_types]))
    model.config.align_weight = options.align_weight
    return model, ck.info["normalisation"]


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    return np.random.default_rng(seed)


def step_loss(model: MirrorNet, batch: dict, hidden: tuple, gen: torch.Generator,
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor], tuple]:
    """The weighted loss of one window batch, its parts, and the carried state (detached)."""
    c = model.config
    keep = (~batch["reset"]).float().unsqueeze(1)
    out = model(batch["own"], batch["seen"], (hidden[0] * keep, hidden[1] * keep))
    parts = supervised_losses(model, batch, out)
    loss = parts["seg_self"] + parts["tgt_self"] + c.predict_weight * parts["predict"] + c.turn_weight * parts["turn"]
    if c.align_weight > 0:
        own, seen, positive = synchronous_pairs(out, batch, c.align_samples, c.align_tolerance, gen)
        parts["align"] = alignment_loss(own, seen, positive, c.temperature)
        loss = loss + c.align_weight * parts["align"]
    return loss, parts, (out.state[0].detach(), out.state[1].detach())


def train_model(model: MirrorNet, streams: list[Stream], options: TrainOptions,
                rng: np.random.Generator) -> tuple[list[dict], int]:
    """Optimise ``model`` in place on ``streams``; returns (per-epoch mean losses, steps)."""
    from tqdm import tqdm

    c = model.config
    sampler = EpisodeSampler(streams, lanes=options.lanes, window=options.window, rng=rng,
                             self_noise=c.self_noise_std)
    steps_per_epoch = max(1, math.ceil(sampler.total_ticks() / sampler.ticks_per_step()))
    total = steps_per_epoch * max(1, options.epochs)
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=options.lr, total_steps=total, pct_start=0.1)
    gen = torch.Generator().manual_seed(options.seed)
    hidden = model.initial_state(2 * sampler.lanes)
    history: list[dict] = []
    sums: dict[str, float] = {}
    model.train()
    bar = tqdm(range(total), desc="train", unit="step", disable=not options.progress, leave=False,
               dynamic_ncols=True)
    for step in bar:
        batch = mask_pairs(sampler.next(), c.heldout_codes())
        loss, parts, hidden = step_loss(model, batch, hidden, gen)
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


def train(data: str | Path | list, out: Optional[str | Path], options: TrainOptions, *,
          demos: Optional[DemoSet] = None, evaluate: Optional[Evaluate] = None) -> TrainResult:
    """Load ``data`` (one demonstration folder, or several to train on together),
    train, measure on held-out episodes with ``evaluate`` (if given), save to
    ``out`` (if given)."""
    from robot_mirror.mirror.checkpoint import save_checkpoint

    if options.epochs < 1:
        raise RobotMirrorError(f"--epochs {options.epochs}: must be at least 1")
    if options.hidden < 4:
        raise RobotMirrorError(f"--hidden {options.hidden}: must be at least 4")
    demos = demos if demos is not None else load_demo_sets(data)
    rng = seed_everything(options.seed)
    train_eps, test_eps = demos.split(options.held_out, seed=options.seed)
    train_streams = demos.streams_of(train_eps)
    test_streams = demos.streams_of(test_eps) or train_streams
    model, stats = initial_model(demos, train_streams, options)
    start = time.perf_counter()
    history, steps = train_model(model, train_streams, options, rng)
    seconds = time.perf_counter() - start
    model.eval()
    metrics: dict = {"held_out_episodes": test_eps, "evaluated_on": "held_out" if demos.streams_of(test_eps)
                     else "training (only one episode)"}
    if evaluate is not None:
        metrics.update(evaluate(model, train_streams, test_streams, demos.control_hz))
    metrics["final_loss"] = history[-1] if history else {}
    path = None
    if out is not None:
        path = save_checkpoint(
            out, model, normalisation=stats, seed=options.seed, train_seconds=seconds, metrics=metrics,
            data={"path": str(Path(demos.path).resolve()), "sha256": demos.sha256, "episodes": demos.n_episodes,
                  "train_episodes": train_eps, "held_out_episodes": test_eps,
                  "scenario": demos.meta.get("scenario"), "task": demos.meta.get("task"),
                  "sources": demos.meta.get("sources", [str(Path(demos.path).resolve())])},
            extra={"training": {"epochs": options.epochs, "steps": steps, "window": options.window,
                                "lanes": options.lanes, "lr": options.lr, "align_weight": options.align_weight,
                                "init": str(options.init) if options.init else None,
                                "history": history}})
    return TrainResult(model=model, checkpoint=path, history=history, metrics=metrics, seconds=seconds, steps=steps)
