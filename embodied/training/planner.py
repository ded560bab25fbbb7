"""`embodied train planner`: fine-tune the language model's next-step choice on oracle plans with LoRA.

Data: generated tasks (seeds from `PLANNER_TRAIN`, far from evaluation seeds and from the few-shot bank),
solved step by step by the oracle, written exactly as the live prompt; some steps fail on purpose (with
the reasons skills report) so the model learns to retry after feedback, and instructions are reworded
(synonyms, polite forms, clause order) so it learns free wording. Loss: only the next step's tokens."""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from embodied.planners.oracle import OraclePlanner
from embodied.planners.prompting import (
    FAILURE_REASONS,
    HEADER,
    Step,
    episode_text,
    initial_state,
    option_text,
)
from embodied.world.errors import EmbodiedError
from embodied.world.seeds import PLANNER_TRAIN
from envs.generator import FAMILY_NAMES, generate
from policies.lora import PLANNER_ADAPTER, CheckpointError, LoRAConfig, apply_lora, fit, save_adapter
from skills import apply

log = logging.getLogger(__name__)


_WORD_SWAPS = {
    "block": ["block", "block", "cube", "brick"], "blocks": ["blocks", "blocks", "cubes", "bricks"],
    "bowl": ["bowl", "bowl", "dish", "container"], "bowls": ["bowls", "bowls", "dishes", "containers"],
    "put": ["put", "place", "move", "set", "drop", "get"], "stack": ["stack", "stack", "pile"], "gray": ["gray", "grey"],
}
_PREFIXES = ["", "", "", "please ", "could you ", "can you please ", "i'd like you to ", "robot, ", "kindly ",
             "would you mind to ", "go ahead and ", "now ", "make sure to ", "your task: ", "next, "]
_LOCATION_SWAPS = {
    "top left corner": ["top left", "upper left corner", "top-left corner", "far left corner"],
    "top right corner": ["top right", "upper right corner", "top-right corner", "far right corner"],
    "bottom left corner": ["bottom left", "lower left corner", "bottom-left corner", "near left corner"],
    "bottom right corner": ["bottom right", "lower right corner", "bottom-right corner", "near right corner"],
    "the middle": ["the center", "the centre", "the middle of the table", "the center of the table"],
}
_SUFFIXES = ["", "", "", " please", ", thanks", " for me", ", thank you", " now"]


def reword(text: str, rng: random.Random) -> str:
    """A free-wording variant of a generated instruction: swaps, polite frames, clause order."""
    for name, variants in _LOCATION_SWAPS.items():
        if name in text and rng.random() < 0.6:
            text = text.replace(name, rng.choice(variants))
    words = [rng.choice(_WORD_SWAPS[w]) if w in _WORD_SWAPS and rng.random() < 0.5 else w for w in text.split()]
    out = " ".join(words)
    two = re.fullmatch(r"(put|place|move|set) (the .+?) and (the .+)", out)
    if two and rng.random() < 0.5:  # "put A and B" -> "put B and A"
        out = f"{two.group(1)} {two.group(3)} and {two.group(2)}"
    out = rng.choice(_PREFIXES) + out + rng.choice(_SUFFIXES)
    return out[0].upper() + out[1:] if rng.random() < 0.5 else out


def trajectory_examples(family: str, seed: int, rng: random.Random, fail_p: float = 0.15,
                        reword_p: float = 0.5) -> list[tuple[str, str]]:
    """(prompt, next step) pairs along one oracle-solved episode, with injected failures."""
    task = generate(family, seed)
    instruction = task.instruction
    if len(task.scene.bowls) == 1 and rng.random() < 0.3:  # implicit object: "the bowl" when there is one
        instruction = instruction.replace(f"{task.scene.bowls[0]} bowl", "bowl")
    instruction = reword(instruction, rng) if rng.random() < reword_p else instruction
    objects = task.scene.object_names()
    state, history, out = initial_state(task), [], []
    oracle = OraclePlanner(task.goal)
    for _ in range(task.max_steps + 2):
        call = oracle.next_call(state)  # "done" once the goal holds; None when it cannot be reached
        if call is None:
            break
        out.append((HEADER + "\n\n" + episode_text(instruction, objects, history), option_text(call)))
        if call.name == "done":
            break
        if rng.random() < fail_p:
            history.append(Step(call, False, rng.choice(FAILURE_REASONS)))
            continue
        state, why = apply(state, call)
        history.append(Step(call, why is None, why or ""))
    return out


def build_dataset(n_episodes: int, seed: int = PLANNER_TRAIN.start) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    data = []
    for i in range(n_episodes):
        data += trajectory_examples(FAMILY_NAMES[i % len(FAMILY_NAMES)], seed + i, rng)
    return data


@dataclass
class TrainConfig:
    """Fine-tuning run; the defaults made the shipped adapter (see README for the command)."""

    episodes: int = 3000  # generated episodes (each gives ~3 next-step examples)
    steps: int = 600  # optimiser steps (~2 passes over the data at batch 32)
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 30
    seed: int = 0
    threads: int = 0  # 0: all cores
    lora: LoRAConfig | None = None

    def __post_init__(self) -> None:
        for name in ("episodes", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < 1:
            raise ValueError(f"TrainConfig.lr must be in (0, 1), got {self.lr}")
        self.lora = self.lora or LoRAConfig()


def encode(lm: object, data: list[tuple[str, str]]) -> list[tuple[list[int], int]]:
    """Token ids exactly as scoring sees them: prompt with special tokens, then the option; and the prompt length."""
    out = []
    for prompt, target in data:
        p = lm._prompt_ids(prompt)  # type: ignore[attr-defined]
        out.append((p + lm.tokenize(target), len(p)))  # type: ignore[attr-defined]
    return out


def train(config: TrainConfig, out: Path = PLANNER_ADAPTER, llm: str = "smollm2", device: str = "cpu",
          progress: Callable[[int, float], None] | None = None) -> dict:
    """Train a LoRA adapter for the planner's language model and save it (with its loss curve) in ``out``."""
    return train_lora(config, build_dataset(config.episodes), encode, out, llm, device, progress)


def train_lora(config: TrainConfig, data: list[tuple[str, str]],
               encoder: Callable[[object, list[tuple[str, str]]], list[tuple[list[int], int]]], out: Path,
               llm: str = "smollm2", device: str = "cpu", progress: Callable[[int, float], None] | None = None,
               provenance: dict | None = None) -> dict:
    """Load ``llm``, tokenize ``data`` (prompt, target) pairs with ``encoder``, wrap the model in LoRA and fit
    it; every trainer of a language-model adapter (planner, code) goes through here."""
    from embodied.llm.base import load_language_model

    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    lm = load_language_model(llm)
    encoded = encoder(lm, data)
    model = lm.model.to(device)
    wrapped = apply_lora(model, config.lora)
    log.info("%d examples; LoRA on %d layers", len(data), len(wrapped))
    return _fit_and_save(model, encoded, lm._pad, config, out, llm, device, progress,  # type: ignore[attr-defined]
                         provenance)


def _fit_and_save(model: torch.nn.Module, encoded: list[tuple[list[int], int]], pad_id: int, config: TrainConfig,
                  out: Path, llm: str, device: str, progress: Callable[[int, float], None] | None = None,
                  provenance: dict | None = None) -> dict:
    """The fit shared by every entry point, then the adapter, its config with provenance (``provenance``
    overrides the planner's seed range), and the curve."""
    t0 = time.perf_counter()
    losses = fit(model, encoded, steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                 warmup=config.warmup, seed=config.seed, pad_id=pad_id, device=device, progress=progress)
    meta = {"base_model": llm, "train": {k: v for k, v in asdict(config).items() if k != "lora"},
            "examples": len(encoded), "device": device, "seconds": round(time.perf_counter() - t0, 1),
            "final_loss": round(float(np.mean(losses[-20:])), 4), "seed_base": PLANNER_TRAIN.start,
            **(provenance or {})}
    save_adapter(model.cpu(), config.lora, out, meta)
    write_curve(out, losses)
    return meta


def write_curve(out: Path, losses: list[float]) -> None:
    """`loss.json` and, when matplotlib is installed, `loss.png` beside the adapter's config."""
    (out / "loss.json").write_text(json.dumps([round(v, 5) for v in losses]))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib not installed: loss.png skipped (loss.json has the curve)")
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, lw=0.8)
    ax.set(xlabel="step", ylabel="next-step loss (nats/token)", yscale="log", title="planner LoRA fine-tuning")
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=120)
    plt.close(fig)


def export_tokens(config: TrainConfig, path: Path, llm: str = "smollm2") -> dict:
    """Build and tokenize the dataset here (so a machine without the tokenizer or task code can train):
    a gzipped JSON with the examples, the pad id and weight fingerprints to check the base model there."""
    import gzip

    from embodied.llm.base import load_language_model

    lm = load_language_model(llm)
    data = encode(lm, build_dataset(config.episodes))
    fingerprint = {k: float(v.double().sum()) for k, v in list(lm.model.state_dict().items())[:4]}
    payload = {"examples": data, "pad_id": lm._pad, "fingerprint": fingerprint, "episodes": config.episodes}
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump(payload, f)
    return {"examples": len(data), "tokens": sum(len(ids) for ids, _ in data)}


def train_from_tokens(model_dir: str, gguf_file: str | None, tokens: Path, out: Path, config: TrainConfig,
                      device: str = "cuda") -> dict:
    """The same fit on pre-tokenized data, loading the base model straight from its GGUF (float32)."""
    import gzip

    from transformers import AutoModelForCausalLM

    with gzip.open(tokens, "rt") as f:
        payload = json.load(f)
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=gguf_file, dtype=torch.float32)
    for k, v in list(model.state_dict().items())[:4]:
        want = payload["fingerprint"].get(k)
        if want is None or abs(float(v.double().sum()) - want) > 1e-3 * max(1.0, abs(want)):
            raise CheckpointError(f"base model differs from the one the data was made with ({k})")
    model = model.to(device)
    apply_lora(model, config.lora)
    examples = [(ids, n) for ids, n in payload["examples"]]
    return _fit_and_save(model, examples, payload["pad_id"], config, out, "smollm2", device)


def build_parser() -> argparse.ArgumentParser:
    """`embodied train planner` and its flags (defaults: the shipped adapter's run)."""
    ap = argparse.ArgumentParser(prog="embodied train planner", description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=TrainConfig.episodes)
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--warmup", type=int, default=TrainConfig.warmup)
    ap.add_argument("--seed", type=int, default=TrainConfig.seed)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--llm", default="smollm2")
    ap.add_argument("--out", type=Path, help="adapter folder (default: runs/train-planner-<time>; "
                                             "`--out policies/planner_lora` replaces the shipped adapter)")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Train the adapter with a progress bar on stderr; print its metadata as JSON on stdout."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    args = build_parser().parse_args(argv)
    try:
        config = TrainConfig(episodes=args.episodes, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             warmup=args.warmup, seed=args.seed)
    except ValueError as e:
        raise EmbodiedError(str(e)) from e
    out = args.out or Path("runs") / time.strftime("train-planner-%Y%m%d-%H%M%S")  # never the shipped one unasked
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("loss {task.fields[loss]}"), console=console) as progress:
        bar = progress.add_task("train", total=config.steps, loss="-")
        meta = train(config, out, llm=args.llm, device=args.device,
                     progress=lambda step, loss: progress.update(bar, completed=step + 1, loss=f"{loss:.4f}"))
    Console().print_json(json.dumps(meta))
    console.print(f"adapter written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
