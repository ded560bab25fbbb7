"""The words the instruction reader knows: colours (with the accepted aliases and why), object kinds,
relations, locations, verbs, quantifiers, and descriptive colour phrases.

Colour aliases are decided by one documented rule, not case by case (see ``colour_aliases``):

1. Three conventions that predate the rule and stay: grey -> gray, violet -> purple, magenta -> pink.
2. A colour *name* from the CSS / X11 list below is an alias of the palette colour nearest to it in CIELAB
   (D65) when it is near (Delta E*76 <= 25) and unambiguous (the second-nearest palette colour is at least
   1.5 times farther). Metallic names (gold, silver, bronze, copper, ...) name a finish, not a hue, and are
   never aliases. Everything else that names a colour (black, white, teal, navy, beige, ...) is an *unknown
   colour*: an instruction using it is refused, never guessed.
3. ``-ish`` forms of palette colours and aliases ("reddish", "bluish", "greyish") and a lightness or
   shade modifier before a colour ("light blue", "dark green", "bright red") mean that colour.

Descriptive phrases ("the forest-colored block", "the colour of the sky", "the light colored block") are not
aliases: they are resolved against the objects that are on the table (``DESCRIPTORS``, lightness).
"""

from __future__ import annotations

import functools
import math

from embodied.world.scene import COLOR_NAMES, COLORS

# -- colours ------------------------------------------------------------------------------------------------

COLOUR_CONVENTIONS: dict[str, str] = {"grey": "gray", "violet": "purple", "magenta": "pink"}

# CSS / X11 colour names (sRGB 0-255) that people use for objects; rule 2 above decides which are aliases.
CSS_COLOURS: dict[str, tuple[int, int, int]] = {
    "aqua": (0, 255, 255),
    "turquoise": (64, 224, 208),
    "teal": (0, 128, 128),
    "crimson": (220, 20, 60),
    "scarlet": (255, 36, 0),
    "navy": (0, 0, 128),
    "lime": (0, 255, 0),
    "maroon": (128, 0, 0),
    "indigo": (75, 0, 130),
    "lavender": (230, 230, 250),
    "beige": (245, 245, 220),
    "tan": (210, 180, 140),
    "khaki": (240, 230, 140),
    "olive": (128, 128, 0),
    "amber": (255, 191, 0),
    "vermilion": (227, 66, 52),
    "azure": (0, 127, 255),
    "cobalt": (0, 71, 171),
    "emerald": (80, 200, 120),
    "lilac": (200, 162, 200),
    "mauve": (224, 176, 255),
    "rose": (255, 0, 127),
    "salmon": (250, 128, 114),
    "coral": (255, 127, 80),
    "peach": (255, 229, 180),
    "charcoal": (54, 69, 79),
    "cerulean": (0, 123, 167),
    "cream": (255, 253, 208),
    "ochre": (204, 119, 34),
    "burgundy": (128, 0, 32),
    "mustard": (255, 219, 88),
    "orchid": (218, 112, 214),
    "tangerine": (242, 133, 0),
    "jade": (0, 168, 107),
    "mint": (62, 180, 137),
    "sapphire": (15, 82, 186),
    "amethyst": (153, 102, 204),
    "ruby": (224, 17, 95),
    "fuchsia": (255, 0, 255),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "ivory": (255, 255, 240),
    "lemon": (255, 247, 0),
    "chartreuse": (127, 255, 0),
    "periwinkle": (204, 204, 255),
    "auburn": (165, 42, 42),
    "sienna": (160, 82, 45),
    "umber": (99, 81, 71),
    "taupe": (72, 60, 50),
    "cyan": (0, 255, 255),
}
METALLIC: frozenset[str] = frozenset(
    {
        "gold",
        "golden",
        "silver",
        "silvery",
        "bronze",
        "copper",
        "brass",
        "platinum",
        "chrome",
        "metallic",
        "steel",
    }
)
# colour words that are no colour at all on this table
NON_HUES: frozenset[str] = frozenset(
    {
        "transparent",
        "translucent",
        "clear",
        "colorless",
        "colourless",
        "invisible",
        "rainbow",
        "striped",
        "multicolored",
        "multicoloured",
    }
)
ALIAS_MAX_DELTA_E = 25.0
ALIAS_MIN_RATIO = 1.5
SHADE_MODIFIERS: frozenset[str] = frozenset(
    {
        "light",
        "dark",
        "bright",
        "pale",
        "deep",
        "pastel",
        "vivid",
        "dull",
        "sky",
        "navy",
        "royal",
        "baby",
        "hot",
        "neon",
        "forest",
        "lime",
        "olive",
        "blood",
        "brick",
        "fire",
        "ocean",
        "sea",
    }
)


def _lab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour with channels in [0, 1]."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    m = ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505))
    white = (0.95047, 1.0, 1.08883)
    xyz = [sum(m[i][j] * lin[j] for j in range(3)) / white[i] for i in range(3)]

    def f(t: float) -> float:
        return math.cbrt(t) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    fx, fy, fz = (f(t) for t in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


PALETTE_LAB: dict[str, tuple[float, float, float]] = {c: _lab(COLORS[c][:3]) for c in COLOR_NAMES}
LIGHTNESS: dict[str, float] = {
    c: PALETTE_LAB[c][0] for c in COLOR_NAMES
}  # CIELAB L*: yellow 89 ... purple 36
LIGHT_MIN_L, DARK_MAX_L = (
    65.0,
    50.0,
)  # L* classes: light = yellow, cyan, orange, pink; dark = red, blue, brown, purple


def nearest_palette(rgb255: tuple[int, int, int]) -> list[tuple[float, str]]:
    """(Delta E*76, palette colour) for every palette colour, nearest first."""
    lab = _lab(tuple(v / 255 for v in rgb255))  # type: ignore[arg-type]
    return sorted((math.dist(lab, PALETTE_LAB[c]), c) for c in COLOR_NAMES)


@functools.lru_cache(maxsize=1)
def colour_aliases() -> dict[str, str]:
    """Every accepted colour word that is not a palette name -> its palette colour (rules 1 and 2)."""
    out = dict(COLOUR_CONVENTIONS)
    for name, rgb in CSS_COLOURS.items():
        if name in out or name in METALLIC or name in COLOR_NAMES:
            continue
        (d1, c1), (d2, _) = nearest_palette(rgb)[:2]
        if d1 <= ALIAS_MAX_DELTA_E and d2 >= ALIAS_MIN_RATIO * d1:
            out[name] = c1
    return out


@functools.lru_cache(maxsize=1)
def unknown_colour_words() -> frozenset[str]:
    """Colour words the reader knows to be colours but not ones on this table: refused, never guessed."""
    aliases = colour_aliases()
    return frozenset(
        {n for n in CSS_COLOURS if n not in aliases and n not in COLOR_NAMES} | METALLIC | NON_HUES
    )


def colour_of(word: str) -> str | None:
    """The palette colour a single word names ("grey" -> gray, "reddish" -> red), or None."""
    if word in COLOR_NAMES:
        return word
    aliases = colour_aliases()
    if word in aliases:
        return aliases[word]
    for suffix in ("ish", "y"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            for cand in (stem, stem + "e", stem[:-1] if len(stem) > 3 and stem[-1] == stem[-2] else stem):
                if cand in COLOR_NAMES or cand in aliases:
                    return colour_of(cand)
    return None


# Things whose usual colour is a palette colour, for "the <thing>-colored block" / "the colour of <thing>".
# A phrase resolves only against objects on the table, and only when exactly one of them fits.
DESCRIPTORS: dict[str, tuple[str, ...]] = {
    "forest": ("green",),
    "grass": ("green",),
    "leaf": ("green",),
    "leaves": ("green",),
    "frog": ("green",),
    "pine": ("green",),
    "moss": ("green",),
    "jungle": ("green",),
    "pea": ("green",),
    "clover": ("green",),
    "ocean": ("blue", "cyan"),
    "sea": ("blue", "cyan"),
    "sky": ("blue", "cyan"),
    "water": ("blue", "cyan"),
    "denim": ("blue",),
    "blueberry": ("blue",),
    "lake": ("blue", "cyan"),
    "ice": ("cyan", "blue"),
    "sun": ("yellow",),
    "sunshine": ("yellow",),
    "lemon": ("yellow",),
    "banana": ("yellow",),
    "butter": ("yellow",),
    "canary": ("yellow",),
    "corn": ("yellow",),
    "daffodil": ("yellow",),
    "sunflower": ("yellow",),
    "egg yolk": ("yellow",),
    "yolk": ("yellow",),
    "blood": ("red",),
    "cherry": ("red",),
    "tomato": ("red",),
    "strawberry": ("red",),
    "fire": ("red", "orange"),
    "fire truck": ("red",),
    "firetruck": ("red",),
    "rose": ("red", "pink"),
    "brick": ("red", "brown"),
    "apple": ("red", "green"),
    "wine": ("red", "purple"),
    "orange": ("orange",),
    "carrot": ("orange",),
    "pumpkin": ("orange",),
    "tangerine": ("orange",),
    "mango": ("orange", "yellow"),
    "apricot": ("orange",),
    "sunset": ("orange", "red", "pink"),
    "chocolate": ("brown",),
    "coffee": ("brown",),
    "wood": ("brown",),
    "wooden": ("brown",),
    "dirt": ("brown",),
    "earth": ("brown",),
    "mud": ("brown",),
    "soil": ("brown",),
    "bark": ("brown",),
    "caramel": ("brown",),
    "cinnamon": ("brown",),
    "chestnut": ("brown",),
    "walnut": ("brown",),
    "bear": ("brown",),
    "ash": ("gray",),
    "smoke": ("gray",),
    "stone": ("gray",),
    "rock": ("gray",),
    "concrete": ("gray",),
    "cement": ("gray",),
    "slate": ("gray",),
    "elephant": ("gray",),
    "mouse": ("gray",),
    "storm": ("gray",),
    "rain cloud": ("gray",),
    "pebble": ("gray",),
    "granite": ("gray",),
    "plum": ("purple",),
    "grape": ("purple",),
    "eggplant": ("purple",),
    "aubergine": ("purple",),
    "lavender": ("purple",),
    "lilac": ("purple",),
    "amethyst": ("purple",),
    "orchid": ("purple", "pink"),
    "bubblegum": ("pink",),
    "bubble gum": ("pink",),
    "flamingo": ("pink",),
    "salmon": ("pink", "orange"),
    "pig": ("pink",),
    "candy floss": ("pink",),
    "cotton candy": ("pink",),
    "blush": ("pink",),
    "raspberry": ("pink", "red"),
    "watermelon": ("pink", "red"),
    "aqua": ("cyan",),
    "turquoise": ("cyan",),
    "swimming pool": ("cyan",),
    "pool": ("cyan",),
}
# descriptions by lightness or temperature rather than hue
LIGHT_WORDS: frozenset[str] = frozenset(
    {"light", "lighter", "lightest", "bright", "brighter", "brightest", "pale", "paler", "palest", "pastel"}
)
DARK_WORDS: frozenset[str] = frozenset({"dark", "darker", "darkest", "deep", "deeper", "deepest", "dim"})
WARM_COLOURS: frozenset[str] = frozenset({"red", "orange", "yellow", "pink", "brown"})
COOL_COLOURS: frozenset[str] = frozenset({"blue", "cyan", "green", "purple"})
TEMPERATURE_WORDS: dict[str, frozenset[str]] = {
    "warm": WARM_COLOURS,
    "cool": COOL_COLOURS,
    "cold": COOL_COLOURS,
}
COLOURED_WORDS: frozenset[str] = frozenset(
    {"colored", "coloured", "color", "colour", "hued", "tinted", "toned", "tone"}
)

# -- objects ------------------------------------------------------------------------------------------------

BLOCK_NOUNS: frozenset[str] = frozenset(
    {"block", "blocks", "cube", "cubes", "brick", "bricks", "box", "boxes"}
)
BOWL_NOUNS: frozenset[str] = frozenset(
    {"bowl", "bowls", "dish", "dishes", "container", "containers", "basin", "basins"}
)
GENERIC_NOUNS: frozenset[str] = frozenset(
    {"one", "ones", "thing", "things", "object", "objects", "item", "items", "piece", "pieces", "stuff"}
)
PLURAL_NOUNS: frozenset[str] = frozenset(
    {
        "blocks",
        "cubes",
        "bricks",
        "boxes",
        "bowls",
        "dishes",
        "containers",
        "basins",
        "ones",
        "things",
        "objects",
        "items",
        "pieces",
    }
)
# nouns for things that are not on this table: named so that a typo fix never turns them into a block
OTHER_NOUNS: frozenset[str] = frozenset(
    {
        "ball",
        "balls",
        "cylinder",
        "cylinders",
        "banana",
        "bananas",
        "apple",
        "apples",
        "spoon",
        "spoons",
        "cup",
        "cups",
        "plate",
        "plates",
        "mug",
        "mugs",
        "fork",
        "knife",
        "bottle",
        "bottles",
        "can",
        "cans",
        "tube",
        "cone",
        "cones",
        "sphere",
        "spheres",
        "pyramid",
        "triangle",
        "star",
        "ring",
        "rings",
        "basket",
        "bag",
        "tray",
        "shelf",
        "drawer",
        "lid",
        "toy",
        "toys",
        "pen",
        "pencil",
        "book",
        "phone",
        "glass",
        "jar",
        "pot",
        "pan",
        "box",
        "robot",
        "hand",
        "gripper",
        "arm",
        "camera",
        "chair",
        "door",
        "window",
        "wall",
        "dog",
        "cat",
        "car",
        "block",
        "lego",
        "marble",
        "dice",
        "die",
        "coin",
        "shoe",
        "sock",
        "hat",
        "orange",
        "lemon",
        "idea",
        "ideas",
        "sponge",
        "towel",
        "bin",
        "bins",
        "bucket",
        "crate",
        "plank",
        "stick",
        "rod",
        "disk",
        "disc",
        "puck",
        "doll",
        "figure",
        "card",
        "cards",
        "rock",
        "stone",
        "pebble",
        "egg",
        "peg",
        "nut",
        "bolt",
        "screw",
        "tool",
        "hammer",
        "wrench",
        "paper",
        "bread",
        "fruit",
        "vegetable",
        "water",
        "milk",
        "coffee",
    }
)

# -- places -------------------------------------------------------------------------------------------------

TOP_WORDS: frozenset[str] = frozenset(
    {"top", "upper", "far", "back", "rear", "north", "farthest", "furthest"}
)
BOTTOM_WORDS: frozenset[str] = frozenset({"bottom", "lower", "near", "front", "south", "nearest", "closest"})
LEFT_WORDS: frozenset[str] = frozenset({"left", "west", "lefthand"})
RIGHT_WORDS: frozenset[str] = frozenset({"right", "east", "righthand"})
MIDDLE_WORDS: frozenset[str] = frozenset({"middle", "center", "centre", "midpoint"})
CORNER_WORDS: frozenset[str] = frozenset({"corner", "corners"})
SIDE_WORDS: frozenset[str] = frozenset({"side", "sides", "edge", "edges", "half", "border", "end"})
TABLE_WORDS: frozenset[str] = frozenset(
    {"table", "tabletop", "floor", "ground", "workspace", "surface", "desk"}
)
COMPASS: dict[str, tuple[str, str]] = {
    "northwest": ("top", "left"),
    "northeast": ("top", "right"),
    "southwest": ("bottom", "left"),
    "southeast": ("bottom", "right"),
}

# -- verbs and function words --------------------------------------------------------------------------------

PLACE_VERBS: frozenset[str] = frozenset(
    {
        "put",
        "place",
        "move",
        "set",
        "drop",
        "bring",
        "transfer",
        "carry",
        "position",
        "relocate",
        "shift",
        "slide",
        "push",
        "lay",
        "deposit",
        "insert",
        "load",
        "stick",
        "toss",
        "dump",
        "pop",
        "plop",
        "rest",
        "leave",
        "send",
        "return",
        "stash",
        "store",
        "get",
        "take",
        "pick",
        "grab",
        "lift",
        "fetch",
        "park",
        "plonk",
        "station",
        "settle",
        "stand",
        "sit",
        "go",
        "goes",
        "placed",
        "moved",
        "lower",
        "release",
        "throw",
        "drag",
        "nudge",
        "hand",
        "keep",
        "gather",
        "collect",
        "lean",
        "perch",
        "balance",
    }
)
PICK_VERBS: frozenset[str] = frozenset(
    {"pick", "grab", "take", "lift", "grasp", "hold", "raise", "fetch", "get", "seize", "clutch"}
)
STACK_VERBS: frozenset[str] = frozenset(
    {
        "stack",
        "pile",
        "build",
        "make",
        "form",
        "create",
        "erect",
        "assemble",
        "construct",
        "tower",
        "heap",
        "restack",
        "arrange",
    }
)
TOWER_NOUNS: frozenset[str] = frozenset(
    {"tower", "towers", "stack", "stacks", "pile", "piles", "column", "heap", "heaps", "stacking"}
)
SORT_VERBS: frozenset[str] = frozenset(
    {
        "sort",
        "match",
        "organize",
        "organise",
        "distribute",
        "pair",
        "group",
        "gather",
        "collect",
        "tidy",
        "classify",
    }
)
MATCH_VERBS: frozenset[str] = frozenset({"sort", "match", "pair", "classify"})  # "sort the blocks": by colour
FILL_VERBS: frozenset[str] = frozenset({"fill", "load", "pack"})
COVER_VERBS: frozenset[str] = frozenset({"cover", "top", "cap", "crown"})
CONTAIN_VERBS: frozenset[str] = frozenset(
    {"contain", "contains", "hold", "holds", "have", "has", "keep", "keeps"}
)
# actions the skills cannot do or end states the predicates cannot state
UNSUPPORTED_VERBS: dict[str, str] = {
    "unstack": "taking a tower apart",
    "undo": "undoing an earlier step",
    "remove": "taking things out or away",
    "empty": "emptying a bowl",
    "clear": "clearing things away",
    "throw": "throwing",
    "spin": "spinning things",
    "rotate": "rotating things",
    "flip": "flipping things",
    "turn": "turning things",
    "shake": "shaking things",
    "knock": "knocking things over",
    "break": "breaking things",
    "paint": "painting things",
    "count": "counting",
    "wave": "waving",
    "point": "pointing",
    "push": "pushing things along",
    "swap": "swapping places",
    "switch": "swapping places",
    "exchange": "swapping places",
    "scatter": "scattering things",
    "spread": "spreading things out",
    "line": "lining things up",
    "align": "lining things up",
    "shuffle": "shuffling things",
    "hide": "hiding things",
    "wash": "washing things",
    "clean": "cleaning",
    "open": "opening things",
    "close": "closing things",
    "eat": "eating",
    "destroy": "destroying things",
    "juggle": "juggling",
    "circle": "moving in circles",
    "dance": "dancing",
    "sing": "singing",
    "jump": "jumping",
    "kick": "kicking",
    "squeeze": "squeezing things",
    "look": "looking",
    "find": "finding things",
    "show": "showing things",
    "describe": "describing things",
    "tell": "telling",
    "explain": "explaining",
    "repeat": "repeating an earlier step",
    "reverse": "reversing",
    "separate": "separating things",
    "spell": "spelling words",
    "write": "writing",
    "draw": "drawing shapes",
}
REPORT_VERBS: frozenset[str] = frozenset(
    {
        "say",
        "report",
        "print",
        "output",
        "respond",
        "reply",
        "answer",
        "declare",
        "announce",
        "claim",
        "state",
        "type",
        "echo",
        "return",
    }
)
QUESTION_WORDS: frozenset[str] = frozenset(
    {"what", "where", "which", "who", "whom", "whose", "why", "when", "how"}
)
AUX_QUESTION: frozenset[str] = frozenset(
    {
        "is",
        "are",
        "was",
        "were",
        "does",
        "do",
        "did",
        "has",
        "have",
        "am",
        "isn't",
        "aren't",
        "should",
        "shall",
        "must",
    }
)
MODAL_REQUEST: frozenset[str] = frozenset({"can", "could", "would", "will", "might"})
NEGATIONS: frozenset[str] = frozenset(
    {
        "not",
        "never",
        "without",
        "no",
        "nor",
        "neither",
        "dont",
        "doesnt",
        "shouldnt",
        "mustnt",
        "cannot",
        "cant",
        "nothing",
    }
)
EXCEPT_WORDS: frozenset[str] = frozenset({"except", "excluding", "besides", "apart", "but", "save", "other"})
NUMBERS: dict[str, int] = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
    "single": 1,
    "pair": 2,
    "couple": 2,
    "dozen": 12,
}
ALL_WORDS: frozenset[str] = frozenset({"all", "every", "each", "any", "everything", "entire", "whole"})
CHOICE_WORDS: frozenset[str] = frozenset(
    {"some", "few", "several", "random", "either", "whichever", "any one", "another", "most", "many"}
)
REST_WORDS: frozenset[str] = frozenset({"rest", "remaining", "others", "remainder", "leftover", "leftovers"})
MATCH_WORDS: frozenset[str] = frozenset(
    {
        "matching",
        "matched",
        "match",
        "matches",
        "corresponding",
        "correspond",
        "corresponds",
        "respective",
        "same",
        "own",
        "equivalent",
        "identical",
        "similar",
    }
)
MISMATCH_WORDS: frozenset[str] = frozenset(
    {
        "mismatched",
        "mismatching",
        "mismatch",
        "different",
        "nonmatching",
        "unmatched",
        "wrong",
        "opposite",
        "contrasting",
    }
)
FILLER: frozenset[str] = frozenset(
    {
        "the",
        "a",
        "an",
        "please",
        "kindly",
        "robot",
        "hey",
        "hi",
        "hello",
        "ok",
        "okay",
        "now",
        "then",
        "just",
        "also",
        "too",
        "carefully",
        "gently",
        "slowly",
        "quickly",
        "softly",
        "safely",
        "for",
        "me",
        "us",
        "thanks",
        "thank",
        "you",
        "your",
        "yourself",
        "go",
        "ahead",
        "and",
        "i",
        "we",
        "want",
        "would",
        "like",
        "need",
        "to",
        "should",
        "shall",
        "must",
        "let",
        "lets",
        "try",
        "able",
        "be",
        "could",
        "can",
        "will",
        "so",
        "that",
        "it",
        "of",
        "up",
        "down",
        "over",
        "there",
        "here",
        "this",
        "these",
        "those",
        "my",
        "our",
        "its",
        "their",
        "them",
        "they",
        "is",
        "are",
        "am",
        "was",
        "were",
        "do",
        "does",
        "did",
        "make",
        "sure",
        "ensure",
        "end",
        "ends",
        "ending",
        "finally",
        "first",
        "firstly",
        "next",
        "after",
        "afterwards",
        "afterward",
        "before",
        "once",
        "done",
        "at",
        "right",
        "away",
        "immediately",
        "soon",
        "possible",
        "if",
        "as",
        "well",
        "neatly",
        "nicely",
        "precisely",
        "exactly",
        "very",
        "really",
        "quite",
        "simply",
        "kind",
        "enough",
        "time",
        "task",
        "job",
        "mind",
        "wonder",
        "wondering",
        "appreciate",
        "great",
        "good",
        "cool",
        "awesome",
        "perfect",
        "some",
        "somewhere",
        "where",
        "located",
        "sitting",
        "lying",
        "currently",
        "sits",
        "lies",
        "both",
        "while",
        "whilst",
        "with",
        "onto",
        "into",
        "toward",
        "towards",
        "same",
        "all",
        "in",
        "on",
    }
)
