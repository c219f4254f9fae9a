"""MirrorNet: one recurrent core for doing and for watching.

::

    own q, dq, gripper ──► self adapter[robot type] ──┐            ┌─► segment head ─┐ (both streams)
    (2*dof+1, raw)          (normalise → MLP → 64)     │            ├─► target head  ─┘
                                                       ▼            │
                                     ONE GRU core (hidden 128) ─────┼─► motor head(state ⊕ target embedding)
                                     same weights, two passes,      │     → own q at t+1..t+K     (self stream)
                                     one hidden state per stream    ├─► next-step head → seen features at t+1
                                                       ▲            └─► turn-end head → s until partner's turn
    partner as seen (24: keypoints 15, ee pose 7,      │                 ends                   (observed stream)
    gripper 1, observed flag 1) ──► other adapter ─────┘
                                     (normalise → MLP → 64)

The observed stream describes the partner in the observer's base frame (task
space), so a single "other" adapter serves every partner type; each robot type
has its own "self" adapter because joint spaces differ. Everything after the
adapters is shared, so "I reach for level 2" and "my partner reaches for level
2" are read out by the same heads from states of the same core.

Inputs are *raw* features; the per-type normalisation statistics computed from
the training data live in the model as buffers (and in the checkpoint), so
online callers pass what the robot measures and sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OTHER_DIM = 24  # seen keypoints 15 + seen ee pose 7 + seen gripper 1 + observed flag 1


@dataclass
class MirrorConfig:
    """Every size of the network and the weights of its losses."""

    robot_types: list[str]                 # self adapters, e.g. ["franka_panda/panda.urdf"]
    dofs: list[int]                        # joints per robot type (same order)
    segments: list[str]                    # action vocabulary, e.g. wait, reach, ...
    n_targets: int                         # tower levels / imitation slots
    other_dim: int = OTHER_DIM
    embed_dim: int = 64                    # the common input space
    adapter_hidden: int = 64
    hidden: int = 128                      # GRU state
    target_embed: int = 16
    motor_hidden: int = 128
    motor_horizon: int = 5                 # predict own q at t+1 .. t+K ticks
    contrastive_weight: float = 0.2        # 0 = the "no contrastive" ablation
    temperature: float = 0.1
    contrastive_samples: int = 256         # time steps drawn per stream per batch
    turn_weight: float = 0.5
    motor_weight: float = 1.0
    predict_weight: float = 1.0

    def __post_init__(self) -> None:
        self.robot_types = [str(t) for t in self.robot_types]
        self.dofs = [int(d) for d in self.dofs]
        self.segments = [str(s) for s in self.segments]
        if len(self.robot_types) != len(self.dofs):
            raise ValueError("robot_types and dofs differ in length")
        if len(set(self.robot_types)) != len(self.robot_types):
            raise ValueError("duplicate robot type")

    @property
    def n_segments(self) -> int:
        return len(self.segments)

    def dof(self, robot_type: str) -> int:
        return self.dofs[self.robot_types.index(robot_type)]

    def self_dim(self, robot_type: str) -> int:
        return 2 * self.dof(robot_type) + 1

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


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.Tanh(), nn.Linear(h, o), nn.Tanh())


def _key(index: int) -> str:
    return f"t{index}"  # ModuleDict keys may not contain '.', URDF names do


@dataclass
class MirrorOutput:
    """Sequence outputs; B batch, T ticks, H hidden, K horizon, D dof."""

    self_states: Tensor            # (B, T, H) core states while acting
    obs_states: Tensor             # (B, T, H) core states while watching
    self_segment: Tensor           # (B, T, n_segments) logits, own action
    self_target: Tensor            # (B, T, n_targets) logits, own target
    obs_segment: Tensor            # (B, T, n_segments) logits, partner's action
    obs_target: Tensor             # (B, T, n_targets) logits, partner's target
    obs_next: Tensor               # (B, T, other_dim) predicted normalised seen features at t+1
    turn_end: Tensor               # (B, T) seconds until the partner's turn ends
    motor: Tensor                  # (B, T, K, D) predicted normalised own q at t+1..t+K
    state: tuple[Tensor, Tensor]   # (h_self, h_obs), each (B, H), to carry on


@dataclass
class MirrorStep:
    """One tick of online inference (B robots in parallel, usually 1)."""

    self_segment: Tensor           # (B, n_segments) logits
    self_target: Tensor            # (B, n_targets)
    obs_segment: Tensor            # (B, n_segments)
    obs_target: Tensor             # (B, n_targets)
    obs_next: Tensor               # (B, other_dim) normalised
    turn_end: Tensor               # (B,) seconds
    q_targets: Tensor              # (B, K, D) radians: own joint targets at t+1..t+K
    state: tuple[Tensor, Tensor]   # (h_self, h_obs)


class MirrorNet(nn.Module):
    def __init__(self, config: MirrorConfig) -> None:
        super().__init__()
        c = self.config = config
        self.self_norm = nn.ModuleDict({_key(i): Normaliser(2 * d + 1) for i, d in enumerate(c.dofs)})
        self.self_adapters = nn.ModuleDict({_key(i): _mlp(2 * d + 1, c.adapter_hidden, c.embed_dim)
                                            for i, d in enumerate(c.dofs)})
        self.other_norm = Normaliser(c.other_dim)
        self.other_adapter = _mlp(c.other_dim, c.adapter_hidden, c.embed_dim)
        self.core = nn.GRU(c.embed_dim, c.hidden, batch_first=True)  # THE shared core
        self.segment_head = nn.Linear(c.hidden, c.n_segments)
        self.target_head = nn.Linear(c.hidden, max(1, c.n_targets))
        self.predict_head = nn.Linear(c.hidden, c.other_dim)
        self.turn_head = nn.Linear(c.hidden, 1)
        self.register_buffer("turn_scale", torch.ones(()))  # seconds per unit of turn_head output
        self.target_embedding = nn.Embedding(c.n_targets + 1, c.target_embed)  # index 0 = no target
        self.motor_trunk = nn.Sequential(nn.Linear(c.hidden + c.target_embed, c.motor_hidden), nn.Tanh())
        self.motor_out = nn.ModuleDict({_key(i): nn.Linear(c.motor_hidden, c.motor_horizon * d)
                                        for i, d in enumerate(c.dofs)})

    # ---- bookkeeping -------------------------------------------------------------------------
    def type_key(self, robot_type: str) -> str:
        try:
            return _key(self.config.robot_types.index(robot_type))
        except ValueError:
            raise KeyError(f"robot type {robot_type!r} is not one of {self.config.robot_types}") from None

    def set_normalisation(self, stats: dict) -> None:
        """Install statistics from :func:`robot_mirror.mirror.dataset.compute_stats`."""
        for rtype, (mean, std) in stats["self"].items():
            self.self_norm[self.type_key(rtype)].set(mean, std)
        self.other_norm.set(*stats["other"])
        self.turn_scale.fill_(float(stats.get("turn_scale", 1.0)))

    def normalised_q(self, robot_type: str, q: Tensor) -> Tensor:
        """Joint angles in the motor head's units (z-scores of the training data)."""
        norm = self.self_norm[self.type_key(robot_type)]
        d = q.shape[-1]
        return (q - norm.mean[:d]) / norm.std[:d]

    def denormalise_q(self, robot_type: str, z: Tensor) -> Tensor:
        norm = self.self_norm[self.type_key(robot_type)]
        d = z.shape[-1]
        return z * norm.std[:d] + norm.mean[:d]

    # ---- the two streams ---------------------------------------------------------------------
    def embed_self(self, robot_type: str, own: Tensor) -> Tensor:
        key = self.type_key(robot_type)
        return self.self_adapters[key](self.self_norm[key](own))

    def embed_other(self, seen: Tensor) -> Tensor:
        return self.other_adapter(self.other_norm(seen))

    def run_core(self, x: Tensor, h: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """The shared core over (B, T, embed) -> states (B, T, H), last state (B, H)."""
        states, h_n = self.core(x, None if h is None else h.unsqueeze(0).contiguous())
        return states, h_n[0]

    def encode_self(self, robot_type: str, own: Tensor, h: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        return self.run_core(self.embed_self(robot_type, own), h)

    def encode_observed(self, seen: Tensor, h: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        return self.run_core(self.embed_other(seen), h)

    # ---- heads -------------------------------------------------------------------------------
    def motor_head(self, robot_type: str, states: Tensor, own: Tensor, target: Tensor) -> Tensor:
        """Normalised own q at t+1..t+K: z(q_t) + a learned displacement."""
        key = self.type_key(robot_type)
        d = self.config.dofs[int(key[1:])]
        emb = self.target_embedding((target.long() + 1).clamp(min=0, max=self.config.n_targets))
        delta = self.motor_out[key](self.motor_trunk(torch.cat([states, emb], dim=-1)))
        delta = delta.reshape(*states.shape[:-1], self.config.motor_horizon, d)
        z_now = self.self_norm[key](own)[..., :d]
        return z_now.unsqueeze(-2) + delta

    def turn_end_seconds(self, obs_states: Tensor) -> Tensor:
        return self.turn_head(obs_states).squeeze(-1) * self.turn_scale

    def forward(self, robot_type: str, own: Tensor, seen: Tensor, own_target: Optional[Tensor] = None,
                state: Optional[tuple[Tensor, Tensor]] = None) -> MirrorOutput:
        """Both streams over a window: ``own`` (B, T, 2*dof+1) raw, ``seen`` (B, T, 24) raw,
        ``own_target`` (B, T) int (-1 none) for the motor head."""
        h_self, h_obs = state if state is not None else (None, None)
        self_states, h_self = self.encode_self(robot_type, own, h_self)   # pass 1: acting
        obs_states, h_obs = self.encode_observed(seen, h_obs)              # pass 2: watching, same core
        if own_target is None:
            own_target = torch.full(own.shape[:2], -1, dtype=torch.long)
        return MirrorOutput(
            self_states=self_states, obs_states=obs_states,
            self_segment=self.segment_head(self_states), self_target=self.target_head(self_states),
            obs_segment=self.segment_head(obs_states), obs_target=self.target_head(obs_states),
            obs_next=self.predict_head(obs_states), turn_end=self.turn_end_seconds(obs_states),
            motor=self.motor_head(robot_type, self_states, own, own_target),
            state=(h_self, h_obs))

    def initial_state(self, batch: int = 1) -> tuple[Tensor, Tensor]:
        z = torch.zeros(batch, self.config.hidden)
        return z, z.clone()

    def step(self, robot_type: str, own: Tensor, seen: Tensor, own_target: Optional[Tensor] = None,
             state: Optional[tuple[Tensor, Tensor]] = None) -> MirrorStep:
        """One control tick for both streams: ``own`` (B, 2*dof+1), ``seen`` (B, 24), raw.

        Both streams go through one GRU-cell call with the core's own weight
        tensors (stacked along the batch), so it equals :meth:`forward` tick by
        tick. Call under ``torch.inference_mode()`` online.
        """
        b = own.shape[0]
        h_self, h_obs = state if state is not None else self.initial_state(b)
        x = torch.cat([self.embed_self(robot_type, own), self.embed_other(seen)], dim=0)
        h = torch.gru_cell(x, torch.cat([h_self, h_obs], dim=0), self.core.weight_ih_l0,
                           self.core.weight_hh_l0, self.core.bias_ih_l0, self.core.bias_hh_l0)
        h_self, h_obs = h[:b], h[b:]
        seg = self.segment_head(h)
        tgt = self.target_head(h)
        if own_target is None:
            own_target = torch.full((b,), -1, dtype=torch.long)
        motor = self.motor_head(robot_type, h_self, own, own_target)
        return MirrorStep(self_segment=seg[:b], self_target=tgt[:b], obs_segment=seg[b:], obs_target=tgt[b:],
                          obs_next=self.predict_head(h_obs), turn_end=self.turn_end_seconds(h_obs),
                          q_targets=self.denormalise_q(robot_type, motor), state=(h_self, h_obs))

    # ---- losses ------------------------------------------------------------------------------
    def losses(self, robot_type: str, batch: dict, out: Optional[MirrorOutput] = None) -> dict[str, Tensor]:
        """Supervised losses of one window batch (see :mod:`robot_mirror.mirror.dataset`
        ``Window`` for the keys). The contrastive term is computed by the caller over
        all robot types of a step with :func:`info_nce`."""
        if out is None:
            out = self(robot_type, batch["own"], batch["seen"], batch["target"], batch.get("state"))
        mask = batch["mask"]
        losses = {
            "seg_self": _masked_ce(out.self_segment, batch["segment"], mask),
            "tgt_self": _masked_ce(out.self_target, batch["target"], mask),
            "seg_obs": _masked_ce(out.obs_segment, batch["partner_segment"], mask),
            "tgt_obs": _masked_ce(out.obs_target, batch["partner_target"], mask),
        }
        with torch.no_grad():
            next_z = self.other_norm(batch["seen_next"])
        m = mask & batch["seen_next_mask"]
        losses["predict"] = _masked_mean(((out.obs_next - next_z) ** 2).mean(-1), m)
        te = batch["turn_end"]
        m = mask & torch.isfinite(te)
        scale = self.turn_scale
        losses["turn"] = _masked_mean(F.smooth_l1_loss(out.turn_end / scale, torch.nan_to_num(te) / scale,
                                                       reduction="none"), m)
        with torch.no_grad():
            q_z = self.normalised_q(robot_type, batch["q_future"])  # (B, T, K, D)
        err = ((out.motor - q_z) ** 2).mean(-1)                     # (B, T, K)
        losses["motor"] = _masked_mean(err, mask.unsqueeze(-1) & batch["q_future_mask"])
        return losses

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def _masked_ce(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    labels = torch.where(mask & (labels >= 0) & (labels < logits.shape[-1]), labels.long(),
                         torch.full_like(labels, -100, dtype=torch.long))
    if not (labels >= 0).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def pair_labels(segment: Tensor, target: Tensor, n_targets: int) -> Tensor:
    """One integer per (segment, target) pair; -1 where the segment is unknown."""
    lab = segment.long() * (n_targets + 1) + (target.long() + 1).clamp(min=0)
    return torch.where(segment >= 0, lab, torch.full_like(lab, -1))


def info_nce(self_z: Tensor, self_labels: Tensor, obs_z: Tensor, obs_labels: Tensor,
             temperature: float = 0.1) -> Tensor:
    """Cross-stream supervised InfoNCE.

    Anchors from one stream, candidates from the other; positives are the
    candidates with the same (segment, target) label. For anchor i with
    positives P(i): ``-1/|P(i)| sum_{p in P(i)} log softmax_j(cos(z_i, z_j)/tau)_p``,
    averaged over anchors with at least one positive, both directions.
    """
    if self_z.shape[0] == 0 or obs_z.shape[0] == 0:
        return self_z.sum() * 0.0
    a = F.normalize(self_z, dim=-1)
    b = F.normalize(obs_z, dim=-1)
    logits = a @ b.T / temperature                               # (N, M)
    pos = (self_labels[:, None] == obs_labels[None, :]).float()
    total, parts = logits.sum() * 0.0, 0
    for lg, ps in ((logits, pos), (logits.T, pos.T)):
        has = ps.sum(1) > 0
        if has.any():
            logp = lg[has].log_softmax(dim=1)
            p = ps[has]
            total = total + (-(logp * p).sum(1) / p.sum(1)).mean()
            parts += 1
    return total / max(parts, 1)


def sample_contrastive(out: MirrorOutput, batch: dict, n_targets: int, n: int,
                       generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Draw up to ``n`` labelled time steps from each stream of a window batch:
    self states labelled with the own (segment, target), observed states (where
    the partner was seen) labelled with the partner's."""
    mask = batch["mask"]
    s_lab = pair_labels(batch["segment"], batch["target"], n_targets)
    o_lab = pair_labels(batch["partner_segment"], batch["partner_target"], n_targets)
    s_idx = torch.nonzero((mask & (s_lab >= 0)).reshape(-1)).squeeze(1)
    o_idx = torch.nonzero((mask & (o_lab >= 0) & batch["observed"]).reshape(-1)).squeeze(1)

    def pick(idx: Tensor) -> Tensor:
        if idx.numel() > n:
            idx = idx[torch.randperm(idx.numel(), generator=generator)[:n]]
        return idx

    s_idx, o_idx = pick(s_idx), pick(o_idx)
    h = out.self_states.shape[-1]
    return (out.self_states.reshape(-1, h)[s_idx], s_lab.reshape(-1)[s_idx],
            out.obs_states.reshape(-1, h)[o_idx], o_lab.reshape(-1)[o_idx])
