"""The task file format (errors name the line and the fix) and the task generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embodied.world.errors import TaskError
from embodied.world.predicates import goal_satisfied, validate_goal
from embodied.world.scene import MAX_BLOCKS, MAX_BOWLS
from embodied.world.symbolic import SymbolicState
from embodied.world.tasks import SceneSpec, Task, default_max_steps, goal_blocks, load_tasks, save_tasks
from envs.generator import FAMILY_NAMES, generate, generate_suite

GOOD = {"id": "t1", "instruction": "put the red block in the green bowl",
        "scene": {"blocks": ["red", "blue"], "bowls": ["green"]},
        "goal": [["in", "red block", "green bowl"]], "seed": 3, "max_steps": 6}


def initial_state(task: Task) -> SymbolicState:
    """The state every episode starts from: each block resting on the table."""
    return SymbolicState({f"{c} block": "table" for c in task.scene.blocks},
                         tuple(f"{c} bowl" for c in task.scene.bowls))


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_round_trip(tmp_path: Path) -> None:
    tasks = generate_suite(25, seed=7) + [Task.from_dict(GOOD)]
    path = tmp_path / "sub" / "suite.jsonl"
    save_tasks(tasks, path)
    loaded = load_tasks(path)
    assert loaded == tasks
    assert [t.to_dict() for t in loaded] == [t.to_dict() for t in tasks]


def test_optional_keys_comments_and_blank_lines(tmp_path: Path) -> None:
    d = {k: GOOD[k] for k in ("id", "instruction", "scene", "goal")}
    path = write(tmp_path, "# a comment", "", json.dumps(d), "   ", "  # indented comment")
    (task,) = load_tasks(path)
    assert task.seed == 0 and task.family is None
    assert task.max_steps == default_max_steps(task.goal) == 4
    assert task.scene.object_names() == ["red block", "blue block", "green bowl"]
    assert "family" not in task.to_dict()


def bad(**changes: object) -> str:
    d = {**GOOD, **changes}
    return json.dumps({k: v for k, v in d.items() if v is not DROP})


DROP = object()

BAD_LINES = [
    ('{"id": "t2", "instruction": ', "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (bad(goal=DROP), "missing key 'goal'"),
    (bad(instrucion="x"), "unknown key 'instrucion' (did you mean 'instruction'?)"),
    (bad(seed="3"), "'seed' must be a non-negative integer, got '3'"),
    (bad(seed=-1), "'seed' must be a non-negative integer"),
    (bad(max_steps=0), "'max_steps' must be a positive integer"),
    (bad(id=5), "'id' must be a non-empty string"),
    (bad(instruction=""), "'instruction' must be a non-empty string"),
    (bad(family=3), "'family' must be a string"),
    (bad(scene=["red"]), "'scene' must be an object"),
    (bad(scene={"blocks": "red", "bowls": ["green"]}), "scene.blocks must be a list of colours"),
    (bad(scene={"blocks": ["red"], "bowl": ["green"]}), "unknown scene key 'bowl' (did you mean 'bowls'?)"),
    (bad(scene={"bowls": ["green"]}), "missing key 'blocks'"),
    (bad(scene={"blocks": ["rde", "blue"], "bowls": ["green"]}), "unknown colour 'rde' (did you mean 'red'?)"),
    (bad(scene={"blocks": ["red", "red"], "bowls": ["green"]}), "'red' twice"),
    (bad(scene={"blocks": ["red", "blue", "green", "yellow", "pink", "cyan", "gray"], "bowls": ["green"]}),
     "more objects than fit on the table: at most 6 blocks and 4 bowls"),
    (bad(scene={"blocks": ["red"], "bowls": ["green", "blue", "red", "pink", "gray"]}),
     "more objects than fit on the table"),
    (bad(goal=[["in", "yellow block", "green bowl"]]), "'yellow block', which is not in the scene"),
    (bad(goal=[["onn", "red block", "blue block"]]), "unknown predicate 'onn' (did you mean 'on'?)"),
    (bad(goal=[["in", "red block"]]), "'in' takes two arguments"),
    (bad(goal=[]), "goal must be a non-empty list"),
]


@pytest.mark.parametrize(("line", "hint"), BAD_LINES)
def test_bad_line_names_line_and_problem(tmp_path: Path, line: str, hint: str) -> None:
    path = write(tmp_path, json.dumps(GOOD), "# comment", line)
    with pytest.raises(TaskError) as err:
        load_tasks(path)
    message = str(err.value)
    assert message.startswith(f"{path}:3: "), message
    assert hint in message, message


def test_duplicate_id(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(GOOD), "", json.dumps(GOOD))
    with pytest.raises(TaskError, match=r":3: duplicate task id 't1' \(first used on line 1\)"):
        load_tasks(path)


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# only a comment", "")
    with pytest.raises(TaskError, match=rf"^{path}:\d+: empty task file"):
        load_tasks(path)
    with pytest.raises(TaskError, match="cannot read task file"):
        load_tasks(tmp_path / "nope.jsonl")


def test_scene_spec_and_goal_blocks() -> None:
    spec = SceneSpec(["red", "blue"], ["green"])
    assert SceneSpec.from_dict(spec.to_dict()) == spec
    goal = [["stacked", ["red block", "blue block"]], ["on", "blue block", "red block"], ["at", "red block", "middle"]]
    assert goal_blocks(goal) == ["red block", "blue block"]
    assert default_max_steps(goal) == 6


# ---------------------------------------------------------------------- generator
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_tasks_are_valid_and_not_done(family: str) -> None:
    for seed in range(40):
        task = generate(family, seed)
        assert task.id == f"{family}-{seed}" and task.seed == seed and task.family == family
        assert Task.from_dict(task.to_dict()) == task  # passes every file-format check
        validate_goal(task.goal, task.scene.object_names())
        assert len(task.scene.blocks) <= MAX_BLOCKS and len(task.scene.bowls) <= MAX_BOWLS
        assert not goal_satisfied(task.goal, initial_state(task))
        assert task.max_steps == 2 * len(goal_blocks(task.goal)) + 2
        assert task.instruction and task.instruction == task.instruction.strip()


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_generator_is_deterministic_and_varied(family: str) -> None:
    assert generate(family, 11) == generate(family, 11)
    assert len({json.dumps(generate(family, s).to_dict()["goal"]) for s in range(20)}) > 5
    assert len({generate(family, s).instruction for s in range(30)}) > 3


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_distractors(family: str) -> None:
    for seed in range(10):
        bare = generate(family, seed, n_distractors=0)
        named = {n for p in bare.goal for n in (p[1] if p[0] == "stacked" else p[1:]) if n.endswith(("block", "bowl"))}
        assert set(bare.scene.object_names()) == named
        full = generate(family, seed, n_distractors=20)  # clipped to what fits
        assert len(full.scene.bowls) == MAX_BOWLS
        # families whose wording covers every block ("all the blocks", "each block") get no extra blocks
        covers_all = family in ("all_in_bowl", "matching_bowls", "stack_all", "ordered_tower")
        assert len(full.scene.blocks) == (len(goal_blocks(full.goal)) if covers_all else MAX_BLOCKS)


def test_family_semantics() -> None:
    for seed in range(20):
        t = generate("matching_bowls", seed)
        assert all(p[0] == "in" and p[1].split()[0] == p[2].split()[0] for p in t.goal)
        assert {p[1] for p in t.goal} == {f"{c} block" for c in t.scene.blocks}
        t = generate("all_in_bowl", seed)
        assert {p[1] for p in t.goal} == {f"{c} block" for c in t.scene.blocks} and len({p[2] for p in t.goal}) == 1
        t = generate("stack_all", seed)
        assert set(t.goal[0][1]) == {f"{c} block" for c in t.scene.blocks}
        t = generate("ordered_tower", seed)
        tower = t.goal[0][1]
        assert t.goal[1:] == [["on", tower[i + 1], tower[i]] for i in range(len(tower) - 1)]
        assert 3 <= len(tower) <= 4 and tower[0].split()[0] in t.instruction
        t = generate("combo", seed)
        assert len(t.goal) == 2
        subjects = [goal_blocks([p]) for p in t.goal]
        assert not set(subjects[0]) & set(subjects[1])
    assert generate("block_in_bowl", 0, n_distractors=0).to_dict()["goal"][0][0] == "in"


def test_unknown_family_and_bad_arguments() -> None:
    with pytest.raises(TaskError, match=r"unknown task family 'stack_too' \(did you mean 'stack_two'\?\)"):
        generate("stack_too", 0)
    with pytest.raises(TaskError, match="unknown task family"):
        generate_suite(5, 0, ["block_in_bowl", "ordred_tower"])
    with pytest.raises(TaskError, match="seed"):
        generate("combo", -1)
    with pytest.raises(TaskError, match="n_distractors"):
        generate("combo", 0, n_distractors=-1)


def test_suite_covers_every_family() -> None:
    suite = generate_suite(len(FAMILY_NAMES) * 3, seed=100)
    assert {t.family for t in suite} == set(FAMILY_NAMES)
    assert [t.family for t in suite[:len(FAMILY_NAMES)]] == list(FAMILY_NAMES)
    assert len({t.id for t in suite}) == len(suite)
    assert suite == generate_suite(len(FAMILY_NAMES) * 3, seed=100)
    assert all(generate(t.family, t.seed) == t for t in suite)  # each task reproducible from its id
    assert [t.family for t in generate_suite(4, 0, ["stack_two", "combo"])] == ["stack_two", "combo"] * 2
