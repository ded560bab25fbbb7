"""PaLM-E-style planner: SayCan's options scored by a language model that reads the scene as soft tokens
(camera, per-object point clouds, proprioception; see policies.palme) instead of an "Objects:" text line, with
optional affordance weighting and Inner Monologue feedback lines.

Per-object point segments come from ``obs["points"]`` (the top camera's world-frame points) cropped in a column
of kind-dependent radius around each object the state names (``policies.palme.object_segments``): the same for
ground-truth and perceived states, and it needs nothing but ``obs`` and ``state``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embodied.grounding import AffordanceProvider, make_affordance
from embodied.instructions import cannot_reason, positions
from embodied.llm.base import LanguageModel
from embodied.planners.base import Decision, ScoredOption, option, saycan_combine
from embodied.planners.guard import GoalGuard
from embodied.planners.prompting import Step, feedback_text, option_text
from embodied.planners.saycan import candidate_calls
from embodied.world.errors import EmbodiedError
from embodied.world.scene import SceneState, suggest
from embodied.world.tasks import Task
from skills import SkillCall, SkillResult, call_text
from skills.registry import skill_names

if TYPE_CHECKING:
    import torch

    from policies.palme import PalmEConfig

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent.parent / "policies" / "palme"
ALL_MODALITIES = {"camera": True, "pointcloud": True, "proprio": True}


def modality_flags(drop: Sequence[str] = ()) -> dict[str, bool]:
    """Which modalities the prompt carries once those in ``drop`` are left out (ablations)."""
    return {m: m not in drop for m in ALL_MODALITIES}


def _history_lines(history: Sequence[Step], feedback: bool, last_feedback: bool = True) -> list[str]:
    lines = []
    for i, step in enumerate(history, 1):
        say = feedback and (last_feedback or i < len(history))
        lines.append(f"{i}. {call_text(step.call)}." + (f" {feedback_text(step)}" if say else ""))
    return lines


def _scene_line(n_objects: int, flags: dict[str, bool] | None, n_image: int, obj_tokens: int) -> list[str]:
    from policies.palme import scene_text

    flags = {**ALL_MODALITIES, **(flags or {})}
    line = scene_text(n_image, n_objects, flags["camera"], flags["pointcloud"], flags["proprio"], obj_tokens)
    return [line] if line else []


def planning_prompt(instruction: str, history: Sequence[Step], n_objects: int, feedback: bool = True,
                    flags: dict[str, bool] | None = None, n_image: int = 4, obj_tokens: int = 2) -> str:
    """``Scene:<img>.. Objects:<obj><obj>,... Robot:<state>.`` then the request, the steps so far, and ``"N."``."""
    lines = _scene_line(n_objects, flags, n_image, obj_tokens) + [f"Request: {instruction.strip().rstrip('.')}."]
    lines += _history_lines(history, feedback) + [f"{len(history) + 1}."]
    return "\n".join(lines)


def question_prompt(question: str, history: Sequence[Step], n_objects: int, flags: dict[str, bool] | None = None,
                    n_image: int = 4, obj_tokens: int = 2) -> str:
    """The scene, the steps so far (the last one without its outcome), then ``Question: ...\\nAnswer:``."""
    lines = _scene_line(n_objects, flags, n_image, obj_tokens) + _history_lines(history, True, last_feedback=False)
    return "\n".join(lines + [f"Question: {question}", "Answer:"])


def load_frozen_lm(llm: str = "smollm2", adapter: str = "default", merge: bool = True) -> LanguageModel:
    """The LM with an adapter ("default": the shipped planner LoRA, "none", or a folder), every parameter frozen;
    ``merge`` folds the adapter into the weights (fast inference), ``merge=False`` keeps it to fine-tune it."""
    from embodied.llm.base import load_language_model
    from policies.lora import adapter_folder, load_adapter

    lm = load_language_model(llm)
    folder = adapter_folder(adapter, llm)
    if folder is not None:
        load_adapter(lm.model, folder, merge=merge)
    for p in lm.model.parameters():
        p.requires_grad_(False)
    lm.model.eval()
    if hasattr(lm, "reset_cache"):
        lm.reset_cache()
    return lm


def load_lm_for(checkpoint: Path | str, config: PalmEConfig, llm: str = "", merge: bool = True) -> LanguageModel:
    """The LM a PaLM-E checkpoint speaks to: its adapter is the checkpoint's own (``adapter == "checkpoint"``,
    the fine-tuned variant), a named one, or none; frozen either way. ``llm`` overrides the model spec."""
    adapter = str(checkpoint) if config.adapter == "checkpoint" else config.adapter
    return load_frozen_lm(llm or config.llm, adapter, merge)


@dataclass
class PalmEPlannerConfig:
    """What the planner reads and how it ranks; ``drop`` removes modalities (the ablations)."""

    checkpoint: str = option(str(DEFAULT_CHECKPOINT), "encoder checkpoint folder (default: policies/palme)")
    llm: str = option("", "language model; '' (default): the one the encoders were trained with")
    drop: tuple[str, ...] = option((), "modalities to leave out of the prompt (ablations)",
                                   choices=tuple(ALL_MODALITIES))
    affordance: bool = option(True, "weight by skill affordances (off: rank by the language model alone)")
    feedback: bool = option(True, "write each step's outcome into the prompt (Inner Monologue)")
    length_norm: bool = option(False, "score options by mean log-prob per token instead of the sum")
    min_affordance: float = option(0.05, "options below this affordance are not offered at all")

    def __post_init__(self) -> None:
        self.drop = tuple(self.drop)
        bad = [m for m in self.drop if m not in ALL_MODALITIES]
        if bad:
            raise EmbodiedError(f"PalmEPlannerConfig.drop: unknown modality {bad[0]!r}"
                                f"{suggest(bad[0], list(ALL_MODALITIES))}; modalities: {', '.join(ALL_MODALITIES)}")
        if not 0.0 <= self.min_affordance < 1.0:
            raise EmbodiedError(f"PalmEPlannerConfig.min_affordance must be in [0, 1), got {self.min_affordance}")

    @property
    def flags(self) -> dict[str, bool]:
        return modality_flags(self.drop)


class PalmEPlanner:
    """`Planner` seam implementation reading sensors through soft tokens; needs ``obs`` at every step."""

    name = "palme"
    config_class = PalmEPlannerConfig

    def __init__(self, config: PalmEPlannerConfig | None = None, lm: LanguageModel | None = None,
                 affordances: AffordanceProvider | None = None, **overrides: Any) -> None:
        from policies.palme import MultimodalPrefix, PalmEEncoders

        self.config = config or PalmEPlannerConfig(**overrides)
        self.encoders = PalmEEncoders.load(self.config.checkpoint)
        cfg = self.encoders.config
        if lm is None:
            lm = load_lm_for(self.config.checkpoint, cfg, self.config.llm)
        if lm.hidden_size != cfg.hidden_size:
            raise EmbodiedError(f"encoders in {self.config.checkpoint} emit {cfg.hidden_size}-wide tokens but "
                                f"{lm.name!r} embeds {lm.hidden_size}-wide: train encoders for this model")
        self.lm = lm
        self.prefix = MultimodalPrefix(lm)
        self.n_points = cfg.pointcloud.n_points
        self.n_image = cfg.camera.n_tokens
        self.obj_tokens = cfg.pointcloud.n_tokens
        self.affordances = affordances or make_affordance("analytic")
        self.task: Task | None = None
        self.history: list[Step] = []
        self.guard = GoalGuard()

    def reset(self, task: Task) -> None:
        self.task = task
        self.history = []
        self.guard.reset(task.goal)
        self.lm.reset_stats()

    def prefix_embeds(self, state: SceneState, obs: dict[str, Any], prompt: str) -> torch.Tensor:
        """The prompt's input embeddings (T, H) with the scene's encodings in place of its placeholders."""
        import torch

        from policies.palme import scene_features

        with torch.inference_mode():
            enc = self.encoders.encode(scene_features(obs, state, self.n_points))
            return self.prefix.embed(prompt, {ph: v for ph, v in enc.items() if ph in prompt})

    def step(self, state: SceneState, obs: dict[str, Any] | None = None) -> Decision:
        if self.task is None:
            raise EmbodiedError("PalmEPlanner.step called before reset(task)")
        if obs is None:
            raise EmbodiedError("the palme planner reads sensors: step(state, obs) needs obs (rgb, points, proprio); "
                                "run episodes with sensing (embodied.runtime.sensing.Sensing)")
        if not self.history:
            reason = cannot_reason(self.task.instruction, state.blocks + state.bowls, positions(state))
            if reason is not None:
                return Decision(None, reason=reason)
        if self.guard.satisfied(state):  # the goal holds on what the robot sees: stop without asking the model
            return Decision(SkillCall("done"), reason="the goal holds")
        calls = candidate_calls(state, self.task.goal)
        affordances = np.asarray(self.affordances.scores(obs, state, calls), np.float64)
        allowed, notes = self.guard.allowed(state, calls)
        keep = affordances >= self.config.min_affordance if self.config.affordance else np.ones(len(calls), bool)
        keep &= np.asarray(allowed, bool)
        notes = [n for n, k in zip(notes, keep, strict=True) if k] + [""]
        calls = [c for c, k in zip(calls, keep, strict=True) if k] + [SkillCall("done")]
        done_ok = self.guard.done_allowed(state)
        affordances = np.append(affordances[keep], 1.0 if done_ok else 0.0)
        if not done_ok and self.guard.stuck(state, calls[:-1]):
            return Decision(None, reason=self.guard.blocking_reason(state))
        prompt = planning_prompt(self.task.instruction, self.history, len(state.objects), self.config.feedback,
                                 self.config.flags, self.n_image, self.obj_tokens)
        scores = self.lm.score_embeds(self.prefix_embeds(state, obs, prompt), [option_text(c) for c in calls])
        raw = scores.mean if self.config.length_norm else scores.logprob_sum
        p_llm, combined = saycan_combine(raw, affordances if self.config.affordance else 1.0)
        if not done_ok:  # a "done" while the goal is unmet is overruled
            combined[-1] = 0.0
        options = [ScoredOption(c, option_text(c).strip(" ."), float(p), float(a), float(s))
                   for c, p, a, s in zip(calls, p_llm, affordances, combined, strict=True)]
        best = int(np.argmax(combined))
        return Decision(calls[best], options, note=notes[best], prompt=prompt)

    def feedback(self, call: SkillCall, result: SkillResult, state: SceneState) -> None:
        if call.name in skill_names():
            self.history.append(Step(call, result.success, result.reason))
            self.guard.record(call, result)

    def episode_stats(self) -> dict[str, Any]:
        s = self.lm.stats
        return {"llm_calls": s.requests, "llm_forwards": s.forwards, "llm_tokens": s.tokens}
