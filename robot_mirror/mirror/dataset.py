"""Demonstrations for the mirror network: loading, checking, statistics, windows.

A demonstration folder (written by ``robot-mirror demos``, format
``robot_mirror.demos/2``) holds ``meta.json`` and one ``episode_NNNN.npz`` per
episode with per-robot arrays prefixed ``r0_`` / ``r1_`` (see docs/demos.md).
Every episode gives two :class:`Stream` s, one per robot: that robot's own
body as it moved (the self stream) and its partner as it saw it (the observed
stream), both as body descriptions (:func:`~robot_mirror.mirror.features.body_features`),
labelled with its own and its partner's (segment, target) at each tick.
Training windows keep the two robots of an episode side by side
(:class:`EpisodeSampler`), so that one arm acting and the other watching it
at the same tick are at hand as label-free positive pairs.

The per-tick input features are in :mod:`robot_mirror.mirror.features`; a
small synthetic folder in this format comes from
:func:`robot_mirror.mirror.synthetic.write_synthetic_demos`.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_mirror.errors import RobotMirrorError
from robot_mirror.mirror.features import BODY_DIM, body_features, robot_type_of
from robot_mirror.mirror.labels import egocentric_slots

DEMOS_FORMAT = "robot_mirror.demos/2"
SEGMENTS = ["wait", "reach", "grasp", "carry", "place", "retreat"]
META_KEYS = ("format", "control_hz", "robots", "segments", "n_targets", "episodes", "sha256")
STD_FLOOR = 0.02  # m (and rotation units): smallest scale of a body feature
ROBOT_KEYS = ("gripper", "own_keypoints", "own_ee_pose", "seen_partner_keypoints", "seen_partner_ee_pose",
              "seen_partner_gripper", "partner_observed", "segment", "target", "my_turn", "partner_turn_end_in")
POSITION_DIMS = 18  # body features 0..17 are positions (keypoints, tool): the own-body noise goes there


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
    own: np.ndarray              # (T, 26) own body, own base frame
    seen: np.ndarray             # (T, 26) partner's body as seen, own base frame
    segment: np.ndarray          # (T,) int64, own action
    target: np.ndarray           # (T,) int64, own target (-1 none)
    partner_segment: np.ndarray  # (T,) the partner's action = label of what is observed
    partner_target: np.ndarray
    observed: np.ndarray         # (T,) bool, the partner was seen this tick
    my_turn: np.ndarray          # (T,) bool
    partner_turn: np.ndarray     # (T,) bool, the partner holds the turn
    turn_end: np.ndarray         # (T,) float32 s until the partner's turn ends, NaN otherwise
    own_turn_end: np.ndarray     # (T,) float32 s until the own turn ends, NaN otherwise

    @property
    def ticks(self) -> int:
        return int(self.segment.shape[0])

    def with_seen_from(self, other: "Stream") -> "Stream":
        """This stream's labels with another stream's observations (shuffled-partner control)."""
        n = min(self.ticks, other.ticks)
        cut = {k: getattr(self, k)[:n] for k in ("own", "segment", "target", "partner_segment", "partner_target",
                                                 "my_turn", "partner_turn", "turn_end", "own_turn_end")}
        return Stream(self.episode, self.robot, self.robot_type, seen=other.seen[:n].copy(),
                      observed=other.observed[:n].copy(), **cut)


@dataclass
class DemoSet:
    path: Path
    meta: dict
    streams: list[Stream]        # episode e: streams[2e] (robot 0), streams[2e + 1] (robot 1)
    segments: list[str]
    n_targets: int
    control_hz: float
    sha256: str
    robot_types: list[str]       # in first-seen order

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
    types = [robot_type_of(r["urdf"]) for r in meta["robots"]]
    streams: list[Stream] = []
    for ei, name in enumerate(files):
        streams.extend(_load_episode(d / name, ei, types))
    if meta.get("task") == "imitation":
        egocentric_slots(streams, int(meta["n_targets"]), SEGMENTS.index("place"))
    return DemoSet(d, meta, streams, [str(s) for s in meta["segments"]], int(meta["n_targets"]),
                   float(meta["control_hz"]), digest, list(dict.fromkeys(types)))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        _fail(path, f"cannot be read as .npz ({type(exc).__name__}: {exc})")


def _load_episode(path: Path, index: int, types: list[str]) -> list[Stream]:
    arrays = read_npz(path)
    for r in (0, 1):
        for k in ROBOT_KEYS:
            if f"r{r}_{k}" not in arrays:
                _fail(path, f"missing array r{r}_{k}")
    T = int(arrays["r0_segment"].shape[0])
    shapes = {"gripper": (T,), "own_keypoints": (T, 5, 3), "own_ee_pose": (T, 7), "seen_partner_keypoints": (T, 5, 3),
              "seen_partner_ee_pose": (T, 7), "seen_partner_gripper": (T,), "partner_observed": (T,),
              "segment": (T,), "target": (T,), "my_turn": (T,), "partner_turn_end_in": (T,)}
    raw = {}
    for r in (0, 1):
        a = {k: arrays[f"r{r}_{k}"] for k in ROBOT_KEYS}
        for k, shape in shapes.items():
            if tuple(a[k].shape) != shape:
                _fail(path, f"r{r}_{k} has shape {tuple(a[k].shape)}, expected {shape}")
        raw[r] = a
    streams = []
    for r in (0, 1):
        a, p = raw[r], raw[1 - r]
        streams.append(Stream(
            episode=index, robot=r, robot_type=types[r],
            own=body_features(a["own_keypoints"], a["own_ee_pose"], a["gripper"], np.ones(T, np.float32)),
            seen=body_features(a["seen_partner_keypoints"], a["seen_partner_ee_pose"], a["seen_partner_gripper"],
                               a["partner_observed"]),
            segment=a["segment"].astype(np.int64), target=a["target"].astype(np.int64),
            partner_segment=p["segment"].astype(np.int64), partner_target=p["target"].astype(np.int64),
            observed=a["partner_observed"].astype(bool), my_turn=a["my_turn"].astype(bool),
            partner_turn=p["my_turn"].astype(bool), turn_end=a["partner_turn_end_in"].astype(np.float32),
            own_turn_end=p["partner_turn_end_in"].astype(np.float32)))
    return streams


# ---- normalisation ---------------------------------------------------------------------------

def compute_stats(streams: list[Stream]) -> dict:
    """Mean/std per body feature, pooled over the own bodies and the seen partners
    (ticks where it was seen): one input layer, one set of statistics. Std is
    floored so a fixed point (a base) is not blown up to noise; the seen flag
    stays 0/1. ``turn_scale`` = std of the finite turn-end labels (seconds)."""
    parts = [s.own for s in streams] + [s.seen[s.observed] for s in streams]
    x = np.concatenate(parts or [np.zeros((0, BODY_DIM), np.float32)]).astype(np.float64)
    with np.errstate(all="ignore"):
        mean = np.nan_to_num(np.nanmean(x, 0))
        std = np.nan_to_num(np.nanstd(x, 0), nan=1.0)
    std = np.maximum(std, STD_FLOOR)
    mean[-1], std[-1] = 0.0, 1.0
    te = np.concatenate([s.turn_end for s in streams]) if streams else np.zeros(0)
    te = te[np.isfinite(te)]
    scale = float(max(np.std(te), 0.1)) if te.size else 1.0
    return {"body": (mean.tolist(), std.tolist()), "turn_scale": scale}


# ---- truncated-BPTT windows ------------------------------------------------------------------

def _window_arrays(s: Stream, a: int, b: int) -> dict[str, np.ndarray]:
    T = s.ticks
    idx = np.arange(a, b)
    nxt = np.minimum(idx + 1, T - 1)
    return {
        "own": s.own[a:b], "seen": s.seen[a:b], "segment": s.segment[a:b], "target": s.target[a:b],
        "partner_segment": s.partner_segment[a:b], "partner_target": s.partner_target[a:b],
        "observed": s.observed[a:b], "turn_end": s.turn_end[a:b], "own_turn_end": s.own_turn_end[a:b],
        "own_next": s.own[nxt], "own_next_mask": idx + 1 < T,
        "seen_next": s.seen[nxt], "seen_next_mask": (idx + 1 < T) & s.observed[nxt],
    }


_FILL = {"segment": -1, "target": -1, "partner_segment": -1, "partner_target": -1, "turn_end": np.nan,
         "own_turn_end": np.nan}


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


def mask_pairs(batch: dict, pairs: list[tuple[int, int]]) -> dict:
    """Hide the own-action labels of held-out (segment, target) pairs: training
    never sees them, so recognising them later is a test of generalisation."""
    for seg, tgt in pairs:
        hide = (batch["segment"] == seg) & (batch["target"] == tgt)
        batch["segment"][hide] = -1
        batch["target"][hide] = -1
    return batch


class EpisodeSampler:
    """Batches of consecutive windows for truncated BPTT with carried state.

    ``lanes`` lanes each walk one episode from its first tick in windows of
    ``window`` ticks and then take the next episode from a shuffled queue. A
    lane gives two batch rows, its two robots (rows 2i and 2i+1), so an arm's
    own stream and its partner's view of it share the batch (the alignment
    term pairs them). ``reset`` marks rows whose window starts an episode (their
    carried state must start at zero, as online). ``self_noise`` (m) is added
    to the own body's positions: the arm sees its own hand through the same
    imperfect eyes as its partner's.
    """

    def __init__(self, streams: list[Stream], *, lanes: int, window: int, rng: np.random.Generator,
                 self_noise: float = 0.0) -> None:
        self.window, self.rng, self.self_noise = window, rng, float(self_noise)
        by_episode: dict[int, list[Stream]] = {}
        for s in streams:
            by_episode.setdefault(s.episode, []).append(s)
        self.episodes = [sorted(v, key=lambda s: s.robot) for v in by_episode.values() if len(v) == 2]
        if not self.episodes:
            raise RobotMirrorError("no episode with both robots' streams to train on")
        self.lanes = max(1, lanes // 2)
        self._queue: list[int] = []
        self._lane = [[self._next_episode(), 0] for _ in range(self.lanes)]
        for lane in self._lane:  # spread the lanes so the batch is not synchronised
            T = self.episodes[lane[0]][0].ticks
            lane[1] = int(self.rng.integers(0, max(1, T // window))) * window

    def ticks_per_step(self) -> int:
        return 2 * self.lanes * self.window

    def total_ticks(self) -> int:
        return sum(s.ticks for pair in self.episodes for s in pair)

    def _next_episode(self) -> int:
        if not self._queue:
            self._queue = list(self.rng.permutation(len(self.episodes)))
        return int(self._queue.pop())

    def next(self) -> dict:
        import torch

        parts, reset = [], []
        for lane in self._lane:
            pair = self.episodes[lane[0]]
            a = lane[1]
            b = min(a + self.window, pair[0].ticks)
            for s in pair:
                parts.append(_window_arrays(s, a, b))
                reset.append(a == 0)
            lane[1] = b
            if b >= pair[0].ticks:
                lane[0], lane[1] = self._next_episode(), 0
        if self.self_noise > 0:
            for p in parts:
                noise = self.rng.normal(0.0, self.self_noise, (len(p["own"]), POSITION_DIMS))
                p["own"] = p["own"].copy()
                p["own"][:, :POSITION_DIMS] += noise.astype(np.float32)
        batch = stack_windows(parts, self.window)
        batch["reset"] = torch.tensor(reset)
        return batch


def whole_streams(streams: list[Stream]) -> dict:
    """Whole streams as one batch, padded to the longest (evaluation)."""
    return stack_windows([_window_arrays(s, 0, s.ticks) for s in streams], max(s.ticks for s in streams))


def full_batch(s: Stream) -> dict:
    """A whole stream as a batch of one (evaluation)."""
    return whole_streams([s])
