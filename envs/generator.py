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

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from embodied.world.errors import TaskError
from embodied.world.scene import COLOR_NAMES, LOCATION_NAMES, MAX_BLOCKS, MAX_BOWLS, suggest
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
_ALL = {**FAMILIES, **LONG_FAMILIES}


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
    draft = _ALL[family](rng)
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
    return Task(id=f"{family}-{seed}", instruction=draft.instruction, scene=SceneSpec(blocks, bowls),
                goal=draft.goal, seed=seed, max_steps=default_max_steps(draft.goal), family=family)


def generate_suite(n: int, seed: int, families: list[str] | None = None) -> list[Task]:
    """``n`` tasks, round-robin over ``families`` (default: all) so each is covered once ``n`` allows;
    task ``i`` uses seed ``seed + i``."""
    families = list(FAMILY_NAMES) if families is None else list(families)
    if not families:
        raise TaskError("no task families given; families: " + ", ".join(FAMILY_NAMES))
    for f in families:
        _check_family(f)
    return [generate(families[i % len(families)], seed + i) for i in range(max(n, 0))]
