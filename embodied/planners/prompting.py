"""Prompts for language-model planners: the episode as text, and few-shot examples drawn from the task
generator (seeds far from any evaluation set), retrieved by how much their instruction resembles the
user's. Examples are solved by the oracle and written exactly as the live episode is, feedback included."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from embodied.world.scene import COLOR_NAMES, LOCATION_NAMES
from embodied.world.seeds import EXAMPLES
from embodied.world.symbolic import SymbolicState
from embodied.world.tasks import Task
from envs.generator import FAMILY_NAMES, generate
from skills import SkillCall, apply, call_text

HEADER = ("A robot arm at a table moves blocks, one step at a time, to do what a person asks. "
          "After each step it notes whether the step worked, and it says done when the request is complete.")

# Words mapped onto the generator's vocabulary, for retrieval only (the language model sees the user's words).
_SYNONYMS = {"cube": "block", "cubes": "blocks", "brick": "block", "bricks": "blocks", "dish": "bowl",
             "dishes": "bowls", "plate": "bowl", "plates": "bowls", "container": "bowl", "tower": "stack",
             "pile": "stack", "grey": "gray", "onto": "on", "into": "in", "inside": "in"}

# physical failures that training histories report on purpose, so models learn to retry after feedback
FAILURE_REASONS = ("missed grasp", "dropped", "no room for the hand", "missed target")


@dataclass(frozen=True)
class Step:
    """One executed step as the prompt shows it."""

    call: SkillCall
    success: bool
    reason: str = ""


def objects_line(names: Sequence[str]) -> str:
    return "Objects: " + ", ".join(names) + "."


def feedback_text(step: Step) -> str:
    return "(worked)" if step.success else f"(failed: {step.reason or 'unknown'})"


def episode_text(instruction: str, objects: Sequence[str], history: Sequence[Step], feedback: bool = True) -> str:
    """The task and the steps so far, ending right before the next step's text (``"...\\n3."``)."""
    lines = [f"Request: {instruction.strip().rstrip('.')}.", objects_line(objects)]
    for i, step in enumerate(history, 1):
        lines.append(f"{i}. {call_text(step.call)}." + (f" {feedback_text(step)}" if feedback else ""))
    lines.append(f"{len(history) + 1}.")
    return "\n".join(lines)


def option_text(call: SkillCall) -> str:
    """The continuation scored for an option: a leading space, the step, a full stop."""
    return f" {call_text(call)}."


def plan_segments(calls: Sequence[SkillCall], start: int, feedback: bool = True) -> list[tuple[str, bool]]:
    """A whole remaining plan as one continuation, numbered from ``start`` and ending in ``done``: the steps
    are the model's words (scored), the feedback as if each worked and the numbering are given, so its
    score is the model's probability of choosing exactly this plan step after step."""
    parts: list[tuple[str, bool]] = []
    for i, call in enumerate(calls):
        parts.append((f" {call_text(call)}.", True))
        parts.append(((" (worked)" if feedback else "") + f"\n{start + i + 1}.", False))
    parts.append((" done.", True))
    return parts


def structure(instruction: str) -> list[str]:
    """Instruction words with colours and locations abstracted, synonyms mapped: what retrieval compares."""
    text = instruction.lower()
    for loc in LOCATION_NAMES:
        text = text.replace(loc, " loc ")
    words = re.findall(r"[a-z]+", text)
    return ["col" if w in COLOR_NAMES else _SYNONYMS.get(w, w) for w in words]


def _features(instruction: str) -> Counter:
    words = structure(instruction)
    grams = Counter(words)
    grams.update(" ".join(words[i:i + 2]) for i in range(len(words) - 1))
    return grams


def _cosine(a: Counter, b: Counter) -> float:
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    norm = math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


@dataclass(frozen=True)
class Example:
    task: Task
    plan: tuple[SkillCall, ...]

    def text(self, feedback: bool = True) -> str:
        history = [Step(c, True) for c in self.plan]
        body = episode_text(self.task.instruction, self.task.scene.object_names(), history, feedback)
        return body + " done."


def initial_state(task: Task) -> SymbolicState:
    """Every block on the table where the environment lays it out for the task's seed, nothing held: how a
    task starts (positions matter to spatial goals)."""
    from embodied.world.layout import initial_positions

    return SymbolicState({b: "table" for b in task.scene.object_names() if b.endswith("block")},
                         tuple(b for b in task.scene.object_names() if b.endswith("bowl")),
                         xy=dict(initial_positions(task.scene, task.seed) or {}))


@functools.lru_cache(maxsize=4)
def example_bank(per_family: int = 12, seed: int = EXAMPLES.start) -> tuple[Example, ...]:
    """Generated, oracle-solved examples: ``per_family`` of every family, from seeds >= ``seed``."""
    from embodied.planners.oracle import plan

    out = []
    for f_index, family in enumerate(FAMILY_NAMES):
        for k in range(per_family):
            task = generate(family, seed + 1000 * f_index + k)
            calls = plan(initial_state(task), task.goal)
            if calls:
                out.append(Example(task, tuple(calls)))
    return tuple(out)


def retrieve(instruction: str, bank: Sequence[Example], k: int) -> list[Example]:
    """The ``k`` examples whose instructions are most alike in structure, least similar first (so the
    closest sits right before the live episode), at most two per family for variety."""
    query = _features(instruction)
    ranked = sorted(bank, key=lambda e: -_cosine(query, _features(e.task.instruction)))
    chosen: list[Example] = []
    per_family: Counter = Counter()
    for ex in ranked:
        if per_family[ex.task.family] >= 2:
            continue
        chosen.append(ex)
        per_family[ex.task.family] += 1
        if len(chosen) == k:
            break
    return chosen[::-1]


def symbolic_plan_success(task: Task, calls: Sequence[SkillCall]) -> bool:
    """Planning success: the chosen calls, executed by ideal skills from the start state, reach the goal."""
    from embodied.world.predicates import goal_satisfied

    state = initial_state(task)
    for call in calls:
        state, _ = apply(state, call)
    return goal_satisfied(task.goal, state)
