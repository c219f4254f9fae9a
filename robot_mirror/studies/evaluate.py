"""``robot-mirror evaluate``: is the network a mirror system, and does it help?

For each scenario (paired with the checkpoint trained on its task) and each
perception level (``default``, ``stress``):

1. **offline**, on demonstrations recorded now with unseen seeds (half the
   episodes fit the probes and heuristics, the other half are scored): the
   scorecard of :mod:`robot_mirror.studies.scorecard` for every training seed
   of the checkpoint and of its no-alignment ablation (siblings named
   ``STEM_seedN.pt``, ``STEM_noalign.pt``, ``STEM_noalign_seedN.pt``), the
   ``_no_alignment`` figures and ``alignment_effect_over_seed_std``;
2. **online** (``--online-episodes``), in process on the same unseen seeds:
   the task's headline metric for ``mirror`` against the best constant, the
   public-information heuristic, the lesioned network and the oracle, each
   with a 95% CI, and ``mirror_advantage`` over the best non-oracle
   (:mod:`robot_mirror.studies.behaviour`).

Writes ``OUT/metrics.json`` (docs/mirror.md, "Metrics") and PNG plots.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from robot_mirror.config.scenario import load_scenario
from robot_mirror.errors import RobotMirrorError
from robot_mirror.files import write_bytes_atomic
from robot_mirror.mirror.checkpoint import load_checkpoint
from robot_mirror.mirror.dataset import load_demos
from robot_mirror.mirror.features import BODY_DIM
from robot_mirror.studies.scorecard import scorecard

LEVELS = ("default", "stress")
SEED_KEYS = ("probe_self_to_obs", "mirror_index_corr", "mirror_index", "early_recognition_at_half",
             "recognition_lead_advantage_s",
             "lesion_top_vs_random_own", "lesion_top_vs_random_obs")


def checkpoint_family(path: Path) -> dict[str, list[Path]]:
    """The shipped checkpoint, its other training seeds, and its no-alignment ablation's seeds."""
    stem, suffix, folder = path.stem, path.suffix, path.parent
    aligned = [path] + sorted(folder.glob(f"{stem}_seed*{suffix}"))
    ablation = sorted(folder.glob(f"{stem}_noalign{suffix}")) + sorted(folder.glob(f"{stem}_noalign_seed*{suffix}"))
    return {"aligned": aligned, "no_alignment": ablation}


def record_demos(scenario_path: str, episodes: int, seed: int, out: Path, overrides: list[str]):
    from robot_mirror.studies.demos import run_demos

    scenario = load_scenario(scenario_path, [*overrides, f"seed={seed}"])
    for r in scenario.robots:
        r.policy = "expert"
    run_demos(scenario, episodes=episodes, out=out, progress=False)
    return load_demos(out)


def offline_level(family: dict[str, list[Path]], demos, *, permutations: int, seed: int) -> dict[str, Any]:
    """The scorecard of every seed of both families on one set of demonstrations."""
    n = demos.n_episodes
    fit_eps, test_eps = list(range(0, n, 2)), list(range(1, n, 2)) or [0]
    fit, test = demos.streams_of(fit_eps), demos.streams_of(test_eps)
    cards: dict[str, list[dict]] = {}
    for kind, paths in family.items():
        cards[kind] = []
        for i, path in enumerate(paths):
            model = load_checkpoint(path).model.eval()
            first = kind == "aligned" and i == 0
            card = scorecard(model, fit, test, hz=demos.control_hz, seed=seed, controls=first,
                             permutations=permutations if first else min(permutations, 200),
                             lesion=kind == "aligned")
            card["checkpoint"] = str(path)
            cards[kind].append(card)
    out = dict(cards["aligned"][0])
    out["seeds"] = [{k: c.get(k) for k in ("checkpoint", *SEED_KEYS)} for c in cards["aligned"]]
    out["seeds_no_alignment"] = [{k: c.get(k) for k in ("checkpoint", *SEED_KEYS)} for c in cards["no_alignment"]]
    out.update(alignment_summary(cards["aligned"], cards["no_alignment"]))
    out["evaluation_episodes"] = {"fit": fit_eps, "scored": test_eps, "seeds": [e["seed"] for e in demos.meta["episodes"]]}
    return out


def alignment_summary(aligned: list[dict], ablated: list[dict]) -> dict[str, Any]:
    """``_no_alignment`` figures (mean over the ablation's seeds) and the aligned-minus-
    unaligned probe difference in units of the aligned seeds' standard deviation."""
    out: dict[str, Any] = {}
    for key in ("probe_self_to_obs", "mirror_index_corr", "mirror_index"):
        vals = [c[key] for c in ablated if c.get(key) is not None]
        out[f"{key}_no_alignment"] = float(np.mean(vals)) if vals else None
    a = np.array([c["probe_self_to_obs"] for c in aligned], float)
    b = np.array([c["probe_self_to_obs"] for c in ablated], float)
    if len(a) >= 2 and len(b):
        std = float(np.std(a, ddof=1))
        out["alignment_effect"] = float(a.mean() - b.mean())
        out["seed_std"] = std
        out["alignment_effect_over_seed_std"] = float((a.mean() - b.mean()) / max(std, 1e-6))
    else:
        out["alignment_effect_over_seed_std"] = None
    return out


def online_baselines(scenario_path: str, kind: str, level: str, episodes: int, seed: int, checkpoint: Path,
                     overrides: list[str], workers: int) -> dict[str, Any]:
    """Every variant of the task on the same unseen seeds; the mirror runs ``checkpoint``."""
    from robot_mirror.studies.behaviour import EVALUATION_VARIANTS, compare

    names = load_scenario(scenario_path, overrides).robot_names
    ck = [f"robots.{n}.checkpoint={checkpoint.resolve()}" for n in names]
    result = compare(scenario_path, EVALUATION_VARIANTS[kind], episodes=episodes, seed=seed, perception=level,
                     overrides=[*overrides, *ck], workers=workers)
    for v in result["variants"].values():
        v.pop("episodes", None)  # per-round detail stays in the bench's JSON, not metrics.json
    return result


def inference_ms(model, ticks: int = 2000) -> float:
    """Median wall time of one online tick (both streams), one thread."""
    torch.set_num_threads(1)
    body = torch.zeros(1, BODY_DIM)
    state, times = None, []
    with torch.inference_mode():
        for i in range(ticks + 200):
            t0 = time.perf_counter()
            state = model.step(body, body, state)
            if i >= 200:
                times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def evaluate(checkpoints: list[str], scenarios: list[str], *, episodes: int, out: str | Path, seed: int = 0,
             overrides: list[str] | None = None, online_episodes: int = 0, levels=LEVELS,
             permutations: int = 1000, workers: int = 1, progress: bool = True) -> dict[str, Any]:
    overrides = list(overrides or [])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_task = {}
    for c in checkpoints:
        ck = load_checkpoint(c)
        by_task[ck.info["data"].get("task")] = ck
    say: Callable = print if progress else (lambda *a, **k: None)
    tasks: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="robot_mirror_eval_") as tmp:
        for scenario_path in scenarios:
            kind = load_scenario(scenario_path, overrides).task.kind
            ckpt = by_task.get(kind)
            if ckpt is None:
                raise RobotMirrorError(f"{scenario_path}: no checkpoint given for task '{kind}' "
                                       f"(checkpoints are for: {', '.join(map(str, sorted(by_task)))})")
            family = checkpoint_family(ckpt.path)
            tasks[kind] = {"checkpoint": str(ckpt.path), "scenario": scenario_path,
                           "family": {k: [str(p) for p in v] for k, v in family.items()}}
            for level in levels:
                lv = [*overrides, f"perception.level={level}"]
                say(f"[{kind}/{level}] recording {episodes} evaluation episode(s) (seeds from {seed})", flush=True)
                demos = record_demos(scenario_path, episodes, seed, Path(tmp) / f"{kind}_{level}", lv)
                say(f"[{kind}/{level}] offline metrics over {sum(map(len, family.values()))} checkpoint(s)", flush=True)
                result = offline_level(family, demos, permutations=permutations, seed=seed)
                if online_episodes:
                    say(f"[{kind}/{level}] online: {online_episodes} episode(s) per variant", flush=True)
                    result["baselines"] = online_baselines(scenario_path, kind, level, online_episodes, seed,
                                                           ckpt.path, overrides, workers)
                tasks[kind][level] = result
    metrics = headline(tasks, inference_ms(next(iter(by_task.values())).model.eval()))
    metrics["tasks"] = tasks
    metrics["seed"], metrics["episodes"], metrics["online_episodes"] = seed, episodes, online_episodes
    from robot_mirror.studies.plots import plot_all

    metrics["plots"] = plot_all(out, tasks)
    text = json.dumps(_finite(metrics), indent=2, default=_json_default, allow_nan=False) + "\n"
    write_bytes_atomic(out / "metrics.json", text.encode())
    return metrics


HEADLINE_KEYS = ("probe_self_to_obs", "probe_self_to_self", "probe_self_to_obs_chance",
                 "probe_self_to_obs_no_alignment", "probe_self_to_obs_untrained", "mirror_index_corr",
                 "mirror_index_corr_p_scrambled",
                 "mirror_index_corr_p_shuffled", "mirror_index_corr_no_alignment", "mirror_index_corr_untrained",
                 "mirror_index", "mirror_index_no_alignment", "heldout_action_recognition",
                 "lesion_top_vs_random_own", "lesion_top_vs_random_obs", "early_recognition_at_half",
                 "early_recognition_at_half_public_heuristic", "recognition_lead_advantage_s",
                 "alignment_effect_over_seed_std")


def headline(tasks: dict[str, Any], ms: float) -> dict[str, Any]:
    """Top-level keys: each metric as {task: {level: value}}, then the rest."""
    out: dict[str, Any] = {}
    for key in HEADLINE_KEYS:
        out[key] = {t: {lv: _head(r[lv].get(key)) for lv in LEVELS if lv in r} for t, r in tasks.items()}
    out["baselines"] = {t: {lv: r[lv]["baselines"] for lv in LEVELS if lv in r and "baselines" in r[lv]}
                        for t, r in tasks.items()}
    out["mirror_advantage"] = {t: {lv: b.get("mirror_advantage") for lv, b in v.items()}
                               for t, v in out["baselines"].items()}
    out["mirror_beats_every_baseline"] = {t: {lv: b.get("mirror_beats_every_baseline") for lv, b in v.items()}
                                          for t, v in out["baselines"].items()}
    out["seeds"] = {t: {lv: r[lv]["seeds"] for lv in LEVELS if lv in r} for t, r in tasks.items()}
    out["inference_ms_per_tick"] = ms
    return out


def _head(value):
    if isinstance(value, dict) and "partner" in value:
        return value["partner"]
    return value


def _finite(x):
    """NaN (an empty bin, say) becomes null: metrics.json stays strict JSON."""
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (float, np.floating)) and not np.isfinite(x):
        return None
    return x


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(type(x).__name__)
