"""Spatial goals: each predicate's geometric meaning on hand-built states, validation, the goal realisation the
planners follow, the reader's spatial language, the generator's spatial families, and one physical episode."""

from __future__ import annotations

import json

import pytest

from embodied.understanding import GoalReader
from embodied.world.errors import PredicateError, UnknownObjectError
from embodied.world.layout import initial_positions
from embodied.world.predicates import describe, goal_satisfied, holds, same_goal, validate_goal
from embodied.world.scene import LOCATIONS
from embodied.world.spatial import REGIONS, realize, spatial_holds
from embodied.world.symbolic import SymbolicState, parse_point
from embodied.world.tasks import Task
from envs.generator import SPATIAL_FAMILY_NAMES, generate

BLOCKS = ("red block", "blue block", "green block", "yellow block")
BOWLS = ("blue bowl", "red bowl")


def state(**xy: tuple[float, float]) -> SymbolicState:
    """Blocks on the table and bowls at the given points (keyword names use underscores for spaces)."""
    pos = {k.replace("_", " "): v for k, v in xy.items()}
    return SymbolicState(support={b: "table" for b in pos if b.endswith("block")},
                         bowls=tuple(b for b in pos if b.endswith("bowl")), xy=pos)


BASE = dict(red_block=(0.40, 0.00), blue_block=(0.50, 0.20), green_block=(0.60, -0.20), yellow_block=(0.30, -0.10),
            blue_bowl=(0.50, -0.05), red_bowl=(0.62, 0.15))


def test_directional_relations_use_the_table_frame_and_a_45_degree_cone() -> None:
    s = state(**{**BASE, "red_block": (0.50, 0.10)})  # 15 cm to the left (+y) of the blue bowl
    assert holds(["left_of", "red block", "blue bowl"], s)
    assert not holds(["right_of", "red block", "blue bowl"], s)
    s = state(**{**BASE, "red_block": (0.62, 0.03)})  # 8 cm left but 12 cm behind: outside the cone
    assert not holds(["left_of", "red block", "blue bowl"], s)
    assert holds(["behind", "red block", "blue bowl"], s)
    assert holds(["in_front_of", "yellow block", "blue bowl"], state(**BASE))


def test_near_far_between_and_offset() -> None:
    s = state(**BASE)
    assert holds(["near", "red block", "blue bowl"], s)  # 11 cm between centres
    assert not holds(["far_from", "red block", "blue bowl"], s)
    assert holds(["far_from", "green block", "blue block"], s)
    mid = state(**{**BASE, "yellow_block": (0.56, 0.05)})  # the middle of the two bowls
    assert holds(["between", "yellow block", "blue bowl", "red bowl"], mid)
    assert not holds(["between", "red block", "blue bowl", "red bowl"], mid)
    off = state(**{**BASE, "red_block": (0.35, -0.05)})
    assert holds(["offset", "red block", "blue bowl", [-0.15, 0.0]], off)
    assert not holds(["offset", "red block", "blue bowl", [0.15, 0.0]], off)


def test_sides_lines_shapes_and_centring() -> None:
    s = state(red_block=(0.40, 0.20), blue_block=(0.50, 0.20), green_block=(0.60, 0.20))
    assert all(holds(["at", b, "left side"], s) for b in ("red block", "blue block", "green block"))
    names = ["red block", "blue block", "green block"]
    assert holds(["line", names, "vertical"], s) and holds(["line", names, "any"], s)
    assert not holds(["line", names, "horizontal"], s)
    assert not holds(["line", names, "vertical"], state(red_block=(0.40, 0.20), blue_block=(0.50, 0.26),
                                                          green_block=(0.60, 0.20)))
    tri = state(red_block=(0.45, 0.0), blue_block=(0.55, 0.06), green_block=(0.55, -0.06))
    assert holds(["triangle", names], tri) and holds(["centred", names, "middle"], tri)
    assert not holds(["triangle", names], s)  # collinear
    sq = state(red_block=(0.42, 0.05), blue_block=(0.52, 0.05), green_block=(0.52, -0.05), yellow_block=(0.42, -0.05))
    assert holds(["square", list(BLOCKS)], sq)
    bent = state(red_block=(0.42, 0.05), blue_block=(0.52, 0.05), green_block=(0.52, -0.05), yellow_block=(0.36, -0.09))
    assert not holds(["square", list(BLOCKS)], bent)


def test_choices_and_stacked_blocks_take_their_towers_position() -> None:
    s = state(**BASE)
    corners = list(LOCATIONS)[:2]
    placed = s.moved("red block", corners[0]).moved("blue block", corners[1])
    assert holds(["different", ["red block", "blue block"], corners], placed)
    assert not holds(["different", ["red block", "blue block"], corners], s.moved("red block", corners[0]))
    swapped = s.moved("red block", "blue bowl").moved("blue block", "red bowl")
    assert holds(["not_in", "red block", "red bowl"], swapped) and not holds(["not_in", "red block", "blue bowl"],
                                                                             swapped)
    assert holds(["one_of", "red block", ["red bowl", "blue bowl"]], swapped)
    tower = s.moved("yellow block", "red block")  # on the red block at (0.40, 0.00)
    assert holds(["left_of", "yellow block", "blue bowl"], state(**{**BASE, "red_block": (0.50, 0.12)})
                 .moved("yellow block", "red block"))
    assert not holds(["at", "yellow block", "left side"], tower)
    assert not holds(["left_of", "red block", "blue bowl"], s.moved("red block", "hand"))


@pytest.mark.parametrize(("pred", "message"), [
    (["line", ["red block", "blue block"], "slanted"], "orientation"),
    (["triangle", ["red block", "blue block"]], "exactly 3"),
    (["at", "red block", "left sid"], "did you mean 'left side'"),
    (["left_of", "red block", "red block"], "relative to itself"),
    (["offset", "red block", "blue bowl", [0.1]], "[dx, dy]"),
    (["different", ["red block", "blue block"], ["blue bowl"]], "at least as many places"),
    (["near", "red block", "purple bowl"], "not in the scene"),
])
def test_bad_spatial_predicates_are_named(pred: list, message: str) -> None:
    with pytest.raises((PredicateError, UnknownObjectError), match=None) as e:
        validate_goal([pred], list(BLOCKS + BOWLS))
    assert message in str(e.value)


def test_every_spatial_predicate_reads_as_english() -> None:
    goal = [["left_of", "red block", "blue bowl"], ["line", list(BLOCKS[:3]), "diagonal"],
            ["at", "red block", "top side"], ["different", list(BLOCKS[:2]), list(BOWLS)],
            ["offset", "red block", "blue bowl", [0.0, 0.15]]]
    validate_goal(goal, list(BLOCKS + BOWLS))
    assert describe(goal[0]) == "the red block is left of the blue bowl"
    assert "diagonal line" in describe(goal[1]) and "top side" in describe(goal[2])


@pytest.mark.parametrize("goal", [
    [["at", "red block", "left side"], ["at", "green block", "left side"]],
    [["right_of", "blue block", "red bowl"], ["near", "blue block", "red bowl"]],
    [["offset", "red block", "blue bowl", [-0.15, 0.0]]],
    [["line", list(BLOCKS), "vertical"]],
    [["line", list(BLOCKS[:3]), "diagonal"]],
    [["triangle", list(BLOCKS[:3])], ["centred", list(BLOCKS[:3]), "bottom left corner"]],
    [["square", list(BLOCKS)]],
    [["different", list(BLOCKS[:3]), [c for c in LOCATIONS if c.endswith("corner")]]],
    [["stacked", ["red block", "blue block"]], ["at", "red block", "top side"], ["at", "blue block", "top side"]],
])
def test_realised_goals_are_concrete_and_imply_the_spatial_goal(goal: list) -> None:
    s = state(**BASE)
    concrete = realize(goal, s)
    assert concrete is not None
    assert all(p[0] in ("in", "on", "at", "stacked") for p in concrete)
    moved = s
    for p in concrete:  # carry the concrete goal out on the symbols: points, places, then the tower order
        if p[0] == "at" and p[2] not in LOCATIONS:
            moved = moved.moved(p[1], "table", parse_point(p[2]))
        elif p[0] in ("in", "at"):
            moved = moved.moved(p[1], p[2])
    for p in concrete:
        if p[0] == "stacked":
            bottom = next(q[1] for q in concrete if q[0] == "at" and q[1] in p[1])
            for b in p[1]:
                if b != bottom:
                    moved.support[b], moved.xy = bottom, {k: v for k, v in moved.xy.items() if k != b}
                    bottom = b
    assert goal_satisfied(goal, moved)
    assert all(spatial_holds(p, moved, slack=0.015) for p in goal if p[0] != "stacked")


def test_realisation_refuses_a_goal_the_table_cannot_hold_and_passes_plain_goals_through() -> None:
    s = state(**BASE)
    assert realize([["between", "yellow block", "blue bowl", "red bowl"]], s) is None  # bowls 23 cm apart
    plain = [["in", "red block", "blue bowl"]]
    assert realize(plain, s) == plain


OBJECTS = list(BLOCKS + BOWLS) + ["green bowl"]
POSITIONS = {**{k.replace("_", " "): v for k, v in BASE.items()}, "green bowl": (0.35, 0.20)}


@pytest.mark.parametrize(("text", "goal"), [
    ("Put all the blocks on the left side", [["at", b, "left side"] for b in BLOCKS]),
    ("Pick up the block closest to the blue bowl and place it on the top right corner",
     [["at", "red block", "top right corner"]]),
    ("Pick up the second block from the left and place it on the top left corner", [["at", "red block",
                                                                                       "top left corner"]]),
    ("Pick up the red block and place it in the corner closest to the blue bowl", [["at", "red block",
                                                                                    "top right corner"]]),
    ("Pick up the red block and place it a little to the top of the green bowl",
     [["behind", "red block", "green bowl"], ["near", "red block", "green bowl"]]),
    ("put the red block to the left of the rightmost bowl", [["left_of", "red block", "blue bowl"]]),
    ("move the red block 5 cm to the bottom.", [["at", "red block", "0.35,0.00"]]),
    ("put the blocks in a horizontal line near the top.",
     [["line", list(BLOCKS), "horizontal"]] + [["at", b, "top side"] for b in BLOCKS]),
    ("make a triangle with the red, blue and yellow blocks", [["triangle", ["red block", "blue block",
                                                                            "yellow block"]]]),
    ("put the yellow block between the blue bowl and the red bowl", [["between", "yellow block", "blue bowl",
                                                                      "red bowl"]]),
    ("place the green block 15cm to the left of the red bowl", [["offset", "green block", "red bowl", [0.0, 0.15]]]),
    ("Put all the blocks in different corners",
     [["different", list(BLOCKS), [c for c in LOCATIONS if c.endswith("corner")]]]),
    ("put each block in its own corner", [["different", list(BLOCKS), [c for c in LOCATIONS if c.endswith("corner")]]]),
    ("line the blocks up in a row", [["line", list(BLOCKS), "horizontal"]]),
    ("take the block nearest the blue bowl and put it in the green bowl", [["in", "red block", "green bowl"]]),
    ("place the blue block fifteen centimeters above the red bowl", [["offset", "blue block", "red bowl", [0.15, 0.0]]]),
])
def test_the_reader_states_spatial_language_as_goals(text: str, goal: list) -> None:
    reading = GoalReader().read(text, OBJECTS, POSITIONS)
    assert reading.goal is not None, reading.reason
    assert same_goal(reading.goal, goal), reading.goal


def test_referents_by_place_need_positions_and_mismatch_leaves_the_choice_open() -> None:
    reader = GoalReader()
    blind = reader.read("Pick up the block closest to the blue bowl and place it on the top right corner", OBJECTS)
    assert blind.refused and "where" in blind.reason
    reading = reader.read("put the blocks in the bowls with mismatched colors",
                          ["red block", "blue block", "green block", "red bowl", "blue bowl", "green bowl"])
    assert reading.goal is not None and any(p[0] == "different" for p in reading.goal)
    assert {tuple(p) for p in reading.goal if p[0] == "not_in"} == {
        ("not_in", "red block", "red bowl"), ("not_in", "blue block", "blue bowl"),
        ("not_in", "green block", "green bowl")}


@pytest.mark.parametrize("family", SPATIAL_FAMILY_NAMES)
def test_spatial_families_are_valid_reproducible_and_start_false(family: str) -> None:
    for seed in (30_000, 30_001):
        task = generate(family, seed)
        assert json.dumps(task.to_dict()) == json.dumps(generate(family, seed).to_dict())
        Task.from_dict(task.to_dict())
        pos = initial_positions(task.scene, task.seed)
        s = SymbolicState({f"{c} block": "table" for c in task.scene.blocks},
                          tuple(f"{c} bowl" for c in task.scene.bowls), xy=dict(pos))
        assert not goal_satisfied(task.goal, s)
        assert realize(task.goal, s) is not None
        reading = GoalReader().read(task.instruction, task.scene.object_names(), pos)
        assert reading.goal is not None and same_goal(reading.goal, task.goal), (task.instruction, reading)


def test_regions_lie_inside_the_workspace() -> None:
    for (x0, x1), (y0, y1) in REGIONS.values():
        assert 0.25 <= x0 < x1 <= 0.70 and -0.32 <= y0 < y1 <= 0.32


def test_an_oracle_episode_arranges_a_line_with_physics() -> None:
    from embodied.planners.oracle import OracleAgent
    from embodied.runtime.episode import run_episode
    from envs.tabletop import TabletopEnv

    task = generate("line", 30_006)
    env = TabletopEnv()
    try:
        result = run_episode(env, task, OracleAgent())
    finally:
        env.close()
    assert result.outcome == "success", result.reason
    assert result.extra["realized_goal"] != task.goal
    assert all(result.goal_values)
