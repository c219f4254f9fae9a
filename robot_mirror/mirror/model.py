"""MirrorNet: one recurrent core for doing and for watching.

::

    own body  (26: own keypoints, tool pose, gripper,  ──┐
               seen through the same description)         │   ONE body layer      ONE GRU core
                                                          ├─► (normalise → MLP) ─► (hidden 128) ─┬─► segment head ┐ trained on
    partner as seen (26: the same description, with       │    same weights        same weights  ├─► target head  ┘ the self stream only
               noise, delay and drops)                 ───┘                                      ├─► next-body head   (both streams)
                                                                                                 └─► turn-end head    (both: s until the
                                                                                                      actor's turn ends)

Both streams go through the same input layer and the same core (two passes,
one hidden state each); no part of the network knows which body it reads, and
no part is specific to an arm type. Three things make the core *mirror*:

* the segment and target heads are trained on the arm's **own** actions only;
  that they also name the partner's actions from the observed stream is an
  emergent test, not a training target (``studies/metrics.py`` measures it);
* a label-free **synchronous alignment** term (InfoNCE, as in time-contrastive
  networks): arm A's own state at tick *t* and arm B's state while watching A
  at the same tick are positives, every other sampled moment a negative. No
  action label enters it;
* the own body is described like the partner's, and seen through noise during
  training ("seeing one's own hand", MNS).

Inputs are raw; normalisation statistics computed on the training data live in
the model as buffers and in the checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robot_mirror.mirror.features import BODY_DIM

LESION_K = 16  # units silenced by a lesion: the top mirror units (policy: mirror_lesioned) or random ones


@dataclass
class MirrorConfig:
    """Every size of the network, the weights of its losses, and what it was trained without."""

    segments: list[str]                    # action vocabulary, e.g. wait, reach, ...
    n_targets: int                         # tower levels / imitation slots
    trained_on: list[str] = field(default_factory=list)   # arm types in the training data (report only)
    body_dim: int = BODY_DIM
    embed_dim: int = 64                    # the common input space
    adapter_hidden: int = 64
    hidden: int = 128                      # GRU state
    align_weight: float = 1.0              # 0 = the "no alignment" ablation
    temperature: float = 0.1
    align_samples: int = 256               # synchronous pairs drawn per training step
    align_tolerance: int = 6               # ticks: views this close in time to the act are also positives
    turn_weight: float = 0.5
    predict_weight: float = 1.0
    self_noise_std: float = 0.015          # m, training noise on the own body (seen through the same camera)
    heldout_pairs: list[list] = field(default_factory=list)  # [segment, target] pairs whose labels training never sees

    def __post_init__(self) -> None:
        self.segments = [str(s) for s in self.segments]
        self.trained_on = [str(t) for t in self.trained_on]
        self.heldout_pairs = [[str(s), int(t)] for s, t in self.heldout_pairs]

    @property
    def n_segments(self) -> int:
        return len(self.segments)

    def heldout_codes(self) -> list[tuple[int, int]]:
        return [(self.segments.index(s), t) for s, t in self.heldout_pairs if s in self.segments]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MirrorConfig":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class Normaliser(nn.Module):
    """(x - mean) / std with the statistics as buffers; NaN (unseen) -> 0."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set(self, mean, std) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(self.mean.shape)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(self.std.shape)
        self.mean.copy_(mean)
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, x: Tensor) -> Tensor:
        return torch.nan_to_num((x - self.mean) / self.std, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class MirrorOutput:
    """Sequence outputs; B batch, T ticks, H hidden."""

    self_states: Tensor            # (B, T, H) core states while acting
    obs_states: Tensor             # (B, T, H) core states while watching
    self_segment: Tensor           # (B, T, n_segments) logits, own action
    self_target: Tensor            # (B, T, n_targets)
    obs_segment: Tensor            # the same heads on the observed stream: the partner's action
    obs_target: Tensor
    self_next: Tensor              # (B, T, body) predicted normalised own body at t+1
    obs_next: Tensor               # (B, T, body) predicted normalised seen body at t+1
    self_turn_end: Tensor          # (B, T) s until the own turn ends
    obs_turn_end: Tensor           # (B, T) s until the partner's turn ends
    state: tuple[Tensor, Tensor]   # (h_self, h_obs), each (B, H), to carry on


class MirrorNet(nn.Module):
    def __init__(self, config: MirrorConfig) -> None:
        super().__init__()
        c = self.config = config
        self.body_norm = Normaliser(c.body_dim)
        self.body_layer = nn.Sequential(nn.Linear(c.body_dim, c.adapter_hidden), nn.Tanh(),
                                        nn.Linear(c.adapter_hidden, c.embed_dim), nn.Tanh())
        self.core = nn.GRU(c.embed_dim, c.hidden, batch_first=True)  # THE shared core
        self.segment_head = nn.Linear(c.hidden, c.n_segments)
        self.target_head = nn.Linear(c.hidden, max(1, c.n_targets))
        self.predict_head = nn.Linear(c.hidden, c.body_dim)
        self.turn_head = nn.Linear(c.hidden, 1)
        self.register_buffer("turn_scale", torch.ones(()))  # seconds per unit of turn_head output

    def set_normalisation(self, stats: dict) -> None:
        """Install statistics from :func:`robot_mirror.mirror.dataset.compute_stats`."""
        self.body_norm.set(*stats["body"])
        self.turn_scale.fill_(float(stats.get("turn_scale", 1.0)))

    def embed(self, body: Tensor) -> Tensor:
        """The one input layer, for the own body and the partner's alike."""
        return self.body_layer(self.body_norm(body))

    def run_core(self, x: Tensor, h: Optional[Tensor] = None,
                 lesion: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """The shared core over (B, T, embed) -> states (B, T, H), last state (B, H).
        ``lesion`` (H,) of 0/1 silences units at every tick (a tick loop then)."""
        if lesion is None:
            states, h_n = self.core(x, None if h is None else h.unsqueeze(0).contiguous())
            return states, h_n[0]
        h = torch.zeros(x.shape[0], self.config.hidden) if h is None else h
        out = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h) * lesion
            out.append(h)
        return torch.stack(out, dim=1), h

    def cell(self, x: Tensor, h: Tensor) -> Tensor:
        c = self.core
        return torch.gru_cell(x, h, c.weight_ih_l0, c.weight_hh_l0, c.bias_ih_l0, c.bias_hh_l0)

    def turn_end_seconds(self, states: Tensor) -> Tensor:
        return self.turn_head(states).squeeze(-1) * self.turn_scale

    def forward(self, own: Tensor, seen: Tensor, state: Optional[tuple[Tensor, Tensor]] = None,
                lesion: Optional[Tensor] = None) -> MirrorOutput:
        """Both streams over a window: ``own`` and ``seen`` (B, T, body) raw."""
        h_self, h_obs = state if state is not None else (None, None)
        self_states, h_self = self.run_core(self.embed(own), h_self, lesion)   # pass 1: acting
        obs_states, h_obs = self.run_core(self.embed(seen), h_obs, lesion)     # pass 2: watching
        return MirrorOutput(
            self_states=self_states, obs_states=obs_states,
            self_segment=self.segment_head(self_states), self_target=self.target_head(self_states),
            obs_segment=self.segment_head(obs_states), obs_target=self.target_head(obs_states),
            self_next=self.predict_head(self_states), obs_next=self.predict_head(obs_states),
            self_turn_end=self.turn_end_seconds(self_states), obs_turn_end=self.turn_end_seconds(obs_states),
            state=(h_self, h_obs))

    def initial_state(self, batch: int = 1) -> tuple[Tensor, Tensor]:
        z = torch.zeros(batch, self.config.hidden)
        return z, z.clone()

    def step(self, own: Tensor, seen: Tensor, state: Optional[tuple[Tensor, Tensor]] = None,
             lesion: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """One control tick for both streams (``own``, ``seen`` (B, body), raw): one
        GRU-cell call with the two streams stacked along the batch; returns the new
        (h_self, h_obs). Equals :meth:`forward` tick by tick."""
        b = own.shape[0]
        h_self, h_obs = state if state is not None else self.initial_state(b)
        h = self.cell(self.embed(torch.cat([own, seen], dim=0)), torch.cat([h_self, h_obs], dim=0))
        if lesion is not None:
            h = h * lesion
        return h[:b], h[b:]

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---- losses --------------------------------------------------------------------------------------

def supervised_losses(model: MirrorNet, batch: dict, out: MirrorOutput) -> dict[str, Tensor]:
    """The supervised terms of one window batch (keys: see ``dataset.window_batch``).
    Action labels are used on the self stream only."""
    mask = batch["mask"]
    losses = {"seg_self": masked_ce(out.self_segment, batch["segment"], mask),
              "tgt_self": masked_ce(out.self_target, batch["target"], mask)}
    with torch.no_grad():
        own_next, seen_next = model.body_norm(batch["own_next"]), model.body_norm(batch["seen_next"])
    losses["predict"] = 0.5 * (masked_mean(((out.self_next - own_next) ** 2).mean(-1), mask & batch["own_next_mask"])
                               + masked_mean(((out.obs_next - seen_next) ** 2).mean(-1),
                                             mask & batch["seen_next_mask"]))
    scale = model.turn_scale
    turn = 0.0
    for pred, key in ((out.self_turn_end, "own_turn_end"), (out.obs_turn_end, "turn_end")):
        te = batch[key]
        m = mask & torch.isfinite(te)
        turn = turn + 0.5 * masked_mean(F.smooth_l1_loss(pred / scale, torch.nan_to_num(te) / scale,
                                                         reduction="none"), m)
    losses["turn"] = turn
    return losses


def synchronous_pairs(out: MirrorOutput, batch: dict, n: int, tolerance: int,
                      generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor, Tensor]:
    """Label-free positives: rows come in pairs (2i, 2i+1) = the two arms of one
    episode window, so row r's own state at tick t and row r^1's observed state
    at tick t show the same act from inside and from outside. Draws up to ``n``
    (row, t) moments where the watcher saw the actor; returns (own states,
    watcher states, positive mask (n, n): same pair and |dt| <= tolerance)."""
    mask = batch["mask"]
    watcher = torch.arange(mask.shape[0]) ^ 1
    valid = mask & mask[watcher] & batch["observed"][watcher]
    idx = torch.nonzero(valid)
    if idx.shape[0] > n:
        idx = idx[torch.randperm(idx.shape[0], generator=generator)[:n]]
    rows, ticks = idx[:, 0], idx[:, 1]
    own = out.self_states[rows, ticks]
    seen = out.obs_states[watcher[rows], ticks]
    same = (rows[:, None] == rows[None, :]) & ((ticks[:, None] - ticks[None, :]).abs() <= tolerance)
    return own, seen, same


def alignment_loss(own: Tensor, seen: Tensor, positive: Tensor, temperature: float) -> Tensor:
    """Symmetric multi-positive InfoNCE between own states and watcher states."""
    if own.shape[0] < 2:
        return own.sum() * 0.0
    logits = F.normalize(own, dim=-1) @ F.normalize(seen, dim=-1).T / temperature
    pos = positive.float()
    total = 0.0
    for lg, ps in ((logits, pos), (logits.T, pos.T)):
        logp = lg.log_softmax(dim=1)
        total = total + (-(logp * ps).sum(1) / ps.sum(1).clamp(min=1.0)).mean()
    return total / 2


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def masked_ce(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    labels = torch.where(mask & (labels >= 0) & (labels < logits.shape[-1]), labels.long(),
                         torch.full_like(labels, -100, dtype=torch.long))
    if not (labels >= 0).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
