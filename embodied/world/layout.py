"""Where a task's objects start: the layout the environment samples from the task's seed, computable without
the simulator (goal readers resolve "the block closest to the blue bowl" with it, generators check that a
spatial goal fits, planning success replays plans from it)."""

from __future__ import annotations

import numpy as np

from embodied.world.scene import BOWL_OUTER_RADIUS, LOCATIONS, WORKSPACE_X, WORKSPACE_Y
from embodied.world.tasks import SceneSpec


def sample_layout(rng: np.random.Generator, n_blocks: int, n_bowls: int, restarts: int = 50, tries: int = 200
                  ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]] | None:
    """Non-overlapping xy positions for bowls then blocks, away from the named locations; None if none fit.

    Rejection sampling, restarted from scratch when one object finds no room (so an early unlucky bowl
    cannot block the rest)."""
    locs = [np.asarray(v) for v in LOCATIONS.values()]
    for _ in range(restarts):
        placed: list[tuple[np.ndarray, float]] = []
        out: dict[str, list[tuple[float, float]]] = {"bowl": [], "block": []}
        for kind, n, radius in (("bowl", n_bowls, BOWL_OUTER_RADIUS), ("block", n_blocks, 0.03)):
            for _ in range(n):
                for _ in range(tries):
                    xy = np.array([rng.uniform(WORKSPACE_X[0] + radius, WORKSPACE_X[1] - radius),
                                   rng.uniform(WORKSPACE_Y[0] + radius, WORKSPACE_Y[1] - radius)])
                    if all(np.linalg.norm(xy - q) > radius + r + 0.015 for q, r in placed) and all(
                            np.linalg.norm(xy - q) > radius + 0.035 for q in locs):
                        placed.append((xy, radius))
                        out[kind].append((float(xy[0]), float(xy[1])))
                        break
                else:
                    break
        if len(out["bowl"]) == n_bowls and len(out["block"]) == n_blocks:
            return out["block"], out["bowl"]
    return None


def episode_rng(seed: int) -> np.random.Generator:
    """The generator ``gymnasium.Env.reset(seed=seed)`` makes (``gymnasium.utils.seeding.np_random``)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))


def initial_positions(scene: SceneSpec, seed: int) -> dict[str, tuple[float, float]] | None:
    """Object name -> table (x, y) where the environment lays ``scene`` out for ``seed`` (before physics
    settles it, which moves objects a millimetre at most); None when the objects do not fit."""
    layout = sample_layout(episode_rng(seed), len(scene.blocks), len(scene.bowls))
    if layout is None:
        return None
    block_xy, bowl_xy = layout
    return {**{f"{c} block": xy for c, xy in zip(scene.blocks, block_xy, strict=True)},
            **{f"{c} bowl": xy for c, xy in zip(scene.bowls, bowl_xy, strict=True)}}
