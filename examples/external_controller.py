"""An external controller that builds its half of the tower over the bus.

It uses nothing but robot_mirror.client (the wire protocol): it reads its
observation, sends tool-pose targets (the sim solves IK), closes and opens
the gripper, and gives the turn back. The built-in expert plays the other
arm. Run it against a launched scenario whose robot has `policy: external`:

    robot-mirror launch launch/tower_external.yaml --out runs/ext &
    python examples/external_controller.py --robot left --endpoints runs/ext/endpoints.json

It authenticates with the run's keys: by default ``keys/`` next to the
endpoints file (``runs/ext/keys``); on another machine copy ``server.key``
and ``controller.left.key_secret`` from there and pass ``--keys DIR``. It
exits with status 2 (and one line) if it never gets an observation.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np

from robot_mirror.client import Controller
from robot_mirror.errors import RobotMirrorError

SPEED = 0.35      # m/s of the tool target
GRIP_TICKS = 25   # ticks to close or open the gripper


class TowerController:
    """A small state machine over waypoints; one call per observation."""

    def __init__(self) -> None:
        self.plan: list[tuple[str, np.ndarray | None, float]] = []
        self.target: np.ndarray | None = None
        self.gripper = 0.0
        self.wait = 0
        self.placed_one = False

    def plan_turn(self, obs) -> None:
        mine = np.flatnonzero(np.asarray(obs["my_blocks"]) & ~np.asarray(obs["placed"]))
        block = obs["blocks"][mine[0]]
        size = 0.05
        bx, by, bz = block[:3]
        tx, ty = obs["tower_xy"]
        top = obs["tower_count"] * size
        hang = size / 2 + 0.005  # a finger gripper holds the block by its middle
        grasp_z = bz - size / 2 + hang
        carry = max(top + hang + 0.06, grasp_z + 0.12)
        yaw = self.yaw
        self.plan = [
            ("move", np.array([bx, by, grasp_z + 0.1]), 0.0), ("move", np.array([bx, by, grasp_z]), 0.0),
            ("grip", None, 1.0), ("move", np.array([bx, by, carry]), 1.0), ("move", np.array([tx, ty, carry]), 1.0),
            ("move", np.array([tx, ty, top + hang + 0.002]), 1.0), ("grip", None, 0.0),
            ("move", np.array([tx, ty, carry + 0.04]), 0.0), ("home", None, 0.0),
        ]

    def act(self, arm: Controller, obs) -> None:
        if self.target is None:
            self.home = np.array(obs["ee_pose"][:3])
            q = obs["ee_pose"][3:]
            self.yaw = math.atan2(2 * (q[3] * q[2] + q[0] * q[1]), 1 - 2 * (q[1] ** 2 + q[2] ** 2))
            self.target = self.home.copy()
        if not self.plan and obs["my_turn"] and np.any(np.asarray(obs["my_blocks"]) & ~np.asarray(obs["placed"])):
            self.plan_turn(obs)
        turn = ""
        if self.plan:
            kind, goal, grip = self.plan[0]
            self.gripper = grip
            if kind == "grip":
                self.wait += 1
                if self.wait >= GRIP_TICKS:
                    self.wait = 0
                    self.plan.pop(0)
            else:
                goal = self.home if kind == "home" else goal
                step = goal - self.target
                dist = float(np.linalg.norm(step))
                limit = SPEED * (1.0 / 60.0)
                self.target = goal.copy() if dist <= limit else self.target + step * (limit / dist)
                reached = dist <= limit and np.linalg.norm(obs["ee_pose"][:3] - goal) < 0.008
                if kind == "home" and not obs["in_zone"] and obs["my_turn"]:
                    turn = "release"
                if reached or (dist <= limit and self.wait > 90):
                    self.wait = 0
                    self.plan.pop(0)
                elif dist <= limit:
                    self.wait += 1
        arm.send_ee([*self.target, *top_down_quat(self.yaw)], gripper=self.gripper, turn=turn)


def top_down_quat(yaw: float) -> list[float]:
    """Tool pointing straight down (roll pi), turned by yaw about world z."""
    return [math.cos(yaw / 2), math.sin(yaw / 2), 0.0, 0.0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robot", default="left")
    parser.add_argument("--endpoints", required=True, help="RUN/endpoints.json written by `robot-mirror launch`")
    parser.add_argument("--keys", help="folder with server.key and controller.ROBOT.key_secret "
                                       "(default: keys/ next to the endpoints file)")
    parser.add_argument("--wait", type=float, default=60.0, help="s to wait for the endpoints file")
    parser.add_argument("--timeout", type=float, default=15.0, help="s to wait for each observation")
    args = parser.parse_args(argv)
    path = Path(args.endpoints)
    deadline = time.monotonic() + args.wait
    while not path.is_file():
        if time.monotonic() > deadline:
            print(f"external_controller: {path} did not appear within {args.wait:.0f} s", file=sys.stderr)
            return 2
        time.sleep(0.1)
    controller = TowerController()
    episode = None
    try:
        with Controller(args.robot, path, timeout=args.timeout, keys_dir=args.keys) as arm:
            first = arm.next_observation()  # none at all: an error, not a normal finish
            for obs in itertools.chain([first], arm.observations()):
                if obs["episode"] != episode:
                    episode, controller = obs["episode"], TowerController()
                controller.act(arm, obs)
            print(f"external_controller: run ended; replies {arm.replies}")
    except RobotMirrorError as exc:
        print(f"external_controller: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
