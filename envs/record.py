"""Recording an episode of the simulated tabletop: camera frames, depth, joint sensors, what the controller
tracked and every object's pose, sampled every ``1/fps`` s of simulated time while the episode runs (the
runtime turns an `EpisodeFrames` into a LeRobot dataset or an MCAP log, `embodied.runtime.recording`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from embodied.world.recording import STATE_NAMES, CameraInfo, EpisodeFrames, check_fps
from envs.sim import COMMAND_NAMES, DT, CameraConfig, perception_cameras
from envs.tabletop import TabletopEnv

JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))


def camera_info(camera: CameraConfig) -> CameraInfo:
    """Intrinsics and the optical frame's world pose (z forward, x right, y down) of a simulated camera."""
    view, _ = camera.matrices()
    v = np.asarray(view, dtype=np.float64).reshape(4, 4).T  # world -> OpenGL camera (looks down -z, y up)
    r_world_gl = v[:3, :3].T
    position = -r_world_gl @ v[:3, 3]
    r = r_world_gl @ np.diag([1.0, -1.0, -1.0])  # OpenGL camera -> optical frame
    return CameraInfo.from_fov(camera.width, camera.height, camera.fov_deg,
                               tuple(float(x) for x in position), _quaternion(r))  # type: ignore[arg-type]


def _quaternion(r: np.ndarray) -> tuple[float, float, float, float]:
    """x, y, z, w of a rotation matrix (Shepperd's method, numerically safe for every rotation)."""
    t = np.trace(r)
    if t > 0:
        s = 2.0 * np.sqrt(t + 1.0)
        q = ((r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s)
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i], q[j], q[k] = 0.25 * s, (r[j, i] + r[i, j]) / s, (r[k, i] + r[i, k]) / s
    return tuple(float(x) for x in q)  # type: ignore[return-value]


class FrameCapture:
    """Samples the episode every ``240 // fps`` physics steps from `begin` (after the reset) to `end`: the
    top-down camera (colour and depth) and the side camera (colour) at ``size`` px, the proprioception, the
    controller's target (`SimRobot.command`), every object's pose, and the Robot API calls as they are made.
    Frames are evenly spaced in simulated time; planning, which moves nothing, takes none of it."""

    def __init__(self, env: TabletopEnv, fps: int = 10, size: int | None = None) -> None:
        self.env, self.fps = env, check_fps(fps)
        self.every = round(1 / (DT * fps))
        side = size or env.world.camera.width
        top, left, _ = perception_cameras(side)
        self.cameras = {"top": top, "side": left}
        self._active = False

    def begin(self) -> None:
        """Start a new episode's recording (call after the reset): the first frame is the table as laid out."""
        world, robot = self.env.world, self.env.robot
        self.start = world.steps
        self.images: dict[str, list[np.ndarray]] = {k: [] for k in self.cameras}
        self.depth: list[np.ndarray] = []
        self.state: list[np.ndarray] = []
        self.action: list[np.ndarray] = []
        self.poses: list[np.ndarray] = []
        self.commands: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.sim_states: list[bytes] = []
        self.state_poses: list[dict[str, list[float]]] = []
        scene = world.scene_state()
        robot.command[:] = (*scene.ee_position, scene.ee_yaw, scene.gripper_width)
        self.objects = tuple(world.bodies)
        world.frame_hooks.append(self._tick)
        robot.command_hook = self._command
        self._active = True
        self._grab()

    def _tick(self) -> None:
        if (self.env.world.steps - self.start) % self.every == 0:
            self._grab()

    def _grab(self) -> None:
        world = self.env.world
        for name, camera in self.cameras.items():
            rgb, depth, _ = world.render(camera)
            self.images[name].append(rgb)
            if name == "top":
                self.depth.append(depth)
        self.state.append(self.env.robot.proprio())
        self.action.append(self.env.robot.command.copy())
        self.poses.append(np.asarray([np.concatenate(world.object_pose(name)) for name in self.objects],
                                     np.float64).reshape(len(self.objects), 7))

    @property
    def time(self) -> float:
        """Simulated seconds since `begin`."""
        return (self.env.world.steps - self.start) * DT

    def _command(self, kind: str, args: dict[str, Any]) -> None:
        self.commands.append({"t": round(self.time, 6), "frame": len(self.state) - 1, "command": kind, **args})

    def on_call(self, text: str, call: dict[str, Any], result: dict[str, Any] | None) -> None:
        """A skill call ended (``result`` None: the planner stopped); it spans the frames since the last one.
        After a skill, the whole simulation is kept too (``state`` K: the K-th, counted from 1)."""
        start = self.calls[-1]["frame_end"] if self.calls else 0
        row = {"t": round(self.time, 6), "frame_start": start, "frame_end": len(self.state), "text": text,
               **call, "result": result}
        if result is not None:  # a skill ran: keep the whole simulation after it (`embodied replay`)
            self.sim_states.append(self.env.world.state_bytes())
            self.state_poses.append(self.env.world.poses())
            row["state"] = len(self.sim_states)
        self.calls.append(row)

    def end(self, result: Any) -> EpisodeFrames:
        """Stop sampling and return the episode, with ``result``'s instruction and outcome (an `EpisodeResult`)."""
        self.abort()
        info = {name: camera_info(c) for name, c in self.cameras.items()}
        frames = EpisodeFrames(
            fps=self.fps, images={k: np.stack(v) for k, v in self.images.items()},
            depth={"top": np.stack(self.depth)}, cameras=info, state=np.stack(self.state).astype(np.float32),
            action=np.stack(self.action).astype(np.float32), action_names=COMMAND_NAMES, objects=self.objects,
            object_poses=np.stack(self.poses), joint_names=JOINT_NAMES, commands=self.commands,
            calls=self.calls, sim_states=self.sim_states, state_poses=self.state_poses,
            task=result.task.to_dict(), image_size=self.env.world.camera.width, task_id=result.task.id, instruction=result.task.instruction,
            success=result.success, outcome=result.outcome, reason=result.reason)
        frames.check()
        if frames.state.shape[1] != len(STATE_NAMES):
            raise ValueError(f"proprioception has {frames.state.shape[1]} values, STATE_NAMES {len(STATE_NAMES)}")
        return frames

    def abort(self) -> None:
        """Stop sampling (also when the episode failed with an error)."""
        if self._active:
            self.env.world.frame_hooks.remove(self._tick)
            self.env.robot.command_hook = None
            self._active = False
