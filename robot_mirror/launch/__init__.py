"""Scenario files (YAML) and, later, the process supervisor that runs them."""

from robot_mirror.launch.scenario import Scenario, load_scenario

__all__ = ["Scenario", "load_scenario"]
