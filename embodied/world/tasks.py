"""The task file format: one JSON object per line, validated with messages that say ``path:line: what``.

A line looks like::

    {"id": "t1", "instruction": "put the red block in the green bowl",
     "scene": {"blocks": ["red", "blue"], "bowls": ["green"]},
     "goal": [["in", "red block", "green bowl"]], "seed": 3, "max_steps": 6, "family": "block_in_bowl"}

``seed``, ``max_steps`` and ``family`` are optional. Blank lines and lines starting with ``#`` are skipped.
A task the agent must refuse carries ``"expect": "cannot"`` (and optionally ``"why"``) instead of a goal: it
counts as solved only when the episode ends ``cannot`` before any motion (its instruction may be blank).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embodied.world.errors import PredicateError, TaskError, UnknownObjectError
from embodied.world.predicates import validate_goal
from embodied.world.scene import COLOR_NAMES, MAX_BLOCKS, MAX_BOWLS, object_name, suggest

TASK_KEYS: tuple[str, ...] = ("id", "instruction", "scene", "goal", "seed", "max_steps", "family", "expect", "why")
REQUIRED_KEYS: tuple[str, ...] = ("id", "instruction", "scene")
EXPECTS: tuple[str, ...] = ("success", "cannot")
SCENE_KEYS: tuple[str, ...] = ("blocks", "bowls")
# Longest instruction accepted (characters): a few sentences of a request, well inside the language model's
# context (SmolLM2: 8,192 tokens, shared with the prompt's examples, the scene and the options).
MAX_INSTRUCTION_CHARS = 2_000


def goal_blocks(goal: list[list]) -> list[str]:
    """The distinct blocks a goal names, in order of first mention."""
    out: list[str] = []
    for pred in goal:
        for name in (pred[1] if pred[0] == "stacked" else pred[1:]):
            if isinstance(name, str) and name.endswith(" block") and name not in out:
                out.append(name)
    return out


def default_max_steps(goal: list[list]) -> int:
    """Step budget: a pick and a place per goal block, one step for ``done`` and one spare."""
    return 2 * len(goal_blocks(goal)) + 2


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class SceneSpec:
    """Which objects a task's table holds, by colour; the environment lays them out from the task seed."""

    blocks: list[str]
    bowls: list[str] = field(default_factory=list)

    def object_names(self) -> list[str]:
        """Canonical names, blocks first: ``["red block", ..., "green bowl", ...]``."""
        return [object_name(c, "block") for c in self.blocks] + [object_name(c, "bowl") for c in self.bowls]

    def to_dict(self) -> dict[str, list[str]]:
        return {"blocks": list(self.blocks), "bowls": list(self.bowls)}

    @classmethod
    def from_dict(cls, d: object, where: str = "scene") -> SceneSpec:
        """Validate and build a scene; errors name the field, the bad value and a likely fix."""
        if not isinstance(d, dict):
            raise TaskError(f"{where}: 'scene' must be an object like {{\"blocks\": [...], \"bowls\": [...]}}, "
                            f"got {d!r}")
        for key in d:
            if key not in SCENE_KEYS:
                raise TaskError(f"{where}: unknown scene key {key!r}{suggest(str(key), SCENE_KEYS)}; "
                                f"scene keys: {', '.join(SCENE_KEYS)}")
        if "blocks" not in d:
            raise TaskError(f"{where}: scene is missing key 'blocks' (a list of colours)")
        lists = {kind: d.get(kind, []) for kind in SCENE_KEYS}
        for kind, colors in lists.items():
            if not isinstance(colors, list):
                raise TaskError(f"{where}: scene.{kind} must be a list of colours, got {colors!r}")
            for i, c in enumerate(colors):
                if not isinstance(c, str):
                    raise TaskError(f"{where}: scene.{kind}[{i}] must be a colour name, got {c!r}")
                if c not in COLOR_NAMES:
                    raise TaskError(f"{where}: scene.{kind}[{i}]: unknown colour {c!r}{suggest(c, COLOR_NAMES)}; "
                                    f"known colours: {', '.join(COLOR_NAMES)}")
            dupes = sorted({c for c in colors if colors.count(c) > 1})
            if dupes:
                raise TaskError(f"{where}: scene.{kind} lists {', '.join(map(repr, dupes))} twice; "
                                f"each {kind[:-1]} colour may appear once")
        if len(lists["blocks"]) > MAX_BLOCKS or len(lists["bowls"]) > MAX_BOWLS:
            raise TaskError(f"{where}: more objects than fit on the table: at most {MAX_BLOCKS} blocks and "
                            f"{MAX_BOWLS} bowls, got {len(lists['blocks'])} blocks and {len(lists['bowls'])} bowls")
        return cls(blocks=list(lists["blocks"]), bowls=list(lists["bowls"]))


@dataclass
class Task:
    """One episode's specification: what to say, what is on the table, and when it counts as done."""

    id: str
    instruction: str
    scene: SceneSpec
    goal: list[list]
    seed: int = 0  # physics and layout seed
    max_steps: int | None = None  # None: default_max_steps(goal)
    family: str | None = None  # generator family that made the task, if any
    expect: str = "success"  # "cannot": the agent must refuse it (no goal)
    why: str = ""  # for expect "cannot": the category of refusal, for reports

    def __post_init__(self) -> None:
        check_instruction(self.instruction, f"task {self.id!r}")
        if self.max_steps is None:
            self.max_steps = default_max_steps(self.goal)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "instruction": self.instruction, "scene": self.scene.to_dict(),
                             "goal": self.goal, "seed": self.seed, "max_steps": self.max_steps}
        if self.family is not None:
            d["family"] = self.family
        if self.expect != "success":
            d["expect"], d["why"] = self.expect, self.why
        return d

    @classmethod
    def from_dict(cls, d: object, where: str = "task") -> Task:
        """Validate and build a task; every error is a ``TaskError`` whose message starts with ``where``."""
        if not isinstance(d, dict):
            raise TaskError(f"{where}: a task must be a JSON object, got {type(d).__name__}")
        for key in d:
            if key not in TASK_KEYS:
                raise TaskError(f"{where}: unknown key {key!r}{suggest(str(key), TASK_KEYS)}; "
                                f"task keys: {', '.join(TASK_KEYS)}")
        expect = d.get("expect", "success")
        if expect not in EXPECTS:
            raise TaskError(f"{where}: 'expect' must be one of {', '.join(EXPECTS)}, got {expect!r}")
        refuse = expect == "cannot"
        for key in REQUIRED_KEYS + (() if refuse else ("goal",)):
            if key not in d:
                raise TaskError(f"{where}: missing key {key!r}; a task needs {', '.join(REQUIRED_KEYS)} and a "
                                "'goal' (or \"expect\": \"cannot\")")
        if refuse and d.get("goal"):
            raise TaskError(f"{where}: a task that expects 'cannot' has no goal, got {d['goal']!r}")
        if not isinstance(d["id"], str) or not d["id"].strip():
            raise TaskError(f"{where}: 'id' must be a non-empty string, got {d['id']!r}")
        if not isinstance(d["instruction"], str) or not (refuse or d["instruction"].strip()):
            raise TaskError(f"{where}: 'instruction' must be a non-empty string, got {d['instruction']!r:.80}")
        check_instruction(d["instruction"], where)
        why = d.get("why", "")
        if not isinstance(why, str):
            raise TaskError(f"{where}: 'why' must be a string, got {why!r}")
        if not _is_int(d.get("seed", 0)) or d.get("seed", 0) < 0:
            raise TaskError(f"{where}: 'seed' must be a non-negative integer, got {d['seed']!r}")
        max_steps = d.get("max_steps")
        if max_steps is not None and (not _is_int(max_steps) or max_steps < 1):
            raise TaskError(f"{where}: 'max_steps' must be a positive integer, got {max_steps!r}")
        family = d.get("family")
        if family is not None and not isinstance(family, str):
            raise TaskError(f"{where}: 'family' must be a string, got {family!r}")
        scene = SceneSpec.from_dict(d["scene"], where)
        try:
            goal = [] if refuse else validate_goal(d["goal"], scene.object_names())
        except PredicateError as e:
            raise PredicateError(f"{where}: {e}") from e
        except UnknownObjectError as e:
            raise TaskError(f"{where}: {e}") from e
        return cls(id=d["id"], instruction=d["instruction"], scene=scene, goal=goal, seed=d.get("seed", 0),
                   max_steps=max_steps, family=family, expect=expect, why=why)


def check_instruction(text: str, where: str) -> None:
    """Refuse an instruction longer than `MAX_INSTRUCTION_CHARS` (a ``TaskError`` naming ``where``) before
    anything reads it: prompts are built from it and must fit the model's context."""
    if isinstance(text, str) and len(text) > MAX_INSTRUCTION_CHARS:
        raise TaskError(f"{where}: the instruction is {len(text):,} characters long; the limit is "
                        f"{MAX_INSTRUCTION_CHARS:,} (say it in fewer words)")


def parse_json(text: str, where: str) -> Any:
    """``json.loads`` whose failures -- malformed, or nested too deep to read -- are ``TaskError``s naming
    ``where``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TaskError(f"{where}: not valid JSON: {e.msg} (column {e.colno})") from None
    except RecursionError:
        raise TaskError(f"{where}: JSON nested too deeply to read") from None


def parse_task_line(text: str, lineno: int, path: str | Path = "<string>") -> Task:
    """Parse one JSON line; errors start with ``"{path}:{lineno}: "``."""
    where = f"{path}:{lineno}"
    return Task.from_dict(parse_json(text, where), where)


def read_text_lines(path: str | Path, what: str = "task file") -> list[str]:
    """The lines of a UTF-8 text file; a byte that is not UTF-8 is a ``TaskError`` naming the file and line."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TaskError(f"{path}: cannot read {what}: {e.strerror or e}") from e
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TaskError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save "
                        f"the {what} as UTF-8") from None


def load_tasks(path: str | Path) -> list[Task]:
    """Read a task file, skipping blank lines and ``#`` comments; task ids must be unique."""
    lines = read_text_lines(path)
    tasks: list[Task] = []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        task = parse_task_line(line, lineno, path)
        if task.id in first_line:
            raise TaskError(f"{path}:{lineno}: duplicate task id {task.id!r} (first used on line "
                            f"{first_line[task.id]})")
        first_line[task.id] = lineno
        tasks.append(task)
    if not tasks:
        raise TaskError(f"{path}:{max(len(lines), 1)}: empty task file: no task lines "
                        "(blank lines and '#' comments are skipped)")
    return tasks


def save_tasks(tasks: list[Task], path: str | Path) -> None:
    """Write tasks as JSON lines (creating the parent folder); ``load_tasks`` reads them back exactly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks), encoding="utf-8")
