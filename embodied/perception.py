"""Perception: fused RGB-D views -> point cloud -> table removed -> clusters -> objects -> `SceneState`.

The pipeline (``perceive``) needs only numpy and open3d; ``perceive_robot`` feeds it from any robot's cameras
and joint sensors (the Robot API), so the simulator and a real arm are perceived by the same code.

1. **Fuse.** Every view is back-projected to world-frame points (``View.points``); pixels beyond the far plane
   and points outside the workspace box are dropped.
2. **Colour.** Each point is labelled with the nearest named colour (``embodied.world.scene.COLORS``) in chromaticity
   space, ``rgb / (r + g + b)``: diffuse shading scales all three channels alike, so chromaticity stays put
   while brightness varies across faces. Points too far from every colour (the wooden table) or too dark to
   judge (the Panda's black parts) are rejected. The Panda's white/grey links are neutral, like the gray
   colour, so they are removed by geometry (step 4), never by colour.
3. **Table.** RANSAC (``segment_plane``) finds the dominant plane; it is accepted when it is horizontal and
   within ``table_tolerance`` of the known table height (else the known height is used, with a warning).
   Points within ``plane_threshold`` of it are removed.
4. **Robot.** Proprioception (end-effector position, yaw, finger gap) places the hand: points inside the hand
   and wrist volume are removed, except the space between the fingers, where a held block sits. Neutral
   clusters that reach above any possible stack, or sit above the fingertips near the hand, are arm links.
5. **Clusters.** Per colour, voxel-downsampled points are clustered with DBSCAN (``cluster_dbscan``). A
   cluster wider than ``bowl_min_extent`` is a bowl: a circle of the rim's radius is fitted to the rim's top
   face, and the points it does not explain (inside above the floor, or outside the wall) are a same-colour
   block. Other clusters are blocks: yaw from the smallest-perimeter footprint rectangle, centre from that
   rectangle (a side no camera saw is put one block size behind the side that was seen), height from the top.
6. **Stacks.** A block with another block resting on it (within 0.6 block sizes horizontally, 0.5-1.5 above)
   shows no top face; its centre is put one block size below the centre of the block on it.
7. **Hand and memory.** ``held`` is the block between the fingers while they are closed on something. Objects
   of ``previous`` that are not seen now are kept only when they cannot be seen (see ``perceive``).
8. **What did not move.** Across one episode's looks, `PerceptionMemo` keeps each colour's objects and
   re-clusters only the colours whose points moved (step 5 is skipped for the rest), and the table
   height is fitted once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np
import open3d as o3d

from embodied.world.errors import EmbodiedError
from embodied.world.observation import View, proprio_field
from embodied.world.scene import (
    BLOCK_SIZE,
    BOWL_FLOOR,
    BOWL_HEIGHT,
    BOWL_INNER_RADIUS,
    BOWL_OUTER_RADIUS,
    COLORS,
    TABLE_Z,
    WORKSPACE_X,
    WORKSPACE_Y,
    ObjectState,
    SceneState,
    object_name,
)
from skills.robot import Cameras, Robot

log = logging.getLogger(__name__)

BOWL_RIM_RADIUS = 0.5 * (BOWL_INNER_RADIUS + BOWL_OUTER_RADIUS)  # the rim's mid-line, which every view sees
MAX_STACK_HEIGHT = 0.26  # above the table: six blocks plus a margin; anything higher is the arm
ARM_REACH_AROUND_HAND = 0.16  # radius around the fingertips (m) where neutral points above them are arm
MIN_FACE = 0.012  # a block must show a face this deep (xy) or tall (z), in m: thinner slivers are arm edges
_COLOR_NAMES = tuple(COLORS)
_CHROMA = np.array([np.asarray(c[:3]) / sum(c[:3]) for c in COLORS.values()])  # (K, 3) palette chromaticity
_GRAY = _COLOR_NAMES.index("gray")


class PerceptionError(EmbodiedError, ValueError):
    """A perception config or input that cannot be used."""


DEFAULT_IMAGE_SIZE = 160


@dataclass(frozen=True)
class PerceptionConfig:
    """Cameras and thresholds of the perception pipeline; validated on construction."""

    # side of every perception image (px): 160 puts ~8 px across a 4 cm face (0.4 mm mean error, ~0.15 s);
    # 128 starts to confuse arm edges with blocks, 176 gains 0.1 mm for 30% more time
    image_size: int = DEFAULT_IMAGE_SIZE
    # voxel grid for downsampling (m): coarser is faster for DBSCAN, finer keeps thin bowl walls and edges
    voxel_size: float = 0.003
    # points this close to the table plane are table (m): larger drops block bottoms, smaller leaves specks
    plane_threshold: float = 0.003
    # RANSAC plane accepted only within this of the known table height (m); else the known height is used
    table_tolerance: float = 0.01
    # known table height (m), the check and fallback for RANSAC
    table_z: float = TABLE_Z
    # DBSCAN neighbourhood radius (m): larger bridges occlusion gaps but merges touching objects of one colour
    dbscan_eps: float = 0.012
    # DBSCAN core-point count: larger ignores specks, smaller finds heavily occluded objects
    dbscan_min_points: int = 6
    # fewest points (downsampled) for a block hypothesis: larger rejects fragments, smaller finds slivers
    min_block_points: int = 12
    # chromaticity distance to the nearest named colour above which a point is rejected (table: ~0.07)
    color_tolerance: float = 0.035
    # r + g + b below which a pixel is too dark to name its colour (the Panda's black parts)
    min_brightness: float = 0.25
    # a cluster wider than this (m) holds a bowl (bowls are 18 cm, a block's diagonal 5.7 cm)
    bowl_min_extent: float = 0.11
    # how far outside the workspace rectangle points are still considered (m)
    workspace_margin: float = 0.10
    # finger gap range (m) meaning "closed on a block": below it the hand closed on nothing, above it is open
    held_gap: tuple[float, float] = (0.025, 0.052)
    # classify each distinct RGB value once per process (a lookup table); False: every pixel of every frame,
    # as before the fast loop (same labels, ~10x the time; kept so benchmarks can measure against it)
    color_lut: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or not 32 <= self.image_size <= 1024:
            raise PerceptionError(f"image_size must be an int in [32, 1024], got {self.image_size!r}")
        positive = {"voxel_size": 0.02, "plane_threshold": 0.02, "table_tolerance": 0.1, "dbscan_eps": 0.05,
                    "color_tolerance": 0.3, "min_brightness": 3.0, "bowl_min_extent": 0.2,
                    "workspace_margin": 0.5}
        for name, high in positive.items():
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value <= high or math.isnan(value):
                raise PerceptionError(f"{name} must be a number in (0, {high}], got {value!r}")
        if self.voxel_size > self.dbscan_eps:
            raise PerceptionError(f"voxel_size ({self.voxel_size}) must not exceed dbscan_eps "
                                  f"({self.dbscan_eps}): neighbouring voxels would never be linked")
        for name in ("dbscan_min_points", "min_block_points"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise PerceptionError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.table_z, int | float) or not math.isfinite(self.table_z):
            raise PerceptionError(f"table_z must be a finite number, got {self.table_z!r}")
        if not isinstance(self.color_lut, bool):
            raise PerceptionError(f"color_lut must be True or False, got {self.color_lut!r}")
        lo, hi = self.held_gap if isinstance(self.held_gap, tuple) and len(self.held_gap) == 2 else (-1, -1)
        if not 0 < lo < hi <= 0.08:
            raise PerceptionError(f"held_gap must be (low, high) with 0 < low < high <= 0.08, "
                                  f"got {self.held_gap!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for saving with a run."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Proprio:
    """The robot's own sensing of its hand: fingertip centre, yaw about vertical, finger gap (m)."""

    ee_position: tuple[float, float, float]
    ee_yaw: float
    gripper_width: float


@dataclass(frozen=True)
class ObjectHypothesis:
    """One perceived object: identity, pose (as ``ObjectState`` has it), observed size and evidence."""

    name: str
    kind: str
    color: str
    position: tuple[float, float, float]  # block: cube centre; bowl: base centre on the table
    yaw: float  # blocks: in [-pi/4, pi/4); bowls: 0
    extent: tuple[float, float, float]  # observed size along its own axes and up (m)
    n_points: int  # downsampled points that support it

    def state(self) -> ObjectState:
        """As the planner and skills read it."""
        return ObjectState(self.name, self.kind, self.color,  # type: ignore[arg-type]
                           self.position, self.yaw)


# ---------------------------------------------------------------------------------------------- geometry
def classify_colors(rgb: np.ndarray, config: PerceptionConfig) -> np.ndarray:
    """Per pixel (any shape (..., 3) uint8), the index of the nearest named colour in chromaticity space, or
    -1 where the colour is none of them (the table) or too dark to tell (the Panda's black parts). Each
    distinct RGB value is classified once per process and remembered (a frame repeats most of the last
    one's colours), so a frame costs a table lookup."""
    if not config.color_lut:
        return _classify(rgb, config)
    key = (config.color_tolerance, config.min_brightness)
    lut = _COLOR_LUTS.get(key)
    if lut is None:
        lut = _COLOR_LUTS[key] = np.full(1 << 24, -2, np.int8)  # -2: not classified yet (16 MiB)
    flat = rgb.reshape(-1, 3)
    packed = (flat[:, 0].astype(np.int32) << 16) | (flat[:, 1].astype(np.int32) << 8) | flat[:, 2]
    label = lut[packed]
    new = np.unique(packed[label == -2])
    if len(new):
        lut[new] = _classify(np.stack([new >> 16, (new >> 8) & 255, new & 255], 1).astype(np.uint8), config)
        label = lut[packed]
    return label.astype(np.int64)


_COLOR_LUTS: dict[tuple[float, float], np.ndarray] = {}


def _classify(rgb: np.ndarray, config: PerceptionConfig) -> np.ndarray:
    """`classify_colors` computed from scratch for (N, 3) uint8 colours."""
    c = rgb.reshape(-1, 3).astype(np.float32) / 255.0
    s = c.sum(1)
    chroma = c / np.maximum(s, 1e-6)[:, None]  # (N, 3)
    proto = _CHROMA.astype(np.float32)  # (K, 3)
    d2 = (chroma**2).sum(1)[:, None] - 2 * chroma @ proto.T + (proto**2).sum(1)[None]  # (N, K) squared dist.
    label = d2.argmin(1)
    label[(d2.min(1) > config.color_tolerance**2) | (s < config.min_brightness)] = -1
    return label


def _rotate(xy: np.ndarray, angle: float) -> np.ndarray:
    """Coordinates of ``xy`` in a frame turned by ``angle`` (so the frame's axes are at ``angle``)."""
    c, s = math.cos(angle), math.sin(angle)
    return xy @ np.array([[c, -s], [s, c]])


def _footprint_yaw(xy: np.ndarray) -> float:
    """Angle in [-pi/4, pi/4) of the bounding rectangle of ``xy`` with the smallest perimeter.

    Perimeter, not area: the visible faces of a covered block project to an L of two edges, whose
    smallest-area rectangles are both the square and the 45-degree one; the perimeter prefers the square."""
    def best(angles: np.ndarray) -> float:  # all angles at once: x' = x c + y s, y' = -x s + y c
        c, s = np.cos(angles)[None], np.sin(angles)[None]
        x, y = xy[:, :1], xy[:, 1:2]
        u, v = x * c + y * s, y * c - x * s
        perimeter = (u.max(0) - u.min(0)) + (v.max(0) - v.min(0))
        return float(angles[int(np.argmin(perimeter))])  # the first of equals, as min() would

    coarse = best(np.deg2rad(np.arange(-45.0, 45.0, 3.0)))
    yaw = best(coarse + np.deg2rad(np.arange(-3.0, 3.01, 0.25)))
    return float((yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4)


def _fit_ring(xy: np.ndarray, start: np.ndarray, radius: float, iters: int = 6) -> tuple[np.ndarray, float]:
    """Centre of a circle of known ``radius`` through ``xy`` (trimmed Gauss-Newton); returns (centre, rms)."""
    centre = start.astype(np.float64)
    rms = math.inf
    for i in range(iters):
        d = xy - centre
        r = np.linalg.norm(d, axis=1)
        keep = np.abs(r - radius) < (0.03 if i < 2 else 0.012)
        if keep.sum() < 8:
            break
        jac = -d[keep] / np.maximum(r[keep], 1e-9)[:, None]  # d r / d centre
        res = r[keep] - radius
        step, *_ = np.linalg.lstsq(jac, -res, rcond=None)
        centre = centre + step
        rms = float(np.sqrt(np.mean(res**2)))
    return centre, rms


def _table_height(points: np.ndarray, config: PerceptionConfig) -> float:
    """Height of the table plane: RANSAC on the neutral-free points, checked against the known height."""
    near = points[np.abs(points[:, 2] - config.table_z) < 0.05]
    if len(near) < 50:
        return config.table_z
    if len(near) > 4000:
        near = near[np.linspace(0, len(near) - 1, 4000).astype(int)]
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(near.astype(np.float64)))
    (a, b, c, d), inliers = pcd.segment_plane(config.plane_threshold, 3, 60)
    if abs(c) < 0.99 or len(inliers) < 0.3 * len(near):
        log.warning("no horizontal table plane found (normal %.2f, %d inliers); using the known height",
                    abs(c), len(inliers))
        return config.table_z
    z = float(np.median(near[np.asarray(inliers), 2]))
    if abs(z - config.table_z) > config.table_tolerance:
        log.warning("table plane at %.3f m is %.3f m off the known height; using the known height",
                    z, z - config.table_z)
        return config.table_z
    return z


def _downsample(points: np.ndarray, voxel: float) -> np.ndarray:
    """Voxel-grid downsampling (centroid per voxel)."""
    if len(points) == 0:
        return points
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    return np.asarray(pcd.voxel_down_sample(voxel).points)


def _dbscan(points: np.ndarray, config: PerceptionConfig) -> list[np.ndarray]:
    """Clusters of ``points`` (largest first), noise dropped."""
    if len(points) < config.dbscan_min_points:
        return []
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    labels = np.asarray(pcd.cluster_dbscan(config.dbscan_eps, config.dbscan_min_points))
    clusters = [points[labels == k] for k in range(labels.max() + 1)]
    return sorted(clusters, key=len, reverse=True)


@dataclass
class _Fused:
    """Per-colour point sets after cropping, table and robot removal."""

    by_color: dict[int, np.ndarray]  # voxel-downsampled
    table_z: float
    eyes: np.ndarray  # (V, 3)
    raw: dict[int, np.ndarray]  # before downsampling, in pixel order (what `PerceptionMemo` compares)
    pixels: dict[int, np.ndarray]  # the pixel (over all views) each raw point comes from


def _hand_frame(points: np.ndarray, proprio: Proprio) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of ``points`` in the hand frame: along the finger axis, across it, and up."""
    d = points - np.asarray(proprio.ee_position)
    yaw = proprio.ee_yaw
    a = d[:, 0] * math.sin(yaw) - d[:, 1] * math.cos(yaw)
    b = d[:, 0] * math.cos(yaw) + d[:, 1] * math.sin(yaw)
    return a, b, d[:, 2]


def _between_fingers(points: np.ndarray, proprio: Proprio) -> np.ndarray:
    """Mask of points in the space between the fingers (where a held block sits)."""
    a, b, z = _hand_frame(points, proprio)
    return (np.abs(a) < 0.5 * proprio.gripper_width - 0.002) & (np.abs(b) < 0.035) & (z > -0.03) & (z < 0.03)


def _robot_mask(points: np.ndarray, proprio: Proprio) -> np.ndarray:
    """Mask of points on the hand, fingers and wrist (from proprioception), but not between the fingers."""
    a, b, z = _hand_frame(points, proprio)
    hand = (np.abs(a) < 0.125) & (np.abs(b) < 0.05) & (z > -0.025) & (z < 0.14)
    wrist = (a**2 + b**2 < 0.075**2) & (z >= 0.14) & (z < 0.40)
    return (hand | wrist) & ~_between_fingers(points, proprio)


def _fuse(views: Sequence[View], proprio: Proprio, config: PerceptionConfig,
          box: tuple[np.ndarray, np.ndarray] | None = None, table_z: float | None = None) -> _Fused:
    """Fuse the views into per-colour clouds: crop (to the workspace, or to ``box``), colour-label, remove
    table and hand. ``table_z`` skips the table fit (a crop that holds no table)."""
    pts, labels, pixels = [], [], []
    m = config.workspace_margin
    lo = np.array([WORKSPACE_X[0] - m, WORKSPACE_Y[0] - m, config.table_z - 0.03])
    hi = np.array([WORKSPACE_X[1] + m, WORKSPACE_Y[1] + m, config.table_z + 0.6])
    if box is not None:
        lo, hi = np.maximum(lo, box[0]), np.minimum(hi, box[1])
    offset = 0
    for v in views:
        p = v.points
        with np.errstate(invalid="ignore"):  # per axis: a third of the work of np.all over (N, 3) booleans
            keep = (p[:, 0] >= lo[0]) & (p[:, 0] <= hi[0]) & (p[:, 1] >= lo[1]) & (p[:, 1] <= hi[1]) \
                & (p[:, 2] >= lo[2]) & (p[:, 2] <= hi[2])
        pts.append(p[keep])
        labels.append(classify_colors(v.rgb.reshape(-1, 3)[keep], config))
        pixels.append(offset + np.flatnonzero(keep))  # which pixel of which view each point is
        offset += len(p)
    points = np.concatenate(pts) if pts else np.zeros((0, 3), np.float32)
    label = np.concatenate(labels) if labels else np.zeros(0, int)
    pixel = np.concatenate(pixels) if pixels else np.zeros(0, np.int64)
    table_z = _table_height(points[label < 0], config) if table_z is None else table_z
    keep = (label >= 0) & (points[:, 2] > table_z + config.plane_threshold)
    points, label, pixel = points[keep], label[keep], pixel[keep]
    keep = ~_robot_mask(points, proprio)  # on the coloured points above the table only: far fewer
    points, label, pixel = points[keep], label[keep], pixel[keep]
    colors = np.unique(label)
    raw = {int(k): points[label == k] for k in colors}
    by_color = {k: _downsample(p, config.voxel_size) for k, p in raw.items()}
    pixels_of = {int(k): pixel[label == k] for k in colors}
    return _Fused(by_color, table_z, np.array([v.eye for v in views]), raw, pixels_of)


# ---------------------------------------------------------------------------------------------- hypotheses
def _block(points: np.ndarray, color: str, fused: _Fused) -> ObjectHypothesis:
    """A cube hypothesis from its visible points: yaw and centre from the footprint, height from the top."""
    z = points[:, 2]
    z_top = float(np.percentile(z, 99))
    yaw = _footprint_yaw(points[:, :2])
    allr = _rotate(points[:, :2], yaw)
    lo, hi = allr.min(0), allr.max(0)
    centre_r = 0.5 * (lo + hi)
    span = hi - lo
    mean = points[:, :2].mean(0)
    look = (fused.eyes[:, :2] - mean).mean(0)  # where the cameras look from, on average
    look_r = _rotate(look[None], yaw)[0]
    for i in range(2):  # a side never seen: the face that was seen is the one towards the cameras
        if span[i] < BLOCK_SIZE - 0.006:
            centre_r[i] = hi[i] - BLOCK_SIZE / 2 if look_r[i] > 0 else lo[i] + BLOCK_SIZE / 2
    c, s = math.cos(yaw), math.sin(yaw)
    centre_xy = np.array([c * centre_r[0] - s * centre_r[1], s * centre_r[0] + c * centre_r[1]])
    cz = z_top - BLOCK_SIZE / 2
    extent = (float(span[0]), float(span[1]), float(z_top - z.min()))
    return ObjectHypothesis(object_name(color, "block"), "block", color,
                            (float(centre_xy[0]), float(centre_xy[1]), float(cz)), yaw, extent, len(points))


def _bowl(points: np.ndarray, color: str, fused: _Fused) -> tuple[ObjectHypothesis | None, np.ndarray]:
    """A bowl from a wide cluster (rim fitted as a circle), and the points it does not explain."""
    tz = fused.table_z
    # the rim's top face is a symmetric annulus from every camera (walls are not: each camera sees the outer
    # wall on its side and the inner wall on the far side, which would pull the centre towards it)
    rim = points[np.abs(points[:, 2] - (tz + BOWL_HEIGHT)) < 0.0015]
    if len(rim) < 10:
        return None, points
    start = 0.5 * (points[:, :2].min(0) + points[:, :2].max(0))
    centre, rms = _fit_ring(rim[:, :2], start, BOWL_RIM_RADIUS)
    if rms > 0.01:
        return None, points
    r = np.linalg.norm(points[:, :2] - centre, axis=1)
    wall = (np.abs(r - BOWL_RIM_RADIUS) < 0.012) & (points[:, 2] < tz + BOWL_HEIGHT + 0.004)
    floor = (r < BOWL_RIM_RADIUS) & (points[:, 2] < tz + BOWL_FLOOR + 0.006)
    bowl = wall | floor
    rest = points[~bowl & ((r < BOWL_INNER_RADIUS - 0.008) | (r > BOWL_OUTER_RADIUS + 0.01))]
    zs = points[bowl & (r > BOWL_INNER_RADIUS - 0.004), 2]
    rim_z = float(np.percentile(zs, 98)) if len(zs) else tz + BOWL_HEIGHT
    height = min(max(rim_z - tz, 0.0), BOWL_HEIGHT + 0.005)
    hyp = ObjectHypothesis(object_name(color, "bowl"), "bowl", color,
                           (float(centre[0]), float(centre[1]), float(tz + height - BOWL_HEIGHT)), 0.0,
                           (2 * BOWL_OUTER_RADIUS, 2 * BOWL_OUTER_RADIUS, float(height)), int(bowl.sum()))
    return hyp, rest


def _plausible_block(points: np.ndarray, fused: _Fused, held_zone: bool) -> bool:
    """Could these points be one 4 cm cube (not an arm link, not a bowl fragment)?"""
    ext = points.max(0) - points.min(0)
    if np.hypot(ext[0], ext[1]) > 1.6 * BLOCK_SIZE * math.sqrt(2) or ext[2] > 1.5 * BLOCK_SIZE:
        return False
    if held_zone:
        return True
    return float(points[:, 2].max()) < fused.table_z + MAX_STACK_HEIGHT


def _arm_like(points: np.ndarray, fused: _Fused, proprio: Proprio) -> bool:
    """A neutral cluster that is part of the arm: it reaches above any stack, or it sits above the hand's
    fingertips within the wrist's reach (nothing of the scene can be there without touching the hand)."""
    if points[:, 2].max() > fused.table_z + MAX_STACK_HEIGHT + 0.02:
        return True
    ee = np.asarray(proprio.ee_position)
    centre = np.median(points, axis=0)
    return bool(centre[2] > ee[2] + 0.03 and np.linalg.norm(centre[:2] - ee[:2]) < ARM_REACH_AROUND_HAND)


def _objects_of_color(k: int, points: np.ndarray, fused: _Fused, proprio: Proprio,
                      config: PerceptionConfig) -> list[ObjectHypothesis]:
    """The (at most one) bowl and (at most one) block of colour ``k``."""
    color = _COLOR_NAMES[k]
    clusters = _dbscan(points, config)
    out: list[ObjectHypothesis] = []
    if k == _GRAY:  # neutral clusters reaching above any stack, or above the hand, belong to the arm
        clusters = [c for c in clusters
                    if _between_fingers(c, proprio).mean() > 0.5 or not _arm_like(c, fused, proprio)]
    rest: list[np.ndarray] = []
    bowl = None
    for c in clusters:
        ext = c[:, :2].max(0) - c[:, :2].min(0)
        if bowl is None and float(ext.max()) > config.bowl_min_extent:
            bowl, left = _bowl(c, color, fused)
            if bowl is not None:
                out.append(bowl)
                rest.extend(_dbscan(left, config) if len(left) else [])
                continue
        rest.append(c)
    candidates = [c for c in rest if len(c) >= config.min_block_points]
    candidates = [c for c in candidates
                  if _plausible_block(c, fused, _between_fingers(c, proprio).mean() > 0.5)]
    if candidates:
        main = max(candidates, key=len)
        centre = main.mean(0)
        parts = [c for c in candidates if np.linalg.norm(c.mean(0)[:2] - centre[:2]) < 0.05]
        merged = np.concatenate(parts)
        if _plausible_block(merged, fused, True):
            main = merged
        dropped = len(candidates) - len(parts)
        if dropped:
            log.debug("%s: %d extra block-like clusters ignored", color, dropped)
        block = _block(main, color, fused)
        if max(min(block.extent[:2]), block.extent[2]) >= MIN_FACE:
            out.append(block)
        else:
            log.debug("%s: sliver of %d points (extent %s) is no block", color, len(main), block.extent)
    return out


def _settle_stacks(blocks: list[ObjectHypothesis]) -> list[ObjectHypothesis]:
    """A block under another one cannot show its top: put it one block size below the block resting on it."""
    by_z = sorted(blocks, key=lambda h: -h.position[2])
    fixed: dict[str, ObjectHypothesis] = {}
    for h in by_z:
        x, y, z = h.position
        above = [fixed[n] for n in fixed if abs(fixed[n].position[0] - x) < 0.6 * BLOCK_SIZE
                 and abs(fixed[n].position[1] - y) < 0.6 * BLOCK_SIZE
                 and 0.5 * BLOCK_SIZE < fixed[n].position[2] - z < 1.5 * BLOCK_SIZE]
        if above:
            a = min(above, key=lambda o: o.position[2])
            h = ObjectHypothesis(h.name, h.kind, h.color, (x, y, a.position[2] - BLOCK_SIZE), h.yaw, h.extent,
                                 h.n_points)
        fixed[h.name] = h
    return [fixed[h.name] for h in blocks]


class _Seen(NamedTuple):
    """A colour as `PerceptionMemo` last computed it."""

    points: np.ndarray  # raw points (`_Fused.raw`)
    pixels: np.ndarray  # where they come from (`_Fused.pixels`)
    eyes: np.ndarray  # the cameras
    hand: Proprio
    objects: list[ObjectHypothesis]


class PerceptionMemo:
    """What one episode's looks found, per colour, so a look re-clusters only the colours whose points moved
    since (what did not move is not recomputed), and the table height (the table never moves). A colour's
    objects are reused only when exactly the same pixels show it, each point within ``TOLERANCE`` (resting
    objects creep while the arm works), from the same cameras, with the hand within ``TOLERANCE`` (its pose
    decides what is held or arm, unless every point lies more than 3 cm below both fingertips' poses, where
    no hand test looks). A real camera's noise simply recomputes."""

    TOLERANCE = 1e-3  # m (and rad for the hand's yaw): a resting object's creep, far below what a skill moves

    def __init__(self) -> None:
        self.table_z: float | None = None
        self._by_color: dict[int, _Seen] = {}  # each colour when it was last computed
        self.reused = self.computed = 0  # colours taken from the memo / clustered afresh

    def objects(self, k: int, fused: _Fused, proprio: Proprio, config: PerceptionConfig
                ) -> list[ObjectHypothesis]:
        """`_objects_of_color` for colour ``k``, or its last answer when nothing it depends on moved."""
        last, raw, pixels = self._by_color.get(k), fused.raw[k], fused.pixels[k]
        if last is not None and np.array_equal(last.pixels, pixels) and np.array_equal(last.eyes, fused.eyes) \
                and self._hand_irrelevant(last.hand, proprio, raw) \
                and float(np.abs(last.points - raw).max(initial=0.0)) < self.TOLERANCE:
            self.reused += 1
            return last.objects
        self.computed += 1
        hyps = _objects_of_color(k, fused.by_color[k], fused, proprio, config)
        self._by_color[k] = _Seen(raw, pixels, fused.eyes, proprio, hyps)
        return hyps

    def _hand_irrelevant(self, a: Proprio, b: Proprio, points: np.ndarray) -> bool:
        """The hand's change from ``a`` to ``b`` cannot change what ``points`` are: it barely moved, or all
        points lie below where `_between_fingers` and `_arm_like` look (3 cm under the fingertips)."""
        tol = self.TOLERANCE
        if np.allclose(a.ee_position, b.ee_position, rtol=0, atol=tol) and abs(a.ee_yaw - b.ee_yaw) < tol \
                and abs(a.gripper_width - b.gripper_width) < tol:
            return True
        return len(points) > 0 and float(points[:, 2].max()) < min(a.ee_position[2], b.ee_position[2]) - 0.031


def detect_objects(views: Sequence[View], proprio: Proprio, config: PerceptionConfig | None = None,
                   memo: PerceptionMemo | None = None) -> tuple[list[ObjectHypothesis], float]:
    """Object hypotheses seen in ``views`` (no memory of where objects were; ``memo`` only saves
    recomputing what did not change), and the table height used."""
    config = config or PerceptionConfig()
    fused = _fuse(views, proprio, config, table_z=memo.table_z if memo is not None else None)
    hyps: list[ObjectHypothesis] = []
    for k, pts in sorted(fused.by_color.items()):
        hyps.extend(_objects_of_color(k, pts, fused, proprio, config) if memo is None
                    else memo.objects(k, fused, proprio, config))
    if memo is not None:
        memo.table_z = fused.table_z
    blocks = _settle_stacks([h for h in hyps if h.kind == "block"])
    return [h for h in hyps if h.kind == "bowl"] + blocks, fused.table_z


def _hidden(position: Sequence[float], views: Sequence[View], margin: float = 0.03) -> bool:
    """True when no view could see ``position``: in each, something lies in front of it or it is off-image."""
    p = np.asarray(position, dtype=np.float64)
    for v in views:
        seen = v.depth_at(p)
        if seen is not None and seen > np.linalg.norm(p - v.eye) - margin:
            return False
    return True


def perceive(views: Sequence[View], proprio: Proprio, config: PerceptionConfig | None = None,
             previous: SceneState | None = None, memo: PerceptionMemo | None = None) -> SceneState:
    """The scene as the views show it, with the hand from proprioception.

    ``held`` is the block whose points lie between the fingers while the finger gap is within
    ``config.held_gap`` (closed on something). Object permanence, for objects of ``previous`` not seen now:
    a block ``previous`` held is kept while the hand is still closed on something (it moves with the hand);
    any other object is kept at its previous pose only if its previous position is hidden in every view
    (something nearer to each camera, e.g. the arm or a block put on top of it). An object that should be
    visible but is not is dropped: it has gone. ``memo`` (one per episode) skips recomputing colours whose
    points did not change since its last look.
    """
    config = config or PerceptionConfig()
    hyps, _ = detect_objects(views, proprio, config, memo)
    objects = {h.name: h.state() for h in hyps}
    closed = _closed(proprio, config)
    held = _held(hyps, proprio) if closed else None
    if previous is not None:
        for name, obj in previous.objects.items():
            if name in objects:
                continue
            if name == previous.held and closed and held is None:  # it moved with the hand, out of sight
                objects[name] = _carried(obj, previous, proprio)
                held = name
            elif name != previous.held and _hidden(obj.position, views):
                objects[name] = obj
    return _with_hand(objects, proprio, held)


def _closed(proprio: Proprio, config: PerceptionConfig) -> bool:
    """The fingers are closed on something (the gap is within ``config.held_gap``)."""
    lo, hi = config.held_gap
    return lo < proprio.gripper_width < hi


def _held(hyps: Sequence[ObjectHypothesis], proprio: Proprio) -> str | None:
    """The block whose centre lies between the fingers (the nearest to the hand if several)."""
    inside = [h for h in hyps if h.kind == "block" and _between_fingers(np.asarray([h.position]), proprio)[0]]
    ee = np.asarray(proprio.ee_position)
    return min(inside, key=lambda h: float(np.linalg.norm(np.asarray(h.position) - ee))).name if inside else None


def _carried(obj: ObjectState, previous: SceneState, proprio: Proprio) -> ObjectState:
    """Where a held object is now: the same offset in the hand frame as in ``previous``."""
    d = np.asarray(obj.position) - np.asarray(previous.ee_position)
    turn = proprio.ee_yaw - previous.ee_yaw
    c, s = math.cos(turn), math.sin(turn)
    d = np.array([c * d[0] - s * d[1], s * d[0] + c * d[1], d[2]])
    pos = tuple(float(v) for v in np.asarray(proprio.ee_position) + d)
    return ObjectState(obj.name, obj.kind, obj.color, pos, obj.yaw + turn)  # type: ignore[arg-type]


def _with_hand(objects: dict[str, ObjectState], proprio: Proprio, held: str | None) -> SceneState:
    ee = tuple(float(v) for v in proprio.ee_position)
    return SceneState(objects=objects, ee_position=ee,  # type: ignore[arg-type]
                      ee_yaw=float(proprio.ee_yaw), gripper_width=float(proprio.gripper_width), held=held)


def carry(previous: SceneState, proprio: Proprio, config: PerceptionConfig | None = None) -> SceneState:
    """The scene predicted from the last look and the joint sensors alone (no images): the hand where the
    sensors say, a held block moved with it while the fingers stay closed on something, all else in place.
    What skills see between looks; the fingers opening wide (a slip) ends the hold where it was last seen."""
    config = config or PerceptionConfig()
    objects = dict(previous.objects)
    held = previous.held if previous.held in objects and _closed(proprio, config) else None
    if held is not None:
        objects[held] = _carried(objects[held], previous, proprio)
    return _with_hand(objects, proprio, held)


HAND_LOOK = (0.07, 0.06)  # half-width (m) of the box a hand look crops around the fingertips, and its depth below


def perceive_hand(views: Sequence[View], proprio: Proprio, previous: SceneState,
                  config: PerceptionConfig | None = None) -> SceneState:
    """A look at the hand only (a grasp check): the views cropped to a box around the fingertips, where the
    held block is measured afresh (its offset between the fingers is what placing corrects for); every
    other object is carried over from ``previous``. Much cheaper than `perceive`: the crop holds a few
    hundred points, not the table."""
    config = config or PerceptionConfig()
    ee = np.asarray(proprio.ee_position)
    half, below = HAND_LOOK
    box = (ee - np.array([half, half, below]), ee + np.array([half, half, 0.03]))
    fused = _fuse(views, proprio, config, box=box, table_z=config.table_z)  # the crop holds no table
    hyps = [h for k, pts in sorted(fused.by_color.items())
            for h in _objects_of_color(k, pts, fused, proprio, config) if h.kind == "block"]
    held = _held(hyps, proprio) if _closed(proprio, config) else None
    objects = dict(previous.objects)
    if held is not None:
        objects[held] = next(h for h in hyps if h.name == held).state()
    return _with_hand(objects, proprio, held)


def hand_from_proprio(proprio: np.ndarray) -> Proprio:
    """The hand's pose and finger gap from the joint sensors' vector (`embodied.world.observation` layout)."""
    x, y, z, w = (float(v) for v in proprio_field(proprio, "ee_quaternion"))
    yaw = math.atan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z))  # rotation matrix R[1,0] / R[0,0]
    ee = tuple(float(v) for v in proprio_field(proprio, "ee_position"))
    return Proprio(ee, yaw, float(proprio_field(proprio, "finger_gap")[0]))  # type: ignore[arg-type]


def perceive_robot(robot: Robot, cameras: Cameras, config: PerceptionConfig | None = None,
                   previous: SceneState | None = None, timing: dict[str, float] | None = None,
                   memo: PerceptionMemo | None = None) -> SceneState:
    """Perceive through a robot's cameras and joint sensors (a simulator or a real arm alike); ``timing``
    accumulates the seconds spent getting frames ("render") and perceiving them ("perception")."""
    config = config or PerceptionConfig()
    return _look(robot, cameras, config, timing,
                 lambda views, hand: perceive(views, hand, config, previous, memo))


def look_at_hand(robot: Robot, cameras: Cameras, previous: SceneState, config: PerceptionConfig | None = None,
                 timing: dict[str, float] | None = None) -> SceneState:
    """`perceive_hand` through a robot's cameras and joint sensors."""
    config = config or PerceptionConfig()
    return _look(robot, cameras, config, timing, lambda views, hand: perceive_hand(views, hand, previous, config))


def _look(robot: Robot, cameras: Cameras, config: PerceptionConfig, timing: dict[str, float] | None,
          see: Callable[[Sequence[View], Proprio], SceneState]) -> SceneState:
    """Get the frames and the joint sensors, run ``see`` on them, and add both durations and one look to
    ``timing``."""
    t0 = time.perf_counter()
    views = cameras.views(config.image_size)
    t1 = time.perf_counter()
    state = see(views, hand_from_proprio(robot.proprio()))
    if timing is not None:
        for key, dt in (("render", t1 - t0), ("perception", time.perf_counter() - t1)):
            timing[key] = timing.get(key, 0.0) + dt
        timing["looks"] = timing.get("looks", 0) + 1
    return state
