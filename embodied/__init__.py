"""embodied: language-driven robot agents. `from embodied import Agent` is the Python API (loaded lazily, so
importing a submodule such as `embodied.world` stays light)."""

from __future__ import annotations

from typing import Any

__all__ = ["Agent", "AgentConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from embodied.runtime import agent

        return getattr(agent, name)
    raise AttributeError(f"module 'embodied' has no attribute {name!r}")
