"""Reading a free-text instruction: which objects it names, whether this table rules it out, and a table set
for it. One reader serves all three: ``embodied.understanding`` (the grammar, lexicon and colour aliases
documented there); turning an instruction into a checkable goal is ``GoalReader.read``.

- ``mentioned_objects``: the coloured blocks and bowls a request names, in order (synonyms, aliases and typos
  read as the goal reader reads them: "the grey cube" is the gray block, "the red dish" the red bowl).
- ``cannot_reason``: one sentence when the request cannot be carried out on this table whatever else it
  says (an unknown colour or object, an object not on the table, a bowl to move, a relation or count the
  goals cannot state, a contradiction, blank or punctuation-only text, prompt injection), else None. Readings
  that are merely unclear (no request found, ambiguity, questions, low confidence) are left to the caller
  that infers the goal (``GoalReader``), so a planner given a task with its own goal is not stopped by them.
- ``scene_for``: a table holding what the instruction names, plus distractors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from embodied.understanding import GoalReader
from embodied.understanding.lexicon import BOWL_NOUNS
from embodied.understanding.parse import chunk, normalise
from embodied.understanding.reader import CERTAIN
from embodied.world.errors import TaskError
from embodied.world.scene import COLOR_NAMES, MAX_BLOCKS, MAX_BOWLS, SceneState, object_name
from embodied.world.tasks import SceneSpec

_READER = GoalReader(lm=None)


def mentioned_objects(instruction: str) -> list[str]:
    """Canonical names of the coloured objects an instruction names ("the red and blue cubes": both)."""
    out: list[str] = []
    for c in chunk(normalise(instruction).words):
        if c.type != "NP" or c.np is None:
            continue
        for np_ in [c.np, *c.np.except_]:
            if np_.kind not in ("block", "bowl"):
                continue
            for color in np_.colors:
                name = object_name(color, np_.kind)
                if name not in out:
                    out.append(name)
    return out


def cannot_reason(instruction: str, present: list[str],
                  positions: Mapping[str, tuple[float, float]] | None = None) -> str | None:
    """A sentence saying why the instruction cannot be carried out on this table (whose objects stand at
    ``positions``, for referents by place), or None."""
    reading = _READER.read(instruction, present, positions)
    if reading.refused and reading.category in CERTAIN:
        return reading.reason
    return None


def positions(state: SceneState) -> dict[str, tuple[float, float]]:
    """Every object's table (x, y), as the goal reader takes them."""
    return {n: (float(o.position[0]), float(o.position[1])) for n, o in state.objects.items()}


def scene_for(instruction: str, rng: np.random.Generator, distractors: int = 1) -> SceneSpec:
    """A table holding every object the instruction names, bowls matching the blocks when it asks for
    matching colours, three random blocks when it names none, plus a few distractors."""
    named = mentioned_objects(instruction)
    blocks = [n.split()[0] for n in named if n.endswith("block")]
    bowls = [n.split()[0] for n in named if n.endswith("bowl")]
    text = instruction.lower()
    words = normalise(instruction).words
    free = [c for c in COLOR_NAMES if c not in blocks]
    # "all/each/the blocks" or matching colours refer to every block there is: add no stray blocks then
    collective = not blocks or bool(re.search(r"\b(all|every|each|both|match|matching|same colou?r)", text))
    if not blocks:
        blocks = [str(c) for c in rng.choice(free, size=3, replace=False)]
    if re.search(r"\b(match|matching|same colou?r)", text):
        bowls += [c for c in blocks if c not in bowls]
    elif not bowls and any(w in BOWL_NOUNS for w in words):
        bowls.append(str(rng.choice([c for c in COLOR_NAMES if c not in blocks])))
    for _ in range(distractors):
        if len(blocks) < MAX_BLOCKS and not collective:
            blocks.append(str(rng.choice([c for c in COLOR_NAMES if c not in blocks])))
        if len(bowls) < MAX_BOWLS:
            bowls.append(str(rng.choice([c for c in COLOR_NAMES if c not in bowls])))
    if len(blocks) > MAX_BLOCKS or len(bowls) > MAX_BOWLS:
        raise TaskError(
            f"the instruction names more objects than fit on the table: {len(blocks)} blocks and "
            f"{len(bowls)} bowls (at most {MAX_BLOCKS} and {MAX_BOWLS})"
        )
    return SceneSpec(blocks=blocks, bowls=bowls)
