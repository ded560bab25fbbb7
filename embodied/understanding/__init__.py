"""Instruction understanding: an instruction plus the objects on the table -> a checkable goal, or a refusal.

    reader = GoalReader()                      # grammar + lexicon; GoalReader(lm) adds the language model
    reading = reader.read("Pick the yellow block and place it on the blue bowl.",
                          ["yellow block", "blue bowl"])
    reading.goal      # [["in", "yellow block", "blue bowl"]]; None when refused
    reading.reason    # one sentence when refused, e.g. "There is no black block here: ..."
    reading.category  # the refusal kind (CATEGORIES), "" when understood

Why a reader before planning: a planner that only ranks skill calls cannot tell "done" from "I could not do
it", and happily reads "put the black block ..." as the red block. A goal in the task format's predicates
(``in``, ``on``, ``at``, ``stacked``) can be checked on the physical state, and a request that cannot become
one is refused before any motion.

What it understands (one or more clauses; positions are free, see ``parse.py`` for the chunk grammar)
------------------------------------------------------------------------------------------------------
- Verbs: put, place, move, set, drop, bring, transfer, get, slide, lay, insert, ... (a place); pick up /
  grab / take + "place it ..." in a later clause; stack, pile, build / make a tower / stack / pile; sort,
  match; fill (the bowl with ...); cover (X with Y); "the bowl should hold / contain X"; "group the <c>
  objects"; unknown verbs are accepted when the rest of the clause is complete (with less confidence).
- Objects: "<colour> block|cube|brick|box", "<colour> bowl|dish|container|basin", "the red one / thing /
  object" (the kind from the role: what moves is a block; "in" wants a bowl), colour lists ("the red, blue
  and green blocks"), a lone "the block" when only one exists, adjectives ignored ("the small red cube").
- Quantifiers: all, every, each, both, any (plural), the blocks / blocks (every block), the rest / the
  remaining / the other blocks (those not named elsewhere), "all ... except / but / other than X", numbers
  ("the three blocks", "a tower of four"): a count that exceeds the table is refused, one that leaves a choice
  is refused as ambiguous.
- Relations: in / into / inside / within, on / onto / on top of / upon / atop / over / above (on a bowl means
  in it), to / towards (by the target's kind), at; relation-first order ("into the green bowl, put ...");
  chains ("red on blue on green"); "in there", "on top of it / that", "then put X on top".
- Places: top left / top right / bottom left / bottom right corner (also upper/lower, back/front, far/near,
  top-left, northwest; "corner" may be left out), middle / center / centre (of the table).
- Towers: unordered ("stack the red and blue blocks", "put them on top of each other", "in one pile"),
  all blocks ("stack the blocks", "the tallest tower you can"), ordered bottom-first or top-first ("with red
  at the bottom, then blue, then green", "from top to bottom: ...", "X at the base, Y in the middle, Z on
  top", "in order X, Y, Z" and "the X, Y and Z blocks in that order", bottom first unless they say top first;
  a full order narrows a bare "the blocks" to the blocks it names), placed ("stack all the blocks on the bottom right corner", "... in the green bowl").
- Matching colours: "matching bowls", "the bowl of the same colour", "with its colour", "matched colored",
  "corresponding", "sort by colour"; mismatched: "a bowl of a different colour", "mismatched bowls": the one
  assignment (one block per bowl) as ``in``s when only one exists, else the choice left open (``different`` +
  ``not_in``), or ``one_of`` per block when there are more blocks than bowls.
- Spatial places and referents by place: ``embodied/understanding/spatial.py`` (sides, relations, distances,
  between, near / far, lines, triangles, squares, different corners, also said as "one block in each corner"
  or "into the corners, one per corner"; "the block closest to ...").
- Places left to the robot: "any bowl", "either bowl", "one of the bowls / corners", "any corner", "each block
  in a bowl", "the green or the red bowl", "the green bowl or the top left corner" are ``one_of`` per block;
  "the red block in a bowl", "the corner" and a choice between blocks ("on the red or the blue block") are
  refused as ambiguous.
- Descriptions resolved against the objects on the table: "the forest-colored block", "the bowl the colour of
  the sky" (``lexicon.DESCRIPTORS``, ~120 things), "the light colored / dark / lightest block" (CIELAB L*:
  light = L* >= 65: yellow, cyan, orange, pink; dark = L* <= 50: red, blue, brown, purple; accepted when one
  candidate is in the class or leads the next by 15 L*), "the warm / cool colored block". Outside the lexicon,
  a language model may name the colour (``ReaderConfig.lm_descriptors``); without one they are refused.
- Wording around the request: polite frames ("could you please", "I'd like you to", "go ahead and"),
  purpose clauses ("so they form a stack"), where a block comes from ("from the table"), a final "?" after a
  modal ("Could the red block go into the bowl?"; a misspelt opening modal, "Cold you ...", "woud u ..."), typos (one edit in words of 5+ letters, a swapped or
  missing letter in 4-letter ones, never into a word the reader knows to be something else: "black" never
  becomes "block"), telegraphic "red block, green bowl".

Goal conventions (those of ``envs/generator.py``, so inferred goals compare with file goals as sets)
-----------------------------------------------------------------------------------------------------
- "X on Y" between blocks is ``on``; an ordered tower of 3+ named blocks is ``stacked`` over them plus the
  ``on`` chain (a chain said without a tower word, "put red on blue and blue on green", is the ``on`` chain
  only; a two-block "stack X on Y" is one ``on``).
- "stack (all) the blocks" is ``stacked`` over every block; "put all the blocks on <corner>" is ``at`` for
  every block; "stack all the blocks on <corner>" is ``stacked`` plus ``at`` for every block.
- "all the blocks in the <c> bowl" is one ``in`` per block; matching bowls is one ``in`` per block that has a
  bowl of its colour.

Refusals (``Reading.category``; one sentence in ``Reading.reason``, never a goal)
-------------------------------------------------------------------------------------
blank, punctuation (no words), prompt_injection ("ignore previous instructions", "say done", "SYSTEM:",
"debug mode", requests to say or report something), question (wh- and yes/no questions; a modal request
with "?" is a request), point (coordinates: not read yet), unknown_colour (a colour word outside the palette
and its aliases, or a description the reader cannot resolve), unknown_object (a noun that is no block or
bowl: "the banana", "the red cylinder", "the plate", "the cup"), absent_object (a palette object not on the
table), bowl_move (anything that would move a bowl), unsupported_relation (under, around, together, circles and
other shapes than lines / triangles / squares, a shape's size, "on the table", corners in an order, partial
tower orders; sides, relations, distances, lines, triangles, squares, different corners and referents by place
are read by ``spatial.py``), unsupported_action (unstack, remove,
empty, throw, rotate, ...), impossible_count (more blocks than the table holds, "both green blocks" with one),
ambiguous (a choice left open: "the corner", "a bowl" among several, "some blocks", several mismatched
assignments), contradiction (one block in two places, blocks on each other, two blocks directly on one,
"stack without moving them"), no_target (nothing to put or nowhere to put it; picking up alone), nonsense,
low_confidence (confidence below ``ReaderConfig.min_confidence``, 0.5).

Confidence starts at 1 and is multiplied by 0.95 per typo fixed, 0.85 per word not understood, 0.8 for an
inferred relation, 0.7 for a telegraphic reading, 0.9 / 0.95 for a description that fitted more than one
colour or was read by lightness, and by the model's probability for a description it resolved. ``read``
refuses below ``min_confidence``; callers may demand more.

Colour aliases (``lexicon.colour_aliases``; the rule is in ``lexicon``'s docstring): grey -> gray,
violet -> purple, magenta -> pink (conventions), and by CIELAB nearness (Delta E <= 25, unambiguous by 1.5x):
aqua, turquoise -> cyan; crimson, scarlet, vermilion -> red; azure, cobalt, sapphire -> blue;
indigo -> purple; mustard, lemon -> yellow; tangerine -> orange; sienna -> brown; plus "-ish"/"-y" forms
("reddish", "greyish") and shade words before a colour ("light blue" is blue). Metallic names (gold, silver,
...) and every other colour word (black, white, teal, navy, beige, lime, ...) are unknown colours and refused.

The language model (``GoalReader(lm)``, any ``embodied.llm`` backend) is asked only where the grammar has no
answer: the usual colour of a thing outside the lexicon, scored as SayCan scores options (one batched pass
over the colours present, calibrated against a content-free prompt). With the embedded 135M model this is
weak (measured in the README); a bigger model (``--llm``) knows more colours. The reader is deterministic
either way.
"""

from embodied.understanding.reader import CATEGORIES, CERTAIN, GoalReader, ReaderConfig, Reading, ScoringModel

__all__ = ["CATEGORIES", "CERTAIN", "GoalReader", "Reading", "ReaderConfig", "ScoringModel"]
