"""The cross-embodiment table: cells are (observer, partner) arm types, in both directions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from robot_mirror.mirror.dataset import load_demos
from robot_mirror.mirror.synthetic import write_synthetic_demos
from robot_mirror.mirror.train import TrainOptions, train
from robot_mirror.studies.cross_embodiment import (cells_of, cross_embodiment_table, leave_one_out_summary,
                                                   majority_baseline, partner_labels, split_streams)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    path = write_synthetic_demos(tmp_path_factory.mktemp("mixed"), episodes=4, turns=4, dofs=(3, 5),
                                 urdfs=("a/one.urdf", "b/two.urdf"))
    return load_demos(path)


def test_each_direction_of_a_pair_is_its_own_cell(mixed):
    fit, scored = split_streams(mixed)
    assert {s.episode for s in fit} == {0, 2} and {s.episode for s in scored} == {1, 3}
    cells = cells_of(scored)
    assert sorted(cells) == ["a/one.urdf|b/two.urdf", "b/two.urdf|a/one.urdf"]
    assert all(s.robot_type == "a/one.urdf" for s in cells["a/one.urdf|b/two.urdf"])


def test_table_and_leave_one_out_ratios(mixed):
    model = train(mixed.path, None, TrainOptions(epochs=2, window=32, lanes=4, hidden=16, progress=False)).model
    table = cross_embodiment_table(model.eval(), {"a+b": mixed})
    assert set(table) == {"a/one.urdf|b/two.urdf", "b/two.urdf|a/one.urdf"}
    for row in table.values():
        assert row["pair"] == "a+b" and 0.0 <= row["probe_self_to_obs"] <= 1.0 and row["ticks"] > 0
    loo = leave_one_out_summary("b/two.urdf", table, table)  # the same network: every ratio is 1
    assert set(loo["cells"]) == set(table)
    assert loo["probe_ratio_mean"] == pytest.approx(1.0)
    halved = {c: {**r, "probe_self_to_obs": r["probe_self_to_obs"] / 2} for c, r in table.items()}
    assert leave_one_out_summary("b/two.urdf", halved, table)["probe_ratio_mean"] == pytest.approx(0.5)


def test_the_majority_constant_is_the_fit_half_s_most_frequent_partner_action(mixed):
    fit, scored = split_streams(mixed)
    n = mixed.n_targets
    fit_y, y = partner_labels(fit, n), partner_labels(scored, n)
    assert fit_y.size and y.size and fit_y.min() >= 0
    most = np.bincount(fit_y).argmax()
    assert majority_baseline(fit, scored, n) == pytest.approx(np.mean(y == most))
    relabelled = [replace(s, partner_segment=np.full(s.ticks, 1), partner_target=np.full(s.ticks, 0)) for s in scored]
    assert majority_baseline(fit, relabelled, n) == (1.0 if most == n else 0.0)  # all ticks one action: hit or miss
