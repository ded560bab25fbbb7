"""Shared fixtures: small environments and hand-made tasks."""

from __future__ import annotations

import os

import pytest

import envs  # noqa: F401  (registers the environments)
from embodied.world.tasks import SceneSpec, Task
from envs.tabletop import TabletopEnv


@pytest.fixture(autouse=True)
def _no_user_library(tmp_path, monkeypatch):
    """Planners retrieve from the default skill library: point it at an empty folder, never the user's."""
    monkeypatch.setenv("EMBODIED_LIBRARY", os.fspath(tmp_path / "no-library" / "skills.db"))


def make_task(blocks: list[str], bowls: list[str], goal: list, seed: int = 0, tid: str = "t") -> Task:
    return Task(id=tid, instruction="test", scene=SceneSpec(blocks=blocks, bowls=bowls), goal=goal, seed=seed,
                max_steps=8)


@pytest.fixture
def env():
    e = TabletopEnv(image_size=(32, 32))
    yield e
    e.close()
