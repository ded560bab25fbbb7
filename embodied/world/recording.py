"""What a recorded episode holds, independent of where it came from (the simulator's `envs.record`) and of
the file format it goes to (`embodied.runtime.recording`): frames sampled at a fixed rate of simulated
time, the low-level commands, the skill calls with their results, the instruction and the outcome."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embodied.world.errors import EmbodiedError
from embodied.world.observation import PROPRIO_FIELDS

STATE_NAMES: tuple[str, ...] = tuple(f"{name}.{i}" for name, width in PROPRIO_FIELDS for i in range(width))
RECORD_FPS = (1, 2, 3, 5, 6, 10, 15, 30)  # rates whose frame period is a whole number of 1/240 s physics steps


def check_fps(fps: Any) -> int:
    """A recording rate the simulator can sample exactly (frames stay evenly spaced in simulated time)."""
    if isinstance(fps, bool) or not isinstance(fps, int) or fps not in RECORD_FPS:
        raise EmbodiedError(f"--fps must be one of {', '.join(map(str, RECORD_FPS))} (frames per simulated "
                            f"second), got {fps!r}")
    return fps


@dataclass(frozen=True)
class CameraInfo:
    """A pinhole camera: image size, focal lengths and centre in pixels, and its pose in the world frame
    (position, quaternion x, y, z, w of the optical frame: z forward, x right, y down)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float, position: tuple[float, float, float],
                 quaternion: tuple[float, float, float, float]) -> CameraInfo:
        """From a vertical field of view (OpenGL's convention)."""
        f = 0.5 * height / math.tan(math.radians(fov_deg) / 2)
        return cls(width, height, f, f, width / 2, height / 2, position, quaternion)


@dataclass
class EpisodeFrames:
    """One episode at ``fps`` frames per simulated second; frame ``i`` is at ``i / fps`` s.

    ``images[camera]`` (N, H, W, 3) uint8; ``depth[camera]`` (N, H, W) float32 metres; ``state`` (N, D) the
    proprioception (`STATE_NAMES`); ``action`` (N, A) what the controller tracked (``action_names``);
    ``object_poses`` (N, K, 7) every object's position and quaternion (``objects``). ``commands`` are the
    Robot API calls the skills made, ``calls`` the skill calls with their results and frame spans;
    ``sim_states`` the simulator's whole state after each skill call (`embodied replay` restores them)."""

    fps: int
    images: dict[str, np.ndarray]
    depth: dict[str, np.ndarray]
    cameras: dict[str, CameraInfo]
    state: np.ndarray
    action: np.ndarray
    action_names: tuple[str, ...]
    objects: tuple[str, ...]
    object_poses: np.ndarray
    joint_names: tuple[str, ...]
    commands: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    sim_states: list[bytes] = field(default_factory=list)  # the whole simulation after each skill call
    state_poses: list[dict[str, list[float]]] = field(default_factory=list)  # every object's pose then
    task: dict[str, Any] = field(default_factory=dict)  # the task (`Task.to_dict`), to rebuild the world
    image_size: int = 128
    task_id: str = ""
    instruction: str = ""
    success: bool = False
    outcome: str = ""
    reason: str = ""

    def __len__(self) -> int:
        return int(self.state.shape[0])

    @property
    def timestamps(self) -> np.ndarray:
        return np.arange(len(self), dtype=np.float64) / self.fps

    def check(self) -> None:
        """Every per-frame array has one row per frame."""
        n = len(self)
        arrays = {"action": self.action, "object_poses": self.object_poses,
                  **{f"images.{k}": v for k, v in self.images.items()},
                  **{f"depth.{k}": v for k, v in self.depth.items()}}
        wrong = {k: v.shape[0] for k, v in arrays.items() if v.shape[0] != n}
        if wrong or n == 0:
            raise EmbodiedError(f"episode {self.task_id}: {n} state rows but {wrong or 'no frames'}")
