"""Collect the Crafter score runs and the learned skills into benchmarks/results/ (crafter_score.json,
crafter_skills.json), after `benchmarks/crafter_voyager.py` and the two `embodied crafter --score` runs
(README, Measured)."""

from __future__ import annotations

import json
from pathlib import Path

from embodied.library.store import SkillStore
from embodied.runtime.crafter_learn import crafter_score, success_rates

RESULTS = Path("benchmarks/results")
LIBRARY = "benchmarks/results/crafter_library.db"  # seed 0's library from crafter_voyager.py, copied as it was
PUBLISHED = {"human experts": 50.5, "SPRING (GPT-4)": 27.3, "DreamerV3": 14.5, "PPO": 4.6, "random": 1.6}


def main() -> None:
    score: dict = {"published": PUBLISHED, "length": 1000}
    agent_runs = [("runs/crafter_score/s0", "--episodes 10 --seed 0"), ("runs/crafter_score/s10", "--episodes 10 --seed 10")]
    for agent, folders in (("saycan+library", agent_runs), ("random", [("runs/crafter_score/random", "--episodes 20 --seed 0")])):
        episodes, commands = [], []
        for folder, flags in folders:
            episodes += json.loads((Path(folder) / "episodes.json").read_text())
            extra = "--random" if agent == "random" else "--library benchmarks/results/crafter_library.db"
            commands.append(f"OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 1 embodied crafter --score {flags} "
                            f"--length 1000 {extra} --out {folder}")
        rates = success_rates(episodes)
        score[agent] = {"commands": commands, "episodes": len(episodes), "seeds": sorted(e["seed"] for e in episodes),
                        "score": round(crafter_score(list(rates.values())), 2), "success_rates": rates,
                        "died": sum(e["dead"] for e in episodes),
                        "stopped_by_choice_budget": sum(bool(e.get("stopped")) for e in episodes),
                        "game_steps_per_episode": round(sum(e["game_steps"] for e in episodes) / len(episodes), 1),
                        "llm_calls_per_episode": round(sum(e.get("llm_calls", 0) for e in episodes) / len(episodes), 1),
                        "episodes_detail": episodes}
    (RESULTS / "crafter_score.json").write_text(json.dumps(score, indent=1))
    skills = {}
    with SkillStore(LIBRARY, readonly=True) as store:
        log = store.learn_log("voyager-library-0")
        for r in store.all():
            uses = [ok for row in log for name, ok in row["choices"] if name == r.name and r.name in row["used"]]
            verified = store.verifications(r.name)
            skills[r.name] = {"code": r.code, "description": r.description,
                              "verification": r.provenance.get("verified"),
                              "verification_seeds": verified[0]["seeds"] if verified else None,
                              "reuses": len(uses), "reuse_successes": sum(uses),
                              "store_successes_attempts": f"{r.successes}/{r.attempts}",
                              "learned_in": r.provenance.get("episode")}
    (RESULTS / "crafter_skills.json").write_text(json.dumps(
        {"library": f"{LIBRARY} (runs/crafter_voyager/library-0.db, run voyager-library-0)", "skills": skills}, indent=1))


if __name__ == "__main__":
    main()
