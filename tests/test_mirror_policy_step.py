"""MirrorPolicy's lean per-tick step gives exactly MirrorNet.step's answers.

The policy advances only the recurrent state each tick (with the embeddings
as plain tensor calls) and runs the turn-end and target heads on demand;
every number the motion layer reads must be bit-identical to the full step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robot_mirror.mirror  # noqa: F401  (registers policy: mirror)
from robot_mirror.config.scenario import load_scenario
from robot_mirror.mirror.features import body_features
from robot_mirror.policies import make_policy
from robot_mirror.sim.kinematics import Kinematics
from robot_mirror.sim.spec import RobotSpec
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def policy():
    sc = load_scenario(ROOT / "launch/tower.yaml")
    spec = RobotSpec.from_config(sc.robots[0], sc.base_dir)
    kin = Kinematics(spec)
    yield make_policy("mirror", spec, sc, kin)
    kin.close()


# four slots along world +y; the partner (right, yaw 180 deg) numbers them the other way round
SLOTS = np.c_[np.zeros(4), np.linspace(-0.27, 0.27, 4), np.zeros(4)]


def _obs(rng: np.random.Generator, dof: int, t: int) -> dict:
    keypoints = rng.normal(size=(5, 3))
    if t % 7 == 3:
        keypoints[2] = np.nan  # a keypoint the observer did not see
    return {"q": rng.normal(size=dof), "dq": rng.normal(size=dof), "gripper": float(rng.random()),
            "keypoints": rng.normal(size=(5, 3)), "ee_pose": np.r_[rng.normal(size=3), 0, 0, 0.6, 0.8],
            "seen_partner_keypoints": keypoints, "seen_partner_ee_pose": rng.normal(size=7),
            "seen_partner_gripper": float(rng.random()), "partner_observed": float(t % 5 != 0),
            "holder": "right", "my_turn": False, "slots": SLOTS}


def test_lean_step_matches_mirror_net_step_exactly(policy) -> None:
    model, frame = policy.model, policy.frame
    rng = np.random.default_rng(3)
    policy.reset()
    state = None
    dof = policy.expert.kin.dof
    for t in range(40):
        obs = _obs(rng, dof, t)
        policy.observe(obs)
        own = torch.from_numpy(body_features(frame.points_to_local(obs["keypoints"]), frame.pose_to_local(obs["ee_pose"]),
                                             np.float32(obs["gripper"]), np.float32(1)))[None]
        seen = torch.from_numpy(body_features(obs["seen_partner_keypoints"], obs["seen_partner_ee_pose"],
                                              np.float32(obs["seen_partner_gripper"]),
                                              np.float32(obs["partner_observed"])))[None]
        with torch.inference_mode():
            state = model.step(own, seen, state=state)
            turn_end = model.turn_end_seconds(state[1])
            target = model.target_head(state[1])
        assert torch.equal(policy.hidden, torch.cat(state, dim=0)), t
        assert policy.predicted_turn_end(obs) == max(0.0, float(turn_end[0])), t
        # the heads name the partner's own-frame slot; its lateral axis runs against the numbering
        assert policy.recognised_slot(obs) == 3 - int(torch.argmax(target[0][:4])), t


def test_no_turn_end_without_a_partner_turn(policy) -> None:
    policy.reset()
    obs = _obs(np.random.default_rng(0), policy.expert.kin.dof, 1)
    assert policy.predicted_turn_end(obs) is None  # nothing observed yet
    policy.observe({**obs, "my_turn": True})
    assert policy.predicted_turn_end(obs) is None
    policy.observe(obs)
    assert policy.predicted_turn_end(obs) is not None
