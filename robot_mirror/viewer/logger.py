"""The viewer's one entry point: a run's states, turn events, network
readouts and camera images into one rerun recording.

Two feeders use it: the in-process runner (:func:`inprocess_hook`, an
``on_tick`` of the one episode loop) and the viewer node (``state``
messages from the bus). Timelines: ``tick`` (control ticks since the run
started) and ``sim_time`` (simulated seconds since the run started); the
episodes of a run follow each other on both.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable

from robot_mirror.common.commands import ArmCommand
from robot_mirror.common.observation import WorldState
from robot_mirror.config.scenario import Scenario
from robot_mirror.viewer.config import ViewerConfig, open_stream, require_rerun
from robot_mirror.viewer.readouts import Clock, ReadoutLogger
from robot_mirror.viewer.scene import WORLD, Scene
from robot_mirror.viewer.timeline import TurnTimeline

FLUSH_TIMEOUT = 5.0  # s to hand the last data to the sinks when the run ends


class Viewer:
    def __init__(self, scenario: Scenario, config: ViewerConfig, *, recording_id: str | None = None) -> None:
        self.rr = require_rerun()
        self.config = config
        self.dt = 1.0 / scenario.control_hz
        self.draw_every = max(1, round(scenario.control_hz / config.scene_hz))
        self.robots = [r.name for r in scenario.robots]
        self.scene = Scene(scenario)
        self.stream = open_stream(config, "robot_mirror", recording_id)
        self.timeline = TurnTimeline(self.robots)
        a, b = self.robots
        self.readouts = {r: ReadoutLogger(r, p, window=config.heatmap_window, every=config.heatmap_every)
                         for r, p in ((a, b), (b, a))}
        self.episode: int | None = None
        self.now = Clock(0, 0.0)
        self._base = Clock(0, 0.0)
        self._drawn = -1  # run tick the scene was last drawn at
        self.stream.send_blueprint(blueprint(self.rr, self.robots, camera=config.camera_every > 0))
        self.scene.log_static(self.rr, self.stream)
        self.timeline.log_static(self.rr, self.stream)
        for logger in self.readouts.values():
            logger.log_static(self.rr, self.stream)

    # ------------------------------------------------------------- time
    def at(self, clock: Clock) -> None:
        self.stream.set_time("tick", sequence=clock.tick)
        self.stream.set_time("sim_time", duration=clock.seconds)

    def begin(self, state: WorldState) -> None:
        """Put the timelines at ``state``'s tick (a new episode starts after the last one)."""
        if state.episode != self.episode:
            if self.episode is not None:
                self._base = Clock(self.now.tick + 1, self.now.seconds + self.dt)
            self.episode = state.episode
            self.at(Clock(self._base.tick + state.tick, self._base.seconds + state.t))
            self.timeline.begin_episode(self.rr, self.stream, state.episode, state.seed)
            for logger in self.readouts.values():
                logger.reset()
        self.now = Clock(self._base.tick + state.tick, self._base.seconds + state.t)
        self.at(self.now)

    # -------------------------------------------------------------- log
    def log_state(self, state: WorldState, extra_events: Iterable[dict] = (), *, draw: bool = True) -> None:
        """The scene (unless ``draw`` is false) and the turn timeline of
        ``state`` (call :meth:`begin` first)."""
        events = [*state.events, *extra_events]
        if draw and (self.now.tick - self._drawn >= self.draw_every or state.done or state.tick <= 1):
            self.scene.log_state(self.rr, self.stream, state)
            self._drawn = self.now.tick
        self.timeline.log_tick(self.rr, self.stream, self.now.tick, state.holder, events)
        for event in events:
            if event.get("type") == "turn_end":
                for logger in self.readouts.values():
                    if logger.partner == event.get("robot"):
                        logger.partner_turn_ended(self.rr, self.stream, float(event["t"]), self.at, self.now)
        if state.done:  # the episode's end ends a partner turn still under way
            for logger in self.readouts.values():
                logger.partner_turn_ended(self.rr, self.stream, float(state.t), self.at, self.now)

    def log_readouts(self, robot: str, mode: str, t: float, readouts: dict | None, truth: tuple | None) -> None:
        self.readouts[robot].log_tick(self.rr, self.stream, mode, t, readouts, truth, self.now)

    def log_camera(self, rgb) -> None:
        self.stream.log("camera/rgb", self.rr.Image(rgb).compress(jpeg_quality=85))

    def close(self) -> None:
        """Hand the last data to the sinks, within bounds: a viewer that went
        away costs one line and a few seconds, never the run's summary."""
        try:
            self.stream.flush(timeout_sec=FLUSH_TIMEOUT)
            self.stream.disconnect()
        except RuntimeError as exc:
            print(f"viewer: the last data may be lost: {exc}", file=sys.stderr, flush=True)
        finally:
            self.scene.close()


def mode_of(robot: str, holder: str) -> str:
    """``executing`` (holds the turn), ``observing`` (the partner holds it: the
    arm is watching, even on a tick whose view perception dropped) or ``idle``."""
    if holder == robot:
        return "executing"
    return "observing" if holder else "idle"


def policy_readouts(policy: Any) -> dict | None:
    """``policy.readouts()`` if the policy offers it (the contract: readouts.py)."""
    method = getattr(policy, "readouts", None)
    return method() if callable(method) else None


def policy_labels(policy: Any) -> tuple | None:
    method = getattr(policy, "labels", None)
    return tuple(method()) if callable(method) else None


def request_events(actions: dict, t: float) -> list[dict]:
    """The turn requests among a tick's commands, as the sim publishes them."""
    events = []
    for name, raw in actions.items():
        cmd = ArmCommand.coerce(raw)
        if cmd is not None and cmd.turn == "request":
            events.append({"t": t, "type": "turn_request", "robot": name})
    return events


def inprocess_hook(viewer: Viewer, env, policies: dict[str, Any]) -> Callable[[Any], None]:
    """An ``on_tick`` for :func:`robot_mirror.policies.rollout`: everything the viewer shows, per tick."""
    every = viewer.config.camera_every
    seen = {"episode": None, "events": 0}

    def on_tick(tick) -> None:
        # The episode's events since the last tick: the reset's (the first
        # grant) arrive with the first step, which is the first call.
        if env.episode != seen["episode"]:
            seen.update(episode=env.episode, events=0)
        events = env.episode_events[seen["events"]:]
        seen["events"] = len(env.episode_events)
        state = env.world_state(events)
        viewer.begin(state)
        for name, policy in policies.items():
            obs = tick.obs[name]
            partner = next(p for p in policies if p != name)
            viewer.log_readouts(name, mode_of(name, obs["holder"]),
                                float(obs["t"]), policy_readouts(policy), policy_labels(policies[partner]))
        viewer.log_state(state, request_events(tick.actions, state.t))
        if every and state.tick % every == 0:
            viewer.log_camera(env.render())

    return on_tick


def blueprint(rr: Any, robots: list[str], *, camera: bool) -> Any:
    """The default layout: the scene and the turn timeline on the left, each
    arm's readouts on the right."""
    import rerun.blueprint as rrb

    left = [rrb.Spatial3DView(origin=WORLD, name="scene"),
            rrb.StateTimelineView(origin="/", contents=["/turns/holder", *[f"/mirror/{r}/mode" for r in robots]],
                                  name="turn holder; each arm executing / observing"),
            rrb.TimeSeriesView(origin="/turns", name="requests, releases, refusals, violations"),
            rrb.TextLogView(origin="/turns/events", name="turn events")]
    if camera:
        left.append(rrb.Spatial2DView(origin="/camera", name="camera"))
    arms = [rrb.Vertical(
        rrb.TimeSeriesView(origin=f"/mirror/{r}/turn_end", name=f"{r}: partner's turn ends in (s)"),
        rrb.Horizontal(rrb.TimeSeriesView(origin=f"/mirror/{r}/segment", name=f"{r}: segment"),
                       rrb.TimeSeriesView(origin=f"/mirror/{r}/target", name=f"{r}: target")),
        rrb.Spatial2DView(origin=f"/mirror/{r}/core", name=f"{r}: core, own stream above observed"),
    ) for r in robots]
    return rrb.Blueprint(rrb.Horizontal(rrb.Vertical(*left, row_shares=[4, 2, 1, 2] + ([2] if camera else [])),
                                        *arms, column_shares=[3, 2, 2]), collapse_panels=True)
