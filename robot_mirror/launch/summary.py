"""The run folder and ``summary.json``, written the same way by both modes.

The summary (schema in ``docs/summary.md``) is rewritten atomically after
every episode, so an interrupted or crashed run still leaves a valid file
describing what ran. The in-process runner and the supervisor both keep it
through :class:`RunSummary` and print it with :func:`format_summary`.
"""

from __future__ import annotations

import datetime as _dt
import statistics
from pathlib import Path
from typing import Any

from robot_mirror.config.scenario import Scenario
from robot_mirror.files import write_json_atomic

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


def episode_line(e: dict[str, Any]) -> str:
    gaps = e["handoff_gaps"]
    gap = f"{statistics.fmean(gaps):.2f}s" if gaps else "-"
    return (f"episode {e['index']:>3} seed {e['seed']:>5}: {'SUCCESS' if e['success'] else 'failed '}"
            f"  turns {e['turns']:>2}  mean handoff gap {gap:>6}  violations {e['zone_violations']}"
            f"  sim {e['sim_seconds']:.1f}s  wall {e['wall_seconds']:.1f}s  rtf {e['real_time_factor']}x"
            + (f"  imitation {e['imitation_successes']}/{e['rounds']}" if "imitation_success" in e else ""))


def format_summary(data: dict[str, Any], run_dir: Path) -> str:
    t = data["totals"]
    rtf = "-" if t["real_time_factor"] is None else f"{t['real_time_factor']}x"  # None: no episode kept
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
        f"  (real-time factor {rtf})",
        f"  summary             {run_dir / 'summary.json'}",
    ]
    if not data["complete"]:
        lines.insert(2, f"  (incomplete: {data['stopped_because']})")
    return "\n".join(lines)


def _fmt(value, unit: str) -> str:
    return "-" if value is None else f"{value:.3f} {unit}"
