"""policy: mirror in the loop, and `robot-mirror evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import ROOT, assert_one_line_error, finish, launch, run_cli

SHIPPED = {"tower": ROOT / "sim_assets/mirror_tower.pt", "imitation": ROOT / "sim_assets/mirror_imitation.pt"}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint trained for a few seconds on two short real episodes."""
    tmp = tmp_path_factory.mktemp("tiny")
    demos = run_cli("demos", "launch/tower.yaml", "--episodes", "2", "--set", "task.blocks=2", "--seed", "500",
                    "--out", str(tmp / "demos"), "--quiet")
    assert demos.returncode == 0, demos.stderr
    train = run_cli("train", "--data", str(tmp / "demos"), "--out", str(tmp / "tiny.pt"), "--epochs", "2", "--quiet")
    assert train.returncode == 0, train.stderr
    return tmp / "tiny.pt"


HEADLINE = ["cross_condition_probe", "cross_condition_probe_untrained", "cross_condition_probe_no_contrastive",
            "mirror_index", "mirror_index_untrained", "mirror_index_no_contrastive", "early_recognition_at_half",
            "imitation_success", "tower_success", "handoff_gap_ratio", "zone_violations", "inference_ms_per_tick"]


@pytest.mark.timeout(1200)
def test_evaluate_tiny_checkpoint_produces_every_metric(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ablation = tiny_checkpoint.with_name("tiny_nocontrastive.pt")
    train = run_cli("train", "--data", str(tiny_checkpoint.parent / "demos"), "--out", str(ablation),
                    "--epochs", "1", "--no-contrastive", "--quiet")
    assert train.returncode == 0, train.stderr
    out = tmp_path / "eval"
    proc = run_cli("evaluate", "--checkpoint", str(tiny_checkpoint), "--scenario", "launch/tower.yaml",
                   "--episodes", "2", "--online-episodes", "1", "--set", "task.blocks=2", "--out", str(out),
                   timeout=900)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    for key in HEADLINE:
        assert key in metrics, key
    for key in HEADLINE:
        if key.startswith("imitation"):
            assert metrics[key] is None  # not measured: no imitation scenario given
        else:
            assert metrics[key] is not None, key
    assert 0.0 <= metrics["cross_condition_probe"] <= 1.0
    assert metrics["zone_violations"] == 0
    assert metrics["per_task"]["tower"]["cross_embodiment"]["partner"][1] == "kuka_iiwa/model.urdf"
    for plot in ("early_recognition_tower.png", "handoff_gaps.png", "core_pca.png"):
        assert (out / plot).stat().st_size > 5000


def test_corrupt_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    proc = run_cli("launch", "launch/tower.yaml", "--set", "robots.left.policy=mirror",
                   "--set", f"robots.left.checkpoint={bad}", "--out", str(tmp_path / "run"))
    assert_one_line_error(proc, "bad.pt")
    assert not (tmp_path / "run").exists()


def test_checkpoint_for_another_robot_is_one_clear_error(tiny_checkpoint: Path, tmp_path: Path) -> None:
    proc = run_cli("launch", "launch/tower_mixed.yaml", "--inprocess", "--set", "robots.iiwa.policy=mirror",
                   "--set", f"robots.iiwa.checkpoint={tiny_checkpoint}")
    assert_one_line_error(proc, "kuka_iiwa/model.urdf", "franka_panda/panda.urdf")


def test_missing_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", "robots.left.policy=mirror",
                   "--set", "robots.left.checkpoint=nowhere/none.pt")
    assert_one_line_error(proc, "robots.left.checkpoint", "none.pt", "not found")


@pytest.mark.multiprocess
def test_shipped_checkpoint_drives_a_lockstep_tower_episode(tmp_path: Path) -> None:
    assert SHIPPED["tower"].is_file() and SHIPPED["tower"].stat().st_size <= 5 * 2**20
    out = tmp_path / "tower"
    proc = launch(out, "launch/tower.yaml", "--episodes", "1", "--set", "task.blocks=4",
                  "--set", "robots.left.policy=mirror", "--set", "robots.right.policy=mirror")
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    episode = summary["episodes"][0]
    assert episode["success"] and episode["zone_violations"] == 0
    assert summary["robots"]["left"]["policy"] == "mirror"


@pytest.mark.multiprocess
def test_shipped_checkpoint_follows_an_imitation_round(tmp_path: Path) -> None:
    assert SHIPPED["imitation"].is_file() and SHIPPED["imitation"].stat().st_size <= 5 * 2**20
    out = tmp_path / "imitation"
    proc = launch(out, "launch/imitation.yaml", "--episodes", "1", "--set", "task.rounds=1",
                  "--set", "robots.left.policy=mirror", "--set", "robots.right.policy=mirror")
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    episode = summary["episodes"][0]
    assert episode["imitation_success"] == 1.0 and episode["zone_violations"] == 0
