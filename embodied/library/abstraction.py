"""Turn a successful plan into a parameterised skill: objects become parameters, repeated structure
becomes a loop, and every step is guarded by its own goal so the skill also works from part-done states.

Three shapes are recognised (anything else stays a guarded straight line): a chain (each block goes on
the previous one: a tower), one shared target (every block into one bowl) and pairs (each block to its
own bowl or place). Only plans of moves are abstracted (``Skill.move``: a block carried to a named
object or location, one skill for the whole plan); merging and moves are read from the registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from embodied.library.store import Param
from embodied.world.predicates import goal_satisfied
from embodied.world.symbolic import SymbolicState, target_kind
from skills import SkillCall, apply
from skills.registry import combine, move


@dataclass
class SkillDraft:
    """A skill before verification: code, typed parameters, the binding it was learned with, postcondition."""

    name: str
    description: str
    params: list[Param]
    code: str
    binding: dict[str, str]  # parameter -> object in the source task
    postcondition: list[list]  # the source goal over parameter names


def merge_primitives(calls: Sequence[SkillCall]) -> list[SkillCall]:
    """Two calls a skill declares as one (``Skill.combine``: a pick then a place is a pick-and-place)
    become that call; other calls pass through."""
    out: list[SkillCall] = []
    for call in calls:
        merged = combine(out[-1], call) if out else None
        if merged is not None:
            out[-1] = merged
        else:
            out.append(call)
    return out


def minimise(calls: list[SkillCall], start: SymbolicState, goal: Sequence[Sequence]) -> list[SkillCall] | None:
    """The plan with every step dropped that the goal does not need (greedy), or None if it misses the goal."""
    def reaches(plan: list[SkillCall]) -> bool:
        s = start
        for c in plan:
            s, why = apply(s, c)
            if why is not None:
                return False
        return goal_satisfied(goal, s)

    if not reaches(calls):
        return None
    i = 0
    while i < len(calls):
        shorter = calls[:i] + calls[i + 1:]
        if reaches(shorter):
            calls = shorter
        else:
            i += 1
    return calls


def _kind(name: str, start: SymbolicState) -> str:
    kind = target_kind(start, name)
    return "location" if kind == "location" else kind


def _guard(block: str, target: str, kind: str) -> str:
    """The condition under which a move is still needed."""
    return f"api.on({block}) != {target}" if kind == "block" else f"api.base({block}) != {target}"


def abstract_plan(goal: Sequence[Sequence], calls: Sequence[SkillCall],
                  start: SymbolicState, family: str | None = None) -> SkillDraft | None:
    """A skill from a plan that reached ``goal`` from ``start``; None when there is nothing to abstract."""
    plan = minimise(merge_primitives(calls), start, goal)
    moves = [m for c in plan if (m := move(c)) is not None] if plan else []
    if not plan or len(moves) != len(plan) or len({c.name for c in plan}) != 1:
        return None
    call = f"api.{plan[0].name}"  # the move skill's API method, e.g. api.pick_and_place(block, target)
    # parameter order: targets before movers as the plan meets them, so a tower's blocks run bottom first
    # and pairs line up block i with target i; the same shape always gives the same code (binding a
    # request's objects to parameters is left to planning time)
    order: list[str] = []
    for block, target in moves:
        for o in (target, block):
            if o not in order:
                order.append(o)
    counters: dict[str, int] = {}
    binding: dict[str, str] = {}
    params: list[Param] = []
    for kind in ("block", "bowl", "location"):
        for o in order:
            if _kind(o, start) == kind:
                counters[kind] = counters.get(kind, 0) + 1
                pname = f"{kind}_{counters[kind]}"
                binding[pname] = o
                params.append(Param(pname, kind))
    var = {o: p for p, o in binding.items()}
    n = len(moves)
    kinds = [_kind(t, start) for _, t in moves]
    movers = [var[b] for b, _ in moves]
    targets = [var[t] for _, t in moves]
    body: list[str]
    if n >= 2 and all(moves[i][1] == moves[i - 1][0] for i in range(1, n)) and kinds[0] == "block":
        tower = [targets[0]] + movers
        name, what = f"stack_{n + 1}_blocks", f"stack {n + 1} blocks into one tower, bottom first"
        body = [f"tower = [{', '.join(tower)}]",
                "for lower, upper in zip(tower, tower[1:]):",
                "    if api.on(upper) != lower:",
                f"        {call}(upper, lower)"]
    elif n >= 2 and len(set(targets)) == 1 and kinds[0] != "block":
        name, what = f"put_{n}_blocks_in_one_{kinds[0]}", f"put {n} blocks into one {kinds[0]}"
        body = [f"for block in [{', '.join(movers)}]:",
                f"    if {_guard('block', targets[0], kinds[0])}:",
                f"        {call}(block, {targets[0]})"]
    elif n >= 2 and len(set(kinds)) == 1 and kinds[0] != "block" and len(set(targets)) == n:
        name, what = f"put_{n}_blocks_in_{n}_{kinds[0]}s", f"put {n} blocks each into its own {kinds[0]}"
        body = [f"for block, target in zip([{', '.join(movers)}], [{', '.join(targets)}]):",
                f"    if {_guard('block', 'target', kinds[0])}:",
                f"        {call}(block, target)"]
    else:
        preps = {"block": "on", "bowl": "in", "location": "at"}
        shape = "_then_".join(f"{preps[k]}_{k}" for k in kinds)
        name = f"put_{shape}" if n <= 3 else f"{family or 'plan'}_{n}_moves"
        what = "; ".join(f"put {b} {preps[k]} {t}" for b, t, k in zip(movers, targets, kinds, strict=True))
        body = []
        for b, t, k in zip(movers, targets, kinds, strict=True):
            body += [f"if {_guard(b, t, k)}:", f"    {call}({b}, {t})"]
    signature = ", ".join(["api"] + [p.name for p in params])
    code = "\n".join([f"def {name}({signature}):", f'    """{what[0].upper() + what[1:]}."""']
                     + ["    " + line for line in body]) + "\n"
    postcondition = [_rename(pred, var) for pred in goal]
    return SkillDraft(name, what, params, code, binding, postcondition)


def _rename(value: object, var: dict[str, str]) -> object:
    if isinstance(value, list):
        return [_rename(v, var) for v in value]
    if isinstance(value, str):
        return var.get(value, value)
    return value


def instantiate(goal: Sequence, binding: dict[str, str]) -> list:
    """A postcondition with its parameters replaced by objects."""
    return _rename(list(goal), binding)  # type: ignore[return-value]
