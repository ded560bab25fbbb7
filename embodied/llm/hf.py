"""The transformers backend: any causal LM (hub id, local folder, the embedded SmolLM2) with scoring that scales.

``score`` runs the shared prompt once and keeps its KV cache; the options then go through ONE forward pass on
top of it. Default ("tree", for attention kernels that take a custom 4D mask: sdpa, eager): the options' token
ids form a prefix tree (a node per unique prefix, keyed on (token id, weight) for segment options), and every
node with children runs once, after the prompt's last token, with a tree mask (a node sees the prompt, the last
token, its ancestors and itself) and position ids past + 1 + depth; an option's log-prob is the sum over its
path of log p(node | parent), the root's children predicted by the last token's row. Leaves are never run:
their parent's row predicts them and nothing attends to them. SayCan's options share most of
their tokens (" pick up the", " block and place it in the"), so the pass runs a fraction of them. "packed": the options laid out one after
another, no sharing, with a block-diagonal causal mask. "batched" (for any attention kernel): a right-padded
batch on the prompt cache expanded along the batch. The cache also survives across calls: an episode's
prompt grows step by step, so only the new suffix is run (cropping back to the common token prefix first).
``score_naive`` is the SayCan-notebook way (one forward pass over prompt + option per option), kept as the
reference and the benchmark baseline. All paths use the same token ids and agree to ~1e-5 in float32.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from embodied.llm.base import LanguageModel, LanguageModelError, Option, Scores

log = logging.getLogger(__name__)

PACKED_GQA = "sdpa_packed_gqa"  # sdpa with grouped queries packed onto their shared key/value head (below)
PACKED_ATTN = ("sdpa", "eager", PACKED_GQA)  # attention kernels that take a custom 4D mask
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SCORING = ("auto", "tree", "packed", "batched")
LINEAR_KERNELS = ("auto", "onednn", "torch")


def sdpa_packed_gqa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                    **kwargs: object) -> tuple[torch.Tensor, None]:
    """transformers' sdpa attention, except that with grouped-query attention and a mask (a tree or packed
    pass) the query heads sharing a key/value head are stacked along the queries of that one head, instead of
    copying every key and value once per query head (transformers' ``repeat_kv``; 12% of a tree pass on a
    CPU). The same arithmetic per query row; other cases go to transformers' own function."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = int(getattr(module, "num_key_value_groups", 1))
    b, h, q, d = query.shape
    if groups == 1 or q == 1 or attention_mask is None or attention_mask.shape[1] != 1 or dropout \
            or kwargs.get("position_bias") is not None or kwargs.get("softcap") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    packed = query.reshape(b, h // groups, groups * q, d)  # head j's queries: query heads j*g .. j*g+g-1
    mask = attention_mask.repeat(1, 1, groups, 1)  # the same (Q, K) mask for each stacked query head
    out = torch.nn.functional.scaled_dot_product_attention(packed, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(out.shape[0], h, q, value.shape[-1]).transpose(1, 2).contiguous(), None


class OneDNNLinear(torch.nn.Linear):
    """An ``nn.Linear`` whose inference forward (no autograd, float32 on a CPU) calls oneDNN's matmul instead of
    torch's default BLAS: measured here on an AVX2 CPU, 1.4x faster for the tree pass's 123-row gate/up
    projections and 1.6x for its 49,152-word vocabulary projection, equal elsewhere. Training (autograd on)
    and other devices or dtypes use ``F.linear`` unchanged. Still an ``nn.Linear``, so adapters wrap it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32 \
                or self.weight.dtype != torch.float32:
            return torch.nn.functional.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")


@functools.cache
def onednn_linear_works() -> bool:
    """Whether this torch build has oneDNN's linear op and it agrees with ``F.linear`` on a probe (once)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        g = torch.Generator().manual_seed(0)
        x, w, b = torch.randn(3, 2, 16, generator=g), torch.randn(8, 16, generator=g), torch.randn(8, generator=g)
        with torch.inference_mode():
            y = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
        return bool(torch.allclose(y, torch.nn.functional.linear(x, w, b), atol=1e-4, rtol=1e-4))
    except (RuntimeError, AttributeError, TypeError) as e:
        log.info("oneDNN linear not available (%s); using torch's", e)
        return False


def use_linear_kernel(model: torch.nn.Module, kernel: str) -> int:
    """Run the model's ``nn.Linear`` layers on ``kernel`` ("onednn" or "torch", see `OneDNNLinear`) by switching
    their class in place (weights untouched, adapters unaffected); returns how many layers it switched."""
    if kernel not in LINEAR_KERNELS[1:]:
        raise LanguageModelError(f"linear kernel {kernel!r}: expected one of {', '.join(LINEAR_KERNELS[1:])}")
    if kernel == "onednn" and not onednn_linear_works():
        raise LanguageModelError("linear kernel 'onednn': this torch build has no working oneDNN linear op")
    src, dst = (torch.nn.Linear, OneDNNLinear) if kernel == "onednn" else (OneDNNLinear, torch.nn.Linear)
    layers = [m for m in model.modules() if type(m) is src]
    for m in layers:
        m.__class__ = dst
    return len(layers)


def _use_packed_gqa(model: PreTrainedModel) -> None:
    """Switch an sdpa model with grouped-query attention to `sdpa_packed_gqa` (registered under
    ``PACKED_GQA``), where this transformers version can; otherwise it stays on sdpa."""
    cfg = model.config
    if getattr(cfg, "_attn_implementation", None) != "sdpa" or not hasattr(model, "set_attn_implementation") \
            or getattr(cfg, "num_key_value_heads", None) in (None, getattr(cfg, "num_attention_heads", None)):
        return
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(PACKED_GQA, sdpa_packed_gqa)
        AttentionMaskInterface.register(PACKED_GQA, sdpa_mask)  # masks built as for sdpa
        model.set_attn_implementation(PACKED_GQA)
    except (ImportError, ValueError, AttributeError, TypeError) as e:
        log.info("packed grouped-query attention not available (%s); using sdpa", e)


@dataclass
class HFConfig:
    """How a transformers model is run; every field has a safe CPU default."""

    device: str = "auto"  # "auto": cuda if available, else cpu; a named device that is missing is an error
    dtype: str = "float32"  # float32 keeps scores exact; bfloat16/float16 halve memory on a GPU (on a CPU
    #                         without bf16/fp16 matmul units, e.g. AVX2, they are ~5x slower and off by ~0.05-0.3)
    threads: int | None = None  # torch CPU threads; None: torch's default, capped at the usable cores
    scoring: str = "auto"  # "tree": the options' prefix tree in one pass, tree mask (sdpa/eager attention only);
    #                        "packed": options one after another, block mask (sdpa/eager); "batched": padded
    #                        batch on the expanded prompt cache (any attention); "auto": tree if possible
    linear: str = "auto"  # the linear layers' matmul on a CPU in float32: "onednn" (see OneDNNLinear), "torch"
    #                       (torch's default BLAS), "auto": onednn where this torch build has a working one
    batch_size: int = 64  # options per forward pass in "packed"/"batched"; bounds memory
    max_tree_tokens: int = 2048  # unique option tokens per "tree" pass (more: several passes); bounds memory
    reuse_prompt_cache: bool = True  # keep the last prompt's KV cache; a grown prompt runs its new tokens
    trust_remote_code: bool = False  # allow model code from the hub (only for models you trust)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise LanguageModelError(f"HFConfig.dtype={self.dtype!r}: expected one of {sorted(DTYPES)}")
        if self.threads is not None and self.threads < 1:
            raise LanguageModelError(f"HFConfig.threads={self.threads}: expected >= 1 or None")
        if self.scoring not in SCORING:
            raise LanguageModelError(f"HFConfig.scoring={self.scoring!r}: expected one of {', '.join(SCORING)}")
        if self.linear not in LINEAR_KERNELS:
            raise LanguageModelError(f"HFConfig.linear={self.linear!r}: expected one of {', '.join(LINEAR_KERNELS)}")
        if self.batch_size < 1:
            raise LanguageModelError(f"HFConfig.batch_size={self.batch_size}: expected >= 1")
        if self.max_tree_tokens < 1:
            raise LanguageModelError(f"HFConfig.max_tree_tokens={self.max_tree_tokens}: expected >= 1")

    def resolve_device(self) -> torch.device:
        """The torch device to run on; never silently falls back from a device that was asked for."""
        if self.device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
            log.info("language model device: %s", device)
            return torch.device(device)
        try:
            device = torch.device(self.device)
        except RuntimeError as e:
            raise LanguageModelError(f"HFConfig.device={self.device!r} is not a torch device ({e})") from e
        if device.type == "cuda" and not torch.cuda.is_available():
            raise LanguageModelError(f"HFConfig.device={self.device!r} but torch sees no CUDA device")
        return device


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def prefix_tree(options: Sequence[Sequence[int]], weights: Sequence[Sequence[float]]
                ) -> tuple[list[int], list[float], list[int], list[list[int]]]:
    """The options' prefix tree, one node per unique (token, weight) prefix, parents before children: each
    node's token, weight and parent (-1: the root, i.e. the prompt's last token), and each option's path."""
    index: dict[tuple[int, int, float], int] = {}
    tokens: list[int] = []
    node_w: list[float] = []
    parent: list[int] = []
    paths: list[list[int]] = []
    for option, w in zip(options, weights, strict=True):
        at, path = -1, []
        for key in zip(option, w, strict=True):
            node = index.get((at, *key))
            if node is None:
                node = index[(at, *key)] = len(tokens)
                tokens.append(key[0])
                node_w.append(key[1])
                parent.append(at)
            path.append(node)
            at = node
        paths.append(path)
    return tokens, node_w, parent, paths


def tree_chunks(options: Sequence[Sequence[int]], weights: Sequence[Sequence[float]], budget: int) -> list[list[int]]:
    """Consecutive groups of option indices whose prefix trees hold at most ``budget`` nodes each (an option
    longer than that goes alone): the passes of tree scoring."""
    chunks: list[list[int]] = [[]]
    seen: set[tuple] = set()
    for i, (option, w) in enumerate(zip(options, weights, strict=True)):
        prefixes = [tuple(zip(option[: k + 1], w[: k + 1], strict=True)) for k in range(len(option))]
        new = [p for p in prefixes if p not in seen]
        if chunks[-1] and len(seen) + len(new) > budget:
            chunks.append([])
            seen, new = set(), prefixes
        seen.update(new)
        chunks[-1].append(i)
    return chunks


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class HFLanguageModel(LanguageModel):
    """A transformers causal LM behind the LanguageModel seam, with a reusable prompt KV cache."""

    supports_embeddings = True
    supports_segments = True

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: HFConfig | None = None,
        name: str = "",
    ) -> None:
        super().__init__(name or getattr(model.config, "_name_or_path", "") or type(model).__name__)
        self.config = config or HFConfig()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        if self.device.type == "cpu":
            threads = self.config.threads or min(torch.get_num_threads(), _cpu_count())
            if torch.get_num_threads() != threads:
                log.info("torch CPU threads: %d -> %d", torch.get_num_threads(), threads)
                torch.set_num_threads(threads)
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"  # transformers>=5.x renamed it
        self._keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        if self.device.type == "cpu":
            _use_packed_gqa(model)
            fp32 = next(model.parameters()).dtype == torch.float32
            if self.config.linear == "onednn" or (self.config.linear == "auto" and fp32 and onednn_linear_works()):
                log.info("linear layers on oneDNN: %d", use_linear_kernel(model, "onednn"))
        attn = getattr(model.config, "_attn_implementation", None)
        auto = "tree" if attn in PACKED_ATTN else "batched"
        self.scoring = auto if self.config.scoring == "auto" else self.config.scoring  # tree, packed or batched
        self.last_unique_tokens = 0  # option tokens the last scoring call ran (unique ones in "tree" mode)
        eos = [
            tokenizer.eos_token_id,
            getattr(getattr(model, "generation_config", None), "eos_token_id", None),
        ]
        self._eos = {int(i) for e in eos if e is not None for i in (e if isinstance(e, list) else [e])}
        pad = tokenizer.pad_token_id
        self._pad = pad if pad is not None else min(self._eos, default=0)  # any id: padded outputs are unused
        self._prefix_ids: list[int] = []  # ids held by _prefix_cache: the last prompt minus its last token
        self._prefix_cache: DynamicCache | None = None

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, config: HFConfig | None = None, name: str = ""
    ) -> HFLanguageModel:
        """Load a hub id or a local folder (weights + tokenizer) onto the configured device."""
        config = config or HFConfig()
        device = config.resolve_device()
        t0 = time.perf_counter()
        if Path(name_or_path).is_dir():  # a local load takes a second: no "Loading weights" bar on the console
            hf_logging.disable_progress_bar()
        try:
            remote = config.trust_remote_code
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=remote)
            model = AutoModelForCausalLM.from_pretrained(
                name_or_path, dtype=DTYPES[config.dtype], trust_remote_code=remote
            ).to(device)
        except (OSError, ValueError, KeyError) as e:
            raise LanguageModelError(f"cannot load language model {name_or_path!r}: {e}") from e
        log.info("loaded %s on %s in %.1f s", name or name_or_path, device, time.perf_counter() - t0)
        return cls(model, tokenizer, config, name=name or name_or_path)

    # --- tokens and embeddings -------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return self.model.get_input_embeddings().embedding_dim

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(token_ids.to(self.device))

    def forward_embeds(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.stats.forwards += 1
        self.stats.tokens += inputs_embeds.shape[0] * inputs_embeds.shape[1]
        return self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False).logits

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.tokenize(prompt, special=True)
        if not ids:
            raise LanguageModelError("empty prompt: the model needs at least one token to condition on")
        return ids

    def _option_ids(self, options: Sequence[str]) -> list[list[int]]:
        ids = [self.tokenize(o) for o in options]
        empty = [i for i, t in enumerate(ids) if not t]
        if empty:
            raise LanguageModelError(f"options {empty} are empty strings; an option needs at least one token")
        return ids

    # --- the prompt cache ------------------------------------------------------------------------------
    def reset_cache(self) -> None:
        """Forget the cached prompt (the next call runs its prompt from scratch)."""
        self._prefix_ids, self._prefix_cache = [], None

    def _new_cache(self) -> DynamicCache:
        try:
            return DynamicCache(config=self.model.config)  # knows sliding-window layers (transformers>=4.56)
        except TypeError:
            return DynamicCache()

    def _forward(self, cache: DynamicCache, keep: int = 0, **inputs: torch.Tensor) -> torch.Tensor:
        """One model call on top of ``cache`` (updated in place); returns logits (B, T or keep, V)."""
        if keep and self._keep_kw:
            inputs[self._keep_kw] = keep
        self.stats.forwards += 1
        return self.model(**inputs, **{self._cache_kw: cache}, use_cache=True).logits

    def _sync_prefix(self, ids: list[int]) -> DynamicCache:
        """Make the stored cache hold exactly ``ids``, reusing the longest common prefix with what it held."""
        cache, held = self._prefix_cache, self._prefix_ids
        self._prefix_cache = None  # invalid until this call finishes
        n = _common_prefix(held, ids) if cache is not None and self.config.reuse_prompt_cache else 0
        if n < len(held) and not getattr(cache, "is_croppable", True):
            n = 0
        if n == 0:
            cache = self._new_cache()
        elif n < len(held):
            cache.crop(n - len(held))  # negative: drop that many tokens (all transformers versions)
        if len(ids) > n:
            new = torch.tensor([ids[n:]], device=self.device)
            pos = torch.arange(n, len(ids), device=self.device)[None]
            self._forward(cache, keep=1, input_ids=new, position_ids=pos)
            self.stats.tokens += len(ids) - n
        self._prefix_cache, self._prefix_ids = cache, list(ids)
        return cache

    def _score_on(self, cache: DynamicCache, last: torch.Tensor, options: list[list[int]],
                  weights: list[list[float]] | None = None) -> Scores:
        """Score token-id options after ``cache`` + ``last`` (1, H), the prompt's final input embedding;
        ``weights`` (0/1 per option token) leaves given tokens out of the sums."""
        run = {"tree": self._tree_pass, "packed": self._packed_pass, "batched": self._batched_pass}[self.scoring]
        weights = weights or [[1.0] * len(o) for o in options]
        if self.scoring == "tree":
            chunks = tree_chunks(options, weights, self.config.max_tree_tokens)
        else:
            bs = self.config.batch_size
            chunks = [list(range(s, min(s + bs, len(options)))) for s in range(0, len(options), bs)]
        lp = np.zeros(len(options))
        self.last_unique_tokens = 0
        past = cache.get_seq_length()
        # the stored prompt cache must come back as it was: a single-sequence pass appends to it and is cut
        # back afterwards (no copy of the prompt's keys and values); the batched pass expands it, so copies
        in_place = self.scoring != "batched" and getattr(cache, "is_croppable", False)
        stored = cache is self._prefix_cache
        if in_place and stored:
            self._prefix_cache = None  # disarmed until every pass is cut back cleanly (an error leaves it so)
        for idx in chunks:
            work = cache if in_place else copy.deepcopy(cache)
            out = run(work, last, [options[i] for i in idx], [weights[i] for i in idx])
            if in_place:
                extra = cache.get_seq_length() - past
                if extra:
                    cache.crop(-extra)  # negative: drop the pass's tokens
            lp[idx] = out.double().cpu().numpy()
        if in_place and stored and cache.get_seq_length() == past:
            self._prefix_cache = cache
        return Scores(lp, np.array([int(sum(w)) for w in weights], dtype=np.int64))

    def _segment_ids(self, options: Sequence[Option]) -> tuple[list[list[int]], list[list[float]]]:
        """Token ids of options given as text or as (text, scored) segments, and a 0/1 weight per token."""
        ids: list[list[int]] = []
        weights: list[list[float]] = []
        for o in options:
            toks: list[int] = []
            w: list[float] = []
            for text, scored in ([(o, True)] if isinstance(o, str) else o):
                t = self.tokenize(text)
                toks += t
                w += [1.0 if scored else 0.0] * len(t)
            if not any(w):
                raise LanguageModelError(f"option {o!r} has no scored tokens")
            ids.append(toks)
            weights.append(w)
        return ids, weights

    def _mask(self, allow: torch.Tensor) -> torch.Tensor:
        """A boolean (Q, K) "may attend" matrix as the additive (1, 1, Q, K) float mask the model takes."""
        dtype = self.model.dtype
        mask = torch.zeros(allow.shape, dtype=dtype).masked_fill(~allow, torch.finfo(dtype).min)
        return mask[None, None].to(self.device)

    def _tree_pass(self, cache: DynamicCache, last: torch.Tensor, chunk: list[list[int]],
                   weights: list[list[float]]) -> torch.Tensor:
        """The options' prefix tree as one sequence [last, inner nodes]: each inner node runs once and sees the
        prompt, ``last``, its ancestors and itself; an option sums log p(node | parent) along its path. Leaves
        are not run at all: their log-prob comes from their parent's row and nothing attends to them."""
        past, dev = cache.get_seq_length(), self.device
        tokens, node_w, parent, paths = prefix_tree(chunk, weights)
        inner = sorted(set(parent) - {-1})  # nodes with children, parents before children
        row = {-1: 0} | {node: 1 + k for k, node in enumerate(inner)}  # node -> its row in the pass
        m = len(inner)
        tree = torch.zeros(1 + m, 1 + m, dtype=torch.bool)  # rows/cols: last, inner nodes; ancestor-or-self
        tree[0, 0] = True
        depth = [0] * len(tokens)
        for node in inner:
            r = row[node]
            tree[r] = tree[row[parent[node]]]  # the root (last) is everyone's ancestor
            tree[r, r] = True
        for i, p in enumerate(parent):
            depth[i] = depth[p] + 1 if p >= 0 else 0
        allow = torch.ones(1 + m, past + 1 + m, dtype=torch.bool)  # (1+M, K): the prompt cache, then the tree
        allow[:, past:] = tree
        x = last[None]  # (1, 1, H)
        if m:
            inner_ids = torch.tensor([tokens[i] for i in inner], device=dev)
            x = torch.cat([last, self.model.get_input_embeddings()(inner_ids)])[None]  # (1, 1+M, H)
        pos = (past + torch.tensor([0] + [1 + depth[i] for i in inner]))[None].to(dev)  # (1, 1+M)
        logits = self._forward(cache, inputs_embeds=x, attention_mask=self._mask(allow), position_ids=pos)
        logits = logits[0].float()  # (1+M, V): every row predicts a node
        at = torch.tensor([row[p] for p in parent], device=dev)  # (N,) the row that predicts each node
        picked = logits[at, torch.tensor(tokens, device=dev)]
        top = logits.amax(-1, keepdim=True)  # logsumexp in place: no second (1+M, V) tensor to allocate
        lse = logits.sub_(top).exp_().sum(-1).log_() + top[:, 0]
        node_lp = (picked - lse[at]) * torch.tensor(node_w, device=dev)  # (N,)
        owner = torch.tensor([i for i, path in enumerate(paths) for _ in path], device=dev)
        nodes = torch.tensor([j for path in paths for j in path], device=dev)
        self.stats.tokens += 1 + m
        self.last_unique_tokens += len(tokens)
        return torch.zeros(len(chunk), device=dev).index_add_(0, owner, node_lp[nodes])

    def _packed_pass(self, cache: DynamicCache, last: torch.Tensor, chunk: list[list[int]],
                     weights: list[list[float]]) -> torch.Tensor:
        """All options as one sequence [last, o_1, ..., o_n] with a block mask: each sees the prompt and itself."""
        past, dev = cache.get_seq_length(), self.device
        lens = torch.tensor([len(o) for o in chunk])
        n, s = len(chunk), int(lens.sum())
        owner = torch.repeat_interleave(torch.arange(n), lens)  # (S,) option of each packed token
        start = torch.repeat_interleave(lens.cumsum(0) - lens, lens)
        offset = torch.arange(s) - start  # (S,) index of each token inside its option
        flat = torch.tensor([t for o in chunk for t in o], device=dev)  # (S,)
        allow = torch.ones(1 + s, past + 1 + s, dtype=torch.bool)  # (1+S, K) rows: last, then option tokens
        allow[0, past + 1 :] = False
        allow[1:, past + 1 :] = (owner[:, None] == owner[None]) & (offset[:, None] >= offset[None])
        x = torch.cat([last, self.model.get_input_embeddings()(flat)])[None]  # (1, 1+S, H)
        pos = torch.cat([torch.tensor([past]), past + 1 + offset])[None].to(dev)  # (1, 1+S)
        logits = self._forward(cache, inputs_embeds=x, attention_mask=self._mask(allow), position_ids=pos)
        logits = logits[0].float()  # (1+S, V)
        rows = torch.where(offset == 0, 0, torch.arange(s)).to(dev)  # (S,) the row that predicts each token
        tok = logits[rows, flat] - logits.logsumexp(-1)[rows]  # (S,) log p(token)
        tok = tok * torch.tensor([x for w in weights for x in w], device=dev)  # given tokens count 0
        self.stats.tokens += 1 + s
        self.last_unique_tokens += s
        return torch.zeros(n, device=dev).index_add_(0, owner.to(dev), tok)

    def _batched_pass(self, cache: DynamicCache, last: torch.Tensor, chunk: list[list[int]],
                      weights: list[list[float]]) -> torch.Tensor:
        """Options as a right-padded batch on the prompt cache expanded along the batch (any attention kernel)."""
        past, dev = cache.get_seq_length(), self.device
        n, t = len(chunk), max(map(len, chunk))
        ids = torch.full((n, t), self._pad, dtype=torch.long)
        for i, o in enumerate(chunk):
            ids[i, : len(o)] = torch.tensor(o)
        ids = ids.to(dev)  # (n, t) right-padded option tokens
        valid = (torch.arange(t)[None] < torch.tensor([len(o) for o in chunk])[:, None]).to(dev)  # (n, t)
        x = self.model.get_input_embeddings()(ids)
        x = torch.cat([last[None].expand(n, 1, -1), x], dim=1)  # (n, 1+t, H)
        mask = torch.cat([torch.ones(n, past + 1, dtype=torch.long, device=dev), valid.long()], dim=1)
        pos = torch.arange(past, past + 1 + t, device=dev)[None].expand(n, -1)  # (n, 1+t)
        cache.batch_repeat_interleave(n)
        logits = self._forward(cache, inputs_embeds=x, attention_mask=mask, position_ids=pos)[:, :-1].float()
        tok = logits.gather(-1, ids[..., None])[..., 0] - logits.logsumexp(-1)  # (n, t) log p(token)
        w = torch.zeros(n, t)
        for i, wi in enumerate(weights):
            w[i, : len(wi)] = torch.tensor(wi)
        self.stats.tokens += n + int(valid.sum())
        self.last_unique_tokens += int(valid.sum())
        return (tok * valid * w.to(dev)).sum(1)

    # --- the LanguageModel API ---------------------------------------------------------------------------
    @torch.inference_mode()
    def score(self, prompt: str, options: Sequence[Option]) -> Scores:
        """Options scored in batches on top of the (reused) prompt KV cache; see the module docstring."""
        self.stats.requests += 1
        ids = self._prompt_ids(prompt)
        if all(isinstance(o, str) for o in options):
            opts, weights = self._option_ids(options), None  # type: ignore[arg-type]
        else:
            opts, weights = self._segment_ids(options)
        if not opts:
            return Scores(np.zeros(0), np.zeros(0, dtype=np.int64))
        cache = self._sync_prefix(ids[:-1])
        last = self.embed_tokens(torch.tensor(ids[-1:]))  # (1, H)
        return self._score_on(cache, last, opts, weights)

    @torch.inference_mode()
    def score_naive(self, prompt: str, options: Sequence[str]) -> Scores:
        """Reference scoring: one forward pass over prompt + option per option, no cache (SayCan notebook)."""
        self.stats.requests += 1
        ids, opts = self._prompt_ids(prompt), self._option_ids(options)
        lp = np.zeros(len(opts))
        for i, o in enumerate(opts):
            x = torch.tensor([ids + o], device=self.device)
            kw = {self._keep_kw: len(o) + 1} if self._keep_kw else {}  # only logits that predict the option
            logits = self.model(input_ids=x, use_cache=False, **kw).logits[0, -len(o) - 1 : -1].float()
            target = torch.tensor(o, device=self.device)
            lp[i] = float((logits.gather(-1, target[:, None])[:, 0] - logits.logsumexp(-1)).sum())
            self.stats.forwards += 1
            self.stats.tokens += len(ids) + len(o)
        return Scores(lp, np.array([len(o) for o in opts], dtype=np.int64))

    @torch.inference_mode()
    def score_embeds(self, prefix_embeds: torch.Tensor, options: Sequence[str]) -> Scores:
        self.stats.requests += 1
        shape = tuple(prefix_embeds.shape)
        if len(shape) != 2 or shape[0] < 1 or shape[1] != self.hidden_size:
            raise LanguageModelError(
                f"prefix_embeds has shape {shape}, expected (T >= 1, {self.hidden_size})"
            )
        opts = self._option_ids(options)
        x = prefix_embeds.to(self.device, self.model.dtype)
        cache = self._new_cache()
        if len(x) > 1:
            pos = torch.arange(len(x) - 1, device=self.device)[None]
            self._forward(cache, keep=1, inputs_embeds=x[None, :-1], position_ids=pos)
            self.stats.tokens += len(x) - 1
        return self._score_on(cache, x[-1:], opts)

    @torch.inference_mode()
    def generate(self, prompt: str, max_new_tokens: int = 32, stop: Sequence[str] = ()) -> str:
        """Greedy decoding on the shared prompt cache; stops at EOS, a stop string, or max_new_tokens."""
        self.stats.requests += 1
        stop = [s for s in stop if s]
        ids = self._prompt_ids(prompt)
        cache = self._sync_prefix(ids[:-1])
        self._prefix_cache = None  # the loop below grows the cache; re-armed when it finishes cleanly
        out: list[int] = []
        nxt, text = ids[-1], ""
        for _ in range(max_new_tokens):
            pos = len(self._prefix_ids)
            x, p = torch.tensor([[nxt]], device=self.device), torch.tensor([[pos]], device=self.device)
            logits = self._forward(cache, input_ids=x, position_ids=p)
            self._prefix_ids.append(nxt)
            self.stats.tokens += 1
            nxt = int(logits[0, -1].argmax())
            if nxt in self._eos:
                break
            out.append(nxt)
            text = self.tokenizer.decode(out, skip_special_tokens=True)
            if any(s in text for s in stop):
                break
        self._prefix_cache = cache
        self.stats.generated += len(out)
        cut = min((text.find(s) for s in stop if s in text), default=len(text))
        return text[:cut]
