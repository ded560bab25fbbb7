"""`--planner code`: Code as Policies. The language model writes a short Python program against the skill API
(primitives, scene queries and geometry helpers: ``embodied.planners.programs.HEADER``) for the instruction;
the program is parsed and checked against the API before it runs, then runs in the restricted executor with
the library's budgets, its primitive calls becoming the episode's steps. A program that is refused, runs out
of budget, fails a primitive or ends with the goal unmet comes back to the model as feedback for one rewrite.

The embedded model writes programs through a LoRA adapter fine-tuned on generated instruction -> program
pairs (``embodied train code``, ``policies/code_lora``); without one (``--adapter none``) or with another model
(``--llm``) it writes after retrieved few-shot examples."""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from embodied.library.api import API_METHODS
from embodied.library.executor import SkillCodeError, check_source
from embodied.llm.base import LanguageModel, load_language_model
from embodied.planners.base import Decision, option
from embodied.planners.guard import GoalGuard
from embodied.planners.programs import HEADER, example_bank, prompt_for, retrieve
from embodied.world.errors import EmbodiedError
from embodied.world.predicates import describe, goal_values
from embodied.world.scene import SceneState
from embodied.world.symbolic import abstract
from embodied.world.tasks import Task
from skills import SkillCall, SkillResult

log = logging.getLogger(__name__)
CODE_ADAPTER_NAME = "code_lora"  # policies/code_lora: the shipped program-writing adapter (`embodied train code`)


@dataclass
class CodePlannerConfig:
    """Which model writes the programs and how."""

    llm: str = option("smollm2", "language model: smollm2 (embedded), a folder, a hub id, or openai:<model>@<url>")
    adapter: str = option("default", "LoRA adapter folder, 'default' (policies/code_lora, embedded model only) or "
                          "'none'")
    examples: int = option(-1, "few-shot programs retrieved from the generator's bank (-1: 0 with an adapter, else 4)")
    rewrites: int = option(1, "rewrites after a refused, failed or goal-missing program")
    max_tokens: int = option(200, "longest program the model may write (tokens)")

    def __post_init__(self) -> None:
        if self.examples < -1:
            raise EmbodiedError(f"CodePlannerConfig.examples must be >= 0 (or -1 for automatic), got {self.examples}")
        if self.rewrites < 0:
            raise EmbodiedError(f"CodePlannerConfig.rewrites must be >= 0, got {self.rewrites}")
        if self.max_tokens < 16:
            raise EmbodiedError(f"CodePlannerConfig.max_tokens must be >= 16, got {self.max_tokens}")


@dataclass
class ProgramRecord:
    """A written program, in the shape the episode runs library skills in (``record.code``, ``binding``)."""

    code: str
    name: str = "program"


@dataclass
class Program:
    """The library-skill seam for one written program: the episode runs ``record.code`` with no arguments."""

    record: ProgramRecord
    binding: dict[str, str] = field(default_factory=dict)

    @property
    def call(self) -> SkillCall:
        return SkillCall("program", {})

    def text(self) -> str:
        return "run the written program"


def outcome_kind(reason: str) -> str:
    """A run's or check's failure as one category, for reports: parse / rule / budget / error / primitive /
    goal_unmet / empty."""
    if not reason or reason == "ok":
        return "ok"
    if reason.startswith("parse:") or "SyntaxError" in reason or "syntax" in reason:
        return "parse"
    if reason.startswith("rule:"):
        return "rule"
    if "budget" in reason:
        return "budget"
    if reason.startswith("skill raised"):
        return "error"
    if reason == "goal unmet":
        return "goal_unmet"
    if reason == "empty":
        return "empty"
    return "primitive"


class CodePlanner:
    """`Planner` seam: one program per attempt; the episode runs it; feedback decides a rewrite."""

    name = "code"
    config_class = CodePlannerConfig
    reads_instruction = True  # the episode hands it the instruction as said, not a goal's description

    def __init__(self, config: CodePlannerConfig | None = None, lm: LanguageModel | None = None,
                 **overrides: Any) -> None:
        self.config = config or CodePlannerConfig(**overrides)
        self.lm = lm if lm is not None else load_language_model(self.config.llm)
        self.adapter = self._load_adapter()
        if self.config.examples == -1:
            self.config.examples = 0 if self.adapter else 4
        self.task: Task | None = None
        self.guard = GoalGuard()
        self.attempts: list[dict[str, Any]] = []
        self.last_failure = ""
        self.prefix = ""

    def _load_adapter(self) -> str | None:
        from policies.lora import adapter_folder, load_adapter

        folder = adapter_folder(self.config.adapter, self.config.llm, default=CODE_ADAPTER_NAME)
        if folder is None or (self.config.adapter == "default" and not folder.exists()):
            return None
        model = getattr(self.lm, "model", None)
        if model is None:
            raise EmbodiedError(f"adapter {folder} needs a local transformers model, not {self.lm.name!r}")
        load_adapter(model, folder, merge=True)
        reset = getattr(self.lm, "reset_cache", None)
        if reset:
            reset()
        return str(folder)

    def reset(self, task: Task) -> None:
        self.task = task
        self.guard.reset(task.goal)
        self.attempts = []
        self.last_failure = ""
        shots = retrieve(task.instruction, example_bank(), self.config.examples) if self.config.examples else []
        # the adapter was trained on the bare request (no header, no examples): prompt it the same way
        self.prefix = "" if self.adapter and not shots else HEADER + "\n" + "".join(e.text() + "\n" for e in shots)
        reset_stats = getattr(self.lm, "reset_stats", None)
        if reset_stats:
            reset_stats()

    def _write(self, state: SceneState) -> tuple[str, str]:
        """The model's program for the instruction (after the last failure, when there was one): source, prompt."""
        names = state.blocks + state.bowls
        prompt = self.prefix
        if self.attempts:
            prompt += f"# the last program failed ({self.last_failure}); written again:\n"
        prompt += prompt_for(self.task.instruction, names)
        text = self.lm.generate(prompt, max_new_tokens=self.config.max_tokens, stop=["\n#", "\ndef ", "\n\n\n"])
        return "def program(api):\n" + _body(text), prompt

    def step(self, state: SceneState, obs: dict[str, Any] | None = None) -> Decision:
        if self.task is None:
            raise EmbodiedError("CodePlanner.step called before reset(task)")
        if self.guard.satisfied(state):
            return Decision(SkillCall("done"), reason="the goal holds")
        if self.attempts and self.attempts[-1]["result"] == "ok":  # it ran to the end, yet the goal is unmet
            self.attempts[-1]["result"] = "goal unmet"
            unmet = [describe(p) for p, v in zip(self.task.goal, goal_values(self.task.goal, abstract(state)),
                                                 strict=True) if not v]
            self.last_failure = "the goal is not met: " + "; ".join(unmet[:2])
        while len(self.attempts) <= self.config.rewrites:
            source, prompt = self._write(state)
            attempt: dict[str, Any] = {"program": source, "result": "ok"}
            self.attempts.append(attempt)
            try:
                check_source(source, API_METHODS)
            except SkillCodeError as e:
                attempt["result"] = ("parse: " if "syntax" in str(e).lower() else "rule: ") + str(e)
                self.last_failure = str(e)
                continue
            if not re.search(r"\bapi\.\w+\(", source):
                attempt["result"] = "empty"
                self.last_failure = "the program calls nothing"
                continue
            return Decision(SkillCall("program", {}), skill=Program(ProgramRecord(source)), prompt=prompt,
                            note="program:\n" + source)
        return Decision(None, reason=f"no program reached the goal ({self.last_failure})")

    def feedback(self, call: SkillCall, result: SkillResult, state: SceneState) -> None:
        """A failed primitive inside the program (or the program's own failure) is the reason for a rewrite."""
        if not result.success and self.attempts:
            self.attempts[-1]["result"] = result.reason or "failed"
            self.last_failure = result.reason or "a step failed"

    def episode_info(self) -> dict[str, Any]:
        """What the episode's result keeps: every program written and how it ended, by category."""
        kinds = Counter(outcome_kind(a["result"]) for a in self.attempts)
        return {"programs": self.attempts, "program_outcomes": dict(kinds)}


def _body(text: str) -> str:
    """The model's continuation as a function body: the first line indented four spaces, the rest as written up
    to the first line back at the top level (the function has ended there); blank lines dropped."""
    lines = [ln.rstrip() for ln in text.split("\n") if ln.strip()]
    out = ["    " + lines[0].lstrip()] if lines else []
    for ln in lines[1:]:
        if not ln.startswith((" ", "\t")):
            break
        out.append(ln)
    return "".join(ln + "\n" for ln in out) or "    pass\n"
