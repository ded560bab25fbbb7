"""From text to chunks: normalise, fix typos, and group words into noun phrases, relations, places, verbs and
markers. Nothing here knows the scene; ``reader.py`` turns chunks into goals against the objects on the table.

The chunk grammar (one clause; clauses are split at sentence punctuation, "then" / "after that" before a
verb, and "and" / "," before a verb)::

    clause   := polite* (VERB | NP | REL TARGET | ORDER | MATCH | NEG | AND)*
    NP       := det? quant? number? (colour | descriptor) {("," | "and" | "or") colour}* adjective* noun?
                post*
    TARGET   := NP | LOCATION | SIDE | TABLE | TOWER | EACH_OTHER
    post     := "of/with/that ..." matching or mismatched colour | "that is <colour>" | except NP

Positions do not matter beyond this: a relation and its target may come before the object ("into the green
bowl, put the red block"), and several (objects, relation, target) pairs may share one verb.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from embodied.understanding import lexicon as lx
from embodied.world.scene import COLOR_NAMES

# -- chunks -------------------------------------------------------------------------------------------------


@dataclass
class NP:
    """A noun phrase that picks objects: colours and/or a description, a kind, a quantifier."""

    colors: list[str] = field(default_factory=list)  # palette colours named (aliases already mapped)
    kind: str | None = None  # "block" | "bowl" | "generic" | "unknown" | None (colour only: "the red one")
    head: str = ""  # the noun as written
    plural: bool = False
    definite: bool = False
    indefinite: bool = False
    quant: str | None = None  # "all" | "each" | "any" | "both" | "every"
    count: int | None = None  # "three blocks", "a tower of five"
    rest: bool = False  # "the rest", "the remaining blocks", "the other blocks"
    choice: bool = False  # "some", "a few", "either": leaves a choice open
    descriptor: str | None = None  # "forest" ("forest-colored"), "light", "dark", "warm", "cool"
    match: bool = False  # "matching", "of the same colour"
    mismatch: bool = False  # "mismatched", "of a different colour"
    unknown_colors: list[str] = field(default_factory=list)  # "black", "teal"
    unknown_adjs: list[str] = field(default_factory=list)  # "shiny" in "the shiny red block"
    pronoun: str | None = None  # "it", "them", "that"
    except_: list[NP] = field(default_factory=list)
    reciprocal: bool = False  # "each other", "one another"
    text: str = ""

    def describe(self) -> str:
        """The phrase as written, for refusal sentences."""
        return self.text or " ".join(self.colors + [self.head]).strip()


@dataclass
class Chunk:
    """One unit of a clause: ``type`` is VERB, NP, REL, LOC, SIDE, CORNER_ANY, CORNERS, TABLE, TOWER, ORDER,
    MATCH, MISMATCH, NEG, AND, SEP, UNKNOWN, QUESTION, ARRANGE."""

    type: str
    value: str = ""
    np: NP | None = None
    words: tuple[str, ...] = ()


@dataclass
class Tokens:
    """Normalised words, the typo fixes made, and markers found on the way."""

    words: list[str]
    fixes: list[tuple[str, str]] = field(default_factory=list)
    question_mark: bool = False


# -- normalisation ------------------------------------------------------------------------------------------

_CONTRACTIONS: tuple[tuple[str, str], ...] = (
    (r"\b(that|it|what|there|here|who|which|where|this)'s\b", r"\1 is"),
    (r"\bcan'?t\b", "can not"),
    (r"\bwon'?t\b", "will not"),
    (r"\bdon'?t\b", "do not"),
    (r"\bdoesn'?t\b", "does not"),
    (r"\bshouldn'?t\b", "should not"),
    (r"\bmustn'?t\b", "must not"),
    (r"\bisn'?t\b", "is not"),
    (r"\baren'?t\b", "are not"),
    (r"\bdidn'?t\b", "did not"),
    (r"n't\b", " not"),
    (r"\blet's\b", "let us"),
    (r"'s\b", ""),
    (r"'d\b", " would"),
    (r"'ll\b", " will"),
    (r"'re\b", " are"),
    (r"'ve\b", " have"),
    (r"'m\b", " am"),
)
_COMMON_TYPOS: dict[str, str] = {
    "teh": "the",
    "hte": "the",
    "th": "the",
    "plz": "please",
    "pls": "please",
    "u": "you",
    "ur": "your",
    "thx": "thanks",
    "n": "and",
    "nd": "and",
    "blk": "block",
    "blks": "blocks",
}
_NUMBER_DIGITS = {str(v): k for k, v in lx.NUMBERS.items() if k not in ("single", "pair", "couple", "dozen")}


def normalise(text: str) -> Tokens:
    """Lower-case words and sentence punctuation; British spellings and hyphens folded; typos fixed."""
    t = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'").replace("\u2018", "'")
    for pat, rep in _CONTRACTIONS:
        t = re.sub(pat, rep, t)
    t = re.sub(r"colou?r(ed|s|ful|ing)?", lambda m: "color" + (m.group(1) or ""), t)
    t = re.sub(r"\bcentre\b", "center", t)
    t = t.replace("&", " and ").replace("+", " and ")
    t = re.sub(r"[-_/\\]", " ", t)
    raw = re.findall(r"[a-z]+|\d+|[.,;:!?]", t)
    raw = [x for w in raw for x in (("on", "top") if w == "ontop" else (w,))]
    words = [_COMMON_TYPOS.get(w, _NUMBER_DIGITS.get(w, w)) for w in raw]
    fixes: list[tuple[str, str]] = []
    out: list[str] = []
    for w in words:
        fixed = correct(w)
        if fixed != w:
            fixes.append((w, fixed))
        out.append(fixed)
    return Tokens(out, fixes, question_mark="?" in out)


def _vocabulary() -> frozenset[str]:
    words: set[str] = set(COLOR_NAMES) | set(lx.colour_aliases()) | set(lx.unknown_colour_words())
    for group in (
        lx.BLOCK_NOUNS,
        lx.BOWL_NOUNS,
        lx.GENERIC_NOUNS,
        lx.OTHER_NOUNS,
        lx.TOP_WORDS,
        lx.BOTTOM_WORDS,
        lx.LEFT_WORDS,
        lx.RIGHT_WORDS,
        lx.MIDDLE_WORDS,
        lx.CORNER_WORDS,
        lx.SIDE_WORDS,
        lx.TABLE_WORDS,
        lx.PLACE_VERBS,
        lx.PICK_VERBS,
        lx.STACK_VERBS,
        lx.TOWER_NOUNS,
        lx.SORT_VERBS,
        lx.FILL_VERBS,
        lx.COVER_VERBS,
        lx.CONTAIN_VERBS,
        lx.REPORT_VERBS,
        lx.QUESTION_WORDS,
        lx.AUX_QUESTION,
        lx.MODAL_REQUEST,
        lx.NEGATIONS,
        lx.EXCEPT_WORDS,
        lx.ALL_WORDS,
        lx.REST_WORDS,
        lx.MATCH_WORDS,
        lx.MISMATCH_WORDS,
        lx.FILLER,
        lx.LIGHT_WORDS,
        lx.DARK_WORDS,
        lx.COLOURED_WORDS,
        lx.SHADE_MODIFIERS,
        lx.CHOICE_WORDS,
    ):
        words |= set(group)
    words |= set(lx.UNSUPPORTED_VERBS) | set(lx.NUMBERS) | set(lx.COMPASS) | set(lx.TEMPERATURE_WORDS)
    words |= {w for k in lx.DESCRIPTORS for w in k.split()}
    words |= {w for phrase in _REL_PHRASES for w in phrase} | {w for phrase in _ORDER_PHRASES for w in phrase}
    words |= _COMMON_WORDS
    return frozenset(words)


# words that must never be "corrected" into a vocabulary word, and common words seen in instructions
_COMMON_WORDS: frozenset[str] = frozenset(
    {
        "ignore",
        "previous",
        "instructions",
        "instruction",
        "system",
        "prompt",
        "mode",
        "debug",
        "success",
        "successful",
        "pretend",
        "forget",
        "override",
        "admin",
        "developer",
        "rules",
        "everything",
        "above",
        "below",
        "many",
        "much",
        "there",
        "their",
        "they",
        "them",
        "these",
        "those",
        "block",
        "black",
        "bloc",
        "place",
        "plate",
        "plane",
        "play",
        "please",
        "glass",
        "class",
        "stock",
        "clock",
        "flock",
        "check",
        "round",
        "ground",
        "sound",
        "found",
        "around",
        "bound",
        "pound",
        "wound",
        "second",
        "third",
        "fourth",
        "fifth",
        "last",
        "highest",
        "tallest",
        "biggest",
        "largest",
        "smallest",
        "shortest",
        "lowest",
        "high",
        "tall",
        "big",
        "large",
        "small",
        "little",
        "tiny",
        "short",
        "long",
        "wide",
        "narrow",
        "heavy",
        "huge",
        "shiny",
        "wooden",
        "plastic",
        "metal",
        "soft",
        "hard",
        "new",
        "old",
        "nice",
        "same",
        "similar",
        "different",
        "together",
        "apart",
        "separately",
        "individually",
        "respectively",
        "order",
        "ordered",
        "sequence",
        "way",
        "like",
        "such",
        "than",
        "what",
        "yes",
        "no",
        "maybe",
        "perhaps",
        "really",
        "actually",
        "help",
        "assistant",
        "user",
        "answer",
        "question",
        "questions",
        "ideas",
        "green",
        "sleep",
        "furiously",
        "idea",
        "word",
        "words",
        "sentence",
        "anything",
        "something",
        "nothing",
        "everyone",
        "someone",
        "state",
        "finish",
        "finished",
        "complete",
        "completed",
        "start",
        "stop",
        "wait",
        "begin",
        "continue",
        "proceed",
        "other",
        "another",
        "stacked",
        "piled",
        "sorted",
        "grouped",
        "matched",
        "filled",
        "covered",
        "moved",
        "placed",
        "put",
        "blocks",
        "bowls",
        "bowl",
        "boxes",
        "circle",
        "square",
        "line",
        "row",
        "triangle",
        "pattern",
        "shape",
        "diagonal",
        "diagonally",
        "horizontal",
        "vertical",
        "horizontally",
        "vertically",
        "closer",
        "farther",
        "further",
        "closest",
        "nearest",
        "leftmost",
        "rightmost",
        "topmost",
        "bottommost",
        "most",
        "more",
        "less",
        "least",
        "inch",
        "inches",
        "cm",
        "centimeters",
        "centimetres",
        "meters",
        "mm",
        "clockwise",
        "counterclockwise",
        "anticlockwise",
        "tower",
        "match",
        "rack",
        "stuck",
        "slack",
        "lock",
        "rock",
        "sock",
        "dock",
        "blow",
        "bow",
        "brown",
        "crown",
        "blue",
        "glue",
        "true",
        "red",
        "bed",
        "read",
        "led",
        "reed",
        "pink",
        "ink",
        "link",
        "think",
        "drink",
        "wink",
        "sink",
        "gray",
        "grey",
        "pray",
        "tray",
        "ray",
        "greet",
        "cyan",
        "yellow",
        "fellow",
        "mellow",
        "hello",
        "orange",
        "purple",
        "people",
        "table",
        "cable",
        "able",
        "stable",
        "corner",
        "border",
        "mirror",
        "middle",
        "riddle",
        "fiddle",
        "left",
        "lift",
        "loft",
        "right",
        "light",
        "night",
        "might",
        "sight",
        "fight",
        "top",
        "shop",
        "bottom",
        "button",
        "cotton",
        "stack",
        "snack",
        "track",
        "crack",
        "attack",
        "bowling",
        "blocking",
        "blocked",
        "stacking",
        "placing",
        "putting",
        "moving",
        "picking",
        "dropping",
        "taking",
        "get",
        "got",
        "set",
        "let",
        "yet",
        "bet",
        "net",
        "wet",
        "pet",
        "jet",
        "met",
        "cut",
        "but",
        "nut",
        "hut",
        "won",
        "win",
        "own",
        "town",
        "down",
        "gown",
        "clown",
        "frown",
        "drown",
        "tidy",
        "neat",
        "mess",
        "messy",
        "ready",
        "steady",
        "easy",
        "carefully",
        "careful",
        "gentle",
        "quick",
        "fast",
        "slow",
        "game",
        "salad",
        "keyboard",
        "random",
        "banana",
        "silly",
        "nonsense",
        "blah",
        "asdf",
        "qwerty",
        "lorem",
        "ipsum",
        "dolor",
        "foo",
        "bar",
        "baz",
        "xyz",
        "abc",
        "test",
        "testing",
        "example",
        "sample",
    }
)


def _distance_targets() -> frozenset[str]:
    """Words a typo may be fixed to: the lexicon's content words (never other nouns or colours we lack)."""
    words: set[str] = set(COLOR_NAMES) | set(lx.colour_aliases())
    words |= {c + "ish" for c in COLOR_NAMES} | {"bluish", "greyish", "purplish", "orangish"}
    for group in (
        lx.BLOCK_NOUNS,
        lx.BOWL_NOUNS,
        lx.GENERIC_NOUNS,
        lx.CORNER_WORDS,
        lx.MIDDLE_WORDS,
        lx.LEFT_WORDS,
        lx.RIGHT_WORDS,
        lx.TOP_WORDS,
        lx.BOTTOM_WORDS,
        lx.PLACE_VERBS,
        lx.PICK_VERBS,
        lx.STACK_VERBS,
        lx.TOWER_NOUNS,
        lx.SORT_VERBS,
        lx.FILL_VERBS,
        lx.COVER_VERBS,
        lx.MATCH_WORDS,
        lx.MISMATCH_WORDS,
        lx.LIGHT_WORDS,
        lx.DARK_WORDS,
        lx.COLOURED_WORDS,
        lx.REST_WORDS,
        lx.ALL_WORDS,
        lx.TABLE_WORDS,
    ):
        words |= set(group)
    words |= set(lx.NUMBERS) | set(lx.DESCRIPTORS)
    words |= {
        "please",
        "would",
        "could",
        "like",
        "want",
        "need",
        "into",
        "onto",
        "inside",
        "other",
        "together",
        "another",
        "between",
        "behind",
        "under",
        "next",
        "then",
        "them",
        "carefully",
        "except",
        "everything",
        "bottom",
        "middle",
        "corner",
        "thing",
        "things",
        "object",
        "objects",
        "respectively",
        "first",
        "tower",
        "different",
        "single",
        "quickly",
        "thanks",
        "thank",
        "there",
        "their",
        "where",
        "after",
        "should",
        "contain",
        "hold",
        "putting",
        "placing",
        "moving",
        "stacking",
        "dropping",
        "sorting",
        "ahead",
    }
    protected = (set(lx.OTHER_NOUNS) - set(COLOR_NAMES) - set(lx.BLOCK_NOUNS)) | lx.unknown_colour_words()
    return frozenset(
        w for w in words - protected if len(w) >= 4 or w in ("put", "red", "top", "all", "one", "two", "six")
    )


def _damerau(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance between two words, or limit + 1 when it exceeds ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _is_transposition(a: str, b: str) -> bool:
    return len(a) == len(b) and sorted(a) == sorted(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 2


def correct(word: str) -> str:
    """A typo fixed to the one instruction word it is closest to, or the word unchanged.

    Known words (including colours we do not have and nouns of things not on the table) are never changed.
    Words of 5+ letters may be one edit away (8+: two); 4-letter words only a swap of two letters or one
    missing letter ("bleu" -> blue, "gren" -> green)."""
    if not word.isalpha() or len(word) < 4 or word in VOCABULARY:
        return word
    if word.endswith("s") and word[:-1] in VOCABULARY:
        return word
    limit = 2 if len(word) >= 8 else 1
    best: list[str] = []
    for cand in DISTANCE_TARGETS:
        if len(word) == 4 and not (
            _is_transposition(word, cand) or (len(cand) == 5 and _damerau(word, cand, 1) <= 1)
        ):
            continue
        if _damerau(word, cand, limit) <= limit:
            best.append(cand)
    if len(best) == 1:
        return best[0]
    if len(best) > 1:  # prefer the nearest when one is strictly nearer
        dists = sorted((_damerau(word, c, limit), c) for c in best)
        if dists[0][0] < dists[1][0]:
            return dists[0][1]
    return word


# -- phrase tables

# relation phrases (longest first when matching); value: in | on | to | at | unsupported:<what>
_REL_PHRASES: dict[tuple[str, ...], str] = {
    ("on", "top", "of"): "on",
    ("on", "to"): "on",
    ("onto",): "on",
    ("on",): "on",
    ("upon",): "on",
    ("atop",): "on",
    ("over",): "on",
    ("above",): "on",
    ("in", "to"): "in",
    ("into",): "in",
    ("in",): "in",
    ("inside", "of"): "in",
    ("inside",): "in",
    ("within",): "in",
    ("to",): "to",
    ("towards",): "to",
    ("toward",): "to",
    ("at",): "at",
    ("over", "to"): "to",
    ("up", "to"): "to",
    ("down", "in"): "in",
    ("down", "into"): "in",
    ("down", "on"): "on",
    ("back", "in"): "in",
    ("back", "into"): "in",
    ("back", "on"): "on",
    ("back", "to"): "to",
    ("across", "to"): "to",
    ("next", "to"): "unsupported:next to",
    ("beside",): "unsupported:beside",
    ("near",): "unsupported:near",
    ("nearby",): "unsupported:near",
    ("close", "to"): "unsupported:close to",
    ("closer", "to"): "unsupported:closer to",
    ("far", "from"): "unsupported:far from",
    ("far", "away", "from"): "unsupported:far from",
    ("away", "from"): "unsupported:away from",
    ("left", "of"): "unsupported:to the left of",
    ("right", "of"): "unsupported:to the right of",
    ("to", "the", "left", "of"): "unsupported:to the left of",
    ("to", "the", "right", "of"): "unsupported:to the right of",
    ("on", "the", "left", "of"): "unsupported:to the left of",
    ("on", "the", "right", "of"): "unsupported:to the right of",
    ("to", "the", "left", "side", "of"): "unsupported:to the left of",
    ("to", "the", "right", "side", "of"): "unsupported:to the right of",
    ("in", "front", "of"): "unsupported:in front of",
    ("behind",): "unsupported:behind",
    ("in", "back", "of"): "unsupported:behind",
    ("between",): "unsupported:between",
    ("in", "between"): "unsupported:between",
    ("under",): "unsupported:under",
    ("underneath",): "unsupported:under",
    ("below",): "unsupported:below",
    ("beneath",): "unsupported:under",
    ("around",): "unsupported:around",
    ("across", "from"): "unsupported:across from",
    ("opposite", "to"): "unsupported:opposite",
    ("opposite", "of"): "unsupported:opposite",
    ("against",): "unsupported:against",
    ("along",): "unsupported:along",
    ("alongside",): "unsupported:alongside",
    ("among",): "unsupported:among",
    ("amongst",): "unsupported:among",
    ("outside",): "unsupported:outside",
    ("outside", "of"): "unsupported:outside",
    ("out", "of"): "unsupported:out of",
    ("off", "of"): "unsupported:off",
    ("off",): "unsupported:off",
    ("from",): "unsupported:from",
    ("by",): "unsupported:by",
    ("together",): "unsupported:together",
    ("side", "by", "side"): "unsupported:side by side",
    ("in", "a", "line"): "unsupported:in a line",
    ("in", "line"): "unsupported:in a line",
    ("in", "a", "row"): "unsupported:in a row",
    ("in", "a", "circle"): "unsupported:in a circle",
    ("in", "a", "square"): "unsupported:in a square",
    ("in", "a", "triangle"): "unsupported:in a triangle",
    ("in", "a", "ring"): "unsupported:in a ring",
    ("in", "a", "pattern"): "unsupported:in a pattern",
    ("in", "a", "diagonal"): "unsupported:in a diagonal",
    ("in", "a", "horizontal", "line"): "unsupported:in a line",
    ("in", "a", "vertical", "line"): "unsupported:in a line",
    ("in", "a", "straight", "line"): "unsupported:in a line",
    ("in", "order"): "unsupported:in an order",
    ("diagonally",): "unsupported:diagonally",
    ("apart",): "unsupported:apart",
    ("in", "different", "corners"): "unsupported:in different corners",
    ("in", "separate", "corners"): "unsupported:in different corners",
    ("to", "different", "corners"): "unsupported:in different corners",
    ("on", "different", "corners"): "unsupported:in different corners",
    ("in", "all", "the", "corners"): "unsupported:in all the corners",
    ("through", "all", "the", "corners"): "unsupported:through all the corners",
    ("in", "each", "corner"): "unsupported:in different corners",
    ("evenly",): "unsupported:evenly",
    ("spread", "out"): "unsupported:spread out",
    ("where",): "unsupported:where another object is",
    ("in", "place", "of"): "unsupported:in place of",
    ("instead", "of"): "unsupported:instead of",
    ("in", "a", "stack"): "tower",
    ("in", "one", "stack"): "tower",
    ("in", "a", "single", "stack"): "tower",
    ("in", "a", "pile"): "tower",
    ("in", "one", "pile"): "tower",
    ("in", "a", "single", "pile"): "tower",
    ("in", "a", "tower"): "tower",
    ("in", "one", "tower"): "tower",
    ("in", "a", "single", "tower"): "tower",
    ("into", "a", "stack"): "tower",
    ("into", "one", "stack"): "tower",
    ("into", "a", "single", "stack"): "tower",
    ("into", "a", "pile"): "tower",
    ("into", "one", "pile"): "tower",
    ("into", "a", "tower"): "tower",
    ("into", "one", "tower"): "tower",
    ("into", "a", "single", "tower"): "tower",
    ("into", "a", "single", "pile"): "tower",
    ("in", "a", "column"): "tower",
    ("into", "a", "column"): "tower",
    ("on", "top", "of", "each", "other"): "tower",
    ("on", "top", "of", "one", "another"): "tower",
    ("one", "on", "top", "of", "another"): "tower",
    ("one", "on", "top", "of", "the", "other"): "tower",
    ("one", "on", "another"): "tower",
    ("one", "atop", "another"): "tower",
    ("on", "each", "other"): "tower",
    ("onto", "each", "other"): "tower",
    ("upon", "each", "other"): "tower",
    ("on", "one", "another"): "tower",
    ("one", "above", "the", "other"): "tower",
    ("one", "upon", "another"): "tower",
}
_REL_BY_LENGTH = sorted(_REL_PHRASES, key=len, reverse=True)

# order markers inside a tower: bottom / top / middle positions, direction, sequence
_ORDER_PHRASES: dict[tuple[str, ...], str] = {
    ("at", "the", "bottom"): "bottom",
    ("on", "the", "bottom"): "bottom",
    ("at", "bottom"): "bottom",
    ("on", "bottom"): "bottom",
    ("as", "the", "base"): "bottom",
    ("at", "the", "base"): "bottom",
    ("on", "the", "base"): "bottom",
    ("as", "the", "bottom"): "bottom",
    ("as", "the", "foundation"): "bottom",
    ("at", "the", "base", "of", "the", "tower"): "bottom",
    ("at", "the", "bottom", "of", "the", "tower"): "bottom",
    ("at", "the", "bottom", "of", "the", "stack"): "bottom",
    ("on", "top"): "top",
    ("at", "the", "top"): "top",
    ("on", "the", "top"): "top",
    ("at", "top"): "top",
    ("as", "the", "top"): "top",
    ("at", "the", "top", "of", "the", "tower"): "top",
    ("at", "the", "top", "of", "the", "stack"): "top",
    ("on", "top", "of", "the", "tower"): "top",
    ("on", "top", "of", "the", "stack"): "top",
    ("in", "the", "middle", "of", "the", "tower"): "middle",
    ("in", "the", "middle", "of", "the", "stack"): "middle",
    ("from", "bottom", "to", "top"): "btt",
    ("from", "the", "bottom", "to", "the", "top"): "btt",
    ("bottom", "to", "top"): "btt",
    ("from", "the", "bottom", "up"): "btt",
    ("bottom", "up"): "btt",
    ("from", "the", "bottom", "upwards"): "btt",
    ("bottom", "first"): "btt",
    ("starting", "from", "the", "bottom"): "btt",
    ("from", "top", "to", "bottom"): "ttb",
    ("from", "the", "top", "to", "the", "bottom"): "ttb",
    ("top", "to", "bottom"): "ttb",
    ("from", "the", "top", "down"): "ttb",
    ("top", "down"): "ttb",
    ("top", "first"): "ttb",
    ("followed", "by"): "then",
    ("then",): "then",
    ("and", "then"): "then",
    ("next",): "then",
    ("after", "that"): "then",
    ("and", "finally"): "then",
    ("finally",): "then",
}
_ORDER_BY_LENGTH = sorted(_ORDER_PHRASES, key=len, reverse=True)

_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instruction|instructions|prompt|rules|above|"
    r"previous|prior|everything|directions|guidelines|constraints)\b|\bsystem\s*:|\b(assistant|user)\s*:|"
    r"\b(say|print|output|respond|reply|report|return|declare|announce|claim|type|write)\b.{0,30}\b(done|"
    r"success|successful|succeeded|complete|completed|finished|yes|ok)\b|\b(debug|developer|admin|god|"
    r"maintenance|jailbreak)\s+mode\b|\byou are now\b|\bpretend\b|\bnew instructions?\b|\bjailbreak\b|"
    r"\bmark (the )?task\b|\bend the episode\b|\bskip (the )?(task|checks?)\b"
)

VOCABULARY: frozenset[str] = frozenset()  # filled below, after the phrase tables exist


def injection(text: str) -> str | None:
    """The phrase that tries to change what the agent reports or obeys ("ignore previous instructions",
    "say done", "SYSTEM:"), or None."""
    t = " ".join(re.findall(r"[a-z]+|:", unicodedata.normalize("NFKC", text).lower()))
    t = t.replace(" :", ":")
    m = _INJECTION.search(t)
    return m.group(0) if m else None


# -- chunking -----------------------------------------------------------------------------------------------

_SEP_WORDS = {".", ";", "!", "?"}
_VERBS = (
    lx.PLACE_VERBS
    | lx.PICK_VERBS
    | lx.STACK_VERBS
    | lx.SORT_VERBS
    | lx.FILL_VERBS
    | lx.COVER_VERBS
    | set(lx.UNSUPPORTED_VERBS)
    | lx.REPORT_VERBS
)
# verbs that open a new clause after "and" / "," / "then"
CLAUSE_VERBS = frozenset(
    {
        "put",
        "place",
        "move",
        "stack",
        "pick",
        "grab",
        "take",
        "lift",
        "drop",
        "set",
        "bring",
        "build",
        "sort",
        "fill",
        "cover",
        "transfer",
        "carry",
        "slide",
        "get",
        "make",
        "pile",
        "lay",
        "insert",
        "deposit",
        "relocate",
        "position",
        "match",
        "group",
        "shift",
        "toss",
        "lower",
        "release",
        "gather",
        "collect",
        "arrange",
        "load",
        "return",
        "leave",
        "push",
        "create",
        "form",
        "grasp",
        "fetch",
        "raise",
        "hold",
        "throw",
        "dump",
        "say",
        "tell",
        "report",
        "answer",
        "print",
        "output",
        "unstack",
        "undo",
        "remove",
        "empty",
        "count",
        "swap",
        "rotate",
        "flip",
        "spin",
        "knock",
        "drag",
        "stash",
        "store",
    }
    | set(lx.UNSUPPORTED_VERBS)
)
_DET = {"the", "a", "an", "this", "that", "these", "those", "my", "your", "our", "their", "its"}
_PRONOUNS = {"it", "them", "they", "this", "that", "these", "those", "him", "her"}
_NP_STOP = {
    "in",
    "into",
    "on",
    "onto",
    "to",
    "at",
    "and",
    "or",
    ",",
    "with",
    "then",
    "of",
    "from",
    "so",
    "inside",
    "upon",
    "over",
    "near",
    "beside",
    "by",
    "for",
    "until",
    "while",
    "under",
    "above",
    "below",
    "behind",
    "between",
    "next",
    "please",
    "that",
    "which",
    "who",
    "where",
    "if",
    "as",
}


def _matches(words: list[str], i: int, phrase: tuple[str, ...]) -> bool:
    return tuple(words[i : i + len(phrase)]) == phrase


def _is_noun(w: str) -> bool:
    return w in lx.BLOCK_NOUNS or w in lx.BOWL_NOUNS or w in lx.GENERIC_NOUNS


def _colour_at(words: list[str], i: int) -> tuple[str | None, int]:
    """(palette colour, words used) for a colour at ``words[i]``, with an optional shade modifier before
    it ("light blue", "sky blue", "dark-green") and "colored" after it."""
    if i >= len(words):
        return None, 0
    w = words[i]
    n = 0
    if w in lx.SHADE_MODIFIERS and i + 1 < len(words) and lx.colour_of(words[i + 1]) is not None:
        # "light blue", "navy blue": the modifier only shades the colour
        w, n = words[i + 1], 1
    c = lx.colour_of(w)
    if c is None:
        return None, 0
    n += 1
    if i + n < len(words) and words[i + n] in ("colored", "color", "hued", "tinted"):
        n += 1
    return c, n


def _descriptor_at(words: list[str], i: int) -> tuple[str | None, int]:
    """A description of a colour at ``words[i]``: "forest colored", "light colored", "the color of the sky",
    "warm colored". Returns (descriptor, words used)."""
    if i >= len(words):
        return None, 0
    # "the color of (the) sky"
    if words[i] == "color" and i + 1 < len(words) and words[i + 1] == "of":
        j = i + 2
        while j < len(words) and words[j] in ("the", "a", "an"):
            j += 1
        for n in (2, 1):
            key = " ".join(words[j : j + n])
            if len(words[j : j + n]) == n and (
                key in lx.DESCRIPTORS or key in lx.LIGHT_WORDS | lx.DARK_WORDS
            ):
                return key, j + n - i
        if j < len(words) and words[j] not in _NP_STOP and not _is_noun(words[j]):
            return words[j], j + 1 - i  # an unknown thing: the language model may know its colour
        return None, 0
    for n in (2, 1):
        key = " ".join(words[i : i + n])
        if len(words[i : i + n]) < n:
            continue
        after = words[i + n] if i + n < len(words) else ""
        coloured = after in lx.COLOURED_WORDS or after == "ish"
        if key in lx.LIGHT_WORDS or key in lx.DARK_WORDS or key in lx.TEMPERATURE_WORDS:
            if coloured:
                return key, n + 1
            nxt = after
            if key.endswith("est") and (_is_noun(nxt) or nxt in ("of",)):  # "the lightest block"
                return key, n
            if _is_noun(nxt) and key in ("light", "dark", "bright", "pale", "warm", "cool"):
                return key, n  # "the light block"
            continue
        if coloured and (
            key in lx.DESCRIPTORS
            or (
                n == 1
                and key.isalpha()
                and key not in _NP_STOP
                and key not in lx.MATCH_WORDS
                and key not in lx.MISMATCH_WORDS
                and key not in lx.ALL_WORDS
                and key not in _DET
                and lx.colour_of(key) is None
                and key not in lx.unknown_colour_words()
                and key
                not in (
                    "same",
                    "different",
                    "other",
                    "one",
                    "multi",
                    "multiple",
                    "two",
                    "brightly",
                    "solid",
                    "plain",
                    "single",
                    "oddly",
                )
            )
        ):
            return key, n + 1
    return None, 0


def _location_at(words: list[str], i: int) -> tuple[Chunk | None, int]:
    """A place at ``words[i]`` (after "the"): a corner, the middle, a side, "the corner", the table."""
    j = i
    while j < len(words) and words[j] in ("the", "a", "an"):
        j += 1
    v = h = None
    middle = corner = side = table = corners = False
    used: list[str] = []
    k = j
    while k < len(words):
        w = words[k]
        if w in lx.COMPASS:
            v, h = lx.COMPASS[w]
        elif w in ("top", "upper", "far", "back", "rear", "north", "farthest", "furthest") and v is None:
            v = "top"
        elif w in ("bottom", "lower", "near", "front", "south", "nearest", "closest") and v is None:
            v = "bottom"
        elif w in lx.LEFT_WORDS and h is None:
            h = "left"
        elif w in lx.RIGHT_WORDS and h is None:
            h = "right"
        elif w in lx.MIDDLE_WORDS:
            middle = True
        elif w in lx.CORNER_WORDS:
            corner = True
            corners = corners or w == "corners"
        elif w in lx.SIDE_WORDS:
            side = True
        elif w in lx.TABLE_WORDS:
            table = True
        elif (
            w in ("hand", "most")
            and used
            or w == "of"
            and used
            and k + 1 < len(words)
            and (
                words[k + 1] in lx.TABLE_WORDS
                or (words[k + 1] == "the" and k + 2 < len(words) and words[k + 2] in lx.TABLE_WORDS)
            )
            or w == "the"
            and used
            and k > 0
            and words[k - 1] == "of"
        ):
            pass
        else:
            break
        used.append(w)
        k += 1
    if not used:
        return None, 0
    soft = {
        "far",
        "back",
        "rear",
        "near",
        "front",
        "lower",
        "upper",
        "nearest",
        "closest",
        "farthest",
        "furthest",
    }
    if not (corner or middle or side or table) and (h is None) and used and used[0] in soft:
        return None, 0  # "back in the bowl", "near the bowl": not a place
    n = k - i
    text = " ".join(used)
    if middle and not (v or h or side):
        return Chunk("LOC", "middle", words=tuple(used)), n
    if v and h and not side:
        return Chunk("LOC", f"{v} {h} corner", words=tuple(used)), n
    if corners and not (v or h):
        return Chunk("CORNERS", text, words=tuple(used)), n
    if corner and not (v and h):
        return Chunk("CORNER_ANY", text, words=tuple(used)), n  # "the corner", "the top corner"
    if (v or h or side) and not table:
        return Chunk("SIDE", text, words=tuple(used)), n
    if (v or h or side or middle) and table:
        if middle and not (v or h or side):
            return Chunk("LOC", "middle", words=tuple(used)), n
        return Chunk("SIDE", text, words=tuple(used)), n
    if table:
        return Chunk("TABLE", text, words=tuple(used)), n
    return None, 0


def _adjective(w: str) -> bool:
    """A word that may stand before a colour or noun without changing what is meant ("small", "wooden")."""
    return not (
        w in _NP_STOP
        or w in _SEP_WORDS
        or w in _VERBS
        or w in lx.ALL_WORDS
        or w in lx.REST_WORDS
        or w in lx.NUMBERS
        or w in _DET
        or w in lx.MATCH_WORDS
        or w in lx.MISMATCH_WORDS
        or w in lx.unknown_colour_words()
        or w in lx.OTHER_NOUNS
        or _is_noun(w)
        or w in lx.TOWER_NOUNS
        or w in lx.LIGHT_WORDS
        or w in lx.DARK_WORDS
        or w in lx.TEMPERATURE_WORDS
        or w in lx.DESCRIPTORS
        or w in lx.TABLE_WORDS
        or w in lx.CORNER_WORDS
        or w in lx.SIDE_WORDS
        or w in lx.QUESTION_WORDS
        or w in ("it", "them", "they", "there", "here", "not", "no", "one")
    )


def _np_at(words: list[str], i: int, after_rel: bool = False) -> tuple[NP | None, int]:
    """A noun phrase starting at ``words[i]``, or (None, 0); ``after_rel``: it is a relation's target, so a
    colour list does not run on into the next pair ("purple on green, and blue on pink")."""
    np_ = NP()
    j = i
    start = i
    saw_det = False
    # determiners and quantifiers
    while j < len(words):
        w = words[j]
        nxt = words[j + 1] if j + 1 < len(words) else ""
        if w in ("the", "this", "that", "these", "those", "your", "my", "our") and not (
            w in ("that", "this") and (nxt in _NP_STOP or nxt in _SEP_WORDS or nxt == "")
        ):
            np_.definite = True
            if w in ("these", "those"):
                np_.plural = True
            saw_det = True
        elif w in ("a", "an") and nxt not in ("couple", "few", "pair", "dozen", "single"):
            np_.indefinite = True
            saw_det = True
        elif w in ("a", "an"):
            saw_det = True
        elif w in ("all", "every", "each", "any", "entire", "whole"):
            np_.quant = {"every": "all", "entire": "all", "whole": "all"}.get(w, w)
            saw_det = True
        elif w == "both":
            np_.quant, np_.count = "both", 2
            saw_det = True
        elif (
            w in ("single", "only", "individual", "very", "same")
            and saw_det
            and (_is_noun(nxt) or lx.colour_of(nxt) or nxt in ("of",))
            and w != "same"
        ):
            pass
        elif (w in lx.REST_WORDS and not (w == "rest" and not saw_det)) or (
            w == "other" and (saw_det or nxt in lx.BLOCK_NOUNS | lx.GENERIC_NOUNS)
        ):
            np_.rest = True
            if w in ("others", "rest", "remainder", "leftovers"):
                np_.plural = True
                np_.kind = np_.kind or "generic"
                np_.head = w
            saw_det = True
        elif w in ("some", "few", "several", "either", "another", "random", "many", "most"):
            np_.choice = True
            saw_det = True
        elif (
            w in lx.NUMBERS
            and w not in ("one", "single")
            and w != "couple"
            or (w == "couple" and saw_det)
            or (w == "pair" and nxt == "of")
        ):
            np_.count = lx.NUMBERS[w]
            saw_det = True
        elif w == "one" and (nxt == "of" or _is_noun(nxt) or lx.colour_of(nxt)) and not np_.definite:
            np_.count = 1
            np_.indefinite = True
            saw_det = True
        elif w == "of" and saw_det and j > i:
            pass
        else:
            break
        j += 1
        if np_.head:  # "the rest", "the others"
            # "the rest of the blocks": keep reading the noun
            if j < len(words) and words[j] == "of":
                np_.kind, np_.head = None, ""
                continue
            np_.text = " ".join(words[start:j])
            return np_, j - i
    # colours and descriptions
    while j < len(words):
        w = words[j]
        c, n = _colour_at(words, j)
        if c is not None:
            if c not in np_.colors:
                np_.colors.append(c)
            j += n
            continue
        d, n = _descriptor_at(words, j)
        if d is not None:
            np_.descriptor = d
            j += n
            continue
        if w in lx.unknown_colour_words() and (j + 1 >= len(words) or words[j + 1] not in ("of",)):
            np_.unknown_colors.append(w)
            j += 1
            if j < len(words) and words[j] in lx.COLOURED_WORDS:
                j += 1
            continue
        if w in lx.MATCH_WORDS and w != "similar":
            np_.match = True
            j += 1
            if j < len(words) and words[j] in lx.COLOURED_WORDS:
                j += 1
            continue
        if w in lx.MISMATCH_WORDS and w not in ("opposite",):
            np_.mismatch = True
            j += 1
            if j < len(words) and words[j] in lx.COLOURED_WORDS:
                j += 1
            continue
        if (
            w.isalpha()
            and _adjective(w)
            and j + 1 < len(words)
            and not np_.colors
            and (lx.colour_of(words[j + 1]) is not None or _is_noun(words[j + 1]))
            and (saw_det or j > i)
        ):
            np_.unknown_adjs.append(w)  # "the small red cube", "the wooden block"
            j += 1
            continue
        if w in (",", "and", "or") and (np_.colors or np_.unknown_colors) and j + 1 < len(words):
            k = j + 1
            while k < len(words) and words[k] in ("and", "or", "the", ","):
                k += 1
            if _colour_at(words, k)[0] is not None or (
                k < len(words) and words[k] in lx.unknown_colour_words()
            ):
                # "red, blue and the green block(s)": a list only when a colour follows
                if after_rel:
                    m = k + max(_colour_at(words, k)[1], 1)
                    if m < len(words) and _is_noun(words[m]):
                        m += 1
                    if m < len(words) and words[m] in (
                        "on",
                        "onto",
                        "in",
                        "into",
                        "to",
                        "at",
                        "inside",
                        "atop",
                        "upon",
                        "over",
                        "goes",
                        "go",
                    ):
                        break  # the next colour starts a new pair
                j = k
                continue
            break
        if w in ("colored", "color") and (np_.colors or np_.match or np_.mismatch):
            j += 1
            continue
        break
    # head noun, allowing unknown adjectives before it ("the shiny red block")
    k = j
    adjs: list[str] = []
    while k < len(words) and k - j < 3:
        w = words[k]
        if _is_noun(w) or w in lx.TOWER_NOUNS:
            break
        if (
            w in _NP_STOP
            or w in _SEP_WORDS
            or w in _VERBS
            or w in lx.REST_WORDS
            or lx.colour_of(w)
            or w in lx.FILLER
            or w in lx.unknown_colour_words()
        ):
            break
        adjs.append(w)
        k += 1
    if k < len(words) and _is_noun(words[k]):
        w = words[k]
        if w == "one" and not (
            np_.colors
            or np_.descriptor
            or np_.rest
            or np_.definite
            or np_.unknown_colors
            or np_.match
            or adjs
        ):
            pass  # a bare "one": a number, handled by the caller
        else:
            np_.unknown_adjs = np_.unknown_adjs + adjs
            np_.head = w
            np_.kind = "block" if w in lx.BLOCK_NOUNS else "bowl" if w in lx.BOWL_NOUNS else "generic"
            np_.plural = np_.plural or w in lx.PLURAL_NOUNS
            j = k + 1
            if np_.kind == "generic" and j < len(words) and words[j] == "of" and np_.count == 1:
                pass
    elif np_.colors or np_.descriptor or np_.unknown_colors or saw_det or np_.match or np_.mismatch:
        # no known noun: an unknown thing ("the banana", "the red cylinder") or a bare colour ("on blue")
        if (
            j < len(words)
            and not np_.colors
            and (words[j] in SUPERLATIVES or (j + 1 < len(words) and words[j + 1] in lx.TOWER_NOUNS))
        ):
            return None, 0  # "the tallest tower": not an object
        if (
            j < len(words)
            and words[j] not in _NP_STOP
            and words[j] not in _INSTRUMENT_PREPS
            and words[j] not in _SEP_WORDS
            and words[j] not in _VERBS
            and words[j] not in lx.FILLER
            and words[j] not in lx.TOWER_NOUNS
            and lx.colour_of(words[j]) is None
            and _location_at(words, j)[0] is None
            and words[j] not in lx.REST_WORDS
            and words[j] not in lx.NUMBERS
            and words[j] != "one"
        ):
            np_.head = words[j]
            np_.kind = "unknown"
            np_.unknown_adjs = []
            j += 1
        elif not (np_.colors or np_.descriptor or np_.unknown_colors or np_.match or np_.mismatch):
            if np_.quant or np_.count or np_.rest:
                # "all of them", "both of them"
                if j < len(words) and words[j] in ("them", "these", "those", "it"):
                    np_.pronoun = words[j]
                    np_.plural = words[j] != "it"
                    j += 1
                elif np_.rest:
                    np_.kind = "generic"
                    np_.plural = words[j - 1] != "other"  # "the other" is one; "the remaining" are many
                elif np_.count or np_.quant in ("all", "both"):
                    np_.kind = "generic"  # "all three", "both"
                    np_.plural = True
                else:
                    return None, 0
            else:
                return None, 0
        elif np_.colors and len(words) > j and words[j] in ("one", "ones"):
            pass
    if j == i:
        return None, 0
    # post-modifiers: matching / mismatched colour, "that is red", exceptions
    j = _post_modifiers(words, j, np_)
    if np_.quant == "both" and len(np_.colors) == 1 and j < len(words) and words[j] == "and":
        np_.quant, np_.count = None, None  # "both the red block and the blue block": "both" spans the list
    np_.text = " ".join(w for w in words[start:j] if w not in (",",))
    return np_, j - i


_POSSESSIVE = {"its", "their", "the", "own", "a", "an"}
_CLASS_NOUNS = frozenset({*lx.COLOURED_WORDS, "colors", "colours", "shade", "shades", "hue", "hues", "tones"})


def _post_modifiers(words: list[str], j: int, np_: NP) -> int:
    while j < len(words):
        w = words[j]
        if not np_.colors and not np_.descriptor and np_.kind in ("block", "bowl", "generic"):
            k = j + 1 if w in ("the", "that", "which", "whose") else j
            if k < len(words) and words[k] in ("is", "are"):
                k += 1
            if k < len(words) and words[k] in ("colored", "color"):
                if words[k] == "colored" and k + 1 < len(words) and words[k + 1] == "like":
                    d, n = _descriptor_at(words[:k] + ["color", "of"] + words[k + 2 :], k)
                    if d is not None:
                        np_.descriptor = d
                        j = k + n
                        continue
                d, n = _descriptor_at(words, k)
                if d is not None:
                    np_.descriptor = d
                    j = k + n
                    continue
        if not np_.colors and not np_.descriptor and w in ("of", "with", "in", "that", "which", "having"):
            k = j + 1  # "blocks of warm colours", "the blocks that are a light colour", "cubes in cool tones"
            while k < len(words) and words[k] in ("a", "an", "the", "is", "are", "have", "has", "of"):
                k += 1
            if (k + 1 < len(words) and words[k + 1] in _CLASS_NOUNS
                    and (words[k] in lx.TEMPERATURE_WORDS or words[k] in lx.LIGHT_WORDS or words[k] in lx.DARK_WORDS)):
                np_.descriptor = words[k]
                j = k + 2
                continue
        if w in ("of", "with", "that", "which", "having", "whose", "by") and j + 1 < len(words):
            window = words[j + 1 : j + 7]
            stop = next(
                (
                    n
                    for n, x in enumerate(window)
                    if x in _SEP_WORDS
                    or x in ("and", ",")
                    or (x in _VERBS and x not in ("match", "matches", "correspond"))
                    or x in ("into", "onto", "on", "to", "at", "in")
                ),
                len(window),
            )
            window = window[:stop]
            if w == "by" and window[:1] != ["color"] and window[:2] != ["their", "color"]:
                break
            if any(x in lx.MISMATCH_WORDS for x in window) or (  # a negated "matching" never reads as matching
                any(x in ("not", "non", "no") for x in window) and any(x in ("match", "matching", "same") for x in window)
            ):
                np_.mismatch = True
            elif (
                any(
                    x
                    in ("match", "matches", "matching", "same", "corresponding", "correspond", "corresponds")
                    for x in window
                )
                or ("color" in window or "colors" in window)
                and any(
                    x in ("its", "their", "own")
                    for x in window[: max(window.index(x) for x in window if x in ("color", "colors"))]
                )
            ):
                np_.match = True
            elif (
                w in ("that", "which")
                and window[:1] in (["is"], ["are"])
                and len(window) > 1
                and lx.colour_of(window[1])
            ):
                np_.colors.append(lx.colour_of(window[1]))  # type: ignore[arg-type]
                stop = 2
            else:
                break
            j += 1 + stop
            continue
        if w in ("except", "excluding", "but", "besides", "minus") or (
            w in ("other", "apart", "aside") and j + 1 < len(words) and words[j + 1] in ("than", "from")
        ) or (  # "all the blocks without the red one" leaves it out ("without moving ..." forbids instead)
            w == "without" and np_.quant is not None and j + 1 < len(words) and not words[j + 1].endswith("ing")
        ):
            k = j + 1
            while k < len(words) and words[k] in ("for", "than", "from", "not"):
                k += 1
            sub, n = _np_at(words, k)
            if k < len(words) and words[k] in ("one", "some", "a", "two", "three", "few"):
                np_.choice = True  # "all the blocks except one": which one is left open
                j = k + 1
                continue
            if (
                sub is None
                or n == 0
                or not (sub.colors or sub.descriptor or sub.unknown_colors or sub.kind == "unknown")
            ):
                break
            np_.except_.append(sub)
            j = k + n
            while j < len(words) and words[j] in (",", "and", "or") and j + 1 < len(words):
                sub, n = _np_at(words, j + 1)
                if sub is None or not sub.colors:
                    break
                np_.except_.append(sub)
                j = j + 1 + n
            continue
        break
    return j


_POLITE: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            ("i", "want", "you", "to"),
            ("i", "would", "like", "you", "to"),
            ("i", "need", "you", "to"),
            ("i", "like", "you", "to"),
            ("we", "need", "you", "to"),
            ("we", "want", "you", "to"),
            ("i", "want", "to"),
            ("i", "would", "like", "to"),
            ("we", "need", "to"),
            ("we", "want", "to"),
            ("can", "you"),
            ("could", "you"),
            ("would", "you"),
            ("will", "you"),
            ("would", "you", "mind"),
            ("would", "you", "kindly"),
            ("please",),
            ("kindly",),
            ("go", "ahead", "and"),
            ("let", "us"),
            ("lets",),
            ("try", "to"),
            ("you", "should"),
            ("you", "need", "to"),
            ("you", "must"),
            ("you", "can"),
            ("help", "me"),
            ("it", "is", "time", "to"),
            ("time", "to"),
            ("your", "task", "is", "to"),
            ("your", "job", "is", "to"),
            ("the", "task", "is", "to"),
            ("now",),
            ("just",),
            ("ok",),
            ("okay",),
            ("robot",),
            ("hey",),
            ("i", "would", "appreciate", "it", "if", "you"),
            ("do", "me", "a", "favor", "and"),
            ("be", "so", "kind", "as", "to"),
            ("could", "you", "go", "ahead", "and"),
            ("would", "you", "be", "able", "to"),
            ("could", "you", "be", "able", "to"),
            ("can", "you", "be", "able", "to"),
            ("are", "you", "able", "to"),
            ("is", "it", "possible", "to"),
            ("is", "it", "possible", "for", "you", "to"),
            ("would", "it", "be", "possible", "to"),
            ("i", "would", "love", "it", "if", "you", "could"),
            ("i", "would", "love", "for", "you", "to"),
            ("would", "you", "please"),
            ("could", "you", "kindly"),
            ("first",),
            ("also",),
            ("then",),
            ("and",),
            ("next",),
            ("finally",),
            ("after", "that"),
            ("afterwards",),
            ("after",),
            ("before",),
            ("while",),
        ),
        key=len,
        reverse=True,
    )
)
_ALWAYS_POLITE = {
    ("please",),
    ("kindly",),
    ("go", "ahead", "and"),
    ("ok",),
    ("okay",),
    ("robot",),
    ("hey",),
    ("now",),
    ("just",),
}
# "with / using / by means of the gripper": the robot's own parts are the means, never an object to move
_INSTRUMENT_PREPS = frozenset({"with", "using", "utilizing", "utilising", "via"})
_INSTRUMENT_MODIFIERS = frozenset({"the", "your", "its", "my", "a", "robot", "robot's", "robots", "robotic",
                                   "left", "right", "own", "two", "parallel", "jaw"})
_EFFECTORS = frozenset({"gripper", "grippers", "hand", "hands", "arm", "arms", "claw", "claws", "fingers",
                        "finger", "end-effector", "effector", "manipulator", "pincer", "pincers", "tool"})

# phrases that carry nothing for the goal
_SKIP: tuple[tuple[str, ...], ...] = (
    ("so", "they", "form", "a", "stack"),
    ("so", "they", "form", "a", "tower"),
    ("so", "that", "they", "form"),
    ("so", "they", "form"),
    ("to", "form", "a", "stack"),
    ("to", "form", "a", "tower"),
    ("to", "make", "a", "stack"),
    ("to", "make", "a", "tower"),
    ("forming", "a", "stack"),
    ("forming", "a", "tower"),
    ("so", "they", "are", "stacked"),
    ("use", "the", "gripper", "to"),
    ("use", "your", "gripper", "to"),
    ("use", "the", "robot", "to"),
    ("use", "the", "arm", "to"),
    ("use", "your", "arm", "to"),
    ("use", "the", "robot", "arm", "to"),
    ("with", "the", "gripper"),
    ("with", "your", "gripper"),
    ("tidy", "up", "by"),
    ("clean", "up", "by"),
    ("tidy", "the", "table", "by"),
    ("clean", "up", "the", "table", "by"),
    ("by", "hand"),
    ("all", "the", "way"),
    ("at", "the", "end"),
    ("in", "the", "end"),
    ("by", "the", "end"),
    ("when", "you", "are", "done"),
    ("when", "you", "done"),
    ("when", "you", "are", "finished"),
    ("once", "you", "are", "done"),
    ("when", "finished"),
    ("when", "done"),
    ("once", "done"),
    ("the", "goal", "is", "to", "have"),
    ("the", "goal", "is", "to", "get"),
    ("the", "goal", "is", "to"),
    ("your", "goal", "is", "to"),
    ("the", "goal", "is"),
    ("the", "aim", "is", "to"),
    ("the", "objective", "is", "to"),
    ("the", "result", "should", "be"),
    ("the", "end", "state", "is"),
    ("the", "end", "result", "should", "be"),
    ("i", "would", "like", "to", "see"),
    ("i", "want", "to", "see"),
    ("i", "need", "to", "see"),
    ("i", "would", "like", "to", "have"),
    ("i", "want", "to", "have"),
    ("make", "sure", "that"),
    ("make", "sure"),
    ("ensure", "that"),
    ("see", "to", "it", "that"),
    ("make", "it", "so", "that"),
    ("make", "it", "so"),
    ("arrange", "it", "so", "that"),
    ("arrange", "things", "so", "that"),
    ("so", "that", "it", "is"),
    ("so", "that", "it", "sits"),
    ("such", "that", "it", "is"),
    ("such", "that", "it", "sits"),
    ("so", "that", "it", "rests"),
    ("such", "that", "it", "rests"),
    ("so", "it", "is"),
    ("so", "it", "sits"),
    ("so", "that", "they", "are"),
    ("such", "that", "they", "are"),
    ("so", "they", "are"),
    ("in", "any", "order"),
    ("in", "whatever", "order"),
    ("in", "no", "particular", "order"),
    ("any", "order"),
    ("ends", "up"),
    ("end", "up"),
    ("ending", "up"),
    ("winds", "up"),
    ("if", "you", "can"),
    ("if", "possible"),
    ("if", "you", "do", "not", "mind"),
    ("when", "you", "are", "ready"),
    ("for", "me"),
    ("thank", "you"),
    ("right", "now"),
    ("right", "away"),
    ("as", "well"),
    ("you", "can"),
    ("in", "one", "go"),
    ("one", "by", "one"),
    ("one", "at", "a", "time"),
    ("all", "at", "once"),
)
_GERUNDS: dict[str, str] = {
    "putting": "put",
    "placing": "place",
    "moving": "move",
    "stacking": "stack",
    "dropping": "drop",
    "picking": "pick",
    "setting": "set",
    "sorting": "sort",
    "building": "build",
    "piling": "pile",
    "transferring": "transfer",
    "bringing": "bring",
    "grabbing": "grab",
    "taking": "take",
    "lifting": "lift",
    "filling": "fill",
    "making": "make",
    "matching": "matching",
    "grouping": "group",
    "carrying": "carry",
    "sliding": "slide",
    "laying": "lay",
}
SUPERLATIVES: frozenset[str] = frozenset(
    {
        "highest",
        "tallest",
        "biggest",
        "largest",
        "greatest",
        "high",
        "tall",
        "big",
        "huge",
        "giant",
        "single",
        "neat",
        "nice",
        "new",
        "little",
        "small",
    }
)


def _next_is_verb(words: list[str], i: int) -> bool:
    while i < len(words) and words[i] in (
        "first",
        "then",
        "now",
        "just",
        "also",
        "please",
        "kindly",
        "quickly",
        "carefully",
        "gently",
        "go",
        "ahead",
        "and",
        "simply",
    ):
        i += 1
    return i < len(words) and (words[i] in _VERBS or words[i] in _GERUNDS or words[i] in ("not",))


def chunk(words: list[str]) -> list[Chunk]:
    """Chunks of a whole instruction, separators included."""
    out: list[Chunk] = []
    i = 0
    n = len(words)
    while i < n:
        w = words[i]
        if w in _INSTRUMENT_PREPS:
            k = i + 1
            while k < n and words[k] in _INSTRUMENT_MODIFIERS:
                k += 1
            if k < n and words[k] in _EFFECTORS:  # "using the robot's gripper": the means, not an object
                i = k + 1
                continue
            if w != "with" and k < n and not _next_is_verb(words, i + 1):
                words = words[:i] + ["with"] + words[i + 1 :]  # "a tower using the red blocks"
                w = "with"
        if w in _GERUNDS and (
            i == 0
            or words[i - 1]
            in (
                "mind",
                "start",
                "try",
                "keep",
                "by",
                ",",
                "and",
                "after",
                "up",
                "before",
                "while",
                "then",
                "first",
                "begin",
                "finish",
            )
        ):
            words = words[:i] + [_GERUNDS[w]] + words[i + 1 :]
            w = words[i]
        polite = next(
            (
                p
                for p in _POLITE
                if _matches(words, i, p)
                and (_next_is_verb(words, i + len(p)) or p in _ALWAYS_POLITE)
                and (
                    i == 0
                    or words[i - 1]
                    in _SEP_WORDS | {",", "and", "then", "please", "now", "ok", "okay", "robot", "hey", "so"}
                    or out
                    and out[-1].type in ("AND", "SEP", "ORDER")
                )
            ),
            None,
        )
        if polite is not None and polite not in (
            ("and",),
            ("then",),
            ("next",),
            ("finally",),
            ("after", "that"),
            ("also",),
        ):
            i += len(polite)
            continue
        skip = next((p for p in _SKIP if _matches(words, i, p)), None)
        if skip is not None:
            i += len(skip)
            continue
        if (
            w in SUPERLATIVES
            and i + 1 < n
            and (
                words[i + 1] in lx.TOWER_NOUNS
                or words[i + 1] in SUPERLATIVES
                or words[i + 1] in lx.BLOCK_NOUNS
                and i + 2 < n
                and words[i + 2] in lx.TOWER_NOUNS
            )
        ):
            i += 1
            continue
        if w == "by" and i + 1 < n and (words[i + 1] in _GERUNDS or words[i + 1] in CLAUSE_VERBS):
            i += 1  # "by putting ...": the means is the request
            continue
        if w in ("by",) and i + 1 < n and words[i + 1] in ("color", "colors"):
            out.append(Chunk("MATCH", "by color"))
            i += 2
            continue
        if (
            w in ("by",)
            and i + 2 < n
            and words[i + 1] in ("their", "its")
            and words[i + 2] in ("color", "colors")
        ):
            out.append(Chunk("MATCH", "by color"))
            i += 3
            continue
        if (
            w in ("everything", "all")
            and (
                i + 1 >= n
                or words[i + 1] in _NP_STOP - {"of"}
                or words[i + 1] in _SEP_WORDS
                or words[i + 1] in (",",)
            )
            and not (out and out[-1].type == "NP")
        ):
            out.append(Chunk("NP", w, np=NP(kind="generic", plural=True, quant="all", text=w)))
            i += 1
            continue
        if w in _SEP_WORDS:
            out.append(Chunk("SEP", w))
            i += 1
            continue
        if w in (",", ":"):
            out.append(Chunk("AND", ","))
            i += 1
            continue
        # reciprocal / tower targets and relation phrases (longest first), but a place after "on the" wins
        rel = next((p for p in _REL_BY_LENGTH if _matches(words, i, p)), None)
        order = next((p for p in _ORDER_BY_LENGTH if _matches(words, i, p)), None)
        if order is not None and (rel is None or len(order) >= len(rel)):
            after = words[i + len(order)] if i + len(order) < n else ""
            kind = _ORDER_PHRASES[order]
            place_follows = after in lx.LEFT_WORDS | lx.RIGHT_WORDS | lx.CORNER_WORDS | lx.SIDE_WORDS or (
                after == "of" and kind in ("bottom", "top") and order[-1] in ("bottom", "top", "base")
            )
            if not place_follows and not (kind == "then" and order == ("next",) and after == "to"):
                out.append(Chunk("ORDER", kind, words=order))
                i += len(order)
                continue
        if rel is not None:
            value = _REL_PHRASES[rel]
            if value == "tower":
                out.append(Chunk("REL", "on" if rel[0] in ("on", "onto", "upon") else "in", words=rel[:1]))
                out.append(Chunk("TOWER", "target", words=rel))
                i += len(rel)
                continue
            if value.startswith("unsupported:") and rel in (("off",), ("from",), ("by",), ("over",)):
                pass
            # "to the left of" before "to": longest match already; a place or NP follows
            out.append(Chunk("REL", value, words=rel))
            i += len(rel)
            continue
        if w in ("not", "never", "without", "nor", "neither") or (
            w == "no" and i + 1 < n and words[i + 1] in ("longer", "block", "blocks", "bowl", "bowls", "more")
        ):
            out.append(Chunk("NEG", w))
            i += 1
            continue
        if w in ("and", "or", "plus", "as well as") or (w == "also" and out and out[-1].type != "AND"):
            out.append(Chunk("AND", w))
            i += 1
            continue
        if w in ("each", "one") and i + 1 < n and words[i + 1] in ("other", "another"):
            out.append(Chunk("TOWER", "target", words=(w, words[i + 1])))
            i += 2
            continue
        if w in lx.TOWER_NOUNS and not (w in ("stack", "pile", "tower", "heap") and _verb_position(words, i)):
            out.append(Chunk("TOWER", w))
            i += 1
            continue
        loc, k = (None, 0)
        if (
            w in ("the", "a")
            or w
            in lx.TOP_WORDS
            | lx.BOTTOM_WORDS
            | lx.LEFT_WORDS
            | lx.RIGHT_WORDS
            | lx.MIDDLE_WORDS
            | lx.CORNER_WORDS
            | lx.SIDE_WORDS
            | lx.TABLE_WORDS
            | set(lx.COMPASS)
        ):
            loc, k = _location_at(words, i)
            if (
                loc is not None
                and w in lx.RIGHT_WORDS
                and i + 1 < n
                and words[i + 1] in ("now", "away", "there", "here", "after", "then")
            ):
                loc = None
        if loc is not None:
            out.append(loc)
            i += k
            continue
        if w in _VERBS and _verb_position(words, i):
            out.append(Chunk("VERB", w))
            i += 1
            if i < n and words[i] in ("up", "down", "out") and w in lx.PICK_VERBS | {"set", "put", "lift"}:
                i += 1
            continue
        np_, k = _np_at(words, i, after_rel=bool(out) and out[-1].type == "REL")
        if (
            np_ is not None
            and k > 0
            and np_.kind == "block"
            and not np_.colors
            and i + k < n
            and words[i + k] in lx.TOWER_NOUNS
        ):
            i += k  # "the highest block stack", "a block tower": the noun modifies the tower
            continue
        if np_ is not None and k > 0:
            out.append(Chunk("NP", np_.text, np=np_))
            i += k
            continue
        if w in ("there", "here") and out and out[-1].type == "REL":
            out.append(Chunk("NP", w, np=NP(pronoun="there", text=w)))
            i += 1
            continue
        if w in _PRONOUNS:
            out.append(
                Chunk("NP", w, np=NP(pronoun=w, plural=w in ("them", "they", "these", "those"), text=w))
            )
            i += 1
            continue
        if w in lx.MATCH_WORDS:
            out.append(Chunk("MATCH", w))
            i += 1
            continue
        if w in lx.MISMATCH_WORDS:
            out.append(Chunk("MISMATCH", w))
            i += 1
            continue
        if w in _VERBS:
            out.append(Chunk("VERB", w))
            i += 1
            continue
        if w in lx.QUESTION_WORDS:
            out.append(Chunk("QUESTION", w))
            i += 1
            continue
        if w in lx.FILLER or w in lx.NUMBERS:
            i += 1
            continue
        out.append(Chunk("UNKNOWN", w))
        i += 1
    return out


_NOT_BEFORE_VERB = frozenset(
    {
        "the",
        "a",
        "an",
        "one",
        "single",
        "this",
        "that",
        "tall",
        "high",
        "big",
        "whole",
        "same",
        "of",
        "your",
        "my",
        "highest",
        "tallest",
        "biggest",
        "largest",
        "new",
        "neat",
        "its",
        "their",
    }
)


def _verb_position(words: list[str], i: int) -> bool:
    """Whether ``words[i]`` stands where a verb does: at the start of a clause, after a polite frame,
    a conjunction, a subject or a modal, rather than inside a noun phrase ("a stack", "the top")."""
    if i == 0:
        return True
    prev = words[i - 1]
    if prev in ("that", "this") and i >= 2 and words[i - 2] in ("after", "do", "like", "with"):
        return True
    if prev in lx.BLOCK_NOUNS:
        return words[i] not in lx.TOWER_NOUNS  # "the highest block stack" vs "let the red block rest on"
    return prev not in _NOT_BEFORE_VERB


VOCABULARY = _vocabulary()
DISTANCE_TARGETS = _distance_targets()
