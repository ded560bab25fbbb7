"""Reading a free-text instruction just enough to set a table for it and to refuse what cannot be done:
which coloured blocks and bowls it names. Planning itself is the language model's job."""

from __future__ import annotations

import re

import numpy as np

from embodied.world.errors import TaskError
from embodied.world.scene import COLOR_NAMES, MAX_BLOCKS, MAX_BOWLS, object_name
from embodied.world.tasks import SceneSpec

BLOCK_WORDS = {"block", "blocks", "cube", "cubes", "brick", "bricks", "box", "boxes"}
BOWL_WORDS = {"bowl", "bowls", "dish", "dishes", "container", "containers", "plate", "plates", "cup", "cups"}
_COLOUR_ALIASES = {"grey": "gray", "violet": "purple", "magenta": "pink", "aqua": "cyan", "turquoise": "cyan"}
_FILLER = {"and", "or", "the", "a", "an", "one", "ones", ","}
_MOVE_BOWL = re.compile(r"\b(?:put|place|move|stack|pick up|lift|grab|take)\s+(?:the\s+)?(\w+)\s+(?:bowl|dish|container|plate|cup)s?\b")


def _words(text: str) -> list[str]:
    return [_COLOUR_ALIASES.get(w, w) for w in re.findall(r"[a-z]+|,", text.lower())]


def mentioned_objects(instruction: str) -> list[str]:
    """Canonical names of the coloured objects an instruction names: "the red and blue cubes" -> both blocks."""
    words = _words(instruction)
    out: list[str] = []
    for i, w in enumerate(words):
        if w not in COLOR_NAMES:
            continue
        for nxt in words[i + 1:i + 6]:
            if nxt in BLOCK_WORDS or nxt in BOWL_WORDS:
                name = object_name(w, "block" if nxt in BLOCK_WORDS else "bowl")
                if name not in out:
                    out.append(name)
                break
            if nxt not in COLOR_NAMES and nxt not in _FILLER:
                break
    return out


def cannot_reason(instruction: str, present: list[str]) -> str | None:
    """A sentence saying why the instruction cannot be carried out on this table, or None."""
    missing = [n for n in mentioned_objects(instruction) if n not in present]
    if missing:
        listed = ", ".join(present) or "nothing"
        return f"There is no {' and no '.join(missing)} on the table (it holds: {listed})."
    m = _MOVE_BOWL.search(instruction.lower())
    if m and (m.group(1) in COLOR_NAMES or m.group(1) in ("the", "a")):
        return "Bowls stay where they are: this robot only moves blocks."
    return None


def scene_for(instruction: str, rng: np.random.Generator, distractors: int = 1) -> SceneSpec:
    """A table holding every object the instruction names, bowls matching the blocks when it asks for
    matching colours, three random blocks when it names none, plus a few distractors."""
    named = mentioned_objects(instruction)
    blocks = [n.split()[0] for n in named if n.endswith("block")]
    bowls = [n.split()[0] for n in named if n.endswith("bowl")]
    text = instruction.lower()
    free = [c for c in COLOR_NAMES if c not in blocks]
    # "all/each/the blocks" or matching colours refer to every block there is: add no stray blocks then
    collective = not blocks or bool(re.search(r"\b(all|every|each|both|match|matching|same colou?r)", text))
    if not blocks:
        blocks = [str(c) for c in rng.choice(free, size=3, replace=False)]
    if re.search(r"\b(match|matching|same colou?r)", text):
        bowls += [c for c in blocks if c not in bowls]
    elif not bowls and any(w in BOWL_WORDS for w in _words(text)):
        bowls.append(str(rng.choice([c for c in COLOR_NAMES if c not in blocks])))
    for _ in range(distractors):
        if len(blocks) < MAX_BLOCKS and not collective:
            blocks.append(str(rng.choice([c for c in COLOR_NAMES if c not in blocks])))
        if len(bowls) < MAX_BOWLS:
            bowls.append(str(rng.choice([c for c in COLOR_NAMES if c not in bowls])))
    if len(blocks) > MAX_BLOCKS or len(bowls) > MAX_BOWLS:
        raise TaskError(f"the instruction names more objects than fit on the table: {len(blocks)} blocks and "
                        f"{len(bowls)} bowls (at most {MAX_BLOCKS} and {MAX_BOWLS})")
    return SceneSpec(blocks=blocks, bowls=bowls)
