"""Names, colours, locations and the scene state that planners, skills and checkers share."""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from embodied.world.errors import UnknownObjectError

# Named colours (RGBA). Every block and bowl is "<colour> block" / "<colour> bowl".
COLORS: dict[str, tuple[float, float, float, float]] = {
    "blue": (0.12, 0.35, 0.85, 1.0),
    "red": (0.85, 0.12, 0.12, 1.0),
    "green": (0.15, 0.70, 0.20, 1.0),
    "orange": (1.00, 0.55, 0.05, 1.0),
    "yellow": (0.95, 0.90, 0.10, 1.0),
    "purple": (0.50, 0.15, 0.70, 1.0),
    "pink": (1.00, 0.45, 0.70, 1.0),
    "cyan": (0.10, 0.85, 0.90, 1.0),
    "brown": (0.50, 0.30, 0.12, 1.0),
    "gray": (0.50, 0.50, 0.50, 1.0),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
KINDS: tuple[str, ...] = ("block", "bowl")

MAX_BLOCKS = 6
MAX_BOWLS = 4

# Table geometry (world frame, metres). The robot base stands at the origin on the table top; the
# workspace is the rectangle in front of it. "top" is far from the robot (+x), "left" is +y as seen by
# the robot's camera, which looks at the table from behind the robot.
TABLE_Z = 0.625
WORKSPACE_X = (0.25, 0.70)
WORKSPACE_Y = (-0.32, 0.32)
BLOCK_SIZE = 0.04
BOWL_INNER_RADIUS = 0.08
BOWL_OUTER_RADIUS = 0.09
BOWL_HEIGHT = 0.035
BOWL_FLOOR = 0.006  # thickness of a bowl's base disk (sim_assets/bowl.urdf)

LOCATIONS: dict[str, tuple[float, float]] = {
    "top left corner": (WORKSPACE_X[1] - 0.05, WORKSPACE_Y[1] - 0.05),
    "top right corner": (WORKSPACE_X[1] - 0.05, WORKSPACE_Y[0] + 0.05),
    "middle": (0.5 * sum(WORKSPACE_X), 0.5 * sum(WORKSPACE_Y)),
    "bottom left corner": (WORKSPACE_X[0] + 0.05, WORKSPACE_Y[1] - 0.05),
    "bottom right corner": (WORKSPACE_X[0] + 0.05, WORKSPACE_Y[0] + 0.05),
}
LOCATION_NAMES: tuple[str, ...] = tuple(LOCATIONS)


REACH = (0.15, 0.80)  # horizontal distance from the robot's base axis that the gripper can work at


def in_reach(xy: Sequence[float] | np.ndarray) -> bool:
    """Inside the arm's horizontal reach and over the table's workspace (with an 8 cm margin)."""
    x, y = float(xy[0]), float(xy[1])
    return (REACH[0] < math.hypot(x, y) < REACH[1] and WORKSPACE_X[0] - 0.08 <= x <= WORKSPACE_X[1] + 0.08
            and WORKSPACE_Y[0] - 0.08 <= y <= WORKSPACE_Y[1] + 0.08)


def object_name(color: str, kind: str) -> str:
    """The canonical name of an object, e.g. ``"red block"``."""
    return f"{color} {kind}"


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """A " (did you mean 'x'?)" hint, or an empty string when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_object_name(name: str) -> tuple[str, str]:
    """Split ``"red block"`` into ``("red", "block")``; raise ``UnknownObjectError`` with a hint."""
    if not isinstance(name, str):
        raise UnknownObjectError(f"object name must be a string like 'red block', got {name!r}")
    parts = name.strip().lower().split()
    if len(parts) != 2:
        raise UnknownObjectError(f"object name must be '<colour> block' or '<colour> bowl', got {name!r}")
    color, kind = parts
    if color not in COLORS:
        raise UnknownObjectError(f"unknown colour {color!r} in {name!r}{suggest(color, COLOR_NAMES)}; "
                                 f"known colours: {', '.join(COLOR_NAMES)}")
    if kind not in KINDS:
        raise UnknownObjectError(f"unknown object kind {kind!r} in {name!r}{suggest(kind, KINDS)}; "
                                 "objects are blocks or bowls")
    return color, kind


@dataclass(frozen=True)
class ObjectState:
    """One object as the agent knows it: identity plus pose (world frame, metres)."""

    name: str
    kind: Literal["block", "bowl"]
    color: str
    position: tuple[float, float, float]
    yaw: float = 0.0

    @property
    def xy(self) -> np.ndarray:
        return np.asarray(self.position[:2], dtype=np.float64)


@dataclass
class SceneState:
    """What the planner and skills see: objects by name, and the gripper."""

    objects: dict[str, ObjectState] = field(default_factory=dict)
    ee_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ee_yaw: float = 0.0  # rotation of the downward-pointing gripper about the vertical (radians)
    gripper_width: float = 0.08
    held: str | None = None

    @property
    def blocks(self) -> list[str]:
        return [n for n, o in self.objects.items() if o.kind == "block"]

    @property
    def bowls(self) -> list[str]:
        return [n for n, o in self.objects.items() if o.kind == "bowl"]

    def get(self, name: str) -> ObjectState:
        """The object called ``name``; a clear error (with a hint) when it is not in the scene."""
        if name not in self.objects:
            raise UnknownObjectError(f"no {name!r} in the scene{suggest(name, list(self.objects))}; "
                                     f"present: {', '.join(self.objects) or 'nothing'}")
        return self.objects[name]

    def to_dict(self) -> dict:
        return {
            "objects": {n: {"kind": o.kind, "color": o.color, "position": [round(v, 4) for v in o.position],
                            "yaw": round(o.yaw, 4)} for n, o in self.objects.items()},
            "ee_position": [round(v, 4) for v in self.ee_position],
            "ee_yaw": round(self.ee_yaw, 4),
            "gripper_width": round(self.gripper_width, 4),
            "held": self.held,
        }
