"""Generated documents match what they are generated from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from robot_mirror.config import reference
from robot_mirror.config.scenario import BusConfig, TowerConfig
from robot_mirror.sim.zone import SharedZone

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "python -m robot_mirror.config.reference > docs/scenario.md"


def test_scenario_reference_is_up_to_date() -> None:
    text = (ROOT / "docs" / "scenario.md").read_text()
    assert text == reference.render(), f"docs/scenario.md is out of date; run: {REGENERATE}"


def test_scenario_reference_lists_every_field_with_its_default() -> None:
    text = reference.render()
    for cls, prefix in ((TowerConfig, "task."), (BusConfig, "bus.")):
        for f in dataclasses.fields(cls):
            row = next(l for l in text.splitlines() if l.startswith(f"| `{prefix}{f.name}` |"))
            assert reference.default_text(f) in row
    assert "| `task.time_limit` | float | `150.0` | 5.0 .. 3600.0 |" in text
    assert "| `bus.silence_timeout` | float | `3.0` |" in text


def test_scenario_reference_states_the_zone_the_sim_uses() -> None:
    """The zone's height is not a scenario field: the text must follow the sim's constant."""
    assert f"up to {SharedZone.height} m above it" in reference.render()


def test_readme_links_the_reference() -> None:
    assert "(docs/scenario.md)" in (ROOT / "README.md").read_text()
