"""`embodied train code`: fine-tune the language model to write Code-as-Policies programs with LoRA.

Data: generated tasks of every family, old and spatial (seeds from `CODE_TRAIN`, far from evaluation seeds and
from the few-shot bank), each with the program `embodied.planners.programs.write_program` writes for it, kept only
when that program reaches the goal in a dry run on the symbolic state; half the instructions reworded (synonyms,
polite frames) as for the planner adapter. Loss: only the program's tokens (and the end-of-text token after
them, so the model learns to stop)."""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

from embodied.library.api import API_METHODS, DryRunAPI
from embodied.library.executor import run_skill
from embodied.planners.programs import prompt_for, write_program
from embodied.planners.prompting import initial_state
from embodied.training.planner import TrainConfig, reword, train_lora
from embodied.world.errors import EmbodiedError
from embodied.world.predicates import goal_satisfied
from embodied.world.scene import BLOCK_SIZE, TABLE_Z, ObjectState, SceneState
from embodied.world.seeds import CODE_TRAIN
from embodied.world.symbolic import SymbolicState
from envs.generator import FAMILY_NAMES, LONG_FAMILY_NAMES, SPATIAL_FAMILY_NAMES, generate

log = logging.getLogger(__name__)
FAMILIES = FAMILY_NAMES + LONG_FAMILY_NAMES + SPATIAL_FAMILY_NAMES
CODE_ADAPTER = Path(__file__).resolve().parents[2] / "policies" / "code_lora"


def scene_of(sym: SymbolicState) -> SceneState:
    """A physical scene matching a start state (every block on the table), for the dry run's first-call check."""
    objs = {}
    for name, (x, y) in sym.xy.items():
        color, kind = name.split()
        objs[name] = ObjectState(name, kind, color, (x, y, TABLE_Z + (BLOCK_SIZE / 2 if kind == "block" else 0.0)))
    return SceneState(objects=objs, ee_position=(0.3, 0.0, 0.9))


def dry_run_reaches_goal(task: object, body: str, sym: SymbolicState) -> bool:
    """The program, run on the symbolic state with ideal skills, ends with the task's goal true."""
    api = DryRunAPI(scene_of(sym), sym)
    result = run_skill("def program(api):\n" + body, api, {}, API_METHODS)
    return result.success and goal_satisfied(task.goal, api.final_state)  # type: ignore[attr-defined]


def build_dataset(n_tasks: int, seed: int = CODE_TRAIN.start, reword_p: float = 0.5) -> list[tuple[str, str]]:
    """(prompt, program body) pairs from ``n_tasks`` generated tasks, round-robin over every family."""
    CODE_TRAIN.check(seed, n_tasks, "code training seed")
    rng = random.Random(seed)
    data = []
    for i in range(n_tasks):
        task = generate(FAMILIES[i % len(FAMILIES)], seed + i)
        sym = initial_state(task)
        body = write_program(task, sym)
        if body is None or not dry_run_reaches_goal(task, body, sym):
            continue
        instruction = reword(task.instruction, rng) if rng.random() < reword_p else task.instruction
        data.append((prompt_for(instruction, task.scene.object_names()), body))
    return data


def encode(lm: object, data: list[tuple[str, str]]) -> list[tuple[list[int], int]]:
    """Prompt ids (with the chat model's special tokens, as generation sees them), then the program's and EOS."""
    eos = lm.tokenizer.eos_token_id  # type: ignore[attr-defined]
    out = []
    for prompt, target in data:
        p = lm._prompt_ids(prompt)  # type: ignore[attr-defined]
        out.append((p + lm.tokenize(target) + [eos], len(p)))  # type: ignore[attr-defined]
    return out


def train(config: TrainConfig, out: Path = CODE_ADAPTER, llm: str = "smollm2", device: str = "cpu",
          progress: Callable[[int, float], None] | None = None) -> dict:
    """Train the program-writing adapter and save it (with its loss curve) in ``out``; ``config.episodes`` is
    the number of generated tasks."""
    return train_lora(config, build_dataset(config.episodes), encode, out, llm, device, progress,
                      {"seed_base": CODE_TRAIN.start, "data": "embodied.training.code.build_dataset"})


def main(argv: list[str] | None = None) -> int:
    """Train with a progress bar on stderr; print the adapter's metadata as JSON on stdout."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    ap = argparse.ArgumentParser(prog="embodied train code", description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=1200, help="generated tasks (each gives one program)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--llm", default="smollm2")
    ap.add_argument("--out", type=Path, help="adapter folder (default: runs/train-code-<time>; "
                                             "`--out policies/code_lora` replaces the shipped adapter)")
    args = ap.parse_args(argv)
    try:
        config = TrainConfig(episodes=args.tasks, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             warmup=args.warmup, seed=args.seed)
    except ValueError as e:
        raise EmbodiedError(str(e)) from e
    out = args.out or Path("runs") / time.strftime("train-code-%Y%m%d-%H%M%S")
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]train code[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("loss {task.fields[loss]}"), console=console) as progress:
        bar = progress.add_task("train", total=config.steps, loss="-")
        meta = train(config, out, llm=args.llm, device=args.device,
                     progress=lambda step, loss: progress.update(bar, completed=step + 1, loss=f"{loss:.4f}"))
    Console().print_json(json.dumps(meta))
    console.print(f"adapter written to {out}")
    return 0
