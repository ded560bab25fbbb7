"""The Python API: one object that holds a planner, a robot (the simulated tabletop by default) and the
sources of its knowledge, and runs instructions or task files.

```python
from embodied import Agent

with Agent.from_config(planner="saycan", state="ground-truth", affordance="analytic", success="analytic") as agent:
    result = agent.run("put the red block in the green bowl", scene={"blocks": ["red", "blue"], "bowls": ["green"]})
    print(result.outcome, result.steps[-1]["text"])
```
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embodied.runtime.episode import EpisodeResult, StepHook, run_episode
from embodied.runtime.evaluate import EvalFolder
from embodied.runtime.recording import RecordSpec
from embodied.runtime.sensing import Sensing, SensingConfig
from embodied.world.errors import EmbodiedError, TaskError
from embodied.world.tasks import SceneSpec, Task, check_instruction, load_tasks

log = logging.getLogger(__name__)

DEFAULT_LIBRARY = "default"  # $EMBODIED_LIBRARY, else ~/.local/share/embodied/skills.db


@dataclass
class AgentConfig:
    """Everything an agent is: the planner and its options, and the one place that says where the agent's
    state, affordances and step outcomes come from (`perceived`/`ground-truth`, `learned`/`analytic`)."""

    planner: str = "saycan"  # a name of `embodied.planners.registry.PLANNERS`
    planner_options: dict[str, Any] = field(default_factory=dict)  # fields of that planner's config class
    state: str = "perceived"  # RGB-D perception, or the simulator's "ground-truth" poses (ablation)
    affordance: str = "learned"  # learned value functions, or the skills' "analytic" pre-checks
    success: str = "learned"  # the learned success detector, or the skills' "analytic" self-report
    looks: str = "decision"  # perceive once per decision and for grasp checks, or on "every-observe" (benchmarks)
    library: str | None = DEFAULT_LIBRARY  # skill library to retrieve from: "default", a path, or None
    image_size: int = 128  # side of the main camera's images (px)
    infer_goal: bool = False  # read the goal from the instruction even when a task has one (judged by the task's)
    robot: str = "sim"  # the simulated tabletop in this process, or "ros": a robot behind the ROS bridge
    ros_profile: str | None = None  # with robot="ros": the profile (default: the simulator node's)
    ros_master: str | None = None  # with robot="ros": the master's URI (default: $ROS_MASTER_URI)
    dry_run: bool = False  # with robot="ros": check and log every command, send none

    def __post_init__(self) -> None:
        self.sensing  # noqa: B018 - validates state/affordance/success with a did-you-mean
        llm = self.planner_options.get("llm")
        if isinstance(llm, str):  # a model that is not local fails here, in seconds, before anything loads
            from embodied.llm.base import check_language_model_spec

            check_language_model_spec(llm)
        if not isinstance(self.image_size, int) or not 8 <= self.image_size <= 1024:
            raise EmbodiedError(f"AgentConfig.image_size must be an int in [8, 1024], got {self.image_size!r}")
        if self.robot not in ("sim", "ros"):
            raise EmbodiedError(f"AgentConfig.robot must be sim or ros, got {self.robot!r}")
        if self.robot == "sim" and (self.ros_profile or self.ros_master or self.dry_run):
            raise EmbodiedError("--ros-profile, --master and --dry-run need --robot ros")

    @property
    def sensing(self) -> SensingConfig:
        return SensingConfig(state=self.state, affordance=self.affordance, success=self.success, looks=self.looks)

    def library_path(self) -> str | None:
        """The resolved library path (None: primitives only)."""
        if self.library == DEFAULT_LIBRARY:
            from embodied.library.store import default_library_path

            return str(default_library_path())
        return self.library

    def planner_config(self) -> Any:
        """The planner's config dataclass: its defaults, these options, and the library where it takes one."""
        from embodied.planners.registry import config_class

        cls = config_class(self.planner)
        if cls is None:
            if self.planner_options:
                raise EmbodiedError(f"planner {self.planner!r} takes no options, got {sorted(self.planner_options)}")
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(self.planner_options) - known)
        if bad:
            from embodied.world.scene import suggest

            raise EmbodiedError(f"planner {self.planner!r} has no option {bad[0]!r}{suggest(bad[0], sorted(known))}; "
                                f"options: {', '.join(sorted(known))}")
        options = dict(self.planner_options)
        if "library" in known and "library" not in options:
            options["library"] = self.library_path()
        return cls(**options)


class Agent:
    """A planner acting on a robot through skills, judged on the physical state. Build with `from_config`."""

    def __init__(self, config: AgentConfig, planner: Any, env: Any, sensing: Sensing, reader: Any) -> None:
        self.config, self.planner, self.env, self.sensing, self.reader = config, planner, env, sensing, reader

    @classmethod
    def from_config(cls, config: AgentConfig | None = None, **overrides: Any) -> Agent:
        """An agent on the simulated tabletop: ``Agent.from_config(planner="oracle", state="ground-truth")``."""
        from embodied.planners.registry import make_planner
        from embodied.understanding import GoalReader
        from envs.tabletop import TabletopEnv

        config = dataclasses.replace(config, **overrides) if config else AgentConfig(**overrides)
        planner_config = config.planner_config()
        env = _ros_env(config) if config.robot == "ros" else TabletopEnv(image_size=(config.image_size,) * 2)
        try:
            sensing = Sensing(env.robot, config.sensing)
            planner = make_planner(config.planner, planner_config, **planner_deps(config.planner, sensing))
            reader = GoalReader(lm=getattr(planner, "lm", None))
        except BaseException:
            env.close()
            raise
        return cls(config, planner, env, sensing, reader)

    def task(self, instruction: str, scene: SceneSpec | dict | None = None, *, seed: int = 0,
             max_steps: int | None = None) -> Task:
        """A task from free text: the given scene, or a table set for the objects the instruction names."""
        from embodied.instructions import scene_for

        if not isinstance(instruction, str):
            raise TaskError(f"the instruction must be a string, got {type(instruction).__name__}")
        check_instruction(instruction, "instruction")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise TaskError(f"seed must be a non-negative integer, got {seed!r}")
        if max_steps is not None and (not isinstance(max_steps, int) or isinstance(max_steps, bool)
                                      or max_steps < 1):
            raise TaskError(f"max_steps must be a positive integer, got {max_steps!r}")
        if isinstance(scene, dict):
            scene = SceneSpec.from_dict(scene, where="scene")
        if scene is None:
            scene = scene_for(instruction, np.random.default_rng(seed))
        return Task(id="cli", instruction=instruction, scene=scene, goal=[], seed=seed,
                    max_steps=max_steps or 2 * len(scene.blocks) + 2)

    def run(self, instruction: str | Task, scene: SceneSpec | dict | None = None, *, seed: int = 0,
            max_steps: int | None = None, on_step: StepHook | None = None, video: Any = None,
            capture: Any = None) -> EpisodeResult:
        """One episode: an instruction (with ``scene``, or a table set for it) or a `Task`; ``capture``
        (`envs.record.FrameCapture`) records it into ``result.recording``."""
        task = instruction if isinstance(instruction, Task) else self.task(instruction, scene, seed=seed,
                                                                              max_steps=max_steps)
        return run_episode(self.env, task, self.planner, on_step=on_step, video=video, sensing=self.sensing,
                           reader=self.reader, infer_goal=self.config.infer_goal, capture=capture)

    def evaluate(self, tasks: Sequence[Task] | str | Path, out: str | Path | EvalFolder, *, resume: bool = True,
                 on_episode: Callable[[dict[str, Any]], None] | None = None,
                 record: dict[str, Any] | None = None, workers: int = 1, backend: str = "local",
                 ray_address: str | None = None, recording: RecordSpec | None = None) -> dict[str, Any]:
        """Every task (a list or a task file), one `results.jsonl` line each as it finishes, then the report.
        ``out`` is a folder (locked for the call) or an `EvalFolder` the caller holds; ``record`` adds to
        ``config.json``, which also gets package versions and the checkpoints' sha256. ``workers`` > 1 (or
        ``backend="ray"``) runs the episodes in that many worker processes or Ray actors, each building an agent
        from this one's `AgentConfig` (`embodied.runtime.rollouts`; the same outcomes; a worker whose
        configuration or checkpoints differ from this agent's is refused). Python scripts that use workers
        need the ``if __name__ == "__main__":`` guard of the ``spawn`` start method. ``recording`` writes every
        episode as a LeRobot dataset or MCAP logs (`embodied.runtime.recording`)."""
        from embodied.runtime.evaluate import evaluate, file_hashes

        if isinstance(tasks, str | Path):
            tasks = load_tasks(tasks)
        checkpoints, describe = file_hashes(self.checkpoints()), self.describe()
        record = {**(record or {}), "checkpoints": checkpoints, "workers": workers, "backend": backend}
        args = dict(on_episode=on_episode, resume=resume, sensing=self.sensing, reader=self.reader,
                    infer_goal=self.config.infer_goal, describe=describe, record=record, recording=recording)
        folder = out if isinstance(out, EvalFolder) else Path(out)
        if self.config.robot == "ros" and (workers != 1 or backend != "local" or recording is not None):
            raise EmbodiedError("a ROS robot runs one episode at a time in this process: no --workers, --backend "
                                "or recording (record in simulation)")
        if workers == 1 and backend == "local" and ray_address is None:
            return evaluate(list(tasks), self.planner, folder, self.env, **args)
        from embodied.runtime.rollouts import identity, make_workers

        with make_workers(self.config, workers, backend, ray_address, identity(describe, checkpoints),
                          recording, agent=self) as pool:
            return evaluate(list(tasks), self.planner, folder, self.env, episodes=pool.run, **args)

    def checkpoints(self) -> list[Path]:
        """Folders of the learned weights this agent uses (affordance, success detector, planner adapter,
        PaLM-E encoders); the language model's own weights are named by ``planner_config.llm``."""
        found = [getattr(getattr(self.sensing, "affordances", None), "checkpoint", None),
                 getattr(getattr(self.sensing, "detector", None), "checkpoint", None),
                 getattr(self.planner, "adapter", None),
                 getattr(getattr(self.planner, "config", None), "checkpoint", None)]
        return [Path(p) for p in found if isinstance(p, str | Path) and Path(p).exists()]

    def describe(self) -> dict[str, Any]:
        """The resolved configuration, as run folders record it."""
        planner_config = getattr(self.planner, "config", None)
        return {"planner": self.config.planner, **self.config.sensing.__dict__, "infer_goal": self.config.infer_goal,
                "library": self.config.library_path() if "library" in _fields(planner_config) else None,
                "image_size": self.config.image_size, **self._robot(),
                "planner_config": dataclasses.asdict(planner_config) if dataclasses.is_dataclass(planner_config)
                else {}}

    def _robot(self) -> dict[str, Any]:
        """The robot, in the resolved configuration only when it is not the default simulator (so results
        of simulated runs keep their configuration hash)."""
        if self.config.robot == "sim":
            return {}
        return {"robot": "ros", "ros_profile": self.env.robot.profile.describe(), "dry_run": self.config.dry_run}

    def after_fork(self) -> None:
        """In a worker forked from the process that built this agent: the library gets a database connection
        of its own (SQLite's rule: a connection is neither used nor closed across a fork, so the inherited
        one is kept, untouched, for the life of the worker)."""
        library = getattr(self.planner, "library", None)
        if library is not None:
            from embodied.library.store import SkillStore

            _INHERITED.append(library.store)
            library.store = SkillStore(library.store.path, readonly=True)

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_INHERITED: list[Any] = []  # a forked worker's copies of the parent's database connections, never touched


def _fields(config: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) else set()


def _ros_env(config: AgentConfig) -> Any:
    """The robot behind the ROS bridge (`embodied.ros`), in the environment interface episodes use."""
    from embodied.ros.profile import load_profile
    from embodied.ros.robot import RosEnv, RosRobot
    from embodied.ros.transport import make_transport

    profile = load_profile(config.ros_profile)
    robot = RosRobot(make_transport(profile, "embodied_agent", config.ros_master), profile, dry_run=config.dry_run)
    return RosEnv(robot, confirm=input)


def planner_deps(name: str, sensing: Sensing) -> dict[str, Any]:
    """What the runtime hands a planner besides its config: the affordance source the agent chose."""
    import inspect

    from embodied.planners.registry import planner_class

    params = inspect.signature(planner_class(name)).parameters
    return {"affordances": sensing.affordances} if "affordances" in params else {}
