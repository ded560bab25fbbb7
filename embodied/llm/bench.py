"""`embodied bench planner`: option scoring speed, naive (one pass per option) vs prompt-cached, as JSON.

Run alone: ``python -m embodied.llm.bench --model smollm2 --options 53``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from embodied.llm.base import load_language_model
from embodied.llm.hf import HFLanguageModel

COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "cyan", "brown", "gray"]
PLACES = [f"{c} bowl" for c in COLORS] + [
    f"{v} {h} corner" for v in ("top", "bottom") for h in ("left", "right")
]
PREAMBLE = (
    "You are a robot arm above a table with coloured blocks and bowls. You can pick up one block at a time and "
    "place it in a bowl, on another block, or in a corner of the table. Plan one step per line and say done "
    "when the task is complete.\n"
)


def planning_prompt(lm: HFLanguageModel, prompt_tokens: int, rng: np.random.Generator) -> str:
    """SayCan-style few-shot prompt: solved examples until about ``prompt_tokens`` tokens, then an open task."""
    text = PREAMBLE
    while True:
        a, b, c = rng.choice(COLORS, size=3, replace=False)
        place = rng.choice(PLACES)
        task = (
            f"\nHuman: put the {a} block in the {place}, then stack the {b} block on the {a} block.\nRobot: "
        )
        steps = (f"1. pick up the {a} block and place it in the {place}.\n2. pick up the {b} block and place it "
                 f"on the {a} block.\n3. done.")  # fmt: skip
        nxt = f"\nHuman: stack the {c} block on the {b} block.\nRobot: 1."
        if len(lm.tokenize(text + task + steps + nxt, special=True)) > prompt_tokens:
            return text + nxt
        text += task + steps


def planning_options(lm: HFLanguageModel, n: int, option_tokens: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct pick-and-place options, each cut to ``option_tokens`` tokens."""
    combos = [(a, p) for a in COLORS for p in PLACES if not p.startswith(a)]
    if n > len(combos):
        raise ValueError(f"n_options={n}: at most {len(combos)} distinct options")
    out = []
    for i in rng.permutation(len(combos))[:n]:
        a, p = combos[i]
        ids = lm.tokenize(
            f" pick up the {a} block and place it in the {p}, then wait for the next instruction."
        )
        out.append(lm.tokenizer.decode(ids[:option_tokens]))
    return out


def bench_planner(lm: HFLanguageModel, n_options: int = 53, prompt_tokens: int = 400, option_tokens: int = 12,
                  repeats: int = 3, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Time naive vs cached scoring of the same options after the same prompt; returns a JSON-able dict.

    ``cached_s`` starts from an empty cache each time (the prompt is run too); ``cached_reuse_s`` scores a
    prompt grown by one plan step on top of the previous prompt's cache, as an episode does. Timings are
    medians over ``repeats`` interleaved rounds, after a warm-up.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: expected >= 1")
    rng = np.random.default_rng(seed)
    prompt = planning_prompt(lm, prompt_tokens, rng)
    options = planning_options(lm, n_options, option_tokens, rng)
    grown = prompt + options[0] + "\n2."
    mode = lm.scoring
    other = "batched" if mode == "packed" else "packed"

    def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    def cached(scoring: str) -> np.ndarray:
        lm.scoring = scoring
        lm.reset_cache()  # a fresh prompt: its own forward pass is part of the time
        return lm.score(prompt, options).logprob_sum

    lm.score_naive(prompt, options[:2])  # warm-up (allocator, kernels)
    cached(other)
    cached(mode)
    times: dict[str, list[float]] = {"naive": [], mode: [], other: [], "reuse": []}
    for _ in range(repeats):  # interleaved, so load from other processes hits every variant alike
        dt, naive = timed(lambda: lm.score_naive(prompt, options).logprob_sum)
        times["naive"].append(dt)
        dt, fast = timed(lambda: cached(mode))
        times[mode].append(dt)
        dt, other_scores = timed(lambda: cached(other))
        times[other].append(dt)
        lm.scoring = mode
        dt, _ = timed(lambda: lm.score(grown, options))  # on top of the previous prompt's cache
        times["reuse"].append(dt)
    lm.scoring = mode
    lm.reset_cache()
    naive_s, cached_s, reuse_s, other_s = (
        statistics.median(times[k]) for k in ("naive", mode, "reuse", other)
    )
    return {
        "model": lm.name,
        "device": str(lm.device),
        "threads": torch.get_num_threads(),
        "options": n_options,
        "prompt_tokens": len(lm.tokenize(prompt, special=True)),
        "option_tokens_mean": float(np.mean([len(lm.tokenize(o)) for o in options])),
        "scoring": mode,
        "naive_s": round(naive_s, 4),
        "cached_s": round(cached_s, 4),
        "cached_reuse_s": round(reuse_s, 4),
        f"cached_{other}_s": round(other_s, 4),
        "speedup": round(naive_s / cached_s, 2),
        "max_abs_diff": float(max(np.abs(naive - fast).max(), np.abs(naive - other_scores).max())),
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> None:
    """Print the planner benchmark as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--options", type=int, default=53)
    ap.add_argument("--prompt-tokens", type=int, default=400)
    ap.add_argument("--option-tokens", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    lm = load_language_model(args.model, threads=args.threads)
    if not isinstance(lm, HFLanguageModel):
        raise SystemExit(f"bench planner needs a local transformers model, not {lm.name!r}")
    result = bench_planner(lm, args.options, args.prompt_tokens, args.option_tokens, args.repeats)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
