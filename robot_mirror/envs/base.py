"""What both wrappers share: the scenario they open, the in-process
environment they drive and each arm's declared spaces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from gymnasium import spaces

from robot_mirror.common.observation import LazyObservation, ObsField
from robot_mirror.config.scenario import load_scenario
from robot_mirror.env import TurnTakingEnv
from robot_mirror.envs import spaces as S

LAUNCH = Path(__file__).resolve().parents[2] / "launch"  # the shipped scenarios
RENDER_MODES = ["rgb_array"]


@dataclass(frozen=True)
class EnvConfig:
    """How to open an environment: a scenario file (the shipped ones by
    default) and ``--set``-style overrides (``"task.blocks=2"``,
    ``"robots.right.policy=hold"``), exactly as ``robot-mirror launch`` reads them."""

    scenario: str | Path = LAUNCH / "tower.yaml"
    overrides: tuple[str, ...] = field(default_factory=tuple)
    render_mode: str | None = None

    def __post_init__(self) -> None:
        if self.render_mode not in (None, *RENDER_MODES):
            raise ValueError(f"render_mode = {self.render_mode!r}: allowed: None, {', '.join(RENDER_MODES)}")


class ArmSpaces:
    """A ``TurnTakingEnv`` opened from an :class:`EnvConfig`, with each arm's
    observation fields and spaces. One seeded reset binds the sizes the
    declaration leaves open (joints, blocks) and reads the task's fields."""

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self.scenario = load_scenario(config.scenario, list(config.overrides))
        self.env = TurnTakingEnv(self.scenario)
        self.names: list[str] = list(self.env.robot_names)
        sample, _ = self.env.reset(seed=self.scenario.seed)
        self.fields: dict[str, tuple[ObsField, ...]] = {n: S.observation_fields(sample[n]) for n in self.names}
        self.observation_spaces: dict[str, spaces.Dict] = {
            n: S.observation_space(self.fields[n], self.names) for n in self.names}
        self._convert = {n: S.converters(self.fields[n]) for n in self.names}
        arms = self.env.world.arms
        self.action_spaces: dict[str, spaces.Dict] = {
            n: S.action_space(arms[n].lower, arms[n].upper) for n in self.names}

    def convert(self, name: str, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Robot ``name``'s observation as a member of its space."""
        if isinstance(obs, LazyObservation):
            obs = obs.build()  # one build, then plain dictionary reads
        return S.to_space(obs, self._convert[name])

    def render(self):
        return self.env.render() if self.config.render_mode == "rgb_array" else None

    def close(self) -> None:
        self.env.close()
