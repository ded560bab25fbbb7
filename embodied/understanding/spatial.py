"""Spatial language: referents picked by where things are, and places that are not a bowl, a block or a named
location. A pass over the normalised words before the chunk grammar (``reader.GoalReader``):

1. **Referents** are replaced by the object they pick on the table's current layout ("the block closest to the
   blue bowl" -> "the red block"): closest to / farthest from an object, left of / right of / behind / in front
   of / below an object, the nth from a side, the leftmost / rightmost / topmost / bottommost, and the corner
   closest to / farthest from an object. They need the objects' positions; without them they are refused.
2. **One spatial place** per instruction is cut out and replaced by a placeholder named location the grammar
   reads ("put the red block to the left of the blue bowl" -> "put the red block in the middle"), so quantifiers,
   pronouns, typos and descriptions keep working; then every ``at`` placeholder predicate of the reading becomes
   the place's predicates (``embodied.world.spatial``): a side of the table, a relation with an optional "a
   little" (+ near) or "a lot" (+ far from), near / far from, between, a metric offset from an object or from
   where the block is now, different corners / bowls, and lines, triangles and squares (with "in the middle"
   or a side). Objects the place names are read by the grammar too ("on <object>").

Anything that stays unread is left to the grammar, which refuses what it cannot state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from embodied.understanding import lexicon as lx
from embodied.world.scene import LOCATIONS
from embodied.world.spatial import DIRECTIONS, REL_MIN

Positions = Mapping[str, tuple[float, float]]
CORNERS = tuple(x for x in LOCATIONS if x.endswith("corner"))
TIE = 0.002  # referents closer than this in the measure that picks them are a tie (refused as ambiguous): five
# times perception's mean position error (0.4 mm), so a tie is one the robot could not tell apart
_PLACEHOLDERS = ("middle", "bottom right corner", "bottom left corner", "top right corner", "top left corner")

_NUMS = {k: float(v) for k, v in lx.NUMBERS.items() if k not in ("single", "pair", "couple", "dozen")}
_NUMS.update({"half": 0.5, "a": 1.0, "an": 1.0})
_UNITS = {"cm": 0.01, "centimeter": 0.01, "centimeters": 0.01, "centimetre": 0.01, "centimetres": 0.01,
          "mm": 0.001, "millimeter": 0.001, "millimeters": 0.001, "m": 1.0, "meter": 1.0, "meters": 1.0,
          "metre": 1.0, "metres": 1.0, "inch": 0.0254, "inches": 0.0254, "in": 0.0254}
_DIR_HEAD = {"left": "left_of", "right": "right_of", "top": "behind", "up": "behind", "upper": "behind",
             "above": "behind", "behind": "behind", "back": "behind", "far": "behind", "north": "behind",
             "bottom": "in_front_of", "down": "in_front_of", "lower": "in_front_of", "below": "in_front_of",
             "front": "in_front_of", "in front": "in_front_of", "near": "in_front_of", "south": "in_front_of"}
_SIDE = {"left": "left side", "right": "right side", "top": "top side", "upper": "top side", "far": "top side",
         "back": "top side", "bottom": "bottom side", "lower": "bottom side", "near": "bottom side",
         "front": "bottom side"}
_ORDINAL = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
            "fifth": 4, "5th": 4, "last": -1}
_MOST = {"leftmost": "left", "left most": "left", "rightmost": "right", "right most": "right",
         "topmost": "top", "top most": "top", "uppermost": "top", "upper most": "top",
         "bottommost": "bottom", "bottom most": "bottom", "lowermost": "bottom", "lower most": "bottom"}

_KIND = r"(?P<kind>blocks?|cubes?|bowls?|dish|one)"
_REF = r"(?P<ref>(?:the |a )?(?:[a-z]+ ){0,3}?(?:block|cube|bowl|dish|container|corner|middle|center)\b)"
_REF_IT = _REF[:-1] + r"|it\b)"  # or "it": the block named last before the referent
_NUM = r"(?P<num>\d+(?: \. \d+)?|(?:" + "|".join(sorted(_NUMS, key=len, reverse=True)) + r")(?: \. (?:" + \
    "|".join(k for k in _NUMS if _NUMS[k] < 10) + r"))?)"
_UNIT = r"(?P<unit>" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")"
_DIRS = r"(?P<dir>left|right|top|bottom|up|down|above|below|behind|in front)"
_MAG = r"(?P<mag>a little bit |a little |a bit |slightly |just |a lot |a lot more |far |much |way |well )?"


class SpatialRefusal(Exception):
    """A spatial phrase that was recognised but cannot become a goal; ``category`` as in ``reader.CATEGORIES``."""

    def __init__(self, category: str, sentence: str) -> None:
        super().__init__(sentence)
        self.category, self.sentence = category, sentence


@dataclass
class Place:
    """The spatial place cut out of an instruction, to be put back as predicates once the grammar has read the
    rest."""

    kind: str  # side | relation | near | far | between | offset | move | different | shape
    words: str  # as written (normalised), for messages
    side: str = ""
    head: str = ""
    refs: list[str] = field(default_factory=list)  # ref phrases, read by the grammar
    mag: str = ""
    vector: tuple[float, float] = (0.0, 0.0)
    shape: str = ""
    orient: str = "any"
    extras: list[tuple[str, str]] = field(default_factory=list)  # ("centred", "middle") / ("side", "top side")
    what: str = ""  # different: corners | bowls


def _number(text: str) -> float:
    parts = text.split(" . ")
    whole = float(parts[0]) if parts[0].isdigit() else _NUMS[parts[0]]
    if len(parts) == 2:
        frac = parts[1] if parts[1].isdigit() else str(int(_NUMS[parts[1]]))
        return float(f"{int(whole)}.{frac}")
    return whole


def _vector(head: str, metres: float) -> tuple[float, float]:
    u = DIRECTIONS[head]
    return (round(metres * u[0], 3) + 0.0, round(metres * u[1], 3) + 0.0)


# -- referents --------------------------------------------------------------------------------------------------

def resolve_referents(text: str, names: Sequence[str], positions: Positions | None,
                      ref_of: Callable[[str], str | None], trace: list | None = None) -> str:
    """``text`` with every positional referent replaced by the object's name ("the red block"); ``trace``
    gets ``(kind, match, name)`` for each, in order."""
    patterns: list[tuple[str, re.Pattern[str]]] = [
        ("corner", re.compile(r"\bthe (?P<what>corner|side) (?:that is |which is )?(?P<sup>closest|nearest|"
                              r"farthest|furthest) (?:away )?(?:(?:to|from) )?" + _REF)),
        ("distance", re.compile(r"\bthe " + _KIND + r" (?:that is |which is )?(?P<sup>closest|nearest|closer|"
                                r"farthest|furthest|farther) (?:away )?(?:(?:to|from) )?" + _REF_IT)),
        ("nth", re.compile(r"\bthe (?P<ord>" + "|".join(_ORDINAL) + r") " + _KIND +
                           r" from the (?P<side>left|right|top|bottom)\b")),
        ("most", re.compile(r"\bthe (?P<most>" + "|".join(sorted(_MOST, key=len, reverse=True)) + r") " + _KIND)),
        ("direction", re.compile(r"\bthe " + _KIND + r" (?:that is |which is )?(?:to the |on the )?"
                                 r"(?P<dir>left|right|top|bottom)(?: side)? of " + _REF +
                                 r"(?P<after> (?:and|then|,|on|in|into|onto|to|at)\b)")),
        ("direction", re.compile(r"\bthe " + _KIND + r" (?:that is |which is )?on the (?P<dir>far|near|back|front)"
                                 r" side of " + _REF + r"(?P<after> (?:and|then|,|on|in|into|onto|to|at)\b)")),
        ("direction", re.compile(r"\bthe " + _KIND + r" (?:that is |which is )?(?P<dir>behind|in front of|below)"
                                 r" " + _REF + r"(?P<after> (?:and|then|,|on|in|into|onto|to|at)\b)")),
    ]
    for _ in range(4):  # a few referents per instruction at most
        for kind, pat in patterns:
            m = pat.search(text)
            if m is None:
                continue
            if positions is None:
                raise SpatialRefusal("unsupported_relation", f"The phrase '{m.group(0)}' picks an object by where it is, and "
                                     "I was not given where the objects are.")
            name = _pick(kind, m, names, positions, ref_of, text[:m.start()])
            if trace is not None:
                trace.append((kind, m, name))
            after = m.groupdict().get("after") or ""
            text = text[:m.start()] + "the " + name + after + text[m.end():]
            break
        else:
            return text
    return text


def _kind_of(word: str) -> str:
    return "bowl" if word.startswith(("bowl", "dish")) else "block"


def _pick(kind: str, m: re.Match[str], names: Sequence[str], positions: Positions,
          ref_of: Callable[[str], str | None], before: str = "") -> str:
    """The object a referent picks, or a refusal naming why none or several fit; ``before`` is the text before
    it, where "it" in "the bowl closest to it" finds the block it stands for (the last one named)."""
    import math

    def pos(n: str) -> tuple[float, float]:
        if n in LOCATIONS:
            return LOCATIONS[n]
        if n not in positions:
            raise SpatialRefusal("ambiguous", f"I do not know where the {n} is.")
        return positions[n]

    def ref() -> str:
        phrase = m.group("ref")
        if phrase == "it":
            named = re.findall(r"\b(?:the|a) (?:[a-z]+ ){0,3}?(?:block|cube)\b", before)
            phrase = named[-1] if named else phrase
        r = ref_of(phrase)
        if r is None:
            raise SpatialRefusal("unknown_object", f"I could not tell which object '{m.group('ref')}' is.")
        return r

    if kind == "corner":
        r = ref()
        q = pos(r)
        far = m.group("sup") in ("farthest", "furthest")
        if m.group("what") == "side":
            raise SpatialRefusal("unsupported_relation", f"The phrase '{m.group(0)}' leaves the side open; say which side.")
        d = sorted((math.dist(LOCATIONS[c], q), c) for c in CORNERS)
        if far:
            d = d[::-1]
        if abs(d[0][0] - d[1][0]) < TIE:
            raise SpatialRefusal("ambiguous", f"Two corners are about equally far from the {r}; say which.")
        return d[0][1]
    target_kind = _kind_of(m.group("kind")) if m.group("kind") != "one" else "block"
    pool = [n for n in names if n.endswith(target_kind)]
    if kind == "distance":
        r = ref()
        q = pos(r)
        far = m.group("sup") in ("farthest", "furthest", "farther")
        d = sorted((math.dist(pos(n), q), n) for n in pool if n != r)
        if far:
            d = d[::-1]
        if not d:
            raise SpatialRefusal("absent_object", f"There is no other {target_kind} here.")
        if len(d) > 1 and abs(d[0][0] - d[1][0]) < TIE:
            raise SpatialRefusal("ambiguous", f"Two {target_kind}s are about equally far from the {r}; say which.")
        return d[0][1]
    if kind in ("nth", "most"):
        side = m.group("side") if kind == "nth" else _MOST[m.group("most")]
        axis, sign = {"left": (1, -1.0), "right": (1, 1.0), "top": (0, -1.0), "bottom": (0, 1.0)}[side]
        order = sorted(pool, key=lambda n: sign * pos(n)[axis])
        k = 0 if kind == "most" else _ORDINAL[m.group("ord")]
        if not order or k >= len(order):
            raise SpatialRefusal("impossible_count", f"There are only {len(order)} {target_kind}s here.")
        coords = sorted(sign * pos(n)[axis] for n in pool)
        i = k if k >= 0 else len(order) - 1
        near = [abs(coords[i] - coords[j]) for j in (i - 1, i + 1) if 0 <= j < len(coords)]
        if near and min(near) < TIE:
            raise SpatialRefusal("ambiguous", f"Two {target_kind}s are level from the {side}, so say which.")
        return order[k]
    # direction
    r = ref()
    q = pos(r)
    word = m.group("dir")
    head = _DIR_HEAD.get(word) or _DIR_HEAD["in front" if word.startswith("in front") else word]
    u = DIRECTIONS[head]
    hits = []  # (outside the 45-degree cone of the relation, nearest first)
    for n in pool:
        if n == r:
            continue
        dx, dy = pos(n)[0] - q[0], pos(n)[1] - q[1]
        along, side = dx * u[0] + dy * u[1], abs(-dx * u[1] + dy * u[0])
        if along >= REL_MIN:
            hits.append((along < side, side / along, n))
    if not hits:
        raise SpatialRefusal("absent_object", f"No {target_kind} is {m.group('dir')} the {r}.")
    return min(hits)[2]


# -- places -----------------------------------------------------------------------------------------------------

_SHAPE = re.compile(r"(?P<pre>\b(?:in|into|as|to form|forming|so they form|to make|making|in the shape of) (?:a |an )?)"
                    r"(?:(?P<orient>horizontal|vertical|diagonal|straight|single) )?(?P<shape>line|row|column|"
                    r"triangle|square)(?: shape| formation| pattern| arrangement)?\b")
_MAKE_SHAPE = re.compile(r"\b(?P<verb>make|form|build|create|arrange|set up|lay out) (?:a |an )?"
                         r"(?:(?P<orient>horizontal|vertical|diagonal|straight) )?(?P<shape>line|row|column|triangle|"
                         r"square)(?: shape)? (?:with|out of|using|from|of) (?P<np>.+?)(?= in the| around the| near"
                         r" the| at the| on the| along the| \.|$)")
_LINE_UP = re.compile(r"\bline up (?P<np>.+?) (?P<orient>horizontally|vertically|diagonally)\b|"
                      r"\bline (?P<np2>.+?) up (?P<orient2>horizontally|vertically|diagonally)?")
_SHAPE_WHERE = [
    (re.compile(r"^ (?:in|at|around|about|near) the (?:middle|center)(?: of the table)?\b"), "centred"),
    (re.compile(r"^ (?:near|along|on|at|by) the (?P<side>top|bottom|left|right|upper|lower|far|near)(?: side| edge"
                r"| end)?(?: of the table)?\b"), "side"),
]
_PLACES: list[tuple[str, re.Pattern[str]]] = [
    ("offset", re.compile(r"\b" + _NUM + r" ?" + _UNIT + r"\b(?: away)? (?:to the |towards the |toward the )?" + _DIRS
                          + r"(?: side)?(?: of| from)? " + _REF)),
    ("move", re.compile(r"\b" + _NUM + r" ?" + _UNIT + r"\b (?:to the |towards the |toward the |further )?" + _DIRS
                        + r"\b")),
    ("move", re.compile(r"\b(?:to the |towards the |toward the )?" + _DIRS + r" by " + _NUM + r" ?" + _UNIT + r"\b")),
    ("between", re.compile(r"\b(?:in )?between (?P<ref>(?:the |a )?(?:[a-z]+ ){0,3}?(?:block|cube|bowl|dish|corner"
                           r"|middle)s?\b) and (?P<ref2>(?:the |a )?(?:[a-z]+ ){0,3}?(?:block|cube|bowl|dish|corner|"
                           r"middle)\b)")),
    ("between", re.compile(r"\b(?:in )?between the (?P<c1>[a-z]+) and (?P<c2>[a-z]+) (?P<kinds>blocks|bowls|cubes)\b")),
    ("relation", re.compile(r"\b" + _MAG + r"(?:to the |on the |towards the |toward the )?(?P<dir>left|right)"
                            r"(?: side| hand side)? of " + _REF)),
    ("relation", re.compile(r"\b" + _MAG + r"to the (?P<dir>top|bottom|front|back)(?: side)? of " + _REF)),
    ("relation", re.compile(r"\b" + _MAG + r"on the (?P<dir>far|near|back|front) side of " + _REF)),
    ("relation", re.compile(r"\b" + _MAG + r"(?P<dir>behind|in front of|below) " + _REF)),
    ("relation", re.compile(r"\b(?P<mag>a little |a bit |slightly |a lot |far |way |well )(?P<dir>above) " + _REF)),
    ("side", re.compile(r"\b(?:on|to|at|onto|in|into|towards|toward|along|over)(?: to)? the (?P<side>left|right|top|"
                        r"bottom|upper|lower|far|front|back|near)(?: hand)? (?:side|edge|half|part|end)(?: of the "
                        r"(?:table|workspace))?\b")),
    ("far", re.compile(r"\bfar (?:away )?from " + _REF + r"|\baway from " + _REF.replace("ref", "ref_b"))),
    ("near", re.compile(r"\b(?:right |just )?(?:next to|near to|near|close to|closer to|beside|adjacent to|nearby|"
                        r"alongside) " + _REF)),
    ("different", re.compile(r"\b(?:in|on|to|into|at|onto) (?:a |the |their own |)?(?:different|separate|distinct|"
                             r"individual) (?P<what>corner|bowl)s?\b")),
    ("different", re.compile(r"\b(?:in|on|to|into|at|onto) (?:its|their) own (?P<what>corner|bowl)s?\b")),
    # "into the corners, one per corner", "in the four corners, one in each": a block per corner or bowl
    ("different", re.compile(r"\b(?:in|on|to|into|at|onto) (?:the |all the |all |)(?:four |)(?P<what>corner|bowl)s"
                             r"(?: of the table|)(?: ,|) (?:with |)one (?:block |)(?:per|in each|on each|to each|"
                             r"for each|at each|in every|each)(?: (?:corner|bowl)|)\b")),
    ("different", re.compile(r"\bone (?:per|in each|on each|to each|into each|at each|in every) (?P<what>corner|bowl)"
                             r"\b")),
]
# "put one block in each corner", "a block on every corner": the blocks, one per corner (or bowl)
_ONE_EACH = re.compile(r"\b(?:one|a|a single) (?:block|cube) (?:in|on|into|to|at|onto) (?:each|every) "
                       r"(?P<what>corner|bowl)\b")


def find_place(text: str) -> tuple[Place, str] | None:
    """The first spatial place in ``text`` and the text with it replaced by ``{PLACE}``; None when none."""
    m = _MAKE_SHAPE.search(text)
    if m is not None:  # "make a triangle with the blocks": the blocks become what is put in the place
        orient = _orient(m.group("orient"), m.group("shape"))
        place = Place("shape", m.group(0), shape=_shape(m.group("shape")), orient=orient)
        rest = _shape_where(text[m.end():], place)
        return place, text[:m.start()] + f"put {m.group('np')} {{PLACE}}" + rest
    m = _LINE_UP.search(text)
    if m is not None:
        np_ = m.group("np") or m.group("np2")
        orient = _orient(m.group("orient") or m.group("orient2"), "line")
        rest = text[m.end():]
        shape = _SHAPE.match(rest.lstrip())  # "line the blocks up in a row"
        if shape is not None and _shape(shape.group("shape")) == "line":
            orient = _orient(shape.group("orient"), shape.group("shape"))
            rest = rest.lstrip()[shape.end():]
        place = Place("shape", m.group(0), shape="line", orient=orient)
        rest = _shape_where(rest, place)
        return place, text[:m.start()] + f"put {np_} {{PLACE}}" + rest
    m = _SHAPE.search(text)
    if m is not None:
        place = Place("shape", m.group(0), shape=_shape(m.group("shape")), orient=_orient(m.group("orient"),
                                                                                          m.group("shape")))
        rest = _shape_where(text[m.end():], place)
        return place, text[:m.start()] + "{PLACE}" + rest
    m = _ONE_EACH.search(text)
    if m is not None:
        return (Place("different", m.group(0), what=m.group("what") + "s"),
                text[:m.start()] + "the blocks {PLACE}" + text[m.end():])
    for kind, pat in _PLACES:
        m = pat.search(text)
        if m is None:
            continue
        g = m.groupdict()
        place = Place(kind, m.group(0))
        if kind == "side":
            place.side = _SIDE[g["side"]]
        elif kind in ("relation", "offset", "move"):
            word = g["dir"]
            place.head = _DIR_HEAD["in front" if word.startswith("in front") else word]
            if kind == "relation":
                place.refs = [g["ref"]]
                place.mag = (g.get("mag") or "").strip()
            else:
                metres = _number(g["num"]) * _UNITS[g["unit"]]
                if not 0.0 < metres <= 0.6:
                    raise SpatialRefusal("unsupported_relation", f"The distance in '{m.group(0)}' is further than the table allows "
                                         "(60 cm at most).")
                place.vector = _vector(place.head, metres)
                if kind == "offset":
                    place.refs = [g["ref"]]
        elif kind == "between":
            if g.get("c1"):
                k = g["kinds"].rstrip("s")
                place.refs = [f"the {g['c1']} {k}", f"the {g['c2']} {k}"]
            else:
                place.refs = [g["ref"], g["ref2"]]
        elif kind in ("near", "far"):
            place.refs = [g.get("ref") or g.get("ref_b")]
        elif kind == "different":
            place.what = g["what"] + "s"
        return place, text[:m.start()] + "{PLACE}" + text[m.end():]
    return None


def _shape(word: str) -> str:
    return "line" if word in ("line", "row", "column") else word


def _orient(word: str | None, shape: str) -> str:
    if shape == "row":
        return "horizontal"
    if shape == "column":
        return "vertical"
    if not word or word in ("straight", "single"):
        return "any"
    return {"horizontally": "horizontal", "vertically": "vertical", "diagonally": "diagonal"}.get(word, word)


_LENGTH = re.compile(r"\b" + _NUM + r" ?" + _UNIT + r"\b")


def _shape_where(rest: str, place: Place) -> str:
    """Cut "in the middle" / "near the top" after a shape into ``place.extras``; the rest of the text. A length
    or a distance said of the shape is refused: its size is not part of the goal language."""
    m = _LENGTH.search(rest.split(" and ")[0].split(" . ")[0])
    if m is not None:
        raise SpatialRefusal("unsupported_relation", f"I cannot state a shape's size or a distance from it "
                             f"('{m.group(0)}'); I can say a line's direction, and 'in the middle' or a side.")
    for _ in range(2):
        for pat, kind in _SHAPE_WHERE:
            m = pat.search(rest)
            if m is not None:
                place.extras.append((kind, "middle" if kind == "centred" else _SIDE[m.group("side")]))
                rest = rest[m.end():]
                break
        else:
            break
    return rest


def placeholder(text: str) -> str:
    """A named location the text does not mention, to stand for the spatial place."""
    for loc in _PLACEHOLDERS:
        words = loc.split()
        if loc == "middle" and not re.search(r"\b(middle|center|centre)\b", text):
            return loc
        if loc != "middle" and not re.search(r"\b" + r"\s+".join(words[:2]) + r"\b", text):
            return loc
    return "middle"


def apply_place(goal: list[list], place: Place, where: str, refs: list[str], names: Sequence[str],
                positions: Positions | None) -> list[list]:
    """Replace every ``["at", block, where]`` of ``goal`` by the place's predicates."""
    moved = [p[1] for p in goal if p[0] == "at" and p[2] == where]
    rest = [p for p in goal if not (p[0] == "at" and p[2] == where)]
    if not moved:
        raise SpatialRefusal("low_confidence", f"I could not tell what goes '{place.words}'.")
    out = list(rest)
    if place.kind == "shape":
        need = {"triangle": 3, "square": 4}.get(place.shape)
        if need is not None and len(moved) != need:
            raise SpatialRefusal("impossible_count", f"A {place.shape} takes {need} blocks; the instruction names "
                                 f"{len(moved)}.")
        if len(moved) < 2:
            raise SpatialRefusal("impossible_count", "A line takes two blocks or more.")
        out.append(["line", moved, place.orient] if place.shape == "line" else [place.shape, moved])
        for kind, arg in place.extras:
            if kind == "centred":
                out.append(["centred", moved, arg])
            else:
                out += [["at", b, arg] for b in moved]
        return out
    if place.kind == "different":
        targets = list(CORNERS) if place.what == "corners" else [n for n in names if n.endswith(" bowl")]
        if len(targets) < len(moved):
            raise SpatialRefusal("impossible_count", f"There are {len(targets)} {place.what} for {len(moved)} blocks.")
        return out + [["different", moved, targets]]
    for b in moved:
        if place.kind == "side":
            out.append(["at", b, place.side])
        elif place.kind == "relation":
            out.append([place.head, b, refs[0]])
            if place.mag in ("a little bit", "a little", "a bit", "slightly", "just"):
                out.append(["near", b, refs[0]])
            elif place.mag:
                out.append(["far_from", b, refs[0]])
        elif place.kind == "near":
            out.append(["near", b, refs[0]])
        elif place.kind == "far":
            out.append(["far_from", b, refs[0]])
        elif place.kind == "between":
            out.append(["between", b, refs[0], refs[1]])
        elif place.kind == "offset":
            out.append(["offset", b, refs[0], list(place.vector)])
        elif place.kind == "move":
            if positions is None or b not in positions:
                raise SpatialRefusal("unsupported_relation", f"The phrase '{place.words}' moves the {b} from where it is, and "
                                     "I was not given where it is.")
            x, y = positions[b]
            out.append(["at", b, f"{x + place.vector[0]:.3f},{y + place.vector[1]:.3f}"])
    for b in moved:
        if b in refs:
            raise SpatialRefusal("contradiction", f"The {b} cannot be placed relative to itself.")
    return out
