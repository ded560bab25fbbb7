"""Spatial goals: sides of the table, relations between objects, metric offsets, arrangements and goals with a
choice. Each predicate's geometric meaning and tolerance is defined here once; goal checks (``holds``), the
oracle's goal realisation (``realize``), planning success and goal inference all call these functions.

Positions are table points (x, y) in metres, world frame: +x the far side ("top", "behind"), +y the robot's
left. An object's *position*: a bowl's centre; a block's centre when it rests directly on the table; the
bottom block's centre for a block in a tower; the bowl's centre for a block in a bowl (or on blocks in it); a
named location's point. Held and fallen blocks have no position, and every relation on them is false.

Meanings (``subject`` is a block that must rest on the table, directly or on a tower standing on it; a
reference is a block, bowl or named location; "``d``" is subject position minus reference position):

============================================ =========================================================
``["at", b, "left side"]`` (and right, top,   b's position lies in the side's band, b not in a bowl:
bottom side)                                  left y >= 0.12, right y <= -0.12, top x >= 0.55, bottom
                                              x <= 0.40 (the workspace is x 0.25..0.70, y -0.32..0.32)
``["left_of", b, r]`` / ``right_of`` /        ``d`` along the direction (+y / -y / +x / -x) is at least
``behind`` / ``in_front_of``                  0.05 and at least the sideways part (within 45 degrees)
``["near", b, r]`` / ``["far_from", b, r]``   centre distance <= 0.18 / >= 0.30
``["between", b, r1, r2]``                    b projects onto the segment r1-r2 at 20-80 % of its length,
                                              within 0.04 of it
``["offset", b, r, [dx, dy]]``                b's position within 0.06 (``AT_XY_TOL``) of r's + (dx, dy)
``["line", [b, ...], o]``                     every block directly on the table, centres within 0.03 of one
                                              line of orientation o (horizontal: along y; vertical: along
                                              x; diagonal: either diagonal; any), neighbours 0.05-0.15 apart
``["triangle", [b1, b2, b3]]``                directly on the table, sides 0.06-0.30, every angle >= 25 deg
``["square", [b1, b2, b3, b4]]``              directly on the table, the four sides within 25 % of their
                                              mean (0.06-0.30), both diagonals within 25 % of mean x sqrt 2
``["centred", [b, ...], r]``                  the blocks' centroid within 0.08 of r (a location, a side's
                                              centre, or an object)
``["not_in", b, bowl]``                       b is not in the bowl
``["one_of", b, [place, ...]]``               b is in / at one of the places (bowls, locations, sides)
``["different", [b, ...], [place, ...]]``     each block in / at one of the places, no two at the same one
============================================ =========================================================
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from embodied.world.scene import LOCATIONS, WORKSPACE_X, WORKSPACE_Y, in_reach
from embodied.world.symbolic import (
    AT_XY_TOL,
    BOWL_CLEARANCE,
    POINT_CLEARANCE,
    Point,
    SymbolicState,
    point_text,
    table_support,
)

# Sides of the table: name -> ((x min, x max), (y min, y max)), bands along each edge of the workspace.
REGIONS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "left side": (WORKSPACE_X, (0.12, WORKSPACE_Y[1])),
    "right side": (WORKSPACE_X, (WORKSPACE_Y[0], -0.12)),
    "top side": ((0.55, WORKSPACE_X[1]), WORKSPACE_Y),
    "bottom side": ((WORKSPACE_X[0], 0.40), WORKSPACE_Y),
}
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)
DIRECTIONS: dict[str, tuple[float, float]] = {"left_of": (0.0, 1.0), "right_of": (0.0, -1.0),
                                              "behind": (1.0, 0.0), "in_front_of": (-1.0, 0.0)}
ORIENTATIONS: tuple[str, ...] = ("horizontal", "vertical", "diagonal", "any")
REL_MIN = 0.05  # a directional relation needs at least this offset along its direction
NEAR, FAR = 0.18, 0.30
BETWEEN_T, BETWEEN_PERP = (0.2, 0.8), 0.04
LINE_PERP, LINE_GAP = 0.03, (0.05, 0.15)
SHAPE_SIDE, SHAPE_REL, TRIANGLE_MIN_ANGLE = (0.06, 0.30), 0.25, 25.0
CENTRED_TOL = 0.08
SLACK = 0.02  # realised goals meet every tolerance with this much to spare, for the arm's placement error

# head -> argument kinds, for validation and for listing the blocks a goal names
SPATIAL: dict[str, tuple[str, ...]] = {
    **{d: ("block", "ref") for d in DIRECTIONS}, "near": ("block", "ref"), "far_from": ("block", "ref"),
    "between": ("block", "ref", "ref"), "offset": ("block", "ref", "vector"),
    "line": ("blocks", "orientation"), "triangle": ("blocks3",), "square": ("blocks4",),
    "centred": ("blocks", "centre"), "not_in": ("block", "bowl"), "one_of": ("block", "places"),
    "different": ("blocks", "places"),
}
SHAPES = ("line", "triangle", "square")
CHOICES = ("not_in", "one_of", "different")


def position(state: SymbolicState, name: str) -> Point | None:
    """The table position of a block, bowl or location (see the module docstring); None when it has none."""
    if name in LOCATIONS:
        return LOCATIONS[name]
    if name in REGIONS:
        (x0, x1), (y0, y1) = REGIONS[name]
        return (0.5 * (x0 + x1), 0.5 * (y0 + y1))
    if name in state.bowls:
        return state.xy.get(name)
    if name not in state.support:
        return None
    chain = state.chain(name)
    bottom = chain[-1] if chain else name
    base = state.support.get(bottom)
    if base in state.bowls:
        return state.xy.get(base)
    if base == "table" or base in LOCATIONS:
        return state.xy.get(bottom, LOCATIONS.get(base))
    return None


def on_table(state: SymbolicState, block: str) -> bool:
    """The block's tower stands on the table (not in a bowl, not held, not fallen)."""
    return block in state.support and state.base(block) in ("table", *LOCATIONS)


def flat(state: SymbolicState, block: str) -> bool:
    """The block rests directly on the table."""
    return state.support.get(block) in ("table", *LOCATIONS) and block in state.xy


def in_region(p: Point, region: str, slack: float = 0.0) -> bool:
    (x0, x1), (y0, y1) = REGIONS[region]
    return x0 + slack <= p[0] <= x1 - slack and y0 + slack <= p[1] <= y1 - slack


def rests_at(state: SymbolicState, block: str, place: str) -> bool:
    """``block`` is in the bowl / at the location / on the side ``place``."""
    if block not in state.support:
        return False
    if place in REGIONS:
        p = position(state, block)
        return on_table(state, block) and p is not None and in_region(p, place)
    return state.base(block) == place


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Angle at ``a`` of the triangle abc, degrees."""
    u, v = b - a, c - a
    cos = float(np.dot(u, v) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-9))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def line_ok(points: np.ndarray, orientation: str, slack: float = 0.0) -> bool:
    """Points on one line of the orientation, neighbours ``LINE_GAP`` apart (tolerances less ``slack``)."""
    c = points.mean(axis=0)
    if orientation == "horizontal":
        dirs = [np.array([0.0, 1.0])]
    elif orientation == "vertical":
        dirs = [np.array([1.0, 0.0])]
    elif orientation == "diagonal":
        dirs = [np.array([1.0, 1.0]) / math.sqrt(2), np.array([1.0, -1.0]) / math.sqrt(2)]
    else:
        _, _, vt = np.linalg.svd(points - c)
        dirs = [vt[0]]
    for d in dirs:
        n = np.array([-d[1], d[0]])
        along = np.sort((points - c) @ d)
        gaps = np.diff(along)
        if (np.abs((points - c) @ n).max() <= LINE_PERP - slack / 2
                and gaps.min() >= LINE_GAP[0] + slack / 2 and gaps.max() <= LINE_GAP[1] - slack):
            return True
    return False


def triangle_ok(points: np.ndarray, slack: float = 0.0) -> bool:
    a, b, c = points
    sides = [np.linalg.norm(a - b), np.linalg.norm(b - c), np.linalg.norm(c - a)]
    angles = [_angle(a, b, c), _angle(b, c, a), _angle(c, a, b)]
    return (min(sides) >= SHAPE_SIDE[0] + slack and max(sides) <= SHAPE_SIDE[1] - slack
            and min(angles) >= TRIANGLE_MIN_ANGLE + 100 * slack)


def square_ok(points: np.ndarray, slack: float = 0.0) -> bool:
    c = points.mean(axis=0)
    order = np.argsort(np.arctan2(points[:, 1] - c[1], points[:, 0] - c[0]))
    p = points[order]
    sides = np.linalg.norm(p - np.roll(p, -1, axis=0), axis=1)
    diags = np.array([np.linalg.norm(p[0] - p[2]), np.linalg.norm(p[1] - p[3])])
    m = float(sides.mean())
    rel = SHAPE_REL - 5 * slack
    return (SHAPE_SIDE[0] + slack <= m <= SHAPE_SIDE[1] - slack and bool(np.all(np.abs(sides - m) <= rel * m))
            and bool(np.all(np.abs(diags - m * math.sqrt(2)) <= rel * m * math.sqrt(2))))


def spatial_holds(pred: Sequence, state: SymbolicState, slack: float = 0.0) -> bool:
    """Whether one spatial predicate is true in ``state`` (every tolerance tightened by ``slack`` metres)."""
    head = pred[0]
    if head == "at":  # a side of the table
        p = position(state, pred[1])
        return on_table(state, pred[1]) and p is not None and in_region(p, pred[2], slack)
    if head == "not_in":
        return pred[1] not in state.support or state.base(pred[1]) != pred[2]
    if head == "one_of":
        return any(rests_at(state, pred[1], place) for place in pred[2])
    if head == "different":
        blocks, places = pred[1], pred[2]
        ok = [[p for p in places if rests_at(state, b, p)] for b in blocks]
        return any(len(set(choice)) == len(blocks) for choice in itertools.product(*ok))
    if head in SHAPES or head == "centred":
        blocks = list(pred[1])
        if head == "centred":
            pts = [position(state, b) for b in blocks]
            target = position(state, pred[2])
            if target is None or any(p is None for p in pts) or not all(on_table(state, b) for b in blocks):
                return False
            return math.dist(np.mean(np.asarray(pts), axis=0), target) <= CENTRED_TOL - slack
        if not all(flat(state, b) for b in blocks):
            return False
        points = np.asarray([state.xy[b] for b in blocks], dtype=float)
        if head == "line":
            return line_ok(points, pred[2], slack)
        return triangle_ok(points, slack) if head == "triangle" else square_ok(points, slack)
    # relations: a subject block resting on the table, and reference objects
    subject = pred[1]
    p = position(state, subject)
    if p is None or not on_table(state, subject):
        return False
    refs = pred[2:4] if head == "between" else pred[2:3]
    if subject in refs or any(r in state.support and subject in state.chain(r) for r in refs):
        return False
    qs = [position(state, r) for r in refs]
    if any(q is None for q in qs):
        return False
    if any(r in state.support and r in state.chain(subject) for r in refs):
        return False  # standing on the reference
    d = np.asarray(p) - np.asarray(qs[0])
    if head in DIRECTIONS:
        u = np.asarray(DIRECTIONS[head])
        along, side = float(d @ u), abs(float(d @ np.array([-u[1], u[0]])))
        return along >= REL_MIN + slack and along >= side + slack
    if head == "near":
        return float(np.linalg.norm(d)) <= NEAR - slack
    if head == "far_from":
        return float(np.linalg.norm(d)) >= FAR + slack
    if head == "offset":
        return float(np.linalg.norm(d - np.asarray(pred[3], dtype=float))) <= AT_XY_TOL - slack
    if head == "between":
        a, b = np.asarray(qs[0]), np.asarray(qs[1])
        seg = b - a
        length = float(np.linalg.norm(seg))
        if length < 1e-6:
            return False
        t = float((np.asarray(p) - a) @ seg) / length**2
        v = np.asarray(p) - a
        perp = abs(float(seg[0] * v[1] - seg[1] * v[0])) / length
        return BETWEEN_T[0] + slack <= t <= BETWEEN_T[1] - slack and perp <= BETWEEN_PERP - slack / 2
    raise ValueError(f"unknown spatial predicate {head!r}")


def is_spatial(pred: Sequence) -> bool:
    """A predicate this module decides (the region form of ``at`` included)."""
    return pred[0] in SPATIAL or (pred[0] == "at" and isinstance(pred[2], str) and pred[2] in REGIONS)


def pred_blocks(pred: Sequence) -> list[str]:
    """The blocks a predicate constrains (its subjects), in order."""
    head = pred[0]
    if head in SHAPES or head in ("centred", "different", "stacked"):
        return list(pred[1])
    return [pred[1]]


def describe_spatial(pred: Sequence) -> str:
    """A spatial predicate as English."""
    head = pred[0]
    names = ", ".join(pred[1][:-1]) + " and " + pred[1][-1] if isinstance(pred[1], list) else ""
    if head == "at":
        return f"the {pred[1]} is on the {pred[2]} of the table"
    if head in DIRECTIONS:
        return f"the {pred[1]} is {head.replace('_', ' ')} the {pred[2]}"
    if head == "near":
        return f"the {pred[1]} is near the {pred[2]}"
    if head == "far_from":
        return f"the {pred[1]} is far from the {pred[2]}"
    if head == "between":
        return f"the {pred[1]} is between the {pred[2]} and the {pred[3]}"
    if head == "offset":
        dx, dy = pred[3]
        return f"the {pred[1]} is {dx:+.2f} m along x and {dy:+.2f} m along y from the {pred[2]}"
    if head == "line":
        kind = "" if pred[2] == "any" else pred[2] + " "
        return f"the {names} are in a {kind}line"
    if head in ("triangle", "square"):
        return f"the {names} form a {head}"
    if head == "centred":
        return f"the {names} are centred on the {pred[2]}"
    if head == "not_in":
        return f"the {pred[1]} is not in the {pred[2]}"
    if head == "one_of":
        return f"the {pred[1]} is in or at one of: {', '.join(pred[2])}"
    if head == "different":
        return f"the {names} are each in or at a different one of: {', '.join(pred[2])}"
    raise ValueError(f"unknown spatial predicate {head!r}")


# --------------------------------------------------------------------------- realising a goal
def _grid(step: float = 0.02) -> list[Point]:
    xs = np.arange(WORKSPACE_X[0] + 0.02, WORKSPACE_X[1] - 0.02 + 1e-9, step)
    ys = np.arange(WORKSPACE_Y[0] + 0.02, WORKSPACE_Y[1] - 0.02 + 1e-9, step)
    return [(float(x), float(y)) for x in xs for y in ys if in_reach((x, y))]


_GRID = _grid() + list(LOCATIONS.values())  # the named locations themselves too (a block there is at both)


def _ideal(pred: Sequence, state: SymbolicState, block: str) -> Point | None:
    """Where a relation would most naturally put ``block`` (None: no preference)."""
    head = pred[0]
    refs = pred[2:4] if head == "between" else pred[2:3]
    qs = [position(state, r) for r in refs] if head in SPATIAL else []
    if any(q is None for q in qs):
        return None
    if head in DIRECTIONS:
        gap = 0.17 if pred[2] in state.bowls else 0.10
        return (qs[0][0] + gap * DIRECTIONS[head][0], qs[0][1] + gap * DIRECTIONS[head][1])
    if head == "near":
        return qs[0]
    if head == "offset":
        return (qs[0][0] + float(pred[3][0]), qs[0][1] + float(pred[3][1]))
    if head == "between":
        return ((qs[0][0] + qs[1][0]) / 2, (qs[0][1] + qs[1][1]) / 2)
    if head == "at":
        (x0, x1), (y0, y1) = REGIONS[pred[2]]
        p = position(state, block) or (0.5 * sum(WORKSPACE_X), 0.0)
        return (min(max(p[0], x0 + 0.06), x1 - 0.06), min(max(p[1], y0 + 0.06), y1 - 0.06))
    return None


def _free(p: Point, taken: Sequence[Point], state: SymbolicState, fixed: Sequence[str]) -> bool:
    """``p`` is clear of the points already chosen, the bowls and the blocks that stay where they are."""
    if not in_reach(p):
        return False
    if any(0.003 < math.dist(p, q) < AT_XY_TOL + 0.002 for q in LOCATIONS.values()):
        return False  # a planner could take it for the named location, which lies centimetres off
    if any(math.dist(p, q) < POINT_CLEARANCE + 0.015 for q in taken):
        return False
    for name in state.bowls:
        q = state.xy.get(name)
        if q is not None and math.dist(p, q) < BOWL_CLEARANCE + 0.005:
            return False
    for name in fixed:
        q = position(state, name)
        if q is not None and on_table(state, name) and math.dist(p, q) < POINT_CLEARANCE + 0.015:
            return False
    return True


def _snap(state: SymbolicState, block: str, p: Point) -> Point:
    """A block already within ``AT_XY_TOL`` of ``p`` on the table counts as there and is not moved: its chosen
    point is where it actually is, so checks see the real position."""
    here = state.xy.get(block) if flat(state, block) else None
    return here if here is not None and math.dist(here, p) < AT_XY_TOL else p


def _shape_points(head: str, n: int, centre: Point, size: float, turn: int, orientation: str = "horizontal"
                  ) -> list[Point]:
    """The points of a line / triangle / square of ``n`` blocks around ``centre``."""
    cx, cy = centre
    if head == "line":
        d = {"horizontal": (0.0, 1.0), "vertical": (1.0, 0.0), "any": (0.0, 1.0)}.get(orientation)
        if d is None:  # diagonal: one of the two
            d = (1 / math.sqrt(2), (1 if turn % 2 == 0 else -1) / math.sqrt(2))
        offs = [(i - (n - 1) / 2) * size for i in range(n)]
        return [(cx + o * d[0], cy + o * d[1]) for o in offs]
    k = 3 if head == "triangle" else 4
    r = size / (2 * math.sin(math.pi / k))
    start = turn * math.pi / 2 + (math.pi / 4 if k == 4 else 0.0)
    return [(cx + r * math.cos(start + 2 * math.pi * i / k), cy + r * math.sin(start + 2 * math.pi * i / k))
            for i in range(k)]


def free_point(state: SymbolicState, p: Point) -> Point | None:
    """The point nearest ``p`` where a block can be set down: in reach, clear of bowls and of every block now on
    the table (and not taken for a named location a few centimetres off); None when none is."""
    blocks = [b for b in state.support if on_table(state, b)]
    for g in [p] + sorted(_GRID, key=lambda g: math.dist(g, p)):
        if _free(g, [], state, blocks):
            return g
    return None


def arrangement_points(kind: str, n: int, state: SymbolicState, centre: Point, orientation: str = "any"
                       ) -> list[Point] | None:
    """Points for ``n`` blocks in a line (of ``orientation``), triangle or square, centred as near ``centre`` as
    the table allows, every point clear of bowls and of every block now on the table; None when none fit."""
    blocks = [b for b in state.support if on_table(state, b)]
    sizes = [0.10, 0.08, 0.12] if kind == "line" and n <= 4 else [0.08, 0.10] if kind == "line" else [0.12, 0.10]
    for c in [centre] + sorted(_GRID, key=lambda g: math.dist(g, centre)):
        for size in sizes:
            for turn in range(4 if kind != "line" or orientation == "diagonal" else 1):
                pts = _shape_points(kind, n, c, size, turn, orientation)
                if not all(_free(q, pts[:k], state, blocks) for k, q in enumerate(pts)):
                    continue
                arr = np.asarray(pts)
                ok = (line_ok(arr, orientation, SLACK) if kind == "line" else
                      triangle_ok(arr, SLACK) if kind == "triangle" else square_ok(arr, SLACK))
                if ok:
                    return [(round(x, 3), round(y, 3)) for x, y in pts]
    return None


def _choices(goal: Sequence[Sequence], state: SymbolicState) -> list[list[list]]:
    """The concrete ``in`` / ``at`` predicates each way of meeting the goal's choices gives, those that keep
    blocks where they already are first (at most 64 ways)."""
    options: list[list[list[list]]] = []
    for pred in goal:
        if pred[0] == "one_of":
            ranked = sorted(pred[2], key=lambda p: not rests_at(state, pred[1], p))
            options.append([[_place_pred(pred[1], p)] for p in ranked])
        elif pred[0] == "different":
            blocks, places = list(pred[1]), list(pred[2])
            ways = list(itertools.permutations(places, len(blocks)))
            ways.sort(key=lambda w: -sum(rests_at(state, b, p) for b, p in zip(blocks, w, strict=True)))
            options.append([[_place_pred(b, p) for b, p in zip(blocks, w, strict=True)] for w in ways[:24]])
    out: list[list[list]] = []
    for combo in itertools.product(*options):
        out.append([p for part in combo for p in part])
        if len(out) >= 64:
            break
    return out or [[]]


def _place_pred(block: str, place: str) -> list:
    return ["in" if place.endswith(" bowl") else "at", block, place]


def _anchors(goal: Sequence[Sequence]) -> dict[str, str]:
    """block -> the bottom block of the tower the goal puts it in (itself when none)."""
    below: dict[str, str] = {}
    for pred in goal:
        if pred[0] == "on":
            below[pred[1]] = pred[2]
    anchor: dict[str, str] = {}
    for pred in goal:
        if pred[0] == "stacked":
            tower = list(pred[1])
            bottoms = [b for b in tower if b not in below]
            bottom = bottoms[0] if bottoms else tower[0]
            for b in tower:
                anchor[b] = bottom
    for b in below:
        cur, seen = b, set()
        while cur in below and cur not in seen:
            seen.add(cur)
            cur = below[cur]
        anchor[b] = anchor.get(cur, cur)
    return anchor


def _pin(state: SymbolicState, block: str) -> list | None:
    """``at`` the block's current table point: the bottom of a tower that spatial predicates place through it
    stays where it is (else a planner could build the tower elsewhere)."""
    p = state.xy.get(block) if flat(state, block) else None
    return None if p is None else ["at", block, point_text([round(p[0], 3), round(p[1], 3)])]


def _predict(state: SymbolicState, concrete: Sequence[Sequence], points: dict[str, Point],
             anchor: dict[str, str]) -> SymbolicState:
    """The state once the concrete goal holds and the blocks stand at their chosen points."""
    s = state.copy()
    for b, p in points.items():
        s = s.moved(b, table_support(p), p)
    for pred in concrete:
        if pred[0] in ("in", "at") and isinstance(pred[2], str) and pred[2] not in REGIONS and pred[1] not in points:
            s = s.moved(pred[1], pred[2])
    for b, a in anchor.items():  # tower blocks over their bottom block, in goal order
        if b != a:
            s.support[b] = a
            s.xy.pop(b, None)
    for pred in concrete:
        if pred[0] == "on":
            s.support[pred[1]] = pred[2]
    return s


def realize(goal: Sequence[Sequence], state: SymbolicState, max_checks: int = 20_000) -> list[list] | None:
    """A concrete goal (``in``, ``on``, ``at`` a location or a point, ``stacked``) that the oracle can plan and
    whose truth implies every spatial predicate of ``goal``, with ``SLACK`` to spare; None when no choice of
    places and points found in ``max_checks`` checks satisfies it. A goal without spatial predicates comes back
    unchanged; predicates that already hold and whose blocks need not move stay as they are."""
    goal = [list(p) for p in goal]
    spatial = [p for p in goal if is_spatial(p)]
    if not spatial:
        return goal
    basic = [p for p in goal if not is_spatial(p)]
    point_preds = [p for p in spatial if p[0] not in CHOICES]
    anchor = _anchors(basic)
    budget = [max_checks]
    for chosen in _choices(goal, state):
        concrete = basic + chosen
        moved_by_goal = {p[1] for p in concrete if p[0] in ("in", "at", "on")} | set(anchor)
        # not_in of a block that is in that bowl and nothing else moves: it needs a point of its own
        extra = [p for p in spatial if p[0] == "not_in" and not spatial_holds(p, state)
                 and p[1] not in moved_by_goal and not any(p[1] in pred_blocks(q) for q in point_preds)]
        failing = [p for p in point_preds if not spatial_holds(p, _predict(state, concrete, {}, anchor), SLACK)]
        movers: list[str] = []
        for p in failing + extra:
            for b in pred_blocks(p):
                a = anchor.get(b, b)
                if a not in movers:
                    movers.append(a)
        towers = sorted({a for b, a in anchor.items() if any(b in pred_blocks(p) for p in point_preds)})
        if not movers:
            if all(spatial_holds(p, _predict(state, concrete, {}, anchor)) for p in spatial):
                return concrete + [p for p in (_pin(state, a) for a in towers) if p]
            continue
        points = _place(movers, point_preds, concrete, anchor, state, budget)
        if points is not None:
            pins = [p for p in (_pin(state, a) for a in towers if a not in points) if p]
            return concrete + [["at", b, point_text([round(x, 3), round(y, 3)])] for b, (x, y) in points.items()] + pins
        if budget[0] <= 0:
            break
    return None


def _place(movers: list[str], preds: list[list], concrete: list[list], anchor: dict[str, str],
           state: SymbolicState, budget: list[int]) -> dict[str, Point] | None:
    """Points for ``movers`` that make every point predicate hold (with slack): shapes as units first, then one
    block at a time over a grid ranked by each relation's natural spot; depth-first with backtracking."""
    fixed = [b for b in state.support if b not in movers and anchor.get(b, b) == b
             and not any(p[1] == b for p in concrete if p[0] in ("in", "at", "on"))]
    shapes = [p for p in preds if p[0] in SHAPES and any(anchor.get(b, b) in movers for b in p[1])]
    units: list[tuple[list[str], list[list[Point]]]] = []
    in_shapes: set[str] = set()
    for sp in shapes:
        blocks = list(sp[1])
        in_shapes |= set(blocks)
        centred = [q for q in preds if q[0] == "centred" and set(q[1]) == set(blocks)]
        regions = [q[2] for q in preds if q[0] == "at" and q[1] in blocks]
        targets = [position(state, centred[0][2])] if centred else []
        if not targets and regions:
            targets = [position(state, regions[0])]
        if not targets:
            cur = [position(state, b) for b in blocks]
            ok = [c for c in cur if c is not None]
            targets = [tuple(np.mean(np.asarray(ok), axis=0)) if ok else (0.5 * sum(WORKSPACE_X), 0.0)]
        centres = [tuple(targets[0])] + sorted(_GRID, key=lambda g: math.dist(g, targets[0]))
        n = len(blocks)
        sizes = [0.10, 0.08, 0.12] if sp[0] == "line" and n <= 4 else [0.08, 0.10] if sp[0] == "line" else [0.12, 0.10]
        layouts = []
        for c in centres:
            for size in sizes:
                for turn in range(4 if sp[0] != "line" or sp[2] == "diagonal" else 1):
                    layouts.append(_shape_points(sp[0], n, c, size, turn, sp[2] if sp[0] == "line" else ""))
        units.append((blocks, layouts))
    singles = [b for b in movers if b not in in_shapes]
    chosen: dict[str, Point] = {}

    def check() -> bool:
        budget[0] -= 1
        s = _predict(state, concrete, chosen, anchor)
        for p in preds:
            blocks = set(pred_blocks(p)) | ({p[2]} if len(p) > 2 and isinstance(p[2], str) else set()) | (
                {p[3]} if p[0] == "between" else set())
            if any(anchor.get(b, b) in movers and anchor.get(b, b) not in chosen for b in blocks if b in state.support):
                continue  # not all of its blocks placed yet
            if not spatial_holds(p, s, SLACK):
                return False
        return True

    def place_units(i: int) -> bool:
        if budget[0] <= 0:
            return False
        if i == len(units):
            return place_singles(0)
        blocks, layouts = units[i]
        for pts in layouts:
            taken = list(chosen.values())
            if not all(_free(p, taken + pts[:k], state, fixed) for k, p in enumerate(pts)):
                continue
            for b, p in zip(blocks, pts, strict=True):
                chosen[anchor.get(b, b)] = _snap(state, anchor.get(b, b), p)
            if check() and place_units(i + 1):
                return True
            for b in blocks:
                chosen.pop(anchor.get(b, b), None)
            if budget[0] <= 0:
                return False
        return False

    def place_singles(j: int) -> bool:
        if j == len(singles):
            return True
        b = singles[j]
        mine = [p for p in preds if any(anchor.get(x, x) == b for x in pred_blocks(p))]
        s = _predict(state, concrete, chosen, anchor)
        ideals = [q for q in (_ideal(p, s, b) for p in mine) if q is not None]
        here = position(state, b) or (0.5 * sum(WORKSPACE_X), 0.0)
        far = [p for p in mine if p[0] == "far_from"]

        def cost(g: Point) -> float:
            c = sum(math.dist(g, q) for q in ideals) + 0.1 * math.dist(g, here)
            for p in far:
                q = position(s, p[2])
                if q is not None:
                    c += abs(math.dist(g, q) - (FAR + 0.05))
            return c

        for g in sorted(_GRID, key=cost)[:400]:
            if budget[0] <= 0:
                return False
            if not _free(g, list(chosen.values()), state, fixed):
                continue
            chosen[b] = _snap(state, b, g)
            if check() and place_singles(j + 1):
                return True
            chosen.pop(b)
        return False

    return dict(chosen) if place_units(0) else None


