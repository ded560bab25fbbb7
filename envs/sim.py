"""PyBullet world for the tabletop: builds the scene, renders the cameras, and drives the Panda.

`SimRobot` implements the Robot API and its cameras (`skills.robot.Robot`, `skills.robot.Cameras`) on this
world: Cartesian motions through inverse kinematics and joint position control, a two-finger gripper that
holds objects by friction alone, joint sensors, and calibrated RGB-D views for perception. Nothing is ever
teleported after the scene is laid out, and no constraint welds an object to the hand.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embodied.world.observation import DEPTH, POINTS, PROPRIO, RGB, View, pack_proprio
from embodied.world.scene import (
    BLOCK_SIZE,
    BOWL_FLOOR,
    BOWL_HEIGHT,
    BOWL_INNER_RADIUS,
    BOWL_OUTER_RADIUS,
    COLORS,
    TABLE_Z,
    WORKSPACE_X,
    WORKSPACE_Y,
    ObjectState,
    SceneState,
    object_name,
)
from sim_assets import asset_path


def _import_pybullet():  # noqa: ANN202 - the module
    """pybullet, without the build-time banner its C code writes to stderr at import (noise before every
    command's output)."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import pybullet
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return pybullet


p = _import_pybullet()

log = logging.getLogger(__name__)

DT = 1.0 / 240.0
ARM_JOINTS = list(range(7))
FINGER_JOINTS = [9, 10]
EE_LINK = 11  # panda_grasptarget: between the fingertips
ARM_FORCES = [87.0] * 4 + [12.0] * 3
FINGER_FORCE = 40.0
REST_POSE = [0.0, -0.35, 0.0, -2.3, 0.0, 1.95, 0.785]
HOME = (0.22, 0.0, TABLE_Z + 0.40)  # high and near the base: little of the table hidden
HOME_SPEED = 0.6  # m/s, free motion
CONTROL_SUBSTEPS = 4  # physics steps per IK update (60 Hz control)
SOLVER_ITERATIONS = 20  # contact solver iterations per step: 20 holds towers of 6 and grasps; 50 is 2x slower


@dataclass(frozen=True)
class CameraConfig:
    """A fixed pinhole camera; by default straight down at the workspace (image top is far, +x; left is +y).
    ``eye``/``target`` (world frame) override the default pose, e.g. for an oblique video camera."""

    width: int = 128
    height: int = 128
    fov_deg: float = 50.0
    height_above_table: float = 0.85
    near: float = 0.05
    far: float = 2.0
    eye: tuple[float, float, float] | None = None
    target: tuple[float, float, float] | None = None

    def matrices(self) -> tuple[list[float], list[float]]:
        cx, cy = 0.5 * sum(WORKSPACE_X), 0.5 * sum(WORKSPACE_Y)
        if self.eye is not None:
            view = p.computeViewMatrix(self.eye, self.target or (cx, cy, TABLE_Z), [0, 0, 1])
        else:
            view = p.computeViewMatrix([cx, cy, TABLE_Z + self.height_above_table], [cx, cy, TABLE_Z], [1, 0, 0])
        proj = p.computeProjectionMatrixFOV(self.fov_deg, self.width / self.height, self.near, self.far)
        return view, proj


def perception_cameras(size: int) -> tuple[CameraConfig, ...]:
    """Top-down camera plus two oblique ones from the far corners (they see stack sides and bowl insides,
    and look away from the arm's base, so a parked arm hides little); each costs a render (~25 ms)."""
    cx, cy = 0.5 * sum(WORKSPACE_X), 0.5 * sum(WORKSPACE_Y)
    return (
        CameraConfig(width=size, height=size),
        CameraConfig(width=size, height=size, eye=(1.00, 0.50, TABLE_Z + 0.55), target=(cx, cy, TABLE_Z)),
        CameraConfig(width=size, height=size, eye=(1.00, -0.50, TABLE_Z + 0.55), target=(cx, cy, TABLE_Z)),
    )


COMMAND_NAMES = ("target_x", "target_y", "target_z", "target_yaw", "target_finger_gap")  # `SimRobot.command`
TINY_RENDERER_PIXEL_OFFSET = (0.0, 1.0)  # where PyBullet's TinyRenderer samples inside a pixel (see View)


class World:
    """One PyBullet client holding the table, the Panda and the scene's blocks and bowls."""

    def __init__(self, camera: CameraConfig, renderer: str = "tiny") -> None:
        self.client = p.connect(p.DIRECT)
        self.camera = camera
        self.renderer = p.ER_TINY_RENDERER
        if renderer == "egl":
            self.renderer = self._load_egl()
        self.bodies: dict[str, int] = {}
        self.kinds: dict[str, str] = {}
        self.robot = -1
        self.steps = 0
        self.frame_hooks: list[Callable[[], None]] = []  # called after every physics step (videos, recordings)
        self._view, self._proj = camera.matrices()
        self._inv_vp = np.linalg.inv(
            np.asarray(self._proj).reshape(4, 4).T @ np.asarray(self._view).reshape(4, 4).T)

    def _load_egl(self) -> int:
        """Hardware (or llvmpipe) OpenGL through EGL; fall back to TinyRenderer with a warning."""
        try:
            import pkgutil

            egl = pkgutil.get_loader("eglRenderer")
            if egl is None or p.loadPlugin(egl.get_filename(), "_eglRendererPlugin",
                                           physicsClientId=self.client) < 0:
                raise RuntimeError("plugin did not load")
            return p.ER_BULLET_HARDWARE_OPENGL
        except Exception as exc:  # noqa: BLE001 - any failure means: no EGL here
            log.warning("EGL renderer unavailable (%s); using TinyRenderer", exc)
            return p.ER_TINY_RENDERER

    # ---------------------------------------------------------------- building
    def build(self, blocks: list[tuple[str, tuple[float, float], float]],
              bowls: list[tuple[str, tuple[float, float]]]) -> None:
        """Reset the simulation and lay out the table, robot, bowls and blocks (colour, xy, yaw)."""
        c = self.client
        p.resetSimulation(physicsClientId=c)
        p.setGravity(0, 0, -9.81, physicsClientId=c)
        p.setTimeStep(DT, physicsClientId=c)
        p.setPhysicsEngineParameter(numSolverIterations=SOLVER_ITERATIONS, deterministicOverlappingPairs=1, physicsClientId=c)
        p.loadURDF(asset_path("table/table.urdf"), [0.5, 0, 0], useFixedBase=True, physicsClientId=c)
        self.robot = p.loadURDF(asset_path("franka_panda/panda.urdf"), [0, 0, TABLE_Z], useFixedBase=True,
                                physicsClientId=c)
        for j, q in enumerate(REST_POSE):
            p.resetJointState(self.robot, j, q, physicsClientId=c)
        for j in FINGER_JOINTS:
            p.resetJointState(self.robot, j, 0.04, physicsClientId=c)
            p.changeDynamics(self.robot, j, lateralFriction=1.2, spinningFriction=0.01, physicsClientId=c)
        # the real Franka hand couples its fingers mechanically; a gear between the two finger joints does
        # the same here (robot-internal: nothing ever ties an object to the hand)
        gear = p.createConstraint(self.robot, FINGER_JOINTS[0], self.robot, FINGER_JOINTS[1], p.JOINT_GEAR,
                                  [1, 0, 0], [0, 0, 0], [0, 0, 0], physicsClientId=c)
        p.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=c)
        self.bodies, self.kinds = {}, {}
        for color, xy in bowls:
            self._add("bowl", color, (xy[0], xy[1], TABLE_Z + 0.0005), 0.0)
        for color, xy, yaw in blocks:
            self._add("block", color, (xy[0], xy[1], TABLE_Z + BLOCK_SIZE / 2 + 0.0005), yaw)
        self.steps = 0
        # settle, then put the arm at home with the fingers open
        self.hold_joints(self.ik(HOME, 0.0), 0.04)
        self.step(30)

    def _add(self, kind: str, color: str, pos: tuple[float, float, float], yaw: float) -> None:
        name = object_name(color, kind)
        body = p.loadURDF(asset_path(f"{kind}.urdf"), pos, p.getQuaternionFromEuler([0, 0, yaw]),
                          physicsClientId=self.client)
        p.changeVisualShape(body, -1, rgbaColor=COLORS[color], physicsClientId=self.client)
        # objects at rest sleep (Bullet's deactivation) until something touches them: resting clutter then
        # costs almost nothing, and a touch or a moving neighbour wakes it with full physics
        p.changeDynamics(body, -1, activationState=p.ACTIVATION_STATE_ENABLE_SLEEPING, physicsClientId=self.client)
        self.bodies[name], self.kinds[name] = body, kind

    # ---------------------------------------------------------------- stepping
    def step(self, n: int = 1) -> None:
        for _ in range(n):
            p.stepSimulation(physicsClientId=self.client)
            self.steps += 1
            for hook in self.frame_hooks:
                hook()

    # ---------------------------------------------------------------- state files
    def save_state(self, path: str | Path) -> None:
        """The whole simulation (every body's pose and velocity, joints, contacts) to a ``.bullet`` file."""
        p.saveBullet(str(path), physicsClientId=self.client)

    def state_bytes(self) -> bytes:
        """`save_state` as bytes (for recordings that carry the state inside them)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="embodied-state-") as tmp:
            path = Path(tmp) / "state.bullet"
            self.save_state(path)
            return path.read_bytes()

    def restore_state(self, path: str | Path) -> None:
        """Back to a state `save_state` wrote, in a world built from the same task (same bodies, same order)."""
        p.restoreState(fileName=str(path), physicsClientId=self.client)

    def poses(self) -> dict[str, list[float]]:
        """Every object's base pose: x, y, z and the quaternion x, y, z, w."""
        return {name: [float(v) for part in self.object_pose(name) for v in part] for name in self.bodies}

    def step_bare(self, n: int) -> None:
        """``n`` physics steps with nothing else in the loop (no step count, no frame hook): for benchmarks."""
        for _ in range(n):
            p.stepSimulation(physicsClientId=self.client)

    def friction(self, name: str) -> float:
        """An object's lateral friction coefficient."""
        return float(p.getDynamicsInfo(self.bodies[name], -1, physicsClientId=self.client)[1])

    def set_friction(self, name: str, mu: float) -> None:
        """Change an object's lateral friction (data collection perturbs it to make grasps slip)."""
        p.changeDynamics(self.bodies[name], -1, lateralFriction=mu, physicsClientId=self.client)

    def set_sleeping(self, allowed: bool) -> None:
        """Let resting objects sleep (Bullet's deactivation, the default) or keep every contact solved."""
        state = p.ACTIVATION_STATE_ENABLE_SLEEPING if allowed else p.ACTIVATION_STATE_DISABLE_SLEEPING
        for body in self.bodies.values():
            p.changeDynamics(body, -1, activationState=state, physicsClientId=self.client)

    def arm_occlusion(self, name: str, camera_eye: tuple[float, float, float]) -> float:
        """Share of samples on an object's top surface (a block's top face, a bowl's rim and floor) whose line
        of sight to ``camera_eye`` hits the robot (ray tests)."""
        pos, orn = self.object_pose(name)
        if self.kinds[name] == "block":
            g = np.linspace(-0.8, 0.8, 5) * BLOCK_SIZE / 2
            local = np.array([(x, y, BLOCK_SIZE / 2 + 0.001) for x in g for y in g])
        else:
            ang = np.linspace(0, 2 * math.pi, 24, endpoint=False)
            rim_r = 0.5 * (BOWL_INNER_RADIUS + BOWL_OUTER_RADIUS)
            rim = np.stack([rim_r * np.cos(ang), rim_r * np.sin(ang), np.full(24, BOWL_HEIGHT + 0.001)], 1)
            g = np.linspace(-0.05, 0.05, 5)
            floor = np.array([(x, y, BOWL_FLOOR + 0.001) for x in g for y in g])
            local = np.concatenate([rim, floor])
        rot = np.asarray(p.getMatrixFromQuaternion(orn)).reshape(3, 3)
        starts = local @ rot.T + pos
        hits = p.rayTestBatch(starts.tolist(), [list(camera_eye)] * len(starts), physicsClientId=self.client)
        return float(np.mean([h[0] == self.robot for h in hits]))

    def ik(self, pos: tuple[float, float, float], yaw: float) -> list[float]:
        orn = p.getQuaternionFromEuler([math.pi, 0.0, yaw])
        q = p.calculateInverseKinematics(
            self.robot, EE_LINK, pos, orn,
            lowerLimits=[-2.9, -1.76, -2.9, -3.07, -2.9, -0.017, -2.9],
            upperLimits=[2.9, 1.76, 2.9, -0.07, 2.9, 3.75, 2.9],
            jointRanges=[5.8, 3.5, 5.8, 3.0, 5.8, 3.8, 5.8], restPoses=REST_POSE,
            maxNumIterations=60, residualThreshold=1e-4, physicsClientId=self.client)
        return list(q[:7])

    def hold_joints(self, q: list[float], finger: float | None = None) -> None:
        p.setJointMotorControlArray(self.robot, ARM_JOINTS, p.POSITION_CONTROL, targetPositions=q,
                                    forces=ARM_FORCES, physicsClientId=self.client)
        if finger is not None:
            self.set_finger_target(finger)

    def set_finger_target(self, finger: float) -> None:
        p.setJointMotorControlArray(self.robot, FINGER_JOINTS, p.POSITION_CONTROL, targetPositions=[finger] * 2,
                                    forces=[FINGER_FORCE] * 2, physicsClientId=self.client)

    # ---------------------------------------------------------------- reading
    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        s = p.getLinkState(self.robot, EE_LINK, computeForwardKinematics=True, physicsClientId=self.client)
        return np.asarray(s[4]), np.asarray(s[5])

    def finger_gap(self) -> float:
        return float(sum(p.getJointState(self.robot, j, physicsClientId=self.client)[0] for j in FINGER_JOINTS))

    def joint_states(self) -> tuple[np.ndarray, np.ndarray]:
        s = p.getJointStates(self.robot, ARM_JOINTS, physicsClientId=self.client)
        return np.array([x[0] for x in s]), np.array([x[1] for x in s])

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        pos, orn = p.getBasePositionAndOrientation(self.bodies[name], physicsClientId=self.client)
        return np.asarray(pos), np.asarray(orn)

    def held(self) -> str | None:
        """The block touched by both fingers while they are closed on something (contact ground truth)."""
        for name, body in self.bodies.items():
            if self.kinds[name] != "block":
                continue
            touching = {c[3] for c in p.getContactPoints(self.robot, body, physicsClientId=self.client)}
            if all(j in touching for j in FINGER_JOINTS):
                return name
        return None

    def scene_state(self) -> SceneState:
        objects = {}
        for name in self.bodies:
            pos, orn = self.object_pose(name)
            yaw = p.getEulerFromQuaternion(orn)[2]
            color, kind = name.split()
            objects[name] = ObjectState(name, kind, color, tuple(float(v) for v in pos), float(yaw))  # type: ignore[arg-type]
        ee, orn = self.ee_pose()
        rot = np.asarray(p.getMatrixFromQuaternion(orn)).reshape(3, 3)
        return SceneState(objects=objects, ee_position=tuple(float(v) for v in ee),  # type: ignore[arg-type]
                          ee_yaw=float(math.atan2(rot[1, 0], rot[0, 0])), gripper_width=self.finger_gap(),
                          held=self.held())

    # ---------------------------------------------------------------- camera
    def render(self, camera: CameraConfig | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB (H, W, 3) uint8, metric depth (H, W) float32 and raw depth buffer (H, W)."""
        cam = camera or self.camera
        view, proj = (self._view, self._proj) if camera is None else cam.matrices()
        _, _, rgba, zbuf, _ = p.getCameraImage(cam.width, cam.height, view, proj, renderer=self.renderer,
                                               flags=p.ER_NO_SEGMENTATION_MASK, physicsClientId=self.client)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(cam.height, cam.width, 4)[..., :3]
        zbuf = np.asarray(zbuf, dtype=np.float32).reshape(cam.height, cam.width)
        depth = cam.far * cam.near / (cam.far - (cam.far - cam.near) * zbuf)
        return rgb, np.minimum(depth, cam.far).astype(np.float32), zbuf

    def points(self, rgb: np.ndarray, zbuf: np.ndarray) -> np.ndarray:
        """Back-project every pixel into the world frame: (H*W, 6) = xyz + rgb in [0, 1]."""
        h, w = zbuf.shape
        u, v = np.meshgrid(np.arange(w), np.arange(h))
        ndc = np.stack([(2 * u + 1) / w - 1, 1 - (2 * v + 1) / h, 2 * zbuf - 1, np.ones_like(zbuf)], -1)
        world = ndc.reshape(-1, 4) @ self._inv_vp.T  # (H*W, 4)
        xyz = world[:, :3] / world[:, 3:4]
        return np.concatenate([xyz, rgb.reshape(-1, 3) / 255.0], 1).astype(np.float32)

    def close(self) -> None:
        if self.client >= 0 and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = -1


class SimRobot:
    """The Robot API on a simulated Panda: straight-line Cartesian moves via IK, a friction gripper."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.observer: Callable[[], SceneState] | None = None  # e.g. a perceiver; None: simulator ground truth
        # what the controller tracks now: hand target x, y, z (m), yaw (rad), finger gap target (m)
        self.command = np.zeros(len(COMMAND_NAMES), np.float32)
        self.command_hook: Callable[[str, dict[str, Any]], None] | None = None  # every move_to/set_gripper call
        self.halted: Callable[[], bool] | None = None  # asked every control tick; True stops the motion there
        self.tick_hook: Callable[[], None] | None = None  # after every control tick (a ROS node's state out)

    @property
    def steps(self) -> int:
        return self.world.steps

    def observe(self) -> SceneState:
        """The scene as the robot's observer sees it (ground truth when no observer is set)."""
        return self.observer() if self.observer is not None else self.world.scene_state()

    def home(self) -> bool:
        """The home pose: high and near the base, where the cameras see the whole table."""
        return self.move_to(HOME, 0.0, HOME_SPEED)

    def proprio(self) -> np.ndarray:
        w = self.world
        q, dq = w.joint_states()
        pos, orn = w.ee_pose()
        return pack_proprio(joint_positions=q, joint_velocities=dq, ee_position=pos, ee_quaternion=orn,
                            finger_gap=w.finger_gap())

    def views(self, image_size: int) -> list[View]:
        """Render every perception camera and back-project each into a calibrated ``View``."""
        views = []
        for i, cam in enumerate(perception_cameras(image_size)):
            rgb, _, zbuf = self.world.render(cam)
            view, proj = cam.matrices()
            views.append(View.from_zbuffer(f"camera{i}", rgb, zbuf, view, proj, TINY_RENDERER_PIXEL_OFFSET))
        return views

    def observation(self) -> dict[str, np.ndarray]:
        """The fixed top-down camera (rgb, metric depth, world-frame points) and the joint sensors."""
        rgb, depth, zbuf = self.world.render()
        return {RGB: rgb, DEPTH: depth, POINTS: self.world.points(rgb, zbuf), PROPRIO: self.proprio()}

    def move_to(self, position: tuple[float, float, float], yaw: float = 0.0, speed: float = 0.5) -> bool:
        w = self.world
        if self.command_hook is not None:
            self.command_hook("move_to", {"position": [float(v) for v in position], "yaw": float(yaw),
                                          "speed": float(speed)})
        start, _ = w.ee_pose()
        goal = np.asarray(position, dtype=np.float64)
        self.command[3] = yaw
        dist = float(np.linalg.norm(goal - start))
        ticks = max(1, int(math.ceil(dist / max(speed, 1e-3) / (DT * CONTROL_SUBSTEPS))))
        for i in range(1, ticks + 1):
            waypoint = start + (goal - start) * i / ticks
            self.command[:3] = waypoint
            w.hold_joints(w.ik(tuple(waypoint), yaw))
            if not self._tick():
                return False
        for _ in range(40):  # settle on the goal
            w.hold_joints(w.ik(tuple(goal), yaw))
            if not self._tick():
                return False
            if np.linalg.norm(w.ee_pose()[0] - goal) < 0.004:
                break
        return bool(np.linalg.norm(w.ee_pose()[0] - goal) < 0.01)

    def _tick(self) -> bool:
        """One control tick of physics; False (the arm held where it is now) when `halted` says stop."""
        self.world.step(CONTROL_SUBSTEPS)
        if self.tick_hook is not None:
            self.tick_hook()
        if self.halted is not None and self.halted():
            self.stop()
            return False
        return True

    def stop(self) -> None:
        """Hold every joint where it is now (an e-stop): the motors brake the arm to rest."""
        q, _ = self.world.joint_states()
        self.world.hold_joints(list(q))

    def set_gripper(self, open_: bool, width: float = 0.08) -> float:
        w = self.world
        if self.command_hook is not None:
            self.command_hook("set_gripper", {"open": bool(open_), "width": float(width)})
        target = min(max(width, 0.0), 0.08) / 2 if open_ else 0.0
        self.command[4] = 2 * target
        w.set_finger_target(target)
        last = w.finger_gap()
        for _ in range(60):
            if not self._tick():
                return w.finger_gap()
            gap = w.finger_gap()
            if abs(gap - last) < 2e-5:
                break
            last = gap
        w.step(12)
        return w.finger_gap()
