"""Language-model backends behind one seam: scoring options, greedy generation, token embeddings.

``load_language_model("smollm2")`` gives the embedded default; see ``base.load_language_model`` for specs.
Backends are imported lazily, so importing this package does not import torch.
"""

from embodied.llm.base import (
    EMBEDDED,
    LanguageModel,
    LanguageModelError,
    LanguageModelSpecError,
    LMStats,
    Scores,
    load_language_model,
)

__all__ = [
    "EMBEDDED",
    "LMStats",
    "LanguageModel",
    "LanguageModelError",
    "LanguageModelSpecError",
    "Scores",
    "load_language_model",
]
