"""`embodied bench planner`: option scoring speed, naive (one pass per option) vs prompt-cached, as JSON.

The prompt-cached modes: packed (the reference before tree scoring), batched and tree (the default).

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
from embodied.llm.hf import HFLanguageModel, OneDNNLinear, onednn_linear_works, use_linear_kernel

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


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 1024, reps: int = 4, repeats: int = 3) -> float:
    """Torch matmul throughput (GFLOP/s) of ``n`` x ``n`` products at the current thread count, the faster of
    torch's default kernel and oneDNN's (where it has one): the ceiling the model's forward passes
    (matmul-bound on a CPU) are held against."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    kernels = [lambda: a @ b]
    if dtype == torch.float32 and onednn_linear_works():
        kernels.append(lambda: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], ""))
    best = 0.0
    with torch.inference_mode():
        for kernel in kernels:
            kernel()  # warm-up
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                for _ in range(reps):
                    kernel()
                times.append(time.perf_counter() - t)
            best = max(best, 2 * n**3 * reps / statistics.median(times) / 1e9)
    return best


def tree_flops(lm: HFLanguageModel, prompt_len: int, options: list[str], with_prompt: bool = True
               ) -> tuple[int, int, float]:
    """(unique option tokens, tokens tree scoring runs, FLOPs) after a cached prompt, or from an empty cache
    (``with_prompt``): 2 * non-embedding params per token run, attention (4 * heads * head_dim per query-key
    pair and layer: causal prompt, then every tree row against the whole cache) and the vocabulary projection
    of the rows kept (the prompt pass keeps one; the tree pass keeps all of its rows: the prompt's last token
    and the inner nodes, each predicting a node)."""
    from embodied.llm.hf import prefix_tree

    ids = lm._option_ids(options)
    tokens, _, parent, _ = prefix_tree(ids, [[1.0] * len(o) for o in ids])
    model, cfg = lm.model, lm.model.config
    emb, out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    body = sum(p.numel() for p in model.parameters()) - emb.numel() - (0 if out is emb else out.numel())
    width = cfg.num_attention_heads * (getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    past, rows = prompt_len - 1, 1 + len(set(parent) - {-1})  # the tree pass: last + inner nodes
    pairs = rows * (past + rows)
    run = rows
    flops = 2 * body * rows + 4 * width * pairs * cfg.num_hidden_layers + 2 * out.numel() * rows
    if with_prompt:
        run += past
        flops += 2 * body * past + 4 * width * (past * (past + 1) // 2) * cfg.num_hidden_layers + 2 * out.numel()
    return len(tokens), run, float(flops)


def packed_flops(lm: HFLanguageModel, prompt_len: int, options: list[str]) -> float:
    """FLOPs of the packed pass (the reference) after a cached prompt, counted like `tree_flops`: every option
    token runs (plus the prompt's last), each against the whole cache and the packed sequence (the kernel
    computes every query-key pair; the mask only hides some), and every row goes through the vocabulary
    projection. Its ratio to the tree pass's FLOPs is the speed-up that equal efficiency would give."""
    model, cfg = lm.model, lm.model.config
    emb, out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    body = sum(p.numel() for p in model.parameters()) - emb.numel() - (0 if out is emb else out.numel())
    width = cfg.num_attention_heads * (getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    rows = 1 + sum(len(o) for o in lm._option_ids(options))
    pairs = rows * (prompt_len - 1 + rows)
    return float(2 * body * rows + 4 * width * pairs * cfg.num_hidden_layers + 2 * out.numel() * rows)


def bench_planner(lm: HFLanguageModel, n_options: int = 53, prompt_tokens: int = 400, option_tokens: int = 12,
                  repeats: int = 3, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Time naive, packed ("cached", the reference before tree scoring), batched and tree scoring of the same
    options after the same prompt; returns a JSON-able dict.

    ``cached_warm_s`` (packed) and ``tree_s`` score the options on the prompt's cache (the prompt scored
    just before): the scoring itself, reusing the prompt cache, which ``tree_speedup_over_cached`` compares.
    ``cached_s``, ``cached_batched_s`` and ``tree_cold_s`` start from an empty cache (the 400-token prompt is
    run too and weighs on all alike: ``tree_speedup_over_cached_cold``); ``cached_reuse_s`` and
    ``tree_reuse_s`` score a prompt grown by one plan step on top of the previous prompt's cache, as an
    episode does. Timings are medians over ``repeats`` interleaved rounds, after a warm-up.
    ``unique_tokens``: tokens the tree pass runs (the prompt's last and the inner nodes; leaves are scored
    by their parents' rows), ``unique_option_tokens``: the unique option tokens scored. ``limit_fraction``
    is the tree pass's FLOP rate over this machine's float32 matmul rate, measured in the same run;
    ``flops_ratio_packed_over_tree`` the speed-up over the packed pass that equal efficiency would give.
    With oneDNN linear layers (``linear``), the packed pass also runs on torch's own kernel, as before them:
    ``cached_warm_torch_linear_s`` and ``tree_speedup_over_cached_torch_linear``.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: expected >= 1")
    rng = np.random.default_rng(seed)
    prompt = planning_prompt(lm, prompt_tokens, rng)
    options = planning_options(lm, n_options, option_tokens, rng)
    grown = prompt + options[0] + "\n2."
    default = lm.scoring

    def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    def empty(scoring: str) -> np.ndarray:
        lm.scoring = scoring
        lm.reset_cache()  # a fresh prompt: its own forward pass is part of the time
        return lm.score(prompt, options).logprob_sum

    def warm(scoring: str) -> np.ndarray:
        lm.scoring = scoring
        return lm.score(prompt, options).logprob_sum  # the prompt cache holds this prompt: options only

    onednn = any(isinstance(m, OneDNNLinear) for m in lm.model.modules())

    def timed_torch_linear() -> tuple[float, np.ndarray]:
        """The packed pass on torch's own linear kernel (the cached path as it ran before oneDNN linears), timed
        without the switches."""
        use_linear_kernel(lm.model, "torch")
        try:
            return timed(lambda: warm("packed"))
        finally:
            use_linear_kernel(lm.model, "onednn")

    lm.score_naive(prompt, options[:2])  # warm-up (allocator, kernels)
    for mode in ("packed", "batched", "tree"):
        empty(mode)
    times: dict[str, list[float]] = {k: [] for k in ("naive", "packed", "packed_reuse", "batched", "tree", "tree_reuse",
                                                     "packed_warm", "tree_warm", "packed_warm_torch_linear")}
    scores: dict[str, np.ndarray] = {}
    ran: dict[str, int] = {}  # tokens each mode ran from an empty cache (stats.tokens)
    for _ in range(repeats):  # interleaved, so load from other processes hits every variant alike
        dt, scores["naive"] = timed(lambda: lm.score_naive(prompt, options).logprob_sum)
        times["naive"].append(dt)
        for mode in ("packed", "batched", "tree"):
            before = lm.stats.tokens
            dt, scores[mode] = timed(lambda mode=mode: empty(mode))
            times[mode].append(dt)
            ran[mode] = lm.stats.tokens - before
            if mode != "batched":
                dt, _ = timed(lambda mode=mode: warm(mode))  # the same prompt again: option scoring alone
                times[f"{mode}_warm"].append(dt)
                dt, _ = timed(lambda: lm.score(grown, options))  # on top of the cache this prompt left
                times[f"{mode}_reuse"].append(dt)
        if onednn:
            warm("packed")  # the prompt cached again
            dt, scores["packed_torch_linear"] = timed_torch_linear()
            times["packed_warm_torch_linear"].append(dt)
    lm.scoring = default
    lm.reset_cache()
    med = {k: statistics.median(v) for k, v in times.items() if v}
    naive = scores["naive"]
    n_prompt = len(lm.tokenize(prompt, special=True))
    unique, run_cold, flops_cold = tree_flops(lm, n_prompt, options)
    _, run_warm, flops = tree_flops(lm, n_prompt, options, with_prompt=False)
    flops_packed = packed_flops(lm, n_prompt, options)
    gflops = matmul_gflops(torch.float32)
    return {
        "model": lm.name,
        "device": str(lm.device),
        "dtype": str(lm.model.dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "options": n_options,
        "prompt_tokens": n_prompt,
        "option_tokens_mean": float(np.mean([len(lm.tokenize(o)) for o in options])),
        "scoring": default,
        "naive_s": round(med["naive"], 4),
        "cached_s": round(med["packed"], 4),
        "cached_reuse_s": round(med["packed_reuse"], 4),
        "cached_batched_s": round(med["batched"], 4),
        "cached_warm_s": round(med["packed_warm"], 4),
        "tree_s": round(med["tree_warm"], 4),
        "tree_cold_s": round(med["tree"], 4),
        "tree_reuse_s": round(med["tree_reuse"], 4),
        "speedup": round(med["naive"] / med["packed"], 2),
        "tree_speedup_over_naive": round(med["naive"] / med["tree"], 2),
        "tree_speedup_over_cached": round(med["packed_warm"] / med["tree_warm"], 2),
        "tree_speedup_over_cached_cold": round(med["packed"] / med["tree"], 2),
        "tree_reuse_speedup_over_cached_reuse": round(med["packed_reuse"] / med["tree_reuse"], 2),
        "linear": "onednn" if onednn else "torch",
        "cached_warm_torch_linear_s": round(med["packed_warm_torch_linear"], 4) if onednn else None,
        "tree_speedup_over_cached_torch_linear": round(med["packed_warm_torch_linear"] / med["tree_warm"], 2)
        if onednn else None,
        "max_abs_diff": float(max(np.abs(naive - scores[m]).max() for m in scores if m not in ("naive", "tree"))),
        "max_abs_diff_tree": float(np.abs(naive - scores["tree"]).max()),
        "same_argmax": bool(naive.argmax() == scores["tree"].argmax()),
        "option_tokens_total": int(sum(len(lm.tokenize(o)) for o in options)),
        "unique_option_tokens": unique,
        "unique_tokens": run_warm,
        "tree_cold_tokens": ran["tree"],
        "packed_tokens": ran["packed"],
        "flops_tree": flops,
        "flops_tree_cold": flops_cold,
        "flops_packed": flops_packed,
        "flops_ratio_packed_over_tree": round(flops_packed / flops, 2),
        "matmul_gflops_float32": round(gflops, 1),
        "matmul_gflops_bfloat16": round(matmul_gflops(torch.bfloat16, n=512, reps=1, repeats=1), 1),
        "limit_fraction": round(flops / med["tree_warm"] / (gflops * 1e9), 3),
        "limit_fraction_cold": round(flops_cold / med["tree"] / (gflops * 1e9), 3),
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
