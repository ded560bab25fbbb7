"""`embodied/Crafter-v0`: the Crafter open world (Hafner 2021; `crafter` from the package index) behind the
Gymnasium API, seeded and deterministic, with an observation a language model can read.

Crafter itself is not deterministic under a fixed seed: its world keeps each chunk's creatures in a Python
``set``, whose order follows memory addresses, and the spawn/despawn balance picks from that order. The
wrapper swaps those sets for insertion-ordered ones before the world is generated (tested: the same seed and
actions give the same frames, in one process and across processes).

`CrafterBody` is this world's robot-like seam: primitives over the game (move to the nearest thing it has
seen, interact, place, make, sleep, explore) that skills and planners use instead of raw key presses, with a
map of what the agent has seen (the 9x7 local view), never the hidden world."""

from __future__ import annotations

import collections
import heapq
import string
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ACTIONS = ("noop", "move_left", "move_right", "move_up", "move_down", "do", "sleep", "place_stone", "place_table",
           "place_furnace", "place_plant", "make_wood_pickaxe", "make_stone_pickaxe", "make_iron_pickaxe",
           "make_wood_sword", "make_stone_sword", "make_iron_sword")
MOVES = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
ACHIEVEMENTS = ("collect_coal", "collect_diamond", "collect_drink", "collect_iron", "collect_sapling",
                "collect_stone", "collect_wood", "defeat_skeleton", "defeat_zombie", "eat_cow", "eat_plant",
                "make_iron_pickaxe", "make_iron_sword", "make_stone_pickaxe", "make_stone_sword",
                "make_wood_pickaxe", "make_wood_sword", "place_furnace", "place_plant", "place_stone",
                "place_table", "wake_up")
VIEW = (9, 7)  # the local view the agent sees (columns, rows), centred on the player
THINGS = ("tree", "water", "stone", "coal", "iron", "diamond", "table", "furnace", "lava", "sand", "cow", "zombie",
          "skeleton", "plant")  # what the description and `CrafterBody.move_to` name
WALKABLE = ("grass", "sand", "path")
DIG_COST = 3  # steps a stone tile costs on a path: turn, mine, walk
TEXT_CHARSET = string.ascii_letters + string.digits + " .,:;()-_/%\n"


class _OrderedSet(dict):
    """A set that iterates in insertion order (a dict of keys), for crafter's chunk bookkeeping."""

    def add(self, item: Any) -> None:
        self[item] = None

    def remove(self, item: Any) -> None:
        del self[item]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self.keys()))


class CrafterEnv(gym.Env):
    """Crafter with a seeded, deterministic reset. Observation: ``image`` (64x64 RGB, crafter's own render)
    and ``text`` (`describe`: the local view with exact directions and step counts, inventory, vitals).
    Actions: crafter's 17 (`ACTIONS`). ``info["achievements"]``: unlock counts of the 22 achievements.
    Episodes end when the player dies (terminated) or after ``length`` steps (truncated)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, size: int = 64, length: int = 10_000, render_mode: str | None = None) -> None:
        import crafter

        self._env = crafter.Env(area=(64, 64), view=(9, 9), size=(size, size), length=length, reward=True, seed=0)
        world = self._env._world
        plain_reset = world.reset

        def ordered_reset(seed: int | None = None) -> None:
            plain_reset(seed)
            world._chunks = collections.defaultdict(_OrderedSet)

        world.reset = ordered_reset
        self.render_mode, self.length = render_mode, length
        self.action_space = spaces.Discrete(len(ACTIONS))
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (size, size, 3), np.uint8),
            "text": spaces.Text(max_length=4000, min_length=0, charset=TEXT_CHARSET),
        })
        self.steps = 0

    @property
    def player(self) -> Any:
        return self._env._player

    @property
    def world(self) -> Any:
        return self._env._world

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self._env._seed = int(self.np_random.integers(2**31 - 1)) if seed is None else int(seed)
        self._env._episode = 0  # crafter seeds the world from (seed, episode): the same every reset
        image = self._env.reset()
        self.steps = 0
        return {"image": image, "text": describe(self)}, self._info(0.0)

    def step(self, action: int) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action must be 0..{len(ACTIONS) - 1}, got {action!r}")
        image, reward, done, info = self._env.step(int(action))
        self.steps += 1
        dead = self.player.health <= 0
        return ({"image": image, "text": describe(self)}, float(reward), dead, bool(done and not dead),
                self._info(float(reward), info))

    def _info(self, reward: float, raw: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"achievements": dict(self.player.achievements), "inventory": dict(self.player.inventory),
                "player_pos": tuple(int(v) for v in self.player.pos), "reward": reward, "steps": self.steps}

    def render(self) -> np.ndarray | None:
        return self._env.render() if self.render_mode == "rgb_array" else None

    # ------------------------------------------------------------------ reading the game
    def view_bounds(self) -> tuple[int, int, int, int]:
        """xmin, xmax, ymin, ymax (exclusive) of the local view around the player."""
        x, y = (int(v) for v in self.player.pos)
        return x - VIEW[0] // 2, x + VIEW[0] // 2 + 1, y - VIEW[1] // 2, y + VIEW[1] // 2 + 1

    def tile(self, pos: tuple[int, int]) -> tuple[str | None, str | None]:
        """(material, object kind) at ``pos``; (None, None) outside the world."""
        material, obj = self.world[np.asarray(pos)]
        return material, (type(obj).__name__.lower() if obj is not None else None)

    def visible(self) -> Iterator[tuple[tuple[int, int], str]]:
        """Every (position, thing) in the local view: materials of `THINGS` and creatures and plants."""
        xmin, xmax, ymin, ymax = self.view_bounds()
        for x in range(xmin, xmax):
            for y in range(ymin, ymax):
                material, kind = self.tile((x, y))
                if kind in THINGS:
                    yield (x, y), kind
                if material in THINGS:
                    yield (x, y), material


def direction_text(dx: int, dy: int) -> str:
    """Steps to take, in the move actions' words: "2 right, 1 up"."""
    parts = []
    if dx:
        parts.append(f"{abs(dx)} {'right' if dx > 0 else 'left'}")
    if dy:
        parts.append(f"{abs(dy)} {'down' if dy > 0 else 'up'}")
    return ", ".join(parts) or "here"


def describe(env: CrafterEnv) -> str:
    """What the player sees and has, in words: the nearest of each kind of thing in view (exact steps in
    the move actions' directions), what it faces, inventory, vitals and whether it is night."""
    p = env.player
    x, y = (int(v) for v in p.pos)
    nearest: dict[str, tuple[int, int, int]] = {}
    counts: collections.Counter[str] = collections.Counter()
    for (tx, ty), thing in env.visible():
        counts[thing] += 1
        d = abs(tx - x) + abs(ty - y)
        if thing not in nearest or d < nearest[thing][0]:
            nearest[thing] = (d, tx - x, ty - y)
    fx, fy = (int(v) for v in p.facing)
    material, kind = env.tile((x + fx, y + fy))
    facing = {v: k for k, v in MOVES.items()}[(fx, fy)]
    lines = [f"You face {facing}, at {kind or material or 'the edge of the world'}."]
    if nearest:
        seen = [f"{thing} {direction_text(dx, dy)}" + (f" ({counts[thing]} in view)" if counts[thing] > 1 else "")
                for thing, (_, dx, dy) in sorted(nearest.items(), key=lambda kv: kv[1][0])]
        lines.append("Nearest in view: " + "; ".join(seen) + ".")
    else:
        lines.append("Nothing but grass in view.")
    inv = {k: v for k, v in p.inventory.items() if k not in ("health", "food", "drink", "energy") and v}
    lines.append("Inventory: " + (", ".join(f"{k} {v}" for k, v in inv.items()) if inv else "empty") + ".")
    lines.append("Health {health}, food {food}, drink {drink}, energy {energy} (of 9).".format(**p.inventory))
    if p.sleeping:
        lines.append("You are asleep.")
    if env.world.daylight < 0.3:
        lines.append("It is night.")
    return "\n".join(lines)


class CrafterBody:
    """The world's primitives for skills and planners, each a few game steps: `move_to` the nearest seen
    thing (cheapest path over seen walkable tiles; with a wood pickaxe and ``dig``, also through stone, which
    it mines out of the way, as iron in caves needs), `interact` with what is faced, `place`, `make`,
    `sleep`, `explore` towards unseen ground. Each returns None when it worked, else the reason. The map
    holds only what the local view has shown."""

    def __init__(self, env: CrafterEnv, max_steps: int = 200, dig: bool = True) -> None:
        self.env, self.max_steps, self.dig = env, max_steps, dig
        self.seen: dict[tuple[int, int], tuple[str | None, str | None]] = {}
        self.done = False
        self.actions: list[int] = []  # every game action taken through the body, for `replay`
        self.look()

    # ------------------------------------------------------------------ state
    @property
    def pos(self) -> tuple[int, int]:
        return tuple(int(v) for v in self.env.player.pos)  # type: ignore[return-value]

    @property
    def inventory(self) -> dict[str, int]:
        return dict(self.env.player.inventory)

    @property
    def achievements(self) -> dict[str, int]:
        return dict(self.env.player.achievements)

    def look(self) -> None:
        """Remember every tile of the local view (creatures only where they are now)."""
        xmin, xmax, ymin, ymax = self.env.view_bounds()
        for x in range(xmin, xmax):
            for y in range(ymin, ymax):
                material, kind = self.env.tile((x, y))
                if material is not None:
                    self.seen[(x, y)] = (material, kind if kind == "plant" or kind is None else kind)

    def act(self, action: str) -> None:
        """One game step; the map is updated from the new view; a zombie next to the player is fought off
        first (a reflex below any skill: walking on while it hits kills the player in a few steps)."""
        if self.done:
            return
        self._step(action)
        self.defend()

    def _step(self, action: str) -> None:
        self.actions.append(ACTIONS.index(action))
        _, _, terminated, truncated, _ = self.env.step(self.actions[-1])
        self.done = terminated or truncated
        self.look()

    def replay(self, actions: list[int]) -> None:
        """Take ``actions`` again (the world is deterministic: this restores a game and the body's map)."""
        for a in actions:
            self._step(ACTIONS[a])

    def defend(self, max_hits: int = 10) -> None:
        """Face an adjacent zombie and hit it until it is gone."""
        for _ in range(max_hits):
            x, y = self.pos
            adjacent = [(dx, dy) for dx, dy in MOVES.values() if self.env.tile((x + dx, y + dy))[1] == "zombie"]
            if not adjacent or self.done:
                return
            dx, dy = adjacent[0]
            if tuple(int(v) for v in self.env.player.facing) != (dx, dy):
                self._step("move_" + {v: k for k, v in MOVES.items()}[(dx, dy)])  # turns: the tile is taken
            self._step("do")

    # ------------------------------------------------------------------ moving
    def _free(self, pos: tuple[int, int]) -> bool:
        material, kind = self.seen.get(pos, (None, None))
        return material in WALKABLE and kind is None

    def _cost(self, pos: tuple[int, int]) -> int | None:
        """Steps to enter ``pos``: 1 over free ground; `DIG_COST` through stone once the body holds a wood
        pickaxe (``do`` clears the stone to path, then it walks on); None when it cannot be entered."""
        if self._free(pos):
            return 1
        material, kind = self.seen.get(pos, (None, None))
        if self.dig and material == "stone" and kind is None and self.env.player.inventory["wood_pickaxe"] > 0:
            return DIG_COST
        return None

    def _targets(self, thing: str) -> set[tuple[int, int]]:
        creatures = thing in ("cow", "zombie", "skeleton")
        if creatures:  # they move: only where the view shows them now
            return {p for p, t in self.env.visible() if t == thing}
        return {p for p, (m, k) in self.seen.items() if m == thing or k == thing}

    def path_to(self, goals: set[tuple[int, int]]) -> list[tuple[int, int]] | None:
        """Cheapest path over seen free tiles (and stone it can dig, `_cost`) from here to a tile next to one of
        ``goals`` (not including here); [] when already next to one; None when none is reachable on what has
        been seen. Free ground is preferred: digging costs `DIG_COST` steps a tile."""
        start = self.pos
        if any((start[0] + dx, start[1] + dy) in goals for dx, dy in MOVES.values()):
            return []
        parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
        best = {start: 0}
        queue: list[tuple[int, int, tuple[int, int]]] = [(0, 0, start)]
        order = 0
        while queue:
            dist, _, cur = heapq.heappop(queue)
            if dist > best[cur]:
                continue
            if cur != start and any((cur[0] + ex, cur[1] + ey) in goals for ex, ey in MOVES.values()):
                path = [cur]
                while parent[path[-1]] != start:
                    path.append(parent[path[-1]])  # type: ignore[arg-type]
                return path[::-1]
            for dx, dy in MOVES.values():
                nxt = (cur[0] + dx, cur[1] + dy)
                cost = self._cost(nxt)
                if cost is None or dist + cost >= best.get(nxt, 1 << 30):
                    continue
                best[nxt], parent[nxt] = dist + cost, cur
                order += 1
                heapq.heappush(queue, (dist + cost, order, nxt))
        return None

    def _step_towards(self, target: tuple[int, int]) -> None:
        dx, dy = target[0] - self.pos[0], target[1] - self.pos[1]
        move = {v: k for k, v in MOVES.items()}.get((int(np.sign(dx)), 0) if dx else (0, int(np.sign(dy))))
        ahead = (self.pos[0] + int(np.sign(dx)), self.pos[1]) if dx else (self.pos[0], self.pos[1] + int(np.sign(dy)))
        if self.dig and self.seen.get(ahead, (None, None))[0] == "stone":  # a tunnel: face it and mine it
            self.act(f"move_{move}")  # stone is not free: this only turns
            if tuple(int(v) for v in self.env.player.facing) == (ahead[0] - self.pos[0], ahead[1] - self.pos[1]):
                self.act("do")
            return
        self.act(f"move_{move}")

    def move_to(self, thing: str) -> str | None:
        """Walk next to the nearest seen ``thing`` and face it."""
        if thing not in THINGS:
            raise ValueError(f"unknown thing {thing!r}; things: {', '.join(THINGS)}")
        for _ in range(self.max_steps):
            if self.done:
                return "the episode is over"
            goals = self._targets(thing)
            if not goals:
                return f"no {thing} seen yet"
            path = self.path_to(goals)
            if path is None:
                return f"no way to a {thing} over the ground seen so far"
            if not path:  # next to it: face it (moving into a tile that is not free only turns)
                x, y = self.pos
                target = min(g for g in goals if abs(g[0] - x) + abs(g[1] - y) == 1)
                self._step_towards(target)
                fx, fy = (int(v) for v in self.env.player.facing)
                if (x + fx, y + fy) in goals:
                    return None
                continue
            self._step_towards(path[0])
        return f"did not reach a {thing} within {self.max_steps} steps"

    def explore(self, steps: int = 12) -> str | None:
        """Walk towards the nearest ground not yet seen (the frontier of the map)."""
        unseen = {(x + dx, y + dy) for (x, y) in self.seen for dx, dy in MOVES.values()} - set(self.seen)
        frontier = {p for p in unseen if 0 <= p[0] < 64 and 0 <= p[1] < 64}
        if not frontier:
            return "the whole world has been seen"
        for i in range(steps):
            path = self.path_to(frontier)
            if path is None:  # a creature may stand in the way: having moved, it explored
                return None if i else "no unseen ground is reachable"
            if not path:
                break
            self._step_towards(path[0])
            frontier -= set(self.seen)
        return None

    # ------------------------------------------------------------------ acting
    def interact(self, times: int = 1) -> None:
        """``do`` on the faced tile: collect, drink, attack, eat."""
        for _ in range(times):
            self.act("do")

    def collect(self, thing: str, until: str | None = None, tries: int = 6) -> str | None:
        """Go to the nearest ``thing`` and ``do`` until the inventory's ``until`` item grows."""
        item = until or {"tree": "wood", "water": "drink", "cow": "food"}.get(thing, thing)
        before = self.inventory.get(item, 0)
        why = self.move_to(thing)
        if why:
            return why
        for _ in range(tries):
            self.interact()
            if self.inventory.get(item, 0) > before:
                return None
        return f"the {thing} gave no {item} (a tool missing?)"

    def place(self, item: str) -> str | None:
        """Place ``item`` (table, furnace, stone, plant) on a free neighbouring tile."""
        before = self.achievements.get(f"place_{item}", 0)
        for name in MOVES:  # face each neighbour in turn until the placement takes
            fx, fy = (int(v) for v in self.env.player.facing)
            x, y = self.pos
            if self.seen.get((x + fx, y + fy), (None, None))[0] in ("grass", "sand", "path"):
                self.act(f"place_{item}")
                if self.achievements.get(f"place_{item}", 0) > before:
                    return None
            self.act(f"move_{name}")
        return f"could not place a {item} here (materials or room missing)"

    def make(self, item: str) -> str | None:
        """Make ``item`` (a pickaxe or sword); the table (and furnace) must be within one tile."""
        before = self.inventory.get(item, 0)
        self.act(f"make_{item}")
        return None if self.inventory.get(item, 0) > before else f"could not make a {item} (materials or table missing)"

    def sleep(self, max_steps: int = 100) -> None:
        for _ in range(max_steps):
            self.act("sleep")
            if not self.env.player.sleeping and self.inventory["energy"] >= 9:
                break
