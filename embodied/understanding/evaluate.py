"""Goal-inference accuracy: read each instruction against its scene and compare the goal with the expected one
as a set of predicates up to order (``stacked``'s list as a set).

Usage (the development set and task files)::

    python -m embodied.understanding.evaluate benchmarks/generated_100.jsonl [--lm smollm2] [--dev 1000]

A task-format line counts as correct when the reading's goal equals the file's goal; a line with
``"expect": "cannot"`` (refusal files) counts as correct when the reading is refused.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from embodied.understanding.data import Example, dev_set
from embodied.understanding.reader import GoalReader, ReaderConfig, ScoringModel
from embodied.world.layout import initial_positions
from embodied.world.predicates import canonical_goal
from embodied.world.predicates import same_goal as world_same_goal
from embodied.world.tasks import SceneSpec

log = logging.getLogger(__name__)


def goal_key(goal: Sequence[Sequence] | None) -> frozenset | None:
    """A goal as an order-free set (``embodied.world.predicates.canonical_goal``)."""
    return None if goal is None else frozenset(canonical_goal(goal))


def same_goal(a: Sequence[Sequence] | None, b: Sequence[Sequence] | None) -> bool:
    """The same goal (``embodied.world.predicates.same_goal``: sets of predicates, points to within 1 cm)."""
    return a is not None and b is not None and world_same_goal(a, b)


@dataclass
class Item:
    """One instruction to read: its scene objects and the expected goal (None: must be refused)."""

    id: str
    instruction: str
    objects: list[str]
    goal: list | None
    family: str = ""
    positions: dict[str, tuple[float, float]] | None = None  # where the objects start (spatial referents)


@dataclass
class Report:
    """Accuracy over items, per family, with the misses for inspection."""

    n: int = 0
    correct: int = 0
    refused_wrongly: int = 0  # expected a goal, got a refusal
    wrong_goal: int = 0  # expected a goal, got another goal
    accepted_wrongly: int = 0  # expected a refusal, got a goal
    seconds: float = 0.0
    per_family: dict[str, list[int]] = field(default_factory=dict)  # family -> [correct, n]
    misses: list[dict] = field(default_factory=list)
    refusal_categories: Counter = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def to_dict(self, misses: int = 20) -> dict:
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "correct": self.correct,
            "refused_wrongly": self.refused_wrongly,
            "wrong_goal": self.wrong_goal,
            "accepted_wrongly": self.accepted_wrongly,
            "seconds_per_instruction": round(self.seconds / max(self.n, 1), 4),
            "per_family": {k: round(c / t, 3) for k, (c, t) in sorted(self.per_family.items())},
            "misses": self.misses[:misses],
        }


def items_from_file(path: str | Path) -> list[Item]:
    """Task-format lines (``goal``) or refusal lines (``"expect": "cannot"``), scene objects blocks first."""
    out: list[Item] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        d = json.loads(line)
        scene = d["scene"]
        objects = [f"{c} block" for c in scene.get("blocks", [])] + [
            f"{c} bowl" for c in scene.get("bowls", [])
        ]
        goal = None if d.get("expect") == "cannot" else d["goal"]
        positions = initial_positions(SceneSpec(scene.get("blocks", []), scene.get("bowls", [])), d.get("seed", 0))
        out.append(Item(str(d.get("id", lineno)), d["instruction"], objects, goal, d.get("family") or "", positions))
    return out


def items_from_examples(examples: Iterable[Example]) -> list[Item]:
    return [Item(f"{e.family}-{e.seed}", e.instruction, e.objects, e.goal, e.family) for e in examples]


def evaluate(items: Sequence[Item], reader: GoalReader) -> Report:
    """Read every item and count goal matches (and refusals where a refusal is expected)."""
    rep = Report()
    for it in items:
        t0 = time.perf_counter()
        reading = reader.read(it.instruction, it.objects, it.positions)
        rep.seconds += time.perf_counter() - t0
        rep.n += 1
        if it.goal is None:
            ok = reading.refused
            if not ok:
                rep.accepted_wrongly += 1
            else:
                rep.refusal_categories[reading.category] += 1
        else:
            ok = same_goal(reading.goal, it.goal)
            if not ok:
                if reading.refused:
                    rep.refused_wrongly += 1
                else:
                    rep.wrong_goal += 1
        rep.correct += ok
        fam = rep.per_family.setdefault(it.family or "-", [0, 0])
        fam[0] += ok
        fam[1] += 1
        if not ok:
            rep.misses.append(
                {
                    "id": it.id,
                    "instruction": it.instruction,
                    "objects": it.objects,
                    "expected": it.goal,
                    "got": reading.goal,
                    "reason": reading.reason,
                    "category": reading.category,
                }
            )
    return rep


def main(argv: Sequence[str] | None = None) -> int:
    """Print a JSON report per file (and for the development set with ``--dev N``)."""
    ap = argparse.ArgumentParser(
        prog="python -m embodied.understanding.evaluate", description=__doc__.split("\n")[0]
    )
    ap.add_argument("files", nargs="*", help="task files (JSON lines)")
    ap.add_argument("--lm", default=None, help="language model spec (e.g. smollm2); default: none")
    ap.add_argument("--dev", type=int, default=0, help="also evaluate N development-set examples")
    ap.add_argument("--dev-families", default="", help="comma-separated development families (default: all)")
    ap.add_argument("--misses", type=int, default=20, help="misses to print per report")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    lm: ScoringModel | None = None
    if args.lm:
        from embodied.llm.base import load_language_model  # only this tool loads a model

        lm = load_language_model(args.lm)
    reader = GoalReader(lm, ReaderConfig())
    out: dict[str, dict] = {}
    for f in args.files:
        out[f] = evaluate(items_from_file(f), reader).to_dict(args.misses)
    if args.dev:
        fams = tuple(x for x in args.dev_families.split(",") if x) or None
        refusal = 0.25 if fams is None else 0.0
        out["dev"] = evaluate(
            items_from_examples(dev_set(args.dev, refusal_fraction=refusal, families=fams)), reader
        ).to_dict(args.misses)
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
