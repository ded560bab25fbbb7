"""The world vocabulary: pure (nothing heavy, nothing else of the project), seed ranges disjoint, the
proprioception layout named."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from embodied.world import seeds
from embodied.world.observation import PROPRIO_DIM, PROPRIO_SLICES, pack_proprio, proprio_field


def test_seed_ranges_never_overlap_and_cover_the_benchmarks():
    for a, b in itertools.combinations(seeds.SEED_RANGES, 2):
        assert a.stop <= b.start or b.stop <= a.start, (a, b)
    assert all(r.start < r.stop for r in seeds.SEED_RANGES)
    from embodied.world.tasks import load_tasks

    for name in ("generated_100", "long_horizon_30", "paraphrases", "novel_wording", "choice_wording"):
        assert all(t.seed in seeds.EVALUATION for t in load_tasks(f"benchmarks/{name}.jsonl")), name


def test_seed_range_check_names_the_range():
    seeds.VQA_HELDOUT.check(700_000, 40)
    with pytest.raises(ValueError, match="embodied-question"):
        seeds.VQA_HELDOUT.check(999_990, 40)


def test_proprio_layout_round_trips():
    parts = {"joint_positions": np.arange(7), "joint_velocities": np.arange(7) + 10, "ee_position": [1, 2, 3],
             "ee_quaternion": [0, 0, 0, 1], "finger_gap": 0.04}
    vec = pack_proprio(**parts)
    assert vec.shape == (PROPRIO_DIM,) == (22,)
    assert np.allclose(proprio_field(vec, "ee_position"), [1, 2, 3])
    assert np.isclose(proprio_field(vec, "finger_gap")[0], 0.04)
    assert PROPRIO_SLICES["finger_gap"] == slice(21, 22)
    with pytest.raises(KeyError, match="ee_position"):
        pack_proprio(joint_positions=np.zeros(7))


def test_vocabulary_imports_nothing_heavy_and_skills_policies_stay_off_the_simulator():
    code = ("import sys, embodied.world.scene, embodied.world.symbolic, embodied.world.predicates, "
            "embodied.world.tasks, embodied.world.observation, embodied.world.seeds, skills, policies; "
            "print(sorted(m for m in ('pybullet', 'gymnasium', 'open3d', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_describe_goal_says_a_full_tower_order_in_the_order_giving_wording():
    """A read goal reaches SayCan as text: a fully ordered tower must read as one order, bottom first, and
    the text must read back to the same goal."""
    from embodied.understanding import GoalReader
    from embodied.world.predicates import describe_goal, same_goal

    goal = [["stacked", ["purple block", "blue block", "red block"]], ["on", "blue block", "purple block"],
            ["on", "red block", "blue block"]]
    text = describe_goal(goal)
    assert text == "build a tower with the purple block at the bottom, then blue, then red on top"
    objects = ["purple block", "blue block", "red block", "green block", "red bowl"]
    assert same_goal(GoalReader().read(text, objects).goal, goal)
    partial = [["stacked", ["purple block", "blue block", "red block"]], ["on", "blue block", "purple block"]]
    assert describe_goal(partial) == "stack the purple, blue and red blocks and put the blue block on the purple block"
