"""Voyager's table on the Crafter world: `embodied learn --env crafter` on three seeds with and without the
skill library, then the iterations and language-model calls until each tech-tree milestone, as JSON
(benchmarks/results/crafter_learn.json) and a plot (crafter_learn.png). Rerunning resumes the runs (each is
logged in its own library file) and only redraws what is done.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 1 .venv/bin/python benchmarks/crafter_voyager.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from embodied.cli import main
from embodied.library.store import SkillStore
from embodied.runtime.crafter_learn import MILESTONES, milestones

RESULTS = Path("benchmarks/results")


def run(seeds: list[int], iterations: int, folder: Path) -> None:
    for seed in seeds:
        for mode in ("library", "none"):
            argv = ["learn", "--env", "crafter", "--iterations", str(iterations), "--seed", str(seed),
                    "--run", f"voyager-{mode}-{seed}", "--library", str(folder / f"{mode}-{seed}.db"),
                    "--out", str(folder / f"{mode}-{seed}")]
            if main(argv + (["--no-library"] if mode == "none" else [])) != 0:
                sys.exit(f"learn failed: {' '.join(argv)}")


def collate(seeds: list[int], folder: Path) -> dict:
    table: dict = {"command": "OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 1 .venv/bin/python "
                              "benchmarks/crafter_voyager.py", "seeds": seeds, "runs": {}}
    for mode in ("library", "none"):
        for seed in seeds:
            with SkillStore(folder / f"{mode}-{seed}.db", readonly=True) as store:
                history = store.learn_log(f"voyager-{mode}-{seed}")
            rows = [{"iteration": r["iteration"], "goal": r["goal"], "solved": r["solved"], "life": r["life"],
                     "llm_calls": r["llm_calls"], "skill_calls": r["skill_calls"], "game_steps": r["game_steps"],
                     "used": r["used"], "skill_status": r["skill_status"], "unlocked": r["unlocked"]}
                    for r in history]
            table["runs"][f"{mode}-{seed}"] = {"milestones": milestones(history), "iterations": len(rows),
                                               "llm_calls": sum(r["llm_calls"] for r in rows),
                                               "deaths": sum(r["dead"] for r in history), "rows": rows}
    summary = {}
    for mode in ("library", "none"):
        summary[mode] = {}
        for m in MILESTONES:
            got = [table["runs"][f"{mode}-{s}"]["milestones"][m] for s in seeds]
            reached = [g for g in got if g is not None]
            summary[mode][m] = {"reached": f"{len(reached)}/{len(seeds)}",
                                "iterations": [g["iterations"] if g else None for g in got],
                                "llm_calls": [g["llm_calls"] if g else None for g in got],
                                "game_steps": [g["game_steps"] if g else None for g in got]}
    table["summary"] = summary
    return table


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = {"library": "tab:blue", "none": "tab:red"}
    for key, run in table["runs"].items():
        mode = key.split("-")[0]
        rows = run["rows"]
        level, calls, xs, ys, cs = 0, 0, [], [], []
        for r in rows:
            calls += r["llm_calls"]
            level = max(level, sum(m in r["unlocked"] for m in MILESTONES))
            xs.append(r["iteration"] + 1)
            ys.append(level)
            cs.append(calls)
        label = ("with library" if mode == "library" else "without library") if key.endswith("-0") else None
        axes[0].step(xs, ys, where="post", color=colours[mode], alpha=0.7, label=label)
        axes[1].step(cs, ys, where="post", color=colours[mode], alpha=0.7, label=label)
    for ax, xlabel in zip(axes, ("learning iterations", "language-model calls"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_yticks(range(len(MILESTONES) + 1), ["none", "wood pickaxe", "stone pickaxe", "iron pickaxe", "diamond"])
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    axes[0].set_title(f"Crafter tech tree, {len(table['seeds'])} seeds (one line each)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--folder", type=Path, default=Path("runs/crafter_voyager"))
    parser.add_argument("--collate-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    if not args.collate_only:
        run(seeds, args.iterations, args.folder)
    table = collate(seeds, args.folder)
    (RESULTS / "crafter_learn.json").write_text(json.dumps(table, indent=1))
    plot(table, RESULTS / "crafter_learn.png")
    print(json.dumps(table["summary"], indent=1))
