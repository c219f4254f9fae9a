"""Helpers shared by the bench scripts (not a benchmark itself).

The scripts are run as ``python bench/X.py`` from the project root, so this
folder is not a package. Each script makes the import work with two lines at
its top, before anything else from this folder is imported::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common  # noqa: E402

(Python already puts a script's own folder first on ``sys.path``; the explicit
insert keeps the import working under ``python -P`` / ``PYTHONSAFEPATH`` and
when a script is loaded by path from elsewhere, e.g. ``runpy.run_path`` or a
multiprocessing "spawn" child re-importing ``__main__``.)
"""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """A benchmark that cannot give a figure (a failed run, a missing file)."""


# ------------------------------------------------------------------ paths
def from_root(text: str) -> str:
    """``text`` as is if absolute, else relative to the project root."""
    return str(Path(text) if Path(text).is_absolute() else ROOT / text)


def scenario_path(text: str) -> str:
    """A scenario given relative to the current folder or to the project root."""
    p = Path(text)
    if not p.is_absolute() and not p.exists():
        p = ROOT / p
    if not p.is_file():
        raise BenchError(f"scenario {text}: file not found")
    return str(p.resolve())


# ------------------------------------------------------------ arm pairs
XARM = ["robots.mirror.urdf=xarm/xarm6_robot.urdf", "robots.mirror.gripper=suction"]
ZOO_SEED = 0  # robot_mirror.sim.zoo.generate seed: zoo arms by index


def pairs(zoo_dir: Path, zoo_arms: list[int]) -> dict[str, tuple[str, list[str]]]:
    """Pair name -> (scenario, overrides). Zoo arms replace the mirror_arm of tower_custom."""
    from robot_mirror.sim.zoo import generate

    out = {"panda+panda": ("launch/tower.yaml", []), "panda+iiwa": ("launch/tower_mixed.yaml", []),
           "mirror_arm+panda": ("launch/tower_custom.yaml", []), "xarm6+panda": ("launch/tower_custom.yaml", XARM)}
    arms = generate(max(zoo_arms) + 1, zoo_dir, seed=ZOO_SEED) if zoo_arms else []
    for i in zoo_arms:
        arm = arms[i]
        out[f"{arm.name}+panda"] = ("launch/tower_custom.yaml",
                                    [f"robots.mirror.urdf={arm.urdf}", f"robots.mirror.gripper={arm.gripper}"])
    return out


# -------------------------------------------------------- launched runs
@contextmanager
def temp_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder for the launched runs' output, removed afterwards
    (cleanup errors ignored: a node may still be closing a file)."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True, prefix=prefix) as tmp:
        yield Path(tmp)


def launch_command(scenario: str, out: Path, extra: Iterable[str] = ()) -> list[str]:
    """``robot-mirror launch SCENARIO --episodes 1 EXTRA --out OUT --quiet``,
    with this Python (``python -m robot_mirror`` is the CLI)."""
    return [sys.executable, "-m", "robot_mirror", "launch", scenario, "--episodes", "1", *extra,
            "--out", str(out), "--quiet"]


def run_launch(cmd: list[str], timeout: float) -> subprocess.CompletedProcess | None:
    """Run one ``robot-mirror launch``; None if it ran past ``timeout`` (it is
    then interrupted like Ctrl-C, so the supervisor stops its nodes, and
    killed if it still has not ended 15 s later)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def launch_summary(cmd: list[str], out: Path, timeout: float, what: str) -> tuple[dict, float]:
    """Run the launch ``cmd`` (which writes to ``out``) and return its parsed
    ``summary.json`` and the process wall seconds. Raises BenchError, naming
    the run as ``what``, if it timed out, failed or wrote no summary."""
    start = time.perf_counter()
    proc = run_launch(cmd, timeout)
    if proc is None:
        raise BenchError(f"{what} did not finish within {timeout:.0f} s")
    wall = time.perf_counter() - start
    path = out / "summary.json"
    if proc.returncode != 0 or not path.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"{what} failed (exit {proc.returncode}): {last}")
    return json.loads(path.read_text()), wall


def run_on_scenario(name: str, run: Callable[[Any], dict], args) -> dict | None:
    """Resolve ``args.scenario`` (see :func:`scenario_path`) and return
    ``run(args)``; on a BenchError or RobotMirrorError print
    ``NAME: error: ...`` to stderr and return None (the script exits 1)."""
    from robot_mirror.errors import RobotMirrorError

    try:
        args.scenario = scenario_path(args.scenario)
        return run(args)
    except (BenchError, RobotMirrorError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return None


def round_order(index: int, first: str, second: str) -> tuple[str, str]:
    """The two sides of round ``index``, order swapped every other round so
    that load from other jobs hits both alike."""
    return (first, second) if index % 2 == 0 else (second, first)


# ------------------------------------------------------------ statistics
def percentiles(values, *qs: float) -> tuple[float, ...]:
    """``numpy.percentile`` (linear interpolation) of ``values`` at each q, as floats."""
    import numpy as np

    arr = np.asarray(values)
    return tuple(float(np.percentile(arr, q)) for q in qs)


def median_of(rows: Iterable[dict], key: str) -> float:
    """The median of ``row[key]`` over ``rows``."""
    return statistics.median(row[key] for row in rows)


# --------------------------------------------------------------- machine
def loadavg() -> list[float]:
    """The 1/5/15-minute load averages, rounded to 2 decimals."""
    return [round(x, 2) for x in os.getloadavg()]


def package_version(name: str) -> str:
    """The installed version of a distribution, or "unknown"."""
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "unknown"


def machine_info(versions: dict[str, Any] | None = None, *, processor: bool = True) -> dict:
    """Python version, then ``versions`` (in order), CPU count, platform and
    (unless ``processor`` is False) the processor."""
    info = {"python": platform.python_version(), **(versions or {}), "cpu_count": os.cpu_count(),
            "platform": platform.platform()}
    if processor:
        info["processor"] = platform.processor() or platform.machine()
    return info


# ---------------------------------------------------------------- output
def write_json(path: Path | None, result: dict) -> None:
    """With ``--json PATH``: write ``result`` there (folders made) and say so."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")


def print_round(index: int, rounds: int, parts: list[str]) -> None:
    """One progress line ``round i/n: part   part``."""
    print(f"round {index + 1}/{rounds}: " + "   ".join(parts), flush=True)


def print_load(result: dict) -> None:
    """The load average before and after, as stored in ``result``."""
    print(f"load average before {result['loadavg_before']} after {result['loadavg_after']}")


# --------------------------------------------------------- episode pools
def run_pool(task: Callable, jobs: list, workers: int, on_result: Callable[[Any], None]) -> float:
    """Run ``task`` on every job in a multiprocessing pool of ``workers``,
    calling ``on_result`` on each result as it arrives (any order) and
    printing progress every 10 episodes and at the end. Returns the wall
    seconds."""
    import multiprocessing as mp

    start = time.perf_counter()
    with mp.Pool(workers) as pool:
        for n, result in enumerate(pool.imap_unordered(task, jobs), 1):
            on_result(result)
            if n % 10 == 0 or n == len(jobs):
                print(f"  {n}/{len(jobs)} episodes, {time.perf_counter() - start:.0f} s", flush=True)
    return time.perf_counter() - start


def tower_totals(summaries: dict[int, dict]) -> dict:
    """Episode count, successes and the safety figures over ``{seed: episode summary}``."""
    seeds = sorted(summaries)
    return {
        "episodes": len(seeds),
        "successes": sum(summaries[s]["success"] for s in seeds),
        "zone_violations": sum(summaries[s]["zone_violations"] for s in seeds),
        "min_arm_distance": min(summaries[s]["min_arm_distance"] for s in seeds),
        "tower_disturbances": sum(summaries[s].get("tower_disturbances", 0) for s in seeds),
        "failed_seeds": [s for s in seeds if not summaries[s]["success"]],
    }


def pool_figures(seeds: int, workers: int, wall: float) -> dict:
    """The closing keys of an episode-pool script's JSON: seeds, workers,
    wall seconds and the machine (no processor)."""
    return {"seeds": seeds, "workers": workers, "wall_seconds": round(wall, 1),
            "machine": machine_info(processor=False)}


def run_episode(env, seed: int) -> dict:
    """One in-process episode of ``env`` with the scenario's policies
    (``robot_mirror.policies.build_policies`` + ``rollout``)."""
    from robot_mirror.policies import build_policies, rollout

    return rollout(env, build_policies(env, env.scenario), seed)
