"""The Python API (`embodied.Agent`): the README's example runs as written; the config is the one place that
names the planner, its options and the agent's sources of state, affordance and success."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from embodied import Agent, AgentConfig
from embodied.world.errors import EmbodiedError
from envs.generator import generate

ROOT = Path(__file__).resolve().parent.parent


def readme_block(title: str) -> str:
    """The first python code block under the README heading ``title``."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {title}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_python_api_example_runs(tmp_path, capsys):
    (tmp_path / "benchmarks").mkdir()
    tasks = (ROOT / "benchmarks" / "generated_100.jsonl").read_text().splitlines()[:2]
    (tmp_path / "benchmarks" / "generated_100.jsonl").write_text("\n".join(tasks) + "\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(readme_block("Python API"), "README.md", "exec"), {})  # noqa: S102 - our own README
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("success") and "green bowl" in printed[0]
    assert 0.0 <= float(printed[1]) <= 1.0
    assert (tmp_path / "runs" / "api-eval" / "results.jsonl").read_text().count("\n") == 2


def test_config_validates_sources_and_planner_options():
    with pytest.raises(EmbodiedError, match="did you mean 'ground-truth'"):
        AgentConfig(state="ground_truth")
    with pytest.raises(EmbodiedError, match="did you mean 'feedback'"):
        AgentConfig(planner="saycan", planner_options={"feedbak": False}).planner_config()
    with pytest.raises(EmbodiedError, match="did you mean 'oracle'"):
        AgentConfig(planner="oracel").planner_config()
    config = AgentConfig(planner="saycan", planner_options={"top_k": 3}, library="/tmp/x.db").planner_config()
    assert config.top_k == 3 and config.library == "/tmp/x.db"  # the agent hands the library to the planner
    assert AgentConfig(planner="saycan", library=None).planner_config().library is None


def test_oracle_agent_solves_tasks_and_read_instructions(tmp_path):
    with Agent.from_config(planner="oracle", state="ground-truth", affordance="analytic", success="analytic",
                           image_size=32) as agent:
        result = agent.run(generate("block_on_block", 4))
        assert result.outcome == "success" and result.summary()["judged_by"] == "goal"
        free = agent.run("put the red block on the blue block", seed=2)  # the goal is read from the words
        assert free.outcome == "success" and free.summary()["goal"] == [["on", "red block", "blue block"]]
        refused = agent.run("put the black block on the blue block", scene={"blocks": ["red", "blue"]})
        assert refused.outcome == "cannot" and "black" in refused.reason and not refused.steps
        report = agent.evaluate([generate("block_in_bowl", 5)], out=tmp_path / "ev")
        assert report["n"] == 1 and report["execution_success"] == 1.0
        assert agent.describe()["planner_config"] == {"max_nodes": 2000} and not agent.describe()["infer_goal"]


def test_the_agent_hands_its_affordance_source_to_the_planner():
    with Agent.from_config(planner="saycan", affordance="analytic", state="ground-truth", success="analytic",
                           library=None, image_size=32, planner_options={"llm": "smollm2"}) as agent:
        assert agent.planner.affordances is agent.sensing.affordances
        assert agent.planner.affordances.name == "analytic"
