"""Scenario files: two robots, one task, the policies and the rates.

A scenario is YAML loaded into the dataclasses below. Values can be
overridden from the command line with dotted paths (``--set task.blocks=8``,
``--set robots.left.urdf=my.urdf``; robots are addressed by name).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robot_mirror.errors import ConfigError
from robot_mirror.geometry import Frame
from robot_mirror.config.schema import field_error, describe_path, field, from_dict

TASK_KINDS = ("tower", "imitation")


@dataclass
class RobotConfig:
    name: str = field(doc="unique name, used in overrides and on the bus")
    urdf: str = field(doc="path (relative to the scenario file, the project, or the working dir) or pybullet_data name")
    base: list[float] = field([0.0, 0.0, 0.0], length=3, range=(-5.0, 5.0), doc="base position, m")
    yaw_deg: float = field(0.0, range=(-360.0, 360.0), doc="base heading about z, degrees")
    gripper: str = field("auto", choices=("auto", "fingers", "suction"),
                         doc="tool kind; auto: fingers if the URDF has finger joints, else suction")
    ee_link: str | None = field(None, doc="end-effector link; auto-detected when absent")
    home_q: list[float] | None = field(None, doc="joint angles of the rest pose, rad")
    policy: str = field("expert",
                        doc="a name from the policy registry (robot_mirror/policies): expert, oracle,"
                            " mirror, constant, heuristic, external, random, hold")
    checkpoint: str | None = field(None, doc="MirrorNet checkpoint for policy: mirror (default: shipped)")
    motor: str = field("planner", choices=("planner", "network"),
                       doc="policy: mirror: who moves the arm through a pick-and-place, the scripted planner or "
                           "the network's motor readout (docs/mirror.md)")

    def base_frame(self) -> Frame:
        """The arm's base frame: where perception expresses what it sees."""
        return Frame(self.base, math.radians(self.yaw_deg))


@dataclass
class TowerConfig:
    kind: str = field("tower", choices=TASK_KINDS, doc="which task; chooses this table")
    blocks: int = field(6, range=(1, 10), doc="number of blocks, split between the arms")
    block_size: float = field(0.05, range=(0.03, 0.08), doc="cube edge, m")
    tower_xy: list[float] = field([0.0, 0.0], length=2, range=(-1.0, 1.0),
                                  doc="where the tower stands (the shared zone's axis), world x y, m")
    zone_radius: float = field(0.2, range=(0.05, 0.5), doc="shared-zone cylinder radius, m (the zone: below)")
    place_tolerance: float = field(0.015, range=(0.002, 0.05), doc="allowed xy offset of a stacked block, m")
    settle_time: float = field(1.0, range=(0.0, 10.0), doc="s the finished tower must stand")
    time_limit: float = field(150.0, range=(5.0, 3600.0), doc="episode limit, simulated s")
    first: str | None = field(None, doc="robot that starts; default the first listed")
    spot_jitter: float = field(0.01, range=(0.0, 0.03), doc="random offset of block start positions, m")
    spot_yaw_jitter_deg: float = field(15.0, range=(0.0, 45.0), doc="random turn of block start poses, degrees")

    @property
    def n_targets(self) -> int:
        """Distinct ``target`` labels of a demonstration: tower levels."""
        return self.blocks


@dataclass
class ImitationConfig:
    kind: str = field("imitation", choices=TASK_KINDS, doc="which task; chooses this table")
    slots: int = field(4, range=(2, 8), doc="target slots per side")
    rounds: int = field(4, range=(1, 20), doc="rounds per episode; roles alternate")
    block_size: float = field(0.05, range=(0.03, 0.08), doc="cube edge, m")
    zone_radius: float = field(0.2, range=(0.05, 0.5), doc="shared-zone cylinder radius, m; centred at (0, 0)")
    slot_tolerance: float = field(0.03, range=(0.005, 0.1), doc="m from the slot centre that counts")
    follow_budget: float = field(1.75, range=(0.5, 60.0),
                                 doc="s from the start of the follower's turn by which its block must be "
                                     "released in the right slot, else the round is late (not a success). "
                                     "From the scripted follower's timing: hovering over the right slot "
                                     "1.18 s, one slot over 1.58 s, two slots over 1.93 s "
                                     "(robot_mirror/sim/tasks/imitation.py)")
    time_limit: float = field(150.0, range=(5.0, 3600.0), doc="episode limit, simulated s")
    first: str | None = field(None, doc="first leader; default the first listed")

    @property
    def n_targets(self) -> int:
        """Distinct ``target`` labels of a demonstration: slots."""
        return self.slots


TASK_CONFIGS: dict[str, type] = {"tower": TowerConfig, "imitation": ImitationConfig}


# Named perception levels: (noise_std m, delay_ticks at 60 Hz, drop_rate).
# ``default`` is what a camera-based pose tracker gives (docs/mirror.md,
# "Perception"); ``stress`` is a bad day; ``perfect`` is the named special
# case of exact, instant, never-lost views.
PERCEPTION_LEVELS: dict[str, tuple[float, int, float]] = {
    "default": (0.015, 4, 0.10),
    "stress": (0.03, 10, 0.30),
    "perfect": (0.0, 0, 0.0),
}


@dataclass
class PerceptionConfig:
    """How each robot perceives its partner (see robot_mirror/common/perception.py).

    ``level`` picks the three numbers; any of them set explicitly wins over
    the level (``--set perception.level=stress``, ``--set perception.noise_std=0.02``)."""

    level: str = field("default", choices=tuple(PERCEPTION_LEVELS),
                       doc="named level: default (a camera tracker), stress, perfect (exact views)")
    noise_std: float | None = field(None, range=(0.0, 0.05),
                                    doc="m, Gaussian noise on observed partner positions (unset: from level)")
    delay_ticks: int | None = field(None, range=(0, 60),
                                    doc="control ticks between the partner moving and being seen (unset: from level)")
    drop_rate: float | None = field(None, range=(0.0, 0.9),
                                    doc="fraction of ticks whose partner view is lost (unset: from level)")

    def __post_init__(self) -> None:
        noise, delay, drop = PERCEPTION_LEVELS.get(self.level, PERCEPTION_LEVELS["default"])
        self.noise_std = noise if self.noise_std is None else self.noise_std
        self.delay_ticks = delay if self.delay_ticks is None else self.delay_ticks
        self.drop_rate = drop if self.drop_rate is None else self.drop_rate


@dataclass
class BusConfig:
    """How the processes talk (see docs/protocol.md)."""

    mode: str = field("lockstep", choices=("lockstep", "realtime"),
                      doc="lockstep: deterministic, as fast as possible; realtime: paced to the wall clock")
    realtime_factor: float = field(1.0, range=(0.05, 100.0), doc="simulated s per wall s in realtime mode")
    interface: str = field("127.0.0.1", doc="address to bind; every run is CURVE-authenticated (fresh keys in RUN/keys/ unless keys_dir is set)")
    keys_dir: str | None = field(None, doc="reuse the CURVE keys of this folder (made by `robot-mirror keys DIR`) instead of fresh per-run keys")
    command_timeout: float = field(5.0, range=(0.05, 120.0),
                                   doc="wall s lock-step waits for a policy before holding its arm")
    watchdog: float = field(0.5, range=(0.05, 30.0),
                            doc="wall s without commands after which a realtime arm is held still")
    silence_timeout: float = field(3.0, range=(0.2, 600.0),
                                   doc="simulated s a turn holder may stay silent before losing the turn")
    controller_timeout: float = field(60.0, range=(1.0, 3600.0),
                                      doc="wall s to wait for an external controller to connect")


@dataclass
class RestartPolicy:
    max_restarts: int = field(3, range=(0, 100), doc="restarts allowed per run")
    backoff: float = field(0.2, range=(0.0, 60.0), doc="s before the first restart; doubles each time")
    backoff_max: float = field(5.0, range=(0.0, 600.0), doc="s, the longest wait before a restart")


@dataclass
class NodesConfig:
    """Restart policy of each restartable node kind (a crashed sim ends the run)."""

    perception: RestartPolicy = field(RestartPolicy(), doc="the perception process")
    policy: RestartPolicy = field(RestartPolicy(), doc="each policy process")
    turn: RestartPolicy = field(RestartPolicy(), doc="the turn arbiter process")
    viewer: RestartPolicy = field(RestartPolicy(), doc="the viewer process (`launch --viewer` / `--rrd`)")


@dataclass
class Scenario:
    name: str = field(doc="short name, used in run folder names")
    robots: list[RobotConfig] = field(doc="exactly two arms")
    task: Any = field(doc="task kind and parameters")
    seed: int = field(0, range=(0, 2**31 - 1), doc="seed of episode 0; episode i uses seed + i")
    episodes: int = field(1, range=(1, 100000), doc="episodes per run (`launch --episodes` overrides)")
    physics_hz: int = field(240, range=(60, 2000), doc="physics steps per simulated s")
    control_hz: int = field(60, range=(5, 500), doc="control ticks (observations, commands) per simulated s")
    perception: PerceptionConfig = field(PerceptionConfig(), doc="partner perception model")
    bus: BusConfig = field(BusConfig(), doc="process bus settings")
    nodes: NodesConfig = field(NodesConfig(), doc="restart policies")
    description: str = field("", doc="free text")
    source: str = field("<memory>", doc="file it came from (set by the loader)")

    def robot(self, name: str) -> RobotConfig:
        for r in self.robots:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def robot_names(self) -> list[str]:
        return [r.name for r in self.robots]

    @property
    def substeps(self) -> int:
        return self.physics_hz // self.control_hz

    @property
    def base_dir(self) -> Path:
        return Path(self.source).resolve().parent if self.source != "<memory>" else Path.cwd()


def _validate(raw: dict, source: str) -> Scenario:
    if not isinstance(raw, dict):
        raise field_error(source, "(top level)", raw, "must be a mapping with name, robots, task")
    task_raw = raw.get("task")
    if task_raw is None:
        raise ConfigError(f"{source}: task is missing (required)")
    if not isinstance(task_raw, dict):
        raise field_error(source, "task", task_raw, "must be a mapping with a kind")
    kind = task_raw.get("kind", "tower")
    if kind not in TASK_CONFIGS:
        raise field_error(source, "task.kind", kind, "unknown task; allowed: " + ", ".join(TASK_KINDS))
    raw = dict(raw)
    robots_raw = raw.get("robots")
    scenario = from_dict(Scenario, {**raw, "task": {}, "source": source}, source)
    scenario.task = from_dict(TASK_CONFIGS[kind], task_raw, source, "task")
    if robots_raw is not None and len(scenario.robots) != 2:
        raise field_error(source, "robots", [r.name for r in scenario.robots], "must list exactly two robots")
    names = scenario.robot_names
    if len(set(names)) != len(names):
        raise field_error(source, "robots", names, "robot names must be unique")
    if scenario.physics_hz % scenario.control_hz:
        raise field_error(source, "control_hz", scenario.control_hz,
                    f"must divide physics_hz ({scenario.physics_hz})")
    first = scenario.task.first
    if first is not None and first not in names:
        raise field_error(source, "task.first", first, "must be one of the robots: " + ", ".join(names))
    for i, r in enumerate(scenario.robots):
        if r.home_q is not None and not all(math.isfinite(v) for v in r.home_q):
            raise field_error(source, f"robots.{r.name}.home_q", r.home_q, "must be finite numbers")
        if r.motor == "network" and r.policy not in ("mirror", "mirror_lesioned"):
            raise field_error(source, f"robots.{r.name}.motor", r.motor,
                              "'network' needs policy: mirror (or mirror_lesioned)")
    return scenario


def apply_overrides(raw: dict, overrides: list[str], source: str) -> dict:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to raw data."""
    data = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. task.blocks=8")
        key, _, text = item.partition("=")
        parts = key.strip().split(".")
        value = override_value(text, _field_type(parts, data))
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):  # robots addressed by name
                match = [r for r in node if isinstance(r, dict) and r.get("name") == part]
                if not match:
                    names = [r.get("name") for r in node if isinstance(r, dict)]
                    raise ConfigError(f"--set {key}: no robot named '{part}' in {source}; robots: {names}")
                if last:
                    raise ConfigError(f"--set {key}: name a field of robot '{part}', e.g. {where}.urdf")
                node = match[0]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: '{parts[depth - 1]}' is not a section")
            if last:
                node[part] = value
            else:
                if part not in node or node[part] is None:
                    node[part] = {}
                node = node[part]
    return data


def override_value(text: str, tp: Any) -> Any:
    """The value of ``--set KEY=TEXT`` for a field of type ``tp``.

    The rule: TEXT is parsed as YAML (``8`` a number, ``[0, 0]`` a list,
    ``null`` nothing); when the field holds text and YAML made something
    else of it, the text as written is the value. So ``bus.interface=::``
    is the string ``::``, not the YAML map ``{':': None}``, and ``name=007``
    is ``"007"``. Other fields get what YAML made, checked by the validator.
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if tp is not None and _holds_text(tp) and not isinstance(value, str):
        if value is None and _optional(tp):
            return None
        return text
    return value


def _holds_text(tp: Any) -> bool:
    return tp is str or str in typing.get_args(tp)


def _optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _field_type(parts: list[str], data: Any) -> Any:
    """The declared type of the scenario field at dotted path ``parts`` (robots
    by name, the task by its kind), or None when the path names no field."""
    cls: Any = Scenario
    i = 0
    while i < len(parts):
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            return None
        hints = typing.get_type_hints(cls)
        if parts[i] not in hints:
            return None
        tp = hints[parts[i]]
        if cls is Scenario and parts[i] == "task":
            task = data.get("task") if isinstance(data, dict) else None
            tp = TASK_CONFIGS.get(task.get("kind", "tower") if isinstance(task, dict) else "tower")
        elif cls is Scenario and parts[i] == "robots":
            tp, i = RobotConfig, i + 1  # the next part is a robot's name
        if i == len(parts) - 1:
            return tp
        cls, i = tp, i + 1
    return None


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file; errors name file, field and value."""
    path = Path(path)
    source = describe_path(path)
    if not path.is_file():
        raise ConfigError(f"{source}: scenario file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None
    if raw is None:
        raise ConfigError(f"{source}: the file is empty")
    if overrides:
        raw = apply_overrides(raw, overrides, source)
    return _validate(raw, source)
