"""MirrorNet: one input layer and one core for both bodies, online stepping,
the lesion, the label-free alignment term, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_mirror.errors import RobotMirrorError
from robot_mirror.mirror.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, read_checkpoint, save_checkpoint
from robot_mirror.mirror.dataset import SEGMENTS, EpisodeSampler, compute_stats, full_batch, load_demos, mask_pairs
from robot_mirror.mirror.features import BODY_DIM, body_features, rotation_6d
from robot_mirror.mirror.model import MirrorConfig, MirrorNet, alignment_loss, synchronous_pairs
from robot_mirror.mirror.synthetic import write_synthetic_demos

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    path = write_synthetic_demos(tmp_path_factory.mktemp("demos"), episodes=3, turns=3, dof=4, n_targets=3)
    return load_demos(path)


def make_model(demos=None, seed=0, **kw) -> MirrorNet:
    torch.manual_seed(seed)
    model = MirrorNet(MirrorConfig(segments=SEGMENTS, n_targets=3, hidden=32, embed_dim=16, adapter_hidden=16, **kw))
    if demos is not None:
        model.set_normalisation(compute_stats(demos.streams))
    return model


def test_rotation_6d_has_no_sign_ambiguity():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(rotation_6d(q), rotation_6d(-q), atol=1e-6)
    np.testing.assert_allclose(rotation_6d(np.array([0, 0, 0, 1.0])), [1, 0, 0, 0, 1, 0], atol=1e-7)
    assert body_features(np.zeros((5, 3)), np.array([0, 0, 0, 0, 0, 0, 1.0]), 0.0, 1.0).shape == (BODY_DIM,)


def test_both_streams_share_one_input_layer_and_one_core(demos):
    model = make_model(demos)
    grus = [m for m in model.modules() if isinstance(m, (torch.nn.GRU, torch.nn.GRUCell, torch.nn.RNNBase))]
    assert grus == [model.core]
    linear_in = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.in_features == BODY_DIM]
    assert linear_in == [model.body_layer[0]]  # no second input layer, no per-arm part
    b = full_batch(demos.streams[0])
    # the same input through either stream gives the same states: nothing tells the core whose body it is
    out = model(b["own"], b["own"])
    assert torch.equal(out.self_states, out.obs_states)
    # an action loss on the self stream alone trains the tensors the observed stream runs on
    model.zero_grad()
    model(b["own"], b["seen"]).self_segment.logsumexp(-1).mean().backward()
    for p in [*model.core.parameters(), *model.body_layer.parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0
    seen = b["seen"].clone()
    seen[0, 0, :5] = float("nan")  # nothing seen yet does not poison the state
    assert torch.isfinite(model(b["own"], seen).obs_states).all()


def test_step_matches_the_sequence_forward_and_the_lesion_silences(demos):
    model = make_model(demos).eval()
    b = full_batch(demos.streams[1])
    lesion = torch.ones(32)
    lesion[[1, 5, 9]] = 0
    with torch.inference_mode():
        out = model(b["own"], b["seen"])
        lesioned = model(b["own"], b["seen"], lesion=lesion)
        state, state_l = None, None
        for t in range(40):
            state = model.step(b["own"][:, t], b["seen"][:, t], state)
            state_l = model.step(b["own"][:, t], b["seen"][:, t], state_l, lesion=lesion)
            torch.testing.assert_close(state[0], out.self_states[:, t], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(state[1], out.obs_states[:, t], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(state_l[1], lesioned.obs_states[:, t], atol=1e-5, rtol=1e-4)
    assert float(lesioned.self_states[..., [1, 5, 9]].abs().max()) == 0.0
    assert not torch.allclose(lesioned.obs_states, out.obs_states)


def test_synchronous_pairs_are_one_act_seen_from_inside_and_outside(demos):
    sampler = EpisodeSampler(demos.streams, lanes=4, window=16, rng=np.random.default_rng(0))
    batch = sampler.next()
    assert batch["own"].shape[0] == 4  # two lanes x two robots
    model = make_model(demos)
    out = model(batch["own"], batch["seen"])
    own, seen, pos = synchronous_pairs(out, batch, n=24, tolerance=2, generator=torch.Generator().manual_seed(0))
    assert own.shape == seen.shape and pos.shape == (own.shape[0], own.shape[0])
    assert bool(pos.diagonal().all())
    # the loss is low when watcher states equal actor states and high when they are unrelated
    z = torch.randn(24, 8)
    eye = torch.eye(24, dtype=torch.bool)
    assert alignment_loss(z, z + 0.01 * torch.randn(24, 8), eye, 0.1) < alignment_loss(z, torch.randn(24, 8), eye, 0.1)


def test_heldout_pairs_never_reach_the_loss(demos):
    sampler = EpisodeSampler(demos.streams, lanes=2, window=200, rng=np.random.default_rng(0))
    batch = sampler.next()
    seg, tgt = SEGMENTS.index("carry"), 2
    assert bool(((batch["segment"] == seg) & (batch["target"] == tgt)).any())
    masked = mask_pairs(batch, [(seg, tgt)])
    assert not bool(((masked["segment"] == seg) & (masked["target"] == tgt)).any())


# ---- checkpoints -----------------------------------------------------------------------------

def _save(path, model, demos):
    return save_checkpoint(path, model, normalisation=compute_stats(demos.streams),
                           data={"sha256": demos.sha256}, seed=0, train_seconds=1.0, metrics={"x": np.float32(1)})


def test_checkpoint_round_trip_gives_identical_outputs(demos, tmp_path):
    model = make_model(demos, seed=3).eval()
    path = _save(tmp_path / "m.pt", model, demos)
    ck = load_checkpoint(path)
    assert ck.segments == SEGMENTS and ck.info["format"] == CHECKPOINT_FORMAT
    b = full_batch(demos.streams[0])
    with torch.inference_mode():
        a, c = model(b["own"], b["seen"]), ck.model(b["own"], b["seen"])
    for name in ("self_states", "obs_states", "obs_target", "obs_turn_end"):
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
    for change, needle in ((lambda b: b.update(format="robot_mirror.mirror/1"), "format"),
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


def test_imitation_slots_are_numbered_in_the_actors_own_frame(demos):
    """Two arms facing each other see "slot s" and "slot K-1-s" as the same own movement:
    the arm whose tool goes the other way along its own lateral axis gets reversed labels,
    and so do its partner's labels of it."""
    import dataclasses

    from robot_mirror.mirror.labels import egocentric_slots

    place = SEGMENTS.index("place")
    streams = []
    for robot, sign in ((0, 1.0), (1, -1.0)):
        s = demos.streams[robot]
        target = np.arange(s.ticks) % 4
        own = s.own.copy()
        own[:, 16] = sign * (target - 1.5) * 0.18
        streams.append(dataclasses.replace(s, own=own, segment=np.full(s.ticks, place), target=target,
                                           partner_target=np.arange(s.ticks) % 4))
    assert egocentric_slots(streams, 4, place) == [False, True]
    assert np.array_equal(streams[0].target, np.arange(streams[0].ticks) % 4)
    assert np.array_equal(streams[1].target, 3 - np.arange(streams[1].ticks) % 4)
    assert np.array_equal(streams[0].partner_target, 3 - np.arange(streams[0].ticks) % 4)  # robot 1, reversed
    assert np.array_equal(streams[1].partner_target, np.arange(streams[1].ticks) % 4)
