"""Skill library: abstraction, store durability, import/export, retrieval and the CLI."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embodied.cli import main
from embodied.library.abstraction import abstract_plan
from embodied.library.api import API_METHODS, DryRunAPI
from embodied.library.executor import run_skill
from embodied.library.retrieval import bindings
from embodied.library.store import LibraryError, Param, SkillRecord, SkillStore
from embodied.library.transfer import export_library, import_library
from embodied.planners.oracle import plan
from embodied.planners.prompting import initial_state
from embodied.world.predicates import goal_satisfied
from embodied.world.scene import ObjectState, SceneState
from embodied.world.symbolic import SymbolicState
from envs.generator import generate
from skills import SkillCall


def _draft(family: str, seed: int):
    task = generate(family, seed)
    return task, abstract_plan(task.goal, plan(initial_state(task), task.goal), initial_state(task), family)


def _record(draft, instruction: str = "") -> SkillRecord:
    return SkillRecord(draft.name, draft.description, draft.params, draft.code, draft.postcondition,
                       {"instruction": instruction, "extra_blocks": 0, "extra_bowls": 0})


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return v / np.linalg.norm(v)


def _scene(blocks: list[str], bowls: list[str]) -> SceneState:
    objects = {}
    for i, c in enumerate(blocks):
        objects[f"{c} block"] = ObjectState(f"{c} block", "block", c, (0.4 + 0.06 * i, 0.0, 0.645))
    for i, c in enumerate(bowls):
        objects[f"{c} bowl"] = ObjectState(f"{c} bowl", "bowl", c, (0.4 + 0.1 * i, 0.2, 0.625))
    return SceneState(objects=objects, ee_position=(0.3, 0.0, 1.0))


# ---------------------------------------------------------------------- abstraction
def test_tower_plan_becomes_a_loop_that_generalises():
    task, draft = _draft("tall_tower", 1)
    assert draft.name == f"stack_{len(task.scene.blocks)}_blocks" or draft.name.startswith("stack_")
    assert "for lower, upper in zip(tower, tower[1:]):" in draft.code
    # other objects, another layout: the same code builds the tower; the guard skips what is already done
    blocks = ["red", "green", "blue", "yellow", "pink", "cyan"][: len(draft.params)]
    binding = {p.name: f"{c} block" for p, c in zip(draft.params, blocks, strict=True)}
    api = DryRunAPI(_scene(blocks, []))
    assert run_skill(draft.code, api, binding, API_METHODS).success
    assert len(api.calls) == len(blocks) - 1
    half = SymbolicState({f"{c} block": "table" for c in blocks})
    half.support[binding["block_2"]] = binding["block_1"]
    api = DryRunAPI(_scene(blocks, []), half)
    assert run_skill(draft.code, api, binding, API_METHODS).success
    assert len(api.calls) == len(blocks) - 2
    goal = [["stacked", [binding[p.name] for p in draft.params]]]
    assert goal_satisfied(goal, api.final_state)


def test_sorting_plan_becomes_pairs_and_same_shape_gives_same_code():
    _, a = _draft("sort_all", 3)
    _, b = _draft("sort_all", 11)
    assert a.name == "put_4_blocks_in_4_bowls" and a.code == b.code
    assert "zip([block_1, block_2, block_3, block_4], [bowl_1, bowl_2, bowl_3, bowl_4])" in a.code


def test_nothing_to_abstract_from_a_plan_that_misses_the_goal():
    task = generate("block_in_bowl", 0)
    wrong = [SkillCall("pick_and_place", {"block": task.scene.object_names()[0], "target": "middle"})]
    assert abstract_plan(task.goal, wrong, initial_state(task)) is None


# ---------------------------------------------------------------------- store
def test_versions_and_statistics(tmp_path):
    _, draft = _draft("stack_two", 0)
    with SkillStore(tmp_path / "lib.db") as store:
        store.put(_record(draft), _vec(0), "test")
        store.put(_record(draft), _vec(0), "test", note="second")
        assert store.get(draft.name).version == 2
        assert [v["note"] for v in store.versions(draft.name)] == ["added", "second"]
        rec = store.record_verification(draft.name, 3, 2)
        assert (rec.attempts, rec.successes) == (3, 2) and rec.last_verified
        with pytest.raises(LibraryError, match="no skill named 'stack_tw'"):
            store.get("stack_tw")
        assert store.integrity() == "ok"
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(path: str, worker: int, n: int) -> None:
    store = SkillStore(path)
    code = "def s_{w}_{i}(api, block_1):\n    api.pick_and_place(block_1, 'middle')\n"
    for i in range(n):
        rec = SkillRecord(f"s_{worker}_{i}", "test", [Param("block_1", "block")], code.format(w=worker, i=i))
        store.put(rec, _vec(worker * 100 + i), "test")
        store.record_verification("shared", 1, 1)
    store.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "lib.db")
    with SkillStore(path) as store:
        store.put(SkillRecord("shared", "test", [], "def shared(api):\n    return 1\n"), _vec(1), "test")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with SkillStore(path) as store:
        assert len(store) == 1 + 4 * 15
        assert store.get("shared").attempts == 4 * 15
        assert store.integrity() == "ok"


def test_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="not a usable skill library"):
        SkillStore(bad)
    with pytest.raises(LibraryError, match="no skill library at"):
        SkillStore(tmp_path / "missing.db", create=False)


# ---------------------------------------------------------------------- export / import
def test_export_import_round_trips_exactly(tmp_path):
    a = SkillStore(tmp_path / "a.db")
    for fam, seed in (("tall_tower", 1), ("sort_all", 3), ("combo", 5)):
        task, draft = _draft(fam, seed)
        rec = _record(draft, task.instruction)
        rec.provenance["binding"] = draft.binding
        a.put(rec, _vec(seed), "test")
    a.put(a.get("put_4_blocks_in_4_bowls"), _vec(3), "test", note="edited")
    a.record_verification("put_4_blocks_in_4_bowls", 2, 1)
    export_library(a, tmp_path / "one.json")
    b = SkillStore(tmp_path / "b.db")
    report = import_library(b, tmp_path / "one.json")
    assert len(report.added) == 3 and not report.rejected
    export_library(b, tmp_path / "two.json")
    assert (tmp_path / "one.json").read_text() == (tmp_path / "two.json").read_text()
    assert import_library(b, tmp_path / "one.json").unchanged == sorted(a.names())


BAD_SKILLS = [
    ({"name": "sneaky", "description": "d", "params": [], "code": "def sneaky(api):\n    import os\n"},
     "skill 'sneaky'", "import"),
    ({"name": "opener", "description": "d", "params": [], "code": "def opener(api):\n    open('/etc/passwd')\n"},
     "skill 'opener'", "open"),
    ({"name": "dunder", "description": "d", "params": [],
      "code": "def dunder(api):\n    return ().__class__.__bases__\n"}, "skill 'dunder'", "_"),
    ({"name": "mismatch", "description": "d", "params": ["block_1"], "code": "def mismatch(api, block_9):\n    pass\n"},
     "skill 'mismatch'", "do not match"),
    ({"name": "Bad Name", "description": "d", "params": [], "code": "def x(api):\n    pass\n"}, "'name'", "identifier"),
    ({"name": "nocode", "description": "d", "params": []}, "skill 'nocode'", "missing code"),
    ({"name": "crafty", "description": "d", "params": [], "provenance": {"world": "crafter"},
      "code": "def crafty(api):\n    api.pick_and_place('red block', 'middle')\n"}, "skill 'crafty'", "not an API"),
    ({"name": "mars", "description": "d", "params": [], "provenance": {"world": "mars"},
      "code": "def mars(api):\n    pass\n"}, "skill 'mars'", "known worlds"),
]


def test_import_checks_a_skill_against_its_own_worlds_api(tmp_path):
    """A Crafter skill (provenance world "crafter") is checked against Crafter's API, not the tabletop's."""
    crafter = {"name": "make_planks", "description": "collect wood, then place a table", "params": [],
               "provenance": {"world": "crafter", "goal": "place_table"},
               "code": "def make_planks(api):\n    while api.count('wood') < 1:\n        api.collect_wood()\n"
                       "    api.place_table()\n"}
    path = tmp_path / "in.json"
    path.write_text(json.dumps([crafter]))
    store = SkillStore(tmp_path / "lib.db")
    report = import_library(store, path)
    assert report.added == ["make_planks"] and not report.rejected
    assert store.get("make_planks").provenance["world"] == "crafter"


@pytest.mark.parametrize(("item", "who", "rule"), BAD_SKILLS)
def test_import_rejects_rule_breakers_naming_skill_and_rule(tmp_path, item, who, rule):
    good = {"name": "fine", "description": "d", "params": [{"name": "block_1", "kind": "block"}],
            "code": "def fine(api, block_1):\n    api.pick_and_place(block_1, 'middle')\n"}
    path = tmp_path / "in.json"
    path.write_text(json.dumps([good, item], indent=1))
    store = SkillStore(tmp_path / "lib.db")
    report = import_library(store, path)
    assert report.added == ["fine"]
    assert len(report.rejected) == 1 and who in report.rejected[0] and rule in report.rejected[0]
    assert f"{path}:" in report.rejected[0]  # names the file and line


# ---------------------------------------------------------------------- retrieval
def test_bindings_follow_the_request_then_fill_from_the_table():
    _, draft = _draft("ordered_tower", 7)
    rec = _record(draft)
    n = len(rec.params)
    colours = ["red", "blue", "green", "yellow"][:n]
    scene = _scene(colours, ["pink"])
    words = ", then ".join(colours[1:])
    first = bindings(rec, f"stack the blocks with {colours[0]} at the bottom, then {words}", scene)[0]
    assert [first[f"block_{i + 1}"] for i in range(n)] == [f"{c} block" for c in colours]
    everything = bindings(rec, "stack all the blocks", scene)
    assert everything and sorted(everything[0].values()) == sorted(f"{c} block" for c in colours)


def test_colour_matched_binding_for_sorting():
    _, draft = _draft("sort_all", 3)
    rec = _record(draft)
    scene = _scene(["red", "blue", "green", "yellow"], ["green", "yellow", "red", "blue"])
    options = bindings(rec, "put each block in the bowl of the same colour", scene)
    assert any(all(b[f"block_{i}"].split()[0] == b[f"bowl_{i}"].split()[0] for i in range(1, 5)) for b in options)


# ---------------------------------------------------------------------- CLI + durability
def _cli(*args: str) -> int:
    return main(list(args))


def _flat(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return " ".join(text.split())


def test_skills_cli_curation(tmp_path, capsys):
    lib = str(tmp_path / "lib.db")
    assert _cli("skills", "list", "--library", lib) == 2  # no library yet
    assert "no skill library" in _flat(capsys.readouterr().err)
    store = SkillStore(lib)
    task, draft = _draft("stack_two", 4)
    store.put(_record(draft, task.instruction), _vec(4), "test")
    store.close()
    assert _cli("skills", "list", "--library", lib) == 0
    assert draft.name in capsys.readouterr().out
    assert _cli("skills", "show", draft.name, "--library", lib) == 0
    assert "def put_on_block" in capsys.readouterr().out
    assert _cli("skills", "show", "put_on_blok", "--library", lib) == 2
    assert "did you mean 'put_on_block'" in _flat(capsys.readouterr().err)
    assert _cli("skills", "verify", draft.name, "--seeds", "2", "--library", lib) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["successes"] == 2 and out["total"] == "2/2"
    assert _cli("skills", "export", str(tmp_path / "x.json"), "--library", lib) == 0
    assert _cli("skills", "rm", draft.name, "--library", lib) == 0
    assert _cli("skills", "import", str(tmp_path / "x.json"), "--library", lib) == 0
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "x", "description": "d", "params": [], "code": "def x(api):\\n    eval(\'1\')\\n"}]')
    assert _cli("skills", "import", str(bad), "--library", lib) == 2
    err = _flat(capsys.readouterr().err)
    assert "skill 'x'" in err and "eval" in err


def _learn_cmd(lib: Path, iterations: int) -> list[str]:
    return [sys.executable, "-m", "embodied.cli", "learn", "--planner", "oracle", "--iterations", str(iterations),
            "--library", str(lib), "--verify-seeds", "1"]


@pytest.mark.slow
def test_kill_9_during_learn_loses_nothing_committed(tmp_path):
    lib = tmp_path / "lib.db"
    proc = subprocess.Popen(_learn_cmd(lib, 12), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).parents[1])
    seen: list = []
    deadline = time.time() + 240
    while time.time() < deadline and len(seen) < 3:
        time.sleep(0.5)
        if lib.exists():
            try:
                with sqlite3.connect(lib, timeout=5) as c:
                    seen = c.execute("SELECT iteration, record FROM learn_log").fetchall()
            except sqlite3.OperationalError:
                pass
    assert len(seen) >= 3, "learn made no progress"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with SkillStore(lib) as store:
        assert store.integrity() == "ok"
        after = store.learn_log("default")
        assert len(after) >= len(seen)  # everything committed before the kill is still there
        names_before = set(store.names())
        for row in after:
            if row.get("skill_status") == "added":
                assert row["skill"] in names_before
    done = subprocess.run(_learn_cmd(lib, 12), capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    with SkillStore(lib) as store:
        rows = store.learn_log("default")
        assert [r["iteration"] for r in rows] == list(range(12))
        assert names_before <= set(store.names())


@pytest.mark.slow
def test_saycan_runs_a_retrieved_skill_in_one_model_call(tmp_path):
    from embodied.library.embed import default_embedder
    from embodied.planners.saycan import SayCanConfig, SayCanPlanner
    from embodied.runtime.episode import run_episode
    from envs.tabletop import TabletopEnv

    source, draft = _draft("ordered_tower", 7)  # a 4-block tower, bottom first
    rec = _record(draft, source.instruction)
    rec.attempts, rec.successes = 3, 3
    embed = default_embedder()
    lib = tmp_path / "lib.db"
    with SkillStore(lib) as store:
        store.put(rec, embed([rec.embed_text()])[0], embed.name)
    task = next(t for t in (generate("tall_tower", s) for s in range(9700, 9800)) if len(t.scene.blocks) == 4
                and "bottom" in t.instruction)
    env = TabletopEnv(image_size=(32, 32))
    try:
        with_lib = run_episode(env, task, SayCanPlanner(SayCanConfig(library=str(lib))))
        without = run_episode(env, task, SayCanPlanner(SayCanConfig()))
    finally:
        env.close()
    assert with_lib.success and with_lib.extra["library_skills"][0]["skill"] == draft.name
    assert with_lib.extra["llm_calls"] == 1
    assert without.success and without.extra["llm_calls"] == 3  # three moves; the goal holding ends it, no call
    assert [s["args"] for s in with_lib.steps] == [s["args"] for s in without.steps]
