"""SayCan in the Crafter world: the language model scores this world's skills as the next step towards a
goal (an achievement), each weighted by whether it can work now (its requirements on the inventory and what
has been seen), with the outcome of every step written back into the prompt (Inner Monologue). The choice
rule is the tabletop planner's (`saycan_combine`); only the options, the prompt and the goal guard (the
game's recipe tables, `skills.crafter.toward`) are the world's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied.llm.base import LanguageModel, load_language_model
from embodied.planners.base import ScoredOption, option, saycan_combine
from skills.base import SkillCall
from skills.crafter import SKILLS, CrafterSkill, CrafterState, toward

HEADER = ("You play Crafter, a survival game on a grid. Trees give wood. Two wood place a table. At a table, "
          "one wood makes a wood pickaxe. A wood pickaxe collects stone and coal. At a table, wood and stone "
          "make a stone pickaxe, which collects iron. Stone places a furnace; at a table and a furnace, wood, "
          "coal and iron make an iron pickaxe, which collects diamonds. Explore to find what is not in view. "
          "Each step does one thing.")
EXAMPLE = ("Goal: make a wood sword.\n1. make a wood sword: failed (needs a table nearby).\n2. collect wood: failed "
           "(no tree seen yet).\n3. explore: done.\n4. collect wood: done.\n5. collect wood: done.\n"
           "6. place a table: done.\n7. collect wood: done.\n8. make a wood sword: done.")  # not a goal we measure
GOALS = {"collect_wood": "collect wood", "place_table": "place a table", "make_wood_pickaxe": "make a wood pickaxe",
         "make_wood_sword": "make a wood sword", "collect_stone": "collect stone", "collect_coal": "collect coal",
         "place_furnace": "place a furnace", "make_stone_pickaxe": "make a stone pickaxe",
         "make_stone_sword": "make a stone sword", "collect_iron": "collect iron",
         "make_iron_pickaxe": "make an iron pickaxe", "make_iron_sword": "make an iron sword",
         "collect_diamond": "collect a diamond", "collect_drink": "drink water", "eat_cow": "eat a cow"}


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
    """Chooses the next Crafter skill; `reset` with a goal, `step` per decision, `feedback` per outcome."""

    name = "saycan"

    def __init__(self, config: CrafterPlannerConfig | None = None, lm: LanguageModel | None = None) -> None:
        self.config = config or CrafterPlannerConfig()
        self.lm = lm if lm is not None else load_language_model(self.config.llm)
        self.goal_id, self.goal, self.history = "", "", []
        self.llm_calls = 0

    def reset(self, goal: str) -> None:
        """A new episode towards ``goal``: an achievement (``make_stone_pickaxe``) or words."""
        self.goal_id, self.goal = goal, GOALS.get(goal, goal.replace("_", " "))
        self.history = []

    def prompt(self, observation: str) -> str:
        parts = [HEADER]
        if self.config.example:
            parts.append(EXAMPLE)
        steps = "\n".join(self.history)
        parts.append(f"What you see now:\n{observation}\n\nGoal: {self.goal}.\n{steps}".rstrip())
        return "\n\n".join(parts) + f"\n{len(self.history) + 1}."

    def step(self, state: CrafterState, observation: str) -> tuple[CrafterSkill, list[ScoredOption]]:
        """The skill to run next and every option with its scores."""
        texts = [f" {s.text}:" for s in SKILLS]
        scores = self.lm.score(self.prompt(observation), texts)
        self.llm_calls += 1
        raw = scores.mean if self.config.length_norm else scores.logprob_sum
        affordances = np.array([s.affordance(state) for s in SKILLS])
        p_llm, combined = saycan_combine(raw, affordances if self.config.affordance else 1.0)
        if self.config.guard:  # the recipe tables rule out what does not bring the goal closer
            helpful = toward(self.goal_id, state)
            keep = np.array([s.name in helpful for s in SKILLS])
            if (combined * keep).max() > 0:
                combined = combined * keep
        options = [ScoredOption(SkillCall(s.name), s.text, float(p), float(a), float(c))
                   for s, p, a, c in zip(SKILLS, p_llm, affordances, combined, strict=True)]
        return SKILLS[int(np.argmax(combined))], options

    def feedback(self, skill: CrafterSkill, ok: bool, reason: str) -> None:
        outcome = "done" if ok else f"failed ({reason})" if reason else "failed"
        self.history.append(f"{len(self.history) + 1}. {skill.text}: {outcome if self.config.feedback else 'done'}.")
