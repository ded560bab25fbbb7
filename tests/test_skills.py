"""Primitive skills on real physics: each target kind works, each failure is reported with its reason; the
registry is the one list of skills, and nothing outside skills/ names one."""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from embodied.world.errors import SkillError
from embodied.world.scene import LOCATIONS
from embodied.world.symbolic import abstract
from skills import (
    Skill,
    SkillCall,
    apply,
    call_text,
    candidate_calls,
    get_skill,
    register,
    registered,
    skill_names,
)
from skills.registry import SKILLS
from tests.conftest import make_task


def run(env, name: str, **args: str):
    skill = get_skill(name)
    return skill.execute(env.robot, skill.params(args))


@pytest.fixture
def scene(env):
    task = make_task(["red", "blue", "green"], ["yellow"], [["in", "red block", "yellow bowl"]], seed=11)
    env.reset(seed=11, options={"task": task})
    return env


@pytest.mark.parametrize("target,check", [
    ("yellow bowl", lambda s: s.base("red block") == "yellow bowl"),
    ("blue block", lambda s: s.support["red block"] == "blue block"),
    ("top left corner", lambda s: s.support["red block"] == "top left corner"),
])
def test_pick_and_place_targets(scene, target, check) -> None:
    before = scene.world.object_pose("red block")[0]
    res = run(scene, "pick_and_place", block="red block", target=target)
    assert res.success, res
    assert res.steps > 200  # it moved through physics, it was not teleported
    assert check(abstract(scene.scene_state()))
    assert np.linalg.norm(scene.world.object_pose("red block")[0][:2] - before[:2]) > 0.05


def test_failures_have_reasons(scene) -> None:
    assert run(scene, "place", target="yellow bowl").reason == "hand is empty"
    assert run(scene, "pick_and_place", block="red block", target="blue block").success
    assert run(scene, "pick", block="blue block").reason == "not clear"  # red is on it
    assert run(scene, "pick_and_place", block="green block", target="top right corner").success
    assert run(scene, "pick_and_place", block="red block", target="top right corner").reason == "target occupied"
    assert run(scene, "pick", block="purple block").reason.startswith("no purple block")


def test_missed_grasp_is_reported(scene) -> None:
    """A robot whose observation is 6 cm off closes on air: the skill says so instead of pretending."""

    class OffsetRobot:
        def __init__(self, inner):
            self.inner = inner

        def observe(self):
            s = self.inner.observe()
            o = s.objects["red block"]
            s.objects["red block"] = replace(o, position=(o.position[0] + 0.06, o.position[1], o.position[2]))
            return s

        def __getattr__(self, name):
            return getattr(self.inner, name)

    skill = get_skill("pick")
    res = skill.execute(OffsetRobot(scene.robot), skill.params({"block": "red block"}))
    assert not res.success and res.reason == "missed grasp"


def test_unreachable(env) -> None:
    task = make_task(["red"], [], [["at", "red block", "middle"]], seed=2)
    env.reset(seed=2, options={"task": task})
    # knock the block far out of reach with physics (a push, not a teleport)
    import pybullet as p

    body = env.world.bodies["red block"]
    p.resetBaseVelocity(body, [3.0, 0, 0], physicsClientId=env.world.client)
    env.world.step(480)
    assert run(env, "pick", block="red block").reason in ("unreachable", "block is not resting")


def test_registry() -> None:
    with pytest.raises(SkillError, match="already registered"):
        @register
        class Dup(Skill):
            name = "pick"
            description = "again"
    with pytest.raises(SkillError, match="did you mean 'pick'"):
        get_skill("pik")
    with pytest.raises(SkillError, match="missing"):
        get_skill("pick_and_place").params({"block": "red block"})
    assert call_text(SkillCall("pick_and_place", {"block": "red block", "target": "green bowl"})) == \
        "pick up the red block and place it in the green bowl"
    assert call_text(SkillCall("done")) == "done"


# ----------------------------------------------------------------------------- the registry is the one list
REPO = Path(__file__).resolve().parents[1]


def _skill_classes_in_files() -> dict[str, str]:
    """Every concrete Skill subclass defined in a file of skills/, as ``"module:Class"`` -> its name."""
    out = {}
    for path in sorted((REPO / "skills").glob("*.py")):
        module = importlib.import_module(f"skills.{path.stem}")
        for attr, obj in vars(module).items():
            if (isinstance(obj, type) and issubclass(obj, Skill) and obj is not Skill
                    and obj.__module__ == module.__name__):
                out[f"{module.__name__}:{attr}"] = obj.name
    return out


def test_registry_list_is_the_only_list() -> None:
    assert [s.name for s in registered()] == [_skill_classes_in_files()[e] for e in SKILLS]
    assert set(_skill_classes_in_files()) == set(SKILLS)  # no skill class left out of the list
    assert skill_names() == sorted(s.name for s in registered())
    for path in (REPO / "skills").glob("*.py"):  # nothing registers itself on import
        if path.name != "registry.py":
            assert "register(" not in path.read_text(), path


def test_duplicate_names_are_errors() -> None:
    with pytest.raises(SkillError, match="already registered"):
        register("skills.pick:Pick")

    class Stop(Skill):
        name = "done"
        description = "stop"

    with pytest.raises(SkillError, match="already registered"):
        register(Stop)
    with pytest.raises(SkillError, match="module:Class"):
        register("skills.pick")
    assert [s.name for s in registered()] == [_skill_classes_in_files()[e] for e in SKILLS]


def test_option_set_and_texts_unchanged() -> None:
    """Exactly the options (and texts, which a LoRA adapter was trained on) the planners had before the
    registry owned them: a place per target while holding, else a pick-and-place per block and target."""
    from embodied.world.scene import LOCATION_NAMES, ObjectState, SceneState

    objs = {n: ObjectState(n, n.split()[1], n.split()[0], (0.4, 0.0, 0.645))  # type: ignore[arg-type]
            for n in ("red block", "blue block", "green bowl")}
    targets = ["red block", "blue block", "green bowl", *LOCATION_NAMES]
    free = candidate_calls(SceneState(objects=objs))
    assert [c.to_dict() for c in free] == [{"skill": "pick_and_place", "args": {"block": b, "target": t}}
                                           for b in ("red block", "blue block") for t in targets if t != b]
    assert [call_text(c) for c in free][:4] == [
        "pick up the red block and place it on the blue block", "pick up the red block and place it in the green bowl",
        "pick up the red block and place it at the top left corner",
        "pick up the red block and place it at the top right corner"]
    held = candidate_calls(SceneState(objects=objs, held="red block"))
    assert [c.to_dict() for c in held] == [{"skill": "place", "args": {"target": t}} for t in targets
                                           if t != "red block"]
    assert [call_text(c) for c in held][:3] == ["place it on the blue block", "place it in the green bowl",
                                                "place it at the top left corner"]
    assert call_text(SkillCall("pick", {"block": "red block"})) == "pick up the red block"
    # a goal without points adds nothing
    assert candidate_calls(SceneState(objects=objs), [["at", "red block", "middle"]]) == free


def test_symbolic_apply_dispatches_to_effects() -> None:
    from embodied.world.symbolic import SymbolicState

    s = SymbolicState({"red block": "table", "blue block": "table"}, ("green bowl",))
    assert apply(s, SkillCall("done")) == (s, None)
    assert apply(s, SkillCall("fly", {}))[1] == "unknown skill 'fly'"
    assert "missing" in apply(s, SkillCall("pick", {}))[1]
    nxt, why = apply(s, SkillCall("pick_and_place", {"block": "red block", "target": "green bowl"}))
    assert why is None and nxt.support["red block"] == "green bowl" and s.support["red block"] == "table"
    held, _ = apply(s, SkillCall("pick", {"block": "red block"}))
    assert held.held == "red block" and apply(held, SkillCall("pick", {"block": "blue block"}))[1].startswith("hand")
    placed, why = apply(held, SkillCall("place", {"target": "top left corner"}))
    assert why is None and placed.held is None and placed.support["red block"] == "top left corner"
    assert placed.xy["red block"] == LOCATIONS["top left corner"]


def _skill_name_literals(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """String constants equal to a skill name, or spelling ``api.<name>(``, outside docstrings."""
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    api_call = re.compile(r"\bapi\.(" + "|".join(map(re.escape, names)) + r")\(")
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
            and (n.value in names or api_call.search(n.value))]


# English words that happen to spell a skill name, not references to the skill: (file, word) -> count
WORDS = {("embodied/training/planner.py", "place"): 1}  # "put" -> "place" in the instruction rewording table
ENGLISH = ("embodied/understanding/",)  # the reader's lexicon and grammar: "pick" and "place" as English verbs


def test_no_module_outside_skills_names_a_skill() -> None:
    """Skills are named only in skills/: everyone else reads them from the registry (or the class)."""
    names = set(skill_names())
    found: dict[tuple[str, str], int] = {}
    for path in sorted(REPO.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.split("/")[0] in ("skills", "tests") or any(p.startswith(".") for p in rel.split("/")) \
                or rel.startswith(ENGLISH):
            continue
        for _, value in _skill_name_literals(ast.parse(path.read_text(encoding="utf-8")), names):
            found[(rel, value)] = found.get((rel, value), 0) + 1
    assert {k: v for k, v in found.items() if WORDS.get(k) != v} == {}
