"""The Crafter parts of the command line that grew beyond a few lines: `embodied learn --env crafter` (the
skill library grown in the open world) and `embodied crafter --score` (the Crafter score over long
episodes). The console is the CLI's (`embodied.cli`); library code only logs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from embodied.world.errors import EmbodiedError


def cmd_learn_crafter(args: argparse.Namespace) -> int:
    """`embodied learn --env crafter`: one lifelong run of the curriculum; a line per iteration, the summary
    (with the iterations and model calls until each milestone) as JSON on stdout."""
    from embodied.cli import _checked_out_dir, console, out_console
    from embodied.library.crafter import is_crafter
    from embodied.library.store import SkillStore, default_library_path
    from embodied.planners.crafter import CrafterPlanner, CrafterPlannerConfig
    from embodied.runtime.crafter_learn import CrafterLearnConfig, learn_crafter, milestones, next_iteration

    config = CrafterLearnConfig(iterations=args.iterations, seed=args.seed, run=args.run,
                                library=not args.no_library, verify_seeds=args.verify_seeds)
    path = args.library or default_library_path()
    out = _checked_out_dir(Path(args.out))[0] if args.out else None  # before any work
    store = SkillStore(path)
    store.check_writable()
    planner = CrafterPlanner(CrafterPlannerConfig(llm=getattr(args, "planner_llm", None) or "smollm2"))
    done = next_iteration(store.learn_log(config.run))
    console.print(f"[bold]learn[/] (Crafter) run {config.run!r}, {'with' if config.library else 'without'} the "
                  f"library {path}" + (f" (resuming after {done} iterations)" if done else ""))

    def tick(row: dict[str, Any]) -> None:
        mark = "[green]solved[/]" if row["solved"] else "[red]not solved[/]"
        extra = f", added {row['skill']}" if row.get("skill_status") == "added" else (
            f", {row['skill_status']}" if row.get("skill_status") else "")
        used = f", used {', '.join(row['used'])}" if row["used"] else ""
        console.print(f"{row['iteration']:>4} {row['goal']:<19} {mark} in {row['skill_calls']} choices, "
                      f"{row['llm_calls']} LM calls, game step {row['game_steps']} (world {row['life']})"
                      f"{used}{extra}" + (" [red](died)[/]" if row["dead"] else ""), highlight=False)

    try:
        history = learn_crafter(config, store, planner, on_iteration=tick)
        crafter_skills = [r for r in store.all() if is_crafter(r)]
    finally:
        store.close()
    summary = {"run": config.run, "library": str(path), "with_library": config.library,
               "iterations": len(history), "solved": sum(r["solved"] for r in history),
               "llm_calls": sum(r["llm_calls"] for r in history),
               "skills_added": sum(r.get("skill_status") == "added" for r in history),
               "library_size": len(crafter_skills), "milestones": milestones(history),
               "unlocked": sorted({a for r in history for a in r["unlocked"]})}
    if out is not None:
        curve = [{k: r[k] for k in ("iteration", "goal", "solved", "life", "llm_calls", "skill_calls",
                                    "game_steps", "unlocked", "used", "skill_status")} for r in history]
        (out / "curve.json").write_text(json.dumps(curve, indent=1))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    out_console.print_json(json.dumps(summary))
    return 0


def cmd_crafter_score(args: argparse.Namespace) -> int:
    """`embodied crafter --score`: long episodes with the curriculum, the planner and the library (or random
    actions with --random); success rate per achievement and the Crafter score as JSON on stdout."""
    from embodied.cli import _checked_out_dir, console, out_console
    from embodied.library.crafter import CrafterLibrary
    from embodied.library.store import SkillStore
    from embodied.planners.crafter import CrafterPlanner, CrafterPlannerConfig
    from embodied.runtime.crafter_learn import crafter_score, play_long_episode, random_episode, success_rates
    from embodied.world.seeds import CRAFTER_SCORE

    seeds = range(CRAFTER_SCORE.start + args.seed, CRAFTER_SCORE.start + args.seed + args.episodes)
    CRAFTER_SCORE.check(seeds.start, args.episodes, "--seed")
    out = _checked_out_dir(Path(args.out))[0] if args.out else None
    planner = None
    if not args.random:
        library = None
        if args.library is not None:
            if not Path(args.library).exists():
                raise EmbodiedError(f"no skill library at {args.library}")
            library = CrafterLibrary(SkillStore(args.library, readonly=True))
        planner = CrafterPlanner(CrafterPlannerConfig(llm=args.llm, guard=not args.no_guard,
                                                      affordance=not args.no_affordance), library=library)
    episodes = []
    for seed in seeds:
        row = random_episode(seed, args.length) if planner is None else play_long_episode(planner, seed, args.length)
        episodes.append(row)
        console.print(f"seed {seed}: {len(row['unlocked'])} achievements in {row['game_steps']} game steps"
                      + (" (died)" if row["dead"] else "") + f": {', '.join(row['unlocked'])}", highlight=False)
        if out is not None:
            (out / "episodes.json").write_text(json.dumps(episodes, indent=1))
    rates = success_rates(episodes)
    report = {"agent": "random" if planner is None else "saycan" + ("+library" if args.library else ""),
              "episodes": len(episodes), "length": args.length, "seeds": [seeds.start, seeds.stop],
              "score": round(crafter_score(list(rates.values())), 2), "success_rates": rates,
              "died": sum(e["dead"] for e in episodes),
              "game_steps_per_episode": round(sum(e["game_steps"] for e in episodes) / len(episodes), 1)}
    if planner is not None:
        report["llm_calls_per_episode"] = round(sum(e["llm_calls"] for e in episodes) / len(episodes), 1)
        report["library_uses_per_episode"] = round(sum(e["library_uses"] for e in episodes) / len(episodes), 2)
    if out is not None:
        (out / "report.json").write_text(json.dumps(report, indent=1))
    out_console.print_json(json.dumps(report))
    return 0

