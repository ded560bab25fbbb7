"""What a goal in hand adds to a planner that scores options (SayCan, PaLM-E): "done" only once the goal holds
on the perceived state, no call chosen again after it failed from an unchanged state (one retry after a
physical miss, which the trace notes), no call that undoes a part of the goal already reached unless a
shortest plan starts with it, and, when nothing feasible remains, the reason that blocks the goal."""

from __future__ import annotations

from collections.abc import Sequence

from embodied.world.predicates import goal_satisfied, goal_values, holds
from embodied.world.scene import SceneState
from embodied.world.symbolic import SymbolicState, abstract
from skills import SkillCall, SkillResult, apply, call_text, get_skill


class GoalGuard:
    """Per-episode bookkeeping: ``reset(goal)``, ``allowed(...)`` before scoring, ``record(...)`` after each
    executed call, ``blocking_reason(state)`` when no option is left."""

    def __init__(self, retries: int = 1, max_nodes: int = 2_000) -> None:
        self.retries = retries  # retries of a call that failed physically from the same state
        self.max_nodes = max_nodes  # search budget of the plans that tell progress from undoing it
        self.goal: list[list] = []
        self.points: list = []
        self.failures: dict[tuple, list[str]] = {}  # (state key, call key) -> physical failure reasons so far
        self.refused: dict[tuple, str] = {}  # call key -> the pre-check's reason when it refused to move
        self.reasons: set[str] = set()  # the pre-check sentences of refused calls ("the blue block: not clear")
        self.last_state: SceneState | None = None
        self.state_key: tuple | None = None  # the state the last decision was made from
        self._plans: dict[tuple, list[SkillCall] | None] = {}  # (state key, budget) -> `plan`, this decision

    def _plan(self, sym: SymbolicState, max_nodes: int) -> list[SkillCall] | None:
        """`embodied.planners.oracle.plan` from ``sym``, searched once per state and budget per decision
        (`allowed`, `stuck` and `blocking_reason` ask about the same state)."""
        from embodied.planners.oracle import plan

        key = (sym.key(self.points), max_nodes)
        if key not in self._plans:
            self._plans[key] = plan(sym, self.goal, max_nodes)
        return self._plans[key]

    def reset(self, goal: Sequence[Sequence]) -> None:
        from embodied.planners.oracle import goal_points

        self.goal = [list(p) for p in goal]
        self.points = goal_points(self.goal)  # where positions matter: moves between them are not no-ops
        self.failures = {}
        self.refused = {}
        self.reasons = set()
        self.last_state = None
        self.state_key = None
        self._plans = {}

    def satisfied(self, state: SceneState) -> bool:
        """The goal holds on ``state`` (False when there is no goal to check)."""
        return bool(self.goal) and goal_satisfied(self.goal, abstract(state))

    def done_allowed(self, state: SceneState) -> bool:
        """"done" is an option only without a goal or once it holds."""
        return not self.goal or self.satisfied(state)

    def allowed(self, state: SceneState, calls: Sequence[SkillCall]) -> tuple[list[bool], list[str]]:
        """Per call: may it be chosen from ``state``, and a note for a retry ("retry after missed grasp").
        A call its pre-check refused (no physics ran) comes back only once that pre-check passes; one that
        failed in physics is retried ``retries`` times from the same state; a call that would change nothing
        (the block is already there) is not offered, nor one that undoes a goal predicate that holds (the
        block already in its bowl taken out again) unless a shortest plan to the goal starts with it (a block
        that must move first); when no plan is found within the search budget, nothing is ruled out so."""
        sym = abstract(state)
        self.state_key = sym.key(self.points)
        self.last_state = state
        self._plans = {}  # a new decision: earlier searches are not kept
        if not self.goal:  # no goal in hand: nothing to check against (a bare planner, say, in a test)
            return [True] * len(calls), [""] * len(calls)
        values = goal_values(self.goal, sym)
        reached = [p for p, v in zip(self.goal, values, strict=True) if v]
        needed_first: tuple | None = None
        if reached:
            steps = self._plan(sym, self.max_nodes)
            if steps is None:
                reached = []  # no plan known: do not second-guess the planner
            elif steps:
                needed_first = steps[0].key()
        ok, notes = [], []
        for call in calls:
            reasons = self.failures.get((self.state_key, call.key()), [])
            blocked = len(reasons) > self.retries
            if self.refused:  # a call its pre-check refused, or one refused for the same reason ("the blue
                skill = get_skill(call.name)  # block: not clear"), waits until that pre-check passes
                why = skill.why_not(state, skill.params(call.args))
                blocked = blocked or (why is not None and (call.key() in self.refused or why in self.reasons))
            nxt, why = apply(sym, call)
            blocked = blocked or (why is None and nxt.key(self.points) == self.state_key)
            blocked = blocked or (why is None and call.key() != needed_first
                                  and any(not holds(p, nxt) for p in reached))
            ok.append(not blocked)
            notes.append(f"retry after {reasons[-1]}" if reasons and not blocked else "")
        return ok, notes

    def record(self, call: SkillCall, result: SkillResult) -> None:
        """Remember a failed call against the state it was chosen from."""
        if result.success or self.state_key is None:
            return
        why = result.reason or "failure"
        if result.steps == 0:
            self.refused[call.key()] = why
            if self.last_state is not None:
                skill = get_skill(call.name)
                self.reasons.add(skill.why_not(self.last_state, skill.params(call.args)) or why)
        else:
            self.failures.setdefault((self.state_key, call.key()), []).append(why)

    def stuck(self, state: SceneState, feasible: Sequence[SkillCall], max_nodes: int = 2_000) -> bool:
        """No feasible call brings the goal closer: none starts a shortest plan to it, and none leaves a
        shorter plan behind (say, the one block still missing has no room for the hand, and the other moves
        would only undo what is done). Unknown (the search ran out of budget) counts as not stuck."""
        if not self.goal:
            return False
        sym = abstract(state)
        steps = self._plan(sym, max_nodes)
        if steps is None or not steps:
            return steps is None and not feasible
        keys = {c.key() for c in feasible}
        if steps[0].key() in keys:
            return False
        for call in feasible:
            nxt, why = apply(sym, call)
            rest = self._plan(nxt, max_nodes) if why is None else None
            if rest is not None and len(rest) < len(steps):
                return False
        return True

    def blocking_reason(self, state: SceneState, max_nodes: int = 2_000) -> str:
        """One sentence: what stops the goal from here (the next call an ideal plan needs, and why it cannot
        run), or that nothing feasible remains."""
        if not self.goal:
            return "nothing feasible remains"
        steps = self._plan(abstract(state), max_nodes)
        if not steps:
            return "the goal cannot be reached from this state"
        call = steps[0]
        tried = self.failures.get((abstract(state).key(self.points), call.key())) or [self.refused.get(call.key(), "")]
        skill = get_skill(call.name)
        why = skill.why_not(state, skill.params(call.args)) or tried[-1] or "it was ruled out"
        return f"nothing feasible remains: {call_text(call)} is needed, but {why}"
