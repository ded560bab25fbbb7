"""Learned grounding: an affordance value function p(success | observation, pick_and_place call) and a success
detector p(success | observation before, observation after, call). Both are a tiny CNN over top-down
heightmap crops plus an MLP over a few scalars, small enough to train on a CPU in minutes.

Inputs come from the observation (``obs["points"]``: world-frame xyz + rgb, ``obs["proprio"]``), except the
*positions of the named objects* (the block and the target), which are read from a ``SceneState`` — ground
truth in simulation, perception on a real robot; nothing else of the state is used.

Per call, two crops of ``crop_cells`` x ``crop_cells`` cells (``cell_size`` metres each) are cut around the
block and around the target (a named location's point, a bowl's or block's centre). Rows run along +x
(away from the robot), columns along +y. Raw channels (what datasets store): height above the table (highest
point per cell), observed (any point fell in the cell), r, g, b of that highest point. Model channels per
crop: height / 0.1 m, observed, "looks like the named block's colour", "looks like the target's colour".
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from embodied.world.errors import EmbodiedError
from embodied.world.observation import proprio_field
from embodied.world.scene import COLORS, LOCATIONS, TABLE_Z, SceneState, suggest
from policies.lora import CheckpointError

RAW_CHANNELS = ("height", "observed", "r", "g", "b")
TARGET_KINDS = ("block", "bowl", "location")
# scalar features of a call (metres, robot base frame = world frame at table height); "y" ones flip sign
# under the left-right mirror used for augmentation
CALL_SCALARS = ("block_x", "block_y", "block_z", "block_dist", "target_x", "target_y", "target_z", "target_dist",
                "dx", "dy", "kind_block", "kind_bowl", "kind_location", "gap", "ee_x", "ee_y", "ee_z")
AFTER_SCALARS = ("gap_after", "ee_x_after", "ee_y_after", "ee_z_after")
HEIGHT_CLIP = (-0.05, 0.35)  # metres above the table: below = off the table's edge; above = the arm
COLOR_SIGMA = 0.08  # rgb distance (after the best brightness scale) at which a colour match falls to 1/e


# --------------------------------------------------------------------------- features
def heightmap_crops(points: np.ndarray, centres: np.ndarray, cells: int, cell_size: float) -> np.ndarray:
    """Top-down crops of a point cloud: (N, 5, cells, cells) float32 with RAW_CHANNELS, one per xy centre."""
    pts = np.asarray(points, dtype=np.float32)  # (P, 6)
    centres = np.asarray(centres, dtype=np.float32).reshape(-1, 2)  # (N, 2)
    out = np.zeros((len(centres), len(RAW_CHANNELS), cells, cells), np.float32)
    half = 0.5 * cells * cell_size
    for k, (cx, cy) in enumerate(centres):
        rows = np.floor((pts[:, 0] - (cx - half)) / cell_size).astype(np.int64)  # (P,)
        cols = np.floor((pts[:, 1] - (cy - half)) / cell_size).astype(np.int64)  # (P,)
        keep = (rows >= 0) & (rows < cells) & (cols >= 0) & (cols < cells)
        if not keep.any():
            continue
        cell = rows[keep] * cells + cols[keep]  # (K,)
        sel = pts[keep]  # (K, 6)
        order = np.lexsort((sel[:, 2], cell))  # by cell, then height: the last of each cell is its highest point
        cell, sel = cell[order], sel[order]
        last = np.r_[cell[1:] != cell[:-1], True]
        top, idx = sel[last], cell[last]
        flat = out[k].reshape(len(RAW_CHANNELS), -1)  # (5, cells*cells) view
        flat[0, idx] = np.clip(top[:, 2] - TABLE_Z, *HEIGHT_CLIP)
        flat[1, idx] = 1.0
        flat[2:, idx] = top[:, 3:6].T
    return out


def color_match(rgb: np.ndarray, color: str | None) -> np.ndarray:
    """How much each cell (..., 3, H, W) looks like the named colour, in [0, 1] (zeros for no colour)."""
    if color is None:
        return np.zeros(rgb.shape[:-3] + rgb.shape[-2:], np.float32)
    c = np.asarray(COLORS[color][:3], np.float32)[:, None, None]  # (3, 1, 1)
    scale = np.clip((rgb * c).sum(-3, keepdims=True) / float((c * c).sum()), 0.7, 1.05)  # shading
    d2 = ((rgb - scale * c) ** 2).sum(-3)
    return np.exp(-d2 / COLOR_SIGMA**2).astype(np.float32)


def crop_channels(raw: np.ndarray, block_color: str | None, target_color: str | None) -> np.ndarray:
    """Raw crops (..., 5, H, W) -> model channels (..., 4, H, W): height, observed, block colour, target colour."""
    rgb, observed = raw[..., 2:5, :, :], raw[..., 1, :, :]
    return np.stack([raw[..., 0, :, :] / 0.1, observed, color_match(rgb, block_color) * observed,
                     color_match(rgb, target_color) * observed], -3).astype(np.float32)


def object_color(name: str) -> str | None:
    """The colour in an object's name ("red block" -> "red"); None for a named location."""
    parts = name.split()
    return parts[0] if len(parts) == 2 and parts[0] in COLORS else None


def named_position(state: SceneState, name: str) -> tuple[np.ndarray, str]:
    """Position (x, y, z) and kind ("block", "bowl", "location") of a named object or location."""
    if name in LOCATIONS:
        x, y = LOCATIONS[name]
        return np.array([x, y, TABLE_Z], np.float32), "location"
    o = state.get(name)
    return np.asarray(o.position, np.float32), o.kind


def call_scalars(block_pos: np.ndarray, target_pos: np.ndarray, target_kind: str, proprio: np.ndarray) -> np.ndarray:
    """The CALL_SCALARS of one call, (17,) float32, scaled to about unit range."""
    b, t = np.asarray(block_pos, np.float64), np.asarray(target_pos, np.float64)
    ee = np.asarray(proprio_field(proprio, "ee_position"), np.float64)
    kind = [float(target_kind == k) for k in TARGET_KINDS]
    return np.array([2 * b[0], 2 * b[1], 10 * (b[2] - TABLE_Z), 2 * math.hypot(b[0], b[1]),
                     2 * t[0], 2 * t[1], 10 * (t[2] - TABLE_Z), 2 * math.hypot(t[0], t[1]),
                     5 * (t[0] - b[0]), 5 * (t[1] - b[1]), *kind, 10 * float(proprio_field(proprio, "finger_gap")[0]),
                     2 * ee[0], 2 * ee[1], 2 * (ee[2] - TABLE_Z)], np.float32)


def after_scalars(proprio_after: np.ndarray) -> np.ndarray:
    """AFTER_SCALARS, (4,) float32."""
    ee = np.asarray(proprio_field(proprio_after, "ee_position"), np.float64)
    return np.array([10 * float(proprio_field(proprio_after, "finger_gap")[0]), 2 * ee[0], 2 * ee[1], 2 * (ee[2] - TABLE_Z)], np.float32)


def mirror_signs(names: tuple[str, ...]) -> np.ndarray:
    """+1/-1 per scalar: what the left-right mirror (y -> -y) does to it."""
    return np.array([-1.0 if n in ("block_y", "target_y", "dy", "ee_y", "ee_y_after") else 1.0 for n in names],
                    np.float32)


# --------------------------------------------------------------------------- configs + models
@dataclass
class GroundingConfig:
    """Shared by both models: crop geometry, network width, decision threshold."""

    type: ClassVar[str] = ""
    crop_cells: int = 32  # crop side in cells: 32 x 1 cm sees the hand's footprint around an object; 24 is faster, blinder
    cell_size: float = 0.01  # metres per cell: 1 cm resolves a 4 cm cube as 4 x 4 cells at 128 x 128 pixels
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])  # conv widths, each then a 2x pool; 2x wider = ~3x slower
    hidden: int = 128  # MLP width after the conv trunk; doubling it barely helps on a few thousand samples
    dropout: float = 0.1
    threshold: float = 0.5  # p above which a call counts as "succeeds" (chosen on validation when training)
    image_size: int = 128  # camera side the model was trained on: other sizes put other point densities in a cell

    def __post_init__(self) -> None:
        if self.crop_cells < 8 or self.crop_cells % (2 ** len(self.channels)):
            raise EmbodiedError(f"{type(self).__name__}.crop_cells must be >= 8 and divisible by "
                                f"2**len(channels)={2 ** len(self.channels)}, got {self.crop_cells}")
        if not 0.001 <= self.cell_size <= 0.05:
            raise EmbodiedError(f"{type(self).__name__}.cell_size must be in [0.001, 0.05] m, got {self.cell_size}")
        if not self.channels or any(c < 1 for c in self.channels):
            raise EmbodiedError(f"{type(self).__name__}.channels must be positive widths, got {self.channels}")
        if self.hidden < 1:
            raise EmbodiedError(f"{type(self).__name__}.hidden must be >= 1, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise EmbodiedError(f"{type(self).__name__}.dropout must be in [0, 1), got {self.dropout}")
        if self.image_size < 8:
            raise EmbodiedError(f"{type(self).__name__}.image_size must be >= 8, got {self.image_size}")
        if not 0.0 < self.threshold < 1.0:
            raise EmbodiedError(f"{type(self).__name__}.threshold must be in (0, 1), got {self.threshold}")

    @property
    def in_channels(self) -> int:
        raise NotImplementedError

    @property
    def scalar_names(self) -> tuple[str, ...]:
        raise NotImplementedError


@dataclass
class AffordanceConfig(GroundingConfig):
    """p(pick_and_place succeeds) from the observation before: crops at the block and the target."""

    type: ClassVar[str] = "affordance"

    @property
    def in_channels(self) -> int:
        return 8  # (block crop, target crop) x (height, observed, block colour, target colour)

    @property
    def scalar_names(self) -> tuple[str, ...]:
        return CALL_SCALARS


@dataclass
class SuccessDetectorConfig(GroundingConfig):
    """p(the call succeeded) from the observations before and after: crops at the block's start and the target."""

    type: ClassVar[str] = "success_detector"

    @property
    def in_channels(self) -> int:
        return 16  # (block start, target) x (before, after) x 4 model channels

    @property
    def scalar_names(self) -> tuple[str, ...]:
        return CALL_SCALARS + AFTER_SCALARS


class CropNet(nn.Module):
    """Conv trunk over stacked crops + MLP over [trunk features, scalars] -> one logit."""

    def __init__(self, config: GroundingConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.in_channels
        for c in config.channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.GroupNorm(min(8, c), c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.trunk = nn.Sequential(*layers)
        side = config.crop_cells // 2 ** len(config.channels)
        n_scalars = len(config.scalar_names)
        self.scalars = nn.Sequential(nn.Linear(n_scalars, 64), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(c_in * side * side + 64, config.hidden), nn.ReLU(),
                                  nn.Dropout(config.dropout), nn.Linear(config.hidden, 1))

    def forward(self, crops: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        x = self.trunk(crops).flatten(1)  # (B, C*s*s) from (B, in_channels, cells, cells)
        s = self.scalars(scalars)  # (B, 64) from (B, n_scalars)
        return self.head(torch.cat([x, s], 1)).squeeze(1)  # (B,) logits

    @torch.no_grad()
    def predict(self, crops: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        """Probabilities (B,) for numpy inputs, in eval mode."""
        was = self.training
        self.eval()
        p = torch.sigmoid(self(torch.from_numpy(np.ascontiguousarray(crops, np.float32)),
                               torch.from_numpy(np.ascontiguousarray(scalars, np.float32)))).numpy()
        self.train(was)
        return p


class AffordanceNet(CropNet):
    config_class = AffordanceConfig


class SuccessDetectorNet(CropNet):
    config_class = SuccessDetectorConfig


MODELS: dict[str, tuple[type[GroundingConfig], type[CropNet]]] = {
    AffordanceConfig.type: (AffordanceConfig, AffordanceNet),
    SuccessDetectorConfig.type: (SuccessDetectorConfig, SuccessDetectorNet),
}
POLICIES_DIR = Path(__file__).resolve().parent
DEFAULT_CHECKPOINTS = {"affordance": POLICIES_DIR / "affordance", "success_detector": POLICIES_DIR / "success_detector"}


def make_config(type_: str, **overrides: Any) -> GroundingConfig:
    if type_ not in MODELS:
        raise EmbodiedError(f"unknown grounding model type {type_!r}{suggest(type_, list(MODELS))}; "
                            f"known: {', '.join(MODELS)}")
    return MODELS[type_][0](**overrides)


def make_model(config: GroundingConfig) -> CropNet:
    return MODELS[config.type][1](config)


# --------------------------------------------------------------------------- features for a batch of calls
def check_points(config: GroundingConfig, obs: dict[str, np.ndarray], what: str = "observation") -> None:
    """The learned models need the point density they were trained with: a clear error otherwise."""
    n = int(np.asarray(obs["points"]).shape[0])
    if n != config.image_size ** 2:
        raise EmbodiedError(f"the {config.type} model was trained on {config.image_size}x{config.image_size} camera "
                            f"images, but the {what} has {n} points; make the env with "
                            f"image_size=({config.image_size}, {config.image_size})")


def affordance_inputs(config: GroundingConfig, raw: dict[str, np.ndarray], positions: dict[str, tuple[np.ndarray, str]],
                      pairs: list[tuple[str, str]], proprio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for (block, target) pairs from raw crops per name: crops (B, 8, S, S), scalars (B, 17)."""
    crops, scalars = [], []
    for block, target in pairs:
        bc, tc = object_color(block), object_color(target)
        crops.append(np.concatenate([crop_channels(raw[block], bc, tc), crop_channels(raw[target], bc, tc)], 0))
        (bp, _), (tp, kind) = positions[block], positions[target]
        scalars.append(call_scalars(bp, tp, kind, proprio))
    s = config.crop_cells
    return (np.stack(crops) if crops else np.zeros((0, 8, s, s), np.float32),
            np.stack(scalars) if scalars else np.zeros((0, len(CALL_SCALARS)), np.float32))


def success_inputs(raw_before: np.ndarray, raw_after: np.ndarray, block: str, target: str, scalars: np.ndarray,
                   proprio_after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One success-detector sample from raw crops (2, 5, S, S) at (block start, target), before and after:
    crops (16, S, S), scalars (21,)."""
    bc, tc = object_color(block), object_color(target)
    before, after = crop_channels(raw_before, bc, tc), crop_channels(raw_after, bc, tc)  # (2, 4, S, S) each
    crops = np.concatenate([before[0], after[0], before[1], after[1]], 0)
    return crops, np.concatenate([scalars, after_scalars(proprio_after)]).astype(np.float32)


# --------------------------------------------------------------------------- datasets of collected calls
def load_dataset(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a dataset written by `embodied train grounding collect` (one ``.npz``), for training and metrics."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no grounding dataset at {path}; collect one with "
                                "`embodied train grounding collect`")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def dataset_inputs(config: GroundingConfig, data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for every sample of a dataset: crops (N, C, S, S), scalars (N, n_scalars)."""
    crops, scalars = [], []
    for i in range(len(data["label"])):
        block, target = str(data["block"][i]), str(data["target"][i])
        if isinstance(config, SuccessDetectorConfig):
            c, s = success_inputs(data["raw_before"][i].astype(np.float32), data["raw_after"][i].astype(np.float32),
                                  block, target, data["scalars"][i], data["proprio_after"][i])
        else:
            raw = {block: data["raw_before"][i, 0].astype(np.float32), target: data["raw_before"][i, 1].astype(np.float32)}
            kind = TARGET_KINDS[int(data["kind"][i])]
            c, s = affordance_inputs(config, raw, {block: (data["block_pos"][i], "block"),
                                                   target: (data["target_pos"][i], kind)},
                                     [(block, target)], data["proprio_before"][i])
            c, s = c[0], s[0]
        crops.append(c)
        scalars.append(s)
    return np.stack(crops), np.stack(scalars)


# --------------------------------------------------------------------------- save / load
def save_checkpoint(model: CropNet, folder: Path) -> Path:
    """``config.json`` (with its ``type``) and ``model.safetensors`` (float32) in ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"type": model.config.type, **asdict(model.config)}, indent=2))
    return folder


def load_checkpoint(folder: Path, expect_type: str | None = None) -> CropNet:
    """The model saved in ``folder``, in eval mode. Missing files, bad json, a config that does not validate,
    corrupt or truncated weights and tensors of the wrong name or shape raise ``CheckpointError`` naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, weights = folder / "config.json", folder / "model.safetensors"
    for path in (cfg_path, weights):
        if not path.is_file():
            raise CheckpointError(f"missing checkpoint file {path} (a grounding checkpoint folder holds config.json "
                                  "and model.safetensors; train one with `embodied train grounding all`)")
    try:
        raw = json.loads(cfg_path.read_text())
        type_ = raw.pop("type")
        known = {f.name for f in fields(MODELS[type_][0])}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise TypeError(f"unknown fields {unknown}")
        config = make_config(type_, **raw)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, EmbodiedError) as e:
        raise CheckpointError(f"{cfg_path}: not a valid grounding config ({type(e).__name__}: {e})") from e
    if expect_type is not None and config.type != expect_type:
        raise CheckpointError(f"{cfg_path}: holds a {config.type!r} model, expected {expect_type!r}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{weights}: corrupt or truncated weights ({e})") from e
    model = make_model(config)
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    bad = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
           if k in state and state[k].shape != v.shape]
    if missing or extra or bad:
        raise CheckpointError(f"{weights} does not fit {config.type} as {cfg_path.name} describes it: missing "
                              f"{missing[:3] or 'none'}, unexpected {extra[:3] or 'none'}, wrong shape {bad[:3] or 'none'}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model.eval()
