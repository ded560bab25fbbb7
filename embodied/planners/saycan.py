"""SayCan with Inner Monologue: a language model scores every skill call the scene allows, each score is
weighted by the skill's affordance (how likely it is to succeed from the current state), the best is
executed, and its outcome is written back into the prompt before the next step."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embodied.instructions import cannot_reason
from embodied.llm.base import LanguageModel, load_language_model
from embodied.planners.base import Decision, ScoredOption
from embodied.planners.prompting import (
    HEADER,
    Step,
    episode_text,
    example_bank,
    option_text,
    retrieve,
)
from envs.errors import EmbodiedError
from envs.scene import LOCATION_NAMES, SceneState
from envs.tasks import Task
from skills import SkillCall, SkillResult, get_skill

log = logging.getLogger(__name__)


@dataclass
class SayCanConfig:
    """What the planner reads and how it ranks. Every field is an ablation knob of `embodied eval`."""

    llm: str = "smollm2"  # language-model spec (see embodied.llm.base.load_language_model)
    adapter: str = "default"  # LoRA adapter folder; "default": the shipped one for the embedded model; "none"
    affordance: bool = True  # weight by skill affordances (False: language model alone)
    feedback: bool = True  # write each step's outcome into the prompt (Inner Monologue)
    examples: int = -1  # few-shot examples retrieved from the generator's bank; -1: 0 with an adapter, else 6
    length_norm: bool = False  # mean log-prob per token instead of the sum
    min_affordance: float = 0.05  # options below this are not offered at all (saves scoring)

    def __post_init__(self) -> None:
        if self.examples < -1:
            raise EmbodiedError(f"SayCanConfig.examples must be >= 0 (or -1 for automatic), got {self.examples}")
        if not 0.0 <= self.min_affordance < 1.0:
            raise EmbodiedError(f"SayCanConfig.min_affordance must be in [0, 1), got {self.min_affordance}")


def candidate_calls(state: SceneState) -> list[SkillCall]:
    """Every pick-and-place the scene can name (blocks onto blocks, bowls, locations), or every place
    while a block is held."""
    targets = state.blocks + state.bowls + list(LOCATION_NAMES)
    if state.held is not None:
        return [SkillCall("place", {"target": t}) for t in targets if t != state.held]
    return [SkillCall("pick_and_place", {"block": b, "target": t}) for b in state.blocks for t in targets if t != b]


class SayCanPlanner:
    """`Planner` seam implementation; also counts language-model calls and tokens per episode."""

    name = "saycan"

    def __init__(self, config: SayCanConfig | None = None, lm: LanguageModel | None = None, **overrides: Any) -> None:
        self.config = config or SayCanConfig(**overrides)
        self.lm = lm if lm is not None else load_language_model(self.config.llm)
        self.adapter = self._load_adapter()
        if self.config.examples == -1:
            self.config.examples = 0 if self.adapter else 6
        self.task: Task | None = None
        self.history: list[Step] = []
        self.prefix = ""

    def _load_adapter(self) -> str | None:
        """Fine-tuned next-step choice (see embodied.train_planner); only for the model it was trained on."""
        from embodied.train_planner import DEFAULT_ADAPTER
        from policies.lora import load_adapter

        spec = self.config.adapter
        if spec == "none" or (spec == "default" and self.config.llm != "smollm2"):
            return None
        folder = DEFAULT_ADAPTER if spec == "default" else Path(spec)
        model = getattr(self.lm, "model", None)
        if model is None:
            raise EmbodiedError(f"adapter {folder} needs a local transformers model, not {self.lm.name!r}")
        load_adapter(model, folder)
        reset = getattr(self.lm, "reset_cache", None)
        if reset:
            reset()
        return str(folder)

    def reset(self, task: Task) -> None:
        self.task = task
        self.history = []
        shots = retrieve(task.instruction, example_bank(), self.config.examples) if self.config.examples else []
        self.prefix = "\n\n".join([HEADER] + [e.text(self.config.feedback) for e in shots]) + "\n\n"
        self.lm.reset_stats()

    def prompt(self, state: SceneState) -> str:
        objects = state.blocks + state.bowls
        return self.prefix + episode_text(self.task.instruction, objects, self.history, self.config.feedback)

    def step(self, state: SceneState) -> Decision:
        if self.task is None:
            raise EmbodiedError("SayCanPlanner.step called before reset(task)")
        if not self.history:
            reason = cannot_reason(self.task.instruction, state.blocks + state.bowls)
            if reason is not None:
                return Decision(None, reason=reason)
        calls = candidate_calls(state)
        affordances = np.array([self._affordance(state, c) for c in calls])
        keep = affordances >= self.config.min_affordance if self.config.affordance else np.ones(len(calls), bool)
        calls = [c for c, k in zip(calls, keep, strict=True) if k] + [SkillCall("done")]
        affordances = np.append(affordances[keep], 1.0)
        scores = self.lm.score(self.prompt(state), [option_text(c) for c in calls])
        llm = scores.mean if self.config.length_norm else scores.logprob_sum
        p_llm = np.exp(llm - llm.max())
        p_llm /= p_llm.sum()
        combined = p_llm * (affordances if self.config.affordance else 1.0)
        options = [ScoredOption(c, option_text(c).strip(" ."), float(p), float(a), float(s))
                   for c, p, a, s in zip(calls, p_llm, affordances, combined, strict=True)]
        best = int(np.argmax(combined))
        return Decision(calls[best], options)

    def feedback(self, call: SkillCall, result: SkillResult, state: SceneState) -> None:
        self.history.append(Step(call, result.success, result.reason))

    def _affordance(self, state: SceneState, call: SkillCall) -> float:
        skill = get_skill(call.name)
        return float(skill.affordance(state, skill.params(call.args)))

    def episode_stats(self) -> dict[str, Any]:
        s = self.lm.stats
        return {"llm_calls": s.requests, "llm_forwards": s.forwards, "llm_tokens": s.tokens}
