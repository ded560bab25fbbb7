"""Episodes in worker processes: the same outcomes as one after another, and every task once even when a worker
is killed in the middle."""

from __future__ import annotations

import json
import os
import signal

import pytest

from embodied.runtime.agent import Agent, AgentConfig
from embodied.runtime.rollouts import LocalWorkers, WorkerError
from embodied.world.errors import EmbodiedError
from envs.generator import generate

FAST = dict(planner="oracle", state="ground-truth", affordance="analytic", success="analytic", library=None)
TASKS = [generate(family, seed) for family, seed in
         (("block_in_bowl", 1), ("stack_two", 2), ("block_at_location", 3), ("block_on_block", 4))]


def _outcomes(path) -> dict[str, tuple]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == len({r["id"] for r in rows})  # each task once
    return {r["id"]: (r["success"], r["outcome"], r["n_steps"], r["physics_steps"]) for r in rows}


@pytest.mark.slow
def test_bench_rollouts_two_workers_give_the_outcomes_of_one(tmp_path) -> None:
    from embodied.bench import bench_rollouts
    from embodied.world.tasks import save_tasks

    save_tasks(TASKS, tmp_path / "t.jsonl")
    out = bench_rollouts(tmp_path / "t.jsonl", n_tasks=4, workers=(1, 2), **FAST)
    assert out["identical_outcomes"] and out["differing_tasks"] == []
    assert set(out["runs"]) == {"1", "2"} and all(r["episodes"] == 4 for r in out["runs"].values())
    assert out["runs"]["1"]["execution_success"] == out["runs"]["2"]["execution_success"] == 1.0
    assert out["speedup"]["1"] == 1.0
    assert all(0 < r["first_row_s"] <= r["wall_s"] for r in out["runs"].values())


@pytest.mark.slow
@pytest.mark.parametrize("start", ["spawn", "fork"])
def test_a_killed_worker_has_its_task_run_again(start: str) -> None:
    """Spawned workers load their own agent; forked ones share the parent's (a replacement is forked too)."""
    ids, killed, at = [], None, 0
    parent = Agent.from_config(**FAST) if start == "fork" else None
    with LocalWorkers(AgentConfig(**FAST), 2, agent=parent) as pool:
        assert pool._ctx.get_start_method() == start
        for task, row in pool.run(TASKS):
            ids.append(task.id)
            assert row["outcome"] == "success"
            busy = [s for s in pool._slots if s.task is not None]
            if killed is None and busy:  # kill -9 a worker in the middle of an episode
                killed, at = busy[0].task.id, len(ids)
                os.kill(busy[0].process.pid, signal.SIGKILL)
        assert killed is not None and pool.restarts == 1
    assert sorted(ids) == sorted(t.id for t in TASKS)  # every task exactly once
    assert killed in ids[at:]  # the killed worker's task came back after the kill
    if parent is not None:
        with LocalWorkers(AgentConfig(**FAST), 2, threads=2, agent=parent) as pool:  # OpenMP: no fork then
            assert pool._ctx.get_start_method() == "spawn"
        parent.close()


def test_a_forked_worker_opens_the_library_again(tmp_path) -> None:
    """SQLite connections must not cross a fork: the worker's library gets its own, the inherited one is
    kept untouched (closing it in the child could disturb the parent's)."""
    from types import SimpleNamespace

    from embodied.library.retrieval import Library
    from embodied.library.store import SkillStore
    from embodied.runtime import agent as agent_module

    SkillStore(tmp_path / "lib.db").close()
    library = Library.open(tmp_path / "lib.db")
    inherited = library.store
    Agent(AgentConfig(**FAST), SimpleNamespace(library=library), None, None, None).after_fork()
    assert library.store is not inherited and library.store.path == inherited.path
    assert inherited in agent_module._INHERITED and len(library.store) == 0
    inherited.conn.execute("SELECT 1")  # still open
    Agent(AgentConfig(**FAST), SimpleNamespace(), None, None, None).after_fork()  # no library: nothing to do


def test_a_task_that_keeps_killing_workers_is_a_failed_row() -> None:
    from collections import Counter, deque

    from embodied.runtime.evaluate import validate_row
    from embodied.runtime.rollouts import MAX_DEATHS, _worker_died

    deaths, pending = Counter(), deque(TASKS[1:2])
    for n in range(1, MAX_DEATHS):  # run again first, before the tasks still waiting
        assert _worker_died(TASKS[0], deaths, pending) is None
        assert pending[0] is TASKS[0] and len(pending) == 1 + n
    row = _worker_died(TASKS[0], deaths, pending)
    row = validate_row({**row, "task_hash": "t", "config_hash": "c"}, "row")
    assert not row["success"] and row["outcome"] == "failed" and f"died {MAX_DEATHS} times" in row["reason"]
    assert len(pending) == MAX_DEATHS  # not queued again


@pytest.mark.slow
def test_a_worker_that_cannot_start_says_why() -> None:
    config = AgentConfig(**FAST, planner_options={"beam": 3})  # refused when the worker builds its planner
    with LocalWorkers(config, 1) as pool, pytest.raises(WorkerError, match="failed to start.*has no option .beam."):
        list(pool.run(TASKS[:1]))
    with pytest.raises(EmbodiedError, match="workers must be a positive integer"):
        LocalWorkers(config, 0)


@pytest.mark.slow
def test_ray_actors_give_the_outcomes_of_one_process(tmp_path) -> None:
    """`--backend ray` on a local Ray runtime (quiet, 127.0.0.1, stopped afterwards): the same rows."""
    pytest.importorskip("ray")
    import ray

    with Agent.from_config(**FAST) as agent:
        one = agent.evaluate(TASKS[:2], tmp_path / "one")
        ray_ = agent.evaluate(TASKS[:2], tmp_path / "ray", workers=2, backend="ray")
    assert not ray.is_initialized()  # the runtime this run started is stopped
    assert one["execution_success"] == ray_["execution_success"]
    assert _outcomes(tmp_path / "one" / "results.jsonl") == _outcomes(tmp_path / "ray" / "results.jsonl")
    config = json.loads((tmp_path / "ray" / "config.json").read_text())
    assert (config["workers"], config["backend"]) == (2, "ray")
    with pytest.raises(EmbodiedError, match="needs --backend ray"):
        agent.evaluate(TASKS[:1], tmp_path / "x", ray_address="127.0.0.1:6379")


@pytest.mark.slow
def test_learn_verifies_new_skills_on_workers_with_the_same_log(tmp_path) -> None:
    """`learn --workers 2`: a new skill's verification tables run on forked workers, and the log (solved,
    skills added, each seed's verification outcome) equals the one of a single process."""
    from embodied.library.store import SkillStore
    from embodied.runtime.learn import LearnConfig, learn

    logs = []
    with Agent.from_config(**FAST) as agent:
        for n in (1, 2):
            config = LearnConfig(iterations=4, verify_seeds=3, run=f"w{n}")
            with SkillStore(tmp_path / f"w{n}.db") as store:
                if n == 1:
                    history = learn(config, store, agent.planner, agent.env)
                else:
                    with LocalWorkers(AgentConfig(**FAST), n, agent=agent) as pool:
                        history = learn(config, store, agent.planner, agent.env, workers=pool)
                        assert pool._ctx.get_start_method() == "fork" and len(pool._slots) == 2
                logs.append([{k: row.get(k) for k in ("task", "solved", "skill", "skill_status", "verify")}
                             for row in history])
    assert logs[0] == logs[1]
    assert sum(row["skill_status"] == "added" for row in logs[0]) >= 1  # verification really ran
    assert all(len(row["verify"]["seeds"]) == 3 for row in logs[0] if row["verify"])


def test_workers_get_the_longest_tasks_first() -> None:
    from embodied.runtime.rollouts import longest_first

    order = longest_first(TASKS)
    assert [t.max_steps for t in order] == sorted((t.max_steps for t in TASKS), reverse=True)
    same = [t for t in TASKS if t.max_steps == order[-1].max_steps]
    assert [t for t in order if t.max_steps == order[-1].max_steps] == same  # ties keep the file's order
