"""Episodes in the Crafter world: the planner picks a skill, the body runs it in the game, success is read
from the achievements (never from the skill's report), and the outcome goes back to the planner."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from embodied.library.crafter import Step, known_state
from embodied.planners.crafter import CrafterPlanner
from embodied.world.errors import EmbodiedError
from envs.crafter import ACHIEVEMENTS, CrafterBody, CrafterEnv, describe


def attempt(body: CrafterBody, planner: CrafterPlanner, goal: str, max_skills: int = 40,
            on_step: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Work towards the achievement ``goal`` in the game as it is now (no reset): until its counter grows,
    the player dies or ``max_skills`` choices were made; each step's row (with `Step` for abstraction)."""
    planner.reset(goal)
    start = body.achievements.get(goal, 0)
    steps: list[dict[str, Any]] = []
    for i in range(max_skills):
        if body.achievements[goal] > start or body.done:
            break
        state = known_state(body)
        calls = planner.llm_calls
        option, options = planner.step(state, describe(body.env))
        before = body.achievements
        why = option.run(body)
        after = body.achievements
        ok = (after[option.achievement] > before[option.achievement]) if option.achievement else why is None
        reason = why or ("" if ok else "nothing changed")
        planner.feedback(option, ok, reason)
        library = bool(getattr(option, "library", False))
        row = {"step": i, "skill": option.name, "library": library, "success": ok, "reason": reason,
               "game_steps": body.env.steps, "llm_call": planner.llm_calls > calls,
               "top": sorted(((o.text, round(o.combined, 3)) for o in options), key=lambda x: -x[1])[:3],
               "abstract": Step(option.name, ok, library, dict(state.inventory), state.seen, body.inventory).to_dict()}
        steps.append(row)
        if on_step:
            on_step(row)
    return steps


def run_crafter_episode(env: CrafterEnv, planner: CrafterPlanner, goal: str, seed: int,
                        max_skills: int = 40, on_step: Callable[[dict[str, Any]], None] | None = None
                        ) -> dict[str, Any]:
    """One episode towards the achievement ``goal`` from ``seed``'s world; its row."""
    if goal not in ACHIEVEMENTS:
        raise EmbodiedError(f"unknown achievement {goal!r}; achievements: {', '.join(ACHIEVEMENTS)}")
    t0 = time.perf_counter()
    env.reset(seed=seed)
    body = CrafterBody(env)
    calls_before = planner.llm_calls
    steps = attempt(body, planner, goal, max_skills, on_step)
    for row in steps:
        row.pop("abstract")
    achievements = body.achievements
    return {"goal": goal, "seed": seed, "success": achievements[goal] > 0, "skills": len(steps),
            "game_steps": env.steps, "llm_calls": planner.llm_calls - calls_before,
            "unlocked": sorted(a for a, n in achievements.items() if n > 0), "dead": env.player.health <= 0,
            "seconds": round(time.perf_counter() - t0, 2), "steps": steps}


def evaluate_crafter(planner: CrafterPlanner, goals: Sequence[str], seeds: Sequence[int], max_skills: int = 40,
                     on_episode: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every goal on every seed: success per goal, skills and game steps and model calls per episode."""
    env = CrafterEnv()
    rows = []
    try:
        for goal in goals:
            for seed in seeds:
                row = run_crafter_episode(env, planner, goal, seed, max_skills)
                rows.append(row)
                if on_episode:
                    on_episode(row)
    finally:
        env.close()
    per_goal = {g: {"n": sum(r["goal"] == g for r in rows),
                    "success": round(sum(r["success"] for r in rows if r["goal"] == g)
                                     / max(sum(r["goal"] == g for r in rows), 1), 3)} for g in goals}
    n = max(len(rows), 1)
    return {"n": len(rows), "success": round(sum(r["success"] for r in rows) / n, 3), "per_goal": per_goal,
            "skills_per_episode": round(sum(r["skills"] for r in rows) / n, 2),
            "llm_calls_per_episode": round(sum(r["llm_calls"] for r in rows) / n, 2),
            "game_steps_per_episode": round(sum(r["game_steps"] for r in rows) / n, 1), "episodes": rows}
