"""Run a scenario's episodes in one process (``launch --inprocess``).

The same episode loop as everywhere (:func:`robot_mirror.policies.rollout`),
the same summary as the multi-process launch (:mod:`robot_mirror.launch.summary`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import robot_mirror.mirror  # noqa: F401  (registers policy: mirror)
from robot_mirror.launch.progress import ProgressLine
from robot_mirror.launch.summary import RunSummary, episode_line
from robot_mirror.policies import Tick, build_policies, rollout
from robot_mirror.viewer.config import ViewerConfig


def run_inprocess(env, *, episodes: int, run_dir: Path, overrides: list[str],
                  record: bool = False, quiet: bool = False, viewer: ViewerConfig | None = None) -> dict[str, Any]:
    """Run ``episodes`` episodes (seeds ``seed``, ``seed+1``, ...) of the
    scenario of ``env`` (a ``TurnTakingEnv``, closed when done) in this process.
    ``viewer``: also log every tick to a rerun viewer or recording (docs/viewer.md)."""
    summary = RunSummary(run_dir, env.scenario, "inprocess", overrides)
    progress = ProgressLine()
    live = view = None
    try:
        policies = build_policies(env, env.scenario)
        if viewer is not None and viewer.enabled:
            from robot_mirror.viewer.logger import Viewer, inprocess_hook  # imports rerun: only when asked

            live = Viewer(env.scenario, viewer, recording_id=run_dir.name)
            view = inprocess_hook(live, env, policies)
        for i in range(episodes):
            episode = _run_episode(env, policies, i, episodes, run_dir=run_dir, record=record,
                                   progress=None if quiet else progress, view=view)
            summary.add(episode)
            progress.clear()
            if not quiet:
                print(episode_line(episode), flush=True)
        summary.finish(True)
    except KeyboardInterrupt:
        progress.clear()
        summary.finish(False, "interrupted")
        raise
    except BaseException as exc:
        summary.finish(False, f"error: {exc}")
        raise
    finally:
        if live is not None:
            live.close()
        env.close()
    return summary.data


def _run_episode(env, policies, i: int, episodes: int, *, run_dir: Path, record: bool,
                 progress: ProgressLine | None, view: Callable[[Tick], None] | None = None) -> dict[str, Any]:
    seed = env.scenario.seed + i
    recorder = None
    if record:
        from robot_mirror.sim.recorder import Recorder

        recorder = Recorder(env.world, run_dir / f"episode_{i:03d}")

    def on_tick(tick: Tick) -> None:
        if recorder is not None:
            recorder.maybe_capture(env.t)
        if progress is not None:
            progress.update(_progress_text(i, episodes, env, tick.info))
        if view is not None:
            view(tick)

    episode = {"index": i, "seed": seed, **rollout(env, policies, seed, on_tick)}
    if recorder is not None:
        episode["video"] = str(recorder.close())
    return episode


def _progress_text(i: int, n: int, env, info) -> str:
    wall = time.perf_counter() - env.wall_start
    rtf = env.t / wall if wall > 0 else 0.0
    holder = info.get("holder") or "-"
    return (f"episode {i + 1}/{n}  t={env.t:6.1f}s  turn {env.stats.turns:2d}  "
            f"holder {holder:<8}  stacked {getattr(env.task, 'stacked', 0)}  rtf {rtf:5.1f}x")
