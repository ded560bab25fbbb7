"""Planner registry keyed by a `type` name: `--planner NAME` picks one. One line per planner; the class
names its config dataclass (`config_class`), from which the CLI builds that planner's flags."""

from __future__ import annotations

import importlib
from typing import Any

from embodied.world.errors import EmbodiedError
from embodied.world.scene import suggest

PLANNERS: dict[str, str] = {
    "saycan": "embodied.planners.saycan:SayCanPlanner",
    "palme": "embodied.planners.palme:PalmEPlanner",
    "oracle": "embodied.planners.oracle:OracleAgent",
    "goal": "embodied.planners.goal:GoalPlanner",
    "code": "embodied.planners.code:CodePlanner",
}


def planner_class(name: str) -> type:
    """The class registered as ``name`` (a clear error with a hint otherwise)."""
    if name not in PLANNERS:
        raise EmbodiedError(f"unknown planner {name!r}{suggest(name, list(PLANNERS))}; "
                            f"planners: {', '.join(PLANNERS)}")
    module, cls = PLANNERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def config_class(name: str) -> type | None:
    """The config dataclass of the planner registered as ``name`` (None: it takes no options)."""
    return getattr(planner_class(name), "config_class", None)


def make_planner(name: str, config: Any = None, **deps: Any) -> Any:
    """Build the planner registered as ``name`` from its config (default: the config's defaults) and its
    dependencies (``lm``, ``affordances``, ...)."""
    return planner_class(name)(config, **deps)
