"""The planner seam: `reset(task)`, then `step(state) -> Decision` once per skill, `feedback(...)` after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from embodied.world.scene import SceneState
from embodied.world.tasks import Task
from skills.base import SkillCall, SkillResult


@dataclass
class ScoredOption:
    """One candidate with its scores: language model (log-prob), affordance, combined (for ranking)."""

    call: SkillCall
    text: str
    llm: float = 0.0
    affordance: float = 1.0
    combined: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, **self.call.to_dict(), "llm": round(self.llm, 5),
                "affordance": round(self.affordance, 5), "combined": round(self.combined, 5)}


@dataclass
class Decision:
    """The chosen call (``SkillCall("done")`` to stop; ``None`` when the planner says it cannot), the
    scored options behind it, a sentence when it cannot, and the library skill when the call is one."""

    call: SkillCall | None
    options: list[ScoredOption] = field(default_factory=list)
    reason: str = ""
    skill: Any = None  # a library skill instance (embodied.library.retrieval.Instance) to run for this call
    then_done: bool = False  # the scored plan ended with "done": stop once the skill succeeds
    note: str = ""  # why this call, where it needs saying (e.g. "retry after missed grasp")
    prompt: str = ""  # the text the language model scored the options after (traces record it)


def option(default: Any, help: str, *, cli: bool = True, choices: tuple[str, ...] = ()) -> Any:  # noqa: A002
    """A planner-config field with the one-line help its command-line flag shows (``cli=False``: no flag;
    the agent sets it; ``choices``: the values a text or list field takes). The CLI builds ``--field-name``
    (``--no-field-name`` for a True bool, a comma-separated list for a tuple) from it."""
    return field(default=default, metadata={"help": help, "cli": cli, "choices": choices})


class Planner(Protocol):
    """Oracle, SayCan and PaLM-E planners share this, so `--planner` is one flag. Each registers its config
    dataclass as ``config_class`` (LeRobot's config + model pairs). ``reset`` gets the task with the goal the
    episode pursues: the file's, or the one read from the instruction."""

    name: str
    config_class: ClassVar[type]

    def reset(self, task: Task) -> None: ...

    def step(self, state: SceneState, obs: dict[str, Any] | None = None) -> Decision:
        """The next call from ``state``; ``obs`` (rgb, depth, points, proprio) serves learned affordances."""
        ...

    def feedback(self, call: SkillCall, result: SkillResult, state: SceneState) -> None: ...


def saycan_combine(llm: np.ndarray, affordances: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """SayCan's choice rule: the language model's log-likelihoods of the options turned into probabilities
    over them (softmax), times how likely each is to succeed now. Returns (p_llm, combined); every world's
    planner uses it (the tabletop's SayCan and PaLM-E, Crafter's)."""
    llm = np.asarray(llm, dtype=np.float64)
    p_llm = np.exp(llm - llm.max())
    p_llm /= p_llm.sum()
    return p_llm, p_llm * affordances
