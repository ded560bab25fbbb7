"""Grounding for planners: *can* this skill call work here (affordance) and *did* it work (success detection).

Two implementations of each, behind one interface:

| name       | affordance                                          | success detector                                  |
|------------|-----------------------------------------------------|---------------------------------------------------|
| `analytic` | the skill's own pre-check (`Skill.affordance`), 0/1 | the skill's self-report (`SkillResult.success`)  |
| `learned`  | `policies/affordance` on the top-down point cloud   | `policies/success_detector` on before/after clouds |

The learned models cover `pick_and_place` with an empty hand (what they were trained on); everything else
falls back to the analytic answer (documented per class). They read the observation (``points``,
``proprio``) plus only the *positions of the named objects* from the ``SceneState``, so the same code works
when the state comes from perception. They were trained on pictures taken with the arm at its home pose
(``robot.home()``): a skill leaves the hand hovering over its target, which hides most of the table from the
top camera, so send the hand home before taking the observation you pass in (``Sensing.settle`` does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from embodied.world.errors import EmbodiedError
from embodied.world.scene import LOCATIONS, TABLE_Z, SceneState, suggest
from skills import SkillCall, SkillResult, get_skill
from skills.pick_and_place import PickAndPlace


@runtime_checkable
class AffordanceProvider(Protocol):
    name: str

    def scores(self, obs: dict[str, np.ndarray], state: SceneState, calls: Sequence[SkillCall]) -> np.ndarray:
        """p(success) in [0, 1] per call, (len(calls),) float64."""
        ...


@runtime_checkable
class SuccessDetector(Protocol):
    name: str

    def success(self, before: dict[str, np.ndarray], after: dict[str, np.ndarray], state_before: SceneState,
                call: SkillCall, *, result: SkillResult | None = None) -> float:
        """p(the call succeeded) in [0, 1]. ``result`` is the skill's own report (needed by ``analytic``)."""
        ...


# --------------------------------------------------------------------------- affordances
def _analytic(state: SceneState, call: SkillCall) -> float:
    if call.name == "done":
        return 1.0
    skill = get_skill(call.name)
    return float(skill.affordance(state, skill.params(call.args)))


class AnalyticAffordance:
    """The skill's own pre-check (reach, clear block, free target, room for the hand): 0 or 1."""

    name = "analytic"

    def scores(self, obs: dict[str, np.ndarray], state: SceneState, calls: Sequence[SkillCall]) -> np.ndarray:
        return np.array([_analytic(state, c) for c in calls], np.float64)


def _learnable(state: SceneState, call: SkillCall) -> bool:
    """A call the learned models were trained on: pick_and_place of a present block, empty hand, a known target."""
    if call.name != PickAndPlace.name or state.held is not None:
        return False
    block, target = call.args.get("block"), call.args.get("target")
    obj = state.objects.get(block or "")
    if obj is None or obj.kind != "block" or target == block or not (target in state.objects or target in LOCATIONS):
        return False
    near = [obj] + ([state.objects[target]] if target in state.objects else [])
    # fallen off the table (no floor: it keeps falling) or flung far: outside anything the model has seen
    return all(abs(o.position[2] - TABLE_Z) < 0.5 and math.hypot(*o.position[:2]) < 1.5 for o in near)


class LearnedAffordance:
    """``policies/affordance``: p(pick_and_place succeeds) from heightmap crops at the block and the target,
    all calls in one forward pass. Falls back to the analytic pre-check for every other call: ``place`` (and
    ``pick_and_place`` while the hand holds something), ``pick``, unknown objects; ``done`` scores 1."""

    name = "learned"

    def __init__(self, checkpoint: Path | str | None = None) -> None:
        from policies.grounding import DEFAULT_CHECKPOINTS, load_checkpoint

        self.checkpoint = Path(checkpoint or DEFAULT_CHECKPOINTS["affordance"])
        self.model = load_checkpoint(self.checkpoint, expect_type="affordance")

    def scores(self, obs: dict[str, np.ndarray], state: SceneState, calls: Sequence[SkillCall]) -> np.ndarray:
        from policies.grounding import affordance_inputs, check_points, heightmap_crops, named_position

        out = np.zeros(len(calls), np.float64)
        learn = [i for i, c in enumerate(calls) if _learnable(state, c)]
        for i, c in enumerate(calls):
            if i not in learn:
                out[i] = _analytic(state, c)
        if learn:
            cfg = self.model.config
            check_points(cfg, obs)
            pairs = [(calls[i].args["block"], calls[i].args["target"]) for i in learn]
            names = sorted({n for pair in pairs for n in pair})
            positions = {n: named_position(state, n) for n in names}
            centres = np.stack([positions[n][0][:2] for n in names])  # (U, 2)
            raw = dict(zip(names, heightmap_crops(obs["points"], centres, cfg.crop_cells, cfg.cell_size), strict=True))
            crops, scalars = affordance_inputs(cfg, raw, positions, pairs, obs["proprio"])
            out[learn] = self.model.predict(crops, scalars)
        return out


# --------------------------------------------------------------------------- success detectors
class AnalyticSuccess:
    """The skill's self-report: 1.0 when ``result.success`` else 0.0. Needs ``result`` (the observations are
    not used); raises ``EmbodiedError`` without it."""

    name = "analytic"

    def success(self, before: dict[str, np.ndarray], after: dict[str, np.ndarray], state_before: SceneState,
                call: SkillCall, *, result: SkillResult | None = None) -> float:
        if result is None:
            raise EmbodiedError("the analytic success detector reads the skill's self-report: pass result=SkillResult")
        return float(result.success)


class LearnedSuccess:
    """``policies/success_detector``: p(success) from heightmap crops at the block's start and the target,
    before and after, for ``pick_and_place`` from an empty hand. Every other call falls back to the
    self-report (``result`` then required)."""

    name = "learned"

    def __init__(self, checkpoint: Path | str | None = None) -> None:
        from policies.grounding import DEFAULT_CHECKPOINTS, load_checkpoint

        self.checkpoint = Path(checkpoint or DEFAULT_CHECKPOINTS["success_detector"])
        self.model = load_checkpoint(self.checkpoint, expect_type="success_detector")

    def success(self, before: dict[str, np.ndarray], after: dict[str, np.ndarray], state_before: SceneState,
                call: SkillCall, *, result: SkillResult | None = None) -> float:
        from policies.grounding import (
            call_scalars,
            check_points,
            heightmap_crops,
            named_position,
            success_inputs,
        )

        if not _learnable(state_before, call):
            return AnalyticSuccess().success(before, after, state_before, call, result=result)
        cfg = self.model.config
        check_points(cfg, before, "'before' observation")
        check_points(cfg, after, "'after' observation")
        block, target = call.args["block"], call.args["target"]
        (bp, _), (tp, kind) = named_position(state_before, block), named_position(state_before, target)
        centres = np.stack([bp[:2], tp[:2]])
        raw0 = heightmap_crops(before["points"], centres, cfg.crop_cells, cfg.cell_size)
        raw1 = heightmap_crops(after["points"], centres, cfg.crop_cells, cfg.cell_size)
        crops, scalars = success_inputs(raw0, raw1, block, target, call_scalars(bp, tp, kind, before["proprio"]),
                                        after["proprio"])
        return float(self.model.predict(crops[None], scalars[None])[0])


# --------------------------------------------------------------------------- registries
AFFORDANCES: dict[str, type] = {"analytic": AnalyticAffordance, "learned": LearnedAffordance}
SUCCESS_DETECTORS: dict[str, type] = {"analytic": AnalyticSuccess, "learned": LearnedSuccess}


def make_affordance(name: str, **kwargs: Any) -> AffordanceProvider:
    """``"analytic"`` or ``"learned"`` (``checkpoint=`` a folder, default the shipped one)."""
    if name not in AFFORDANCES:
        raise EmbodiedError(f"unknown affordance provider {name!r}{suggest(name, list(AFFORDANCES))}; "
                            f"known: {', '.join(AFFORDANCES)}")
    return AFFORDANCES[name](**kwargs)


def make_success_detector(name: str, **kwargs: Any) -> SuccessDetector:
    """``"analytic"`` (the skill's self-report) or ``"learned"`` (``checkpoint=`` a folder)."""
    if name not in SUCCESS_DETECTORS:
        raise EmbodiedError(f"unknown success detector {name!r}{suggest(name, list(SUCCESS_DETECTORS))}; "
                            f"known: {', '.join(SUCCESS_DETECTORS)}")
    return SUCCESS_DETECTORS[name](**kwargs)


# --------------------------------------------------------------------------- metrics
def auroc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN when only one class is present."""
    p, y = np.asarray(p, np.float64), np.asarray(y, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sorted_p = p[order]
    i = 0
    while i < len(p):  # average ranks over ties
        j = i
        while j + 1 < len(p) and sorted_p[j + 1] == sorted_p[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """F1, precision, recall, accuracy at ``threshold`` and AUROC of scores ``p`` against labels ``y``."""
    p, y = np.asarray(p, np.float64), np.asarray(y, bool)
    pred = p >= threshold
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    return {"f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4), "precision": round(tp / max(tp + fp, 1), 4),
            "recall": round(tp / max(tp + fn, 1), 4), "accuracy": round(float((pred == y).mean()) if len(y) else 0.0, 4),
            "auroc": round(auroc(p, y), 4), "threshold": float(threshold), "n": len(y)}


def grounding_metrics(dataset: Path | str, affordance: Path | str | None = None,
                      success_detector: Path | str | None = None) -> dict[str, Any]:
    """Held-out quality of grounding on a collected dataset (`embodied train grounding collect`): the
    analytic vs learned affordance against the environment's outcome (F1, AUROC, precision, recall) and the
    learned success detector vs the skill's self-report; also per hard-case subset (accuracy)."""
    from policies.grounding import DEFAULT_CHECKPOINTS, dataset_inputs, load_checkpoint, load_dataset

    data = load_dataset(Path(dataset))
    y = data["label"].astype(bool)
    aff_model = load_checkpoint(Path(affordance or DEFAULT_CHECKPOINTS["affordance"]), expect_type="affordance")
    sd_model = load_checkpoint(Path(success_detector or DEFAULT_CHECKPOINTS["success_detector"]),
                               expect_type="success_detector")
    p_aff = aff_model.predict(*dataset_inputs(aff_model.config, data))
    p_sd = sd_model.predict(*dataset_inputs(sd_model.config, data))
    analytic, report = data["analytic"].astype(np.float64), data["self_report"].astype(np.float64)
    aff = {"analytic": binary_metrics(analytic, y), "learned": binary_metrics(p_aff, y, aff_model.config.threshold)}
    sd = {"self_report": binary_metrics(report, y), "learned": binary_metrics(p_sd, y, sd_model.config.threshold)}
    subsets = {"all": np.ones(len(y), bool), "analytic_refuses": analytic < 0.5,
               "occluded_before": data["occluded"].astype(bool), "occluded_after": data["occluded_after"].astype(bool),
               "grasp_offset": np.abs(data["grasp_offset"]).sum(1) > 0, "low_friction": data["friction_scale"] < 1.0,
               "plain_scene": data["scenario"] == "plain"}
    by_subset = {}
    for name, m in subsets.items():
        if m.any():
            by_subset[name] = {
                "n": int(m.sum()), "positive_rate": round(float(y[m].mean()), 4),
                "affordance_accuracy": {"analytic": round(float(((analytic[m] >= 0.5) == y[m]).mean()), 4),
                                        "learned": round(float(((p_aff[m] >= aff_model.config.threshold) == y[m]).mean()), 4)},
                "success_accuracy": {"self_report": round(float(((report[m] >= 0.5) == y[m]).mean()), 4),
                                     "learned": round(float(((p_sd[m] >= sd_model.config.threshold) == y[m]).mean()), 4)}}
    flat = {f"affordance_{k}_{who}": aff[who][k] for who in aff for k in ("f1", "auroc", "precision", "recall")}
    flat |= {f"success_detector_{k}_{who}": sd[who][k] for who in sd for k in ("f1", "auroc", "precision", "recall")}
    return {"dataset": str(dataset), "n": len(y), "positive_rate": round(float(y.mean()), 4), **flat,
            "affordance": aff, "success_detector": sd, "by_subset": by_subset}
