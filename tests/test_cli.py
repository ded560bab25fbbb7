"""The command line: runs write what they promise; bad input gets one clear line and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from embodied.cli import main

GOOD = {"id": "t1", "instruction": "put the red block in the green bowl",
        "scene": {"blocks": ["red", "blue"], "bowls": ["green"]}, "goal": [["in", "red block", "green bowl"]],
        "seed": 3, "max_steps": 6}


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def bad(tmp_path: Path, capsys, **change) -> str:
    task = {**GOOD, **change}
    f = write_lines(tmp_path / "tasks.jsonl", json.dumps(GOOD | {"id": "ok"}), json.dumps(task))
    code = main(["eval", "--tasks", str(f), "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return " ".join(err.split())


def test_bad_inputs_name_the_problem_and_line(tmp_path, capsys) -> None:
    msg = bad(tmp_path, capsys, scene={"blocks": ["rde"], "bowls": ["green"]}, goal=[["in", "rde block", "green bowl"]])
    assert "tasks.jsonl:2" in msg and "did you mean 'red'" in msg
    msg = bad(tmp_path, capsys, goal=[["in", "yellow block", "green bowl"]])
    assert "tasks.jsonl:2" in msg and "yellow block" in msg and "not in the scene" in msg
    msg = bad(tmp_path, capsys, scene={"blocks": ["red", "blue", "green", "yellow", "pink", "cyan", "brown"], "bowls": []})
    assert "tasks.jsonl:2" in msg and "more objects than fit" in msg
    msg = bad(tmp_path, capsys, goal=[["inside", "red block", "green bowl"]])
    assert "tasks.jsonl:2" in msg and "unknown predicate 'inside'" in msg


def test_malformed_line_number(tmp_path, capsys) -> None:
    f = write_lines(tmp_path / "t.jsonl", json.dumps(GOOD), "", '{"id": "x", "instruction": ')
    assert main(["run", "--tasks", str(f), "--id", "t1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "t.jsonl:3" in err


def test_unknown_family_and_planner(capsys) -> None:
    assert main(["run", "--generate", "stack_tow"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["run", "--generate", "stack_two", "--planner", "oracel"]) == 2
    assert "did you mean 'oracle'" in capsys.readouterr().err
    assert main(["eval", "--tasks", "/nonexistent/tasks.jsonl"]) == 2
    assert "/nonexistent/tasks.jsonl" in capsys.readouterr().err


def test_run_writes_summary_and_trace(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["run", "--generate", "block_on_block", "--seed", "4", "--planner", "oracle", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert code == 0 and summary["success"] is True and summary["outcome"] == "success"
    assert summary["steps"] and summary["steps"][0]["skill"] == "pick_and_place"
    assert summary["steps"][0]["result"]["success"] is True and summary["steps"][0]["result"]["steps"] > 0
    assert (out / "trace.jsonl").read_text().count("\n") == len(summary["steps"]) + 1  # + the "done" step
    assert json.loads((out / "config.json").read_text())["planner"] == "oracle"


def test_eval_appends_and_resumes(tmp_path, capsys) -> None:
    tasks = tmp_path / "s.jsonl"
    assert main(["tasks", "generate", "--n", "3", "--seed", "7", "--families", "block_in_bowl,stack_two",
                 "--out", str(tasks)]) == 0
    out = tmp_path / "ev"
    assert main(["eval", "--tasks", str(tasks), "--planner", "oracle", "--out", str(out)]) == 0
    rows = (out / "results.jsonl").read_text().splitlines()
    report = json.loads((out / "report.json").read_text())
    assert len(rows) == 3 and report["n"] == 3 and 0 <= report["execution_success"] <= 1
    assert set(report["per_family"]) == {"block_in_bowl", "stack_two"}
    # a second run resumes: nothing re-run, nothing lost
    assert main(["eval", "--tasks", str(tasks), "--planner", "oracle", "--out", str(out)]) == 0
    assert (out / "results.jsonl").read_text().splitlines() == rows


@pytest.mark.slow
def test_console_script_video(tmp_path) -> None:
    """The installed entry point, end to end, with a video."""
    exe = Path(sys.executable).with_name("embodied")
    out = tmp_path / "v"
    proc = subprocess.run([str(exe), "run", "--generate", "block_in_bowl", "--seed", "1", "--planner", "oracle",
                           "--out", str(out), "--video"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "video.mp4").stat().st_size > 10_000


def test_run_states_and_replay_restore_a_middle_step_exactly(tmp_path, capsys) -> None:
    """`run --states` saves the whole simulation after each skill call; `replay --step K` rebuilds the world
    from the task, restores it, and finds every object where the recording had it."""
    out = tmp_path / "r"
    fast = ["--planner", "oracle", "--state", "ground-truth", "--affordance", "analytic", "--success", "analytic",
            "--no-library"]
    assert main(["run", "--generate", "stack_three", "--seed", "5", *fast, "--states", "--out", str(out)]) == 0
    saved = json.loads((out / "states" / "poses.json").read_text())
    assert sorted(saved) == ["1", "2"] and (out / "states" / "step_001.bullet").is_file()
    capsys.readouterr()
    assert main(["replay", str(out), "--step", "1"]) == 0  # the middle of a two-call episode
    printed = capsys.readouterr().out
    report = json.loads(printed[printed.index("{"):])
    assert report["step"] == 1 and report["objects"] == 4 and report["max_position_diff_m"] <= 1e-6
    assert main(["replay", str(out), "--step", "3"]) == 2
    assert "no state after skill call 3; saved: 1, 2" in capsys.readouterr().err
    assert main(["replay", str(tmp_path)]) == 2
