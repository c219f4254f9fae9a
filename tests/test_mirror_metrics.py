"""The mirror metrics and their nulls, on data built so the answer is known:
each metric must be high on a perfect mirror and fall to its null on
scrambled, shuffled or unrelated codes (a metric that cannot fall is a defect)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_mirror.mirror.dataset import SEGMENTS, compute_stats, load_demos
from robot_mirror.mirror.model import MirrorConfig, MirrorNet
from robot_mirror.mirror.synthetic import write_synthetic_demos
from robot_mirror.studies.head_scores import early_recognition, recognition_leads, turn_end_anticipation, turn_goals
from robot_mirror.studies.heuristics import MeanTurnEnd, TurnCountTarget, turn_index
from robot_mirror.studies.probes import mirror_index, transfer_probe, tuning_index, tuning_nulls
from robot_mirror.studies.scorecard import recognition_lead, scorecard

torch.set_num_threads(1)


def _conditions(n=1200, classes=6, dim=24, seed=0, mirrored=True, noise=0.3):
    """States of ``dim`` units tuned to ``classes`` actions; observing uses the same
    tuning (a mirror) or an unrelated one."""
    rng = np.random.default_rng(seed)
    tuning = rng.normal(0, 1, (classes, dim))
    other = tuning if mirrored else rng.normal(0, 1, (classes, dim))
    ys, yo = rng.integers(0, classes, n), rng.integers(0, classes, n)
    return (tuning[ys] + noise * rng.normal(size=(n, dim)), ys,
            other[yo] + noise * rng.normal(size=(n, dim)), yo, np.repeat(np.arange(6), n // 6))


def test_tuning_index_is_high_for_a_mirror_and_its_nulls_say_so():
    sx, sy, ox, oy, ep = _conditions()
    index, r, classes = tuning_index(sx, sy, ox, oy)
    assert index > 0.9 and classes.size == 6 and r.shape == (24,)
    nulls = tuning_nulls(sx, sy, ox, oy, ep, permutations=200, seed=0)
    assert nulls["p_scrambled"] < 0.01 and nulls["p_shuffled"] < 0.01
    assert abs(nulls["null_scrambled_mean"]) < 0.3 and abs(nulls["null_shuffled_mean"]) < 0.3


def test_tuning_index_falls_to_its_null_on_unrelated_codes():
    sx, sy, ox, oy, ep = _conditions(mirrored=False, seed=3)
    index, _, _ = tuning_index(sx, sy, ox, oy)
    nulls = tuning_nulls(sx, sy, ox, oy, ep, permutations=200, seed=0)
    assert abs(index) < 0.35 and nulls["p_scrambled"] > 0.05
    # moving-vs-waiting alone is not a mirror: a unit that only tells class 0 from the rest in both
    # conditions, with unrelated tuning among the rest, scores far below a mirror
    rng = np.random.default_rng(4)
    ys, yo = rng.integers(0, 6, 1200), rng.integers(0, 6, 1200)
    a, b = rng.normal(size=(6, 24)), rng.normal(size=(6, 24))
    a[0], b[0] = 5, 5
    index_moving, _, _ = tuning_index(a[ys] + 0.3 * rng.normal(size=(1200, 24)), ys,
                                      b[yo] + 0.3 * rng.normal(size=(1200, 24)), yo)
    index_without_rest, _, _ = tuning_index(a[ys][ys > 0], ys[ys > 0], b[yo][yo > 0], yo[yo > 0])
    assert abs(index_without_rest) < 0.35 < index_moving


def test_transfer_probe_high_for_a_mirror_chance_for_unrelated_codes():
    sx, sy, ox, oy, _ = _conditions()
    p = transfer_probe(sx, sy, ox, oy)
    assert p["balanced_accuracy"] > 0.95 and p["chance"] == pytest.approx(1 / 6)
    sx, sy, ox, oy, _ = _conditions(mirrored=False, seed=5)
    assert transfer_probe(sx, sy, ox, oy)["balanced_accuracy"] < 1 / 6 + 0.2
    rng = np.random.default_rng(1)
    noise = transfer_probe(rng.normal(size=(600, 8)), rng.integers(0, 4, 600), rng.normal(size=(600, 8)),
                           rng.integers(0, 4, 600))
    assert abs(noise["balanced_accuracy"] - 0.25) < 0.08


def test_cmni_responds_in_both_conditions_only():
    sx, sy, ox, oy, _ = _conditions()
    assert mirror_index(sx, sy, ox, oy, baseline=0)["cmni"] > 0.1
    rng = np.random.default_rng(1)
    assert mirror_index(rng.normal(size=(800, 16)), rng.integers(0, 4, 800), rng.normal(size=(800, 16)),
                        rng.integers(0, 4, 800), baseline=0)["cmni"] < 0.05


def test_early_recognition_curve():
    turn = np.array([False] * 2 + [True] * 10 + [False] * 3)
    true = np.where(turn, 2, -1)
    pred = np.where(np.arange(15) >= 7, 2, 0)  # right from the 6th tick of the turn on
    er = early_recognition([pred], [true], [turn])
    assert er["accuracy"][:5] == [0.0] * 5 and er["accuracy"][5:] == [1.0] * 5
    assert er["at_half"] == 0.0
    assert early_recognition([true], [true], [turn])["at_half"] == 1.0


def test_early_recognition_is_scored_on_the_goal_of_the_turn():
    """A turn that opens with the end of the previous job (retreat, labelled
    with the target just left) and then places at a new target: the goal of
    every tick of the turn is the new target, so an observer that names what
    the partner is doing tick by tick scores nothing in the first half."""
    place, retreat = SEGMENTS.index("place"), SEGMENTS.index("retreat")
    turn = np.array([False] * 2 + [True] * 10 + [False] * 2)
    segment = np.array([0] * 2 + [retreat] * 3 + [1] * 4 + [place] * 3 + [0] * 2)
    target = np.array([-1] * 2 + [0] * 3 + [2] * 7 + [-1] * 2)
    goals = turn_goals(target, segment, turn, place)
    assert goals.tolist() == [-1] * 2 + [2] * 10 + [-1] * 2
    tick_by_tick = early_recognition([target], [goals], [turn])
    assert tick_by_tick["accuracy"][:3] == [0.0] * 3 and tick_by_tick["at_half"] == pytest.approx(2 / 5)
    assert early_recognition([goals], [goals], [turn])["at_half"] == 1.0
    no_place = turn_goals(target, np.where(segment == place, 1, segment), turn, place)
    assert (no_place == -1).all()  # a turn without a placement has no goal to recognise


def test_recognition_lead_is_how_long_before_the_turn_ends_the_goal_is_held():
    turn = np.array([False] * 2 + [True] * 10 + [False] * 2)
    goals = np.where(turn, 1, -1)
    from_tick = lambda k: np.where(np.arange(14) >= 2 + k, 1, 0)  # noqa: E731 - right from the k-th tick on
    assert recognition_leads([from_tick(4)], [goals], [turn], hz=10) == [pytest.approx(0.6)]
    assert recognition_leads([goals], [goals], [turn], hz=10) == [pytest.approx(1.0)]
    flicker = from_tick(0)
    flicker[2 + 7] = 0
    assert recognition_leads([flicker], [goals], [turn], hz=10) == [pytest.approx(0.2)]
    late = from_tick(0)
    late[11] = 2
    assert recognition_leads([late], [goals], [turn], hz=10) == [0.0]
    sooner = recognition_lead([from_tick(2)], {"slow": [from_tick(6)], "never": [np.zeros(14)]}, [goals], [turn], 10)
    assert sooner["public_heuristic"] == "slow" and sooner["mirror_minus_heuristic"]["mean"] == pytest.approx(0.4)
    same = recognition_lead([from_tick(6)], {"slow": [from_tick(6)]}, [goals], [turn], 10)
    assert same["mirror_minus_heuristic"]["mean"] == 0.0


def test_turn_end_anticipation():
    true = np.array([np.nan, 2.0, 1.5, 1.0, 0.5, 0.0, np.nan])
    perfect = turn_end_anticipation([true.copy()], [true])
    assert perfect["mae_s"] == 0.0 and perfect["lead_time_s"] == 2.0 and perfect["turns"] == 1
    late = turn_end_anticipation([np.array([0, 5.0, 5.0, 1.2, 0.6, 0.1, 0])], [true], tolerance=0.5)
    assert late["lead_time_s"] == 1.0 and late["mae_s"] > 0.5


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    return load_demos(write_synthetic_demos(tmp_path_factory.mktemp("d"), episodes=4, turns=6, n_targets=3))


def test_public_heuristics_use_the_turn_count_and_durations(demos):
    s = demos.streams[0]
    idx = turn_index(s)
    assert idx[0] in (-1, 0) and idx.max() == 5 and np.all(np.diff(idx) >= 0)
    # synthetic turn i aims at target i % 3: turn counting recovers every partner target
    counting = TurnCountTarget.fit(demos.streams, SEGMENTS.index("place"))
    for st in demos.streams:
        m = st.partner_turn & (st.partner_target >= 0)
        assert np.mean(counting.predict(st)[m] == st.partner_target[m]) > 0.95
    te = MeanTurnEnd.fit(demos.streams, demos.control_hz)
    pred = te.predict(s)
    assert np.isfinite(pred[s.partner_turn]).all() and np.isnan(pred[~s.partner_turn]).all()


def test_scorecard_of_an_untrained_network_sits_at_its_nulls(demos):
    torch.manual_seed(0)
    model = MirrorNet(MirrorConfig(segments=SEGMENTS, n_targets=3, hidden=24, embed_dim=12, adapter_hidden=12,
                                   heldout_pairs=[["carry", 2]]))
    model.set_normalisation(compute_stats(demos.streams))
    train, test = demos.streams_of([0, 1]), demos.streams_of([2, 3])
    card = scorecard(model, train, test, hz=demos.control_hz, permutations=100, controls=False, lesion=True)
    for key in ("probe_self_to_obs", "probe_self_to_self", "probe_self_to_obs_chance", "mirror_index_corr",
                "mirror_index_corr_p_scrambled",
                "mirror_index_corr_p_shuffled", "mirror_index", "heldout_action_recognition", "lesion",
                "early_recognition_at_half", "early_recognition_at_half_public_heuristic", "recognition_lead_s",
                "turn_end"):
        assert key in card, key
    # an untrained network's own-stream code does not transfer: the probe sits at chance
    assert card["probe_self_to_obs"] <= card["probe_self_to_obs_chance"] + 0.1
    # ... though its own states do tell its own actions apart (the ceiling is not the transfer)
    assert card["probe_self_to_self"] > card["probe_self_to_obs"] + 0.2
    # untrained heads name the partner's held-out action no better than chance would allow
    assert card["heldout_action_recognition"]["partner"] < 0.5
    assert card["early_recognition_at_half_public_heuristic"] > 0.9  # turn counting solves the synthetic task
    assert len(card["mirror_units"]) == 16
