"""Demonstrations for the mirror network: loading, checking, windows, statistics.

A demonstration folder (written by ``robot-mirror demos``, format
``robot_mirror.demos/1``) holds ``meta.json`` and one ``episode_NNNN.npz`` per
episode with per-robot arrays prefixed ``r0_`` / ``r1_`` (see docs/mirror.md).
Every episode gives two :class:`Stream` s, one per robot: that robot's own
movement (the self stream) and its partner as it saw it (the observed stream),
labelled with its own and its partner's (segment, target) at each tick.

:func:`write_synthetic_demos` writes a small folder in exactly this format
(tests, benchmarks, trying the trainer without a simulator).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional

import numpy as np

from robot_mirror.errors import RobotMirrorError

DEMOS_FORMAT = "robot_mirror.demos/1"
SEGMENTS = ["wait", "reach", "grasp", "carry", "place", "retreat"]
META_KEYS = ("format", "control_hz", "robots", "segments", "n_targets", "episodes", "sha256")
OTHER_STD_FLOOR = 0.02  # m (and quaternion units): smallest scale of an observed feature
ROBOT_KEYS = ("q", "dq", "gripper", "seen_partner_keypoints", "seen_partner_ee_pose", "seen_partner_gripper",
              "partner_observed", "segment", "target", "my_turn", "partner_turn_end_in")


def robot_type_of(urdf: str) -> str:
    """The key of a robot type: the URDF's last two path parts, e.g.
    ``franka_panda/panda.urdf`` (a pybullet_data name stays as it is; a local
    path ``/x/y/pkg_arm/arm.urdf`` becomes ``pkg_arm/arm.urdf``)."""
    parts = PurePosixPath(str(urdf).replace("\\", "/")).parts
    parts = [p for p in parts if p not in ("/", "")]
    return "/".join(parts[-2:]) if parts else str(urdf)


def self_features(q: np.ndarray, dq: np.ndarray, gripper: np.ndarray) -> np.ndarray:
    """Own-stream input: q, dq, gripper -> (..., 2*dof+1) float32."""
    g = np.asarray(gripper, np.float32)[..., None]
    return np.concatenate([np.asarray(q, np.float32), np.asarray(dq, np.float32), g], axis=-1)


def other_features(keypoints: np.ndarray, ee_pose: np.ndarray, gripper: np.ndarray,
                   observed: np.ndarray) -> np.ndarray:
    """Observed-stream input: seen keypoints (…,5,3), seen ee pose (…,7), seen
    gripper, observed flag -> (..., 24) float32 (NaN kept; the model zeroes it)."""
    kp = np.asarray(keypoints, np.float32)
    kp = kp.reshape(*kp.shape[:-2], kp.shape[-2] * kp.shape[-1])
    return np.concatenate([kp, np.asarray(ee_pose, np.float32), np.asarray(gripper, np.float32)[..., None],
                           np.asarray(observed, np.float32)[..., None]], axis=-1)


def episodes_sha256(directory: Path, files: list[str]) -> str:
    """SHA-256 over the bytes of the episode files, in meta.json's order."""
    h = hashlib.sha256()
    for name in files:
        with open(Path(directory) / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@dataclass
class Stream:
    """One robot's side of one episode (T ticks)."""

    episode: int                 # index into meta["episodes"]
    robot: int                   # 0 or 1
    robot_type: str
    own: np.ndarray              # (T, 2*dof+1) raw self features
    seen: np.ndarray             # (T, 24) raw observed features
    q: np.ndarray                # (T, dof)
    segment: np.ndarray          # (T,) int64, own action
    target: np.ndarray           # (T,) int64, own target (-1 none)
    partner_segment: np.ndarray  # (T,) the partner's action = label of what is observed
    partner_target: np.ndarray
    observed: np.ndarray         # (T,) bool
    my_turn: np.ndarray          # (T,) bool
    partner_turn: np.ndarray     # (T,) bool, the partner holds the turn
    turn_end: np.ndarray         # (T,) float32 s until the partner's turn ends, NaN otherwise

    @property
    def ticks(self) -> int:
        return int(self.q.shape[0])

    @property
    def dof(self) -> int:
        return int(self.q.shape[1])

    def with_seen_from(self, other: "Stream") -> "Stream":
        """This stream's labels with another stream's observations (shuffled-partner control)."""
        n = min(self.ticks, other.ticks)
        cut = {k: getattr(self, k)[:n] for k in ("own", "q", "segment", "target", "partner_segment",
                                                 "partner_target", "my_turn", "partner_turn", "turn_end")}
        return Stream(self.episode, self.robot, self.robot_type, seen=other.seen[:n].copy(),
                      observed=other.observed[:n].copy(), **cut)


@dataclass
class DemoSet:
    path: Path
    meta: dict
    streams: list[Stream]
    segments: list[str]
    n_targets: int
    control_hz: float
    sha256: str
    robot_types: list[str]       # in first-seen order
    dofs: dict[str, int] = field(default_factory=dict)

    @property
    def n_episodes(self) -> int:
        return len(self.meta["episodes"])

    def split(self, held_out: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
        """Episode indices (train, held out); at least one of each when there are >= 2 episodes."""
        n = self.n_episodes
        order = np.random.default_rng(seed).permutation(n)
        k = int(round(n * held_out)) if n > 1 else 0
        k = min(max(k, 1 if n > 1 and held_out > 0 else 0), n - 1)
        return sorted(int(i) for i in order[k:]), sorted(int(i) for i in order[:k])

    def streams_of(self, episodes) -> list[Stream]:
        wanted = set(int(e) for e in episodes)
        return [s for s in self.streams if s.episode in wanted]


def _fail(path, what: str):
    raise RobotMirrorError(f"{path}: {what}")


def load_meta(directory: str | Path) -> dict:
    d = Path(directory)
    if not d.exists():
        _fail(d, "no such demonstration folder (make one with `robot-mirror demos SCENARIO --out DIR`)")
    if not d.is_dir():
        _fail(d, "not a folder (give the demonstration folder that holds meta.json)")
    mp = d / "meta.json"
    if not mp.is_file():
        _fail(mp, "missing; not a demonstration folder")
    try:
        meta = json.loads(mp.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail(mp, f"not valid JSON ({exc})")
    if not isinstance(meta, dict):
        _fail(mp, "not a JSON object")
    if meta.get("format") != DEMOS_FORMAT:
        _fail(mp, f"format {meta.get('format')!r} is not {DEMOS_FORMAT!r}")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        _fail(mp, f"missing key(s) {', '.join(missing)}")
    if not isinstance(meta["robots"], list) or len(meta["robots"]) != 2:
        _fail(mp, "'robots' must list exactly two robots")
    for r in meta["robots"]:
        if not isinstance(r, dict) or "urdf" not in r or "dof" not in r:
            _fail(mp, "each robot needs 'urdf' and 'dof'")
    if not isinstance(meta["episodes"], list) or not meta["episodes"]:
        _fail(mp, "'episodes' is empty")
    if not isinstance(meta["segments"], list) or not meta["segments"]:
        _fail(mp, "'segments' is empty")
    for e in meta["episodes"]:
        if not isinstance(e, dict) or "file" not in e:
            _fail(mp, "each episode needs 'file'")
        if Path(e["file"]).name != e["file"]:
            _fail(mp, f"episode file {e['file']!r} must be a plain file name in the folder")
    return meta


def load_demos(directory: str | Path, *, verify_hash: bool = True) -> DemoSet:
    """Read and check a demonstration folder; every problem is one-line RobotMirrorError."""
    d = Path(directory)
    meta = load_meta(d)
    files = [e["file"] for e in meta["episodes"]]
    for name in files:
        if not (d / name).is_file():
            _fail(d / name, "missing (listed in meta.json)")
    digest = episodes_sha256(d, files)
    if verify_hash and digest != meta["sha256"]:
        _fail(d / "meta.json", f"sha256 mismatch: meta.json says {str(meta['sha256'])[:12]}..., the episode "
                               f"files hash to {digest[:12]}... (files changed since `robot-mirror demos` wrote them)")
    segments = [str(s) for s in meta["segments"]]
    n_targets = int(meta["n_targets"])
    hz = float(meta["control_hz"])
    types = [robot_type_of(r["urdf"]) for r in meta["robots"]]
    dofs = [int(r["dof"]) for r in meta["robots"]]
    streams: list[Stream] = []
    for ei, name in enumerate(files):
        streams.extend(_load_episode(d / name, ei, types, dofs))
    robot_types: list[str] = []
    dof_of: dict[str, int] = {}
    for t, n in zip(types, dofs):
        if t in dof_of and dof_of[t] != n:
            _fail(d / "meta.json", f"robot type {t} listed with {dof_of[t]} and {n} joints")
        if t not in dof_of:
            robot_types.append(t)
            dof_of[t] = n
    return DemoSet(d, meta, streams, segments, n_targets, hz, digest, robot_types, dof_of)


def _load_episode(path: Path, index: int, types: list[str], dofs: list[int]) -> list[Stream]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        _fail(path, f"cannot be read as .npz ({type(exc).__name__}: {exc})")
    for r in (0, 1):
        for k in ROBOT_KEYS:
            if f"r{r}_{k}" not in arrays:
                _fail(path, f"missing array r{r}_{k}")
    T = int(arrays["r0_q"].shape[0])
    raw = {}
    for r in (0, 1):
        a = {k: arrays[f"r{r}_{k}"] for k in ROBOT_KEYS}
        shapes = {"q": (T, dofs[r]), "dq": (T, dofs[r]), "gripper": (T,), "seen_partner_keypoints": (T, 5, 3),
                  "seen_partner_ee_pose": (T, 7), "seen_partner_gripper": (T,), "partner_observed": (T,),
                  "segment": (T,), "target": (T,), "my_turn": (T,), "partner_turn_end_in": (T,)}
        for k, shape in shapes.items():
            if tuple(a[k].shape) != shape:
                _fail(path, f"r{r}_{k} has shape {tuple(a[k].shape)}, expected {shape}")
        raw[r] = a
    streams = []
    for r in (0, 1):
        a, p = raw[r], raw[1 - r]
        q = a["q"].astype(np.float32)
        streams.append(Stream(
            episode=index, robot=r, robot_type=types[r],
            own=self_features(q, a["dq"], a["gripper"]),
            seen=other_features(a["seen_partner_keypoints"], a["seen_partner_ee_pose"], a["seen_partner_gripper"],
                                a["partner_observed"]),
            q=q, segment=a["segment"].astype(np.int64), target=a["target"].astype(np.int64),
            partner_segment=p["segment"].astype(np.int64), partner_target=p["target"].astype(np.int64),
            observed=a["partner_observed"].astype(bool), my_turn=a["my_turn"].astype(bool),
            partner_turn=p["my_turn"].astype(bool), turn_end=a["partner_turn_end_in"].astype(np.float32)))
    return streams


# ---- normalisation ---------------------------------------------------------------------------

def compute_stats(streams: list[Stream]) -> dict:
    """Mean/std per input feature: self features per robot type, observed features
    (task space, observer frame) pooled over the ticks where the partner was seen;
    ``turn_scale`` = std of the finite turn-end labels (seconds)."""
    by_type: dict[str, list[np.ndarray]] = {}
    for s in streams:
        by_type.setdefault(s.robot_type, []).append(s.own)
    self_stats = {}
    for t, xs in by_type.items():
        x = np.concatenate(xs).astype(np.float64)
        self_stats[t] = (np.nanmean(x, 0).tolist(), np.nanstd(x, 0).tolist())
    seen = np.concatenate([s.seen[s.observed] for s in streams] or [np.zeros((0, 24), np.float32)]).astype(np.float64)
    if len(seen) == 0:
        seen = np.concatenate([s.seen for s in streams]).astype(np.float64)
    with np.errstate(all="ignore"):
        o_mean = np.nan_to_num(np.nanmean(seen, 0))
        o_std = np.nan_to_num(np.nanstd(seen, 0), nan=1.0)
    o_std = np.maximum(o_std, OTHER_STD_FLOOR)  # a fixed point (the partner's base) is not scaled up to noise
    o_mean[-1], o_std[-1] = 0.0, 1.0  # the observed flag stays 0/1
    te = np.concatenate([s.turn_end for s in streams])
    te = te[np.isfinite(te)]
    scale = float(max(np.std(te), 0.1)) if te.size else 1.0
    self_stats = {t: ([float(v) for v in np.nan_to_num(m)], [float(v) for v in np.nan_to_num(sd, nan=1.0)])
                  for t, (m, sd) in self_stats.items()}
    return {"self": self_stats, "other": (o_mean.tolist(), o_std.tolist()), "turn_scale": scale}


# ---- truncated-BPTT windows ------------------------------------------------------------------

def _window_arrays(s: Stream, a: int, b: int, horizon: int) -> dict[str, np.ndarray]:
    T = s.ticks
    idx = np.arange(a, b)
    nxt = np.minimum(idx + 1, T - 1)
    fut = idx[:, None] + np.arange(1, horizon + 1)[None, :]
    fut_mask = fut < T
    return {
        "own": s.own[a:b], "seen": s.seen[a:b], "segment": s.segment[a:b], "target": s.target[a:b],
        "partner_segment": s.partner_segment[a:b], "partner_target": s.partner_target[a:b],
        "observed": s.observed[a:b], "turn_end": s.turn_end[a:b],
        "seen_next": s.seen[nxt], "seen_next_mask": (idx + 1 < T) & s.observed[nxt],
        "q_future": s.q[np.minimum(fut, T - 1)], "q_future_mask": fut_mask,
    }


_FILL = {"segment": -1, "target": -1, "partner_segment": -1, "partner_target": -1, "turn_end": np.nan}


def stack_windows(parts: list[dict[str, np.ndarray]], window: int) -> dict:
    """Pad window arrays to ``window`` ticks and stack into torch tensors (+ ``mask``)."""
    import torch

    out: dict = {}
    n = len(parts)
    lengths = [len(p["segment"]) for p in parts]
    for k in parts[0]:
        first = parts[0][k]
        arr = np.full((n, window, *first.shape[1:]), _FILL.get(k, 0), dtype=first.dtype)
        for i, p in enumerate(parts):
            arr[i, :lengths[i]] = p[k]
        out[k] = torch.from_numpy(arr)
    mask = np.zeros((n, window), bool)
    for i, L in enumerate(lengths):
        mask[i, :L] = True
    out["mask"] = torch.from_numpy(mask)
    return out


class WindowSampler:
    """Batches of consecutive windows for truncated BPTT with carried state.

    Each robot type has ``lanes`` lanes; a lane walks one stream from its first
    tick in windows of ``window`` ticks (the trainer carries the core's hidden
    state, detached, from one window to the next) and then takes the next
    stream from a shuffled queue. ``reset`` marks lanes whose window starts a
    stream (their hidden state must start at zero, as it does online).
    """

    def __init__(self, streams: list[Stream], *, lanes: int, window: int, horizon: int,
                 rng: np.random.Generator) -> None:
        self.window, self.horizon, self.rng = window, horizon, rng
        self.by_type: dict[str, list[Stream]] = {}
        for s in streams:
            self.by_type.setdefault(s.robot_type, []).append(s)
        n_types = len(self.by_type)
        self.lanes = {t: max(1, int(math.ceil(lanes / n_types))) for t in self.by_type}
        self._queue: dict[str, list[int]] = {t: [] for t in self.by_type}
        self._lane: dict[str, list[list[int]]] = {}
        for t in self.by_type:
            self._lane[t] = [[self._next_stream(t), 0] for _ in range(self.lanes[t])]
            # spread the lanes over their streams so the batch is not synchronised
            for lane in self._lane[t]:
                T = self.by_type[t][lane[0]].ticks
                lane[1] = int(self.rng.integers(0, max(1, T // window))) * window

    def ticks_per_step(self) -> int:
        return sum(self.lanes.values()) * self.window

    def total_ticks(self) -> int:
        return sum(s.ticks for ss in self.by_type.values() for s in ss)

    def _next_stream(self, t: str) -> int:
        if not self._queue[t]:
            self._queue[t] = list(self.rng.permutation(len(self.by_type[t])))
        return int(self._queue[t].pop())

    def next(self) -> dict[str, dict]:
        """{robot type: batch} for one training step."""
        out = {}
        for t, lanes in self._lane.items():
            parts, reset = [], []
            for lane in lanes:
                s = self.by_type[t][lane[0]]
                a = lane[1]
                b = min(a + self.window, s.ticks)
                parts.append(_window_arrays(s, a, b, self.horizon))
                reset.append(a == 0)
                lane[1] = b
                if b >= s.ticks:
                    lane[0], lane[1] = self._next_stream(t), 0
            import torch

            batch = stack_windows(parts, self.window)
            batch["reset"] = torch.tensor(reset)
            out[t] = batch
        return out


def full_batch(s: Stream, horizon: int) -> dict:
    """A whole stream as a batch of one (evaluation)."""
    return stack_windows([_window_arrays(s, 0, s.ticks, horizon)], s.ticks)


def iter_streams(streams: list[Stream], robot_type: Optional[str] = None) -> Iterator[Stream]:
    return (s for s in streams if robot_type is None or s.robot_type == robot_type)


# ---- synthetic demonstrations ----------------------------------------------------------------

def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz], -1)


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])


def _toy_fk(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A smooth made-up arm: (T, dof) -> keypoints (T, 5, 3), tool quaternion (T, 4), own base frame."""
    T, d = q.shape
    yaw = q[:, 0]
    pitch = np.cumsum(np.stack([q[:, i % d] if i < d else np.zeros(T) for i in range(1, 5)], 1), 1)
    lengths = np.array([0.3, 0.3, 0.2, 0.1])
    kp = np.zeros((T, 5, 3))
    kp[:, 0, 2] = 0.3
    for i in range(4):
        step = np.stack([np.cos(pitch[:, i]) * np.cos(yaw), np.cos(pitch[:, i]) * np.sin(yaw),
                         np.sin(pitch[:, i])], -1) * lengths[i]
        kp[:, i + 1] = kp[:, i] + step
    quat = np.stack([np.zeros(T), np.sin(pitch[:, -1] / 2), np.zeros(T), np.cos(pitch[:, -1] / 2)], -1)
    quat = _quat_mul(np.stack([np.zeros(T), np.zeros(T), np.sin(yaw / 2), np.cos(yaw / 2)], -1), quat)
    return kp, quat


def write_synthetic_demos(out: str | Path, *, episodes: int = 4, turns: int = 4, dof: int = 4,
                          n_targets: int = 3, control_hz: int = 20, seed: int = 0,
                          urdfs: tuple[str, str] = ("synthetic/arm.urdf", "synthetic/arm.urdf"),
                          dofs: Optional[tuple[int, int]] = None, noise: float = 0.005,
                          drop_rate: float = 0.05, seg_ticks: tuple[int, int] = (5, 9)) -> Path:
    """Write a tiny ``robot_mirror.demos/1`` folder of two toy arms taking turns.

    Turn *i* is taken by robot (first + i) % 2 and aims at target i % n_targets;
    the acting arm goes through reach, grasp, carry, place, retreat, each a
    smooth move towards a waypoint fixed per (segment, target), while the other
    waits at home and sees it (in its own base frame, with noise and drops).
    The waypoints are the same for both arms, so executed and observed actions
    with the same label look alike in task space: a network can mirror them.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dofs = tuple(dofs) if dofs is not None else (dof, dof)
    segs = SEGMENTS
    wp_rng = np.random.default_rng(1234)
    max_dof = max(dofs)
    waypoints = wp_rng.uniform(-1.0, 1.0, (len(segs), n_targets, max_dof)) * 0.8
    bases = [(np.array([-0.6, 0.0, 0.0]), 0.0), (np.array([0.6, 0.0, 0.0]), math.pi)]
    files, ep_meta = [], []
    for e in range(episodes):
        rng = np.random.default_rng(seed * 1000 + e)
        first = int(rng.integers(0, 2))
        plan = []  # (actor, target, [(segment, ticks)]), gaps as actor -1
        for i in range(turns):
            plan.append((-1, -1, [(0, int(rng.integers(2, 5)))]))
            plan.append(((first + i) % 2, i % n_targets,
                         [(k, int(rng.integers(*seg_ticks))) for k in range(1, len(segs))]))
        plan.append((-1, -1, [(0, 3)]))
        T = sum(n for _, _, ss in plan for _, n in ss)
        q = [np.zeros((T, d)) for d in dofs]
        grip = [np.zeros(T) for _ in dofs]
        seg = [np.zeros(T, np.int8) for _ in dofs]
        tgt = [np.full(T, -1, np.int8) for _ in dofs]
        block = [np.full(T, -1, np.int8) for _ in dofs]
        turn = [np.zeros(T, bool) for _ in dofs]
        turn_end_tick = np.full(T, -1)
        t0 = 0
        for ti, (actor, target, ss) in enumerate(plan):
            start = t0
            n_turn = sum(n for _, n in ss)
            if actor >= 0:
                turn_end_tick[start:start + n_turn] = start + n_turn
            prev = np.zeros(max_dof)
            for k, n in ss:
                for r in (0, 1):
                    if r == actor:
                        goal = waypoints[k, target] if k != len(segs) - 1 else np.zeros(max_dof)
                        s = np.linspace(0, 1, n + 1)[1:]
                        s = s * s * (3 - 2 * s)
                        path = prev[None] + (goal - prev)[None] * s[:, None]
                        q[r][t0:t0 + n] = path[:, :dofs[r]]
                        seg[r][t0:t0 + n] = k
                        tgt[r][t0:t0 + n] = target
                        block[r][t0:t0 + n] = ti // 2
                        turn[r][t0:t0 + n] = True
                        grip[r][t0:t0 + n] = {2: np.linspace(0, 1, n), 3: 1.0,  # 0 open, 1 closed
                                              4: np.linspace(1, 0, n)}.get(k, 0.0)
                if actor >= 0:
                    prev = (waypoints[k, target] if k != len(segs) - 1 else np.zeros(max_dof)).copy()
                t0 += n
        data: dict[str, np.ndarray] = {"t": (np.arange(T) / control_hz).astype(np.float32)}
        world_kp, world_quat = [], []
        for r in (0, 1):
            q[r] = q[r] + rng.normal(0, 0.002, q[r].shape)
            kp, quat = _toy_fk(q[r])
            base, yaw = bases[r]
            c, s_ = math.cos(yaw), math.sin(yaw)
            R = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
            world_kp.append(kp @ R.T + base)
            world_quat.append(_quat_mul(np.broadcast_to(_yaw_quat(yaw), quat.shape), quat))
            dq = np.gradient(q[r], axis=0) * control_hz
            p = f"r{r}_"
            data[p + "q"] = q[r].astype(np.float32)
            data[p + "dq"] = dq.astype(np.float32)
            data[p + "gripper"] = grip[r].astype(np.float32)
            data[p + "ee_pose"] = np.concatenate([world_kp[r][:, -1], world_quat[r]], 1).astype(np.float32)
            data[p + "own_keypoints"] = kp.astype(np.float32)
            data[p + "segment"] = seg[r]
            data[p + "target"] = tgt[r]
            data[p + "block"] = block[r]
            data[p + "my_turn"] = turn[r]
        for r in (0, 1):
            o = 1 - r
            base, yaw = bases[r]
            c, s_ = math.cos(yaw), math.sin(yaw)
            R = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
            seen_kp = (world_kp[o] - base) @ R + rng.normal(0, noise, world_kp[o].shape)
            seen_q = _quat_mul(np.broadcast_to(_yaw_quat(-yaw), world_quat[o].shape), world_quat[o])
            seen_g = grip[o].copy()
            observed = rng.random(T) >= drop_rate
            observed[0] = True
            for t in range(1, T):  # a drop keeps the last view
                if not observed[t]:
                    seen_kp[t], seen_q[t], seen_g[t] = seen_kp[t - 1], seen_q[t - 1], seen_g[t - 1]
            p = f"r{r}_"
            data[p + "seen_partner_keypoints"] = seen_kp.astype(np.float32)
            data[p + "seen_partner_ee_pose"] = np.concatenate([seen_kp[:, -1], seen_q], 1).astype(np.float32)
            data[p + "seen_partner_gripper"] = seen_g.astype(np.float32)
            data[p + "partner_observed"] = observed
            end = np.where(turn[o], (turn_end_tick - np.arange(T)) / control_hz, np.nan)
            data[p + "partner_turn_end_in"] = end.astype(np.float32)
        name = f"episode_{e:04d}.npz"
        np.savez_compressed(out / name, **data)
        files.append(name)
        ep_meta.append({"file": name, "seed": seed * 1000 + e, "ticks": T, "success": True})
    meta = {
        "format": DEMOS_FORMAT, "scenario": "synthetic", "task": "tower", "control_hz": control_hz,
        "robots": [{"name": n, "urdf": u, "dof": d, "gripper": "fingers"}
                   for n, u, d in zip(("left", "right"), urdfs, dofs)],
        "segments": list(segs), "n_targets": n_targets,
        "perception": {"noise_std": noise, "delay_ticks": 0, "drop_rate": drop_rate},
        "episodes": ep_meta, "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "sha256": episodes_sha256(out, files),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
