"""Gymnasium environments for language-driven manipulation; importing this package registers them."""

from gymnasium.envs.registration import register

ENVS: list[dict] = [
    {"id": "embodied/Tabletop-v0", "entry_point": "envs.tabletop:TabletopEnv", "max_episode_steps": 200},
    {"id": "embodied/Crafter-v0", "entry_point": "envs.crafter:CrafterEnv", "max_episode_steps": 10_000},
]

for _spec in ENVS:
    register(**_spec)
