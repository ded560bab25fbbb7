"""Low-rank adapters (LoRA) for any torch model's linear layers: small to train on a CPU, small to ship.

``y = W x + (alpha / r) * B A x`` with ``W`` frozen, ``A`` (r x in) random, ``B`` (out x r) zero at start,
so an untrained adapter changes nothing. Training keeps the adapter beside each layer (``LoRALinear``);
inference merges it into the weights once at load (``W += (alpha / r) B A``), so a forward costs no more
than the bare model's."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from embodied.world.errors import EmbodiedError

PLANNER_ADAPTER = Path(__file__).parent / "planner_lora"  # the shipped planner adapter (`embodied train planner`)
PLANNER_ADAPTER_LLM = "smollm2"  # the only model the shipped adapter fits


class CheckpointError(EmbodiedError):
    """A missing, corrupt or mismatched checkpoint."""


def adapter_folder(spec: str, llm: str, default: str = PLANNER_ADAPTER.name) -> Path | None:
    """The adapter folder an ``adapter`` option names: "none" -> None, "default" -> the shipped adapter called
    ``default`` in ``policies/`` (None for another model than the one it was trained on), anything else -> that
    folder."""
    if spec == "none" or (spec == "default" and llm != PLANNER_ADAPTER_LLM):
        return None
    return Path(__file__).parent / default if spec == "default" else Path(spec)


@dataclass
class LoRAConfig:
    """Where adapters go and how big they are."""

    r: int = 8  # rank: 8 is ~2.4M parameters on SmolLM2-135M's linear layers (~5 MB in fp16)
    alpha: float = 16.0  # scale = alpha / r
    targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                        "up_proj", "down_proj"])

    def __post_init__(self) -> None:
        if self.r < 1:
            raise EmbodiedError(f"LoRAConfig.r must be >= 1, got {self.r}")
        if not self.targets:
            raise EmbodiedError("LoRAConfig.targets must name at least one linear layer")


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, r: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / r
        self.lora_a = nn.Parameter(torch.empty(r, base.in_features, dtype=base.weight.dtype, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale  # (..., out)


def apply_lora(model: nn.Module, config: LoRAConfig) -> list[str]:
    """Freeze ``model`` and wrap every linear layer whose name ends with a target; returns their names."""
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child_name in config.targets:
                setattr(module, child_name, LoRALinear(child, config.r, config.alpha))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    if not wrapped:
        raise EmbodiedError(f"no linear layer named any of {config.targets} in {type(model).__name__}")
    return wrapped


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items() if "lora_" in k}


def save_adapter(model: nn.Module, config: LoRAConfig, folder: Path, extra: dict | None = None) -> Path:
    """``adapter.safetensors`` (fp16) and ``adapter_config.json`` in ``folder``."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state(model), str(folder / "adapter.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"lora": asdict(config), **(extra or {})}, indent=2))
    return folder


def merge_lora(model: nn.Module) -> int:
    """Fold every ``LoRALinear``'s ``scale * B @ A`` into its base weight (float32 math, then the weight's dtype)
    and put the plain ``nn.Linear`` back: inference runs no adapter beside the layers. Returns the count."""
    merged = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                w = child.base.weight
                with torch.no_grad():
                    w.copy_(w.float() + child.scale * (child.lora_b.float() @ child.lora_a.float()))
                setattr(module, child_name, child.base)
                merged += 1
    return merged


def load_adapter(model: nn.Module, folder: Path, merge: bool = True) -> LoRAConfig:
    """Wrap ``model`` as the saved config says and load the weights; clear errors for every way it breaks.
    ``merge`` (inference) folds the adapter into the weights; ``merge=False`` keeps it separate to train on."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if getattr(model, "merged_adapter", None):  # a second adapter would land on top of the first one
        raise CheckpointError(f"the model already has {model.merged_adapter} merged into its weights; "
                              f"load {folder} into a fresh copy")
    cfg_path, weights = folder / "adapter_config.json", folder / "adapter.safetensors"
    if not cfg_path.exists() or not weights.exists():
        raise CheckpointError(f"no adapter in {folder}: expected adapter_config.json and adapter.safetensors")
    try:
        config = LoRAConfig(**json.loads(cfg_path.read_text())["lora"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{cfg_path}: not a valid adapter config ({e})") from e
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: corrupt adapter weights ({e})") from e
    apply_lora(model, config)
    own = {k: v.shape for k, v in model.state_dict().items() if "lora_" in k}
    if set(state) != set(own) or any(state[k].shape != own[k] for k in own):
        raise CheckpointError(f"{weights} does not fit this model: {len(set(state) ^ set(own))} adapter tensors differ, or shapes do "
                              f"(was it trained for another model?)")
    dtype = next(model.parameters()).dtype
    missing = model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=False)
    if missing.unexpected_keys:
        raise CheckpointError(f"{weights}: unexpected tensors {missing.unexpected_keys[:3]}")
    if merge:
        merge_lora(model)
        model.merged_adapter = str(folder)
    return config


def fit(model: nn.Module, examples: list[tuple[list[int], int]], *, steps: int, batch_size: int, lr: float,
        warmup: int, seed: int, pad_id: int, device: str = "cpu",
        progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Train the model's trainable (LoRA) parameters on token sequences whose first ``n_prompt`` tokens are
    context: the loss covers only the rest. AdamW, linear warm-up then cosine decay; returns the losses."""
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise EmbodiedError("fit: the model has no trainable parameters (apply_lora first)")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):
        scale = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in opt.param_groups:
            group["lr"] = lr * scale
        batch = [examples[int(i)] for i in torch.randperm(len(examples), generator=gen)[:batch_size]]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (seq, n_prompt) in enumerate(batch):
            ids[row, :len(seq)] = torch.tensor(seq)
            labels[row, n_prompt:len(seq)] = torch.tensor(seq[n_prompt:])
            mask[row, :len(seq)] = 1
        loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device),
                     use_cache=False).loss  # (,) mean over target tokens
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if progress:
            progress(step, losses[-1])
    model.eval()
    return losses
