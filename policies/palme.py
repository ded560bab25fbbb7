"""PaLM-E-style multimodal encoders: camera, per-object point clouds and proprioception mapped into a
language model's token-embedding width, and the prefix that splices them into a prompt as soft tokens.

The prompt is text with placeholders, e.g. ``"Scene:<img><img><img><img> Objects:<obj><obj>,<obj><obj>. Robot:<state>.\\n
Request: ...\\n1."``; ``MultimodalPrefix.embed`` tokenizes the text between placeholders, embeds it with the LM's
own input embeddings, and puts the encoder outputs where the placeholders were (any transformers causal LM:
the width is read from the model, never assumed).

- camera: a small CNN over the top-down rgb (resized to ``image_size``) -> ``n_tokens`` tokens;
- pointcloud: PointNet (shared MLP + max-pool) over one object's point segment (xyz relative to its centroid,
  rgb), joined with its absolute centroid and, where ``labels`` is on, the name perception gave it (colour,
  kind) -> ``n_tokens`` per object (2: they start as the words "<colour> <kind>"; 3: "<colour> <kind> <relation>",
  the last started at "empty" or the colour of the block on/in it); the segment is a column around the object,
  so blocks resting on it and bowl contents fall into it (what the relations are read from);
- proprio: an MLP over the 22 joint/hand readings -> one token.

Every encoder has an ``anchor`` (its tokens' starting point, set from the LM's embeddings of a plain word by
``init_anchors``), so an untrained encoder already emits tokens that look like words to the LM.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embodied.world.errors import EmbodiedError
from embodied.world.observation import PROPRIO_DIM
from embodied.world.scene import COLOR_NAMES, KINDS, TABLE_Z, WORKSPACE_X, WORKSPACE_Y, SceneState, suggest
from policies.lora import CheckpointError

PLACEHOLDERS = {"camera": "<img>", "pointcloud": "<obj>", "proprio": "<state>"}
_PLACEHOLDER_RE = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS.values()) + ")")
SEGMENT_RADIUS = {"block": 0.035, "bowl": 0.10}  # xy radius (m) of an object's point column: its own points,
#                                                  blocks resting on it or in it, a bowl floor around a block
SEGMENT_Z = (0.003, 0.30)  # heights above the table kept in a segment (below: table; above: the arm)
MAX_OBJECTS = 10
WEIGHTS, CONFIG = "encoders.safetensors", "config.json"


class PalmEError(EmbodiedError, ValueError):
    """A PaLM-E config, input or prompt that cannot be used."""


# --------------------------------------------------------------------------- configs
@dataclass
class EncoderConfig:
    """Shared by every encoder: the hidden width of its MLPs."""

    type: ClassVar[str] = ""
    hidden: int = 256  # MLP width inside the encoder; the output width is the LM's, given at build time

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise PalmEError(f"{type(self).__name__}.hidden must be >= 1, got {self.hidden}")


@dataclass
class CameraEncoderConfig(EncoderConfig):
    """Top-down rgb -> ``n_tokens`` soft tokens."""

    type: ClassVar[str] = "camera"
    image_size: int = 64  # the rgb is resized to this square: 64 keeps a 4 cm cube ~4 px wide at 128 px input
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])  # conv widths, each with stride 2
    n_tokens: int = 4  # tokens per image: more carry more layout, each costs a prompt position

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size < 8 or self.image_size % (2 ** len(self.channels)):
            raise PalmEError(f"CameraEncoderConfig.image_size must be >= 8 and divisible by 2**len(channels)="
                             f"{2 ** len(self.channels)}, got {self.image_size}")
        if not self.channels or any(c < 1 for c in self.channels):
            raise PalmEError(f"CameraEncoderConfig.channels must be positive widths, got {self.channels}")
        if not 1 <= self.n_tokens <= 64:
            raise PalmEError(f"CameraEncoderConfig.n_tokens must be in [1, 64], got {self.n_tokens}")


@dataclass
class PointCloudConfig(EncoderConfig):
    """One object's point segment (+ centroid, + perceived name) -> one soft token."""

    type: ClassVar[str] = "pointcloud"
    n_points: int = 64  # points sampled per segment: 64 covers a block's top and sides at 128 px
    point_widths: list[int] = field(default_factory=lambda: [64, 128])  # shared per-point MLP widths
    labels: bool = True  # add the colour and kind perception named the object with (PaLM-E state vectors)
    n_tokens: int = 2  # tokens per object: 2 starts them as "<colour> <kind>" words, relations ride on the second;
    #                    3 gives relations a token of their own after those ("empty" or the colour on/in it)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.n_tokens <= 4:
            raise PalmEError(f"PointCloudConfig.n_tokens must be in [1, 4], got {self.n_tokens}")
        if self.n_points < 4:
            raise PalmEError(f"PointCloudConfig.n_points must be >= 4, got {self.n_points}")
        if not self.point_widths or any(w < 1 for w in self.point_widths):
            raise PalmEError(f"PointCloudConfig.point_widths must be positive widths, got {self.point_widths}")


@dataclass
class ProprioConfig(EncoderConfig):
    """The 22 proprioceptive readings -> one soft token."""

    type: ClassVar[str] = "proprio"
    hidden: int = 128
    dim: int = PROPRIO_DIM  # 7 joint positions, 7 velocities, hand xyz + quaternion, finger gap

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dim < 1:
            raise PalmEError(f"ProprioConfig.dim must be >= 1, got {self.dim}")


# --------------------------------------------------------------------------- encoders
class Encoder(nn.Module):
    """Base: ``anchor`` (n_tokens, H) is added to every output; ``init_anchors`` sets it from word embeddings."""

    anchor_word: ClassVar[str] = " table"

    def __init__(self, hidden_size: int, n_anchor: int = 1) -> None:
        super().__init__()
        if hidden_size < 1:
            raise PalmEError(f"hidden_size must be >= 1, got {hidden_size}")
        self.hidden_size = hidden_size
        self.anchor = nn.Parameter(torch.zeros(n_anchor, hidden_size))

    def init_anchors(self, embed: Any) -> None:
        """Start the tokens at the LM's embedding of ``anchor_word`` (``embed(text) -> (H,)``)."""
        with torch.no_grad():
            self.anchor.copy_(embed(self.anchor_word).expand_as(self.anchor))


class CameraEncoder(Encoder):
    """rgb (B, H, W, 3) uint8 -> (B, n_tokens, hidden_size)."""

    anchor_word = " table"

    def __init__(self, config: CameraEncoderConfig, hidden_size: int) -> None:
        super().__init__(hidden_size, config.n_tokens)
        self.config = config
        layers: list[nn.Module] = []
        c_in = 3
        for c in config.channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GELU()]
            c_in = c
        self.conv = nn.Sequential(*layers)
        side = config.image_size // 2 ** len(config.channels)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, config.hidden), nn.GELU(),
                                  nn.Linear(config.hidden, config.n_tokens * hidden_size))
        nn.init.normal_(self.head[-1].weight, std=0.02 / math.sqrt(config.hidden))
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = rgb.float().permute(0, 3, 1, 2) / 255.0  # (B, 3, H, W)
        s = self.config.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="area")  # (B, 3, s, s)
        y = self.head(self.conv(x - 0.5))  # (B, k*H)
        return y.view(len(x), self.config.n_tokens, self.hidden_size) + self.anchor  # (B, k, H)


N_LABELS = len(COLOR_NAMES) + len(KINDS)
N_RELATION = len(COLOR_NAMES) + 1  # auxiliary targets: colour of the block on / in it, or "none" (last)


class PointCloudEncoder(Encoder):
    """Per object: points (N, P, 6) + mask (N, P) + centroid (N, 3) + labels (N, 12) -> (N * n_tokens, H).

    With two tokens an object starts as the words "<colour> <kind>" (from the name perception gave it, where
    ``labels`` is on) plus learned residuals from its points and position. Also returns auxiliary logits
    (N, 2, 11): colour of the block resting on/in the object and of what it rests on (last class: none). They
    train the point trunk cheaply (no LM), and their probabilities enter the last token through
    ``relation_embed`` (started at the colour words), so relations reach the LM from the first step. With three
    or more tokens the last one carries the relation alone, started at the word "empty" for "nothing on/in it":
    "<colour> <kind> <relation>" reads like text, so the LM binds an asked object to its own relation."""

    def __init__(self, config: PointCloudConfig, hidden_size: int) -> None:
        super().__init__(hidden_size, config.n_tokens)
        self.config = config
        widths, layers, c_in = config.point_widths, [], 6
        for w in widths:
            layers += [nn.Linear(c_in, w), nn.GELU()]
            c_in = w
        self.point_mlp = nn.Sequential(*layers)
        extra = 3 + (N_LABELS if config.labels else 0)
        self.mlp = nn.Sequential(nn.Linear(c_in + extra, config.hidden), nn.GELU(),
                                 nn.Linear(config.hidden, config.hidden), nn.GELU())
        self.out = nn.Linear(config.hidden, config.n_tokens * hidden_size)
        nn.init.normal_(self.out.weight, std=0.02 / math.sqrt(config.hidden))
        nn.init.zeros_(self.out.bias)
        self.aux = nn.Linear(config.hidden, 2 * N_RELATION)
        self.colour_embed = nn.Linear(len(COLOR_NAMES), hidden_size, bias=False)  # colour one-hot -> its word
        self.kind_embed = nn.Linear(len(KINDS), hidden_size, bias=False)  # kind one-hot -> its word
        self.relation_embed = nn.Linear(2 * N_RELATION, hidden_size, bias=False)  # p(colour on it / under it)
        for lin in (self.colour_embed, self.kind_embed, self.relation_embed):
            nn.init.zeros_(lin.weight)

    @property
    def relation_token(self) -> bool:
        """Whether the relation has a token of its own (the last), rather than riding on the kind's."""
        return self.config.n_tokens >= 3

    def init_anchors(self, embed: Any) -> None:
        """Names and relation colours start as the LM's embeddings of those words (read as words at once)."""
        with torch.no_grad():
            self.anchor.zero_()
            colours = torch.stack([embed(f" {c}") for c in COLOR_NAMES], 1)  # (H, 10)
            self.colour_embed.weight.copy_(colours)
            self.kind_embed.weight.copy_(torch.stack([embed(f" {k}") for k in KINDS], 1))  # (H, 2)
            w = torch.zeros(self.hidden_size, 2 * N_RELATION)
            w[:, : N_RELATION - 1] = (1.0 if self.relation_token else 0.5) * colours  # on/in it
            if self.relation_token:  # a token of its own says "empty" where nothing is on/in it
                w[:, N_RELATION - 1] = embed(" empty")
            w[:, N_RELATION : 2 * N_RELATION - 1] = 0.25 * colours  # what it rests on
            self.relation_embed.weight.copy_(w)

    def forward(self, points: torch.Tensor, mask: torch.Tensor, centroid: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.point_mlp(points.float())  # (N, P, C)
        f = f.masked_fill(~mask.bool()[..., None], -1e4).amax(1)  # (N, C) max-pool over valid points
        f = torch.where(mask.bool().any(1, keepdim=True), f, torch.zeros_like(f))  # empty segment: zeros
        parts = [f, centroid.float()] + ([labels.float()] if self.config.labels else [])
        h = self.mlp(torch.cat(parts, -1))  # (N, hidden)
        aux = self.aux(h).view(-1, 2, N_RELATION)  # (N, 2, 11)
        k = self.config.n_tokens
        tok = self.out(h).view(-1, k, self.hidden_size) + self.anchor  # (N, k, H)
        extra = torch.zeros_like(tok)
        extra[:, -1] = self.relation_embed(aux.softmax(-1).flatten(1))
        if self.config.labels:
            lab = labels.float()
            extra[:, 0] = extra[:, 0] + self.colour_embed(lab[:, : len(COLOR_NAMES)])
            extra[:, min(1, k - 1)] = extra[:, min(1, k - 1)] + self.kind_embed(lab[:, len(COLOR_NAMES):])
        return (tok + extra).reshape(-1, self.hidden_size), aux  # (N * k, H)


_PROPRIO_SCALE = torch.tensor([1.0] * 7 + [2.0] * 7 + [0.3] * 3 + [1.0] * 4 + [0.05])


class ProprioEncoder(Encoder):
    """proprio (B, 22) -> (B, 1, hidden_size)."""

    anchor_word = " arm"

    def __init__(self, config: ProprioConfig, hidden_size: int) -> None:
        super().__init__(hidden_size, 1)
        self.config = config
        self.register_buffer("scale", _PROPRIO_SCALE.clone() if config.dim == PROPRIO_DIM
                             else torch.ones(config.dim), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(config.dim, config.hidden), nn.GELU(), nn.Linear(config.hidden, hidden_size))
        nn.init.normal_(self.mlp[-1].weight, std=0.02 / math.sqrt(config.hidden))
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, proprio: torch.Tensor) -> torch.Tensor:
        x = proprio.float() / self.scale  # (B, 22)
        return self.mlp(x)[:, None] + self.anchor  # (B, 1, H)


ENCODERS: dict[str, tuple[type[EncoderConfig], type[Encoder]]] = {
    "camera": (CameraEncoderConfig, CameraEncoder),
    "pointcloud": (PointCloudConfig, PointCloudEncoder),
    "proprio": (ProprioConfig, ProprioEncoder),
}


def make_encoder(type_: str, hidden_size: int, **options: Any) -> Encoder:
    """Build the encoder registered as ``type_`` (config fields as ``options``)."""
    if type_ not in ENCODERS:
        raise PalmEError(f"unknown encoder type {type_!r}{suggest(type_, list(ENCODERS))}; "
                         f"known: {', '.join(ENCODERS)}")
    config_cls, model_cls = ENCODERS[type_]
    return model_cls(config_cls(**options), hidden_size)


# --------------------------------------------------------------------------- the encoder set
@dataclass
class PalmEConfig:
    """The three encoders and the LM they were trained for (its width fixes the token size)."""

    hidden_size: int  # the LM's embedding width (576 for SmolLM2-135M)
    camera: CameraEncoderConfig = field(default_factory=CameraEncoderConfig)
    pointcloud: PointCloudConfig = field(default_factory=PointCloudConfig)
    proprio: ProprioConfig = field(default_factory=ProprioConfig)
    llm: str = "smollm2"  # the language model (spec) the encoders speak to
    adapter: str = "default"  # LoRA adapter loaded (frozen) into it first: "default", a folder, or "none"
    meta: dict[str, Any] = field(default_factory=dict)  # provenance: data, steps, time, final loss

    def __post_init__(self) -> None:
        if not isinstance(self.hidden_size, int) or self.hidden_size < 1:
            raise PalmEError(f"PalmEConfig.hidden_size must be a positive int, got {self.hidden_size!r}")
        for name in ENCODERS:
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, ENCODERS[name][0](**value))
            elif not isinstance(value, ENCODERS[name][0]):
                raise PalmEError(f"PalmEConfig.{name} must be a {ENCODERS[name][0].__name__}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PalmEEncoders(nn.Module):
    """The camera, point-cloud and proprioception encoders of one checkpoint."""

    def __init__(self, config: PalmEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleDict({name: ENCODERS[name][1](getattr(config, name), config.hidden_size)
                                       for name in ENCODERS})

    def __getitem__(self, name: str) -> Encoder:
        return self.encoders[name]

    def init_anchors(self, embed: Any) -> None:
        for enc in self.encoders.values():
            enc.init_anchors(embed)

    def encode(self, features: dict[str, np.ndarray | torch.Tensor], with_aux: bool = False) -> Any:
        """One scene's features (see ``scene_features``) -> {placeholder: (n, H)} tokens (and, with ``with_aux``,
        the point trunk's auxiliary logits (n_objects, 2, 11))."""
        t = {k: torch.as_tensor(np.asarray(v)) for k, v in features.items()}
        obj, aux = self.encoders["pointcloud"](t["points"], t["mask"], t["centroid"], t["labels"])
        tokens = {"<img>": self.encoders["camera"](t["rgb"][None])[0],  # (k, H)
                  "<obj>": obj,  # (n_objects * n_tokens, H)
                  "<state>": self.encoders["proprio"](t["proprio"][None])[0]}  # (1, H)
        return (tokens, aux) if with_aux else tokens

    def save(self, folder: Path, losses: Sequence[float] | None = None) -> Path:
        """``encoders.safetensors`` (fp32), ``config.json`` and, with ``losses``, ``loss.json``/``loss.png``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().float().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
        (folder / CONFIG).write_text(json.dumps(self.config.to_dict(), indent=2))
        if losses is not None:
            tuned = self.config.adapter == "checkpoint"
            write_curve(folder, list(losses), "PaLM-E encoders + LM adapter (fine-tuned)" if tuned
                        else "PaLM-E encoders (frozen LM)")
        return folder

    def grow_object_tokens(self, n_tokens: int, embed: Any) -> PalmEEncoders:
        """A copy whose objects take ``n_tokens`` tokens (more than now), to continue training a checkpoint with a
        richer layout: existing tokens keep their weights, new ones start as a fresh encoder's (``embed`` gives
        the word embeddings) and, once there is a relation token of its own, "nothing on/in it" says "empty"."""
        old_cfg = self.config.pointcloud
        if n_tokens <= old_cfg.n_tokens:
            raise PalmEError(f"objects already take {old_cfg.n_tokens} tokens; can only grow to more, got {n_tokens}")
        pointcloud = PointCloudConfig(**{**asdict(old_cfg), "n_tokens": n_tokens})
        config = PalmEConfig(**{**self.config.to_dict(), "pointcloud": pointcloud, "meta": dict(self.config.meta)})
        grown = PalmEEncoders(config)
        fresh = grown["pointcloud"]
        fresh.init_anchors(embed)
        state = grown.state_dict()
        k, h = old_cfg.n_tokens, self.config.hidden_size
        for key, value in self.state_dict().items():
            if key.endswith(("pointcloud.out.weight", "pointcloud.out.bias")):
                state[key][: k * h] = value  # rows of the tokens that exist; the rest stay freshly initialised
            elif key.endswith("pointcloud.anchor"):
                state[key][:k] = value
            elif key.endswith("pointcloud.relation_embed.weight") and fresh.relation_token and k < 3:
                state[key] = value.clone()
                state[key][:, N_RELATION - 1] += fresh.relation_embed.weight[:, N_RELATION - 1].detach()
            else:
                state[key] = value
        grown.load_state_dict(state)
        return grown

    @classmethod
    def load(cls, folder: Path | str) -> PalmEEncoders:
        """Load a checkpoint folder; ``CheckpointError`` names what is missing or broken."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg_path, weights = folder / CONFIG, folder / WEIGHTS
        if not cfg_path.exists() or not weights.exists():
            raise CheckpointError(f"no PaLM-E encoders in {folder}: expected {CONFIG} and {WEIGHTS} "
                                  "(train them with `embodied train palme train`)")
        try:
            config = PalmEConfig(**json.loads(cfg_path.read_text()))
        except (json.JSONDecodeError, TypeError, EmbodiedError) as e:
            raise CheckpointError(f"{cfg_path}: not a valid PaLM-E config ({e})") from e
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{weights}: corrupt encoder weights ({e})") from e
        model = cls(config)
        own = model.state_dict()
        bad = sorted(set(own) ^ set(state)) + [k for k in own if k in state and own[k].shape != state[k].shape]
        if bad:
            raise CheckpointError(f"{weights} does not fit its config: {len(bad)} tensors missing, extra or "
                                  f"mis-shaped (first: {bad[0]!r})")
        model.load_state_dict(state)
        return model.eval()


def write_curve(folder: Path, losses: list[float], title: str = "PaLM-E encoders (frozen LM)") -> None:
    """``loss.json`` and ``loss.png`` (training loss per step) beside the config."""
    (folder / "loss.json").write_text(json.dumps([round(v, 5) for v in losses]))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, lw=0.6, alpha=0.5, label="per step")
    if len(losses) >= 20:
        k = 20
        ax.plot(range(k - 1, len(losses)), np.convolve(losses, np.ones(k) / k, "valid"), lw=1.2, label="mean of 20")
    ax.set(xlabel="step", ylabel="loss (nats/token)", yscale="log", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "loss.png", dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- features from sensors
def _centroid_features(pos: np.ndarray) -> np.ndarray:
    """Absolute position scaled to about unit range: (..., 3)."""
    cx, cy = 0.5 * sum(WORKSPACE_X), 0.5 * sum(WORKSPACE_Y)
    return np.stack([(pos[..., 0] - cx) / 0.2, (pos[..., 1] - cy) / 0.3, (pos[..., 2] - TABLE_Z) / 0.1], -1)


def object_segments(points: np.ndarray, state: SceneState, n_points: int = 64
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Per object of ``state`` (in its order), the points of ``points`` (H*W, 6: world xyz + rgb) in a column of
    kind-dependent radius around its position, between ``SEGMENT_Z`` above the table, evenly subsampled.

    Returns points (N, P, 6) (xyz relative to the object's position / 5 cm, rgb), mask (N, P), centroid
    features (N, 3), labels (N, 12) (colour and kind one-hots from the state's names) and the names."""
    pts = np.asarray(points, np.float32)
    pts = pts[np.isfinite(pts).all(1)]
    z = pts[:, 2] - TABLE_Z
    pts = pts[(z > SEGMENT_Z[0]) & (z < SEGMENT_Z[1])]
    names = list(state.objects)
    n = len(names)
    out = np.zeros((n, n_points, 6), np.float32)
    mask = np.zeros((n, n_points), bool)
    cent = np.zeros((n, 3), np.float32)
    labels = np.zeros((n, N_LABELS), np.float32)
    for i, name in enumerate(names):
        o = state.objects[name]
        c = np.asarray(o.position, np.float32)
        cent[i] = c
        if o.color in COLOR_NAMES:
            labels[i, COLOR_NAMES.index(o.color)] = 1.0
        labels[i, len(COLOR_NAMES) + KINDS.index(o.kind)] = 1.0
        sel = pts[np.hypot(pts[:, 0] - c[0], pts[:, 1] - c[1]) < SEGMENT_RADIUS[o.kind]]
        if len(sel) == 0:
            continue
        idx = np.linspace(0, len(sel) - 1, min(n_points, len(sel))).round().astype(int)
        sel = sel[idx]
        out[i, :len(sel), :3] = (sel[:, :3] - c) / 0.05
        out[i, :len(sel), 3:] = sel[:, 3:6]
        mask[i, :len(sel)] = True
    return out, mask, _centroid_features(cent).astype(np.float32), labels, names


def scene_features(obs: dict[str, np.ndarray], state: SceneState, n_points: int = 64) -> dict[str, np.ndarray]:
    """Everything the encoders read from one observation and the objects the state names."""
    for key in ("rgb", "points", "proprio"):
        if key not in obs:
            raise PalmEError(f"observation has no {key!r} (keys: {', '.join(obs) or 'none'}); PaLM-E reads rgb, "
                             "points and proprio")
    points, mask, centroid, labels, _ = object_segments(obs["points"], state, n_points)
    return {"rgb": np.asarray(obs["rgb"], np.uint8), "proprio": np.asarray(obs["proprio"], np.float32),
            "points": points, "mask": mask, "centroid": centroid, "labels": labels}


def aux_targets(names: Sequence[str], support: dict[str, str]) -> np.ndarray:
    """Per object (MAX_OBJECTS, 2) colour class of the block on/in it and of what it rests on (none: last),
    the targets of the point trunk's relation head."""
    none = N_RELATION - 1
    out = np.full((MAX_OBJECTS, 2), -100, np.int64)
    for i, n in enumerate(names[:MAX_OBJECTS]):
        above = [x for x, s in support.items() if s == n]
        below = support.get(n)
        out[i, 0] = COLOR_NAMES.index(above[0].split()[0]) if above else none
        color = below.split()[0] if below and below.split()[0] in COLOR_NAMES else None
        out[i, 1] = COLOR_NAMES.index(color) if color else none
    return out


# --------------------------------------------------------------------------- the prefix
def scene_text(n_image: int, n_objects: int, camera: bool = True, pointcloud: bool = True,
               proprio: bool = True, obj_tokens: int = 1) -> str:
    """The scene line with placeholders (``obj_tokens`` per object, objects comma-separated); a dropped modality
    leaves no placeholder (nor its word)."""
    parts = []
    if camera:
        parts.append("Scene:" + PLACEHOLDERS["camera"] * n_image)
    if pointcloud:
        parts.append("Objects:" + ",".join([PLACEHOLDERS["pointcloud"] * obj_tokens] * n_objects) + ".")
    if proprio:
        parts.append("Robot:" + PLACEHOLDERS["proprio"] + ".")
    return " ".join(parts)


class MultimodalPrefix:
    """Text with placeholders + encodings -> input embeddings (T, H) for a LanguageModel with embeddings."""

    def __init__(self, lm: Any) -> None:
        if not getattr(lm, "supports_embeddings", False):
            raise PalmEError(f"language model {getattr(lm, 'name', lm)!r} gives no access to token embeddings; "
                             "PaLM-E needs a local transformers model")
        self.lm = lm

    def word(self, text: str) -> torch.Tensor:
        """Mean input embedding of ``text``'s tokens: (H,)."""
        with torch.no_grad():
            return self.lm.embed_tokens(torch.tensor(self.lm.tokenize(text))).mean(0).float().cpu()

    def pieces(self, text: str) -> list[str | list[int]]:
        """The text split at placeholders: token ids of each text piece, the placeholders themselves."""
        out: list[str | list[int]] = []
        first = True
        for piece in _PLACEHOLDER_RE.split(text):
            if not piece:
                continue
            if piece in PLACEHOLDERS.values():
                out.append(piece)
            else:
                out.append(self.lm.tokenize(piece, special=first))
            first = False
        return out

    def embed(self, text: str, encodings: dict[str, torch.Tensor]) -> torch.Tensor:
        """Input embeddings (T, H) of ``text`` with every placeholder replaced, in order, by the rows of
        ``encodings[placeholder]`` (n, H); keeps autograd through the encodings."""
        pieces = self.pieces(text)
        for ph in PLACEHOLDERS.values():
            want = sum(1 for p in pieces if p == ph)
            have = len(encodings[ph]) if ph in encodings else 0
            if want != have:
                raise PalmEError(f"the prompt has {want} {ph} placeholders but {have} {ph} encodings were given; "
                                 "they must match one to one")
        used = dict.fromkeys(PLACEHOLDERS.values(), 0)
        rows: list[torch.Tensor] = []
        dtype = None
        for p in pieces:
            if isinstance(p, str):
                enc = encodings[p]
                if enc.shape[-1] != self.lm.hidden_size:
                    raise PalmEError(f"{p} encodings are {enc.shape[-1]} wide; the language model's embeddings "
                                     f"are {self.lm.hidden_size}")
                rows.append(enc[used[p]][None])
                used[p] += 1
            else:
                e = self.lm.embed_tokens(torch.tensor(p))  # (t, H)
                dtype = e.dtype
                rows.append(e)
        if not rows:
            raise PalmEError("empty prompt: the model needs at least one token to condition on")
        device = self.lm.device if hasattr(self.lm, "device") else "cpu"
        dtype = dtype or torch.float32
        return torch.cat([r.to(device, dtype) for r in rows])  # (T, H)
