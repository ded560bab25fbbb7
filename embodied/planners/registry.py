"""Planner registry keyed by a `type` name: `--planner NAME` picks one."""

from __future__ import annotations

import importlib
from typing import Any

from embodied.world.errors import EmbodiedError
from embodied.world.scene import suggest

PLANNERS: dict[str, str] = {
    "oracle": "embodied.planners.oracle:OracleAgent",
    "saycan": "embodied.planners.saycan:SayCanPlanner",
    "palme": "embodied.planners.palme:PalmEPlanner",
}


def make_planner(name: str, **kwargs: Any) -> Any:
    """Build the planner registered as ``name`` (a clear error with a hint otherwise)."""
    if name not in PLANNERS:
        raise EmbodiedError(f"unknown planner {name!r}{suggest(name, list(PLANNERS))}; "
                            f"planners: {', '.join(PLANNERS)}")
    module, cls = PLANNERS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
