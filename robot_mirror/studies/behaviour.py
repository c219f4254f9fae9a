"""Does the mirror network change what the arms do? The causal comparison.

Every variant is one policy name (``constant``, ``heuristic``, ``expert``,
``random``, ``oracle``, ``mirror``, ``mirror_lesioned``, ...) applied to
**both** robots of one scenario, played in process through the one episode
loop (:func:`robot_mirror.policies.rollout`) on the **same** unseen seeds
(below ``SEED_LIMIT``; demonstrations use seeds from it up) at one
perception level. Only the belief the policy hands the scripted expert's
motion layer differs between variants, so a difference in the headline is
the belief's doing.

Headline, one number per episode:

* tower — ``mean_handoff_gap``: the mean of the episode's hand-off gaps (s
  from one arm leaving the shared zone to the other entering it;
  ``EpisodeStats`` in :mod:`robot_mirror.env`); lower is better;
* imitation — ``on_time_success``: rounds in which the follower's block
  landed in the right slot within ``task.follow_budget`` s of its turn
  starting, over the rounds planned (the task's ``imitation_success``);
  higher is better.

Per variant: the per-episode values, their mean and a 95 % percentile
bootstrap interval of the mean (``RESAMPLES`` resamples of the episodes,
seeded). ``mirror_advantage`` = ``mirror`` minus the best non-oracle
baseline (by mean; every variant that is not ``oracle`` and whose name does
not start with ``mirror``), paired over seeds: the mean of the per-seed
differences and the bootstrap interval of that mean. Its sign follows the
headline: negative is better for the tower, positive for imitation.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Iterable

import numpy as np

from robot_mirror.config.scenario import PERCEPTION_LEVELS
from robot_mirror.errors import ConfigError

SEED_LIMIT = 1000   # evaluation seeds stay below; demonstrations use seeds >= 1000
RESAMPLES = 2000
LEVEL = 0.95
# task kind -> (headline key, "lower" | "higher" is better)
HEADLINES: dict[str, tuple[str, str]] = {"tower": ("mean_handoff_gap", "lower"),
                                         "imitation": ("on_time_success", "higher")}
CEILINGS = {"oracle"}
# The variants ``robot-mirror evaluate`` compares per task: the network, the best
# constant(s), the public-information heuristic, the lesioned network, the ceiling.
EVALUATION_VARIANTS: dict[str, list[str]] = {
    "tower": ["mirror", "constant", "expert", "heuristic", "mirror_lesioned", "oracle"],
    "imitation": ["mirror", "constant", "heuristic", "mirror_lesioned", "oracle", "random"],
}


# --------------------------------------------------------------- the runs
def seeds_for(episodes: int, start: int = 0) -> list[int]:
    """``episodes`` evaluation seeds from ``start``, all below ``SEED_LIMIT``."""
    if episodes < 1:
        raise ConfigError(f"episodes = {episodes}: must be at least 1")
    if start < 0 or start + episodes > SEED_LIMIT:
        raise ConfigError(f"seeds {start}..{start + episodes - 1}: evaluation seeds must lie in "
                          f"0..{SEED_LIMIT - 1} (seeds from {SEED_LIMIT} up are the demonstrations')")
    return list(range(start, start + episodes))


def variant_overrides(scenario, policy: str, perception: str, extra: Iterable[str] = ()) -> list[str]:
    """The --set overrides of one variant: ``policy`` on both robots and the
    perception level (after ``extra``, so they win)."""
    if perception not in PERCEPTION_LEVELS:
        raise ConfigError(f"perception = {perception!r}: allowed: {', '.join(PERCEPTION_LEVELS)}")
    return [*extra, f"perception.level={perception}", *(f"robots.{name}.policy={policy}"
                                                        for name in scenario.robot_names)]


def episode_record(summary: dict[str, Any], kind: str, policies: dict[str, Any], wall: float) -> dict[str, Any]:
    """What the comparison keeps of one episode."""
    rec: dict[str, Any] = {"success": bool(summary["success"]), "zone_violations": summary["zone_violations"],
                           "sim_seconds": summary["sim_seconds"], "wall_seconds": round(wall, 3)}
    if kind == "tower":
        gaps = summary["handoff_gaps"]
        rec["mean_handoff_gap"] = statistics.fmean(gaps) if gaps else None
        rec["handoff_gaps"] = gaps
    else:
        rec["on_time_success"] = summary["imitation_success"]
        rec["placed"] = summary["imitation_placed"]
        rec["late_rounds"] = summary["late_rounds"]
        rec["mean_follow_latency"] = summary["mean_follow_latency"]
        rec["rounds"] = [_round_record(r, policies) for r in summary["round_results"]]
    return rec


def _round_record(r: dict[str, Any], policies: dict[str, Any]) -> dict[str, Any]:
    """One round, with when the follower's internal belief last changed
    (s relative to the leader's release; from the expert's belief log)."""
    out = {k: r[k] for k in ("round", "slot", "chosen_slot", "success", "placed", "late", "follow_latency",
                             "last_aim_change")}
    expert = getattr(policies[r["follower"]], "expert", policies[r["follower"]])
    changes = [t for rnd, t, _ in getattr(expert, "belief_log", []) if rnd == r["round"]]
    lead = r["lead_release_t"]
    out["last_belief_change"] = round(changes[-1] - lead, 4) if changes and lead is not None else None
    return out


_CACHE: dict[tuple, tuple] = {}  # per process: (scenario path, overrides) -> (env, policies)


def run_episode(job: tuple[str, tuple[str, ...], str, int]) -> tuple[str, int, dict[str, Any]]:
    """One episode of one variant; ``job`` = (scenario path, overrides,
    variant name, seed). The env and policies are built once per process."""
    import robot_mirror.mirror  # noqa: F401  (registers mirror and its lesions)
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.policies import build_policies, rollout

    path, overrides, variant, seed = job
    key = (path, overrides)
    if key not in _CACHE:
        scenario = load_scenario(path, list(overrides))
        env = TurnTakingEnv(scenario)
        _CACHE[key] = (env, build_policies(env, scenario))
    env, policies = _CACHE[key]
    start = time.perf_counter()
    summary = rollout(env, policies, seed)
    wall = time.perf_counter() - start
    return variant, seed, episode_record(summary, env.scenario.task.kind, policies, wall)


def run_variants(path: str, policies: list[str], seeds: list[int], *, perception: str = "default",
                 overrides: Iterable[str] = (), workers: int = 1,
                 progress=None) -> dict[str, dict[int, dict[str, Any]]]:
    """Every variant on every seed: ``{variant: {seed: episode record}}``."""
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.policies import check_policies

    import robot_mirror.mirror  # noqa: F401  (registers mirror and its lesions)

    base = load_scenario(path, list(overrides))
    jobs = []
    for policy in policies:
        ov = tuple(variant_overrides(base, policy, perception, overrides))
        check_policies(load_scenario(path, list(ov)), inprocess=True)  # one clear line, before any run
        jobs += [(path, ov, policy, seed) for seed in seeds]
    out: dict[str, dict[int, dict[str, Any]]] = {p: {} for p in policies}
    if workers <= 1:
        results = map(run_episode, jobs)
    else:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(min(workers, 2))
        results = pool.imap_unordered(run_episode, jobs)
    try:
        for n, (variant, seed, rec) in enumerate(results, 1):
            out[variant][seed] = rec
            if progress is not None:
                progress(n, len(jobs), variant, seed, rec)
    finally:
        if workers > 1:
            pool.close()
            pool.join()
    return out


# ------------------------------------------------------------- statistics
def bootstrap_ci(values: Iterable[float], *, resamples: int = RESAMPLES, seed: int = 0,
                 level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: resample the values with
    replacement ``resamples`` times (seeded), take the (1-level)/2 and
    (1+level)/2 quantiles of the resampled means. One value: (v, v)."""
    x = np.asarray(list(values), float)
    if x.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def describe(values: list[float | None], **kw) -> dict[str, Any]:
    """Mean and bootstrap interval of the finite values (episodes without a
    figure, e.g. a tower episode with no hand-off, are counted, not used)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    lo, hi = bootstrap_ci(finite, **kw)
    return {"mean": statistics.fmean(finite) if finite else None, "ci95": [lo, hi] if finite else None,
            "n": len(finite), "missing": len(values) - len(finite)}


def paired_difference(a: dict[int, float | None], b: dict[int, float | None], **kw) -> dict[str, Any]:
    """``a - b`` over the seeds both have a figure for: mean and bootstrap interval."""
    seeds = sorted(s for s in set(a) & set(b) if a[s] is not None and b[s] is not None)
    diffs = [float(a[s]) - float(b[s]) for s in seeds]
    out = describe(diffs, **kw)
    out["seeds"] = seeds
    out["per_seed"] = diffs
    return out


def best_baseline(means: dict[str, float | None], better: str) -> str | None:
    """The best mean headline among the baselines: every variant but ``mirror``
    itself and the ceilings (so the lesioned network counts as a baseline)."""
    pool = {k: v for k, v in means.items() if k not in CEILINGS and k != "mirror" and v is not None}
    if not pool:
        return None
    return (min if better == "lower" else max)(pool, key=pool.get)


def summarise(runs: dict[str, dict[int, dict[str, Any]]], kind: str, **kw) -> dict[str, Any]:
    """Per variant figures and the mirror's paired advantage over the best baseline."""
    key, better = HEADLINES[kind]
    variants: dict[str, Any] = {}
    for name, per_seed in runs.items():
        seeds = sorted(per_seed)
        recs = [per_seed[s] for s in seeds]
        walls = [r["wall_seconds"] for r in recs]
        variants[name] = {
            "headline": describe([r[key] for r in recs], **kw),
            "per_episode": {s: per_seed[s][key] for s in seeds},
            "success_rate": statistics.fmean(r["success"] for r in recs),
            "zone_violations": sum(r["zone_violations"] for r in recs),
            "wall_seconds_per_episode": round(statistics.fmean(walls), 2),
            "episodes": [{"seed": s, **per_seed[s]} for s in seeds],
        }
        if kind == "imitation":
            variants[name]["late_rounds"] = sum(r["late_rounds"] for r in recs)
            variants[name]["placed_rounds"] = sum(r["placed"] for r in recs)
    means = {n: v["headline"]["mean"] for n, v in variants.items()}
    baseline = best_baseline(means, better)
    advantage = None
    if "mirror" in runs and baseline is not None:
        advantage = {"baseline": baseline,
                     **paired_difference(variants["mirror"]["per_episode"], variants[baseline]["per_episode"], **kw)}
    return {"headline": key, "better": better, "variants": variants, "best_baseline": baseline,
            "mirror_advantage": advantage, "mirror_beats_every_baseline": beats_every_baseline(variants, better)}


def beats_every_baseline(variants: dict[str, Any], better: str) -> bool | None:
    """The issue's criterion: the mirror's 95 % interval lies strictly on the
    better side of every non-oracle baseline's interval (no overlap)."""
    if "mirror" not in variants or not variants["mirror"]["headline"]["ci95"]:
        return None
    lo, hi = variants["mirror"]["headline"]["ci95"]
    for name, v in variants.items():
        if name == "mirror" or name in CEILINGS or not v["headline"]["ci95"]:
            continue
        b_lo, b_hi = v["headline"]["ci95"]
        if (better == "higher" and lo <= b_hi) or (better == "lower" and hi >= b_lo):
            return False
    return True


def compare(path: str, policies: list[str], *, episodes: int, seed: int = 0, perception: str = "default",
            overrides: Iterable[str] = (), workers: int = 1, resamples: int = RESAMPLES,
            progress=None) -> dict[str, Any]:
    """Run and summarise the comparison (what ``bench/mirror_behaviour.py`` writes)."""
    from robot_mirror.config.scenario import load_scenario

    overrides = list(overrides)
    kind = load_scenario(path, overrides).task.kind
    seeds = seeds_for(episodes, seed)
    start = time.perf_counter()
    runs = run_variants(path, policies, seeds, perception=perception, overrides=overrides, workers=workers,
                        progress=progress)
    result = summarise(runs, kind, resamples=resamples, seed=seed)
    result.update({"task": kind, "scenario": path, "policies": list(policies), "seeds": seeds,
                   "perception": {"level": perception,
                                  **dict(zip(("noise_std", "delay_ticks", "drop_rate"), PERCEPTION_LEVELS[perception]))},
                   "overrides": overrides, "workers": workers,
                   "interval": f"{LEVEL:.0%} percentile bootstrap of the mean over episodes, {resamples} "
                               f"resamples, numpy default_rng({seed})",
                   "wall_seconds": round(time.perf_counter() - start, 1)})
    return result
