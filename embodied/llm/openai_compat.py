"""An OpenAI-compatible HTTP backend (vLLM, llama.cpp server, Ollama), standard library only.

``generate`` uses ``/completions``; ``score`` uses ``/completions`` with ``echo=True, logprobs=1, max_tokens=0``
and sums the echoed log-probs of the tokens that cover the option's text (found by ``text_offset``). Scoring
needs a server that returns prompt log-probs (vLLM does); others get a clear ``LanguageModelError``.
Token embeddings are not reachable over HTTP.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embodied.llm.base import DEFAULT_OPENAI_URL, LanguageModel, LanguageModelError, Scores

log = logging.getLogger(__name__)


@dataclass
class OpenAIConfig:
    """Where the server is and how to talk to it."""

    model: str  # the model name the server knows, e.g. "Qwen/Qwen2.5-0.5B-Instruct"
    base_url: str = DEFAULT_OPENAI_URL  # including /v1; requests go to <base_url>/completions
    api_key_env: str = "OPENAI_API_KEY"  # environment variable with a bearer token, if the server wants one
    timeout_s: float = 120.0  # per HTTP request
    batch_prompts: bool = True  # score all options in one request (a prompt list); False: one request each

    def __post_init__(self) -> None:
        if not self.model:
            raise LanguageModelError("OpenAIConfig.model is empty")
        if not self.base_url.startswith(("http://", "https://")):
            raise LanguageModelError(f"OpenAIConfig.base_url={self.base_url!r}: expected an http(s) URL")
        if self.timeout_s <= 0:
            raise LanguageModelError(f"OpenAIConfig.timeout_s={self.timeout_s}: expected > 0")


class OpenAICompatLM(LanguageModel):
    """Scores and generates through an OpenAI-compatible ``/completions`` endpoint."""

    def __init__(self, config: OpenAIConfig) -> None:
        super().__init__(f"openai:{config.model}@{config.base_url}")
        self.config = config
        self._max_tokens_zero = True  # some servers reject max_tokens=0; then we ask for 1 and ignore it

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = self.config.base_url.rstrip("/") + "/completions"
        headers = {"Content-Type": "application/json"}
        if key := os.environ.get(self.config.api_key_env):
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(url, json.dumps({"model": self.config.model, **body}).encode(), headers)
        self.stats.forwards += 1
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
                out = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:300]
            raise LanguageModelError(f"{url} answered HTTP {e.code}: {detail}") from e
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise LanguageModelError(f"cannot reach the language-model server at {url}: {e}") from e
        except json.JSONDecodeError as e:
            raise LanguageModelError(f"{url} did not answer JSON: {e}") from e
        usage = out.get("usage") or {}
        self.stats.tokens += int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
        return out

    def _echo(self, texts: list[str]) -> list[dict[str, Any]]:
        """Echoed log-probs for each text: the ``logprobs`` object of each choice, in order."""
        body = {"prompt": texts, "echo": True, "logprobs": 1, "temperature": 0.0}
        try:
            out = self._post({**body, "max_tokens": 0 if self._max_tokens_zero else 1})
        except LanguageModelError as e:
            if not self._max_tokens_zero or "HTTP 400" not in str(e):
                raise
            log.info("server rejected max_tokens=0; scoring with max_tokens=1 and ignoring that token")
            self._max_tokens_zero = False
            out = self._post({**body, "max_tokens": 1})
        choices = sorted(out.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(texts):
            raise LanguageModelError(f"server returned {len(choices)} choices for {len(texts)} prompts")
        return [c.get("logprobs") or {} for c in choices]

    def score(self, prompt: str, options: Sequence[str]) -> Scores:
        """Sum of echoed log-probs over the tokens that cover each option's text (see the module docstring)."""
        self.stats.requests += 1
        texts = [prompt + o for o in options]
        if any(not o for o in options):
            raise LanguageModelError("an option is an empty string; an option needs at least one token")
        step = len(texts) if self.config.batch_prompts else 1
        lps = [lp for s in range(0, len(texts), max(step, 1)) for lp in self._echo(texts[s : s + step])]
        sums, counts = np.zeros(len(texts)), np.zeros(len(texts), dtype=np.int64)
        for i, (text, lp) in enumerate(zip(texts, lps, strict=True)):
            offsets, values = lp.get("text_offset"), lp.get("token_logprobs")
            if not offsets or not values or len(offsets) != len(values):
                raise LanguageModelError(
                    f"{self.config.base_url} returned no prompt log-probs (echo=True, logprobs=1); scoring needs "
                    "a server that supports them, e.g. vLLM; llama.cpp server and Ollama can only generate"
                )
            ends = list(offsets[1:]) + [len(text) + 1]
            picked = [v for start, end, v in zip(offsets, ends, values, strict=True)
                      if end > len(prompt) and start < len(text)]  # fmt: skip
            if not picked or any(v is None for v in picked):
                raise LanguageModelError(f"server gave no log-probs for option {i} ({options[i]!r})")
            sums[i], counts[i] = float(sum(picked)), len(picked)
        return Scores(sums, counts)

    def generate(self, prompt: str, max_new_tokens: int = 32, stop: Sequence[str] = ()) -> str:
        """Greedy completion (temperature 0); the stop strings are also applied here for servers that ignore them."""
        self.stats.requests += 1
        stop = [s for s in stop if s]
        body: dict[str, Any] = {"prompt": prompt, "max_tokens": max_new_tokens, "temperature": 0.0}
        if stop:
            body["stop"] = stop[:4]  # the OpenAI API takes at most four
        out = self._post(body)
        try:
            text = out["choices"][0]["text"]
        except (KeyError, IndexError, TypeError) as e:
            raise LanguageModelError(f"unexpected completion response: {str(out)[:300]}") from e
        self.stats.generated += int((out.get("usage") or {}).get("completion_tokens", 0))
        cut = min((text.find(s) for s in stop if s in text), default=len(text))
        return text[:cut]
