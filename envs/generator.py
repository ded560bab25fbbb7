"""SayCan-style task families: seeded generators of (instruction, scene, goal) with distractor objects.

Every family starts from the same situation the environment builds: every block resting on the table,
none at a named location, so every generated goal is false at the start. All randomness comes from
``numpy.random.default_rng(seed)``; the task's ``seed`` field (physics and layout) is the same seed, and
its id is ``"{family}-{seed}"``, so ``generate(family, seed)`` reproduces any task of a suite.

``max_steps`` follows ``embodied.world.tasks.default_max_steps``: two steps (pick, place) per block the goal names,
plus one for ``done`` and one spare. From the all-on-table start the oracle never needs more than one
``pick_and_place`` per goal block, so the budget also covers one retry per block for planners that use
the combined skill.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from embodied.world.errors import TaskError
from embodied.world.layout import initial_positions
from embodied.world.predicates import goal_satisfied, point_goals
from embodied.world.scene import COLOR_NAMES, LOCATION_NAMES, LOCATIONS, MAX_BLOCKS, MAX_BOWLS, suggest
from embodied.world.spatial import realize, spatial_holds
from embodied.world.symbolic import SymbolicState, parse_point, point_failure
from embodied.world.tasks import SceneSpec, Task, default_max_steps


@dataclass
class Draft:
    """A family's output before distractors: the goal objects (colours), the goal and the wording."""

    instruction: str
    blocks: list[str]
    bowls: list[str]
    goal: list[list]
    extra_blocks: bool = True  # False when the wording covers every block ("all the blocks", ...)
    phrase: str = field(default="", repr=False)  # "the red block in the green bowl", for combo
    # the goal from the layout (object -> table xy), None when it is not determinate there (spatial families)
    resolve: Callable[[dict[str, tuple[float, float]]], list[list] | None] | None = field(default=None, repr=False)


def _colors(rng: np.random.Generator, n: int, exclude: list[str] | tuple[str, ...] = ()) -> list[str]:
    pool = [c for c in COLOR_NAMES if c not in exclude]
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]


def _pick(rng: np.random.Generator, options: list[str] | tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _listing(colors: list[str]) -> str:
    return ", ".join(colors[:-1]) + " and " + colors[-1]


def block_in_bowl(rng: np.random.Generator, exclude: tuple[str, ...] = ()) -> Draft:
    """Put one block in one bowl."""
    (b,), (w,) = _colors(rng, 1, exclude), _colors(rng, 1)
    phrase = f"the {b} block in the {w} bowl"
    instruction = _pick(rng, (f"put {phrase}", f"place the {b} block into the {w} bowl",
                              f"drop the {b} block in the {w} bowl", f"move the {b} block into the {w} bowl"))
    return Draft(instruction, [b], [w], [["in", f"{b} block", f"{w} bowl"]], phrase=phrase)


def block_on_block(rng: np.random.Generator, exclude: tuple[str, ...] = ()) -> Draft:
    """Put one block directly on another."""
    a, b = _colors(rng, 2, exclude)
    phrase = f"the {a} block on the {b} block"
    instruction = _pick(rng, (f"put {phrase}", f"stack the {a} block on top of the {b} block",
                              f"place the {a} block onto the {b} block"))
    return Draft(instruction, [a, b], [], [["on", f"{a} block", f"{b} block"]], phrase=phrase)


def block_at_location(rng: np.random.Generator, exclude: tuple[str, ...] = ()) -> Draft:
    """Move one block to a named place on the table."""
    (b,) = _colors(rng, 1, exclude)
    loc = _pick(rng, [x for x in LOCATION_NAMES if x not in exclude])
    phrase = f"the {b} block in the {loc}"
    instruction = _pick(rng, (f"move the {b} block to the {loc}", f"put {phrase}",
                              f"place the {b} block in the {loc}"))
    return Draft(instruction, [b], [], [["at", f"{b} block", loc]], phrase=phrase)


def all_in_bowl(rng: np.random.Generator) -> Draft:
    """Every block on the table into one bowl (2-4 blocks, no distractor blocks)."""
    blocks, (w,) = _colors(rng, int(rng.integers(2, 5))), _colors(rng, 1)
    instruction = _pick(rng, (f"put all the blocks in the {w} bowl", f"place every block into the {w} bowl",
                              f"move all of the blocks to the {w} bowl"))
    return Draft(instruction, blocks, [w], [["in", f"{c} block", f"{w} bowl"] for c in blocks], extra_blocks=False)


def matching_bowls(rng: np.random.Generator) -> Draft:
    """Each block into the bowl of its own colour (2-4 pairs, no distractor blocks)."""
    colors = _colors(rng, int(rng.integers(2, 5)))
    instruction = _pick(rng, ("put each block in the bowl of the same colour",
                              "put the blocks in their matching bowls",
                              "sort the blocks into the bowls that match their colours",
                              "put every block into the bowl with its colour"))
    return Draft(instruction, colors, list(colors), [["in", f"{c} block", f"{c} bowl"] for c in colors],
                 extra_blocks=False)


def _stack(rng: np.random.Generator, colors: list[str], every: bool = False) -> Draft:
    names = [f"{c} block" for c in colors]
    if every:
        instruction = _pick(rng, ("stack all the blocks", "make one tower out of all the blocks",
                                  "put all of the blocks in a single stack", "build a tower with all of the blocks"))
    else:
        instruction = _pick(rng, (f"stack the {_listing(colors)} blocks",
                                  f"make a tower of the {_listing(colors)} blocks",
                                  f"put the {_listing(colors)} blocks in one stack"))
    return Draft(instruction, colors, [], [["stacked", names]], extra_blocks=not every)


def stack_two(rng: np.random.Generator) -> Draft:
    """One tower of two named blocks, in any order."""
    return _stack(rng, _colors(rng, 2))


def stack_three(rng: np.random.Generator) -> Draft:
    """One tower of three named blocks, in any order."""
    return _stack(rng, _colors(rng, 3))


def stack_all(rng: np.random.Generator) -> Draft:
    """One tower of every block on the table (3-5 blocks, no distractor blocks)."""
    return _stack(rng, _colors(rng, int(rng.integers(3, 6))), every=True)


def ordered_tower(rng: np.random.Generator) -> Draft:
    """A tower in a given order, bottom first (3-4 blocks, no distractor blocks)."""
    colors = _colors(rng, int(rng.integers(3, 5)))
    names = [f"{c} block" for c in colors]
    order = ", then ".join(colors[1:])
    instruction = _pick(rng, (f"stack the blocks with {colors[0]} at the bottom, then {order}",
                              f"build a tower with the {colors[0]} block at the bottom, then {order} on top",
                              f"make a stack from bottom to top: {', '.join(colors)}"))
    goal = [["stacked", names]] + [["on", names[i + 1], names[i]] for i in range(len(names) - 1)]
    return Draft(instruction, colors, [], goal, extra_blocks=False)


def combo(rng: np.random.Generator) -> Draft:
    """Two single-step requests at once, on disjoint blocks (and different locations), so both can hold."""
    parts = [block_in_bowl, block_on_block, block_at_location]
    first = parts[int(rng.integers(len(parts)))](rng)
    used = tuple(first.blocks) + tuple(p[2] for p in first.goal if p[0] == "at")
    second = parts[int(rng.integers(len(parts)))](rng, exclude=used)
    template = _pick(rng, ("put {} and {}", "put {}, then put {}", "first put {}, then {}"))
    return Draft(template.format(first.phrase, second.phrase), first.blocks + second.blocks,
                 list(dict.fromkeys(first.bowls + second.bowls)), first.goal + second.goal)


def tall_tower(rng: np.random.Generator) -> Draft:
    """Long horizon: one tower of 4-6 blocks, named in order bottom first, or of every block."""
    colors = _colors(rng, int(rng.integers(4, 7)))
    if rng.random() < 0.5:
        return _stack(rng, colors, every=True)
    names = [f"{c} block" for c in colors]
    instruction = _pick(rng, (f"build a tower from bottom to top: {', '.join(colors)}",
                              f"stack the blocks with {colors[0]} at the bottom, then {', then '.join(colors[1:])}"))
    goal = [["stacked", names]] + [["on", names[i + 1], names[i]] for i in range(len(names) - 1)]
    return Draft(instruction, colors, [], goal, extra_blocks=False)


def sort_all(rng: np.random.Generator) -> Draft:
    """Long horizon: four blocks, each into the bowl of its colour."""
    colors = _colors(rng, 4)
    draft = matching_bowls(rng)
    return Draft(draft.instruction, colors, list(colors), [["in", f"{c} block", f"{c} bowl"] for c in colors],
                 extra_blocks=False)


def all_in_one_bowl(rng: np.random.Generator) -> Draft:
    """Long horizon: every block (4-6) into one bowl."""
    blocks, (w,) = _colors(rng, int(rng.integers(4, 7))), _colors(rng, 1)
    instruction = _pick(rng, (f"put all the blocks in the {w} bowl", f"place every block into the {w} bowl",
                              f"move all of the blocks to the {w} bowl"))
    return Draft(instruction, blocks, [w], [["in", f"{c} block", f"{w} bowl"] for c in blocks], extra_blocks=False)


# --------------------------------------------------------------------------- spatial families
# Wording after the tabletop benchmarks of Code as Policies, Inner Monologue and the SayCan notebook, plus free
# variants. A family whose goal depends on the layout (a referent picked by position, a metric move) returns a
# `resolve` that reads the layout the environment will build from the task's seed; `generate` redraws until
# the goal is determinate and the oracle's goal realisation finds places for it on that layout.
SIDES = ("left side", "right side", "top side", "bottom side")
CORNERS = tuple(x for x in LOCATION_NAMES if x.endswith("corner"))
_REL_WORDS = {"left_of": ("to the left of", "left of", "on the left of"),
              "right_of": ("to the right of", "right of", "on the right side of"),
              "behind": ("behind", "to the top of", "on the far side of"),
              "in_front_of": ("in front of", "to the bottom of", "on the near side of")}
_DIR_WORD = {"left_of": "left", "right_of": "right", "behind": "top", "in_front_of": "bottom"}
_DIR_VEC = {"left_of": (0.0, 1.0), "right_of": (0.0, -1.0), "behind": (1.0, 0.0), "in_front_of": (-1.0, 0.0)}


def _side_phrase(rng: np.random.Generator, side: str) -> str:
    return _pick(rng, (f"the {side}", f"the {side} of the table", f"the {side.split()[0]} side"))


def side_one(rng: np.random.Generator) -> Draft:
    """One block to a side of the table."""
    (b,) = _colors(rng, 1)
    side = _pick(rng, SIDES)
    where = _side_phrase(rng, side)
    instruction = _pick(rng, (f"put the {b} block on {where}", f"move the {b} block to {where}",
                              f"pick up the {b} block and place it on {where}"))
    return Draft(instruction, [b], [], [["at", f"{b} block", side]])


def side_all(rng: np.random.Generator) -> Draft:
    """Every block (2-4) to one side of the table, or stacked there."""
    colors = _colors(rng, int(rng.integers(2, 5)))
    side = _pick(rng, SIDES)
    names = [f"{c} block" for c in colors]
    where = _side_phrase(rng, side)
    if rng.random() < 0.3:
        return Draft(_pick(rng, (f"stack all the blocks on {where}", f"make a tower of all the blocks on {where}")),
                     colors, [], [["stacked", names]] + [["at", n, side] for n in names], extra_blocks=False)
    instruction = _pick(rng, (f"put all the blocks on {where}", f"move every block to {where}",
                              f"gather the blocks on {where}"))
    return Draft(instruction, colors, [], [["at", n, side] for n in names], extra_blocks=False)


def relation(rng: np.random.Generator) -> Draft:
    """One block left / right / above / below another object, optionally a little or a lot."""
    (b,), (w,) = _colors(rng, 1), _colors(rng, 1)
    head = _pick(rng, tuple(_REL_WORDS))
    ref_block = rng.random() < 0.3
    ref = f"{_colors(rng, 1, [b])[0]} block" if ref_block else f"{w} bowl"
    goal: list[list] = [[head, f"{b} block", ref]]
    how = _pick(rng, ("", "", "a little ", "a lot ")) if not ref_block else ""
    if how == "a little ":
        goal.append(["near", f"{b} block", ref])
    elif how == "a lot ":
        goal.append(["far_from", f"{b} block", ref])
    words = _pick(rng, _REL_WORDS[head])
    if how:
        words = f"{how}to the {_DIR_WORD[head]} of"
    instruction = _pick(rng, (f"pick up the {b} block and place it {words} the {ref}",
                              f"put the {b} block {words} the {ref}", f"move the {b} block {words} the {ref}"))
    blocks = [b] + ([ref.split()[0]] if ref_block else [])
    return Draft(instruction, blocks, [] if ref_block else [w], goal)


def near_far(rng: np.random.Generator) -> Draft:
    """One block near to, or far from, a bowl."""
    (b,), (w,) = _colors(rng, 1), _colors(rng, 1)
    if rng.random() < 0.5:
        return Draft(_pick(rng, (f"put the {b} block next to the {w} bowl", f"move the {b} block near the {w} bowl",
                                 f"place the {b} block close to the {w} bowl")),
                     [b], [w], [["near", f"{b} block", f"{w} bowl"]])
    return Draft(_pick(rng, (f"move the {b} block far away from the {w} bowl",
                             f"put the {b} block far from the {w} bowl")),
                 [b], [w], [["far_from", f"{b} block", f"{w} bowl"]])


def between(rng: np.random.Generator) -> Draft:
    """One block between two bowls or two blocks."""
    if rng.random() < 0.5:
        b, c1, c2 = _colors(rng, 3)
        instruction = _pick(rng, (f"put the {b} block between the {c1} block and the {c2} block",
                                  f"place the {b} block in between the {c1} and {c2} blocks"))
        return Draft(instruction, [b, c1, c2], [], [["between", f"{b} block", f"{c1} block", f"{c2} block"]])
    (b,), (w1, w2) = _colors(rng, 1), _colors(rng, 2)
    instruction = _pick(rng, (f"put the {b} block between the {w1} bowl and the {w2} bowl",
                              f"place the {b} block in between the {w1} and {w2} bowls",
                              f"move the {b} block so it is between the {w1} bowl and the {w2} bowl"))
    return Draft(instruction, [b], [w1, w2], [["between", f"{b} block", f"{w1} bowl", f"{w2} bowl"]])


def _cm(rng: np.random.Generator) -> int:
    return int(_pick(rng, ("15", "20")))


def offset(rng: np.random.Generator) -> Draft:
    """A metric placement: N cm in a direction from a bowl, or a move of the block itself by N cm."""
    (b,), (w,) = _colors(rng, 1), _colors(rng, 1)
    head = _pick(rng, tuple(_REL_WORDS))
    cm = _cm(rng)  # 15 or 20 from a bowl: a block 10 cm from a bowl's centre would sit on its rim
    word = _DIR_WORD[head]
    vec = [round(cm / 100 * v, 3) + 0.0 for v in _DIR_VEC[head]]
    if rng.random() < 0.5:
        units = _pick(rng, (f"{cm} cm", f"{cm}cm", f"{cm} centimeters"))
        place = _pick(rng, (f"{units} to the {word} of the {w} bowl",
                            f"{units} {'below' if word == 'bottom' else 'above' if word == 'top' else 'to the ' + word + ' of'}"
                            f" the {w} bowl"))
        return Draft(_pick(rng, (f"put the {b} block {place}", f"place the {b} block {place}")), [b], [w],
                     [["offset", f"{b} block", f"{w} bowl", vec]])

    def resolve(pos: dict[str, tuple[float, float]]) -> list[list]:
        x, y = pos[f"{b} block"]
        return [["at", f"{b} block", f"{x + vec[0]:.3f},{y + vec[1]:.3f}"]]

    cm = int(_pick(rng, ("5", "10", "15")))
    vec = [round(cm / 100 * v, 3) + 0.0 for v in _DIR_VEC[head]]
    units = _pick(rng, (f"{cm} cm", f"{cm}cm"))
    words = _pick(rng, (f"move the {b} block {units} to the {word}", f"slide the {b} block {units} to the {word}",
                        f"move the {b} block to the {word} by {units}"))
    draft = Draft(words, [b], [], [])
    draft.resolve = resolve
    return draft


def line(rng: np.random.Generator) -> Draft:
    """All the blocks (3-4) in a horizontal, vertical or diagonal line, optionally in the middle or on a side."""
    colors = _colors(rng, int(rng.integers(3, 5)))
    names = [f"{c} block" for c in colors]
    orient = _pick(rng, ("horizontal", "vertical", "diagonal"))
    goal: list[list] = [["line", names, orient]]
    where = ""
    r = rng.random()
    if r < 0.25:
        where = " in the middle"
        goal.append(["centred", names, "middle"])
    elif r < 0.45 and orient == "horizontal":
        side = _pick(rng, ("top side", "bottom side"))
        where = f" near the {side.split()[0]}"
        goal += [["at", n, side] for n in names]
    elif r < 0.45 and orient == "vertical":
        side = _pick(rng, ("left side", "right side"))
        where = f" on the {side}"
        goal += [["at", n, side] for n in names]
    instruction = _pick(rng, (f"put all the blocks in a {orient} line{where}", f"arrange the blocks in a {orient} "
                              f"line{where}", f"line up the blocks {orient}ly{where}",
                              f"make a {orient} line with the blocks{where}"))
    return Draft(instruction, colors, [], goal, extra_blocks=False)


def shape(rng: np.random.Generator) -> Draft:
    """Three blocks in a triangle or four in a square, optionally in the middle."""
    kind = _pick(rng, ("triangle", "square"))
    colors = _colors(rng, 3 if kind == "triangle" else 4)
    names = [f"{c} block" for c in colors]
    goal: list[list] = [[kind, names]]
    where = ""
    if rng.random() < 0.4:
        where = _pick(rng, (" in the middle", " around the middle", " in the center of the table"))
        goal.append(["centred", names, "middle"])
    instruction = _pick(rng, (f"make a {kind} with the blocks{where}", f"arrange the blocks as a {kind}{where}",
                              f"put the blocks in a {kind} shape{where}", f"form a {kind} out of the blocks{where}"))
    return Draft(instruction, colors, [], goal, extra_blocks=False)


def different_corners(rng: np.random.Generator) -> Draft:
    """Every block (2-4) in a different corner, which goes where left open."""
    colors = _colors(rng, int(rng.integers(2, 5)))
    instruction = _pick(rng, ("put all the blocks in different corners", "put each block in a different corner",
                              "move the blocks to separate corners of the table", "put the blocks on different corners"))
    return Draft(instruction, colors, [], [["different", [f"{c} block" for c in colors], list(CORNERS)]],
                 extra_blocks=False)


def mismatched(rng: np.random.Generator) -> Draft:
    """Each block (2-3) into a bowl of another colour, one block per bowl."""
    colors = _colors(rng, int(rng.integers(2, 4)))
    names, bowls = [f"{c} block" for c in colors], [f"{c} bowl" for c in colors]
    instruction = _pick(rng, ("put the blocks in the bowls with mismatched colors",
                              "place each block in a bowl of a different colour",
                              "put every block into a bowl that does not match its color",
                              "put the blocks in mismatched bowls"))

    def resolve(pos: dict[str, tuple[float, float]]) -> list[list]:
        """One assignment possible: it, as ``in``s; several: the choice (as the goal reader states it)."""
        import itertools

        present = [n for n in pos if n.endswith(" bowl")]
        ways = [w for w in itertools.permutations(present, len(names))
                if all(wb.split()[0] != n.split()[0] for n, wb in zip(names, w, strict=True))]
        if len(ways) == 1:
            return [["in", n, wb] for n, wb in zip(names, ways[0], strict=True)]
        return [["different", names, present]] + [["not_in", n, w] for n, w in zip(names, bowls, strict=True)]

    draft = Draft(instruction, colors, list(colors), [], extra_blocks=False)
    draft.resolve = resolve
    return draft


def _clear_winner(points: dict[str, tuple[float, float]], ref: tuple[float, float], far: bool) -> str | None:
    """The name whose point is nearest ``ref`` (farthest with ``far``), None when the runner-up is within 3 cm
    of it (a referent an evaluation set should not leave that close)."""
    d = sorted((math.dist(p, ref), n) for n, p in points.items())
    if far:
        d = d[::-1]
    return None if abs(d[0][0] - d[1][0]) < 0.03 else d[0][1]


def _ordinal(n: int) -> str:
    return ("first", "second", "third", "fourth")[n]


def referent(rng: np.random.Generator) -> Draft:
    """A block picked by where it is (closest to / farthest from a bowl, left of a bowl, nth from a side), put on
    a corner, a side or in a bowl; or a named block put in the corner closest to / farthest from a bowl."""
    blocks = _colors(rng, int(rng.integers(3, 5)))
    (w,) = _colors(rng, 1)
    kind = _pick(rng, ("distance", "direction", "nth", "corner"))
    target = _pick(rng, CORNERS + SIDES)
    tword = f"the {target}"
    pred = "at"
    far = rng.random() < 0.5
    head = _pick(rng, tuple(_REL_WORDS))
    nth = int(rng.integers(0, 3))
    from_side = _pick(rng, ("left", "right", "top", "bottom"))

    cand = [f"{c} block" for c in blocks]

    if kind == "distance":
        desc = f"the block {'farthest from' if far else 'closest to'} the {w} bowl"
    elif kind == "direction":
        desc = f"the block {_pick(rng, _REL_WORDS[head])} the {w} bowl"
    elif kind == "nth":
        desc = f"the {_ordinal(nth)} block from the {from_side}"
    else:
        desc = f"the {blocks[0]} block"
        tword = f"the corner {'farthest from' if far else 'closest to'} the {w} bowl"
    instruction = _pick(rng, (f"pick up {desc} and place it on {tword}", f"put {desc} on {tword}",
                              f"move {desc} to {tword}"))

    def resolve(pos: dict[str, tuple[float, float]]) -> list[list] | None:
        bowl = pos[f"{w} bowl"]
        if kind == "corner":
            corner = _clear_winner({c: LOCATIONS[c] for c in CORNERS}, bowl, far)
            return None if corner is None else [["at", cand[0], corner]]
        if kind == "distance":
            chosen = _clear_winner({n: pos[n] for n in cand}, bowl, far)
            if chosen is None:
                return None
        elif kind == "direction":
            state = SymbolicState({n: "table" for n in cand}, (f"{w} bowl",), xy=dict(pos))
            hits = [n for n in cand if spatial_holds([head, n, f"{w} bowl"], state)]
            if len(hits) != 1:
                return None
            chosen = hits[0]
        else:
            axis, sign = {"left": (1, -1.0), "right": (1, 1.0), "top": (0, -1.0), "bottom": (0, 1.0)}[from_side]
            order = sorted(cand, key=lambda n: sign * pos[n][axis])
            coords = sorted(sign * pos[n][axis] for n in cand)
            if min(np.diff(coords)) < 0.03:
                return None
            chosen = order[nth]
        return [[pred, chosen, target]]

    draft = Draft(instruction, blocks, [w], [], extra_blocks=False)
    draft.resolve = resolve
    return draft


# Spatial families: generated on request (`--families`, or `embodied tasks --suite spatial`), for the same reason.
SPATIAL_FAMILIES: dict[str, Callable[[np.random.Generator], Draft]] = {
    "side_one": side_one,
    "side_all": side_all,
    "relation": relation,
    "near_far": near_far,
    "between": between,
    "offset": offset,
    "line": line,
    "shape": shape,
    "different_corners": different_corners,
    "mismatched": mismatched,
    "referent": referent,
}
SPATIAL_FAMILY_NAMES: tuple[str, ...] = tuple(SPATIAL_FAMILIES)


# Long-horizon families: generated on request (`--families`), not in the default suite, so suites made
# before they existed still reproduce seed for seed.
LONG_FAMILIES: dict[str, Callable[[np.random.Generator], Draft]] = {
    "tall_tower": tall_tower,
    "sort_all": sort_all,
    "all_in_one_bowl": all_in_one_bowl,
}

FAMILIES: dict[str, Callable[[np.random.Generator], Draft]] = {
    "block_in_bowl": block_in_bowl,
    "block_on_block": block_on_block,
    "block_at_location": block_at_location,
    "all_in_bowl": all_in_bowl,
    "matching_bowls": matching_bowls,
    "stack_two": stack_two,
    "stack_three": stack_three,
    "stack_all": stack_all,
    "ordered_tower": ordered_tower,
    "combo": combo,
}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)
LONG_FAMILY_NAMES: tuple[str, ...] = tuple(LONG_FAMILIES)
_ALL = {**FAMILIES, **LONG_FAMILIES, **SPATIAL_FAMILIES}


def _check_family(family: str) -> None:
    if family not in _ALL:
        raise TaskError(f"unknown task family {family!r}{suggest(family, list(_ALL))}; "
                        f"families: {', '.join(_ALL)}")


def generate(family: str, seed: int, n_distractors: int | None = None) -> Task:
    """One task of ``family``; ``n_distractors`` extra objects (default 0-2 at random), as many as fit."""
    _check_family(family)
    if seed < 0:
        raise TaskError(f"seed must be a non-negative integer, got {seed}")
    if n_distractors is not None and n_distractors < 0:
        raise TaskError(f"n_distractors must be >= 0, got {n_distractors}")
    rng = np.random.default_rng(seed)
    if family in SPATIAL_FAMILIES:
        return _generate_spatial(family, seed, rng, n_distractors)
    draft = _ALL[family](rng)
    blocks, bowls, goal = _with_distractors(draft, rng, n_distractors)
    return Task(id=f"{family}-{seed}", instruction=draft.instruction, scene=SceneSpec(blocks, bowls),
                goal=goal, seed=seed, max_steps=default_max_steps(goal), family=family)


def _generate_spatial(family: str, seed: int, rng: np.random.Generator, n_distractors: int | None,
                      attempts: int = 200) -> Task:
    """Draw until the goal is determinate on the seed's layout and the goal realisation places it there."""

    for _ in range(attempts):
        draft = SPATIAL_FAMILIES[family](rng)
        blocks, bowls, goal = _with_distractors(draft, rng, n_distractors)
        scene = SceneSpec(blocks, bowls)
        pos = initial_positions(scene, seed)
        if pos is None:
            continue
        if draft.resolve is not None:
            goal = draft.resolve(pos)
            if goal is None:
                continue
        state = SymbolicState(support={f"{c} block": "table" for c in blocks}, bowls=tuple(f"{c} bowl" for c in bowls),
                              xy=dict(pos))
        if realize(goal, state) is None or goal_satisfied(goal, state) or any(
                point_failure(state, b, parse_point(p)) for b, p in point_goals(goal)):
            continue
        return Task(id=f"{family}-{seed}", instruction=draft.instruction, scene=scene, goal=goal, seed=seed,
                    max_steps=default_max_steps(goal), family=family)
    raise TaskError(f"no task of family {family!r} fits the layout of seed {seed} after {attempts} draws")


def _with_distractors(draft: Draft, rng: np.random.Generator, n_distractors: int | None
                      ) -> tuple[list[str], list[str], list[list]]:
    """The scene's block and bowl colours (the draft's plus distractors, shuffled) and the goal."""
    blocks, bowls = list(draft.blocks), list(draft.bowls)
    room_blocks = MAX_BLOCKS - len(blocks) if draft.extra_blocks else 0
    room_bowls = MAX_BOWLS - len(bowls)
    n = int(rng.integers(0, 3)) if n_distractors is None else n_distractors
    for _ in range(min(n, room_blocks + room_bowls)):
        if rng.random() < room_blocks / (room_blocks + room_bowls):
            blocks += _colors(rng, 1, blocks)
            room_blocks -= 1
        else:
            bowls += _colors(rng, 1, bowls)
            room_bowls -= 1
    blocks = [blocks[i] for i in rng.permutation(len(blocks))]
    bowls = [bowls[i] for i in rng.permutation(len(bowls))]
    return blocks, bowls, draft.goal


def generate_suite(n: int, seed: int, families: list[str] | None = None) -> list[Task]:
    """``n`` tasks, round-robin over ``families`` (default: all) so each is covered once ``n`` allows;
    task ``i`` uses seed ``seed + i``."""
    families = list(FAMILY_NAMES) if families is None else list(families)
    if not families:
        raise TaskError("no task families given; families: " + ", ".join(FAMILY_NAMES))
    for f in families:
        _check_family(f)
    return [generate(families[i % len(families)], seed + i) for i in range(max(n, 0))]
