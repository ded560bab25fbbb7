"""Using the library while planning: retrieve the skills whose descriptions are closest to the request,
bind their parameters to objects on the table, and preview each binding's plan on the symbolic state, so
the language model can score the whole plan the skill would carry out."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from embodied.instructions import mentioned_objects
from embodied.library.api import API_METHODS, DryRunAPI
from embodied.library.executor import Budget, run_skill
from embodied.library.store import SkillRecord, SkillStore
from embodied.world.scene import LOCATION_NAMES, SceneState
from skills import SkillCall

log = logging.getLogger(__name__)

PREVIEW_BUDGET = Budget(max_lines=20_000, max_seconds=2.0)
MIN_RATE = 0.5  # skills that failed more often than this (after a few tries) are not offered
MAX_BINDINGS = 8  # bindings previewed per skill


@dataclass
class Instance:
    """A retrieved skill bound to objects, with the primitive calls it would make from the current state."""

    record: SkillRecord
    binding: dict[str, str]
    plan: list[SkillCall]
    similarity: float

    @property
    def call(self) -> SkillCall:
        return SkillCall(self.record.name, dict(self.binding))

    def text(self) -> str:
        args = ", ".join(self.binding.values())
        return f"skill {self.record.name}({args})"


def usable(record: SkillRecord) -> bool:
    """Verified skills that keep working: at least one success and no worse than MIN_RATE after 4 tries."""
    return record.successes > 0 and (record.attempts < 4 or record.success_rate >= MIN_RATE)


def tabletop(record: SkillRecord) -> bool:
    """A tabletop skill: another world's (provenance "world", e.g. Crafter's) is never offered here."""
    return record.provenance.get("world", "tabletop") == "tabletop"


class Library:
    """The planner's view of a skill store: retrieval by embedding, binding and preview."""

    def __init__(self, store: SkillStore, top_k: int = 5) -> None:
        from embodied.library.embed import default_embedder

        self.store = store
        self.top_k = top_k
        self.embed = default_embedder()

    @classmethod
    def open(cls, path: str | Path, top_k: int = 5) -> Library | None:
        """The library at ``path``, or None when there is none yet (planning then uses primitives only)."""
        if not Path(path).expanduser().exists():
            log.info("no skill library at %s: planning with primitives only", path)
            return None
        if Path(path).expanduser().is_file() and Path(path).expanduser().stat().st_size == 0:
            log.warning("the skill library %s is empty (0 bytes): planning with primitives only", path)
            return None
        return cls(SkillStore(path, readonly=True), top_k)  # planning only reads: never writes the file

    def retrieve(self, instruction: str) -> list[tuple[SkillRecord, float]]:
        """The top-k usable skills for a request, closest first."""
        hits = self.store.search(self.embed([instruction])[0], k=max(self.top_k * 3, self.top_k))
        return [(r, s) for r, s in hits if usable(r) and tabletop(r)][: self.top_k]

    def instances(self, retrieved: Sequence[tuple[SkillRecord, float]], instruction: str,
                  state: SceneState) -> list[Instance]:
        """Every distinct, feasible plan the retrieved skills make under plausible bindings."""
        out: list[Instance] = []
        seen: set[tuple] = set()
        for record, sim in retrieved:
            for binding in bindings(record, instruction, state):
                api = DryRunAPI(state)
                result = run_skill(record.code, api, binding, API_METHODS, PREVIEW_BUDGET)
                if not result.success or not api.calls:
                    continue
                key = tuple(c.key() for c in api.calls)
                if key in seen:
                    continue
                seen.add(key)
                out.append(Instance(record, binding, list(api.calls), sim))
        return out


def bindings(record: SkillRecord, instruction: str, state: SceneState) -> list[dict[str, str]]:
    """Plausible objects for a skill's parameters: the objects the request names, in the order it names
    them (and, for up to three, in every order); parameters left over take *all* the other objects of
    their kind on the table, never an arbitrary few (a skill that would leave a block out is not offered
    for "all the blocks"); bowls are also matched to blocks by colour."""
    named = _named(instruction, state)
    named_locs = [loc for loc in LOCATION_NAMES if loc in instruction.lower()]
    per_kind: dict[str, list[list[str]]] = {}
    for kind in ("block", "bowl", "location"):
        slots = sum(p.kind == kind for p in record.params)
        first = named_locs if kind == "location" else [o for o in named if state.objects[o].kind == kind]
        if kind == "location":
            rest: list[str] = []
        else:
            rest = [o for o in (state.blocks if kind == "block" else state.bowls) if o not in first]
        if len(first) == slots:
            fill: list[str] = []
        elif len(first) + len(rest) == slots and kind != "bowl":
            fill = rest
        elif kind == "bowl" and not first and slots == len(rest):
            fill = rest  # bowls the request does not name: matched by colour below
        else:
            return []
        orders = list(itertools.permutations(first)) if len(first) <= 3 else [tuple(first), tuple(first[::-1])]
        per_kind[kind] = [list(o) + f for o in orders for f in _fill_orders(fill)][:MAX_BINDINGS]
    out: list[dict[str, str]] = []
    for blocks, bowls, locs in itertools.product(per_kind["block"], per_kind["bowl"], per_kind["location"]):
        chosen = {"block": iter(blocks), "bowl": iter(bowls), "location": iter(locs)}
        out.append({p.name: next(chosen[p.kind]) for p in record.params})
    matched = _colour_matched(record, out[0] if out else None, state)
    if matched is not None and matched not in out:
        out.insert(0, matched)
    return out[:MAX_BINDINGS]


def _fill_orders(fill: list[str]) -> list[list[str]]:
    """A few orders for objects the request does not name (their order is the model's to choose): table
    order, reversed, and each with its first two swapped (which one goes first matters most)."""
    out: list[list[str]] = []
    for f in (fill, fill[::-1]):
        for g in (f, f[1::-1] + f[2:]):
            if g not in out:
                out.append(list(g))
    return out or [[]]


def _named(instruction: str, state: SceneState) -> list[str]:
    """Objects on the table the request names, in order: "the red block", and bare colours ("red at the
    bottom, then blue") that fit exactly one block and no bowl."""
    import re

    from embodied.world.scene import COLOR_NAMES

    out = [o for o in mentioned_objects(instruction) if o in state.objects]
    words = re.findall(r"[a-z]+", instruction.lower().replace("grey", "gray"))
    for i, w in enumerate(words):
        if w not in COLOR_NAMES:
            continue
        block, bowl = f"{w} block", f"{w} bowl"
        if block in out or bowl in out:
            continue
        if block in state.objects and bowl not in state.objects:
            # keep the order of mention: insert after the named objects mentioned before this word
            before = sum(1 for o in out if o.split()[0] in words[:i])
            out.insert(before, block)
    return out


def _colour_matched(record: SkillRecord, base: dict[str, str] | None, state: SceneState) -> dict[str, str] | None:
    """``base`` with bowl_i replaced by the bowl of block_i's colour, where every such bowl exists."""
    if base is None:
        return None
    blocks = [p.name for p in record.params if p.kind == "block"]
    bowls = [p.name for p in record.params if p.kind == "bowl"]
    if not bowls or len(blocks) != len(bowls):
        return None
    out = dict(base)
    for b, w in zip(blocks, bowls, strict=True):
        bowl = f"{state.objects[base[b]].color} bowl"
        if bowl not in state.objects:
            return None
        out[w] = bowl
    return out
