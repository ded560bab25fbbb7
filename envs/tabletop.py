"""`embodied/Tabletop-v0`: a Franka Panda at a table with coloured blocks and bowls."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from embodied.world.errors import TaskError
from embodied.world.layout import sample_layout
from embodied.world.observation import PROPRIO_DIM
from embodied.world.predicates import goal_values
from embodied.world.scene import MAX_BLOCKS, MAX_BOWLS, TABLE_Z, WORKSPACE_X, WORKSPACE_Y, SceneState
from embodied.world.symbolic import SymbolicState, abstract
from embodied.world.tasks import Task
from envs.sim import CONTROL_SUBSTEPS, EE_LINK, CameraConfig, SimRobot, World


class TabletopEnv(gym.Env):
    """
    ## Description
    A Franka Panda (pybullet_data) stands at a table. Up to 6 blocks (4 cm cubes) and 4 bowls in named
    colours lie in a 0.45 m x 0.64 m workspace in front of it; five named locations (top left corner, top
    right corner, middle, bottom left corner, bottom right corner; "top" is far from the robot, "left" is
    the robot's left) are kept free at the start. A task (see `embodied.world.tasks`) says which objects exist and
    which goal predicates must hold. Physics is PyBullet at 240 Hz; grasps hold by finger friction only.

    Agents act either through this low-level action space (for learned policies) or through skills
    (`skills`), which drive `env.unwrapped.robot` (the Robot API) and are checked with `evaluate()`.

    ## Action Space
    `Box(-1, 1, (7,), float32)`: end-effector delta position (x, y, z; x 2 cm), delta rotation as an
    axis-angle vector (x 0.1 rad) and the gripper command (> 0 open, <= 0 close). One step runs 8 physics
    steps (30 Hz control); the target is clipped to the workspace.

    ## Observation Space
    | key       | shape        | dtype   | meaning                                                        |
    |-----------|--------------|---------|----------------------------------------------------------------|
    | `rgb`     | (H, W, 3)    | uint8   | fixed top-down camera (image top = far side, left = robot's left) |
    | `depth`   | (H, W)       | float32 | metric depth along the optical axis (metres)                   |
    | `points`  | (H*W, 6)     | float32 | world-frame xyz + rgb in [0, 1], back-projected from depth     |
    | `proprio` | (22,)        | float32 | 7 joint positions, 7 joint velocities, end-effector xyz and quaternion (xyzw), finger gap |

    ## Rewards
    Sparse: 1.0 on the step where the goal holds, else 0.0.

    ## Starting State
    Objects at random non-overlapping positions (blocks with random yaw in [-45, 45] degrees), the named
    locations clear, the arm at its home pose above the near edge, fingers open.

    ## Randomizations
    Which objects appear (when no task is given: a random generated task), their positions and yaws; all
    from `self.np_random` after `reset(seed=...)`.

    ## Success Conditions
    Every goal predicate holds on the physical state, abstracted with the tolerances of `embodied.world.symbolic`.

    ## Episode End
    Terminates on success; truncated by the registered `max_episode_steps` (200 low-level steps).

    ## Arguments
    `gymnasium.make("embodied/Tabletop-v0", image_size=(128, 128), renderer="tiny", render_mode=None)`:
    `image_size` is (height, width) of the camera; `renderer` is `"tiny"` (TinyRenderer, CPU) or `"egl"`
    (OpenGL through EGL where available, else TinyRenderer with a warning). `reset(options={"task": Task
    | dict})` sets the task; otherwise a random generated task is drawn.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, image_size: tuple[int, int] = (128, 128), renderer: str = "tiny",
                 render_mode: str | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if renderer not in ("tiny", "egl"):
            raise ValueError(f"renderer must be 'tiny' or 'egl', got {renderer!r}")
        h, w = int(image_size[0]), int(image_size[1])
        if h < 8 or w < 8:
            raise ValueError(f"image_size must be at least (8, 8), got {image_size!r}")
        self.render_mode = render_mode
        self.camera = CameraConfig(width=w, height=h)
        self.world = World(self.camera, renderer)
        self.robot = SimRobot(self.world)
        self.task: Task | None = None
        self._ee_target = np.zeros(3)
        self._ee_orn = np.array([1.0, 0, 0, 0])
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)
        self.observation_space = spaces.Dict({
            "rgb": spaces.Box(0, 255, (h, w, 3), np.uint8),
            "depth": spaces.Box(0.0, self.camera.far, (h, w), np.float32),
            "points": spaces.Box(-5.0, 5.0, (h * w, 6), np.float32),
            "proprio": spaces.Box(-50.0, 50.0, (PROPRIO_DIM,), np.float32),
        })

    # ------------------------------------------------------------------ lifecycle
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        task = options.get("task")
        if task is None:
            from envs.generator import FAMILY_NAMES, generate

            family = FAMILY_NAMES[int(self.np_random.integers(len(FAMILY_NAMES)))]
            task = generate(family, int(self.np_random.integers(2**31 - 1)))
        elif isinstance(task, dict):
            task = Task.from_dict(task, where="reset options")
        self.task = task
        self._load_scene(task)
        pos, orn = self.world.ee_pose()
        self._ee_target, self._ee_orn = pos.copy(), orn.copy()
        return self._obs(), self._info()

    def _load_scene(self, task: Task) -> None:
        blocks, bowls = task.scene.blocks, task.scene.bowls
        if len(blocks) > MAX_BLOCKS or len(bowls) > MAX_BOWLS:
            raise TaskError(f"more objects than fit on the table: {len(blocks)} blocks and {len(bowls)} bowls "
                            f"(at most {MAX_BLOCKS} and {MAX_BOWLS})")
        layout = sample_layout(self.np_random, len(blocks), len(bowls))
        if layout is None:
            raise TaskError(f"could not lay out {len(blocks)} blocks and {len(bowls)} bowls without overlap")
        block_xy, bowl_xy = layout
        yaws = self.np_random.uniform(-math.pi / 4, math.pi / 4, len(blocks))
        self.world.build(list(zip(blocks, block_xy, yaws, strict=True)), list(zip(bowls, bowl_xy, strict=True)))

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        import pybullet as p

        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self._ee_target = np.clip(self._ee_target + 0.02 * a[:3],
                                  [WORKSPACE_X[0] - 0.1, WORKSPACE_Y[0] - 0.1, TABLE_Z + 0.005],
                                  [WORKSPACE_X[1] + 0.05, WORKSPACE_Y[1] + 0.1, TABLE_Z + 0.5])
        rot = 0.1 * a[3:6]
        angle = float(np.linalg.norm(rot))
        if angle > 1e-9:
            dq = p.getQuaternionFromAxisAngle((rot / angle).tolist(), angle)
            self._ee_orn = np.asarray(p.multiplyTransforms([0, 0, 0], dq, [0, 0, 0], self._ee_orn.tolist())[1])
        w = self.world
        q = p.calculateInverseKinematics(w.robot, EE_LINK, self._ee_target.tolist(), self._ee_orn.tolist(),
                                         maxNumIterations=50, physicsClientId=w.client)
        w.hold_joints(list(q[:7]), 0.04 if a[6] > 0 else 0.0)
        w.step(2 * CONTROL_SUBSTEPS)
        info = self._info()
        success = bool(info["is_success"])
        return self._obs(), float(success), success, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.world.render()[0]

    def close(self) -> None:
        self.world.close()

    # ------------------------------------------------------------------ reading
    def _obs(self) -> dict[str, np.ndarray]:
        return self.robot.observation()

    def observation(self) -> dict[str, np.ndarray]:
        """The current observation (rgb, depth, points, proprio), as ``reset``/``step`` return it."""
        return self._obs()

    def scene_state(self) -> SceneState:
        """Ground-truth scene state (object poses, gripper) as the planner and skills read it."""
        return self.world.scene_state()

    def symbolic_state(self) -> SymbolicState:
        return abstract(self.scene_state())

    def evaluate(self, goal: list[list] | None = None) -> dict[str, Any]:
        """ManiSkill-style: ``success`` plus each goal predicate's current value and the support relation, for
        the task's goal or the given one (an agent judges a goal it inferred from the instruction this way)."""
        sym = self.symbolic_state()
        if goal is None:
            goal = self.task.goal if self.task is not None else []
        values = goal_values(goal, sym)
        return {"success": bool(values) and all(values), "goal_values": values, "support": sym.support}

    def _info(self) -> dict[str, Any]:
        ev = self.evaluate()
        poses = {}
        for name in self.world.bodies:
            pos, orn = self.world.object_pose(name)
            poses[name] = np.concatenate([pos, orn]).astype(np.float32)
        return {"object_poses": poses, "goal_values": ev["goal_values"], "is_success": ev["success"],
                "support": ev["support"], "physics_steps": self.world.steps}
