"""Simulation assets: our own URDFs, and pybullet_data's for what it already ships (Panda, table)."""

from __future__ import annotations

from pathlib import Path

import pybullet_data

ASSETS = Path(__file__).resolve().parent


def asset_path(name: str) -> str:
    """Absolute path of an asset: ours first (``bowl.urdf``, ``block.urdf``), then pybullet_data's."""
    ours = ASSETS / name
    if ours.exists():
        return str(ours)
    theirs = Path(pybullet_data.getDataPath()) / name
    if theirs.exists():
        return str(theirs)
    raise FileNotFoundError(f"asset {name!r} is neither in {ASSETS} nor in pybullet_data")
