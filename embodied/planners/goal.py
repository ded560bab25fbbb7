"""`--planner goal`: the language model translates, a search plans (LLM+P). The goal comes from the episode
(read from the instruction by `embodied.understanding`, or the task's own); each step a shortest plan of skill
calls toward it is searched on the symbolic state, and its first call must pass the agent's affordances
(learned or analytic) and not repeat a call that already failed from this state. Nothing feasible left: the
episode ends with the reason that blocks the goal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from embodied.grounding import AffordanceProvider, make_affordance
from embodied.planners.base import Decision, ScoredOption, option
from embodied.planners.guard import GoalGuard
from embodied.planners.oracle import DEFAULT_MAX_NODES, OraclePlanner
from embodied.world.errors import EmbodiedError
from embodied.world.scene import SceneState
from embodied.world.symbolic import abstract
from embodied.world.tasks import Task
from skills import SkillCall, SkillResult, apply, call_text, skill_names


@dataclass
class GoalPlannerConfig:
    """How hard the search looks and which first steps it trusts."""

    max_nodes: int = option(DEFAULT_MAX_NODES, "search expansions per replanning (unreachable goals stop there)")
    min_affordance: float = option(0.5, "a first step whose affordance is below this is not tried")

    def __post_init__(self) -> None:
        if not isinstance(self.max_nodes, int) or self.max_nodes < 1:
            raise EmbodiedError(f"GoalPlannerConfig.max_nodes must be a positive int, got {self.max_nodes!r}")
        if not 0.0 <= self.min_affordance <= 1.0:
            raise EmbodiedError(f"GoalPlannerConfig.min_affordance must be in [0, 1], got {self.min_affordance}")


class GoalPlanner:
    """`Planner` seam: replans toward the episode's goal at every step, first steps filtered by affordance."""

    name = "goal"
    config_class = GoalPlannerConfig

    def __init__(self, config: GoalPlannerConfig | None = None, affordances: AffordanceProvider | None = None,
                 **overrides: Any) -> None:
        self.config = config or GoalPlannerConfig(**overrides)
        self.affordances = affordances or make_affordance("analytic")
        self.guard = GoalGuard()
        self.search: OraclePlanner | None = None
        self.visited: set[tuple] = set()

    def reset(self, task: Task) -> None:
        self.search = OraclePlanner(task.goal, self.config.max_nodes)
        self.guard.reset(task.goal)
        self.visited = set()

    def step(self, state: SceneState, obs: dict[str, Any] | None = None) -> Decision:
        if self.search is None:
            raise EmbodiedError("GoalPlanner.step called before reset(task)")
        sym = abstract(state)
        points = self.search.points
        self.visited.add(sym.key(points))
        scored: dict[tuple, tuple[float, str]] = {}

        def feasible(call: SkillCall) -> bool:
            """Affordance above the bar, not ruled out by an earlier failure here, no return to a seen state."""
            if call.key() not in scored:
                allowed, notes = self.guard.allowed(state, [call])
                a = float(np.asarray(self.affordances.scores(obs, state, [call]))[0]) if obs is not None \
                    else self._analytic(state, call)
                scored[call.key()] = (a if allowed[0] else 0.0, notes[0])
            return (scored[call.key()][0] >= self.config.min_affordance
                    and apply(sym, call)[0].key(points) not in self.visited)

        call = self.search.next_call(sym, feasible)
        if call is None:
            return Decision(None, reason=self.guard.blocking_reason(state, self.config.max_nodes))
        if call.name == "done":
            return Decision(call, reason="the goal holds")
        a, note = scored.get(call.key(), (1.0, ""))
        return Decision(call, [ScoredOption(call, call_text(call), 0.0, a, a)], note=note)

    def _analytic(self, state: SceneState, call: SkillCall) -> float:
        from skills import get_skill

        skill = get_skill(call.name)
        return float(skill.affordance(state, skill.params(call.args)))

    def feedback(self, call: SkillCall, result: SkillResult, state: SceneState) -> None:
        if call.name in skill_names():
            self.guard.record(call, result)
