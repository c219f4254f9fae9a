"""Training the mirror network: data checks, loss going down, CLI, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robot_mirror.errors import RobotMirrorError
from robot_mirror.mirror.checkpoint import load_checkpoint
from robot_mirror.mirror.dataset import DEMOS_FORMAT, EpisodeSampler, compute_stats, load_demos
from robot_mirror.mirror.features import robot_type_of
from robot_mirror.mirror.model import MirrorNet
from robot_mirror.mirror.demo_sets import load_demo_sets
from robot_mirror.mirror.synthetic import write_synthetic_demos
from robot_mirror.mirror.train import TrainOptions, make_config, seed_everything, train, train_model
from robot_mirror.studies.training import held_out_evaluation
from tests.conftest import assert_one_line_error, run_cli

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_synthetic_demos(tmp_path_factory.mktemp("tiny"), episodes=3, turns=3, dof=3, n_targets=3)


def test_synthetic_demos_follow_the_format(tiny):
    meta = json.loads((tiny / "meta.json").read_text())
    assert meta["format"] == DEMOS_FORMAT and meta["segments"][0] == "wait"
    with np.load(tiny / meta["episodes"][0]["file"]) as z:
        T = meta["episodes"][0]["ticks"]
        assert z["t"].shape == (T,)
        for r in (0, 1):
            assert z[f"r{r}_q"].shape == (T, 3) and z[f"r{r}_q"].dtype == np.float32
            assert z[f"r{r}_seen_partner_keypoints"].shape == (T, 5, 3)
            assert z[f"r{r}_seen_partner_ee_pose"].shape == (T, 7) and z[f"r{r}_ee_pose"].shape == (T, 7)
            assert z[f"r{r}_own_keypoints"].shape == (T, 5, 3) and z[f"r{r}_own_ee_pose"].shape == (T, 7)
            assert z[f"r{r}_segment"].dtype == np.int8 and z[f"r{r}_target"].dtype == np.int8
            assert z[f"r{r}_my_turn"].dtype == bool and z[f"r{r}_partner_observed"].dtype == bool
            end = z[f"r{r}_partner_turn_end_in"]
            assert np.all(np.isnan(end) == ~z[f"r{1 - r}_my_turn"])
    d = load_demos(tiny)
    assert len(d.streams) == 6 and d.robot_types == ["synthetic/arm.urdf"]
    s0, s1 = d.streams[0], d.streams[1]
    assert np.array_equal(s0.partner_segment, s1.segment) and np.array_equal(s1.partner_target, s0.target)
    assert s0.own.shape[1] == s0.seen.shape[1] == 26  # one body description for both
    assert np.array_equal(s0.own_turn_end, s1.turn_end, equal_nan=True)


def test_robot_type_of():
    assert robot_type_of("franka_panda/panda.urdf") == "franka_panda/panda.urdf"
    assert robot_type_of("/a/b/tests/fixtures/pkg_arm/arm.urdf") == "pkg_arm/arm.urdf"
    assert robot_type_of("arm.urdf") == "arm.urdf"


def test_windows_walk_each_episode_with_both_robots(tiny):
    d = load_demos(tiny)
    sampler = EpisodeSampler(d.streams[:2], lanes=2, window=16, rng=np.random.default_rng(0), self_noise=0.01)
    s = d.streams[0]
    seen_reset, covered = 0, 0
    for _ in range(2 * (s.ticks // 16 + 1)):
        b = sampler.next()
        assert b["own"].shape == (2, 16, 26) and b["reset"][0] == b["reset"][1]
        seen_reset += int(b["reset"][0])
        covered += int(b["mask"][0].sum())
        m = b["mask"][0]
        # row 1's view of its partner is row 0 acting, at the same ticks (perception noise aside)
        assert torch.allclose(b["seen"][1][m][:, 15:18], b["own"][0][m][:, 15:18] - torch.tensor([0, 0, 0.0]),
                              atol=1.0)
    assert seen_reset >= 1 and covered > s.ticks


def test_a_tiny_training_run_lowers_the_loss(tiny):
    d = load_demos(tiny)
    options = TrainOptions(epochs=12, window=32, lanes=4, hidden=32, progress=False, lr=3e-3)
    rng = seed_everything(0)
    model = MirrorNet(make_config(d, options))
    model.set_normalisation(compute_stats(d.streams))
    history, steps = train_model(model, d.streams, options, rng)
    assert len(history) == 12 and steps >= 24
    first, last = history[0], history[-1]
    assert last["total"] < 0.7 * first["total"]
    for k in ("seg_self", "tgt_self", "predict", "align"):
        assert last[k] < first[k], k


def test_training_is_seeded(tiny):
    d = load_demos(tiny)
    opts = dict(epochs=2, window=32, lanes=4, hidden=16, progress=False)
    a = train(tiny, None, TrainOptions(seed=5, **opts), demos=d)
    b = train(tiny, None, TrainOptions(seed=5, **opts), demos=d)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k


def test_two_arm_types_train_one_network_that_any_arm_runs(tmp_path):
    path = write_synthetic_demos(tmp_path / "mixed", episodes=2, turns=2, dofs=(3, 5),
                                 urdfs=("a/one.urdf", "b/two.urdf"))
    result = train(path, tmp_path / "m.pt", TrainOptions(epochs=2, window=32, lanes=4, hidden=16, progress=False),
                   evaluate=held_out_evaluation(controls=False, permutations=20))
    ck = load_checkpoint(result.checkpoint)
    assert ck.robot_types == ["a/one.urdf", "b/two.urdf"]
    assert "mirror_units" in ck.metrics and len(ck.metrics["mirror_units"]) == 16


def test_several_demo_folders_train_one_network(tiny, tmp_path):
    """Joint training on several bodies: folders join episode by episode, the two
    streams of an episode stay a pair, and the checkpoint names every source."""
    other = write_synthetic_demos(tmp_path / "other", episodes=2, turns=3, dof=5, n_targets=3,
                                  urdfs=("b/two.urdf", "c/three.urdf"))
    joined = load_demo_sets([tiny, other])
    assert joined.n_episodes == 3 + 2 and len(joined.streams) == 2 * 5
    assert [s.episode for s in joined.streams] == [e for e in range(5) for _ in (0, 1)]
    assert [s.robot for s in joined.streams] == [0, 1] * 5
    assert joined.robot_types == ["synthetic/arm.urdf", "b/two.urdf", "c/three.urdf"]
    out = tmp_path / "joint.pt"
    proc = run_cli("train", "--data", str(tiny), str(other), "--out", str(out), "--epochs", "1", "--hidden", "16",
                   "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr
    ck = load_checkpoint(out)
    assert ck.robot_types == joined.robot_types
    assert len(ck.info["data"]["sources"]) == 2 and ck.info["data"]["episodes"] == 5


def test_demo_folders_of_different_tasks_do_not_join(tiny, tmp_path):
    four = write_synthetic_demos(tmp_path / "four", episodes=2, turns=2, dof=3, n_targets=4)
    proc = run_cli("train", "--data", str(tiny), str(four), "--out", str(tmp_path / "x.pt"), "--quiet", timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "n_targets 4 differs" in proc.stderr
    assert not (tmp_path / "x.pt").exists()


def test_init_fine_tunes_a_checkpoint_on_a_new_arm(tiny, tmp_path):
    """--init starts from a checkpoint: its weights and normalisation, its arm types
    plus the new ones; a checkpoint of another task is one line."""
    base = train(tiny, tmp_path / "base.pt", TrainOptions(epochs=2, window=32, lanes=4, hidden=16, progress=False))
    new_arm = write_synthetic_demos(tmp_path / "new_arm", episodes=2, turns=3, dof=6, n_targets=3,
                                    urdfs=("new/arm.urdf", "synthetic/arm.urdf"))
    out = tmp_path / "tuned.pt"
    proc = run_cli("train", "--data", str(new_arm), "--init", str(base.checkpoint), "--epochs", "1", "--out",
                   str(out), "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr
    tuned, before = load_checkpoint(out), load_checkpoint(base.checkpoint)
    assert tuned.robot_types == ["synthetic/arm.urdf", "new/arm.urdf"] and tuned.model.config.hidden == 16
    assert tuned.info["normalisation"] == before.info["normalisation"]
    assert tuned.info["training"]["init"] == str(base.checkpoint)
    moved = [float((a - b).detach().abs().max()) for a, b in zip(tuned.model.parameters(), before.model.parameters())]
    assert max(moved) > 0  # it trained from there
    four = write_synthetic_demos(tmp_path / "four", episodes=2, turns=2, dof=3, n_targets=4)
    bad = run_cli("train", "--data", str(four), "--init", str(base.checkpoint), "--out", str(tmp_path / "x.pt"),
                  "--quiet", timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--init" in bad.stderr
    assert not (tmp_path / "x.pt").exists()
    missing = run_cli("train", "--data", str(new_arm), "--init", str(tmp_path / "none.pt"), "--out",
                      str(tmp_path / "x.pt"), "--quiet", timeout=120)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "none.pt" in missing.stderr and "Traceback" not in missing.stderr and not (tmp_path / "x.pt").exists()


def test_cli_train_writes_a_checkpoint(tiny, tmp_path):
    out = tmp_path / "mirror.pt"
    proc = run_cli("train", "--data", str(tiny), "--out", str(out), "--epochs", "2", "--hidden", "16",
                   "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "checkpoint:" in proc.stdout and "probe_self_to_obs" in proc.stdout
    ck = load_checkpoint(out)
    info = ck.info
    assert info["data"]["sha256"] == json.loads((tiny / "meta.json").read_text())["sha256"]
    assert info["seed"] == 0 and info["train_seconds"] > 0 and info["config"]["hidden"] == 16
    assert info["metrics"]["held_out_episodes"] == info["data"]["held_out_episodes"] != []
    for key in ("probe_self_to_obs", "probe_self_to_obs_untrained", "mirror_index_corr", "mirror_units"):
        assert key in info["metrics"], key
    assert info["config"]["heldout_pairs"] == [["carry", 2]]
    assert out.stat().st_size < 5 * 1024 * 1024


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize("case", ["missing", "no_meta", "bad_json", "format", "hash"])
def test_cli_train_bad_data_is_one_line(tiny, tmp_path, case):
    data = tmp_path / "data"
    needle = str(data)
    if case != "missing":
        _copy(tiny, data)
    if case == "no_meta":
        (data / "meta.json").unlink()
        needle = "meta.json: missing"
    elif case == "bad_json":
        (data / "meta.json").write_text("{not json")
        needle = "not valid JSON"
    elif case == "format":
        meta = json.loads((data / "meta.json").read_text())
        meta["format"] = "robot_mirror.demos/9"
        (data / "meta.json").write_text(json.dumps(meta))
        needle = "robot_mirror.demos/9"
    elif case == "hash":
        name = sorted(data.glob("episode_*.npz"))[0]
        with np.load(name) as z:
            arrays = dict(z)
        arrays["r0_own_keypoints"] = arrays["r0_own_keypoints"] + 0.1
        np.savez_compressed(name, **arrays)
        needle = "sha256 mismatch"
    proc = run_cli("train", "--data", str(data), "--out", str(tmp_path / "m.pt"), "--quiet", timeout=120)
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "m.pt").exists()
