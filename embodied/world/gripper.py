"""The hand's geometry and motion constants, and the clearance test that keeps it off neighbours.

Skills move with these numbers; perception, grounding models and their trainers read the same ones, so the
vocabulary is their one home (nothing here imports the project outside ``embodied.world``).
"""

from __future__ import annotations

import math

import numpy as np

from embodied.world.scene import BLOCK_SIZE, BOWL_HEIGHT, BOWL_INNER_RADIUS, SceneState

APPROACH = 0.08  # metres above the grasp/release pose before descending
FAST, SLOW = 0.6, 0.15  # m/s for free motion and for the last centimetres
GRASP_MIN_GAP = 0.025  # a closed gripper with a smaller gap has nothing between its fingers
PICK_GAP, RELEASE_GAP = 0.07, 0.06  # finger gaps when approaching a cube and when letting go of one

# The hand as boxes in its own frame (a: along the finger axis, b: across it, z: above the fingertip
# centre), used to keep neighbours out of its way: (a_min, a_max, b_half, z_bottom).
FINGER_THICKNESS = 0.02
HAND_BOX = (-0.105, 0.105, 0.035, 0.034)
MIN_ROOM = -0.004  # clearance below which the hand would hit a neighbour (metres)


def grasp_yaw(yaw: float) -> float:
    """The gripper yaw closest to zero that aligns the fingers with a cube's faces."""
    return (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4


def hand_clearance(state: SceneState, xy: np.ndarray, z: float, yaw: float, gap: float,
                   ignore: tuple[str, ...]) -> float:
    """Smallest gap (metres, negative = collision) between the hand, lowered to height ``z`` at ``xy`` with
    ``yaw`` and its fingers ``gap`` apart, and any object tall enough to reach it: blocks as discs, bowls as
    their walls."""
    axis = np.array([math.sin(yaw), -math.cos(yaw)])
    across = np.array([math.cos(yaw), math.sin(yaw)])
    samples: list[tuple[np.ndarray, float]] = []  # (xy point on a box, bottom height of that box)
    finger_box = (gap / 2, gap / 2 + FINGER_THICKNESS, 0.012, -0.012)
    for a_lo, a_hi, b_half, z_bottom in (finger_box, HAND_BOX):
        for side in ((1.0, -1.0) if a_lo > 0 else (1.0,)):
            for a in np.linspace(a_lo, a_hi, 9):
                for b in np.linspace(-b_half, b_half, 3):
                    samples.append((xy + side * a * axis + b * across, z + z_bottom))
    worst = 1.0
    for name, o in state.objects.items():
        if name in ignore:
            continue
        top = o.position[2] + (BLOCK_SIZE / 2 if o.kind == "block" else BOWL_HEIGHT)
        for point, bottom in samples:
            if top <= bottom:
                continue
            d = float(np.linalg.norm(point - o.xy))
            gap = d - 0.5 * BLOCK_SIZE * math.sqrt(2) if o.kind == "block" else abs(d - BOWL_INNER_RADIUS - 0.005) - 0.005
            worst = min(worst, gap)
    return worst


def clear_yaw(state: SceneState, xy: np.ndarray, z: float, yaw: float, gap: float, ignore: tuple[str, ...]
              ) -> tuple[float, float]:
    """Of ``yaw`` and ``yaw + 90 deg`` (both align with a cube), the one that keeps the hand farthest from
    other objects, so it does not knock neighbours over; returns (yaw, clearance)."""
    turned = (yaw + math.pi) % math.pi - math.pi / 2  # yaw + 90 deg, wrapped to [-90, 90) (the hand is symmetric)
    options = [(hand_clearance(state, xy, z, y, gap, ignore), -abs(y), y) for y in (yaw, turned)]
    best = max(options)
    return best[2], best[0]
