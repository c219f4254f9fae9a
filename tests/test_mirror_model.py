"""MirrorNet: head shapes, the shared core, online stepping, checkpoints, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_mirror.errors import RobotMirrorError
from robot_mirror.mirror.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, read_checkpoint, save_checkpoint
from robot_mirror.mirror.dataset import SEGMENTS, compute_stats, full_batch, load_demos
from robot_mirror.mirror.model import MirrorConfig, MirrorNet, info_nce
from robot_mirror.mirror.synthetic import write_synthetic_demos
from robot_mirror.studies.head_scores import early_recognition, motor_error, turn_end_anticipation
from robot_mirror.studies.metrics import evaluate_model
from robot_mirror.studies.probes import cross_condition_probe, mirror_index

torch.set_num_threads(1)
TYPE = "synthetic/arm.urdf"


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    path = write_synthetic_demos(tmp_path_factory.mktemp("demos"), episodes=3, turns=3, dof=4, n_targets=3)
    return load_demos(path)


def make_model(demos=None, seed=0, **kw) -> MirrorNet:
    torch.manual_seed(seed)
    cfg = MirrorConfig(robot_types=[TYPE], dofs=[4], segments=SEGMENTS, n_targets=3, hidden=32, embed_dim=16,
                       adapter_hidden=16, motor_hidden=32, **kw)
    model = MirrorNet(cfg)
    if demos is not None:
        model.set_normalisation(compute_stats(demos.streams))
    return model


def test_every_head_has_its_shape(demos):
    model = make_model(demos)
    B, T = 2, 7
    own, seen = torch.randn(B, T, 9), torch.randn(B, T, 24)
    target = torch.randint(-1, 3, (B, T))
    out = model(TYPE, own, seen, target)
    H, K = 32, model.config.motor_horizon
    assert out.self_states.shape == out.obs_states.shape == (B, T, H)
    assert out.self_segment.shape == out.obs_segment.shape == (B, T, len(SEGMENTS))
    assert out.self_target.shape == out.obs_target.shape == (B, T, 3)
    assert out.obs_next.shape == (B, T, 24)
    assert out.turn_end.shape == (B, T)
    assert out.motor.shape == (B, T, K, 4)
    assert out.state[0].shape == out.state[1].shape == (B, H)
    step = model.step(TYPE, own[:, 0], seen[:, 0], target[:, 0])
    assert step.self_segment.shape == step.obs_segment.shape == (B, len(SEGMENTS))
    assert step.self_target.shape == step.obs_target.shape == (B, 3)
    assert step.obs_next.shape == (B, 24) and step.turn_end.shape == (B,)
    assert step.q_targets.shape == (B, K, 4)
    # a NaN in what is seen (partner never seen yet) does not poison the state
    seen[0, 0, :5] = float("nan")
    assert torch.isfinite(model(TYPE, own, seen).obs_states).all()


def test_self_and_observed_streams_share_one_core(demos):
    model = make_model(demos)
    grus = [m for m in model.modules() if isinstance(m, (torch.nn.GRU, torch.nn.GRUCell, torch.nn.RNNBase))]
    assert grus == [model.core]
    core_params = {id(p) for p in model.core.parameters()}
    names = [n for n, _ in model.named_parameters()]
    assert sum(n.startswith("core.") for n in names) == len(core_params) == 4
    assert not any("weight_hh" in n for n in names if not n.startswith("core."))  # no second recurrent matrix
    b = full_batch(demos.streams[0], model.config.motor_horizon)
    # a loss on the observed stream alone trains the very tensors the self stream runs on
    model.zero_grad()
    out = model(TYPE, b["own"], b["seen"], b["target"])
    out.obs_segment.logsumexp(-1).mean().backward()
    for p in model.core.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.self_adapters.parameters())
    # ... and the self stream's states move when those tensors move
    before = model(TYPE, b["own"], b["seen"]).self_states.detach()
    with torch.no_grad():
        model.core.weight_hh_l0.add_(0.05)
    after = model(TYPE, b["own"], b["seen"]).self_states.detach()
    assert not torch.allclose(before, after)
    # the same input through either stream's path after its adapter gives the same states
    x = torch.randn(1, 5, model.config.embed_dim)
    s1, _ = model.run_core(x)
    s2, _ = model.core(x)
    assert torch.equal(s1, s2)


def test_step_matches_the_sequence_forward(demos):
    model = make_model(demos).eval()
    s = demos.streams[1]
    b = full_batch(s, model.config.motor_horizon)
    with torch.inference_mode():
        out = model(TYPE, b["own"], b["seen"], b["target"])
        state = None
        for t in range(40):
            st = model.step(TYPE, b["own"][:, t], b["seen"][:, t], b["target"][:, t], state)
            state = st.state
            torch.testing.assert_close(st.state[0], out.self_states[:, t], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(st.state[1], out.obs_states[:, t], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(st.obs_segment, out.obs_segment[:, t], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(st.turn_end, out.turn_end[:, t], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(st.q_targets, model.denormalise_q(TYPE, out.motor[:, t]), atol=1e-4,
                                       rtol=1e-4)


def test_info_nce_prefers_aligned_streams():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(8).repeat(4)
    centres = torch.randn(8, 16, generator=g)
    aligned = info_nce(centres[labels] + 0.01 * torch.randn(32, 16, generator=g), labels,
                       centres[labels] + 0.01 * torch.randn(32, 16, generator=g), labels)
    random = info_nce(torch.randn(32, 16, generator=g), labels, torch.randn(32, 16, generator=g), labels)
    assert aligned < random
    assert float(info_nce(torch.zeros(0, 4), labels[:0], torch.zeros(0, 4), labels[:0])) == 0.0


# ---- checkpoints -----------------------------------------------------------------------------

def _save(path, model, demos):
    return save_checkpoint(path, model, normalisation=compute_stats(demos.streams),
                           data={"sha256": demos.sha256}, seed=0, train_seconds=1.0, metrics={"x": np.float32(1)})


def test_checkpoint_round_trip_gives_identical_outputs(demos, tmp_path):
    model = make_model(demos, seed=3).eval()
    path = _save(tmp_path / "m.pt", model, demos)
    assert path.stat().st_size < 5 * 1024 * 1024
    ck = load_checkpoint(path, robot_type=TYPE)
    assert ck.robot_types == [TYPE] and ck.segments == SEGMENTS and ck.info["format"] == CHECKPOINT_FORMAT
    assert ck.info["data"]["sha256"] == demos.sha256
    b = full_batch(demos.streams[0], model.config.motor_horizon)
    with torch.inference_mode():
        a, c = model(TYPE, b["own"], b["seen"], b["target"]), ck.model(TYPE, b["own"], b["seen"], b["target"])
    for name in ("self_states", "obs_states", "obs_target", "turn_end", "motor"):
        assert torch.equal(getattr(a, name), getattr(c, name)), name


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def test_checkpoint_errors_are_one_line(demos, tmp_path):
    with pytest.raises(RobotMirrorError) as e:
        load_checkpoint(tmp_path / "missing.pt")
    assert "no such checkpoint" in _one_line(e)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(RobotMirrorError) as e:
        load_checkpoint(bad)
    assert "corrupt" in _one_line(e)
    good = _save(tmp_path / "good.pt", make_model(demos), demos)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(RobotMirrorError) as e:
        load_checkpoint(truncated)
    assert "corrupt" in _one_line(e)
    blob = torch.load(good, weights_only=True)
    for change, needle in ((lambda b: b.update(format="robot_mirror.mirror/0"), "format"),
                           (lambda b: b.pop("state_dict"), "missing state_dict"),
                           (lambda b: b["state_dict"].pop("core.weight_hh_l0"), "corrupt")):
        b = torch.load(good, weights_only=True)
        change(b)
        torch.save(b, tmp_path / "x.pt")
        with pytest.raises(RobotMirrorError) as e:
            load_checkpoint(tmp_path / "x.pt")
        assert needle in _one_line(e)
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(RobotMirrorError) as e:
        read_checkpoint(tmp_path / "other.pt")
    assert "not a mirror checkpoint" in _one_line(e)
    assert blob["format"] == CHECKPOINT_FORMAT


def test_checkpoint_for_another_robot_type_names_both(demos, tmp_path):
    path = _save(tmp_path / "m.pt", make_model(demos), demos)
    with pytest.raises(RobotMirrorError) as e:
        load_checkpoint(path, robot_type="kuka_iiwa/model.urdf")
    msg = _one_line(e)
    assert TYPE in msg and "kuka_iiwa/model.urdf" in msg


# ---- metrics on constructed data -------------------------------------------------------------

def _mirrored(n=600, classes=4, dim=16, seed=0, mirrored=True):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (classes, dim))
    ys, yo = rng.integers(0, classes, n), rng.integers(0, classes, n)
    other = centres if mirrored else rng.normal(0, 1, (classes, dim))
    return (centres[ys] + 0.05 * rng.normal(size=(n, dim)), ys, other[yo] + 0.05 * rng.normal(size=(n, dim)), yo)


def test_probe_and_mirror_index_on_a_perfect_mirror():
    sx, sy, ox, oy = _mirrored()
    p = cross_condition_probe(sx, sy, ox, oy, 4)
    assert p["self_to_obs"] == 1.0 and p["obs_to_self"] == 1.0 and p["self_to_self"] == 1.0
    assert 0.2 < p["chance_obs"] < 0.4
    mi = mirror_index(sx, sy, ox, oy, baseline=0)
    assert mi["cmni"] > 0.1 and mi["mirror_units"] > 0.3
    assert set(mi["per_condition"]) == {1, 2, 3}


def test_probe_and_mirror_index_on_random_states():
    rng = np.random.default_rng(1)
    sx, ox = rng.normal(size=(800, 16)), rng.normal(size=(800, 16))
    sy, oy = rng.integers(0, 4, 800), rng.integers(0, 4, 800)
    p = cross_condition_probe(sx, sy, ox, oy, 4)
    assert abs(p["self_to_obs"] - 0.25) < 0.08 and abs(p["obs_to_self"] - 0.25) < 0.08
    assert mirror_index(sx, sy, ox, oy, baseline=0)["cmni"] < 0.05
    # separable in each condition but with unrelated codes: decodable within, not across
    sx, sy, ox, oy = _mirrored(mirrored=False, seed=2)
    p = cross_condition_probe(sx, sy, ox, oy, 4)
    assert p["self_to_self"] == 1.0 and p["obs_to_obs"] == 1.0 and p["self_to_obs"] < 0.75


def test_early_recognition_curve():
    turn = np.array([False] * 2 + [True] * 10 + [False] * 3)
    true = np.where(turn, 2, -1)
    pred = np.where(np.arange(15) >= 7, 2, 0)  # right from the 6th tick of the turn on
    er = early_recognition([pred], [true], [turn])
    assert er["bins"][0] == 0.1 and er["bins"][-1] == 1.0
    assert er["accuracy"][:5] == [0.0] * 5 and er["accuracy"][5:] == [1.0] * 5
    assert er["at_half"] == 0.0
    assert early_recognition([true], [true], [turn])["at_half"] == 1.0


def test_turn_end_anticipation():
    true = np.array([np.nan, 2.0, 1.5, 1.0, 0.5, 0.0, np.nan])
    perfect = turn_end_anticipation([true.copy()], [true])
    assert perfect["mae_s"] == 0.0 and perfect["lead_time_s"] == 2.0 and perfect["turns"] == 1
    late = turn_end_anticipation([np.array([0, 5.0, 5.0, 1.2, 0.6, 0.1, 0])], [true], tolerance=0.5)
    assert late["lead_time_s"] == 1.0 and late["mae_s"] > 0.5


def test_motor_error_against_the_hold_baseline():
    q = np.cumsum(np.full((20, 3), 0.1), axis=0)
    perfect = np.stack([np.roll(q, -k, axis=0) for k in range(1, 4)], axis=1)  # (T, K, D) = q[t+k]
    m = motor_error([perfect], [q])
    assert m["mae_rad"] < 1e-9 and m["hold_baseline_mae_rad"] == pytest.approx(0.2)
    assert m["mae_rad_per_step"][0] < 1e-9 and len(m["mae_rad_per_step"]) == 3


def test_evaluate_model_runs_on_an_untrained_network(demos):
    model = make_model(demos)
    m = evaluate_model(model, demos.streams, segments=demos.segments, n_targets=demos.n_targets)
    for key in ("heads", "probe_segment", "probe_target", "mirror_index", "early_recognition", "turn_end",
                "motor", "controls"):
        assert key in m
    assert 0.0 <= m["probe_segment"]["self_to_obs"] <= 1.0
    assert np.isfinite(m["turn_end"]["mae_s"]) and np.isfinite(m["motor"]["mae_rad"])
    assert set(m["controls"]) == {"untrained", "shuffled_partner"}
