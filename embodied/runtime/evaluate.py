"""Evaluation over a task file: one line per episode appended to `results.jsonl` as it finishes (so an
interrupted run loses nothing and resumes where it stopped), then `report.json` with rates by family and
failure reasons."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from embodied.planners.base import Planner
from embodied.runtime.episode import EpisodeResult, GoalReader, run_episode
from embodied.runtime.sensing import Sensing
from embodied.world.tasks import Task
from envs.tabletop import TabletopEnv

log = logging.getLogger(__name__)


def load_results(path: Path) -> list[dict[str, Any]]:
    """Rows already written by an earlier (possibly interrupted) run; a torn last line is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("ignoring a torn line in %s", path)
    return rows


def result_row(result: EpisodeResult) -> dict[str, Any]:
    """One `results.jsonl` line: the summary without the per-option trace. A task that expects ``cannot``
    counts as solved only when it was refused before any motion."""
    row = result.summary()
    row["n_skill_failures"] = sum(not s["result"]["success"] for s in row["steps"])
    if result.task.expect == "cannot":
        row["expect"], row["why"] = "cannot", result.task.why
        row["false_success"] = row["outcome"] == "success"
        row["success"] = row["outcome"] == "cannot" and not row["steps"]
    return row


def evaluate(tasks: Sequence[Task], planner: Planner, out: Path, env: TabletopEnv,
             on_episode: Callable[[dict[str, Any]], None] | None = None, resume: bool = True,
             sensing: Sensing | None = None, reader: GoalReader | None = None,
             infer_goal: bool = False) -> dict[str, Any]:
    """Run every task (skipping those already in `results.jsonl` when resuming) and write the report."""
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    done = {r["id"]: r for r in load_results(results_path)} if resume else {}
    if not resume and results_path.exists():
        results_path.unlink()
    rows = [done[t.id] for t in tasks if t.id in done]
    with results_path.open("a") as f:
        for task in tasks:
            if task.id in done:
                continue
            row = result_row(run_episode(env, task, planner, sensing=sensing, reader=reader, infer_goal=infer_goal))
            f.write(json.dumps(row) + "\n")
            f.flush()
            rows.append(row)
            if on_episode:
                on_episode(row)
    report = make_report(rows)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def make_report(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success rates overall and per family, failure reasons (episode outcomes and skill failures)."""
    n = len(rows)
    by_family: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_family[r.get("family") or "unknown"].append(r)
    reasons = Counter(r["reason"] for r in rows if not r["success"])
    skill_reasons = Counter(s["result"]["reason"] for r in rows for s in r["steps"] if not s["result"]["success"])
    n_calls = sum(len(r["steps"]) for r in rows)
    report: dict[str, Any] = {
        "n": n,
        "execution_success": round(sum(r["success"] for r in rows) / n, 4) if n else 0.0,
        "outcomes": dict(Counter(r["outcome"] for r in rows)),
        "per_family": {f: {"n": len(v), "execution_success": round(sum(r["success"] for r in v) / len(v), 4)}
                       for f, v in sorted(by_family.items())},
        "failure_reasons": dict(reasons.most_common()),
        "skill_calls": n_calls,
        "skill_failure_reasons": dict(skill_reasons.most_common()),
        "skill_success_rate": round(1 - sum(skill_reasons.values()) / n_calls, 4) if n_calls else 0.0,
        "mean_steps": round(sum(len(r["steps"]) for r in rows) / n, 3) if n else 0.0,
        "mean_seconds": round(sum(r["seconds"] for r in rows) / n, 3) if n else 0.0,
    }
    for key in ("planning_success", "llm_calls", "llm_tokens", "seconds_per_step"):
        vals = [r[key] for r in rows if key in r]
        if vals:
            name = {"llm_calls": "llm_calls_per_episode", "llm_tokens": "llm_tokens_per_episode"}.get(key, key)
            report[name] = round(sum(vals) / len(vals), 4)
    solved = [r for r in rows if r["success"] and "llm_calls" in r]
    if solved:
        report["llm_calls_per_solved_task"] = round(sum(r["llm_calls"] for r in solved) / len(solved), 4)
    used = [r for r in rows if r.get("library_skills")]
    if used:
        report["episodes_using_library"] = len(used)
    read = [r for r in rows if "goal_correct" in r]
    if read:  # `eval --infer-goal`: the goal read from the instruction against the file's goal, up to order
        report["goal_inference_accuracy"] = round(sum(r["goal_correct"] for r in read) / len(read), 4)
        report["goal_inference_n"] = len(read)
    refuse = [r for r in rows if r.get("expect") == "cannot"]
    if refuse:
        report["refusals"] = {"n": len(refuse), "refused": sum(r["success"] for r in refuse),
                              "false_successes": sum(r["false_success"] for r in refuse),
                              "moved_before_refusing": sum(bool(r["steps"]) for r in refuse)}
    report["false_successes"] = sum(bool(r.get("false_success")) for r in rows)
    return report
