"""Shared fixtures: small environments and hand-made tasks."""

from __future__ import annotations

import pytest

import envs  # noqa: F401  (registers the environments)
from envs.tabletop import TabletopEnv
from envs.tasks import SceneSpec, Task


def make_task(blocks: list[str], bowls: list[str], goal: list, seed: int = 0, tid: str = "t") -> Task:
    return Task(id=tid, instruction="test", scene=SceneSpec(blocks=blocks, bowls=bowls), goal=goal, seed=seed,
                max_steps=8)


@pytest.fixture
def env():
    e = TabletopEnv(image_size=(32, 32))
    yield e
    e.close()
