"""SayCan with Inner Monologue: a language model scores every skill call the scene allows, each score is
weighted by the skill's affordance (how likely it is to succeed from the current state), the best is
executed, and its outcome is written back into the prompt before the next step."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embodied.grounding import AffordanceProvider, make_affordance
from embodied.instructions import cannot_reason, positions
from embodied.llm.base import LanguageModel, load_language_model
from embodied.planners.base import Decision, ScoredOption, option, saycan_combine
from embodied.planners.guard import GoalGuard
from embodied.planners.prompting import (
    HEADER,
    Step,
    episode_text,
    example_bank,
    option_text,
    plan_segments,
    retrieve,
)
from embodied.world.errors import EmbodiedError
from embodied.world.scene import SceneState
from embodied.world.tasks import Task
from skills import SkillCall, SkillResult, get_skill
from skills.registry import candidate_calls as registry_calls
from skills.registry import skill_names

log = logging.getLogger(__name__)


@dataclass
class SayCanConfig:
    """What the planner reads and how it ranks. Every field is an ablation knob of `embodied run/eval`."""

    llm: str = option("smollm2", "language model: smollm2 (embedded), a folder, a hub id, or openai:<model>@<url>")
    adapter: str = option("default", "LoRA adapter folder, 'default' (shipped, embedded model only) or 'none'")
    affordance: bool = option(True, "weight by skill affordances (off: rank by the language model alone)")
    feedback: bool = option(True, "write each step's outcome into the prompt (Inner Monologue)")
    examples: int = option(-1, "few-shot examples retrieved from the generator's bank (-1: 0 with an adapter, else 6)")
    length_norm: bool = option(False, "score options by mean log-prob per token instead of the sum")
    min_affordance: float = option(0.05, "options below this affordance are not offered at all (saves scoring)")
    library: str | None = option(None, "skill library database to retrieve from (None: primitives only)", cli=False)
    top_k: int = option(5, "library skills retrieved per request (Voyager used 5)")
    min_rest: float = option(0.5, "run a library skill when p(rest of its plan, then done | first step) >= this")

    def __post_init__(self) -> None:
        if self.examples < -1:
            raise EmbodiedError(f"SayCanConfig.examples must be >= 0 (or -1 for automatic), got {self.examples}")
        if self.top_k < 1:
            raise EmbodiedError(f"SayCanConfig.top_k must be >= 1, got {self.top_k}")
        if not 0.0 < self.min_rest <= 1.0:
            raise EmbodiedError(f"SayCanConfig.min_rest must be in (0, 1], got {self.min_rest}")
        if not 0.0 <= self.min_affordance < 1.0:
            raise EmbodiedError(f"SayCanConfig.min_affordance must be in [0, 1), got {self.min_affordance}")


def candidate_calls(state: SceneState, goal: Sequence[Sequence] = ()) -> list[SkillCall]:
    """The options: every call the registered skills offer from ``state`` (each skill's ``candidates``), plus
    those only the goal's arguments make sensible (a point in an ``at``); see ``skills.registry``."""
    return registry_calls(state, goal)


class SayCanPlanner:
    """`Planner` seam implementation; also counts language-model calls and tokens per episode."""

    name = "saycan"
    config_class = SayCanConfig

    def __init__(self, config: SayCanConfig | None = None, lm: LanguageModel | None = None,
                 affordances: AffordanceProvider | None = None, **overrides: Any) -> None:
        self.config = config or SayCanConfig(**overrides)
        self.lm = lm if lm is not None else load_language_model(self.config.llm)
        self.adapter = self._load_adapter()
        if self.config.examples == -1:
            self.config.examples = 0 if self.adapter else 6
        self.task: Task | None = None
        self.history: list[Step] = []
        self.prefix = ""
        self.library = None
        if self.config.library:
            from embodied.library.retrieval import Library

            self.library = Library.open(self.config.library, self.config.top_k)
        self.retrieved: list = []
        self.affordances = affordances or make_affordance("analytic")
        self.guard = GoalGuard()

    def _load_adapter(self) -> str | None:
        """Fine-tuned next-step choice (`embodied train planner`); only for the model it was trained on."""
        from policies.lora import adapter_folder, load_adapter

        folder = adapter_folder(self.config.adapter, self.config.llm)
        if folder is None:
            return None
        model = getattr(self.lm, "model", None)
        if model is None:
            raise EmbodiedError(f"adapter {folder} needs a local transformers model, not {self.lm.name!r}")
        load_adapter(model, folder, merge=True)  # folded into the weights: no adapter beside every layer
        reset = getattr(self.lm, "reset_cache", None)
        if reset:
            reset()
        return str(folder)

    def reset(self, task: Task) -> None:
        self.task = task
        self.history = []
        shots = retrieve(task.instruction, example_bank(), self.config.examples) if self.config.examples else []
        self.prefix = "\n\n".join([HEADER] + [e.text(self.config.feedback) for e in shots]) + "\n\n"
        self.retrieved = self.library.retrieve(task.instruction) if self.library is not None else []
        self.guard.reset(task.goal)
        self.lm.reset_stats()

    def prompt(self, state: SceneState) -> str:
        objects = state.blocks + state.bowls
        return self.prefix + episode_text(self.task.instruction, objects, self.history, self.config.feedback)

    def step(self, state: SceneState, obs: dict[str, Any] | None = None) -> Decision:
        if self.task is None:
            raise EmbodiedError("SayCanPlanner.step called before reset(task)")
        if not self.history:
            reason = cannot_reason(self.task.instruction, state.blocks + state.bowls, positions(state))
            if reason is not None:
                return Decision(None, reason=reason)
        if self.guard.satisfied(state):  # the goal holds on what the robot sees: stop without asking the model
            return Decision(SkillCall("done"), reason="the goal holds")
        calls = candidate_calls(state, self.task.goal)
        if obs is not None:
            affordances = np.asarray(self.affordances.scores(obs, state, calls), np.float64)
        else:  # no sensors given (e.g. a bare planner test): the skills' own pre-checks
            affordances = np.array([self._affordance(state, c) for c in calls])
        allowed, notes = self.guard.allowed(state, calls)
        keep = affordances >= self.config.min_affordance if self.config.affordance else np.ones(len(calls), bool)
        keep &= np.asarray(allowed, bool)
        notes = [n for n, k in zip(notes, keep, strict=True) if k] + [""]
        calls = [c for c, k in zip(calls, keep, strict=True) if k] + [SkillCall("done")]
        done_ok = self.guard.done_allowed(state)
        affordances = np.append(affordances[keep], 1.0 if done_ok else 0.0)
        if not done_ok and self.guard.stuck(state, calls[:-1]):  # the goal is unmet and nothing feasible
            return Decision(None, reason=self.guard.blocking_reason(state))  # brings it closer: say what blocks it
        texts: list = [option_text(c) for c in calls]
        instances = self._instances(state, calls)
        start = len(self.history) + 1
        texts += [plan_segments(i.plan, start, self.config.feedback) for i in instances]
        prompt = self.prompt(state)
        scores = self.lm.score(prompt, texts)
        n = len(calls)
        raw = scores.mean if self.config.length_norm else scores.logprob_sum
        p_llm, combined = saycan_combine(raw[:n], affordances if self.config.affordance else 1.0)
        if not done_ok:  # a "done" while the goal is unmet is overruled, with or without affordances
            combined[-1] = 0.0
        options = [ScoredOption(c, option_text(c).strip(" ."), float(p), float(a), float(s))
                   for c, p, a, s in zip(calls, p_llm, affordances, combined, strict=True)]
        best = int(np.argmax(combined))
        chosen = self._choose_skill(instances, scores.logprob_sum, calls, combined, options)
        if chosen is not None:
            return Decision(chosen.call, options, skill=chosen, then_done=True, prompt=prompt)
        return Decision(calls[best], options, note=notes[best], prompt=prompt)

    def _instances(self, state: SceneState, offered: list[SkillCall]) -> list:
        """Library skills bound to this table whose first step is one of the offered calls."""
        if not self.retrieved or state.held is not None or not getattr(self.lm, "supports_segments", False):
            return []
        keys = {c.key() for c in offered}
        return [i for i in self.library.instances(self.retrieved, self.task.instruction, state)
                if i.plan[0].key() in keys]

    def _choose_skill(self, instances: list, logprob: np.ndarray, calls: list[SkillCall], combined: np.ndarray,
                      options: list[ScoredOption]) -> Any:
        """The library skill to run instead of one step, if any: the model must rate its first step close to
        its favourite (combined >= half the best) and believe the rest of the plan, then done, follows
        (p >= min_rest). Among those, the longest plan wins (fewest model calls), then the likeliest."""
        n = len(calls)
        index = {c.key(): k for k, c in enumerate(calls)}
        best = float(combined.max())
        accepted = []
        for j, inst in enumerate(instances):
            first = index[inst.plan[0].key()]
            rest = float(np.exp(logprob[n + j] - logprob[first]))
            p_plan = float(np.exp(logprob[n + j] - np.logaddexp.reduce(logprob[:n])))
            options.append(ScoredOption(inst.call, inst.text(), p_plan, options[first].affordance,
                                        p_plan * options[first].affordance))
            if rest >= self.config.min_rest and combined[first] >= 0.5 * best:
                accepted.append((len(inst.plan), float(logprob[n + j]), -j, inst))
        return max(accepted, key=lambda a: a[:3])[3] if accepted else None

    def feedback(self, call: SkillCall, result: SkillResult, state: SceneState) -> None:
        if call.name in skill_names():
            self.history.append(Step(call, result.success, result.reason))
            self.guard.record(call, result)
        elif not result.success:  # a library skill that could not start: do not offer it again this episode
            self.retrieved = [(r, s) for r, s in self.retrieved if r.name != call.name]

    def _affordance(self, state: SceneState, call: SkillCall) -> float:
        skill = get_skill(call.name)
        return float(skill.affordance(state, skill.params(call.args)))

    def episode_stats(self) -> dict[str, Any]:
        s = self.lm.stats
        return {"llm_calls": s.requests, "llm_forwards": s.forwards, "llm_tokens": s.tokens}
