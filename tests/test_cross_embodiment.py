"""The cross-embodiment table: cells are (observer, partner) arm types, in both directions."""

from __future__ import annotations

import pytest

from robot_mirror.mirror.dataset import load_demos
from robot_mirror.mirror.synthetic import write_synthetic_demos
from robot_mirror.mirror.train import TrainOptions, train
from robot_mirror.studies.cross_embodiment import (cells_of, cross_embodiment_table, leave_one_out_summary,
                                                   split_streams)


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
