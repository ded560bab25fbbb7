"""SayCan in the Crafter world: the language model scores this world's skills as the next step towards a
goal (an achievement), each weighted by whether it can work now (its requirements on the inventory and what
has been seen), with the outcome of every step written back into the prompt (Inner Monologue). The choice
rule is the tabletop planner's (`saycan_combine`); only the options, the prompt and the goal guard (the
game's recipe tables, `skills.crafter.toward`) are the world's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied.library.crafter import CrafterLibrary, CrafterProgram, skill_for
from embodied.llm.base import LanguageModel, load_language_model
from embodied.planners.base import ScoredOption, option, saycan_combine
from skills.base import SkillCall
from skills.crafter import GOALS, SKILLS, CrafterSkill, CrafterState, toward

HEADER = ("You play Crafter, a survival game on a grid. Trees give wood. Two wood place a table. At a table, "
          "one wood makes a wood pickaxe. A wood pickaxe collects stone and coal. At a table, wood and stone "
          "make a stone pickaxe, which collects iron. Stone places a furnace; at a table and a furnace, wood, "
          "coal and iron make an iron pickaxe, which collects diamonds. Explore to find what is not in view. "
          "Each step does one thing.")
LIBRARY_NOTE = " A learned skill runs, in one step, a whole plan that worked before."
Option = CrafterSkill | CrafterProgram  # a Crafter skill or a learned program: both have text, run, affordance
EXAMPLE = ("Goal: make a wood sword.\n1. make a wood sword: failed (needs a table nearby).\n2. collect wood: failed "
           "(no tree seen yet).\n3. explore: done.\n4. collect wood: done.\n5. collect wood: done.\n"
           "6. place a table: done.\n7. collect wood: done.\n8. make a wood sword: done.")  # not a goal we measure


@dataclass
class CrafterPlannerConfig:
    """The Crafter planner's knobs (the tabletop SayCan's, where they mean the same)."""

    llm: str = option("smollm2", "language model: smollm2 (embedded), a folder, a hub id, or openai:<model>@<url>")
    affordance: bool = option(True, "weight the model's choice by whether a skill can work now")
    feedback: bool = option(True, "write each step's outcome into the prompt (Inner Monologue)")
    length_norm: bool = option(False, "score options by mean token log-likelihood instead of the sum")
    example: bool = option(True, "show one worked plan in the prompt")
    guard: bool = option(True, "rule out skills that do not bring the goal closer (the game's recipe tables)")


class CrafterPlanner:
    """Chooses the next Crafter skill; `reset` with a goal, `step` per decision, `feedback` per outcome. With a
    ``library`` (`CrafterLibrary`), the Crafter skills retrieved for the goal by embedding take the place of
    the primitive of the same achievement, under the same words: one choice that runs a whole learned
    program (which fetches what is missing itself, so it can work from any state)."""

    name = "saycan"

    def __init__(self, config: CrafterPlannerConfig | None = None, lm: LanguageModel | None = None,
                 library: CrafterLibrary | None = None) -> None:
        self.config = config or CrafterPlannerConfig()
        self.lm = lm if lm is not None else load_language_model(self.config.llm)
        self.library = library
        self.goal_id, self.goal, self.history = "", "", []
        self.programs: list[CrafterProgram] = []
        self.llm_calls = 0

    def reset(self, goal: str) -> None:
        """A new episode towards ``goal``: an achievement (``make_stone_pickaxe``) or words."""
        self.goal_id, self.goal = goal, GOALS.get(goal, goal.replace("_", " "))
        self.history = []
        self.programs = self.library.retrieve(self.goal) if self.library is not None else []

    def prompt(self, observation: str) -> str:
        parts = [HEADER + (LIBRARY_NOTE if self.programs else "")]
        if self.config.example:
            parts.append(EXAMPLE)
        steps = "\n".join(self.history)
        parts.append(f"What you see now:\n{observation}\n\nGoal: {self.goal}.\n{steps}".rstrip())
        return "\n\n".join(parts) + f"\n{len(self.history) + 1}."

    def step(self, state: CrafterState, observation: str) -> tuple[Option, list[ScoredOption]]:
        """The option to run next and every option with its scores. With the guard on, the model scores only
        the options the guard keeps (SayCan's argmax over them is the same as over all), and a choice the
        guard and the affordances leave to one option takes no model call."""
        learned = {skill_for(p.name): p for p in self.programs}  # a program stands in for its primitive
        options: list[Option] = [learned.pop(s.name, s) for s in SKILLS] + list(learned.values())
        affordances = np.array([o.affordance(state) for o in options]) if self.config.affordance else \
            np.ones(len(options))
        keep = np.ones(len(options), bool)
        if self.config.guard:  # the recipe tables rule out what does not bring the goal closer
            helpful = toward(self.goal_id, state)
            guarded = np.array([skill_for(o.name) in helpful for o in options])
            if (affordances * guarded).max() > 0:
                keep = guarded & (affordances > 0)
        raw = np.full(len(options), -np.inf)
        if keep.sum() > 1:
            idx = np.flatnonzero(keep)
            scores = self.lm.score(self.prompt(observation), [f" {options[i].text}:" for i in idx])
            self.llm_calls += 1
            raw[idx] = scores.mean if self.config.length_norm else scores.logprob_sum
        else:
            raw[keep] = 0.0
        p_llm, combined = saycan_combine(raw, affordances)
        combined = combined * keep
        scored = [ScoredOption(SkillCall(o.name), o.text, float(p), float(a), float(c))
                  for o, p, a, c in zip(options, p_llm, affordances, combined, strict=True)]
        return options[int(np.argmax(combined))], scored

    def feedback(self, skill: Option, ok: bool, reason: str) -> None:
        outcome = "done" if ok else f"failed ({reason})" if reason else "failed"
        self.history.append(f"{len(self.history) + 1}. {skill.text}: {outcome if self.config.feedback else 'done'}.")
