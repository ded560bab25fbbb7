"""Chunks + the objects on the table -> a goal in the task format's predicates, or a refusal sentence.

See the package docstring (``embodied/understanding/__init__.py``) for the grammar, the goal conventions,
the refusal categories and where the language model is used.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from embodied.understanding import lexicon as lx
from embodied.understanding import spatial as sp
from embodied.understanding.parse import CLAUSE_VERBS, NP, Chunk, chunk, injection, normalise
from embodied.world.errors import PredicateError, UnknownObjectError
from embodied.world.predicates import validate_goal
from embodied.world.scene import COLOR_NAMES, LOCATION_NAMES, MAX_BLOCKS, parse_object_name

log = logging.getLogger(__name__)
_CORNERS = tuple(n for n in LOCATION_NAMES if n.endswith("corner"))  # "any corner": the robot picks one

# refusal categories, in the order the reader checks them
CATEGORIES: tuple[str, ...] = (
    "blank",
    "punctuation",
    "prompt_injection",
    "question",
    "point",
    "unknown_colour",
    "unknown_object",
    "absent_object",
    "bowl_move",
    "unsupported_relation",
    "unsupported_action",
    "impossible_count",
    "ambiguous",
    "contradiction",
    "no_target",
    "nonsense",
    "low_confidence",
)
# refusals that hold whatever else the words say: the table or the skills rule the request out
CERTAIN: frozenset[str] = frozenset(
    {
        "blank",
        "punctuation",
        "prompt_injection",
        "unknown_colour",
        "unknown_object",
        "absent_object",
        "bowl_move",
        "unsupported_relation",
        "unsupported_action",
        "impossible_count",
        "contradiction",
    }
)
_POINT = re.compile(r"\(\s*-?\d*\.?\d+\s*,\s*-?\d*\.?\d+\s*\)|-?\d*\.\d+\s*,\s*-?\d*\.\d+")
_DISTANCE = re.compile(
    r"\b\d+(\.\d+)?\s*(cm|mm|m|centimet(er|re)s?|millimet(er|re)s?|met(er|re)s?|inch(es)?)\b|"
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|a few|several)\s+(cm|centimet(er|re)s?|"
    r"millimet(er|re)s?|inch(es)?)\b",
    re.IGNORECASE,
)


class ScoringModel(Protocol):
    """What the reader needs from a language model: ``LanguageModel.score`` (embodied.llm.base)."""

    def score(self, prompt: str, options: Sequence[str]) -> Any:  # -> Scores with .logprob_sum
        ...


@dataclass(frozen=True)
class Reading:
    """What an instruction asks for on this table: a validated goal, or a refusal with one sentence.

    ``goal`` is None exactly when refused; ``category`` names the refusal kind (one of ``CATEGORIES``);
    ``confidence`` in [0, 1] multiplies the doubts met on the way (typos fixed, words not understood, a
    relation inferred, a referent chosen by the language model); ``candidates`` lists the readings that were
    scored, best first, as ``(goal, score)`` pairs, for the trace."""

    goal: list[list] | None
    reason: str = ""
    confidence: float = 1.0
    candidates: tuple = ()
    category: str = ""
    notes: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        return self.goal is None

    def to_dict(self) -> dict:
        return {
            "goal": self.goal,
            "refused": self.refused,
            "reason": self.reason,
            "category": self.category,
            "confidence": round(self.confidence, 4),
            "candidates": [{"goal": g, "score": round(float(s), 4)} for g, s in self.candidates],
            "notes": list(self.notes),
        }


@dataclass
class ReaderConfig:
    """How cautious the reader is and what it asks the language model.

    min_confidence: readings below it are refused ("low_confidence"); 0.5 lets through up to three
        ignored words or one inferred relation plus a typo, and refuses text that is mostly not understood.
    lm_descriptors: ask the language model which table colour a description outside the lexicon means
        ("the mango-colored block"); without a model such descriptions are refused.
    lm_min_prob: the model's probability (softmax over the colours present of that kind) needed to accept it.
    lm_choose: let the model choose between readings the grammar cannot separate (e.g. "the green one" when
        a green block and a green bowl are both on the table); without a model those are refused.
    lm_min_margin: log-probability margin (per token) the chosen reading needs over the next one.
    """

    min_confidence: float = 0.5
    lm_descriptors: bool = True
    lm_min_prob: float = 0.8
    lm_choose: bool = True
    lm_min_margin: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"ReaderConfig.min_confidence must lie in [0, 1], got {self.min_confidence!r}")
        if not 0.0 < self.lm_min_prob <= 1.0:
            raise ValueError(f"ReaderConfig.lm_min_prob must lie in (0, 1], got {self.lm_min_prob!r}")
        if self.lm_min_margin < 0:
            raise ValueError(f"ReaderConfig.lm_min_margin must be >= 0, got {self.lm_min_margin!r}")


class Refusal(Exception):
    """Raised inside the reader: the instruction cannot become a goal on this table."""

    def __init__(self, category: str, sentence: str) -> None:
        super().__init__(sentence)
        self.category = category
        self.sentence = sentence


# -- the scene ----------------------------------------------------------------------------------------------


@dataclass
class _Scene:
    blocks: list[str]  # colours
    bowls: list[str]

    @classmethod
    def of(cls, objects: Sequence[str]) -> _Scene:
        blocks: list[str] = []
        bowls: list[str] = []
        for name in objects:
            color, kind = parse_object_name(name)
            (blocks if kind == "block" else bowls).append(color)
        return cls(blocks, bowls)

    def has(self, color: str, kind: str) -> bool:
        return color in (self.blocks if kind == "block" else self.bowls)

    def pool(self, kind: str) -> list[str]:
        return list(self.blocks if kind == "block" else self.bowls)

    def listing(self) -> str:
        names = [f"{c} block" for c in self.blocks] + [f"{c} bowl" for c in self.bowls]
        if not names:
            return "nothing"
        return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def _name(color: str, kind: str) -> str:
    return f"{color} {kind}"


def _plural(kind: str) -> str:
    return {"block": "blocks", "bowl": "bowls"}.get(kind, kind + "s")


def _count_words(n: int) -> str:
    words = {
        0: "no",
        1: "one",
        2: "two",
        3: "three",
        4: "four",
        5: "five",
        6: "six",
        7: "seven",
        8: "eight",
        9: "nine",
        10: "ten",
        11: "eleven",
        12: "twelve",
        20: "twenty",
    }
    return words.get(n, str(n))


# -- intents: what a clause asks, before predicates


@dataclass
class _Target:
    kind: str  # "bowl" | "block" | "loc" | "table" | "match" | "mismatch" | "tower" | "one_of"
    name: str = ""
    names: tuple[str, ...] = ()  # one_of: the places left to the robot's choice ("any bowl", "either corner")


@dataclass
class _Place:
    blocks: list[str]  # block names
    target: _Target


@dataclass
class _Tower:
    members: list[str]  # block names; bottom first when ``ordered``
    ordered: bool
    base: _Target | None = None


@dataclass
class _Reading:
    """One interpretation under construction: intents, doubts, notes."""

    intents: list[_Place | _Tower | tuple[str, str, str]] = field(default_factory=list)
    confidence: float = 1.0
    notes: list[str] = field(default_factory=list)

    def doubt(self, factor: float, note: str) -> None:
        self.confidence *= factor
        self.notes.append(note)


# -- clause splitting

_WEAK_VERBS = frozenset({"go", "goes", "get", "make", "let", "have", "keep", "leave", "do"})
_CLAUSE_VERBS = CLAUSE_VERBS | lx.REPORT_VERBS | {"park"}  # the parser's clause verbs, and requests to say things


def split_clauses(chunks: list[Chunk]) -> list[list[Chunk]]:
    """Clauses: split at sentence punctuation, and at "and" / "," / "then" when a verb follows, or at a
    second verb once the clause has an object."""
    clauses: list[list[Chunk]] = [[]]
    for c in chunks:
        cur = clauses[-1]
        if c.type == "SEP":
            clauses.append([])
            continue
        if c.type == "VERB" and c.value in _CLAUSE_VERBS:
            has_verb = any(x.type == "VERB" for x in cur)
            has_obj = any(x.type in ("NP", "REL", "LOC", "TOWER") for x in cur)
            if cur and has_obj and has_verb:
                # a relation said before its verb belongs to the new clause: "..., then onto the bowl, put X"
                fragment: list[Chunk] = []
                while cur and cur[-1].type == "AND":
                    cur.pop()
                cut = max(
                    (
                        k
                        for k, x in enumerate(cur)
                        if x.type in ("AND", "ORDER") and (x.type == "AND" or x.value == "then")
                    ),
                    default=-1,
                )
                tail = cur[cut + 1 :]
                if cut >= 0 and tail and tail[0].type == "REL" and not any(x.type == "VERB" for x in tail):
                    fragment = tail
                    del cur[cut + 1 :]
                # drop the joining "and" / "then" at the end of the previous clause
                while cur and (
                    cur[-1].type == "AND" or (cur[-1].type == "ORDER" and cur[-1].value == "then")
                ):
                    cur.pop()
                clauses.append(fragment + [c])
                continue
        cur.append(c)
    return [c for c in clauses if any(x.type != "AND" for x in c)]


# -- the reader


@dataclass
class _Pair:
    moved: list[NP] = field(default_factory=list)
    rel: str | None = None
    targets: list[Chunk] = field(default_factory=list)
    markers: dict[int, list[str]] = field(default_factory=dict)  # moved index -> order markers


class _Interpreter:
    """Turns the clauses of one instruction into intents against one scene."""

    def __init__(self, scene: _Scene, words: list[str], reading: _Reading, resolver: _Resolver) -> None:
        self.scene = scene
        self.words = words
        self.r = reading
        self.res = resolver
        self.last_blocks: list[str] = []  # "it" / "them" in the moved slot
        self.last_mentions: list[tuple[str, str]] = []  # (name, kind), most recent last
        self.pending_pick: list[str] | None = None
        self.last_target: _Target | None = None  # "in there"
        self.last_top: str | None = None  # "put X on top": the block last put on another
        self.clause_chunks: list[Chunk] = []

    # -- resolution helpers

    def resolve(self, np_: NP, role: str, rel: str | None = None) -> list[tuple[str, str]]:
        """(name, kind) for the objects ``np_`` picks; ``role`` is moved | target | member | container."""
        if np_.pronoun:
            return self._pronoun(np_, role, rel)
        out = self.res.resolve(np_, role, rel, self.r)
        self.last_mentions.extend(out)
        return out

    def _pronoun(self, np_: NP, role: str, rel: str | None) -> list[tuple[str, str]]:
        plural = np_.pronoun in ("them", "they", "these", "those")
        if np_.pronoun == "there":
            t = self.last_target
            if t is None or t.kind not in ("bowl", "block", "loc"):
                raise Refusal("ambiguous", "I cannot tell where 'there' is.")
            return [(t.name, t.kind)]
        if role in ("moved", "member"):
            if self.last_blocks and (plural or len(self.last_blocks) == 1):
                return [(b, "block") for b in self.last_blocks]
            blocks = [m for m in self.last_mentions if m[1] == "block"]
            if blocks and not plural:
                return [blocks[-1]]
            raise Refusal("ambiguous", f"I cannot tell what '{np_.pronoun}' refers to.")
        want = "bowl" if rel == "in" else "block" if rel == "on" else None
        if rel == "on" and self.last_top is not None and self.last_top not in self.last_blocks:
            return [
                (self.last_top, "block")
            ]  # "..., then the green block on top of it": the block placed last
        moved = set(self.last_blocks)
        for name, kind in reversed(self.last_mentions):
            if name in moved:
                continue
            if want is None or kind == want:
                return [(name, kind)]
        for name, kind in reversed(self.last_mentions):
            if name not in moved:
                return [(name, kind)]
        raise Refusal("ambiguous", f"I cannot tell what '{np_.pronoun}' refers to.")

    # -- clauses

    def clause(self, clause: list[Chunk]) -> None:
        self.clause_chunks = clause
        verbs = [c.value for c in clause if c.type == "VERB"]
        # the first verb that says what to do: "go ahead and pile ...", "get the tower built" -> pile, ...
        main = next((v for v in verbs if v not in _WEAK_VERBS), verbs[0] if verbs else None)
        has_tower = any(c.type == "TOWER" for c in clause)
        neg = [i for i, c in enumerate(clause) if c.type == "NEG"]
        if main in lx.REPORT_VERBS:
            raise Refusal("prompt_injection", f"I only move blocks; I do not {main} things on request.")
        if neg:
            self._negation(clause, neg, verbs)
            clause = self._drop_clarifying_negation(clause, neg)
        for c in clause:
            if c.type == "UNKNOWN":
                # a word that would choose among the objects ("warm", "colours", "tall") cannot be skipped
                selective = c.value in _SELECTIVE or lx.colour_of(c.value) is not None
                self.r.doubt(0.3 if selective else 0.85, f"ignored the word {c.value!r}")
        if main in lx.PICK_VERBS:
            clause = self._drop_source(clause)  # "take the red block out of the bowl (and put it ...)"
        two_towers = next(
            (
                k
                for k, c in enumerate(clause)
                if c.type == "TOWER" and c.value in ("stacks", "towers", "piles") and k > 0
            ),
            None,
        )
        if two_towers is not None:
            # "make two stacks: red on blue, and green on yellow": the pairs say which
            clause = [
                c
                for k, c in enumerate(clause)
                if k != two_towers
                and not (
                    k == two_towers - 1
                    and c.type == "NP"
                    and c.np is not None
                    and c.np.count is not None
                    and not c.np.colors
                )
            ]
            self._place(clause, "put")
            return
        if main in lx.UNSUPPORTED_VERBS and not self._has_full_pair(clause):
            raise Refusal(
                "unsupported_action",
                f"I cannot do that: {lx.UNSUPPORTED_VERBS[main]} is not something my skills (pick and "
                "place) can achieve or my goals can state.",
            )
        if main in lx.FILL_VERBS and self._fill(clause):
            return
        if main in lx.COVER_VERBS and self._cover(clause):
            return
        if self._contain(clause):
            return
        if main in ("group", "gather", "collect") and self._group(clause):
            return
        stack_verb = main in ("stack", "pile", "heap", "restack", "tower") or (
            main in lx.STACK_VERBS and has_tower
        )
        if stack_verb or has_tower:
            self._tower(clause)
            return
        if (main in lx.SORT_VERBS or any(c.type in ("MATCH", "MISMATCH") for c in clause)) and self._sort(
            clause, main
        ):
            return
        self._place(clause, main)

    @staticmethod
    def _drop_source(clause: list[Chunk]) -> list[Chunk]:
        out: list[Chunk] = []
        skip = False
        for c in clause:
            if c.type == "REL" and c.value in ("unsupported:from", "unsupported:out of", "unsupported:off"):
                skip = True
                continue
            if skip and c.type in ("NP", "LOC", "TABLE", "SIDE", "CORNER_ANY"):
                skip = False
                continue
            skip = False
            out.append(c)
        return out

    def _has_full_pair(self, clause: list[Chunk]) -> bool:
        return any(c.type == "REL" and not c.value.startswith("unsupported") for c in clause) and any(
            c.type == "NP" for c in clause
        )

    def _negation(self, clause: list[Chunk], neg: list[int], verbs: list[str]) -> None:
        for i in neg:
            nxt = clause[i + 1] if i + 1 < len(clause) else None
            gerund = nxt is not None and nxt.type == "NP" and str(nxt.value).split()[0].endswith("ing")
            if (
                nxt is not None
                and nxt.type == "NP"
                and not gerund  # "without moving any block" forbids an action; it names no object
                and clause[i].value != "without"  # "... in the bowl without the green block": not a clarification
                and (i + 2 >= len(clause) or clause[i + 2].type in ("AND", "SEP"))
            ):
                continue  # "..., not the blue one": a clarification
            moving = (
                nxt is not None
                and nxt.type == "VERB"
                and nxt.value
                in (
                    lx.PLACE_VERBS
                    | lx.PICK_VERBS
                    | lx.STACK_VERBS
                    | {"touch", "disturb", "moving", "touching"}
                )
            )
            word = self.words_after(clause[i])
            forbids = moving or gerund or (
                nxt is not None
                and nxt.type == "UNKNOWN"
                and nxt.value in ("moving", "touching", "lifting", "disturbing")
            )
            positive = [
                c
                for k, c in enumerate(clause)
                if c.type == "VERB" and not (k > 0 and clause[k - 1].type == "NEG")
            ]
            if forbids and positive:
                raise Refusal(
                    "contradiction",
                    f"The instruction asks for a change and forbids it ('{word}'), so it contradicts itself.",
                )
            raise Refusal(
                "unsupported_relation",
                f"I cannot check a goal that says what must not be the case ('{word}').",
            )

    def words_after(self, c: Chunk) -> str:
        try:
            i = self.words.index(c.value)
        except ValueError:
            return c.value
        return " ".join(w for w in self.words[i : i + 3] if w not in ".,;!?")

    @staticmethod
    def _drop_clarifying_negation(clause: list[Chunk], neg: list[int]) -> list[Chunk]:
        drop: set[int] = set()
        for i in neg:
            drop.add(i)
            if i + 1 < len(clause) and clause[i + 1].type == "NP":
                drop.add(i + 1)
        return [c for j, c in enumerate(clause) if j not in drop]

    # -- pairs: (moved objects, relation, targets) -------------------------------------------------------

    @staticmethod
    def pairs(clause: list[Chunk]) -> list[_Pair]:
        items = [c for c in clause if c.type not in ("VERB", "UNKNOWN", "NEG", "QUESTION")]
        if any(c.type == "REL" and not c.value.startswith("unsupported") for c in items):
            # "from the table into the bowl": where a block comes from does not matter
            keep: list[Chunk] = []
            skip = False
            for c in items:
                if c.type == "REL" and c.value in (
                    "unsupported:from",
                    "unsupported:out of",
                    "unsupported:off",
                ):
                    skip = True
                    continue
                if skip and c.type in ("NP", "LOC", "TABLE", "SIDE", "CORNER_ANY"):
                    skip = False
                    continue
                skip = False
                keep.append(c)
            items = keep
        pairs: list[_Pair] = []
        cur = _Pair()
        prev = ""
        for k, c in enumerate(items):
            nxt = next((x for x in items[k + 1 :] if x.type != "AND"), None)
            if c.type == "NP":
                np_ = c.np
                if cur.rel is None:
                    cur.moved.append(np_)  # type: ignore[arg-type]
                elif not cur.targets:
                    cur.targets.append(c)
                elif not cur.moved:
                    # relation first: "into the bowl, put ..."
                    cur.moved.append(np_)  # type: ignore[arg-type]
                elif prev == "AND" and (nxt is None or nxt.type not in ("REL", "LOC", "SIDE", "TABLE")):
                    cur.targets.append(c)  # "in the red and the blue bowl"
                else:
                    pairs.append(cur)
                    cur = _Pair(moved=[np_])  # type: ignore[list-item]
            elif c.type == "REL":
                if cur.rel is not None and cur.targets:
                    pairs.append(cur)
                    if prev == "AND" or cur.targets[-1].type != "NP":
                        cur = _Pair(moved=list(cur.moved), rel=c.value)  # a second place for the same objects
                    else:
                        # a chain: "red on blue on green"
                        cur = _Pair(moved=[cur.targets[-1].np], rel=c.value)  # type: ignore[list-item]
                elif cur.rel is None or not cur.targets:
                    if (
                        cur.rel is not None
                        and cur.rel.startswith("unsupported")
                        and not c.value.startswith("unsupported")
                    ):
                        pass  # "next to ... on" keeps the unsupported relation
                    else:
                        cur.rel = (
                            c.value
                            if cur.rel in (None, "to") or c.value.startswith("unsupported")
                            else cur.rel
                        )
            elif c.type in ("LOC", "SIDE", "CORNER_ANY", "CORNERS", "TABLE", "TOWER"):
                if c.type == "TOWER" and c.value != "target":
                    pass  # "a tower of ...", "build a stack": the noun, not a target
                elif cur.rel is None:
                    cur.rel = "to"
                    cur.targets.append(c)
                elif not cur.targets or prev == "AND" or cur.rel is not None and c.type == "TOWER":
                    cur.targets.append(c)
                else:
                    pairs.append(cur)
                    cur = _Pair(moved=list(cur.moved), rel="to", targets=[c])
            elif c.type == "ORDER":
                idx = len(cur.moved) - 1
                if c.value == "then":
                    cur.markers.setdefault(len(cur.moved), []).append("then")
                else:
                    cur.markers.setdefault(max(idx, 0), []).append(c.value)
            prev = c.type
        if cur.moved or cur.targets or cur.rel:
            pairs.append(cur)
        for p in pairs:
            # "all the blocks into the bowl except the red one": the exception belongs to what moves
            for t in p.targets:
                if (
                    t.type == "NP"
                    and t.np is not None
                    and t.np.except_
                    and p.moved
                    and (p.moved[-1].plural or p.moved[-1].quant)
                ):
                    p.moved[-1].except_.extend(t.np.except_)
                    t.np.except_ = []
        return pairs

    # -- frames ----------------------------------------------------------------------------------------------

    def _place(self, clause: list[Chunk], main: str | None) -> None:
        pairs = self.pairs(clause)
        if not pairs:
            if main is not None:
                raise Refusal("no_target", f"The instruction does not say what to {main} or where.")
            raise Refusal("nonsense", "I could not find a request to move blocks in the instruction.")
        for p in pairs:
            self._check_unsupported(p)
            if (
                p.rel is None
                and len(p.moved) == 2
                and main in lx.PLACE_VERBS
                and not p.moved[-1].plural
                and not p.moved[0].pronoun
                and p.moved[-1].kind in ("bowl", "generic", None, "block")
            ):
                # "put the yellow one the green thing": a missing preposition, read from the target's kind
                moved = self._moved(_Pair(moved=p.moved[:1]))
                self.r.doubt(0.8, "inferred the missing relation from the target's kind")
                self._add_place(moved, self._target_np(p.moved[-1], "to"), p)
                continue
            if (
                p.rel is not None
                and len(p.targets) == 1
                and p.targets[0].type == "NP"
                and p.targets[0].np is not None
                and p.targets[0].np.rest
                and not p.targets[0].np.plural
                and not p.targets[0].np.colors
            ):
                # "put each block on the other (one)": the other block, for each moved block
                moved = self._moved(p)
                kind = "bowl" if p.rel == "in" else "block"
                for b in moved:
                    others = [_name(c, kind) for c in self.scene.pool(kind) if _name(c, kind) != b]
                    if len(others) != 1:
                        raise Refusal(
                            "ambiguous",
                            f"The phrase '{p.targets[0].np.describe()}' does not say which {kind}.",
                        )
                    self._add_place([b], _Target(kind, others[0]), p)
                continue
            moved = self._moved(p)
            if p.rel is None:
                marks = [m for ms in p.markers.values() for m in ms]
                if (
                    "top" in marks
                    and self.last_top is not None
                    and len(moved) == 1
                    and moved[0] != self.last_top
                ):
                    # "..., then put the green block on top": on the block last put on another
                    self._add_place(moved, _Target("block", self.last_top), p)
                    continue
                if main in lx.PICK_VERBS:
                    self.pending_pick = moved
                    self.last_blocks = moved
                    continue
                if main is None and not moved:
                    raise Refusal("nonsense", "I could not find a request to move blocks in the instruction.")
                what = " and ".join(_pretty(moved)) or "them"
                if main is None:
                    raise Refusal(
                        "no_target",
                        f"The instruction names the {what} but not what to do with "
                        f"{'it' if len(moved) == 1 else 'them'}.",
                    )
                raise Refusal("no_target", f"The instruction does not say where to put the {what}.")
            if not p.targets:
                raise Refusal(
                    "no_target",
                    "The instruction does not say where to put "
                    f"{'the ' + ' and '.join(_pretty(moved)) if moved else 'it'}.",
                )
            if not moved:
                if self.pending_pick:
                    moved = self.pending_pick
                else:
                    raise Refusal("no_target", "The instruction does not say which block to move.")
            self.pending_pick = None
            self._add_place(moved, self._targets(p), p)

    def _moved(self, p: _Pair) -> list[str]:
        """Block names of a pair's moved phrases (bowls are refused: they stay where they are)."""
        out: list[str] = []
        for np_ in p.moved:
            for name, kind in self.resolve(np_, "moved", p.rel):
                if kind == "bowl":
                    raise Refusal(
                        "bowl_move",
                        "Bowls stay where they are: this robot only moves blocks, so it "
                        f"cannot move the {name}.",
                    )
                if name not in out:
                    out.append(name)
        if out:
            self.last_blocks = out
        return out

    def _check_unsupported(self, p: _Pair) -> None:
        if p.rel is not None and p.rel.startswith("unsupported:"):
            what = p.rel.split(":", 1)[1]
            # a bowl being moved is the clearer problem
            for np_ in p.moved:
                if (
                    np_.kind == "bowl"
                    and not np_.pronoun
                    and np_.colors
                    and all(self.scene.has(c, "bowl") for c in np_.colors)
                ):
                    raise Refusal("bowl_move", "Bowls stay where they are: this robot only moves blocks.")
            if what in (
                "in a line",
                "in a row",
                "in a circle",
                "in a square",
                "in a triangle",
                "in a ring",
                "in a pattern",
                "in a diagonal",
                "diagonally",
                "evenly",
                "spread out",
                "apart",
            ):
                sentence = (
                    f"Arranging blocks {what} is not a goal I can state yet; I can arrange blocks in a "
                    "horizontal, vertical or diagonal line, a triangle or a square."
                )
            elif "corners" in what:
                sentence = (
                    f"Putting blocks {what} describes a path or an order, which my goals cannot state; "
                    "name one corner per block, or say 'in different corners'."
                )
            elif what == "out of" or what in ("off", "from"):
                sentence = (
                    f"Taking things {what} somewhere is not a goal I can check; say where they should go."
                )
            else:
                sentence = (
                    f"The relation '{what}' is not one my goals can express yet; I can put a block in a "
                    "bowl, on a block, in a tower, at a corner, the middle or a side of the table, left / right "
                    "of, behind, in front of, near, far from or between objects, or a distance from one."
                )
            raise Refusal("unsupported_relation", sentence)

    def _targets(self, p: _Pair) -> list[_Target]:
        out: list[_Target] = []
        for c in p.targets:
            after = self._neighbour(c, 1)
            if c.type == "NP" and after is not None and after.type == "CORNERS" and self._free_choice(after):
                out.append(_Target("one_of", names=_CORNERS))  # "one of the corners"
            elif c.type == "NP":
                out.extend(self._target_np(c.np, p.rel or "to"))  # type: ignore[arg-type]
            elif c.type == "LOC":
                out.append(_Target("loc", c.value))
            elif c.type == "TABLE":
                out.append(_Target("table", c.value))
            elif c.type == "TOWER":
                out.append(_Target("tower"))
            elif c.type == "SIDE":
                raise Refusal(
                    "unsupported_relation",
                    f"The {c.value} is a side of the table, which my goals cannot "
                    "state yet; I know the four corners and the middle.",
                )
            elif c.type in ("CORNERS", "CORNER_ANY") and self._free_choice(c):
                out.append(_Target("one_of", names=_CORNERS))  # "any corner", "one of the corners"
            elif c.type == "CORNERS":
                raise Refusal(
                    "unsupported_relation",
                    "Putting blocks in several corners leaves the choice open, "
                    "which my goals cannot state; name one corner.",
                )
            elif c.type == "CORNER_ANY":
                raise Refusal(
                    "ambiguous",
                    "The instruction does not say which corner: top left, top right, bottom "
                    "left or bottom right.",
                )
        return out

    def _neighbour(self, c: Chunk, step: int) -> Chunk | None:
        """The chunk ``step`` places from ``c`` in the clause (-1: before, 1: after), if any."""
        k = next((i for i, x in enumerate(self.clause_chunks) if x is c), None)
        j = None if k is None else k + step
        return self.clause_chunks[j] if j is not None and 0 <= j < len(self.clause_chunks) else None

    def _free_choice(self, c: Chunk) -> bool:
        """Whether the words before a corner chunk leave the corner to the robot: "any corner", "either
        corner", "one of the corners", "whichever corner" ("the corner" and "a corner" stay ambiguous)."""
        before = self._neighbour(c, -1)
        if before is None:
            return False
        if before.type == "UNKNOWN" and before.value in ("any", "either", "whichever"):
            return True
        return (c.type == "CORNERS" and before.type == "NP" and before.np is not None
                and before.np.kind == "generic" and before.np.count == 1 and before.np.plural)  # "one of the"

    def _target_np(self, np_: NP, rel: str) -> list[_Target]:
        if np_.pronoun == "there":
            t = self.last_target
            if t is None:
                raise Refusal("ambiguous", "I cannot tell where 'there' is.")
            return [t]
        if np_.match or np_.mismatch:
            if np_.kind in ("block",) and not np_.match:
                raise Refusal(
                    "unsupported_relation",
                    "Blocks of a different colour leave the choice open, which my goals cannot state.",
                )
            return [_Target("match" if np_.match else "mismatch")]
        if np_.reciprocal:
            return [_Target("tower")]
        plain = not (np_.descriptor or np_.unknown_colors or np_.pronoun or np_.except_ or np_.rest)
        each = any(c.type == "NP" and c.np is not None and c.np is not np_
                   and (c.np.quant in ("each", "every") or c.np.quant == "all" and not c.np.plural)
                   for c in self.clause_chunks)  # "put each / every block into a bowl": a bowl per block, any
        free = np_.quant == "any" or np_.choice or (np_.indefinite and np_.count == 1 and np_.plural) \
            or (each and np_.indefinite and not np_.plural)
        if np_.kind == "bowl" and plain and not np_.colors and free and len(self.scene.bowls) > 1:
            # "any bowl", "either bowl", "one of the bowls", "each block in a bowl": the robot picks ("put the red
            # block in a bowl" stays ambiguous)
            return [_Target("one_of", names=tuple(_name(c, "bowl") for c in self.scene.bowls))]
        resolved = self.resolve(np_, "target", rel)
        out = [_Target(kind, name) for name, kind in resolved]
        if len(out) > 1 and " or " in f" {np_.text} ":
            if all(t.kind == "bowl" for t in out):
                return [_Target("one_of", names=tuple(t.name for t in out))]  # "the green or the purple bowl"
            names = " and ".join(t.name for t in out)
            raise Refusal("ambiguous", f"The instruction leaves the choice between {names} open; say one.")
        return out

    def _add_place(self, moved: list[str], targets: list[_Target] | _Target, p: _Pair) -> None:
        targets = targets if isinstance(targets, list) else [targets]
        if len(targets) == 1:
            self.last_target = targets[0]
            if targets[0].kind == "block" and len(moved) == 1:
                self.last_top = moved[0]
        if len(targets) > 1 and all(t.kind in ("bowl", "block", "loc") for t in targets):
            if len(moved) == 1 or len(moved) != len(targets) or "respectively" not in self.words:
                names = " and ".join(t.name for t in targets)
                alternatives = any(c.type == "AND" and c.value == "or" for c in self.clause_chunks)
                if alternatives and all(t.kind in ("bowl", "loc") for t in targets):
                    # "in the green bowl or the top left corner": each block in one of them, the robot picks
                    for b in moved:
                        self.r.intents.append(_Place([b], _Target("one_of", names=tuple(t.name for t in targets))))
                    return
                if len(moved) == 1 and alternatives:
                    raise Refusal(
                        "ambiguous", f"The instruction leaves the choice between {names} open; say one."
                    )
                if len(moved) == 1:
                    raise Refusal(
                        "contradiction", f"The {moved[0]} cannot be in two places at once ({names})."
                    )
                raise Refusal(
                    "ambiguous", f"The instruction does not say which block goes to which of {names}."
                )
            for b, t in zip(moved, targets, strict=True):
                self.r.intents.append(_Place([b], t))
            return
        for t in targets:
            if t.kind == "tower":
                self.r.intents.append(_Tower(list(moved), False))
            else:
                self.r.intents.append(_Place(list(moved), t))

    # -- towers ----------------------------------------------------------------------------------------------

    def _tower(self, clause: list[Chunk]) -> None:
        clause = self._middle_as_order(clause)
        # "a tower from / out of / with / using the blocks": membership, not a relation; "stack them together"
        clause = [
            c
            for k, c in enumerate(clause)
            if not (
                c.type == "REL"
                and c.value in ("unsupported:from", "unsupported:out of")
                and k > 0
                and clause[k - 1].type == "TOWER"
            )
            and not (c.type == "REL" and c.value == "unsupported:together")
        ]
        # "a tower of two with the red and blue blocks": the bare number is the height, the blocks are named after
        # ("stack three blocks: the red, the blue and the green" likewise); a number before a relation's object stays
        nps = [c for k, c in enumerate(clause) if c.type == "NP" and c.np is not None
               and not (k > 0 and clause[k - 1].type == "REL")]
        bare = [c for c in nps if c.np.count is not None and c.np.kind in ("generic", "block")
                and c.np.head in ("", *lx.BLOCK_NOUNS)
                and not (c.np.colors or c.np.descriptor or c.np.unknown_colors or c.np.pronoun or c.np.except_)]
        if bare and len(nps) > len(bare):
            clause = [c for c in clause if all(c is not b for b in bare)]
        pairs = self.pairs(clause)
        count = self._tower_count()
        members: list[str] = []
        loose: set[str] = set()  # members only from a bare "the blocks", which a full order may narrow
        ordered: list[str] = []
        base: _Target | None = None
        chain: list[tuple[str, str]] = []
        single: tuple[str, str] | None = None
        for p in pairs:
            self._check_unsupported(p)
            seq: list[tuple[list[str], NP, list[str]]] = []
            for idx, np_ in enumerate(p.moved):
                names = [n for n, k in self.resolve(np_, "member", p.rel) if self._block_only(n, k)]
                seq.append((names, np_, p.markers.get(idx, [])))
                if np_.plural and np_.quant is None and not (np_.colors or np_.descriptor or np_.count or np_.rest
                                                             or np_.except_ or np_.pronoun):
                    loose.update(names)  # "stack the blocks from bottom to top: ...": the blocks the order names
                for n in names:
                    if n not in members:
                        members.append(n)
            flat_order = self._order(seq)
            if flat_order:
                ordered = flat_order
            else:
                single = self._single_position(seq) or single
            if p.rel is not None and p.targets:
                moved_names = [n for names, _, _ in seq for n in names]
                if len(moved_names) == 1:  # as `_moved` does: "stack the yellow block on it" is not on itself
                    self.last_blocks = moved_names
                for t in self._targets(p):
                    if t.kind == "tower":
                        continue
                    if t.kind == "block":
                        if len(moved_names) == 1:
                            chain.append((moved_names[0], t.name))
                            if t.name not in members:
                                members.append(t.name)
                        else:
                            self.r.doubt(0.8, f"the order above the {t.name} is not given")
                            if t.name not in members:
                                members.insert(0, t.name)
                    elif t.kind in ("bowl", "loc"):
                        if base is not None and (base.kind, base.name) != (t.kind, t.name):
                            raise Refusal("contradiction", "One tower cannot stand in two places.")
                        base = t
                    elif t.kind == "table":
                        pass  # "stack them on the table": anywhere
                    else:
                        raise Refusal(
                            "unsupported_relation", "A tower cannot go into matching bowls; say one place."
                        )
        pool = [_name(c, "block") for c in self.scene.blocks]
        if not members:
            members = pool  # "stack the blocks" said as "make a stack", "build the tallest tower"
        if count is not None and count != len(members):
            if count > len(self.scene.blocks) or count > MAX_BLOCKS:
                self._count_refusal(count, len(self.scene.blocks))
            if len(members) == len(pool):
                raise Refusal(
                    "ambiguous",
                    f"A tower of {_count_words(count)} leaves the choice of blocks open; name them.",
                )
            raise Refusal(
                "contradiction",
                f"The instruction asks for a tower of {_count_words(count)} but names "
                f"{_count_words(len(members))} blocks.",
            )
        if chain:
            for a, b in chain:
                self.r.intents.append(("on", a, b))
            tops = [a for a, _ in chain if a not in {b for _, b in chain}]
            self.last_top = tops[0] if len(tops) == 1 else None
            if len(members) >= 3 or any(x not in {y for ab in chain for y in ab} for x in members):
                self.r.intents.append(_Tower(list(members), False))
            if base is not None:
                self.r.intents.append(_Place(list(members), base))
            self.last_blocks = members
            return
        if len(members) < 2:
            if len(self.scene.blocks) < 2:
                raise Refusal(
                    "impossible_count",
                    f"A tower needs at least two blocks; the table has "
                    f"{_count_words(len(self.scene.blocks))}.",
                )
            raise Refusal("no_target", f"The instruction does not say what to stack the {members[0]} on.")
        if not ordered and single is not None:  # "stack them with red at the bottom": one block's place
            name, mark = single
            if len(members) != 2 or name not in members:
                raise Refusal(
                    "unsupported_relation",
                    f"The instruction fixes only where the {name} goes in the tower; my goals can state a tower "
                    "in any order or in a fully given order.",
                )
            other = next(m for m in members if m != name)
            ordered = [name, other] if mark == "bottom" else [other, name]
        if ordered and len(ordered) >= 2:
            if set(ordered) < set(members) and set(members) - set(ordered) <= loose:
                members = [m for m in members if m in ordered]
            if set(ordered) != set(members):
                raise Refusal(
                    "unsupported_relation",
                    "The instruction gives the order of only some of the tower's "
                    "blocks; my goals can state a tower in any order or in a fully "
                    "given order.",
                )
            else:
                self.r.intents.append(_Tower(ordered, True, base))
                self.last_top = ordered[-1]
        else:
            self.r.intents.append(_Tower(members, False, base))
        self.last_blocks = members

    @staticmethod
    def _middle_as_order(clause: list[Chunk]) -> list[Chunk]:
        """Read "in the middle" as a tower position when the clause also says bottom or top."""
        if not any(c.type == "ORDER" and c.value in ("bottom", "top") for c in clause):
            return clause
        out: list[Chunk] = []
        for c in clause:
            if (
                c.type == "LOC"
                and c.value == "middle"
                and out
                and out[-1].type == "REL"
                and out[-1].value in ("in", "at", "to")
            ):
                out[-1] = Chunk("ORDER", "middle")
                continue
            out.append(c)
        return out

    @staticmethod
    def _single_position(seq: list[tuple[list[str], NP, list[str]]]) -> tuple[str, str] | None:
        """(block, "bottom" | "top") when the wording places exactly one named block in the tower."""
        placed = [(names[0], m) for names, np_, ms in seq for m in ms
                  if m in ("bottom", "top") and names and (np_.colors or np_.descriptor) and len(names) == 1]
        return placed[0] if len(placed) == 1 else None

    @staticmethod
    def _order(seq: list[tuple[list[str], NP, list[str]]]) -> list[str]:
        """Bottom-first order of the named tower blocks, or [] when the wording gives no order."""
        marks = [m for _, _, ms in seq for m in ms]
        singles = [(names, ms) for names, np_, ms in seq if np_.colors or np_.descriptor or np_.pronoun]
        flat: list[str] = []
        for names, _ in singles:
            flat.extend(n for n in names if n not in flat)  # "the red and blue blocks, red on top": once each
        positional = any(m in ("bottom", "top", "middle", "btt", "ttb") for m in marks)
        if len(flat) < 2 or not (positional or "then" in marks):
            return []
        sequence = "then" in marks or "btt" in marks or "ttb" in marks
        fixed = sum(1 for m in marks if m in ("bottom", "top", "middle"))
        if not sequence and fixed < len(flat) - 1:
            raise Refusal(
                "unsupported_relation",
                "The instruction fixes only part of the tower's order; my goals "
                "can state a tower in any order or in a fully given order.",
            )
        pos: dict[str, str] = {}
        for names, ms in singles:
            for m in ms:
                if m == "bottom" and names:
                    pos[names[0]] = "bottom"
                elif m == "top" and names:
                    pos[names[-1]] = "top"
        if "ttb" in marks:
            top_first = True
        elif "btt" in marks:
            top_first = False
        else:
            bottoms = [flat.index(n) for n, m in pos.items() if m == "bottom"]
            tops = [flat.index(n) for n, m in pos.items() if m == "top"]
            top_first = bool(
                (tops and bottoms and tops[0] < bottoms[0])
                or (tops and not bottoms and tops[0] == 0)
                or (
                    bottoms
                    and not tops
                    and bottoms[0] == len(flat) - 1
                    and len(flat) > 1
                    and "then" not in marks
                )
            )
        if top_first:
            flat.reverse()
        for n, m in pos.items():
            flat.remove(n)
            if m == "bottom":
                flat.insert(0, n)
            else:
                flat.append(n)
        return flat

    def _block_only(self, name: str, kind: str) -> bool:
        if kind == "bowl":
            raise Refusal(
                "bowl_move",
                f"Bowls stay where they are: this robot only stacks blocks, so it cannot move the {name}.",
            )
        return True

    def _tower_count(self) -> int | None:
        """N in "a tower of N (blocks)", "stack N blocks", "N blocks high"."""
        words = self.words
        for i, w in enumerate(words):
            if w in lx.NUMBERS and w not in ("one", "single", "pair") and lx.NUMBERS[w] >= 2:
                before = words[max(0, i - 3) : i]
                after = words[i + 1 : i + 3]
                if any(b in lx.TOWER_NOUNS or b in ("stack", "pile", "of") for b in before) or any(
                    a
                    in ("high", "tall", "blocks", "cubes", "bricks", "levels", "stories", "storeys", "floors")
                    for a in after
                ):
                    return lx.NUMBERS[w]
        return None

    def _count_refusal(self, count: int, have: int) -> None:
        raise Refusal(
            "impossible_count",
            f"A tower of {_count_words(count)} blocks is impossible: the table has "
            f"{_count_words(have)} block{'s' if have != 1 else ''}.",
        )

    # -- other frames

    def _fill(self, clause: list[Chunk]) -> bool:
        nps = [c.np for c in clause if c.type == "NP" and c.np is not None]
        if len(nps) < 2 or nps[0].kind not in ("bowl", "generic", None):
            return False
        container = self.resolve(nps[0], "container")
        if len(container) != 1 or container[0][1] != "bowl":
            return False
        moved: list[str] = []
        for np_ in nps[1:]:
            for n, k in self.resolve(np_, "moved", "in"):
                if k == "bowl":
                    raise Refusal("bowl_move", "Bowls stay where they are: this robot only moves blocks.")
                moved.append(n)
        self.r.intents.append(_Place(moved, _Target("bowl", container[0][0])))
        self.last_blocks = moved
        return True

    def _cover(self, clause: list[Chunk]) -> bool:
        nps = [c.np for c in clause if c.type == "NP" and c.np is not None]
        if len(nps) != 2:
            return False
        under = self.resolve(nps[0], "target", "on")
        over = self.resolve(nps[1], "moved", "on")
        if len(under) != 1 or len(over) != 1 or over[0][1] != "block":
            return False
        target = _Target(under[0][1], under[0][0])
        self.r.intents.append(_Place([over[0][0]], target))
        return True

    def _contain(self, clause: list[Chunk]) -> bool:
        """ "the green bowl should hold / contain / have the red block": the bowl is the subject."""
        first = next((k for k, c in enumerate(clause) if c.type == "NP"), None)
        subject = clause[first].np if first is not None else None
        if subject is None or subject.kind != "bowl":
            return False
        rest = clause[first + 1 :]
        if (
            not rest
            or rest[0].type not in ("VERB", "UNKNOWN")
            or rest[0].value not in (lx.CONTAIN_VERBS | {"get", "gets", "receive", "receives"})
        ):
            return False
        nps = [c.np for c in clause if c.type == "NP" and c.np is not None]
        if len(nps) < 2:
            return False
        container = self.resolve(nps[0], "container")
        if len(container) != 1 or container[0][1] != "bowl":
            return False
        moved = [n for np_ in nps[1:] for n, k in self.resolve(np_, "moved", "in") if k == "block"]
        self.r.intents.append(_Place(moved, _Target("bowl", container[0][0])))
        return True

    def _group(self, clause: list[Chunk]) -> bool:
        """ "group the blue objects together": every block of that colour into the bowl of that colour."""
        nps = [c.np for c in clause if c.type == "NP" and c.np is not None]
        if len(nps) != 1 or not nps[0].colors or nps[0].kind not in ("generic", None):
            return False
        if any(c.type == "REL" and not c.value.endswith("together") for c in clause):
            return False
        for color in nps[0].colors:
            if not self.scene.has(color, "bowl"):
                raise Refusal(
                    "unsupported_relation",
                    f"Grouping the {color} objects needs a {color} bowl to put "
                    "them in; putting things next to each other is not a goal I "
                    "can state yet.",
                )
            if not self.scene.has(color, "block"):
                raise Refusal(
                    "absent_object",
                    f"There is no {color} block on the table (it holds: {self.scene.listing()}).",
                )
            self.r.intents.append(_Place([_name(color, "block")], _Target("bowl", _name(color, "bowl"))))
        return True

    def _sort(self, clause: list[Chunk], main: str | None) -> bool:
        pairs = self.pairs(clause)
        for p in pairs:
            self._check_unsupported(p)
        match_marker = any(c.type == "MATCH" for c in clause)
        mismatch_marker = any(c.type == "MISMATCH" for c in clause)
        if any(p.targets for p in pairs):
            if not (match_marker or mismatch_marker):
                # "sort the blocks into the bowls", "match the blocks to the bowls": by colour
                for p in pairs:
                    for t in p.targets:
                        if (
                            t.type == "NP"
                            and t.np is not None
                            and t.np.kind == "bowl"
                            and not t.np.colors
                            and (t.np.plural or main in ("match", "pair"))
                            and main in lx.SORT_VERBS
                        ):
                            t.np.match = True
                return False
            for p in pairs:
                for t in p.targets:
                    if t.type == "NP" and t.np is not None and t.np.kind == "bowl" and not t.np.colors:
                        t.np.match, t.np.mismatch = match_marker, mismatch_marker
            return False
        if not pairs or not pairs[0].moved:
            if match_marker:
                pairs = [_Pair(moved=[NP(kind="block", plural=True, quant="all", text="the blocks")])]
            else:
                return False
        if not self.scene.bowls:
            raise Refusal(
                "unsupported_relation",
                "Sorting the blocks needs bowls to sort them into, and there are none on the table.",
            )
        if main not in lx.MATCH_VERBS and not match_marker and not mismatch_marker:
            return False
        for p in pairs:
            moved = self._moved(p)
            self.r.intents.append(_Place(moved, _Target("mismatch" if mismatch_marker else "match")))
        return True


class _Resolver:
    """Noun phrases -> objects on the table, with refusals that name the problem."""

    def __init__(self, scene: _Scene, named_blocks: set[str], descriptor_model: Any = None) -> None:
        self.scene = scene
        self.named_blocks = named_blocks  # blocks named explicitly anywhere (for "the rest", "the other")
        self.describe = descriptor_model  # callable(descriptor, colours present) -> (colour | None, prob)
        self.pending_choices: list[tuple[NP, list[tuple[str, str]]]] = []

    def resolve(self, np_: NP, role: str, rel: str | None, r: _Reading) -> list[tuple[str, str]]:
        chooser = [a for a in np_.unknown_adjs if a in _SELECTIVE]
        if chooser and not (np_.colors or np_.descriptor):  # "the tall ones", "the big block": no colour to go by
            r.doubt(0.3, f"cannot tell which objects {' '.join(chooser)!r} picks out")
        if np_.unknown_colors:
            word = np_.unknown_colors[0]
            kind = np_.kind if np_.kind in ("block", "bowl") else "object"
            known = ", ".join(COLOR_NAMES)
            raise Refusal(
                "unknown_colour",
                f"There is no {word} {kind} here: '{word}' is not one of the colours I know ({known}).",
            )
        if np_.kind == "unknown":
            head = np_.head
            if head in lx.TABLE_WORDS:
                return []
            what = " ".join(np_.colors + [head])
            raise Refusal(
                "unknown_object",
                f"There is no {what} on the table: I can only see blocks and bowls ({self.scene.listing()}).",
            )
        kind = np_.kind
        colors = list(np_.colors)
        if np_.descriptor and not colors:
            return self._describe(np_, role, rel, r)
        if colors:
            out: list[tuple[str, str]] = []
            for c in colors:
                out.append((_name(c, k := self._kind_for(c, kind, role, rel, np_)), k))
            if (
                np_.count is not None
                and np_.count != len(colors)
                and not (np_.count == 1 and len(colors) == 1)
            ):
                self._count_mismatch(np_, colors, kind or "block")
            if np_.quant == "both" and len(colors) == 1:
                self._count_mismatch(NP(count=2), colors, kind or "block")
            return out
        # no colour: a quantity of a kind
        if kind in (None, "generic"):
            kind = "block" if role in ("moved", "member") else ("bowl" if rel == "in" else None)
            if kind is None:
                raise Refusal("ambiguous", f"I cannot tell which object '{np_.describe()}' means.")
        pool = self.scene.pool(kind)
        if np_.rest:
            pool = [c for c in pool if _name(c, kind) not in self.named_blocks]
        for ex in np_.except_:
            for c in ex.colors:
                if c in pool:
                    pool.remove(c)
                elif not self.scene.has(c, kind):
                    raise Refusal(
                        "absent_object",
                        f"There is no {c} {kind} on the table (it holds: {self.scene.listing()}).",
                    )
        names = [(_name(c, kind), kind) for c in pool]
        plural = np_.plural or np_.quant in ("all", "each", "any", "both") or np_.rest and np_.plural
        if np_.count is not None and np_.count != 1 or np_.quant == "both":
            want = np_.count if np_.count is not None else 2
            if want > len(pool):
                have = len(pool)
                raise Refusal(
                    "impossible_count",
                    f"The instruction asks for {_count_words(want)} {_plural(kind)}, "
                    f"but the table has {_count_words(have)}.",
                )
            if want < len(pool):
                raise Refusal(
                    "ambiguous",
                    f"The instruction asks for {_count_words(want)} of the "
                    f"{_count_words(len(pool))} {_plural(kind)} without saying which.",
                )
            return names
        if np_.choice and len(pool) > 1:
            raise Refusal(
                "ambiguous", f"The instruction leaves the choice of {_plural(kind)} open; say which."
            )
        if plural:
            if not names:
                if np_.rest:
                    raise Refusal("absent_object", f"No other {_plural(kind)} are left on the table.")
                raise Refusal(
                    "absent_object",
                    f"There are no {_plural(kind)} on the table (it holds: {self.scene.listing()}).",
                )
            return names
        # singular without colour: "the block", "a bowl", "the other block", "any block"
        if len(names) == 1:
            return names
        if not names:
            raise Refusal(
                "absent_object",
                f"There is no {'other ' if np_.rest else ''}{kind} on the table (it holds: "
                f"{self.scene.listing()}).",
            )
        if np_.quant in ("each", "all"):
            return names
        raise Refusal(
            "ambiguous",
            f"There are {_count_words(len(names))} {_plural(kind)} on the table; the "
            f"instruction does not say which one.",
        )

    def _kind_for(self, color: str, kind: str | None, role: str, rel: str | None, np_: NP) -> str:
        if kind in ("block", "bowl"):
            if not self.scene.has(color, kind):
                other = "bowl" if kind == "block" else "block"
                extra = f" (there is a {color} {other})" if self.scene.has(color, other) else ""
                raise Refusal(
                    "absent_object",
                    f"There is no {color} {kind} on the table{extra}; it holds: {self.scene.listing()}.",
                )
            return kind
        block, bowl = self.scene.has(color, "block"), self.scene.has(color, "bowl")
        if not block and not bowl:
            what = "block" if role in ("moved", "member") else "block or bowl"
            raise Refusal(
                "absent_object",
                f"There is no {color} {what} on the table (it holds: {self.scene.listing()}).",
            )
        if role in ("moved", "member"):
            return "block" if block else "bowl"
        if role == "container" or rel == "in":
            return "bowl" if bowl else "block"
        if block and bowl:
            if rel == "on":
                return "block"
            raise Refusal(
                "ambiguous",
                f"The phrase '{np_.describe()}' could mean the {color} block or the {color} bowl.",
            )
        return "block" if block else "bowl"

    def _count_mismatch(self, np_: NP, colors: list[str], kind: str) -> None:
        want = np_.count if np_.count is not None else 2
        cs = " and ".join(colors)
        raise Refusal(
            "impossible_count",
            f"The instruction asks for {_count_words(want)} {cs} {_plural(kind)}, but "
            f"each colour exists at most once (one {cs} {kind}).",
        )

    def _describe(self, np_: NP, role: str, rel: str | None, r: _Reading) -> list[tuple[str, str]]:
        """Resolve a description ("forest-colored", "light colored") against the objects on the table."""
        d = np_.descriptor or ""
        kind = (
            np_.kind
            if np_.kind in ("block", "bowl")
            else ("block" if role in ("moved", "member") else "bowl" if rel == "in" else None)
        )
        kinds = [kind] if kind else ["block", "bowl"]
        phrase = np_.describe()
        if (np_.plural or np_.quant in ("all", "every", "each", "any")) and kind is not None:
            group = self._described_class(d, self.scene.pool(kind))
            if group is not None:  # "the warm colored blocks", "all blocks of cool colours": every one that fits
                if not group:
                    raise Refusal("absent_object",
                                  f"Nothing on the table fits '{phrase}' (it holds: {self.scene.listing()}).")
                return [(_name(c, kind), kind) for c in group]
        found: list[tuple[str, str]] = []
        for k in kinds:
            pool = self.scene.pool(k)
            pick = self._pick_described(d, pool, phrase, k, r, strict=kind is not None)
            if pick is not None:
                found.append((_name(pick, k), k))
        if len(found) == 1:
            return found
        if len(found) > 1:
            raise Refusal(
                "ambiguous", f"The phrase '{phrase}' could mean the {found[0][0]} or the {found[1][0]}."
            )
        raise Refusal(
            "absent_object", f"Nothing on the table fits '{phrase}' (it holds: {self.scene.listing()})."
        )

    @staticmethod
    def _described_class(d: str, pool: list[str]) -> list[str] | None:
        """The colours of ``pool`` a class word covers ("warm": red, orange...; "light": light ones), or None
        when ``d`` names no class (a superlative or a single colour's description)."""
        if d in lx.TEMPERATURE_WORDS:
            return [c for c in pool if c in lx.TEMPERATURE_WORDS[d]]
        if d in ("light", "bright", "pale", "pastel"):
            return [c for c in pool if lx.LIGHTNESS[c] >= lx.LIGHT_MIN_L]
        if d in ("dark", "deep", "dim"):
            return [c for c in pool if lx.LIGHTNESS[c] <= lx.DARK_MAX_L]
        return None

    def _pick_described(
        self, d: str, pool: list[str], phrase: str, kind: str, r: _Reading, strict: bool
    ) -> str | None:
        if not pool:
            return None
        if d in lx.LIGHT_WORDS or d in lx.DARK_WORDS:
            light = d in lx.LIGHT_WORDS
            ranked = sorted(pool, key=lambda c: lx.LIGHTNESS[c], reverse=light)
            cls = [
                c
                for c in pool
                if (lx.LIGHTNESS[c] >= lx.LIGHT_MIN_L if light else lx.LIGHTNESS[c] <= lx.DARK_MAX_L)
            ]
            superlative = d.endswith("est") or d.endswith("er")
            if len(ranked) == 1:
                return ranked[0] if (cls or superlative) else None
            gap = abs(lx.LIGHTNESS[ranked[0]] - lx.LIGHTNESS[ranked[1]])
            if len(cls) == 1 and cls[0] == ranked[0] or gap >= 15.0 or superlative and gap >= 5.0:
                r.doubt(0.95, f"'{phrase}' read as the {ranked[0]} {kind} by lightness")
                return ranked[0]
            if strict:
                raise Refusal(
                    "ambiguous",
                    f"The phrase '{phrase}' fits more than one {kind} on the table "
                    f"({', '.join(c for c in ranked[:2])}).",
                )
            return None
        if d in lx.TEMPERATURE_WORDS:
            fits = self._described_class(d, pool) or []
            if len(fits) == 1:
                return fits[0]
            if len(fits) > 1 and strict:
                raise Refusal(
                    "ambiguous", f"The phrase '{phrase}' fits more than one {kind} ({', '.join(fits)})."
                )
            return None
        if d in lx.DESCRIPTORS:
            prefs = lx.DESCRIPTORS[d]
            fits = [c for c in prefs if c in pool]
            if len(fits) >= 1:
                if len(fits) > 1:
                    r.doubt(0.9, f"'{phrase}' fits {', '.join(fits)}; took the usual one, {fits[0]}")
                return fits[0]
            return None
        # outside the lexicon: ask the language model, if there is one
        if self.describe is not None:
            color, prob = self.describe(d, pool)
            if color is not None:
                r.doubt(prob, f"'{phrase}' read as the {color} {kind} by the language model (p={prob:.2f})")
                return color
            return None
        raise Refusal(
            "unknown_colour",
            f"I do not know which colour '{phrase}' means; name one of the colours on the table.",
        )


_SELECTIVE = frozenset(
    {*lx.TEMPERATURE_WORDS, *lx.LIGHT_WORDS, *lx.DARK_WORDS, *lx.COLOURED_WORDS, "colors", "colours", "shade",
     "shades", "hue", "hues", "big", "bigger", "biggest", "small", "smaller", "smallest", "large", "larger",
     "largest", "tall", "taller", "tallest", "short", "left", "right", "first", "last", "only", "odd", "even",
     "same", "different", "closest", "nearest", "farthest", "furthest"}
)


def _pretty(names: list[str]) -> list[str]:
    return list(names)


# -- intents -> predicates


def build_goal(intents: list, scene: _Scene) -> list[list]:
    """Predicates for the intents, canonical (no duplicates), checked for contradictions."""
    goal: list[list] = []

    def add(p: list) -> None:
        if p not in goal:
            goal.append(p)

    for it in intents:
        if isinstance(it, tuple):
            add(list(it))
        elif isinstance(it, _Tower):
            if len(it.members) < 2:
                continue
            add(["stacked", list(it.members)])
            if it.ordered:
                for lower, upper in zip(it.members, it.members[1:], strict=False):
                    add(["on", upper, lower])
            if it.base is not None:
                for b in it.members:
                    if it.base.kind == "bowl":
                        add(["in", b, it.base.name])
                    elif it.base.kind == "loc":
                        add(["at", b, it.base.name])
                    elif it.base.kind == "block" and b != it.base.name:
                        pass
        else:
            t = it.target
            if t.kind == "match":
                named = [b for b in it.blocks if scene.has(b.split()[0], "bowl")]
                explicit = it.blocks if len(it.blocks) == 1 else []
                if explicit and not named:
                    raise Refusal(
                        "absent_object",
                        f"There is no bowl of the same colour as the {explicit[0]} "
                        f"(bowls: {', '.join(scene.bowls) or 'none'}).",
                    )
                if not named:
                    raise Refusal(
                        "absent_object",
                        "No block on the table has a bowl of its colour (blocks: "
                        f"{', '.join(scene.blocks)}; bowls: {', '.join(scene.bowls) or 'none'}).",
                    )
                for b in named:
                    add(["in", b, _name(b.split()[0], "bowl")])
            elif t.kind == "mismatch":
                for p in _mismatch(it.blocks, scene):
                    add(p)
            elif t.kind == "table":
                raise Refusal(
                    "unsupported_relation",
                    "Putting a block 'on the table' names no place my goals can "
                    "check; say a corner, the middle, a bowl or a block.",
                )
            else:
                for b in it.blocks:
                    if t.kind == "bowl":
                        add(["in", b, t.name])
                    elif t.kind == "block":
                        if b == t.name:
                            raise Refusal("contradiction", f"The {b} cannot be put on itself.")
                        add(["on", b, t.name])
                    elif t.kind == "loc":
                        add(["at", b, t.name])
                    elif t.kind == "one_of":
                        add(["one_of", b, list(t.names)])
                if t.kind == "block" and len(it.blocks) > 1:
                    raise Refusal(
                        "contradiction",
                        f"Only one block can rest directly on the {t.name}, not "
                        f"{_count_words(len(it.blocks))}.",
                    )
    _check_consistent(goal)
    return goal


def _mismatch(blocks: list[str], scene: _Scene) -> list[list]:
    """Blocks into bowls of other colours, one block per bowl: the one assignment, or the choice left open
    (``different`` + ``not_in``) when several fit; a refusal when none does."""
    bowls = [_name(c, "bowl") for c in scene.bowls]
    sols: list[list[str]] = []

    def search(i: int, used: list[str]) -> None:
        if len(sols) > 1:
            return
        if i == len(blocks):
            sols.append(list(used))
            return
        for w in bowls:
            if w not in used and w.split()[0] != blocks[i].split()[0]:
                search(i + 1, used + [w])

    search(0, [])
    if not sols and len(blocks) > len(bowls) and all(any(w.split()[0] != b.split()[0] for w in bowls)
                                                     for b in blocks):
        # more blocks than bowls: each block in some bowl of another colour, bowls shared
        return [["one_of", b, [w for w in bowls if w.split()[0] != b.split()[0]]] for b in blocks]
    if not sols:
        raise Refusal("impossible_count", "There are not enough bowls of other colours for every block.")
    if len(sols) > 1:  # the choice stays open: each block in a different bowl, none in its own colour's
        return [["different", list(blocks), bowls]] + [
            ["not_in", b, _name(b.split()[0], "bowl")] for b in blocks if _name(b.split()[0], "bowl") in bowls]
    return [["in", b, w] for b, w in zip(blocks, sols[0], strict=True)]


def _check_consistent(goal: list[list]) -> None:
    """Refuse goals that cannot all hold at once."""
    support: dict[str, str] = {}
    base: dict[str, str] = {}
    carried: dict[str, str] = {}
    towers: dict[str, int] = {}
    for i, p in enumerate(goal):
        if p[0] == "on":
            a, b = p[1], p[2]
            if a in support and support[a] != b:
                raise Refusal(
                    "contradiction", f"The {a} cannot rest directly on both the {support[a]} and the {b}."
                )
            if b in carried and carried[b] != a:
                raise Refusal(
                    "contradiction",
                    f"Only one block can rest directly on the {b}, not both the {carried[b]} and the {a}.",
                )
            support[a], carried[b] = b, a
        elif p[0] in ("in", "at"):
            a, where = p[1], p[2]
            if a in base and base[a] != where:
                raise Refusal(
                    "contradiction", f"The {a} cannot be both {_where(base[a])} and {_where(where)}."
                )
            base[a] = where
        elif p[0] == "stacked":
            for b in p[1]:
                if b in towers and towers[b] != i:
                    raise Refusal("contradiction", f"The {b} cannot be in two different towers.")
                towers[b] = i
    # cycles
    for a in support:
        seen = {a}
        x = a
        while x in support:
            x = support[x]
            if x in seen:
                raise Refusal(
                    "contradiction", f"The blocks cannot each rest on the other ({a} and {support[a]})."
                )
            seen.add(x)

    # a block's base follows the block it rests on
    def root(x: str) -> str:
        seen: set[str] = set()
        while x in support and x not in seen:
            seen.add(x)
            x = support[x]
        return x

    bases: dict[str, tuple[str, str]] = {}
    for a, where in base.items():
        r = root(a)
        if r in bases and bases[r][1] != where:
            other = bases[r][0]
            raise Refusal(
                "contradiction",
                f"The {a} and the {other} rest in one tower, which cannot be both "
                f"{_where(where)} and {_where(bases[r][1])}.",
            )
        bases[r] = (a, where)
    for p in goal:
        if p[0] == "stacked":
            members = set(p[1])
            for a, b in support.items():
                if (a in members) != (b in members):
                    inside, outside = (a, b) if a in members else (b, a)
                    raise Refusal(
                        "contradiction",
                        f"The tower of {', '.join(p[1])} cannot hold exactly those blocks "
                        f"and also have the {inside} touch the {outside}.",
                    )
            wheres = {base[b] for b in members if b in base}
            if len(wheres) > 1:
                raise Refusal(
                    "contradiction",
                    "One tower cannot stand in two places: "
                    f"{' and '.join(sorted(_where(w) for w in wheres))}.",
                )


def _where(place: str) -> str:
    return f"in the {place}" if place.endswith("bowl") else f"at the {place}"


# -- the public reader

_QUESTION_START = re.compile(
    r"^\s*(what|where|which|who|whom|whose|why|when|how)\s+(is|are|was|were|do|does|did|can|could|should|"
    r"will|would|many|much|color|colors|colour|kind|sort|one|ones|block|blocks|bowl|bowls|of|has|have|about|"
    r"big|far|tall|"
    r"high|the)\b|^\s*(is|are|was|were|am|does|do|did)\s+(?!not\b)|^\s*(has|have)\s+(you|we|i|they|it|he|she|"
    r"anyone|the robot)\b",
    re.IGNORECASE,
)
_QUESTION_WORD = re.compile(r"^\s*(what|where|which|who|whom|whose|why|how)\b", re.IGNORECASE)
_POLITE_START = re.compile(r"^\s*(please\s+)?(can|could|would|will|might)\b", re.IGNORECASE)
# a tower's order said as a list after "in (the / this / that) order": rewritten to the reader's "from bottom to top:
# X, Y, Z" (a stacking order is bottom first unless it says top first)
_COL = r"(?!(?:from|going|bottom|top|base|and|then|to|up|down)\b)[a-z]+(?:[ -](?:blue|green|red|gray|grey))?"
_LIST = rf"(?P<list>{_COL}(?:\s*,\s*{_COL})*\s*,?\s*(?:and then|then|and)\s+{_COL}|{_COL}(?:\s*,\s*{_COL}){{2,}})"
_DIR = r"(?P<dir>\s*,?\s*(?:(?:going |)from (?:the )?(?:bottom|top|base)(?: to (?:the )?(?:top|bottom)| up(?:wards?)?| down(?:wards?)?)?|(?:bottom|top) to (?:bottom|top)|(?:bottom|top)[ -]up|(?:bottom|top)[ -]down))"
_ORDER_LIST = [
    re.compile(rf"\bin (?:the |this |that |the following |)order{_DIR}?\s*:?\s*{_LIST}{_DIR.replace('dir', 'dir2')}?",
               re.IGNORECASE),
    re.compile(rf"\bthe {_LIST} blocks,? (?:in|following) (?:that|this|the given|the same|the listed|the stated) order"
               rf"{_DIR}?", re.IGNORECASE),
    re.compile(rf"\b{_LIST},? in (?:that|this|the given|the same|the listed|the stated) order{_DIR}?", re.IGNORECASE),
]


def _order_phrase(text: str) -> str:
    """``text`` with a tower order said as "in order X, Y, Z" rewritten as "from bottom to top: X, Y, Z"."""
    for pat in _ORDER_LIST:
        m = pat.search(text)
        if m is None:
            continue
        d = m.groupdict()
        way = " ".join(x for x in (d.get("dir"), d.get("dir2")) if x).lower()
        top_first = bool(re.search(r"from (?:the )?top|top to bottom|top[ -]down|down", way))
        items = [x for x in re.split(r"\s*,\s*(?:and then |then |and )?|\s+(?:and then|then|and)\s+", m["list"]) if x]
        head = "from top to bottom: " if top_first else "from bottom to top: "
        return text[:m.start()] + head + ", ".join(items) + text[m.end():]
    return text


# a request's opening modal typed fast ("Cold you ...", "woud u ..."): read as "could you" before anything else
_MODAL_TYPO = re.compile(r"^(\s*(?:please\s+)?)(?:cold|coud|cud|culd|cloud|woud|wud|wuld|cn|cna)\s+(?:you|u|ya)\b",
                         re.IGNORECASE)


def _refused(category: str, sentence: str, confidence: float = 0.0, notes: tuple[str, ...] = ()) -> Reading:
    return Reading(None, sentence, confidence, (), category, notes)


class GoalReader:
    """Reads an instruction against the objects on the table: a checkable goal, or one refusal sentence.

    ``lm``: anything with ``score(prompt, options)`` (an ``embodied.llm.base.LanguageModel``), used for colour
    descriptions outside the lexicon and to choose between readings the grammar cannot separate; None reads
    with the grammar and lexicon alone (weaker: those cases are refused instead). Deterministic either way.
    """

    def __init__(self, lm: ScoringModel | None = None, config: ReaderConfig | None = None) -> None:
        self.lm = lm
        self.config = config or ReaderConfig()
        self._calibration: dict[tuple[str, ...], list[float]] = {}  # content-free scores per option set
        self._positions: Mapping[str, tuple[float, float]] | None = None
        self._inside_spatial = False

    def read(self, instruction: str, objects: Sequence[str],
             positions: Mapping[str, tuple[float, float]] | None = None) -> Reading:
        """The goal ``instruction`` asks for on a table holding ``objects`` ("red block", "green bowl");
        ``positions`` (object -> table x, y in metres) lets it resolve referents by place ("the block closest to
        the blue bowl") and moves by a distance from where a block is."""
        try:
            scene = _Scene.of(objects)
        except UnknownObjectError as e:
            raise UnknownObjectError(f"GoalReader.read: the scene lists a bad object name: {e}") from e
        self._positions = positions
        try:
            return self._read(instruction, scene)
        except sp.SpatialRefusal as r:
            log.debug("refused %r: %s (%s)", instruction, r.sentence, r.category)
            return _refused(r.category, r.sentence)
        except Refusal as r:
            log.debug("refused %r: %s (%s)", instruction, r.sentence, r.category)
            return _refused(r.category, r.sentence)

    def _read(self, instruction: str, scene: _Scene) -> Reading:
        if not isinstance(instruction, str) or not instruction.strip():
            raise Refusal("blank", "The instruction is empty: say what to do with the blocks.")
        if not re.search(r"[A-Za-z0-9]", instruction):
            raise Refusal("punctuation", "The instruction has no words, only punctuation.")
        m = _POINT.search(instruction)
        if m is not None:
            raise Refusal(
                "point",
                f"The instruction gives a place as coordinates ('{m.group(0)}'); the goal reader "
                "names places by words (corners, sides, the middle, or relative to objects).",
            )
        inj = injection(instruction)
        if inj is not None:
            raise Refusal(
                "prompt_injection",
                f"The instruction tries to change what I do or report ('{inj}'); I "
                "only carry out requests to move blocks.",
            )
        toks = normalise(_order_phrase(_MODAL_TYPO.sub(r"\1could you", instruction)))
        text = " ".join(toks.words)
        if _QUESTION_START.search(text) or (
            toks.question_mark
            and (
                _QUESTION_WORD.search(text)
                or not (_POLITE_START.search(text) or _starts_with_verb(toks.words))
            )
        ):
            raise Refusal(
                "question",
                "That is a question; I carry out requests to move blocks and do not answer questions.",
            )
        if not any(w.isalpha() for w in toks.words):
            raise Refusal("nonsense", "The instruction has no words I can read.")
        if not self._inside_spatial:
            spatial = self._spatial(" ".join(toks.words), scene)
            if spatial is not None:
                return spatial
        m = _DISTANCE.search(instruction)
        if m is not None:
            raise Refusal(
                "unsupported_relation",
                f"I could not place the distance ('{m.group(0)}'): I read distances to the left / right / top / "
                "bottom of an object or of where a block is now.",
            )
        chunks = chunk(toks.words)
        reading = _Reading()
        for bad, good in toks.fixes:
            reading.doubt(0.95, f"read {bad!r} as {good!r}")
        if not any(c.type in ("VERB", "REL", "TOWER", "MATCH", "LOC") for c in chunks):
            nps = [c for c in chunks if c.type == "NP"]
            unknown = [c for c in chunks if c.type == "UNKNOWN"]
            rest = [c for c in chunks if c.type not in ("NP", "AND", "SEP")]
            if (
                len(nps) == 2
                and not rest
                and nps[0].np is not None
                and nps[1].np is not None
                and nps[0].np.kind == "block"
                and nps[1].np.kind == "bowl"
            ):
                # telegraphic "red block, green bowl": the block into the bowl
                reading.doubt(0.7, "read two bare names as 'put the first in the second'")
                chunks = [Chunk("VERB", "put"), nps[0], Chunk("REL", "in"), nps[1]]
        if not any(c.type in ("VERB", "REL", "TOWER", "MATCH", "LOC") for c in chunks):
            if nps and not unknown:
                raise Refusal(
                    "no_target", f"The instruction names {nps[0].value!r} but does not say what to do."
                )
            raise Refusal("nonsense", "I could not find a request to move blocks in the instruction.")
        named = _named_blocks(chunks, scene)
        resolver = _Resolver(scene, named, self._describer() if self.lm is not None else None)
        interp = _Interpreter(scene, toks.words, reading, resolver)
        clauses = split_clauses(chunks)
        for clause in clauses:
            interp.clause(clause)
        if interp.pending_pick:
            raise Refusal(
                "no_target",
                "The instruction says what to pick up but not where to put it; holding a "
                "block is not a goal I can check.",
            )
        if not reading.intents:
            raise Refusal("nonsense", "I could not find a request to move blocks in the instruction.")
        unknown = sum(1 for c in chunks if c.type == "UNKNOWN")
        known = sum(1 for c in chunks if c.type in ("VERB", "NP", "REL", "LOC", "TOWER", "ORDER", "MATCH"))
        if unknown > known:
            raise Refusal("nonsense", "Most of the instruction is words I do not understand.")
        goal = build_goal(reading.intents, scene)
        if not goal:
            raise Refusal("nonsense", "I could not find a request to move blocks in the instruction.")
        try:
            validate_goal(goal, [f"{c} block" for c in scene.blocks] + [f"{c} bowl" for c in scene.bowls])
        except (PredicateError, UnknownObjectError) as e:  # a bug in the reader, never the user's fault
            log.warning("reader built an invalid goal for %r: %s", instruction, e)
            raise Refusal(
                "low_confidence", "I could not turn the instruction into a goal I can check."
            ) from e
        if reading.confidence < self.config.min_confidence:
            return _refused(
                "low_confidence",
                "I am not sure enough what the instruction asks for (" + "; ".join(reading.notes[:3]) + ").",
                reading.confidence,
                tuple(reading.notes),
            )
        return Reading(
            goal, "", round(reading.confidence, 4), ((goal, reading.confidence),), "", tuple(reading.notes)
        )

    # -- spatial language (embodied.understanding.spatial) ----------------------------------------------------

    def _inner(self, text: str, scene: _Scene) -> Reading:
        """The grammar's reading of ``text`` without the spatial pass (refusals raised)."""
        self._inside_spatial = True
        try:
            reading = self._read(text, scene)
        finally:
            self._inside_spatial = False
        if reading.goal is None:
            raise Refusal(reading.category, reading.reason)
        return reading

    def _ref_of(self, phrase: str, scene: _Scene) -> str | None:
        """The object (or named location) a phrase names, read by the grammar as the target of a probe block."""
        words = phrase.split()
        for probe in sorted(scene.blocks, key=lambda b: b in words):  # blocks the phrase may name, last
            try:
                reading = self._inner(f"put the {probe} block on {phrase}", scene)
            except Refusal:
                continue
            targets = [p[2] for p in reading.goal if p[0] in ("in", "on", "at") and p[1] == f"{probe} block"]
            if len(targets) == 1:
                return targets[0]
        return None

    def _spatial(self, text: str, scene: _Scene) -> Reading | None:
        """Referents by position and one spatial place (see ``embodied.understanding.spatial``); None when the
        text has neither."""
        names = [_name(c, "block") for c in scene.blocks] + [_name(c, "bowl") for c in scene.bowls]
        resolved = sp.resolve_referents(text, names, self._positions, lambda ph: self._ref_of(ph, scene))
        found = sp.find_place(resolved)
        if found is None:
            return None if resolved == text else self._inner(resolved, scene)
        place, template = found
        where = sp.placeholder(template)
        reading = self._inner(template.replace("{PLACE}", f"in the {where}"), scene)
        refs = []
        for phrase in place.refs:
            ref = self._ref_of(phrase, scene)
            if ref is None:
                raise Refusal("unknown_object", f"I could not tell which object '{phrase}' is.")
            refs.append(ref)
        goal = sp.apply_place(reading.goal, place, where, refs, names, self._positions)
        try:
            validate_goal(goal, names)
        except (PredicateError, UnknownObjectError) as e:
            log.warning("spatial reading built an invalid goal for %r: %s", text, e)
            raise Refusal("low_confidence", "I could not turn the instruction into a goal I can check.") from e
        return Reading(goal, "", reading.confidence, ((goal, reading.confidence),), "", reading.notes)

    # -- the language model ----------------------------------------------------------------------------------

    def _describer(self) -> Any:
        if not self.config.lm_descriptors:
            return None
        return lambda descriptor, pool: describe_colour(
            self.lm, descriptor, pool, self.config.lm_min_prob, self._calibration
        )


def _starts_with_verb(words: list[str]) -> bool:
    for w in words:
        if w in ("please", "now", "ok", "okay", "hey", "robot", "kindly", "just", ","):
            continue
        return w in _CLAUSE_VERBS or w in lx.PLACE_VERBS or w in lx.STACK_VERBS or w in lx.SORT_VERBS
    return False


def _named_blocks(chunks: list[Chunk], scene: _Scene) -> set[str]:
    """Blocks named by colour anywhere in the instruction (what "the rest" / "the other" exclude)."""
    out: set[str] = set()
    for c in chunks:
        if c.type == "NP" and c.np is not None and c.np.kind in ("block", "generic", None) and not c.np.rest:
            for color in c.np.colors:
                if scene.has(color, "block"):
                    out.add(_name(color, "block"))
    return out


_DESCRIBE_PROMPT = (
    "The usual colour of things.\ngrass: green\nsnow: white\ncoal: black\nmilk: white\n{thing}:"
)


def describe_colour(
    lm: ScoringModel,
    descriptor: str,
    pool: Sequence[str],
    min_prob: float,
    calibration: dict[tuple[str, ...], list[float]] | None = None,
) -> tuple[str | None, float]:
    """The colour among ``pool`` that ``descriptor`` ("mango") usually has, by the language model: the colours
    present are scored as options in one batched pass, calibrated against a content-free prompt (Zhao et al.
    2021, "Calibrate before use"); (None, p) when the best is below ``min_prob``."""
    if not pool:
        return None, 0.0
    options = tuple(" " + c for c in pool)
    scores = [
        float(v) for v in lm.score(_DESCRIBE_PROMPT.format(thing=descriptor), list(options)).logprob_sum
    ]
    cache = calibration if calibration is not None else {}
    if options not in cache:
        cache[options] = [
            float(v) for v in lm.score(_DESCRIBE_PROMPT.format(thing="N/A"), list(options)).logprob_sum
        ]
    logits = [s - b for s, b in zip(scores, cache[options], strict=True)]
    top = max(logits)
    probs = [math.exp(v - top) for v in logits]
    total = sum(probs)
    probs = [p / total for p in probs]
    best = max(range(len(pool)), key=lambda i: probs[i])
    if probs[best] < min_prob:
        return None, probs[best]
    return pool[best], probs[best]


def locations() -> tuple[str, ...]:
    """The named places a goal may use."""
    return LOCATION_NAMES
