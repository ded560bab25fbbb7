"""`embodied/Crafter-v0`: Gymnasium's checks, the same episode from the same seed (crafter alone is not
deterministic), a description whose directions are exact, and the body's primitives up the tech tree."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("crafter")

import envs  # noqa: E402, F401 - registers the environments
from envs.crafter import ACTIONS, MOVES, CrafterBody, CrafterEnv  # noqa: E402

ROLLOUT = """
import hashlib, numpy as np, gymnasium as gym, envs
env = gym.make("embodied/Crafter-v0")
h = hashlib.sha256()
obs, _ = env.reset(seed=11)
rng = np.random.default_rng(0)
for _ in range(1500):
    obs, r, term, trunc, info = env.step(int(rng.integers(17)))
    h.update(obs["image"].tobytes()); h.update(obs["text"].encode())
    if term or trunc:
        obs, _ = env.reset(seed=12)
print(h.hexdigest())
"""


def test_gymnasium_checks_pass() -> None:
    from gymnasium.utils.env_checker import check_env

    env = gym.make("embodied/Crafter-v0").unwrapped
    check_env(env)
    assert env.action_space.n == len(ACTIONS) == 17


@pytest.mark.slow
def test_the_same_seed_and_actions_give_the_same_episode_across_processes() -> None:
    """Crafter on its own differs between processes here (its creatures live in sets ordered by memory
    address); the wrapper's ordered chunks make the runs identical."""
    runs = {subprocess.run([sys.executable, "-c", ROLLOUT], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(runs) == 1
    here = hashlib.sha256()
    env = gym.make("embodied/Crafter-v0")
    obs, _ = env.reset(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(1500):
        obs, _, term, trunc, _ = env.step(int(rng.integers(17)))
        here.update(obs["image"].tobytes())
        here.update(obs["text"].encode())
        if term or trunc:
            obs, _ = env.reset(seed=12)
    assert here.hexdigest() + "\n" in runs
    assert not np.array_equal(env.reset(seed=1)[0]["image"], env.reset(seed=2)[0]["image"])


def test_the_description_gives_exact_steps_to_what_is_in_view() -> None:
    env = CrafterEnv()
    checked = 0
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        x, y = (int(v) for v in env.player.pos)
        nearest = re.search(r"Nearest in view: (.*)\.", obs["text"])
        assert "Health 9" in obs["text"] and "Inventory: empty." in obs["text"]
        for part in (nearest.group(1).split("; ") if nearest else []):
            thing, rest = part.split(" ", 1)
            dx = dy = 0
            for n, word in re.findall(r"(\d+) (left|right|up|down)", rest):
                mx, my = MOVES[word]
                dx, dy = dx + mx * int(n), dy + my * int(n)
            material, kind = env.tile((x + dx, y + dy))
            assert thing in (material, kind), (seed, part)
            checked += 1
    assert checked >= 6


def test_the_body_climbs_to_a_wooden_pickaxe_on_what_it_has_seen() -> None:
    for seed in (0, 1, 2):
        env = CrafterEnv()
        env.reset(seed=seed)
        body = CrafterBody(env)
        for _ in range(5):
            why = body.collect("tree")
            for _ in range(10):
                if not why or "seen" not in why and "no way" not in why:
                    break
                body.explore()
                why = body.collect("tree")
            assert why is None, why
        assert body.place("table") is None
        assert body.make("wood_pickaxe") is None
        assert body.achievements["make_wood_pickaxe"] == 1 and env.steps < 150
        assert body.make("iron_pickaxe") is not None  # no furnace, no iron: refused with a reason
        assert set(body.seen) <= {(x, y) for x in range(64) for y in range(64)}
        assert len(body.seen) < 64 * 64 / 2  # it knows only what it saw


def test_the_recipe_guard_keeps_what_brings_the_goal_closer() -> None:
    from skills.crafter import CrafterState, toward

    start = CrafterState({"wood": 0, "drink": 9, "food": 9, "energy": 9}, frozenset({"grass", "tree"}))
    helpful = toward("make_stone_pickaxe", start)
    assert {"make_stone_pickaxe", "place_table", "collect_wood", "collect_stone", "make_wood_pickaxe",
            "explore"} <= helpful  # no stone seen yet: exploring helps
    assert not helpful & {"make_wood_sword", "drink_water", "eat_cow", "collect_diamond"}
    ready = CrafterState({"wood": 3, "stone": 1, "wood_pickaxe": 1, "drink": 2, "food": 9, "energy": 9},
                         frozenset({"grass", "tree", "table", "stone"}))
    assert toward("make_stone_pickaxe", ready) == {"make_stone_pickaxe", "drink_water"}  # and thirst is low


@pytest.mark.slow
def test_the_planner_reaches_a_wood_pickaxe_with_the_embedded_model(capsys) -> None:
    import json

    from embodied.cli import main

    # without the recipe guard the model chooses among every skill that can work (with it, a wood pickaxe
    # leaves one option at each step, and no model call is made)
    assert main(["crafter", "--goals", "make_wood_pickaxe", "--episodes", "2", "--max-skills", "15",
                 "--no-guard"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["per_goal"]["make_wood_pickaxe"]["success"] == 1.0 and report["llm_calls_per_episode"] > 0
    assert main(["crafter", "--goals", "make_wood_pickaxe", "--episodes", "1", "--max-skills", "15"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["per_goal"]["make_wood_pickaxe"]["success"] == 1.0 and report["llm_calls_per_episode"] == 0


# ---------------------------------------------------------------------- the skill library in the open world
class _FlatLM:
    """Every option equally likely: choices fall to the affordances and the recipe guard (deterministic)."""

    name = "flat"

    def score(self, prompt, options):
        from embodied.llm.base import Scores

        return Scores(np.zeros(len(options)), np.ones(len(options), np.int64))


def _scripted_steps(seed: int, names: list[str]):
    from embodied.library.crafter import CrafterAPI, Step, known_state

    env = CrafterEnv()
    env.reset(seed=seed)
    body = CrafterBody(env)
    api = CrafterAPI(body, max_game_steps=2_000)
    steps = []
    for name in names:
        state = known_state(body)
        ok = api.skill(name)
        steps.append(Step(name, ok, False, state.inventory, state.seen, body.inventory))
    return steps


def test_a_successful_episode_becomes_a_program_that_works_on_another_world() -> None:
    from embodied.library.crafter import API_METHODS, abstract_crafter, run_program
    from embodied.library.executor import check_source
    from embodied.library.store import SkillRecord
    from embodied.world.seeds import CRAFTER_LEARN, CRAFTER_VERIFY

    names = ["collect_wood", "collect_wood", "make_wood_sword", "place_table", "collect_wood", "collect_wood",
             "drink_water", "make_wood_pickaxe"]
    steps = _scripted_steps(CRAFTER_LEARN.start, names)
    assert steps[-1].ok and not steps[2].ok  # the sword failed (no table yet): left out
    draft = abstract_crafter("make_wood_pickaxe", steps)
    assert draft is not None and draft.name == "make_wood_pickaxe"
    spec = check_source(draft.code, API_METHODS)  # the sandbox accepts it
    assert spec.params == [] and "make_wood_sword" not in draft.code and "drink_water" not in draft.code
    assert 'while api.count("wood") < 2:' in draft.code and 'if not api.seen("table"):' in draft.code
    record = SkillRecord(draft.name, draft.description, [], draft.code)
    env = CrafterEnv()
    for seed in (CRAFTER_VERIFY.start + 7, CRAFTER_VERIFY.start + 8):
        env.reset(seed=seed)
        body = CrafterBody(env)
        ok, reason, calls = run_program(record, body)
        assert ok, reason
        assert body.achievements["make_wood_pickaxe"] == 1 and ("make_wood_pickaxe", True) in calls
    nothing = abstract_crafter("make_stone_pickaxe", steps)  # the goal itself never ran: no program
    assert nothing is None


def test_a_collect_skill_collects_when_reused_with_the_inventory_already_full() -> None:
    """A learned collect program is reused to collect: it collects at least once more (the game's counter
    grows) even when the inventory already holds what the episode it was learned from had."""
    from embodied.library.crafter import abstract_crafter, run_program
    from embodied.library.store import SkillRecord
    from embodied.world.seeds import CRAFTER_LEARN, CRAFTER_VERIFY

    steps = _scripted_steps(CRAFTER_LEARN.start, ["collect_wood", "collect_wood"])
    draft = abstract_crafter("collect_wood", steps)
    assert draft is not None and 'while api.count("wood") < 1:' in draft.code
    assert "if not api.collect_wood():" in draft.code.split("while")[-1]  # the last call has no guard
    record = SkillRecord(draft.name, draft.description, [], draft.code)
    env = CrafterEnv()
    env.reset(seed=CRAFTER_VERIFY.start + 3)
    body = CrafterBody(env)
    for _ in range(2):  # the second run starts with wood in the inventory
        before = body.achievements.get("collect_wood", 0), body.inventory.get("wood", 0)
        ok, reason, _ = run_program(record, body)
        assert ok, reason
        assert body.achievements["collect_wood"] > before[0] and body.inventory["wood"] > before[1]


def test_a_program_is_judged_by_the_game_not_by_what_it_returns() -> None:
    from embodied.library.crafter import run_program
    from embodied.library.store import SkillRecord

    env = CrafterEnv()
    env.reset(seed=3)
    liar = SkillRecord("make_wood_pickaxe", "claims success", [], "def make_wood_pickaxe(api):\n    return True\n")
    ok, reason, _ = run_program(liar, CrafterBody(env))
    assert not ok and "not unlocked" in reason
    escape = SkillRecord("make_wood_pickaxe", "x", [], "def make_wood_pickaxe(api):\n    import os\n")
    from embodied.library.executor import SkillCodeError

    with pytest.raises(SkillCodeError):
        run_program(escape, CrafterBody(env))


def test_the_curriculum_climbs_the_tech_tree_and_keeps_the_player_alive() -> None:
    from embodied.runtime.crafter_learn import TECH_TREE, propose

    full = {"health": 9, "food": 9, "drink": 9, "energy": 9}
    assert propose([], set(), full) == "collect_wood"
    assert propose([], {"collect_wood"}, full) == "place_table"
    assert propose([], {"collect_wood", "place_table"}, full) == "make_wood_pickaxe"
    assert propose([], {"collect_wood"}, {**full, "drink": 2}) == "collect_drink"
    failed = [{"goal": "collect_drink", "solved": False}]
    assert propose(failed, {"collect_wood"}, {**full, "drink": 2}) == "place_table"  # not the same failure again
    gave_up = [{"goal": "place_table", "solved": False}] * 3
    assert propose(gave_up, {"collect_wood"}, full) == "make_wood_pickaxe"  # moves past it
    everything_failed = [{"goal": a, "solved": False} for a in TECH_TREE for _ in range(3)]
    assert propose(everything_failed, set(), full) == "collect_wood"  # all given up: the earliest, again
    assert TECH_TREE.index("make_wood_pickaxe") < TECH_TREE.index("make_stone_pickaxe") \
        < TECH_TREE.index("make_iron_pickaxe") < TECH_TREE.index("collect_diamond")


def test_crafter_skills_are_retrieved_for_crafter_goals_and_never_on_the_tabletop(tmp_path) -> None:
    from embodied.library.crafter import CrafterLibrary
    from embodied.library.embed import default_embedder
    from embodied.library.retrieval import Library
    from embodied.library.store import Param, SkillRecord, SkillStore

    embed = default_embedder()
    store = SkillStore(tmp_path / "lib.db")
    crafter = SkillRecord("make_wood_pickaxe", "make a wood pickaxe: collect wood to 2, place a table", [],
                          "def make_wood_pickaxe(api):\n    api.make_wood_pickaxe()\n",
                          [["achievement", "make_wood_pickaxe"]], {"world": "crafter", "instruction": "make a wood pickaxe"},
                          attempts=3, successes=3)
    table = SkillRecord("put_in_bowl", "put the block in the bowl", [Param("block_1", "block"), Param("bowl_1", "bowl")],
                        "def put_in_bowl(api, block_1, bowl_1):\n    api.pick_and_place(block_1, bowl_1)\n",
                        [["in", "block_1", "bowl_1"]], {"instruction": "put the red block in the blue bowl"},
                        attempts=3, successes=3)
    for r in (crafter, table):
        store.put(r, embed([r.embed_text()])[0], embed.name)
    found = CrafterLibrary(store).retrieve("make a wood pickaxe")
    assert [p.name for p in found] == ["make_wood_pickaxe"] and found[0].library
    for request in ("make a wood pickaxe", "put the red block in the blue bowl", "pick up the pickaxe block"):
        assert all(r.name != "make_wood_pickaxe" for r, _ in Library(store, top_k=5).retrieve(request))
    store.close()


def test_the_planner_offers_a_learned_program_as_one_option(tmp_path) -> None:
    from embodied.library.crafter import CrafterLibrary, known_state
    from embodied.library.embed import default_embedder
    from embodied.library.store import SkillRecord, SkillStore
    from embodied.planners.crafter import CrafterPlanner

    embed = default_embedder()
    store = SkillStore(tmp_path / "lib.db")
    record = SkillRecord("make_wood_pickaxe", "make a wood pickaxe", [], "def make_wood_pickaxe(api):\n    pass\n",
                         [], {"world": "crafter", "instruction": "make a wood pickaxe"}, attempts=1, successes=1)
    store.put(record, embed([record.embed_text()])[0], embed.name)
    planner = CrafterPlanner(lm=_FlatLM(), library=CrafterLibrary(store))
    planner.reset("make_wood_pickaxe")
    env = CrafterEnv()
    env.reset(seed=0)
    body = CrafterBody(env)
    option, options = planner.step(known_state(body), "")
    from embodied.library.crafter import CrafterProgram

    program = [o for o in planner.library.retrieve("make a wood pickaxe")]
    assert [p.text for p in program] == ["make a wood pickaxe"]  # the primitive's words, the program's run
    chosen = {o.text: o for o in options}["make a wood pickaxe"]
    assert chosen.affordance == 1.0 and chosen.combined > 0  # the primitive could not (no table, no wood)
    assert isinstance(program[0], CrafterProgram) and option.name in ("collect_wood", "make_wood_pickaxe")
    store.close()


def test_the_crafter_score_is_the_papers_geometric_mean() -> None:
    from embodied.runtime.crafter_learn import crafter_score, success_rates

    assert crafter_score([0.0] * 22) == 0.0
    assert crafter_score([100.0] * 22) == pytest.approx(100.0)
    rates = [100.0] + [0.0] * 21  # one achievement always: exp(ln(101) / 22) - 1
    assert crafter_score(rates) == pytest.approx(np.exp(np.log(101) / 22) - 1)
    episodes = [{"unlocked": ["collect_wood"]}, {"unlocked": ["collect_wood", "place_table"]}]
    assert success_rates(episodes)["collect_wood"] == 100.0 and success_rates(episodes)["place_table"] == 50.0
    with pytest.raises(Exception, match="22"):
        crafter_score([1.0, 2.0])


def test_learning_resumes_in_the_same_game(tmp_path) -> None:
    """The baseline (no library, so no verification) for speed: 2 iterations then 2 more replay the logged
    actions and continue exactly as one run of 4."""
    from embodied.library.store import SkillStore
    from embodied.planners.crafter import CrafterPlanner
    from embodied.runtime.crafter_learn import CrafterLearnConfig, learn_crafter

    def run(path, counts):
        store = SkillStore(path)
        for n in counts:
            hist = learn_crafter(CrafterLearnConfig(iterations=n, run="r", library=False), store,
                                 CrafterPlanner(lm=_FlatLM()))
        store.close()
        return [(r["goal"], r["solved"], r["actions"]) for r in hist]

    once, twice = run(tmp_path / "a.db", [4]), run(tmp_path / "b.db", [2, 4])
    assert once == twice and len(once) == 4 and once[0][:2] == ("collect_wood", True)
    from embodied.library.store import LibraryError

    store = SkillStore(tmp_path / "a.db")
    with pytest.raises(LibraryError, match="same settings"):
        learn_crafter(CrafterLearnConfig(iterations=5, run="r", library=False, skills_per_iteration=3), store,
                      CrafterPlanner(lm=_FlatLM()))
    store.close()


def test_the_body_mines_through_stone_once_it_has_a_wood_pickaxe() -> None:
    env = CrafterEnv()
    env.reset(seed=0)
    body = CrafterBody(env)
    x, y = body.pos
    wall = {(x + 1, y): ("stone", None), (x + 2, y): ("coal", None)}
    body.seen.update(wall)
    for dy in (-1, 1):  # shut every other way: the only path runs through the stone
        for dx in range(-1, 4):
            body.seen[(x + dx, y + dy)] = ("water", None)
    body.seen[(x - 1, y)] = ("water", None)
    assert body.path_to({(x + 2, y)}) is None  # no pickaxe: stone is a wall
    env.player.inventory["wood_pickaxe"] = 1
    assert body.path_to({(x + 2, y)}) == [(x + 1, y)]


def test_skills_verify_runs_a_crafter_program_on_fresh_worlds(tmp_path, capsys) -> None:
    """`embodied skills verify` on an open-world program runs it on fresh Crafter worlds (not a table) and
    judges it by the game's counter: a program that only claims success fails with exit 1."""
    import json

    from embodied.cli import main
    from embodied.library.embed import default_embedder
    from embodied.library.store import SkillRecord, SkillStore
    from embodied.world.seeds import CRAFTER_VERIFY

    code = ("def make_wood_pickaxe(api):\n    while api.count(\"wood\") < 3:\n        api.collect_wood()\n"
            "    if not api.seen(\"table\"):\n        api.place_table()\n    api.make_wood_pickaxe()\n")
    liar = "def make_wood_sword(api):\n    return True\n"
    embed = default_embedder()
    with SkillStore(tmp_path / "lib.db") as store:
        for name, source in (("make_wood_pickaxe", code), ("make_wood_sword", liar)):
            record = SkillRecord(name, name.replace("_", " "), [], source, [["achievement", name]],
                                 {"world": "crafter", "instruction": name.replace("_", " ")})
            store.put(record, embed([record.embed_text()])[0], embed.name)
    lib = str(tmp_path / "lib.db")
    capsys.readouterr()
    assert main(["skills", "verify", "make_wood_pickaxe", "--seeds", "1", "--library", lib]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["successes"] == 1 and out["total"] == "1/1" and out["seeds"][0] >= CRAFTER_VERIFY.start
    assert main(["skills", "verify", "make_wood_sword", "--seeds", "1", "--library", lib]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["successes"] == 0 and "not unlocked" in out["failures"][0]


def test_a_long_episode_ends_at_its_choice_budget() -> None:
    """The score's episodes cannot spend a planner choice per game step: they end after ``max_choices``,
    saying so; the game steps and achievements so far are kept."""
    from embodied.planners.crafter import CrafterPlanner
    from embodied.runtime.crafter_learn import play_long_episode
    from embodied.world.seeds import CRAFTER_SCORE

    row = play_long_episode(CrafterPlanner(lm=_FlatLM()), CRAFTER_SCORE.start + 3, 1000, max_choices=4)
    assert row["stopped"] == "4 planner choices" and 0 < row["game_steps"] < 1000
    assert row["tasks"] >= 1 and "collect_wood" in row["unlocked"]
