"""A ROS profile: how the bridge maps the Robot API onto one robot's topics, frames and message types, and
the safety limits in front of every command (YAML; `embodied/ros/profiles/` ships the simulator node's
and a franka_ros + realsense2_camera one)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from embodied.world.errors import EmbodiedError

PROFILES = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = PROFILES / "sim.yaml"


class ProfileError(EmbodiedError):
    """A profile that cannot be used: the file, the key and what is wrong."""


@dataclass(frozen=True)
class Limits:
    """The safety layer's limits (`embodied.ros.safety`): every command is checked against them first."""

    enabled: bool = True
    workspace: dict[str, tuple[float, float]] = field(default_factory=lambda: {
        "x": (0.15, 0.85), "y": (-0.45, 0.45), "z": (0.60, 1.20)})  # the hand's target, world frame (m)
    max_step_m: float = 0.9  # the longest straight-line move one command may ask for
    max_speed_mps: float = 1.0
    gripper_width_m: tuple[float, float] = (0.0, 0.08)
    max_state_age_s: float = 0.5  # refuse to command on joint states older than this; stop if they stop
    command_timeout_s: float = 30.0  # a command the robot has not finished by then is failed


@dataclass(frozen=True)
class CameraTopics:
    """One RGB-D camera: colour (rgb8), depth aligned to it (32FC1 metres or 16UC1 mm), its camera_info, and
    the optical frame whose pose in ``world`` comes from /tf_static (or ``pose``: x y z qx qy qz qw)."""

    name: str
    color: str
    depth: str
    info: str
    frame: str
    pose: tuple[float, ...] | None = None


@dataclass(frozen=True)
class RosProfile:
    """Topics, frames and limits of one robot. ``goal``/``result`` carry the bridge's goal protocol (JSON in
    std_msgs/String: move_to, gripper, stop; a result per goal id); ``true_scene`` and ``reset`` exist only
    on the simulator node (ground truth and a task's table)."""

    name: str
    transport: str = "ros1"
    world_frame: str = "world"
    joint_states: str = "/joint_states"
    arm_joints: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
    finger_joints: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
    ee_pose: str = "/embodied/ee_pose"
    goal: str = "/embodied/arm/goal"
    result: str = "/embodied/arm/result"
    estop: str = "/embodied/estop"
    true_scene: str | None = None
    reset_request: str | None = None
    reset_result: str | None = None
    home: tuple[float, float, float] = (0.22, 0.0, 1.025)  # where the hand waits, out of the cameras' way
    home_speed: float = 0.6
    camera_trigger: str | None = None  # std_msgs/String JSON {"cameras": [...]}: frames on request (the sim node)
    main_camera: str = "top"  # what the learned models read (`observation()`)
    perception_cameras: tuple[str, ...] | None = None  # what perception fuses (`views()`); None: every camera
    cameras: tuple[CameraTopics, ...] = ()
    limits: Limits = field(default_factory=Limits)
    limits_off_reason: str | None = None  # a profile that turns limits off must say why (kept in the config)
    loopback: bool = False  # ros2: DDS on 127.0.0.1 only (the simulator node; tests), unless CYCLONEDDS_URI is set
    source: str = ""

    @property
    def simulated(self) -> bool:
        return self.reset_request is not None

    def describe(self) -> dict[str, Any]:
        """What a run's config.json records of the profile."""
        return {"name": self.name, "source": self.source, "transport": self.transport,
                "limits": {f.name: getattr(self.limits, f.name) for f in fields(Limits)},
                "limits_off_reason": self.limits_off_reason}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _range(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ProfileError(f"{where}: expected [low, high], got {value!r}")
    low, high = _number(value[0], where), _number(value[1], where)
    if low >= high:
        raise ProfileError(f"{where}: low {low} must be below high {high}")
    return low, high


def _limits(raw: Any, where: str) -> Limits:
    if raw is None:
        return Limits()
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: expected a mapping")
    known = {f.name for f in fields(Limits)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ProfileError(f"{where}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(known))}")
    out: dict[str, Any] = {}
    if "enabled" in raw:
        if not isinstance(raw["enabled"], bool):
            raise ProfileError(f"{where}.enabled: expected true or false")
        out["enabled"] = raw["enabled"]
    if "workspace" in raw:
        box = raw["workspace"]
        if not isinstance(box, dict) or set(box) != {"x", "y", "z"}:
            raise ProfileError(f"{where}.workspace: expected x, y and z ranges")
        out["workspace"] = {k: _range(box[k], f"{where}.workspace.{k}") for k in "xyz"}
    if "gripper_width_m" in raw:
        out["gripper_width_m"] = _range(raw["gripper_width_m"], f"{where}.gripper_width_m")
    for key in ("max_step_m", "max_speed_mps", "max_state_age_s", "command_timeout_s"):
        if key in raw:
            value = _number(raw[key], f"{where}.{key}")
            if value <= 0:
                raise ProfileError(f"{where}.{key}: must be positive, got {value}")
            out[key] = value
    return Limits(**out)


def load_profile(path: str | Path | None = None) -> RosProfile:
    """A profile from YAML (default: the simulator node's), checked: unknown keys, missing topics, bad limits
    and limits turned off without a reason are errors naming the file and key (and the line, for YAML)."""
    import yaml

    path = Path(path) if path is not None else DEFAULT_PROFILE
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml")))
        raise ProfileError(f"no ROS profile {path} (shipped: {shipped}, in {PROFILES})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ProfileError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(raw, dict) or "name" not in raw:
        raise ProfileError(f"{path}: expected a mapping with at least `name`")
    if "extends" in raw:  # another profile's keys, these on top (limits merged key by key)
        base_path = PROFILES / f"{raw['extends']}.yaml" if "/" not in str(raw["extends"]) else Path(raw["extends"])
        if not base_path.is_file():
            raise ProfileError(f"{path}: extends {raw['extends']!r}, which is not a profile")
        base = yaml.safe_load(base_path.read_text(encoding="utf-8"))
        raw = {**base, **{k: v for k, v in raw.items() if k != "extends"},
               "limits": {**(base.get("limits") or {}), **(raw.get("limits") or {})}}
    known = {f.name for f in fields(RosProfile)} - {"source"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ProfileError(f"{path}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(known))}")
    values = dict(raw)
    if values.get("transport", "ros1") not in ("ros1", "ros2"):
        raise ProfileError(f"{path}: transport must be ros1 or ros2, got {values['transport']!r}")
    if not isinstance(values.get("loopback", False), bool):
        raise ProfileError(f"{path}: loopback must be true or false")
    values["limits"] = _limits(raw.get("limits"), f"{path}: limits")
    cams = raw.get("cameras") or []
    if not isinstance(cams, list) or not cams:
        raise ProfileError(f"{path}: cameras: expected a list of at least one camera")
    cameras = []
    for i, cam in enumerate(cams):
        where = f"{path}: cameras[{i}]"
        if not isinstance(cam, dict):
            raise ProfileError(f"{where}: expected a mapping")
        missing = [k for k in ("name", "color", "depth", "info", "frame") if not isinstance(cam.get(k), str)]
        if missing:
            raise ProfileError(f"{where}: missing {', '.join(missing)}")
        pose = cam.get("pose")
        if pose is not None and (not isinstance(pose, list) or len(pose) != 7):
            raise ProfileError(f"{where}.pose: expected [x, y, z, qx, qy, qz, qw]")
        cameras.append(CameraTopics(cam["name"], cam["color"], cam["depth"], cam["info"], cam["frame"],
                                    tuple(_number(v, f"{where}.pose") for v in pose) if pose else None))
    values["cameras"] = tuple(cameras)
    names = {c.name for c in cameras}
    if values.get("main_camera", "top") not in names:
        raise ProfileError(f"{path}: main_camera {values.get('main_camera', 'top')!r} is not one of the cameras")
    if "perception_cameras" in values:
        chosen = values["perception_cameras"]
        if not isinstance(chosen, list) or not chosen or not set(chosen) <= names:
            raise ProfileError(f"{path}: perception_cameras must name some of the cameras ({', '.join(sorted(names))})")
        values["perception_cameras"] = tuple(chosen)
    for key in ("arm_joints", "finger_joints"):
        if key in values:
            values[key] = tuple(values[key])
    if "home" in values:
        if not isinstance(values["home"], list) or len(values["home"]) != 3:
            raise ProfileError(f"{path}: home: expected [x, y, z]")
        values["home"] = tuple(_number(v, f"{path}: home") for v in values["home"])
    if not values["limits"].enabled and not values.get("limits_off_reason"):
        raise ProfileError(f"{path}: limits.enabled is false without limits_off_reason; a profile that turns the "
                           "safety limits off must say why (the run's config records it)")
    return RosProfile(**values, source=str(path))
