"""Observation keys and the named layout of the proprioceptive vector, shared by the simulator, a real
robot, sensing and the learned models, so nothing reads proprioception by bare indices."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


PROPRIO_SLICES: dict[str, slice] = _slices()
PROPRIO_DIM: int = sum(width for _, width in PROPRIO_FIELDS)


def proprio_field(proprio: np.ndarray, name: str) -> np.ndarray:
    """One named part of a proprioceptive vector, e.g. ``proprio_field(p, "ee_position")``."""
    if name not in PROPRIO_SLICES:
        raise KeyError(f"unknown proprioception field {name!r}; fields: {', '.join(PROPRIO_SLICES)}")
    return np.asarray(proprio)[..., PROPRIO_SLICES[name]]


def pack_proprio(**parts: np.ndarray | float) -> np.ndarray:
    """The proprioceptive vector from its named parts (every field of ``PROPRIO_FIELDS`` is required)."""
    missing = [n for n, _ in PROPRIO_FIELDS if n not in parts]
    extra = [n for n in parts if n not in PROPRIO_SLICES]
    if missing or extra:
        raise KeyError(f"proprioception needs {', '.join(n for n, _ in PROPRIO_FIELDS)}; "
                       f"missing {missing or 'nothing'}, unexpected {extra or 'nothing'}")
    return np.concatenate([np.atleast_1d(np.asarray(parts[n], np.float32)) for n, _ in PROPRIO_FIELDS])


@dataclass
class View:
    """One calibrated RGB-D view: colours, world-frame points per pixel, and the camera that saw them.

    A real robot fills it from its depth camera and extrinsic calibration; ``from_zbuffer`` does it for
    OpenGL-style renders."""

    name: str
    rgb: np.ndarray  # (H, W, 3) uint8
    points: np.ndarray  # (H*W, 3) float32 world frame, NaN where the pixel saw nothing (beyond the far plane)
    view_proj: np.ndarray  # (4, 4) world -> clip (OpenGL convention), to test whether a point is visible
    eye: np.ndarray  # (3,) camera centre, world frame

    @classmethod
    def from_zbuffer(cls, name: str, rgb: np.ndarray, zbuf: np.ndarray, view: Sequence[float],
                     proj: Sequence[float], pixel_offset: tuple[float, float] = (0.5, 0.5)) -> View:
        """Back-project an OpenGL depth buffer with the camera's column-major view/projection matrices.

        ``pixel_offset`` is where, inside a pixel (column, row; row counted downwards), the renderer sampled
        depth: (0.5, 0.5) is the pixel centre; PyBullet's TinyRenderer samples at (0, 1) (measured: the
        centre convention puts an oblique camera's table 1.6 mm high and shifts points by half a pixel).
        """
        v = np.asarray(view, dtype=np.float64).reshape(4, 4).T
        vp = np.asarray(proj, dtype=np.float64).reshape(4, 4).T @ v
        h, w = zbuf.shape
        u, r = np.meshgrid(np.arange(w), np.arange(h))
        du, dv = pixel_offset
        ndc = np.stack([2 * (u + du) / w - 1, 1 - 2 * (r + dv) / h, 2 * zbuf - 1, np.ones_like(zbuf)], -1)
        world = ndc.reshape(-1, 4) @ np.linalg.inv(vp).T  # (H*W, 4)
        xyz = (world[:, :3] / world[:, 3:4]).astype(np.float32)
        xyz[zbuf.reshape(-1) >= 0.9999] = np.nan
        eye = -v[:3, :3].T @ v[:3, 3]
        return cls(name, rgb, xyz, vp, eye)

    @classmethod
    def from_depth(cls, name: str, rgb: np.ndarray, depth: np.ndarray, k: np.ndarray,
                   world_from_optical: np.ndarray) -> View:
        """Back-project a metric depth image (z along the optical axis; NaN or <= 0: nothing seen) with the
        pinhole intrinsics ``k`` (3x3) and the optical frame's pose in the world (4x4: z forward, x right,
        y down) -- a real RGB-D camera's calibration, as a ROS camera_info and tf give it."""
        h, w = depth.shape
        fx, fy, cx, cy = float(k[0][0]), float(k[1][1]), float(k[0][2]), float(k[1][2])
        u, r = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        z = np.asarray(depth, dtype=np.float64)
        cam = np.stack([(u - cx) / fx * z, (r - cy) / fy * z, z], -1).reshape(-1, 3)
        pose = np.asarray(world_from_optical, dtype=np.float64)
        xyz = (cam @ pose[:3, :3].T + pose[:3, 3]).astype(np.float32)
        xyz[~(np.isfinite(z) & (z > 0)).reshape(-1)] = np.nan
        # a clip transform with the pixel convention of `depth_at`: col = fx x/z + cx, row = fy y/z + cy
        clip = np.array([[2 * fx / w, 0.0, 2 * cx / w - 1, 0.0], [0.0, -2 * fy / h, 1 - 2 * cy / h, 0.0],
                         [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
        optical_from_world = np.linalg.inv(pose)
        return cls(name, rgb, xyz, clip @ optical_from_world, pose[:3, 3].copy())

    def depth_at(self, point: np.ndarray) -> float | None:
        """Distance from the eye to the surface seen at ``point``'s pixel (inf: nothing; None: off-image)."""
        clip = self.view_proj @ np.append(point, 1.0)
        if clip[3] <= 0:
            return None
        h, w = self.rgb.shape[:2]
        col = int((clip[0] / clip[3] + 1) * 0.5 * w)
        row = int((1 - clip[1] / clip[3]) * 0.5 * h)
        if not (0 <= col < w and 0 <= row < h):
            return None
        seen = self.points[row * w + col]
        return math.inf if np.isnan(seen[0]) else float(np.linalg.norm(seen - self.eye))
