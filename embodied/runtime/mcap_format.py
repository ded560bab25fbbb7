"""Episodes as MCAP logs (the rosbag2 container, opened by Foxglove) of ROS 2-typed messages, one file per
episode, written with the ``mcap`` and ``mcap-ros2-support`` wheels and read back with the ROS 2 decoder.

Topics: ``/joint_states`` (JointState), ``/camera/{top,side}/image_raw`` (Image, rgb8),
``/camera/top/depth`` (Image, 32FC1, metres), ``/camera/*/camera_info`` (CameraInfo), ``/tf`` (the hand and
every object in ``world``), ``/tf_static`` (the cameras' optical frames), ``/controller/target``
(PoseStamped: what the controller tracked), ``/gripper/target`` (Float64, the finger gap), and as JSON strings
``/commands`` (each Robot API call), ``/skill_calls`` (each skill call with its result) and ``/episode``
(instruction at the start, outcome at the end). Log time is simulated time from the episode's start."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embodied.world.errors import EmbodiedError
from embodied.world.observation import PROPRIO_SLICES
from embodied.world.recording import EpisodeFrames

FORMAT_VERSION = "embodied-mcap-1"
WORLD = "world"
_SEP = "=" * 80

_HEADER = "builtin_interfaces/Time stamp\nstring frame_id"
_TIME = "int32 sec\nuint32 nanosec"
_DEPS = {
    "std_msgs/Header": _HEADER,
    "builtin_interfaces/Time": _TIME,
    "sensor_msgs/RegionOfInterest": "uint32 x_offset\nuint32 y_offset\nuint32 height\nuint32 width\nbool do_rectify",
    "geometry_msgs/TransformStamped": "std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/Transform transform",
    "geometry_msgs/Transform": "geometry_msgs/Vector3 translation\ngeometry_msgs/Quaternion rotation",
    "geometry_msgs/Vector3": "float64 x\nfloat64 y\nfloat64 z",
    "geometry_msgs/Point": "float64 x\nfloat64 y\nfloat64 z",
    "geometry_msgs/Quaternion": "float64 x\nfloat64 y\nfloat64 z\nfloat64 w",
    "geometry_msgs/Pose": "geometry_msgs/Point position\ngeometry_msgs/Quaternion orientation",
}
# each type: its own fields, and the message types it uses (in the order ROS 2 tools write them)
_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sensor_msgs/msg/JointState": ("std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\n"
                                   "float64[] effort", ("std_msgs/Header", "builtin_interfaces/Time")),
    "sensor_msgs/msg/Image": ("std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n"
                              "uint8 is_bigendian\nuint32 step\nuint8[] data",
                              ("std_msgs/Header", "builtin_interfaces/Time")),
    "sensor_msgs/msg/CameraInfo": ("std_msgs/Header header\nuint32 height\nuint32 width\nstring distortion_model\n"
                                   "float64[] d\nfloat64[9] k\nfloat64[9] r\nfloat64[12] p\nuint32 binning_x\n"
                                   "uint32 binning_y\nsensor_msgs/RegionOfInterest roi",
                                   ("std_msgs/Header", "builtin_interfaces/Time", "sensor_msgs/RegionOfInterest")),
    "tf2_msgs/msg/TFMessage": ("geometry_msgs/TransformStamped[] transforms",
                               ("geometry_msgs/TransformStamped", "std_msgs/Header", "builtin_interfaces/Time",
                                "geometry_msgs/Transform", "geometry_msgs/Vector3", "geometry_msgs/Quaternion")),
    "geometry_msgs/msg/PoseStamped": ("std_msgs/Header header\ngeometry_msgs/Pose pose",
                                      ("std_msgs/Header", "builtin_interfaces/Time", "geometry_msgs/Pose",
                                       "geometry_msgs/Point", "geometry_msgs/Quaternion")),
    "std_msgs/msg/Float64": ("float64 data", ()),
    "std_msgs/msg/String": ("string data", ()),
}
TOPICS = {"/joint_states": "sensor_msgs/msg/JointState", "/camera/top/image_raw": "sensor_msgs/msg/Image",
          "/camera/side/image_raw": "sensor_msgs/msg/Image", "/camera/top/depth": "sensor_msgs/msg/Image",
          "/camera/top/camera_info": "sensor_msgs/msg/CameraInfo",
          "/camera/side/camera_info": "sensor_msgs/msg/CameraInfo", "/tf": "tf2_msgs/msg/TFMessage",
          "/tf_static": "tf2_msgs/msg/TFMessage", "/controller/target": "geometry_msgs/msg/PoseStamped",
          "/gripper/target": "std_msgs/msg/Float64", "/commands": "std_msgs/msg/String",
          "/skill_calls": "std_msgs/msg/String", "/episode": "std_msgs/msg/String"}
PER_FRAME = ("/joint_states", "/camera/top/image_raw", "/camera/side/image_raw", "/camera/top/depth",
             "/camera/top/camera_info", "/camera/side/camera_info", "/tf", "/controller/target", "/gripper/target")


def msgdef(name: str) -> str:
    """The full ROS 2 message definition text of ``name``, with its dependencies, as rosbag2 stores it."""
    fields, deps = _TYPES[name]
    return "\n".join([fields, *(f"{_SEP}\nMSG: {d}\n{_DEPS[d]}" for d in deps)])


def _stamp(ns: int) -> dict[str, int]:
    return {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}


def _header(ns: int, frame: str) -> dict[str, Any]:
    return {"stamp": _stamp(ns), "frame_id": frame}


def _transform(ns: int, child: str, pose: np.ndarray | tuple) -> dict[str, Any]:
    x, y, z, qx, qy, qz, qw = (float(v) for v in pose)
    return {"header": _header(ns, WORLD), "child_frame_id": child,
            "transform": {"translation": {"x": x, "y": y, "z": z},
                          "rotation": {"x": qx, "y": qy, "z": qz, "w": qw}}}


def _frame_name(name: str) -> str:
    return name.replace(" ", "_")


def write_mcap(frames: EpisodeFrames, path: Path) -> dict[str, Any]:
    """Write one episode to ``path`` (through a temporary file, so a crash leaves no half log); returns its
    summary: frames, messages per topic, bytes."""
    from mcap_ros2.writer import Writer

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".mcap.part")
    counts: dict[str, int] = dict.fromkeys(TOPICS, 0)
    with tmp.open("wb") as f:
        writer = Writer(f)
        schemas = {t: writer.register_msgdef(t, msgdef(t)) for t in set(TOPICS.values())}
        writer.add_metadata("embodied", {"format_version": FORMAT_VERSION, "task_id": frames.task_id,
                                         "instruction": frames.instruction, "fps": str(frames.fps),
                                         "task": json.dumps(frames.task), "image_size": str(frames.image_size),
                                         "state_poses": json.dumps(frames.state_poses)})
        for k, (state, call) in enumerate(zip(frames.sim_states, _state_calls(frames), strict=True), 1):
            ns = int(round(call["t"] * 1e9))
            writer.add_attachment(0, ns, state_name(k), "application/x-bullet", state)

        def put(topic: str, message: dict[str, Any], ns: int) -> None:
            writer.write_message(topic, schemas[TOPICS[topic]], message, log_time=ns, publish_time=ns,
                                 sequence=counts[topic])
            counts[topic] += 1

        put("/episode", {"data": json.dumps({"event": "start", "task_id": frames.task_id,
                                             "instruction": frames.instruction, "fps": frames.fps})}, 0)
        put("/tf_static", {"transforms": [
            _transform(0, f"camera_{name}_optical_frame", (*c.position, *c.quaternion))
            for name, c in frames.cameras.items()]}, 0)
        infos = {name: _camera_info(c) for name, c in frames.cameras.items()}
        commands = iter(frames.commands)
        command = next(commands, None)
        calls = iter(frames.calls)
        call = next(calls, None)
        for i, t in enumerate(frames.timestamps):
            ns = int(round(t * 1e9))
            while command is not None and command["frame"] <= i:
                put("/commands", {"data": json.dumps(command)}, int(round(command["t"] * 1e9)))
                command = next(commands, None)
            state = frames.state[i].astype(np.float64)
            put("/joint_states", {"header": _header(ns, "panda_link0"), "name": list(frames.joint_names),
                                  "position": state[PROPRIO_SLICES["joint_positions"]].tolist(),
                                  "velocity": state[PROPRIO_SLICES["joint_velocities"]].tolist(), "effort": []}, ns)
            for name, images in frames.images.items():
                frame = f"camera_{name}_optical_frame"
                img = images[i]
                put(f"/camera/{name}/image_raw", {"header": _header(ns, frame), "height": img.shape[0],
                                                  "width": img.shape[1], "encoding": "rgb8", "is_bigendian": 0,
                                                  "step": img.shape[1] * 3, "data": img.tobytes()}, ns)
                put(f"/camera/{name}/camera_info", {**infos[name], "header": _header(ns, frame)}, ns)
            depth = frames.depth["top"][i].astype("<f4")
            put("/camera/top/depth", {"header": _header(ns, "camera_top_optical_frame"), "height": depth.shape[0],
                                      "width": depth.shape[1], "encoding": "32FC1", "is_bigendian": 0,
                                      "step": depth.shape[1] * 4, "data": depth.tobytes()}, ns)
            hand = np.concatenate([state[PROPRIO_SLICES["ee_position"]], state[PROPRIO_SLICES["ee_quaternion"]]])
            put("/tf", {"transforms": [_transform(ns, "panda_hand_tcp", hand)] + [
                _transform(ns, _frame_name(o), frames.object_poses[i, k]) for k, o in enumerate(frames.objects)]}, ns)
            x, y, z, yaw, gap = (float(v) for v in frames.action[i])
            put("/controller/target", {"header": _header(ns, WORLD), "pose": {
                "position": {"x": x, "y": y, "z": z},
                "orientation": {"x": math.cos(yaw / 2), "y": math.sin(yaw / 2), "z": 0.0, "w": 0.0}}},
                ns)  # the hand points down (180 degrees about x), turned by yaw about z
            put("/gripper/target", {"data": gap}, ns)
            while call is not None and call["frame_end"] <= i + 1:
                put("/skill_calls", {"data": json.dumps(call)}, ns)
                call = next(calls, None)
        end = int(round(frames.timestamps[-1] * 1e9))
        for rest in (c for c in [command, *commands] if c is not None):
            put("/commands", {"data": json.dumps(rest)}, end)
        for rest in (c for c in [call, *calls] if c is not None):
            put("/skill_calls", {"data": json.dumps(rest)}, end)
        put("/episode", {"data": json.dumps({"event": "end", "success": frames.success, "outcome": frames.outcome,
                                             "reason": frames.reason})}, end)
        writer.finish()
    tmp.replace(path)
    return {"file": path.name, "frames": len(frames), "messages": counts, "bytes": path.stat().st_size}


def state_name(k: int) -> str:
    """The attachment holding the simulation after the ``k``-th skill call (from 1)."""
    return f"state_after_call_{k:03d}.bullet"


def _state_calls(frames: EpisodeFrames) -> list[dict[str, Any]]:
    return [c for c in frames.calls if "state" in c]


def read_state(path: Path, step: int) -> tuple[dict[str, Any], int, bytes, dict[str, list[float]]]:
    """From a log `write_mcap` wrote: the task, image size, the simulation after skill call ``step`` and
    every object's pose then (for `embodied replay`)."""
    from mcap.reader import make_reader

    try:
        with path.open("rb") as f:
            reader = make_reader(f)
            meta = next((m.metadata for m in reader.iter_metadata() if m.name == "embodied"), None)
            attachments = {a.name: a.data for a in reader.iter_attachments()}
    except Exception as e:  # noqa: BLE001 - any failure here means: not a log of ours
        raise EmbodiedError(f"{path}: not a readable MCAP log ({type(e).__name__}: {e})") from None
    if meta is None or "task" not in meta:
        raise EmbodiedError(f"{path}: no embodied metadata; record it with `embodied record --format mcap`")
    poses = json.loads(meta["state_poses"])
    if not 1 <= step <= len(poses) or state_name(step) not in attachments:
        raise EmbodiedError(f"{path} has no state after skill call {step}; it has 1..{len(poses)}")
    return json.loads(meta["task"]), int(meta["image_size"]), bytes(attachments[state_name(step)]), poses[step - 1]


def _camera_info(c: Any) -> dict[str, Any]:
    k = [c.fx, 0.0, c.cx, 0.0, c.fy, c.cy, 0.0, 0.0, 1.0]
    return {"height": c.height, "width": c.width, "distortion_model": "plumb_bob", "d": [0.0] * 5, "k": k,
            "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            "p": [c.fx, 0.0, c.cx, 0.0, 0.0, c.fy, c.cy, 0.0, 0.0, 0.0, 1.0, 0.0], "binning_x": 0, "binning_y": 0,
            "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False}}


def read_messages(path: Path | str, topics: Sequence[str] | None = None) -> Iterator[tuple[str, int, Any]]:
    """Every message of a log in file order, decoded by the ROS 2 decoder: (topic, log time ns, message)."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _, channel, message, decoded in reader.iter_decoded_messages(topics=topics, log_time_order=False):
            yield channel.topic, message.log_time, decoded


def check_mcap(path: Path, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a log back with the ROS 2 decoder: every per-frame topic has one message per frame, log times
    never go backwards, the episode starts and ends; with ``expect`` (what `write_mcap` returned), the counts
    match it. Raises `EmbodiedError` naming the first thing wrong."""
    counts: dict[str, int] = {}
    last, events = -1, []
    try:
        for topic, t, message in read_messages(path):
            if topic in PER_FRAME:
                if t < last:
                    raise EmbodiedError(f"{path}: {topic} goes back in time at message {counts.get(topic)}")
                last = t
            counts[topic] = counts.get(topic, 0) + 1
            if topic == "/episode":
                events.append(json.loads(message.data)["event"])
    except EmbodiedError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding failure means a broken log
        raise EmbodiedError(f"{path}: cannot be read back with the ROS 2 decoder ({type(e).__name__}: {e})") from None
    n = counts.get("/joint_states", 0)
    uneven = {t: counts.get(t, 0) for t in PER_FRAME if counts.get(t, 0) != n}
    if n == 0 or uneven:
        raise EmbodiedError(f"{path}: {n} joint states but {uneven or 'no frames'}")
    if events != ["start", "end"]:
        raise EmbodiedError(f"{path}: episode events {events}, expected start then end")
    if expect is not None and expect.get("frames") != n:
        raise EmbodiedError(f"{path}: {n} frames read back, {expect.get('frames')} written")
    return {"frames": n, "messages": counts}
