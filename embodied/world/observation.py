"""Observation keys and the named layout of the proprioceptive vector, shared by the simulator, a real
robot, sensing and the learned models, so nothing reads proprioception by bare indices."""

from __future__ import annotations

import numpy as np

RGB, DEPTH, POINTS, PROPRIO = "rgb", "depth", "points", "proprio"
OBSERVATION_KEYS: tuple[str, ...] = (RGB, DEPTH, POINTS, PROPRIO)

# (name, width) in order: 7 joint positions, 7 joint velocities, hand position (xyz, world frame, metres),
# hand orientation (quaternion xyzw), finger gap (metres).
PROPRIO_FIELDS: tuple[tuple[str, int], ...] = (
    ("joint_positions", 7),
    ("joint_velocities", 7),
    ("ee_position", 3),
    ("ee_quaternion", 4),
    ("finger_gap", 1),
)


def _slices() -> dict[str, slice]:
    out, start = {}, 0
    for name, width in PROPRIO_FIELDS:
        out[name] = slice(start, start + width)
        start += width
    return out


PROPRIO: dict[str, slice] = _slices()
PROPRIO_DIM: int = sum(width for _, width in PROPRIO_FIELDS)


def proprio_field(proprio: np.ndarray, name: str) -> np.ndarray:
    """One named part of a proprioceptive vector, e.g. ``proprio_field(p, "ee_position")``."""
    if name not in PROPRIO:
        raise KeyError(f"unknown proprioception field {name!r}; fields: {', '.join(PROPRIO)}")
    return np.asarray(proprio)[..., PROPRIO[name]]


def pack_proprio(**parts: np.ndarray | float) -> np.ndarray:
    """The proprioceptive vector from its named parts (every field of ``PROPRIO_FIELDS`` is required)."""
    missing = [n for n, _ in PROPRIO_FIELDS if n not in parts]
    extra = [n for n in parts if n not in PROPRIO]
    if missing or extra:
        raise KeyError(f"proprioception needs {', '.join(n for n, _ in PROPRIO_FIELDS)}; "
                       f"missing {missing or 'nothing'}, unexpected {extra or 'nothing'}")
    return np.concatenate([np.atleast_1d(np.asarray(parts[n], np.float32)) for n, _ in PROPRIO_FIELDS])
