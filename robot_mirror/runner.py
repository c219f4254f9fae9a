"""Run a scenario's episodes in one process and write the run summary.

The summary (``summary.json``, schema in ``docs/summary.md``) is rewritten
atomically after every episode, so an interrupted or crashed run still
leaves a valid file describing what ran.
"""

from __future__ import annotations

import datetime as _dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from robot_mirror.files import write_json_atomic
from robot_mirror.launch.scenario import Scenario

SUMMARY_SCHEMA = "robot_mirror.summary/1"


def make_run_dir(scenario: Scenario, out: str | Path | None) -> Path:
    if out is not None:
        path = Path(out)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{stamp}-{scenario.name}"
        n = 1
        while path.exists():
            n += 1
            path = Path("runs") / f"{stamp}-{scenario.name}-{n}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def totals(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(episodes)
    durations = [d for e in episodes for d in e["turn_durations"]]
    gaps = [g for e in episodes for g in e["handoff_gaps"]]
    sim = sum(e["sim_seconds"] for e in episodes)
    wall = sum(e["wall_seconds"] for e in episodes)
    return {
        "episodes": n,
        "successes": sum(e["success"] for e in episodes),
        "success_rate": round(sum(e["success"] for e in episodes) / n, 4) if n else None,
        "turns": sum(e["turns"] for e in episodes),
        "mean_turn_duration": round(statistics.fmean(durations), 4) if durations else None,
        "mean_handoff_gap": round(statistics.fmean(gaps), 4) if gaps else None,
        "zone_violations": sum(e["zone_violations"] for e in episodes),
        "min_arm_distance": min((e["min_arm_distance"] for e in episodes), default=None),
        "sim_seconds": round(sim, 3),
        "wall_seconds": round(wall, 3),
        "real_time_factor": round(sim / wall, 3) if wall > 0 else None,
    }


class RunSummary:
    """Accumulates episodes and keeps ``summary.json`` current on disk."""

    def __init__(self, run_dir: Path, scenario: Scenario, mode: str, overrides: list[str]) -> None:
        self.path = run_dir / "summary.json"
        self.data: dict[str, Any] = {
            "schema": SUMMARY_SCHEMA,
            "scenario": scenario.name,
            "scenario_file": scenario.source,
            "mode": mode,
            "seed": scenario.seed,
            "overrides": list(overrides),
            "robots": {r.name: {"urdf": r.urdf, "policy": r.policy} for r in scenario.robots},
            "task": scenario.task.kind,
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "finished": None,
            "complete": False,
            "stopped_because": None,
            "episodes": [],
            "totals": totals([]),
        }
        self.save()

    def add(self, episode: dict[str, Any]) -> None:
        self.data["episodes"].append(episode)
        self.data["totals"] = totals(self.data["episodes"])
        self.save()

    def finish(self, complete: bool, reason: str | None = None) -> None:
        self.data["complete"] = complete
        self.data["stopped_because"] = reason
        self.data["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
        self.save()

    def save(self) -> None:
        write_json_atomic(self.path, self.data)


class ProgressLine:
    """One live status line on a terminal; nothing when output is not a TTY."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._last = 0.0

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not self.live or (not force and now - self._last < 0.2):
            return
        self._last = now
        self.stream.write("\r\033[K" + text)
        self.stream.flush()

    def clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()


def run_inprocess(env, *, episodes: int, run_dir: Path, overrides: list[str],
                  record: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Run ``episodes`` episodes (seeds ``seed``, ``seed+1``, ...) of the
    scenario of ``env`` (a ``TurnTakingEnv``, closed when done) in this process."""
    from robot_mirror.policies import build_policies

    scenario = env.scenario
    summary = RunSummary(run_dir, scenario, "inprocess", overrides)
    progress = ProgressLine()
    try:
        policies = build_policies(env, scenario)
        for i in range(episodes):
            seed = scenario.seed + i
            recorder = None
            if record:
                from robot_mirror.sim.recorder import Recorder

                recorder = Recorder(env.world, run_dir / f"episode_{i:03d}")
            obs, info = env.reset(seed=seed)
            for policy in policies.values():
                policy.reset()
            done = False
            while not done:
                actions = {name: policy.act(obs[name]) for name, policy in policies.items()}
                obs, _, terminated, truncated, info = env.step(actions)
                done = terminated or truncated
                if recorder is not None:
                    recorder.maybe_capture(env.t)
                if not quiet:
                    progress.update(_progress_text(i, episodes, env, info))
            episode = {"index": i, "seed": seed, **env.episode_summary()}
            if recorder is not None:
                episode["video"] = str(recorder.close())
            summary.add(episode)
            progress.clear()
            if not quiet:
                print(_episode_line(episode), flush=True)
        summary.finish(True)
    except KeyboardInterrupt:
        progress.clear()
        summary.finish(False, "interrupted")
        raise
    except BaseException as exc:
        summary.finish(False, f"error: {exc}")
        raise
    finally:
        env.close()
    return summary.data


def _progress_text(i: int, n: int, env, info) -> str:
    wall = time.perf_counter() - env._wall_start
    rtf = env.t / wall if wall > 0 else 0.0
    holder = info.get("holder") or "-"
    return (f"episode {i + 1}/{n}  t={env.t:6.1f}s  turn {env._stats.turns:2d}  "
            f"holder {holder:<8}  stacked {getattr(env.task, 'stacked', 0)}  rtf {rtf:5.1f}x")


def _episode_line(e: dict[str, Any]) -> str:
    gaps = e["handoff_gaps"]
    gap = f"{statistics.fmean(gaps):.2f}s" if gaps else "-"
    return (f"episode {e['index']:>3} seed {e['seed']:>5}: {'SUCCESS' if e['success'] else 'failed '}"
            f"  turns {e['turns']:>2}  mean handoff gap {gap:>6}  violations {e['zone_violations']}"
            f"  sim {e['sim_seconds']:.1f}s  wall {e['wall_seconds']:.1f}s  rtf {e['real_time_factor']}x"
            + (f"  imitation {e['imitation_successes']}/{e['rounds']}" if "imitation_success" in e else ""))


def format_summary(data: dict[str, Any], run_dir: Path) -> str:
    t = data["totals"]
    lines = [
        "",
        f"== {data['scenario']} ({data['mode']}) — {t['episodes']} episode(s), seed {data['seed']} ==",
        f"  success rate        {t['successes']}/{t['episodes']}"
        + (f" ({100 * t['success_rate']:.0f}%)" if t["success_rate"] is not None else ""),
        f"  turns               {t['turns']}",
        f"  mean turn duration  {_fmt(t['mean_turn_duration'], 's')}",
        f"  mean handoff gap    {_fmt(t['mean_handoff_gap'], 's')}",
        f"  zone violations     {t['zone_violations']}",
        f"  min arm distance    {_fmt(t['min_arm_distance'], 'm')}",
        f"  simulated / wall    {t['sim_seconds']:.1f}s / {t['wall_seconds']:.1f}s"
        f"  (real-time factor {t['real_time_factor']}x)",
        f"  summary             {run_dir / 'summary.json'}",
    ]
    if not data["complete"]:
        lines.insert(2, f"  (incomplete: {data['stopped_because']})")
    return "\n".join(lines)


def _fmt(value, unit: str) -> str:
    return "-" if value is None else f"{value:.3f} {unit}"
