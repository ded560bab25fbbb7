"""Code-as-Policies programs: the prompt the language model writes them after, and example programs written from
generated tasks (the few-shot bank of ``--planner code`` and the pairs ``embodied train code`` fine-tunes on).

A program is one function ``def program(api):`` against the skill API of ``embodied.library.api``: the
primitives (the skills the registry exposes to skill code), the scene queries and the geometry helpers (``position``,
``distance``, ``corners``, ``free_point``, ``arrangement``). It runs in the restricted executor with the
library's budgets. Example programs are written from a task's goal and, for referents by place ("the block
closest to the blue bowl"), from the instruction's wording, so they compute what the instruction says instead
of naming the answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from embodied.planners.oracle import plan
from embodied.planners.prompting import _cosine, _features, initial_state
from embodied.understanding import spatial as sp
from embodied.world.scene import LOCATIONS
from embodied.world.spatial import DIRECTIONS, REGIONS
from embodied.world.symbolic import SymbolicState, is_point, parse_point
from embodied.world.tasks import Task
from skills.pick_and_place import PickAndPlace
from skills.place_at import PlaceAt

PNP, PLACE_AT = PickAndPlace.name, PlaceAt.name  # the two primitives example programs call
HEADER = (f"# Python programs for a robot arm at a table of blocks and bowls. Positions are [x, y] in metres:\n"
          f"# +x is the top (far side), +y is the left. api.position(name) gives an object's or place's [x, y];\n"
          f"# api.free_point(x, y) the nearest free spot; api.arrangement(shape, n, x, y, orientation) free points\n"
          f"# for a line / triangle / square; api.{PLACE_AT}(block, point); api.{PNP}(block, target).\n")
GAP = {"bowl": 0.17, "block": 0.10}  # how far a relation puts a block from its reference (clear of a bowl's rim)
FAR_GAP = 0.33  # "a lot to the left of": past the far-from distance (0.30)


def scene_line(names: Sequence[str]) -> str:
    return "# objects: " + ", ".join(names)


def prompt_for(instruction: str, names: Sequence[str]) -> str:
    """What a program is written after: the instruction and the objects, then the function's first line."""
    return f"{scene_line(names)}\n# instruction: {instruction.strip()}\ndef program(api):\n"


@dataclass(frozen=True)
class ProgramExample:
    """One instruction with its scene and the program that carries it out."""

    instruction: str
    names: tuple[str, ...]
    body: str  # the function body, indented four spaces, ending in a newline

    def text(self) -> str:
        return prompt_for(self.instruction, self.names) + self.body


def _q(name: str) -> str:
    return '"' + name + '"'


def _num(v: float) -> str:
    v = round(v, 3) + 0.0
    return f"{v:.2f}" if abs(v * 100 - round(v * 100)) < 1e-6 else f"{v:.3f}"


def _shift(expr_x: str, expr_y: str, dx: float, dy: float) -> tuple[str, str]:
    def add(e: str, d: float) -> str:
        return e if abs(d) < 1e-9 else f"{e} {'+' if d > 0 else '-'} {_num(abs(d))}"
    return add(expr_x, dx), add(expr_y, dy)


def write_program(task: Task, state: SymbolicState | None = None) -> str | None:
    """The body of a program that carries out ``task`` from ``state`` (default: its start), or None when its
    goal has a form no example program is written for."""
    state = state or initial_state(task)
    goal = [list(p) for p in task.goal]
    lines: list[str] = []
    done: set[int] = set()
    referent = _referent_code(task.instruction, state)
    chosen, var = (referent[1], referent[2]) if referent else (None, "")
    if referent:
        lines += referent[0]

    def subject(b: str) -> str:
        return "block" if var == "block" and b == chosen else _q(b)

    # arrangements, with their centre (a place or the middle) and sides
    for i, p in enumerate(goal):
        if p[0] in ("line", "triangle", "square"):
            blocks = list(p[1])
            centre = next((q[2] for q in goal if q[0] == "centred" and set(q[1]) == set(blocks)), None)
            side = next((q[2] for q in goal if q[0] == "at" and q[1] in blocks and q[2] in REGIONS), None)
            where = centre or side or "middle"
            orient = f", {_q(p[2])}" if p[0] == "line" else ""
            lines += [f"x, y = api.position({_q(where)})",
                      f"points = api.arrangement({_q(p[0])}, {len(blocks)}, x, y{orient})",
                      f"for block, point in zip([{', '.join(map(_q, blocks))}], points):",
                      f"    api.{PLACE_AT}(block, point)"]
            done |= {j for j, q in enumerate(goal) if j == i or (q[0] in ("centred", "at") and (
                q[1] in blocks if isinstance(q[1], str) else set(q[1]) == set(blocks)))}
    # goals with a choice
    for i, p in enumerate(goal):
        if p[0] == "different":
            blocks, places = list(p[1]), list(p[2])
            if all(x in LOCATIONS for x in places):
                lines += [f"for block, corner in zip([{', '.join(map(_q, blocks))}], api.corners()):",
                          f"    api.{PNP}(block, corner)"]
            elif all(b.replace("block", "bowl") in places for b in blocks) and len(blocks) >= 2:
                lines += [f"blocks = [{', '.join(map(_q, blocks))}]",
                          'bowls = [b.replace("block", "bowl") for b in blocks]',
                          "for block, bowl in zip(blocks, bowls[1:] + bowls[:1]):",
                          f"    api.{PNP}(block, bowl)"]
            else:
                return None
            done |= {i} | {j for j, q in enumerate(goal) if q[0] == "not_in" and q[1] in blocks}
    # a tower on a side: its bottom block to a free spot there, the rest on top
    towers = [p for p in goal if p[0] == "stacked"]
    for t in towers:
        sides = {q[2] for q in goal if q[0] == "at" and q[1] in t[1] and q[2] in REGIONS}
        if len(sides) == 1:
            side = sides.pop()
            order = list(t[1])
            lines += [f"x, y = api.position({_q(side)})", f"api.{PLACE_AT}({_q(order[0])}, api.free_point(x, y))"]
            lines += [f"api.{PNP}({_q(up)}, {_q(low)})" for low, up in zip(order, order[1:], strict=False)]
            done |= {j for j, q in enumerate(goal) if q is t or (q[0] == "at" and q[1] in t[1])}
    # relations, sides, distances, one block at a time
    by_block: dict[str, list[int]] = {}
    for i, p in enumerate(goal):
        if i in done:
            continue
        spatial_one = p[0] in (*DIRECTIONS, "near", "far_from", "between", "offset") or (
            p[0] == "at" and p[2] in REGIONS)
        if spatial_one:
            by_block.setdefault(p[1], []).append(i)
    sides = [p for i, p in enumerate(goal) if i not in done and p[0] == "at" and p[2] in REGIONS]
    if sides and len(sides) == len(by_block) and len({p[2] for p in sides}) == 1 and len(sides) > 1:
        lines += [f"for block in [{', '.join(map(_q, [p[1] for p in sides]))}]:",
                  f"    x, y = api.position({_q(sides[0][2])})",
                  f"    api.{PLACE_AT}(block, api.free_point(x, y))"]
        done |= {i for i, p in enumerate(goal) if p in sides}
        by_block = {}
    for b, idx in by_block.items():
        preds = [goal[i] for i in idx]
        heads = {p[0] for p in preds}
        rel = next((p for p in preds if p[0] in DIRECTIONS), None)
        if rel is not None:
            ref = rel[2]
            gap = FAR_GAP if "far_from" in heads else GAP["bowl" if ref.endswith("bowl") else "block"]
            u = DIRECTIONS[rel[0]]
            ex, ey = _shift("x", "y", gap * u[0], gap * u[1])
            lines += [f"x, y = api.position({_q(ref)})", f"api.{PLACE_AT}({subject(b)}, api.free_point({ex}, {ey}))"]
        elif heads == {"near"}:
            lines += [f"x, y = api.position({_q(preds[0][2])})", f"api.{PLACE_AT}({subject(b)}, api.free_point(x, y))"]
        elif heads == {"far_from"}:
            ref = preds[0][2]
            lines += [f"corner = max(api.corners(), key=lambda c: api.distance(c, {_q(ref)}))",
                      "x, y = api.position(corner)", f"api.{PLACE_AT}({subject(b)}, api.free_point(x, y))"]
        elif heads == {"between"}:
            _, _, r1, r2 = preds[0]
            lines += [f"x1, y1 = api.position({_q(r1)})", f"x2, y2 = api.position({_q(r2)})",
                      f"api.{PLACE_AT}({subject(b)}, api.free_point((x1 + x2) / 2, (y1 + y2) / 2))"]
        elif heads == {"offset"}:
            _, _, ref, (dx, dy) = preds[0]
            ex, ey = _shift("x", "y", dx, dy)
            lines += [f"x, y = api.position({_q(ref)})", f"api.{PLACE_AT}({subject(b)}, [{ex}, {ey}])"]
        elif heads == {"at"}:
            lines += [f"x, y = api.position({_q(preds[0][2])})", f"api.{PLACE_AT}({subject(b)}, api.free_point(x, y))"]
        else:
            return None
        done |= set(idx)
    rest = [p for i, p in enumerate(goal) if i not in done]
    if any(p[0] not in ("in", "on", "at", "stacked") for p in rest):
        return None
    moves = [p for p in rest if p[0] == "at" and is_point(p[2])]
    plain = [p for p in rest if p not in moves]
    for p in moves:  # a move by a distance from where the block is
        x, y = parse_point(p[2])
        here = state.xy.get(p[1])
        if here is None:
            return None
        dx, dy = round(x - here[0], 2), round(y - here[1], 2)
        ex, ey = _shift("x", "y", dx, dy)
        lines += [f"x, y = api.position({_q(p[1])})", f"api.{PLACE_AT}({_q(p[1])}, [{ex}, {ey}])"]
    if plain:
        if var == "block" and len(plain) == 1 and plain[0][1] == chosen:
            lines.append(f"api.{PNP}(block, {_q(plain[0][2])})")
        elif var == "corner" and len(plain) == 1 and plain[0][2] == chosen:
            lines.append(f"api.{PNP}({_q(plain[0][1])}, corner)")
        else:
            calls = plan(state, plain)
            if calls is None:
                return None
            for call in calls:
                args = ", ".join(_q(v) for v in call.args.values())
                lines.append(f"api.{call.name}({args})")
    if not lines:
        return None
    return "".join("    " + line + "\n" for line in lines)


def _referent_code(instruction: str, state: SymbolicState) -> tuple[list[str], str, str] | None:
    """Code that finds what a referent by place picks ("the block closest to the blue bowl" ->
    ``block = min(...)``), the name it picks on ``state`` and the variable holding it (``block`` or ``corner``);
    None when the instruction has no referent."""
    from embodied.world.spatial import position

    text = " ".join(re.findall(r"[a-z]+|\d+", instruction.lower()))
    names = list(state.support) + list(state.bowls)
    pos = {n: position(state, n) for n in names}
    found: list[tuple[str, re.Match[str], str]] = []

    def ref_of(phrase: str) -> str | None:
        words = phrase.split()
        return next((n for n in [*names, *LOCATIONS] if all(w in words for w in n.split())), None)

    try:
        sp.resolve_referents(text, names, {k: v for k, v in pos.items() if v is not None}, ref_of, trace=found)
    except sp.SpatialRefusal:
        return None
    if len(found) != 1:
        return None
    kind, m, picked = found[0]
    g = m.groupdict()
    keys = {"left": "-api.position(b)[1]", "right": "api.position(b)[1]", "top": "-api.position(b)[0]",
            "bottom": "api.position(b)[0]"}
    if kind == "distance":
        best = "max" if g["sup"] in ("farthest", "furthest", "farther") else "min"
        code = [f"block = {best}(api.blocks(), key=lambda b: api.distance(b, {_q(ref_of(g['ref']) or '')}))"]
    elif kind == "nth":
        code = [f"block = sorted(api.blocks(), key=lambda b: {keys[g['side']]})[{sp._ORDINAL[g['ord']]}]"]
    elif kind == "most":
        pool = "api.bowls()" if g["kind"].startswith(("bowl", "dish")) else "api.blocks()"
        code = [f"block = sorted({pool}, key=lambda b: {keys[sp._MOST[g['most']]]})[0]"]
        if pool == "api.bowls()":
            return None
    elif kind == "direction":
        ref = ref_of(g["ref"]) or ""
        word = g["dir"]
        u = DIRECTIONS[sp._DIR_HEAD["in front" if word.startswith("in front") else word]]
        axis, other = (0, 1) if u[0] else (1, 0)
        sign = "" if (u[0] or u[1]) > 0 else "-"
        code = [f"x, y = api.position({_q(ref)})", f"others = [b for b in api.blocks() if b != {_q(ref)}]",
                f"block = max(others, key=lambda b: {sign}(api.position(b)[{axis}] - {'xy'[axis]})"
                f" - abs(api.position(b)[{other}] - {'xy'[other]}))"]
    elif kind == "corner":
        best = "max" if g["sup"] in ("farthest", "furthest") else "min"
        return [f"corner = {best}(api.corners(), key=lambda c: api.distance(c, {_q(ref_of(g['ref']) or '')}))"], \
            picked, "corner"
    else:
        return None
    return code, picked, "block"


@functools.lru_cache(maxsize=2)
def example_bank(per_family: int = 6, seed: int = 1_500_000) -> tuple[ProgramExample, ...]:
    """Generated tasks of every family (old and spatial) with their programs, for few-shot retrieval."""
    from envs.generator import FAMILY_NAMES, LONG_FAMILY_NAMES, SPATIAL_FAMILY_NAMES, generate

    out = []
    for f_index, family in enumerate(FAMILY_NAMES + LONG_FAMILY_NAMES + SPATIAL_FAMILY_NAMES):
        for k in range(per_family):
            task = generate(family, seed + 1000 * f_index + k)
            body = write_program(task)
            if body is not None:
                out.append(ProgramExample(task.instruction, tuple(task.scene.object_names()), body))
    return tuple(out)


def retrieve(instruction: str, bank: Sequence[ProgramExample], k: int) -> list[ProgramExample]:
    """The ``k`` examples whose instructions are most alike in structure, the closest last."""
    query = _features(instruction)
    ranked = sorted(bank, key=lambda e: -_cosine(query, _features(e.instruction)))
    return ranked[:k][::-1]


