"""Goal predicates: validation of their form and evaluation on the symbolic state.

A goal is a conjunction (a list) of predicates:
  ``["in", "<colour> block", "<colour> bowl"]``   the block rests in the bowl (directly or on blocks in it)
  ``["on", "<colour> block", "<colour> block"]``  the first block rests directly on the second
  ``["at", "<colour> block", "<location>"]``      the block rests at the named location (or on a block there)
  ``["at", "<colour> block", [x, y]]``            the block rests directly on the table within 6 cm of the
                                                  point (metres; also ``"x,y"`` or ``"<location>+dx,dy"``)
  ``["stacked", ["<colour> block", ...]]``        one tower of exactly these blocks, in any order
  ``["at", "<colour> block", "left side"]``       (right, top, bottom side) and the spatial predicates:
                                                  relations, offsets, arrangements and goals with a choice,
                                                  defined with their tolerances in ``embodied.world.spatial``
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from embodied.world.errors import PredicateError, UnknownObjectError
from embodied.world.scene import (
    LOCATION_NAMES,
    LOCATIONS,
    WORKSPACE_X,
    WORKSPACE_Y,
    parse_object_name,
    suggest,
)
from embodied.world.spatial import (
    DIRECTIONS,
    ORIENTATIONS,
    REGION_NAMES,
    REGIONS,
    SPATIAL,
    describe_spatial,
    is_spatial,
    spatial_holds,
)
from embodied.world.symbolic import SymbolicState, is_point, off_table, parse_point, point_text

PREDICATES: dict[str, str] = {
    "in": "block, bowl",
    "on": "block, block",
    "at": "block, location or point [x, y]",
    "stacked": "[block, block, ...]",
    **{d: "block, block / bowl / location" for d in DIRECTIONS},
    "near": "block, block / bowl / location",
    "far_from": "block, block / bowl / location",
    "between": "block, object, object",
    "offset": "block, object, [dx, dy] (metres)",
    "line": "[block, ...], horizontal / vertical / diagonal / any",
    "triangle": "[block, block, block]",
    "square": "[block, block, block, block]",
    "centred": "[block, ...], location / side / object",
    "not_in": "block, bowl",
    "one_of": "block, [bowl / location / side, ...]",
    "different": "[block, ...], [bowl / location / side, ...]",
}


def _check_object(name: object, kind: str, names: Iterable[str] | None, where: str) -> None:
    if kind == "location" and is_point(name):
        try:
            point = parse_point(name)
        except ValueError as e:
            raise PredicateError(f"{where}: {e}") from None
        if off_table(point):
            raise PredicateError(f"{where}: point {point_text(name)} is off the table: x must lie in "
                                 f"[{WORKSPACE_X[0]}, {WORKSPACE_X[1]}] and y in "
                                 f"[{WORKSPACE_Y[0]}, {WORKSPACE_Y[1]}] (metres)")
        return
    if not isinstance(name, str):
        what = "location name or a point [x, y]" if kind == "location" else f"{kind} name"
        raise PredicateError(f"{where}: expected a {what}, got {name!r}")
    if kind == "location":
        if name not in LOCATIONS and name not in REGIONS:
            raise UnknownObjectError(f"{where}: unknown location {name!r}{suggest(name, LOCATION_NAMES + REGION_NAMES)}; "
                                     f"locations: {', '.join(LOCATION_NAMES + REGION_NAMES)}")
        return
    if kind == "ref":  # a block, a bowl or a named location
        if name in LOCATIONS or name in REGIONS:
            return
        kind = parse_object_name(name)[1]
    _, got_kind = parse_object_name(name)
    if got_kind != kind:
        raise PredicateError(f"{where}: expected a {kind}, got {name!r}")
    if names is not None and name not in set(names):
        raise UnknownObjectError(f"{where}: the goal names {name!r}, which is not in the scene"
                                 f"{suggest(name, list(names))}")


def validate_goal(goal: object, scene_objects: Sequence[str] | None = None) -> list[list]:
    """Check a goal's form (and, given the scene's object names, that it names only present objects)."""
    if not isinstance(goal, list) or not goal:
        raise PredicateError(f"goal must be a non-empty list of predicates, got {goal!r}")
    for i, pred in enumerate(goal):
        where = f"goal[{i}]"
        if not isinstance(pred, list) or not pred or not isinstance(pred[0], str):
            raise PredicateError(f"{where}: a predicate is a list like ['in', 'red block', 'green bowl'], got {pred!r}")
        head = pred[0]
        if head not in PREDICATES:
            raise PredicateError(f"{where}: unknown predicate {head!r}{suggest(head, list(PREDICATES))}; "
                                 f"known: {', '.join(PREDICATES)}")
        if head in SPATIAL:
            _check_spatial(pred, scene_objects, where)
            continue
        if head == "stacked":
            if len(pred) != 2 or not isinstance(pred[1], list) or len(pred[1]) < 2:
                raise PredicateError(f"{where}: 'stacked' takes one list of two or more blocks, got {pred!r}")
            for b in pred[1]:
                _check_object(b, "block", scene_objects, where)
            if len(set(pred[1])) != len(pred[1]):
                raise PredicateError(f"{where}: 'stacked' lists a block twice: {pred[1]!r}")
            continue
        if len(pred) != 3:
            raise PredicateError(f"{where}: {head!r} takes two arguments ({PREDICATES[head]}), got {pred[1:]!r}")
        _check_object(pred[1], "block", scene_objects, where)
        second = {"in": "bowl", "on": "block", "at": "location"}[head]
        _check_object(pred[2], second, scene_objects, where)
        if head == "on" and pred[1] == pred[2]:
            raise PredicateError(f"{where}: a block cannot be on itself: {pred!r}")
    return goal  # type: ignore[return-value]


def _check_spatial(pred: list, names: Iterable[str] | None, where: str) -> None:
    """Check a spatial predicate's arguments against ``SPATIAL``'s kinds."""
    kinds = SPATIAL[pred[0]]
    if len(pred) != len(kinds) + 1:
        raise PredicateError(f"{where}: {pred[0]!r} takes {len(kinds)} argument(s) ({PREDICATES[pred[0]]}), "
                             f"got {pred[1:]!r}")
    for arg, kind in zip(pred[1:], kinds, strict=True):
        if kind in ("blocks", "blocks3", "blocks4"):
            need = {"blocks": 1, "blocks3": 3, "blocks4": 4}[kind]
            if not isinstance(arg, list) or len(arg) < max(need, 2) or (need > 1 and len(arg) != need):
                count = f"exactly {need}" if need > 1 else "two or more"
                raise PredicateError(f"{where}: {pred[0]!r} takes a list of {count} blocks, got {arg!r}")
            for b in arg:
                _check_object(b, "block", names, where)
            if len(set(arg)) != len(arg):
                raise PredicateError(f"{where}: {pred[0]!r} lists a block twice: {arg!r}")
        elif kind == "places":
            if not isinstance(arg, list) or not arg:
                raise PredicateError(f"{where}: {pred[0]!r} takes a list of places (bowls, locations, sides), "
                                     f"got {arg!r}")
            for place in arg:
                _check_object(place, "location" if place in LOCATIONS or place in REGIONS else "bowl", names,
                              where)
        elif kind == "orientation":
            if arg not in ORIENTATIONS:
                raise PredicateError(f"{where}: a line's orientation is one of {', '.join(ORIENTATIONS)}, "
                                     f"got {arg!r}{suggest(str(arg), ORIENTATIONS)}")
        elif kind == "vector":
            if (not isinstance(arg, list) or len(arg) != 2
                    or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in arg)
                    or not all(abs(v) <= 1.0 for v in arg)):
                raise PredicateError(f"{where}: an offset is [dx, dy] in metres (each within 1 m), got {arg!r}")
        elif kind == "centre":
            _check_object(arg, "ref", names, where)
        else:
            _check_object(arg, kind, names, where)
    if pred[0] in ("one_of", "different"):
        places = pred[2]
        if len(set(places)) != len(places):
            raise PredicateError(f"{where}: {pred[0]!r} lists a place twice: {places!r}")
        if pred[0] == "different" and len(places) < len(pred[1]):
            raise PredicateError(f"{where}: 'different' needs at least as many places as blocks, got "
                                 f"{len(pred[1])} blocks and {len(places)} places")
    if (pred[0] in DIRECTIONS or pred[0] in ("near", "far_from", "offset", "between")) and pred[1] in pred[
            2:4 if pred[0] == "between" else 3]:
        raise PredicateError(f"{where}: a block cannot be placed relative to itself: {pred!r}")


def holds(pred: Sequence, state: SymbolicState) -> bool:
    """Whether one predicate is true in ``state``."""
    head = pred[0]
    if is_spatial(pred):
        return spatial_holds(pred, state)
    if head == "on":
        return state.support.get(pred[1]) == pred[2]
    if head == "at" and is_point(pred[2]):
        return pred[1] in state.blocks_at(parse_point(pred[2]))
    if head in ("in", "at"):
        return pred[1] in state.support and state.base(pred[1]) == pred[2]
    if head == "stacked":
        tower = set(pred[1])
        if any(b not in state.support for b in tower):
            return False
        bottoms = [b for b in tower if state.support[b] not in tower]
        if len(bottoms) != 1 or state.support[bottoms[0]] in state.support or state.support[bottoms[0]] in (
                "hand", "unknown"):
            return False
        # a single chain: every tower block except the top carries exactly one tower block, nothing else
        carried = {b: state.on_top_of(b) for b in tower}
        if any(len(v) > 1 or any(x not in tower for x in v) for v in carried.values()):
            return False
        return len(state.chain(max(tower, key=lambda b: len(state.chain(b))))) == len(tower) - 1
    raise PredicateError(f"unknown predicate {head!r}")


def point_goals(goal: Sequence[Sequence]) -> list[tuple[str, str]]:
    """``(block, point text)`` for every ``at`` predicate whose second argument is a point, in goal order."""
    return [(p[1], point_text(p[2])) for p in goal if p[0] == "at" and is_point(p[2])]


def goal_values(goal: Sequence[Sequence], state: SymbolicState) -> list[bool]:
    """Truth value of every predicate of a goal."""
    return [holds(p, state) for p in goal]


def goal_satisfied(goal: Sequence[Sequence], state: SymbolicState) -> bool:
    """The goal is the conjunction of its predicates."""
    return all(goal_values(goal, state))


def describe(pred: Sequence) -> str:
    """A predicate as English, e.g. ``"the red block is in the green bowl"``."""
    head = pred[0]
    if is_spatial(pred):
        return describe_spatial(pred)
    if head == "stacked":
        return "one tower of the " + ", ".join(pred[1][:-1]) + " and " + pred[1][-1]
    if head == "at" and is_point(pred[2]):
        return f"the {pred[1]} is at {point_phrase(point_text(pred[2]))}"
    rel = {"in": "in", "on": "on", "at": "at the"}[head]
    obj = f"the {pred[2]}" if head != "at" else pred[2]
    return f"the {pred[1]} is {rel} {obj}"


def point_phrase(text: str) -> str:
    """A point's text as English: ``"(0.50, 0.10)"`` or ``"the middle + (0.05, -0.10)"``."""
    name, plus, offset = text.partition("+")
    pair = "(" + ", ".join((offset if plus else name).split(",")) + ")"
    return f"the {name} + {pair}" if plus else pair


def canonical_goal(goal: Sequence[Sequence]) -> tuple:
    """A goal as a set of predicates, order-free (lists of objects or places as sets too; an offset's
    ``[dx, dy]`` keeps its order), for comparing goals."""
    out = set()
    for pred in goal:
        head, *args = pred
        out.add((head, *(tuple(sorted(a)) if isinstance(a, list | tuple) and all(isinstance(x, str) for x in a)
                         else tuple(a) if isinstance(a, list | tuple) else a for a in args)))
    return tuple(sorted(out, key=repr))


POINT_SAME = 0.01  # two goals' points closer than this (metres) ask for the same place


def same_goal(a: Sequence[Sequence], b: Sequence[Sequence]) -> bool:
    """Two goals ask for the same thing: equal as sets of predicates, up to order, with table points equal to
    within ``POINT_SAME`` (a point read off perceived positions differs from one computed off the layout by the
    millimetres physics settled the objects)."""
    ca, cb = canonical_goal(a), canonical_goal(b)
    if ca == cb:
        return True
    if len(ca) != len(cb):
        return False
    rest = list(cb)
    for p in ca:
        match = next((q for q in rest if _same_pred(p, q)), None)
        if match is None:
            return False
        rest.remove(match)
    return True


def _same_pred(p: tuple, q: tuple) -> bool:
    if p == q:
        return True
    if not (len(p) == len(q) == 3 and p[0] == q[0] == "at" and p[1] == q[1] and is_point(p[2]) and is_point(q[2])):
        return False
    try:
        (x1, y1), (x2, y2) = parse_point(p[2]), parse_point(q[2])
    except ValueError:
        return False
    return abs(x1 - x2) < POINT_SAME and abs(y1 - y2) < POINT_SAME


def describe_goal(goal: Sequence[Sequence]) -> str:
    """The goal as one plain request in the wording the planners were trained on ("put the red and blue blocks
    in the green bowl and stack the cyan and yellow blocks"): what a planner reads once the goal is known."""
    def blocks(names: list[str]) -> str:
        colours = [n.split()[0] for n in names]
        return f"the {names[0]}" if len(names) == 1 else f"the {', '.join(colours[:-1])} and {colours[-1]} blocks"

    grouped: dict[tuple[str, str], list[str]] = {}  # (preposition, target) -> blocks, in order of mention
    parts: list[str] = []
    ons = {(p[1], p[2]) for p in goal if p[0] == "on"}
    said: set[tuple[str, str]] = set()  # "on" facts already said as a tower order
    for head, *args in goal:
        if is_spatial([head, *args]):
            parts.append("make it so that " + describe_spatial([head, *args]))
        elif head == "stacked":
            tower = list(args[0])
            chain = {(upper, lower) for lower, upper in zip(tower, tower[1:], strict=False)}
            if len(tower) > 2 and chain <= ons:  # a fully ordered tower, in the order-giving wording
                colours = [n.split()[0] for n in tower]
                parts.append(f"build a tower with the {tower[0]} at the bottom, then {', then '.join(colours[1:])} on top")
                said |= chain
            else:
                parts.append(f"stack {blocks(tower)}" if len(tower) > 1 else f"put the {tower[0]} down")
        elif head == "on" and (args[0], args[1]) in said:
            continue
        elif head == "on":
            parts.append(f"put the {args[0]} on the {args[1]}")
        else:
            where = args[1]
            if head == "at" and not (isinstance(where, str) and where in LOCATIONS):
                where = point_phrase(where if isinstance(where, str) else f"{where[0]:.2f},{where[1]:.2f}")
            else:
                where = f"the {where}"
            key = (head, where)
            if key not in grouped:
                grouped[key] = []
                parts.append(key)  # type: ignore[arg-type]  # filled in below, keeping the order
            grouped[key].append(args[0])
    return " and ".join(p if isinstance(p, str) else f"put {blocks(grouped[p])} {p[0]} {p[1]}" for p in parts)
