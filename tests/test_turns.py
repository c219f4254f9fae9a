"""The turn rules (robot_mirror.common.turns.TurnArbiter) as plain logic."""

from __future__ import annotations

import numpy as np
import pytest

from robot_mirror.common.turns import TurnArbiter

ROBOTS = ["a", "b", "c"]
ALL = {r: True for r in ROBOTS}


def kinds(events) -> list[tuple[str, str]]:
    return [(e.kind, e.robot) for e in events]


def test_first_must_be_a_robot() -> None:
    with pytest.raises(ValueError, match="first robot"):
        TurnArbiter(ROBOTS, first="z")


def test_grants_in_order_to_robots_with_work() -> None:
    arb = TurnArbiter(ROBOTS, first="b")
    assert kinds(arb.update(0.0, ALL)) == [("grant", "b")]
    assert arb.update(1.0, ALL) == []  # the holder keeps it until it releases
    assert kinds(arb.update(2.0, ALL, release_requests={"b"})) == [("release", "b"), ("grant", "c")]
    assert kinds(arb.update(3.0, ALL, release_requests={"c"})) == [("release", "c"), ("grant", "a")]
    assert arb.holder == "a"


def test_skips_robots_without_work() -> None:
    arb = TurnArbiter(ROBOTS, first="a")
    assert kinds(arb.update(0.0, {"a": False, "b": False, "c": True})) == [("grant", "c")]
    arb.update(1.0, {"a": False, "b": False, "c": True}, release_requests={"c"})
    assert arb.holder == "c"  # c is the only one with work: it gets the turn again
    events = arb.update(2.0, {r: False for r in ROBOTS}, release_requests={"c"})
    assert kinds(events) == [("release", "c")] and arb.holder is None and arb.next_robot == "a"


def test_release_from_a_non_holder_is_ignored() -> None:
    arb = TurnArbiter(ROBOTS, first="a")
    arb.update(0.0, ALL)
    assert arb.update(1.0, ALL, release_requests={"b"}) == [] and arb.holder == "a"


def test_silent_holder_is_reclaimed() -> None:
    arb = TurnArbiter(ROBOTS, first="a", silence_timeout=2.0)
    arb.update(0.0, ALL)
    assert arb.update(1.9, ALL, last_heard={"a": 0.0}) == []  # not yet
    events = arb.update(2.5, ALL, last_heard={"a": 0.0, "b": 2.5})
    assert kinds(events) == [("reclaim", "a"), ("grant", "b")] and events[0].reason == "silent"
    # Without a timeout nobody is reclaimed, however long the silence.
    patient = TurnArbiter(ROBOTS, first="a")
    patient.update(0.0, ALL)
    assert patient.update(1e6, ALL, last_heard={"a": 0.0}) == []


def test_request_marks_a_skipped_robot_as_having_work() -> None:
    arb = TurnArbiter(["a", "b"], first="a")
    idle = {"a": False, "b": False}
    assert arb.update(0.0, idle) == []
    assert kinds(arb.update(1.0, idle, requests={"b"})) == [("grant", "b")]
    # Turns still alternate: after b, a is next (it now has work).
    assert kinds(arb.update(2.0, {"a": True, "b": True}, release_requests={"b"}, requests={"b"})) == \
        [("release", "b"), ("grant", "a")]
    # A request from an unknown robot grants nothing.
    other = TurnArbiter(["a", "b"], first="a")
    assert other.update(0.0, idle, requests={"z"}) == []


def test_restore_resumes_a_known_state() -> None:
    arb = TurnArbiter(ROBOTS, first="a")
    arb.restore("b", "c")
    assert arb.holder == "b" and arb.next_robot == "c"
    assert arb.update(0.0, ALL) == []  # b still holds it
    assert kinds(arb.update(1.0, ALL, release_requests={"b"})) == [("release", "b"), ("grant", "c")]
    fresh = TurnArbiter(ROBOTS, first="a")
    fresh.restore("", "nobody")  # no holder; an unknown next robot keeps the current order
    assert fresh.holder is None and fresh.next_robot == "a"
    assert kinds(fresh.update(0.0, ALL)) == [("grant", "a")]


def random_inputs(rng: np.random.Generator, t: float):
    has_work = {r: bool(rng.random() < 0.5) for r in ROBOTS}
    last_heard = {r: t - float(rng.uniform(0, 4)) for r in ROBOTS if rng.random() < 0.8} \
        if rng.random() < 0.7 else None
    release = {r for r in ROBOTS if rng.random() < 0.2}
    requests = {r for r in ROBOTS + ["z"] if rng.random() < 0.15}
    return has_work, last_heard, release, requests


@pytest.mark.parametrize("seed", range(5))
def test_may_change_is_false_exactly_when_update_returns_nothing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    arb = TurnArbiter(ROBOTS, first=ROBOTS[seed % 3], silence_timeout=None if seed == 0 else 2.0)
    t, seen = 0.0, {True: 0, False: 0}
    for _ in range(2000):
        t += float(rng.uniform(0, 1))
        if rng.random() < 0.05:  # a restarted arbiter
            arb.restore(str(rng.choice(ROBOTS + [""])), str(rng.choice(ROBOTS)))
        inputs = random_inputs(rng, t)
        predicted = arb.may_change(t, *inputs)
        events = arb.update(t, *inputs)
        assert predicted == bool(events), (t, inputs, events)
        seen[predicted] += 1
    assert seen[True] > 100 and seen[False] > 100  # both sides exercised
