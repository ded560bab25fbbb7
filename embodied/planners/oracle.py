"""The symbolic oracle: a shortest sequence of skill calls that makes a goal true.

A* over the support relation of :mod:`embodied.world.symbolic`. The moves are the registry's candidate calls
(``skills.registry.candidate_calls``, with the goal: a point in an ``at`` adds the call that puts a block
there) and each skill's own symbolic effect (``skills.registry.apply``), so plans mean exactly what the
skills declare. The heuristic counts blocks that must move at least once (a move relocates one block), so it
is admissible and plans are optimal:

* the subject of every false ``in`` / ``at`` / ``on`` (its base, support or position can only change if
  it moves),
  any other block sitting on the target of a false ``on``, and every block standing on the wrong base
  for a bowl or location the goal requires of its tower (spread along ``on`` chains and ``stacked``);
* for a false ``stacked``: tower blocks held or resting on a non-tower block, non-tower blocks resting on
  tower blocks, and every run of tower blocks standing on the table, a bowl or a location but one (its
  bottom block has to end on a tower block, so the whole run moves);
* everything above a block that must move (it has to be cleared first), and the held block;
* one more for a block ``x`` the ``on`` chain puts above a moving block ``z`` when ``z``, or the block
  ``z`` must end on, is now below ``x``: ``x`` moves off before ``z``'s last move and back after it.

Search is bounded by ``max_nodes`` expansions; past it the oracle logs a warning and gives up (``None``).
Goals that contradict themselves (a block on two blocks, two blocks on one, cycles, two bases for one
tower, a block both on a block and at a point on the table, ...) are rejected before searching. Positions
enter the search only at the points a goal names (``SymbolicState.key(points)``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from embodied.planners.base import Decision, option
from embodied.world.errors import EmbodiedError
from embodied.world.predicates import goal_satisfied, holds, point_goals
from embodied.world.scene import LOCATION_NAMES, SceneState
from embodied.world.spatial import is_spatial, realize
from embodied.world.symbolic import Point, SymbolicState, abstract, is_point, parse_point
from embodied.world.tasks import Task
from skills import apply, candidate_calls, get_skill
from skills.base import SkillCall, SkillResult

log = logging.getLogger(__name__)

DEFAULT_MAX_NODES = 2_000  # expansions (about a second); 6-block tasks need tens, unreachable goals are cut short
DEAD = 10**9  # heuristic value of a state from which the goal cannot be reached


def _above(state: SymbolicState, block: str) -> list[str]:
    """Every block resting (transitively) on ``block``."""
    out, todo = [], state.on_top_of(block)
    while todo:
        b = todo.pop()
        out.append(b)
        todo.extend(state.on_top_of(b))
    return out


@dataclass
class GoalInfo:
    """What a goal implies beyond its predicates, computed once per plan."""

    under: dict[str, str] = field(default_factory=dict)  # block -> the block it must rest on directly
    above: dict[str, set[str]] = field(default_factory=dict)  # block -> every block it must end above
    base: dict[str, str] = field(default_factory=dict)  # block -> the bowl or location its tower must stand in
    conflict: str | None = None  # why the goal can never hold, when a quick check finds a reason


def analyse(goal: Sequence[Sequence], state: SymbolicState) -> GoalInfo:
    """Derive the goal's ``on`` order and required bases (``in``/``at`` spread along ``on`` chains and
    ``stacked`` towers), and look for contradictions: missing objects, a block on two blocks, two blocks
    on one, cycles, overlapping towers, an ``on`` leaving a tower, two bases for one tower."""
    info = GoalInfo()
    blocks, bowls = set(state.support), set(state.bowls)
    parent = {b: b for b in blocks}

    def root(b: str) -> str:
        while parent[b] != b:
            b = parent[b]
        return b

    over: dict[str, str] = {}
    for pred in goal:
        names = list(pred[1]) if pred[0] == "stacked" else [pred[1]] + ([pred[2]] if pred[0] == "on" else [])
        missing = [n for n in names if n not in blocks]
        missing += [pred[2]] if (pred[0] == "in" and pred[2] not in bowls) or (
            pred[0] == "at" and not is_point(pred[2]) and pred[2] not in LOCATION_NAMES) else []
        if missing:
            info.conflict = f"{', '.join(missing)} not in the scene"
            return info
        if pred[0] == "on":
            a, b = pred[1], pred[2]
            if info.under.setdefault(a, b) != b:
                info.conflict = f"{a} must rest on both {info.under[a]} and {b}"
            elif over.setdefault(b, a) != a:
                info.conflict = f"both {over[b]} and {a} must rest directly on {b}"
        for n in names[1:]:
            parent[root(n)] = root(names[0])
    for b in info.under:
        chain, cur = set(), b
        while cur in info.under:
            cur = info.under[cur]
            if cur in chain or cur == b:
                info.conflict = f"{b} would rest on itself through a cycle of 'on'"
                break
            chain.add(cur)
        info.above[b] = chain
    towers = [set(p[1]) for p in goal if p[0] == "stacked"]
    for i, t in enumerate(towers):
        if any(t & u and t != u for u in towers[i + 1:]):
            info.conflict = "two different 'stacked' towers share a block"
        if any((a in t) != (b in t) for a, b in info.under.items()):
            info.conflict = f"an 'on' puts a block on the tower {sorted(t)} or a tower block on another block"
    for block, _ in point_goals(goal):
        if block in info.under:
            info.conflict = f"{block} must rest on {info.under[block]} and on the table at a point"
    roots: dict[str, str] = {}
    for pred in goal:
        if pred[0] == "at" and is_point(pred[2]):
            continue  # a point fixes where the block itself stands, not what its tower stands in
        if pred[0] in ("in", "at") and roots.setdefault(root(pred[1]), pred[2]) != pred[2]:
            info.conflict = f"{pred[1]} (or a block stacked with it) must be in both " \
                            f"{roots[root(pred[1])]} and {pred[2]}"
    info.base = {b: roots[root(b)] for b in blocks if root(b) in roots}
    return info


def _moves_twice(state: SymbolicState, x: str, movers: set[str], under: dict[str, str]) -> bool:
    """True when ``x`` must end above a moving block ``z`` that is now below it, or whose goal support is:
    ``x`` has to move off before ``z``'s last move and back on after it."""
    if not movers:
        return False
    below = set(state.chain(x))
    return any(z in below or under.get(z) in below for z in movers)


def heuristic(state: SymbolicState, goal: Sequence[Sequence], info: GoalInfo | None = None) -> int:
    """Admissible lower bound on the number of calls to reach ``goal`` (``DEAD`` when unreachable);
    ``info`` is ``analyse(goal, state)``, passed in to save recomputing it."""
    if goal_satisfied(goal, state):
        return 0
    info = analyse(goal, state) if info is None else info
    if info.conflict is not None:
        return DEAD
    must = {b for b, base in info.base.items() if state.base(b) != base}
    towers: dict[frozenset[str], list[list[str]]] = {}
    for pred in goal:
        if holds(pred, state):
            continue
        if pred[0] in ("in", "at", "on"):
            must.add(pred[1])
            if pred[0] == "on":
                if state.support[pred[2]] == "unknown":
                    return DEAD  # nothing can be placed on a block that is not resting
                must.update(b for b in state.on_top_of(pred[2]) if b != pred[1])
            continue
        tower = frozenset(pred[1])
        segments = []
        for b in tower:
            sup = state.support[b]
            if sup in ("hand", "unknown") or (sup in state.support and sup not in tower):
                must.add(b)
            elif sup not in state.support:  # grounded: the start of a run of tower blocks
                segment, top = [b], state.on_top_of(b)
                while top and top[0] in tower:
                    segment.append(top[0])
                    top = state.on_top_of(top[0])
                segments.append(segment)
            must.update(x for x in state.on_top_of(b) if x not in tower)
        towers[tower] = segments
    twice: set[str] = set()
    while True:
        for b in list(must):
            must.update(_above(state, b))
        new = {x for x, zs in info.above.items()
               if x not in twice and _moves_twice(state, x, zs & must, info.under)}
        if not new:
            break
        twice |= new
        must |= new
    if any(state.support[b] == "unknown" for b in must):
        return DEAD  # a block that is not resting can never be picked
    if state.held is not None:
        must.add(state.held)
    # one run of tower blocks may stay at the bottom; every other run's bottom moves, so its whole run does
    extra = 0
    for segments in towers.values():
        movers = [len([b for b in seg if b not in must]) for seg in segments]
        extra += sum(movers) - max(movers, default=0)
    return max(len(must) + len(twice) + extra, 1)


def _moves(state: SymbolicState, goal: Sequence[Sequence]) -> list[tuple[SkillCall, SymbolicState]]:
    """Every candidate call from ``state`` (for ``goal``) whose effect succeeds, with the state after it."""
    out = []
    for call in candidate_calls(state, goal):
        nxt, why = apply(state, call)
        if why is None:
            out.append((call, nxt))
    return out


def goal_points(goal: Sequence[Sequence]) -> list[Point]:
    """The table points a goal's ``at`` predicates name: where block positions matter to the search."""
    return list(dict.fromkeys(parse_point(p) for _, p in point_goals(goal)))


def plan(state: SymbolicState, goal: Sequence[Sequence], max_nodes: int = DEFAULT_MAX_NODES,
         first_ok: Callable[[SkillCall], bool] | None = None) -> list[SkillCall] | None:
    """A shortest list of calls that makes ``goal`` true from ``state`` under ``skills.apply``;
    ``[]`` when it already holds, ``None`` when it cannot be reached (or the search budget runs out).

    ``first_ok`` filters the first call by what the symbols cannot see (say, the physical room the hand
    needs right now): the plan is then the shortest one whose first call passes."""
    if goal_satisfied(goal, state):
        return []
    if any(is_spatial(p) for p in goal):  # places and points first (callers that plan a whole episode
        concrete = realize(goal, state)   # realise once and pass the result, so points stay put)
        if concrete is None:
            log.debug("goal unreachable: no placement satisfies its spatial predicates")
            return None
        goal = concrete
    info = analyse(goal, state)
    if info.conflict is not None:
        log.debug("goal unreachable: %s", info.conflict)
        return None
    points = goal_points(goal)
    start = state.copy()
    h0 = heuristic(start, goal, info)
    if h0 >= DEAD:
        log.debug("goal unreachable: a block that must move is not resting")
        return None
    tie = itertools.count()
    frontier = [(h0, 0, next(tie), start)]
    best_g = {start.key(points): 0}
    came_from: dict[tuple, tuple[tuple, SkillCall]] = {}
    expanded = 0
    while frontier:
        _, neg_g, _, s = heapq.heappop(frontier)
        g, key = -neg_g, s.key(points)
        if g > best_g[key]:
            continue
        if goal_satisfied(goal, s):
            calls = []
            while key in came_from:
                key, call = came_from[key]
                calls.append(call)
            return calls[::-1]
        expanded += 1
        if expanded > max_nodes:
            log.warning("oracle gave up after %d expansions (goal %s); raise max_nodes if it is reachable",
                        max_nodes, list(goal))
            return None
        for call, nxt in _moves(s, goal):
            if first_ok is not None and g == 0 and not first_ok(call):
                continue
            k = nxt.key(points)
            if g + 1 >= best_g.get(k, DEAD):
                continue
            h = heuristic(nxt, goal, info)
            if h >= DEAD:
                continue
            best_g[k] = g + 1
            came_from[k] = (key, call)
            heapq.heappush(frontier, (g + 1 + h, -(g + 1), next(tie), nxt))
    log.debug("goal unreachable: search space exhausted after %d expansions", expanded)
    return None


class OraclePlanner:
    """Replans from the current symbolic state at every step, so it recovers after a failed physical skill."""

    def __init__(self, goal: Sequence[Sequence], max_nodes: int = DEFAULT_MAX_NODES) -> None:
        self.goal = [list(p) for p in goal]
        self.max_nodes = max_nodes
        self.points = goal_points(self.goal)  # where positions matter: states differing there differ

    def next_call(self, state: SymbolicState, first_ok: Callable[[SkillCall], bool] | None = None
                  ) -> SkillCall | None:
        """``SkillCall("done")`` when the goal holds, else the first call of a shortest plan (whose first
        call passes ``first_ok``); ``None`` if the goal cannot be reached."""
        if goal_satisfied(self.goal, state):
            return SkillCall("done")
        steps = plan(state, self.goal, self.max_nodes, first_ok)
        return steps[0] if steps else None


@dataclass
class OracleConfig:
    """The search budget of the oracle."""

    max_nodes: int = option(DEFAULT_MAX_NODES, "search expansions per replanning (unreachable goals stop there)")

    def __post_init__(self) -> None:
        if not isinstance(self.max_nodes, int) or self.max_nodes < 1:
            raise EmbodiedError(f"OracleConfig.max_nodes must be a positive int, got {self.max_nodes!r}")


class OracleAgent:
    """The oracle behind the planner seam: reads the symbolic state off the scene and replans every step."""

    name = "oracle"
    config_class = OracleConfig

    def __init__(self, config: OracleConfig | None = None, **overrides: int) -> None:
        self.config = config or OracleConfig(**overrides)
        self.planner: OraclePlanner | None = None

    def reset(self, task: Task) -> None:
        self.planner = OraclePlanner(task.goal, self.config.max_nodes)
        self.visited: set[tuple] = set()

    def step(self, state: SceneState, obs: dict | None = None) -> Decision:
        if self.planner is None:
            raise EmbodiedError("OracleAgent.step called before reset(task)")
        sym = abstract(state)
        points = self.planner.points
        self.visited.add(sym.key(points))

        def feasible(call: SkillCall) -> bool:
            """The skill's own affordance (reach, room for the hand), and no return to a state already seen
            (which would let a blocked plan swing back and forth)."""
            skill = get_skill(call.name)
            return (skill.affordance(state, skill.params(call.args)) > 0.0
                    and apply(sym, call)[0].key(points) not in self.visited)

        call = self.planner.next_call(sym, feasible) or self.planner.next_call(sym)
        return Decision(call, reason="" if call is not None else "the goal cannot be reached from this state")

    def feedback(self, call: SkillCall, result: SkillResult, state: SceneState) -> None:
        """Nothing to learn: the next step replans from the new state."""
