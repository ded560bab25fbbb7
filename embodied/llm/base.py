"""The LanguageModel seam: score options, generate text, expose token embeddings; plus the backend factory.

Scoring convention (all backends): ``score(prompt, options)`` returns, per option, the sum of the log-probs of
the option's tokens given the prompt. Prompt and option are tokenized separately (the prompt with the
tokenizer's special tokens, e.g. a BOS, the option without), so an option should carry its own leading
separator: write ``" pick up the red block."`` or ``"\\n2. done."``, and do not end the prompt with a space.

Where a backend has ``supports_segments``, an option may also be a sequence of ``(text, scored)`` segments:
only scored segments count, the others are context the model does not say (e.g. the environment's
feedback between the steps of a whole plan), all in one request.
"""

from __future__ import annotations

import abc
import difflib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from embodied.world.errors import EmbodiedError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

EMBEDDED = "smollm2"  # the default model, shipped offline (see assets.py)
OPENAI_PREFIX = "openai:"
DEFAULT_OPENAI_URL = "http://127.0.0.1:8000/v1"


class LanguageModelError(EmbodiedError, RuntimeError):
    """A language model that cannot be loaded, reached, or asked for what the caller wanted."""


class LanguageModelSpecError(LanguageModelError, ValueError):
    """A model spec string (``--lm``) that names no backend or model."""


Option = str | Sequence[tuple[str, bool]]  # a continuation, or (text, scored) segments of one


@dataclass(frozen=True)
class Scores:
    """Per-option log-likelihoods: ``logprob_sum[i] = log p(option_i | prompt)``, over ``n_tokens[i]`` tokens."""

    logprob_sum: np.ndarray  # (n_options,) float64
    n_tokens: np.ndarray  # (n_options,) int64

    @property
    def mean(self) -> np.ndarray:
        """Length-normalised scores (mean log-prob per token), so long options are not penalised."""
        return self.logprob_sum / np.maximum(self.n_tokens, 1)

    def __len__(self) -> int:
        return len(self.logprob_sum)


@dataclass
class LMStats:
    """Running counters, so an eval can report language-model cost per episode."""

    requests: int = 0  # score/generate calls made through the LanguageModel API
    forwards: int = 0  # model forward passes (HTTP backend: HTTP requests)
    tokens: int = 0  # tokens run through the model (cached prompt tokens are not counted again)
    generated: int = 0  # tokens produced by generate()

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class LanguageModel(abc.ABC):
    """A causal language model behind one small interface; the planners only talk to this."""

    name: str
    supports_embeddings: bool = False  # True where embed_tokens / forward_embeds / score_embeds work
    supports_segments: bool = False  # True where score() takes (text, scored) segment options

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = LMStats()

    def reset_stats(self) -> LMStats:
        """Return the counters so far and start new ones (e.g. at the start of an episode)."""
        old, self.stats = self.stats, LMStats()
        return old

    @abc.abstractmethod
    def score(self, prompt: str, options: Sequence[Option]) -> Scores:
        """Log-likelihood of each option as a continuation of the prompt (see the module docstring)."""

    @abc.abstractmethod
    def generate(self, prompt: str, max_new_tokens: int = 32, stop: Sequence[str] = ()) -> str:
        """Greedy (deterministic) continuation of the prompt, cut before the first stop string."""

    # Embedding access for PaLM-E-style soft tokens; only local backends have it.
    @property
    def hidden_size(self) -> int:
        """Width of the token embeddings (what a sensor projector must output)."""
        raise self._no_embeddings()

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Token ids of ``text``; ``special`` adds the tokenizer's special tokens (e.g. BOS)."""
        raise self._no_embeddings()

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of ``token_ids`` (..., ) -> (..., hidden_size)."""
        raise self._no_embeddings()

    def forward_embeds(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (B, T, vocab) for inputs_embeds (B, T, hidden_size); keeps autograd for training projectors."""
        raise self._no_embeddings()

    def score_embeds(self, prefix_embeds: torch.Tensor, options: Sequence[str]) -> Scores:
        """Like ``score`` but the prompt is given as embeddings (T, hidden_size), e.g. text with soft tokens."""
        raise self._no_embeddings()

    def _no_embeddings(self) -> LanguageModelError:
        return LanguageModelError(
            f"language model {self.name!r} ({type(self).__name__}) gives no access to token embeddings; "
            "use a local transformers model (e.g. --lm smollm2) for PaLM-E-style soft tokens"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """Split ``openai:<model>@<base_url>`` into (model, base_url); the URL defaults to $OPENAI_BASE_URL."""
    m = re.fullmatch(r"openai:([^@\s]+)(?:@(https?://\S+))?", spec, flags=re.IGNORECASE)
    if m is None:
        raise LanguageModelSpecError(
            f"bad OpenAI-compatible model spec {spec!r}: expected 'openai:<model>@<base_url>', "
            f"e.g. 'openai:Qwen/Qwen2.5-0.5B-Instruct@{DEFAULT_OPENAI_URL}'"
        )
    return m.group(1), m.group(2) or os.environ.get("OPENAI_BASE_URL", DEFAULT_OPENAI_URL)


def load_language_model(spec: str = EMBEDDED, **options: Any) -> LanguageModel:
    """Build a backend from a spec string; ``options`` go to the backend's config (e.g. device, dtype).

    Specs:
      - ``"smollm2"``: the embedded SmolLM2-135M-Instruct (float32, fetched and converted once, see assets.py);
      - ``"openai:<model>@<base_url>"``: an OpenAI-compatible server (vLLM, llama.cpp server, Ollama),
        e.g. ``openai:Qwen/Qwen2.5-0.5B@http://127.0.0.1:8000/v1`` (base URL including ``/v1``);
      - a local folder or a transformers hub id ``org/name`` (``HuggingFaceTB/SmolLM2-360M-Instruct``);
        ``hf:<id>`` forces the transformers backend for any other id (``hf:gpt2``).
    """
    spec = spec.strip()
    if not spec:
        raise LanguageModelSpecError(f"empty language-model spec; try {EMBEDDED!r}")
    if spec.lower().startswith(OPENAI_PREFIX):
        from embodied.llm.openai_compat import OpenAICompatLM, OpenAIConfig

        model, base_url = parse_openai_spec(spec)
        return OpenAICompatLM(OpenAIConfig(model=model, base_url=base_url, **options))
    from embodied.llm.hf import HFConfig, HFLanguageModel

    config = HFConfig(**options)
    if spec == EMBEDDED:
        from embodied.llm.assets import embedded_model_dir

        return HFLanguageModel.from_pretrained(str(embedded_model_dir()), config, name=EMBEDDED)
    if spec.startswith("hf:"):
        spec = spec[3:]
    elif not (os.path.isdir(spec) or re.fullmatch(r"[\w.-]+/[\w.-]+", spec)):
        hint = difflib.get_close_matches(spec, [EMBEDDED, OPENAI_PREFIX], n=1, cutoff=0.6)
        raise LanguageModelSpecError(
            f"unknown language model {spec!r}: not {EMBEDDED!r}, not 'openai:<model>@<url>', not a folder, "
            "not a hub id 'org/name' (write 'hf:<id>' for others)"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
        )
    if not os.path.isdir(spec):
        require_hub_model(spec)
    return HFLanguageModel.from_pretrained(spec, config)


def check_language_model_spec(spec: str) -> None:
    """Fail fast, before anything heavy is loaded, on a spec that cannot name a usable model: bad syntax,
    or a hub id that is neither cached nor reachable (`require_hub_model`)."""
    spec = spec.strip()
    if spec == EMBEDDED or spec.lower().startswith(OPENAI_PREFIX):
        if spec.lower().startswith(OPENAI_PREFIX):
            parse_openai_spec(spec)
        return
    repo = spec[3:] if spec.startswith("hf:") else spec
    if os.path.isdir(repo):
        return
    if not spec.startswith("hf:") and not re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
        return  # load_language_model names the problem, with a did-you-mean
    require_hub_model(repo)


HUB_PROBE_TIMEOUT_S = 3.0  # one metadata request; transformers' own download would retry for a minute
_ON_HUB: set[str] = set()  # ids the hub already confirmed in this process (the agent checks before loading)


def require_hub_model(repo_id: str) -> None:
    """Offline first: a hub id must be in the local Hugging Face cache, or -- unless ``HF_HUB_OFFLINE`` is
    set -- exist on a hub answering within `HUB_PROBE_TIMEOUT_S`; otherwise one `LanguageModelSpecError`
    saying how to provide the model, in seconds rather than after a minute of download retries."""
    from huggingface_hub import constants, model_info, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    if repo_id in _ON_HUB or isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return
    how = (f"download it once where the hub is reachable (`hf download {repo_id}`), or give a local model "
           "folder (--llm /path/to/model)")
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise LanguageModelSpecError(f"language model {repo_id!r} is not in the local Hugging Face cache "
                                     f"({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE is set: {how}")
    try:
        model_info(repo_id, timeout=HUB_PROBE_TIMEOUT_S)
    except RepositoryNotFoundError:
        raise LanguageModelSpecError(f"no language model {repo_id!r}: not in the local Hugging Face cache and "
                                     f"not on the hub (check the name); {how}") from None
    except HfHubHTTPError as e:
        raise LanguageModelSpecError(f"language model {repo_id!r} is not in the local cache and the hub "
                                     f"refused it ({str(e).splitlines()[0][:120]}): {how}") from None
    except Exception as e:  # noqa: BLE001 - any network failure (DNS, timeout, proxy) means: not reachable
        raise LanguageModelSpecError(f"language model {repo_id!r} is not in the local Hugging Face cache and "
                                     f"the hub cannot be reached ({type(e).__name__}: {str(e)[:120]}): {how}") \
            from None
    _ON_HUB.add(repo_id)
