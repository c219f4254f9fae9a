"""Every offline metric of one network on held-out streams, each with its null.

:func:`scorecard` is what ``robot-mirror train`` stores in a checkpoint and
what ``robot-mirror evaluate`` writes to ``metrics.json`` per perception level
and training seed. The ``_no_alignment`` figures come from a second network
(trained with ``--no-align``) and are filled in by ``evaluate``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from robot_mirror.studies.behaviour import describe
from robot_mirror.studies.head_scores import early_recognition, recognition_leads, turn_end_anticipation, turn_goals
from robot_mirror.studies.heuristics import MeanTurnEnd, SeenToolTarget, TurnCountTarget, best_constant_turn_end
from robot_mirror.mirror.model import LESION_K
from robot_mirror.studies.metrics import RANDOM_LESIONS, collect, conditions, head_accuracy, heldout_recognition
from robot_mirror.studies.probes import mirror_index, transfer_probe, tuning_index, tuning_nulls

PLACE = 4  # segment index of "place" in the demonstrations' vocabulary


def untrained_like(model, seed: int = 12345):
    """A network of the same architecture and normalisation, weights at initialisation."""
    from robot_mirror.mirror.model import MirrorNet

    torch.manual_seed(seed)
    fresh = MirrorNet(model.config)
    fresh.body_norm.load_state_dict(model.body_norm.state_dict())
    fresh.turn_scale.copy_(model.turn_scale)
    return fresh.eval()


def alignment_figures(model, train_streams, test_streams, *, permutations: int, seed: int) -> dict:
    """probe_self_to_obs (fit on training self states, test on held-out observed
    states) and its ceiling (the same probe on held-out self states, over the
    actions the observed test set holds: what the states tell of the actor's
    own action at all), mirror_index_corr with its permutation p-values, CMNI,
    and the per-unit correlations (for the lesion)."""
    n = model.config.n_targets
    train_c = conditions(train_streams, collect(model, train_streams), n)
    test_records = collect(model, test_streams)
    c = conditions(test_streams, test_records, n)
    same = np.isin(c["self_y"], np.unique(c["obs_y"][c["obs_y"] >= 0]))
    probe = transfer_probe(train_c["self_x"], train_c["self_y"], c["obs_x"], c["obs_y"], seed=seed,
                           also=(c["self_x"][same], c["self_y"][same]))
    index, r, classes = tuning_index(c["self_x"], c["self_y"], c["obs_x"], c["obs_y"])
    nulls = tuning_nulls(c["self_x"], c["self_y"], c["obs_x"], c["obs_y"], c["obs_episode"],
                         permutations=permutations, seed=seed)
    seg_self = np.where(c["self_y"] >= 0, c["self_y"] // n, 0)
    seg_obs = np.where(c["obs_y"] >= 0, c["obs_y"] // n, 0)
    cmni = mirror_index(c["self_x"], seg_self, c["obs_x"], seg_obs)
    return {"probe": probe, "index": index, "unit_r": r, "classes": int(classes.size),
            "nulls": nulls, "cmni": cmni["cmni"], "records": test_records}


def lesion_figures(model, streams, records, unit_r: np.ndarray, *, seed: int) -> dict:
    """Drops in own-action decoding and partner recognition when the top-k
    units by tuning correlation are silenced, against k random units
    (``records``: the intact network's run over ``streams``)."""
    n, h = model.config.n_targets, model.config.hidden
    intact = head_accuracy(streams, records, n)
    order = np.argsort(-np.nan_to_num(unit_r, nan=-np.inf))
    top = order[:LESION_K]

    def drops(units) -> dict[str, float]:
        mask = torch.ones(h)
        mask[torch.as_tensor(units)] = 0.0
        acc = head_accuracy(streams, collect(model, streams, lesion=mask), n)
        return {k: intact[k] - acc[k] for k in intact}

    top_drop = drops(top)
    rng = np.random.default_rng(seed)
    rand = [drops(rng.choice(h, LESION_K, replace=False)) for _ in range(RANDOM_LESIONS)]
    rand_drop = {k: float(np.mean([d[k] for d in rand])) for k in intact}

    def ratio(k: str) -> float:
        return float(top_drop[k] / max(rand_drop[k], 0.01))  # a floor of 1 point: a ratio over ~0 means nothing

    return {"k": LESION_K, "intact": intact, "top_drop": top_drop, "random_drop": rand_drop,
            "lesion_top_vs_random_own": ratio("own"), "lesion_top_vs_random_obs": ratio("partner"),
            "mirror_units": [int(u) for u in top]}


def early_figures(model, train_streams, test_streams, records, hz: float) -> dict:
    """The partner's *target* (not its segment count) recognised within the first
    half of its turn, beside the public heuristics (turn counting, the seen tool
    nearest a placement spot), and turn-end anticipation beside its baselines.
    The target is the one the partner places at in that turn (``turn_goals``)."""
    n = model.config.n_targets
    true = [turn_goals(s.partner_target, s.partner_segment, s.partner_turn, PLACE) for s in test_streams]
    turns = [s.partner_turn for s in test_streams]
    mirror = early_recognition([r.obs_target for r in records], true, turns)
    counting = TurnCountTarget.fit(train_streams, PLACE)
    tool = SeenToolTarget.fit(train_streams, n, PLACE)
    heuristic_preds = {name: [h.predict(s) for s in test_streams]
                       for name, h in (("turn_counting", counting), ("seen_tool", tool))}
    heur = {name: early_recognition(p, true, turns)["at_half"] for name, p in heuristic_preds.items()}
    lead = recognition_lead([r.obs_target for r in records], heuristic_preds, true, turns, hz)
    te_true = [s.turn_end for s in test_streams]
    const = best_constant_turn_end(train_streams)
    te = {"mirror": turn_end_anticipation([r.obs_turn_end for r in records], te_true),
          "public_heuristic": turn_end_anticipation([MeanTurnEnd.fit(train_streams, hz).predict(s)
                                                    for s in test_streams], te_true),
          "constant": turn_end_anticipation([np.full(s.ticks, const) for s in test_streams], te_true)}
    return {"early_recognition_at_half": mirror["at_half"], "early_recognition_curve": mirror,
            "early_recognition_at_half_public_heuristic": max(heur.values()),
            "early_recognition_at_half_heuristics": heur, "recognition_lead_s": lead,
            "recognition_lead_advantage_s": lead["mirror_minus_heuristic"]["mean"], "turn_end": te}


def recognition_lead(mirror_pred, heuristic_preds: dict, goals, turns, hz: float) -> dict:
    """How long before the partner's turn ends the network settles on the
    turn's goal, beside the public heuristic that settles earliest on average,
    and their difference paired turn by turn (mean and 95% bootstrap interval
    over turns): does the network recognise the goal *sooner* than public
    information does? Positive is sooner."""
    mine = recognition_leads(mirror_pred, goals, turns, hz)
    theirs = {name: recognition_leads(p, goals, turns, hz) for name, p in heuristic_preds.items()}
    best = max(theirs, key=lambda k: float(np.mean(theirs[k])) if theirs[k] else -1.0)
    diff = [a - b for a, b in zip(mine, theirs[best])]
    return {"mirror": describe(mine), "public_heuristic": best, "heuristic": describe(theirs[best]),
            "mirror_minus_heuristic": describe(diff), "turns": len(mine),
            "heuristics_mean": {k: float(np.mean(v)) if v else None for k, v in theirs.items()}}


def scorecard(model, train_streams, test_streams, *, hz: float, permutations: int = 1000, seed: int = 0,
              controls: bool = True, lesion: bool = True) -> dict:
    """Every offline metric of ``model`` on ``test_streams`` (training streams fit
    the probe and the heuristics), with the untrained control when ``controls``."""
    torch.set_num_threads(1)
    align = alignment_figures(model, train_streams, test_streams, permutations=permutations, seed=seed)
    records = align.pop("records")
    out = {
        "probe_self_to_obs": align["probe"]["balanced_accuracy"],
        "probe_self_to_obs_chance": align["probe"]["chance"],
        "probe_classes": align["probe"]["classes"],
        "probe_self_to_self": align["probe"]["also_balanced_accuracy"],
        "mirror_index_corr": align["index"],
        "mirror_index_corr_p_scrambled": align["nulls"]["p_scrambled"],
        "mirror_index_corr_p_shuffled": align["nulls"]["p_shuffled"],
        "mirror_index_corr_nulls": align["nulls"],
        "mirror_index": align["cmni"],
        "heads": head_accuracy(test_streams, records, model.config.n_targets),
        "heldout_action_recognition": heldout_recognition(test_streams, records, model.config.heldout_codes()),
        "heldout_action_recognition_chance": 1.0 / max(1, (model.config.n_segments - 1) * model.config.n_targets),
        **early_figures(model, train_streams, test_streams, records, hz),
        "ticks": int(sum(s.ticks for s in test_streams)),
    }
    if lesion:
        les = lesion_figures(model, test_streams, records, align["unit_r"], seed=seed)
        out["lesion"] = les
        out["lesion_top_vs_random_own"] = les["lesion_top_vs_random_own"]
        out["lesion_top_vs_random_obs"] = les["lesion_top_vs_random_obs"]
        out["mirror_units"] = les["mirror_units"]
    if controls:
        u = untrained_like(model)
        ua = alignment_figures(u, train_streams, test_streams, permutations=min(permutations, 200), seed=seed)
        out["probe_self_to_obs_untrained"] = ua["probe"]["balanced_accuracy"]
        out["mirror_index_corr_untrained"] = ua["index"]
        out["mirror_index_untrained"] = ua["cmni"]
    return out
