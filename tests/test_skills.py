"""Primitive skills on real physics: each target kind works, each failure is reported with its reason."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from embodied.world.errors import SkillError
from embodied.world.symbolic import abstract
from skills import Skill, SkillCall, call_text, get_skill, register
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
