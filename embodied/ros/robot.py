"""`RosRobot`: the Robot API and the cameras over ROS, so the whole agent (perception, planner, skills,
success detection, library) runs unchanged on a ROS arm. Every command passes the safety layer first
(`embodied.ros.safety`); a refusal, an e-stop, stale state or a robot that stops answering becomes the
skill's fault (`skills.robot.RobotFault`), which the planner reads as the outcome. `RosEnv` wraps it in
the small environment interface the episode loop uses (reset to a task, judge a goal)."""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from embodied.ros.profile import RosProfile
from embodied.ros.safety import Refused, Safety
from embodied.ros.transport import Transport, TransportError
from embodied.world.errors import EmbodiedError
from embodied.world.observation import DEPTH, POINTS, PROPRIO, RGB, View, pack_proprio
from embodied.world.scene import ObjectState, SceneState, parse_object_name
from skills.robot import RobotFault

log = logging.getLogger(__name__)

FRAME_WAIT_S = 5.0  # the longest wait for camera frames or the true scene after a command
RESET_WAIT_S = 20.0
FAR_M = 2.0  # depth the learned models read where the camera saw nothing (the simulator's far plane)


def _rotation(q: Sequence[float]) -> np.ndarray:
    x, y, z, w = (float(v) for v in q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _pose(translation: Sequence[float], rotation: Sequence[float]) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = _rotation(rotation), translation
    return out


class RosRobot:
    """A robot behind ``profile``'s topics on ``transport``. ``dry_run``: every command is checked and
    logged (``commands``), none is sent. ``bridge_ms`` collects each command's round trip minus the robot's
    own execution time (the bridge's overhead)."""

    def __init__(self, transport: Transport, profile: RosProfile, *, dry_run: bool = False) -> None:
        self.t, self.profile, self.dry_run = transport, profile, dry_run
        self.safety = Safety(profile.limits)
        self.fault: RobotFault | None = None
        self.commands: list[dict[str, Any]] = []
        self.bridge_ms: list[float] = []
        self.estop = False
        self._cond = threading.Condition()
        self._joint: dict[str, Any] | None = None
        self._joint_at = -math.inf
        self._ee: dict[str, Any] | None = None
        self._results: dict[int, dict[str, Any]] = {}
        self._frames: dict[str, dict[str, dict[str, Any]]] = {c.name: {} for c in profile.cameras}
        self._frames_at = 0.0  # state stamp the frames must reach to be fresh
        self._extrinsics: dict[str, np.ndarray] = {c.name: _pose(c.pose[:3], c.pose[3:]) for c in profile.cameras
                                                   if c.pose is not None}
        self._scene: dict[str, Any] | None = None
        self._clock = 0
        self._ids = itertools.count(1)
        self.observer: Callable[[], SceneState] | None = None
        self._goal = transport.publisher(profile.goal, "string")
        self._trigger = transport.publisher(profile.camera_trigger, "string") if profile.camera_trigger else None
        transport.subscribe(profile.joint_states, "joint_state", self._on_joint)
        transport.subscribe(profile.ee_pose, "pose", self._on_ee)
        transport.subscribe(profile.result, "string", self._on_result)
        transport.subscribe(profile.estop, "bool", self._on_estop, required=False)
        transport.subscribe("/tf_static", "tf", self._on_tf, latched=True)
        for cam in profile.cameras:
            for part, topic, kind in (("color", cam.color, "image"), ("depth", cam.depth, "image"),
                                      ("info", cam.info, "camera_info")):
                transport.subscribe(topic, kind, self._on_frame(cam.name, part), latched=True)
        if profile.true_scene:
            transport.subscribe(profile.true_scene, "string", self._on_scene, latched=True)
        if profile.reset_request:
            self._reset = transport.publisher(profile.reset_request, "string")
            transport.subscribe(profile.reset_result, "string", self._on_result)

    # ------------------------------------------------------------------ what arrives
    def _on_joint(self, m: dict[str, Any]) -> None:
        with self._cond:
            self._joint, self._joint_at = m, time.monotonic()
            self._cond.notify_all()

    def _on_ee(self, m: dict[str, Any]) -> None:
        with self._cond:
            self._ee = m

    def _on_result(self, text: str) -> None:
        try:
            result = json.loads(text)
            rid = int(result["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a result that is not ours: %.80r", text)  # robot-side text is data only
            return
        with self._cond:
            self._results[rid] = result
            self._cond.notify_all()

    def _on_estop(self, engaged: bool) -> None:
        with self._cond:
            self.estop = engaged
            if engaged:
                self.fault = RobotFault("e-stop pressed: the current skill was halted", halt=True)
            self._cond.notify_all()

    def _on_tf(self, transforms: list[dict[str, Any]]) -> None:
        frames = {c.frame: c.name for c in self.profile.cameras if c.pose is None}
        with self._cond:
            for t in transforms:
                if t["child"] in frames and t["parent"] == self.profile.world_frame:
                    self._extrinsics[frames[t["child"]]] = _pose(t["translation"], t["rotation"])
            self._cond.notify_all()

    def _on_frame(self, camera: str, part: str) -> Callable[[dict[str, Any]], None]:
        def store(m: dict[str, Any]) -> None:
            with self._cond:
                self._frames[camera][part] = m
                self._cond.notify_all()

        return store

    def _on_scene(self, text: str) -> None:
        try:
            scene = json.loads(text)
        except ValueError:
            log.warning("ignored a true scene that is not JSON")
            return
        with self._cond:
            self._scene = scene
            self._cond.notify_all()

    # ------------------------------------------------------------------ faults
    def take_fault(self) -> RobotFault | None:
        """The fault of the skill that just ran, cleared (an engaged e-stop stays a fault)."""
        with self._cond:
            fault = self.fault
            self.fault = RobotFault("e-stop engaged", halt=True) if self.estop else None
        return fault

    def _refuse(self, reason: str, halt: bool = False) -> None:
        log.warning("command refused: %s", reason)
        with self._cond:
            if self.fault is None or (halt and not self.fault.halt):
                self.fault = RobotFault(reason, halt)

    def state_age(self) -> float | None:
        return None if self._joint is None else time.monotonic() - self._joint_at

    # ------------------------------------------------------------------ commands
    def _send(self, goal: dict[str, Any]) -> dict[str, Any] | None:
        """Publish one goal and wait for its result, watching the e-stop, the joint states (a robot that stops
        publishing them is lost within ``max_state_age_s``) and ``command_timeout_s``; None on a fault."""
        goal = {"id": next(self._ids), **goal}
        self.commands.append({"sent": not self.dry_run, **goal})
        if self.dry_run:
            log.info("dry run, not sent: %s", json.dumps(goal))
            return None
        limits = self.profile.limits
        t0 = time.monotonic()
        self._goal(json.dumps(goal))
        with self._cond:
            while goal["id"] not in self._results:
                age = time.monotonic() - self._joint_at
                if age > max(limits.max_state_age_s, 0.2) and not self.estop:
                    self.fault = RobotFault(f"no joint state for {age:.1f} s: the robot stopped answering "
                                            f"(goal {goal['kind']} {goal['id']})", halt=True)
                    return None
                if time.monotonic() - t0 > (limits.command_timeout_s if not self.estop else 2.0):
                    self.fault = RobotFault(f"the robot did not finish {goal['kind']} within "
                                            f"{limits.command_timeout_s:.0f} s", halt=True)
                    return None
                self._cond.wait(0.05)
            result = self._results.pop(goal["id"])
        if "exec_s" in result:
            self.bridge_ms.append(1000 * (time.monotonic() - t0 - float(result["exec_s"])))
        self._clock = int(result.get("clock", self._clock))
        self._frames_at = float(result.get("stamp", self._frames_at))
        if "estop" in result:
            self._refuse(f"e-stop pressed: the arm was stopped ({result['estop'].get('stop_ms')} ms after it "
                         "arrived, simulated time)", halt=True)
            return None
        if not result.get("ok", False):  # the robot's own words are logged, never put before the planner
            log.warning("the robot refused %s %s: %.200r", goal["kind"], goal["id"], result.get("error"))
            self._refuse(f"the robot refused {goal['kind']}" + (" (e-stop engaged)" if self.estop else ""),
                         halt=self.estop)
            return None
        return result

    def _checked(self) -> bool:
        """Commands stop for the rest of a skill once one was refused (the skill's fault says why)."""
        if self.fault is not None:
            return False
        try:
            self.safety.check_fresh(self.state_age() if not self.dry_run else 0.0)
        except Refused as e:
            self._refuse(str(e))
            return False
        return True

    def move_to(self, position: tuple[float, float, float], yaw: float = 0.0, speed: float = 0.5) -> bool:
        if not self._checked():
            return False
        current = self._ee["position"] if self._ee is not None else None
        try:
            self.safety.check_move(position, yaw, speed, current)
        except Refused as e:
            self._refuse(str(e))
            return False
        result = self._send({"kind": "move_to", "position": [float(v) for v in position], "yaw": float(yaw),
                             "speed": float(speed)})
        return bool(result and result.get("reached"))

    def set_gripper(self, open_: bool, width: float = 0.08) -> float:
        if not self._checked():
            return self._gap()
        try:
            self.safety.check_gripper(width if open_ else self.profile.limits.gripper_width_m[0])
        except Refused as e:
            self._refuse(str(e))
            return self._gap()
        result = self._send({"kind": "gripper", "open": bool(open_), "width": float(width)})
        return float(result["gap"]) if result and "gap" in result else self._gap()

    def home(self) -> bool:
        return self.move_to(tuple(self.profile.home), 0.0, self.profile.home_speed)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ reading
    def _gap(self) -> float:
        if self._joint is None:
            return 0.0
        names = self._joint["name"]
        return float(sum(self._joint["position"][names.index(j)] for j in self.profile.finger_joints if j in names))

    @property
    def steps(self) -> int:
        """The robot's control clock (the simulator node reports its physics steps)."""
        return self._clock

    def proprio(self) -> np.ndarray:
        if self._joint is None or self._ee is None:
            raise EmbodiedError("no joint states or hand pose from the robot yet")
        names, js = self._joint["name"], self._joint
        try:
            idx = [names.index(j) for j in self.profile.arm_joints]
        except ValueError:
            raise EmbodiedError(f"the joint states lack the profile's arm joints {self.profile.arm_joints}; "
                                f"they name {names[:12]}") from None
        vel = js["velocity"] if len(js["velocity"]) == len(names) else [0.0] * len(names)
        return pack_proprio(joint_positions=np.array([js["position"][i] for i in idx]),
                            joint_velocities=np.array([vel[i] for i in idx]),
                            ee_position=np.array(self._ee["position"]), ee_quaternion=np.array(self._ee["orientation"]),
                            finger_gap=self._gap())

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float = FRAME_WAIT_S) -> None:
        end = time.monotonic() + timeout
        with self._cond:
            while not ready():
                if time.monotonic() > end:
                    raise TransportError(f"no {what} from the robot within {timeout:.0f} s")
                self._cond.wait(0.05)

    def true_scene(self) -> dict[str, Any]:
        """The simulator's true scene at the last command (sim-only topic; a real robot has none)."""
        if not self.profile.true_scene:
            raise EmbodiedError(f"profile {self.profile.name} has no true scene (a real robot): use --state perceived")
        self._wait(lambda: self._scene is not None and self._scene["stamp"] >= self._frames_at - 1e-9,
                   "true scene")
        return self._scene  # type: ignore[return-value]

    def observe(self) -> SceneState:
        """The scene from the robot's observer (perception), else the simulator's true scene."""
        if self.observer is not None:
            return self.observer()
        scene = self.true_scene()
        objects = {}
        for name, pose in scene["objects"].items():
            color, kind = parse_object_name(name)
            r = _rotation(pose[3:])
            objects[name] = ObjectState(name, kind, color, tuple(pose[:3]), math.atan2(r[1, 0], r[0, 0]))  # type: ignore[arg-type]
        proprio = self.proprio()
        r = _rotation(self._ee["orientation"])  # type: ignore[index]
        return SceneState(objects=objects, ee_position=tuple(float(v) for v in self._ee["position"]),  # type: ignore[index]
                          ee_yaw=math.atan2(r[1, 0], r[0, 0]), gripper_width=float(proprio[-1]), held=scene["held"])

    def _fresh_frames(self, cameras: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """The newest frames of ``cameras`` taken after the last command; with a camera trigger (the simulator
        node renders only on request, like a triggered camera) they are asked for first."""
        def ready() -> bool:
            return all(len(self._frames[n]) == 3 and n in self._extrinsics
                       and all(p["stamp"] >= self._frames_at - 1e-9 for p in self._frames[n].values())
                       for n in cameras)

        if self._trigger is not None and not ready():
            self._trigger(json.dumps({"cameras": list(cameras)}))
        self._wait(ready, "fresh camera frames (colour, depth, camera_info) and camera poses (/tf_static)")
        with self._cond:
            return {name: dict(self._frames[name]) for name in cameras}

    @staticmethod
    def _arrays(parts: dict[str, dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        color, depth, info = parts["color"], parts["depth"], parts["info"]
        if color["encoding"] != "rgb8":
            raise EmbodiedError(f"colour images must be rgb8, got {color['encoding']}")
        rgb = np.frombuffer(color["data"], np.uint8).reshape(color["height"], color["width"], 3)
        if depth["encoding"] == "32FC1":
            d = np.frombuffer(depth["data"], "<f4").reshape(depth["height"], depth["width"]).astype(np.float32)
        elif depth["encoding"] == "16UC1":  # millimetres, 0: nothing (RealSense)
            d = np.frombuffer(depth["data"], "<u2").reshape(depth["height"], depth["width"]).astype(np.float32) / 1000
            d[d == 0] = np.nan
        else:
            raise EmbodiedError(f"depth images must be 32FC1 or 16UC1, got {depth['encoding']}")
        if rgb.shape[:2] != d.shape:
            raise EmbodiedError(f"colour {rgb.shape[:2]} and depth {d.shape} images differ in size (align them)")
        return rgb, d, np.asarray(info["K"], dtype=np.float64).reshape(3, 3)

    def views(self, image_size: int) -> list[View]:
        """One calibrated RGB-D view per camera, from the newest frames taken after the last command."""
        views = []
        names = self.profile.perception_cameras or tuple(c.name for c in self.profile.cameras)
        frames = self._fresh_frames(names)
        for name in names:
            rgb, depth, k = self._arrays(frames[name])
            if rgb.shape[0] != image_size:
                raise EmbodiedError(f"camera {name} sends {rgb.shape[1]}x{rgb.shape[0]} images; the agent expects "
                                    f"{image_size} (--image-size)")
            views.append(View.from_depth(name, rgb, depth, k, self._extrinsics[name]))
        return views

    def observation(self) -> dict[str, np.ndarray]:
        """The main camera (rgb, metric depth, world-frame points with colours) and the joint sensors."""
        parts = self._fresh_frames([self.profile.main_camera])[self.profile.main_camera]
        rgb, depth, k = self._arrays(parts)
        filled = np.where(np.isfinite(depth), depth, FAR_M).astype(np.float32)
        view = View.from_depth("main", rgb, filled, k, self._extrinsics[self.profile.main_camera])
        points = np.concatenate([view.points, rgb.reshape(-1, 3) / 255.0], 1).astype(np.float32)
        return {RGB: rgb, DEPTH: filled, POINTS: points, PROPRIO: self.proprio()}

    # ------------------------------------------------------------------ episodes
    def episode_stats(self) -> dict[str, Any]:
        """The bridge's overhead per command this episode: round trip minus the robot's execution (ms)."""
        ms = np.asarray(self.bridge_ms)
        return {"bridge_commands": len(ms), "bridge_ms": [round(float(v), 3) for v in ms]}

    def reset_to(self, task: dict[str, Any]) -> None:
        """Ask the simulator node to lay out ``task``'s table (its reset topic) and wait until it has."""
        if not self.profile.reset_request:
            raise EmbodiedError(f"profile {self.profile.name} cannot reset the table (a real robot)")
        rid = next(self._ids)
        self.bridge_ms = []
        if not self.t.wait_connected(RESET_WAIT_S):
            raise TransportError(f"the simulator node does not subscribe to {self.profile.reset_request}")
        self._reset(json.dumps({"id": rid, "task": task}))
        with self._cond:
            self.fault = None
            end = time.monotonic() + RESET_WAIT_S
            while rid not in self._results:
                if time.monotonic() > end:
                    raise TransportError(f"the simulator node did not reset within {RESET_WAIT_S:.0f} s")
                self._cond.wait(0.05)
            reply = self._results.pop(rid)
        if not reply.get("ok"):  # shown to the person, not the planner
            raise EmbodiedError(f"the simulator node could not reset: {str(reply.get('error'))[:300]!r}")
        self._clock, self._frames_at = int(reply["clock"]), float(reply["stamp"])

    def wait_state(self, timeout: float = 2.0) -> None:
        """Until a joint state younger than ``max_state_age_s`` arrives: a robot that stopped answering is
        named within ``timeout``."""
        fresh = self.profile.limits.max_state_age_s
        timeout = timeout if self._joint is not None else max(timeout, 10.0)  # the first may take connecting
        try:
            self._wait(lambda: self._joint is not None and time.monotonic() - self._joint_at < fresh,
                       "joint states", timeout)
        except TransportError:
            raise TransportError(f"the robot (or the simulator node) stopped answering: no fresh joint state "
                                 f"within {timeout:.0f} s") from None

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until joint states, the hand pose and the camera poses have arrived and the robot listens to our
        goals (a message published before a subscriber connects is lost)."""
        self._wait(lambda: self._joint is not None and self._ee is not None
                   and all(c.name in self._extrinsics for c in self.profile.cameras),
                   "joint states, hand pose and camera poses", timeout)
        if not self.dry_run and not self.t.wait_connected(timeout):
            raise TransportError(f"the robot does not subscribe to {self.profile.goal} within {timeout:.0f} s")


class RosEnv:
    """What the episode loop needs of an environment, over ROS: `reset` lays out a task (the simulator node's
    reset; on a real robot the person sets the table and confirms), `evaluate` judges a goal on the physical
    state (the simulator's true scene; on a real robot, what the cameras show)."""

    def __init__(self, robot: RosRobot, confirm: Callable[[str], None] | None = None) -> None:
        self.robot, self.confirm = robot, confirm

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        from embodied.world.tasks import Task

        task = (options or {}).get("task")
        if not isinstance(task, Task):
            raise EmbodiedError("RosEnv.reset needs options={'task': Task}")
        self.robot.t.check()  # the master is there and is still the one this node registered with
        self.robot.wait_state()
        if self.robot.profile.reset_request:
            self.robot.reset_to(task.to_dict())
        else:
            if self.confirm is None:
                raise EmbodiedError("a real robot's table is set by a person: run interactively to confirm")
            self.confirm(f"Set the table for: {task.instruction!r} ({', '.join(task.scene.blocks)} blocks, "
                         f"{', '.join(task.scene.bowls) or 'no'} bowls), then press Enter")
        self.robot.wait_ready()
        return {}, {}

    def evaluate(self, goal: list[list] | None = None) -> dict[str, Any]:
        from embodied.world.predicates import goal_values
        from embodied.world.symbolic import abstract

        if not goal:
            return {"success": False, "goal_values": []}
        observer, self.robot.observer = self.robot.observer, None
        try:
            if self.robot.profile.true_scene:
                values = goal_values(goal, abstract(self.robot.observe()))
            else:
                self.robot.observer = observer
                values = goal_values(goal, abstract(self.robot.observe()))
        finally:
            self.robot.observer = observer
        return {"success": bool(values) and all(values), "goal_values": values}

    def close(self) -> None:
        self.robot.t.close()
