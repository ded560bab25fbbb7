"""Code as Policies: programs written from tasks reach their goals, the planner checks a program before it runs,
rewrites once after a failure, counts outcomes by kind, and a program runs with real physics."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from embodied.planners.code import CodePlanner, CodePlannerConfig, _body, outcome_kind
from embodied.planners.programs import example_bank, prompt_for, retrieve, write_program
from embodied.planners.prompting import initial_state
from embodied.training.code import build_dataset, dry_run_reaches_goal
from envs.generator import FAMILY_NAMES, SPATIAL_FAMILY_NAMES, generate


class ScriptedLM:
    """Writes the given continuations in turn (a stand-in for a model: the planner's logic is under test)."""

    name = "scripted"

    def __init__(self, programs: Sequence[str]) -> None:
        self.programs = list(programs)
        self.prompts: list[str] = []

    def generate(self, prompt: str, max_new_tokens: int = 32, stop: Sequence[str] = ()) -> str:
        self.prompts.append(prompt)
        return self.programs.pop(0) if self.programs else ""


@pytest.mark.parametrize("family", FAMILY_NAMES + SPATIAL_FAMILY_NAMES)
def test_written_programs_reach_the_goal_in_a_dry_run(family: str) -> None:
    reached = 0
    for seed in range(41_000, 41_004):
        task = generate(family, seed)
        sym = initial_state(task)
        body = write_program(task, sym)
        assert body is not None, task.instruction
        reached += dry_run_reaches_goal(task, body, sym)
    assert reached >= 3, family  # free_point can push a relation or a shape off its tolerance, rarely


def test_referent_programs_compute_the_referent_instead_of_naming_it() -> None:
    task = next(t for t in (generate("referent", s) for s in range(41_000, 41_040))
                if "closest" in t.instruction or "farthest" in t.instruction)
    body = write_program(task)
    assert "block = m" in body and "api.distance" in body, body


def test_retrieval_and_training_pairs() -> None:
    bank = example_bank()
    assert len({e.instruction for e in bank}) > 100
    shots = retrieve("put the red block to the left of the blue bowl", bank, 3)
    assert any("left" in e.instruction for e in shots)
    data = build_dataset(24)
    assert len(data) >= 20 and all(p.endswith("def program(api):\n") and b.startswith("    ") for p, b in data)


def test_a_refused_program_is_rewritten_once_then_the_planner_gives_up() -> None:
    task = generate("side_one", 30_000)
    bad = "    import os\n    os.system('ls')\n"
    lm = ScriptedLM([bad, bad])
    planner = CodePlanner(CodePlannerConfig(examples=0, rewrites=1, adapter="none"), lm=lm)
    planner.reset(task)
    from embodied.world.scene import SceneState

    decision = planner.step(SceneState())
    assert decision.call is None and "import" in decision.reason
    assert len(lm.prompts) == 2 and "the last program failed" in lm.prompts[1]
    info = planner.episode_info()
    assert info["program_outcomes"] == {"rule": 2}


def test_outcome_kinds_and_bodies() -> None:
    assert outcome_kind("step budget exceeded (100000 lines)") == "budget"
    assert outcome_kind("skill raised TypeError: bad") == "error"
    assert outcome_kind("goal unmet") == "goal_unmet"
    assert outcome_kind("missed grasp") == "primitive"
    assert _body(" x = 1\n    api.pick('red block')\nprint(2)\n") == "    x = 1\n    api.pick('red block')\n"
    assert prompt_for("stack them", ["red block"]).endswith("def program(api):\n")


def test_a_written_program_runs_with_physics_and_the_episode_is_judged_on_the_goal() -> None:
    from embodied.runtime.episode import run_episode
    from envs.tabletop import TabletopEnv

    task = generate("relation", 30_002)
    body = write_program(task)
    lm = ScriptedLM([body])
    planner = CodePlanner(CodePlannerConfig(examples=0, rewrites=1, adapter="none"), lm=lm)
    env = TabletopEnv()
    try:
        result = run_episode(env, task, planner)
    finally:
        env.close()
    assert result.outcome == "success", (result.reason, body)
    assert result.extra["program_outcomes"] == {"ok": 1}, (result.extra["programs"], result.steps)
    assert result.steps and all(s.get("via") == "program" for s in result.steps)
    assert task.instruction in lm.prompts[0]  # the model reads what was said, not the realised goal


def test_the_run_table_shows_a_written_program() -> None:
    from rich.console import Console

    from embodied.cli import _step_table
    from embodied.planners.base import Decision
    from embodied.planners.code import Program, ProgramRecord
    from skills import SkillCall

    source = 'def program(api):\n    api.pick_and_place("red block", "middle")\n'
    decision = Decision(SkillCall("program", {}), skill=Program(ProgramRecord(source)), note="program:\n" + source)
    console = Console(width=120, record=True)
    console.print(_step_table(0, decision, None))
    text = console.export_text()
    assert "run the written program" in text and 'api.pick_and_place("red block", "middle")' in text
