"""The ROS 2 transport, on the DDS that ROS 2 runs on (Eclipse Cyclone DDS, the ``cyclonedds`` wheel), with
ROS 2's wire conventions: topic ``rt/<name>``, types ``<pkg>::msg::dds_::<Type>_`` laid out as the ROS 2
message definitions, reliable delivery, and transient-local durability for latched topics. There is no
rclpy here, so this was tested between two processes of ours on loopback, never against a real ROS 2 node."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from embodied.ros.transport import TransportError

log = logging.getLogger(__name__)

LOOPBACK = ("<CycloneDDS><Domain><General><Interfaces><NetworkInterface name='lo'/></Interfaces>"
            "<AllowMulticast>false</AllowMulticast></General><Discovery><ParticipantIndex>auto</ParticipantIndex>"
            "<Peers><Peer address='127.0.0.1'/></Peers></Discovery></Domain></CycloneDDS>")


def _types() -> dict[str, Any]:
    """Each kind's DDS type, encoder from plain values and decoder back (cyclonedds is optional: loaded here)."""
    from embodied.ros.ros2_types import (
        Bool,
        CameraInfo,
        Header,
        Image,
        JointState,
        Point,
        Pose,
        PoseStamped,
        Quaternion,
        String,
        TFMessage,
        Time,
        Transform,
        TransformStamped,
        Vector3,
    )

    def header(v: dict) -> Any:
        t = max(float(v["stamp"]), 0.0)
        sec = int(t)
        return Header(Time(sec, int(round((t - sec) * 1e9)) % 1_000_000_000), v.get("frame", ""))

    def stamp(h: Any) -> dict:
        return {"stamp": h.stamp.sec + h.stamp.nanosec * 1e-9, "frame": h.frame_id}

    def enc_tf(v: list) -> Any:
        return TFMessage([TransformStamped(header({"stamp": t["stamp"], "frame": t["parent"]}), t["child"],
                                           Transform(Vector3(*map(float, t["translation"])),
                                                     Quaternion(*map(float, t["rotation"])))) for t in v])

    def dec_tf(m: Any) -> list:
        return [{"stamp": stamp(t.header)["stamp"], "parent": t.header.frame_id, "child": t.child_frame_id,
                 "translation": (t.transform.translation.x, t.transform.translation.y, t.transform.translation.z),
                 "rotation": (t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
                              t.transform.rotation.w)} for t in m.transforms]

    return {
        "joint_state": (JointState,
                        lambda v: JointState(header(v), list(v["name"]), [float(x) for x in v["position"]],
                                             [float(x) for x in v.get("velocity", [])], []),
                        lambda m: {**stamp(m.header), "name": list(m.name), "position": list(m.position),
                                   "velocity": list(m.velocity)}),
        "pose": (PoseStamped,
                 lambda v: PoseStamped(header(v), Pose(Point(*map(float, v["position"])),
                                                       Quaternion(*map(float, v["orientation"])))),
                 lambda m: {**stamp(m.header), "position": (m.pose.position.x, m.pose.position.y, m.pose.position.z),
                            "orientation": (m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z,
                                            m.pose.orientation.w)}),
        "string": (String, lambda v: String(v), lambda m: str(m.data)),
        "bool": (Bool, lambda v: Bool(bool(v)), lambda m: bool(m.data)),
        "image": (Image,
                  lambda v: Image(header(v), v["height"], v["width"], v["encoding"], 0, v["step"], bytes(v["data"])),
                  lambda m: {**stamp(m.header), "height": m.height, "width": m.width, "encoding": m.encoding,
                             "step": m.step, "data": bytes(m.data)}),
        "camera_info": (CameraInfo,
                        lambda v: CameraInfo(header(v), v["height"], v["width"], "plumb_bob", [0.0] * 5,
                                             [float(x) for x in v["K"]], [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
                                             [float(x) for x in v["P"]]),
                        lambda m: {**stamp(m.header), "height": m.height, "width": m.width, "K": list(m.k),
                                   "P": list(m.p)}),
        "tf": (TFMessage, enc_tf, dec_tf),
    }


class Ros2:
    """A DDS participant on ``ROS_DOMAIN_ID`` (default 0) speaking ROS 2's conventions. ``loopback``: only
    127.0.0.1 (no multicast; for the simulator node and tests), unless ``CYCLONEDDS_URI`` says otherwise."""

    def __init__(self, name: str, loopback: bool = False) -> None:
        if loopback:
            os.environ.setdefault("CYCLONEDDS_URI", LOOPBACK)
        try:
            from cyclonedds.domain import DomainParticipant
        except ImportError:
            raise TransportError("the ROS 2 transport needs Cyclone DDS: pip install 'embodied[ros2]' "
                                 "(`make setup` does)") from None
        self.name = name
        self.domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
        self.dp = DomainParticipant(self.domain)
        self._types = _types()
        from cyclonedds.core import WaitSet

        self._writers: list[Any] = []
        self._readers: list[tuple[Any, Any, Callable[[Any], Any], Callable[[Any], None], str]] = []
        self._required: list[Any] = []
        self._topics: dict[tuple[str, str], Any] = {}
        self._waitset = WaitSet(self.dp)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def _topic(self, topic: str, kind: str) -> Any:
        from cyclonedds.topic import Topic

        key = (topic, kind)
        if key not in self._topics:
            self._topics[key] = Topic(self.dp, "rt" + (topic if topic.startswith("/") else "/" + topic),
                                      self._types[kind][0])
        return self._topics[key]

    @staticmethod
    def _qos(latch: bool) -> Any:
        from cyclonedds.core import Policy, Qos
        from cyclonedds.util import duration

        policies = [Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepLast(20)]
        if latch:
            policies.append(Policy.Durability.TransientLocal)
        return Qos(*policies)

    def publisher(self, topic: str, kind: str, latch: bool = False) -> Callable[[Any], None]:
        from cyclonedds.pub import DataWriter

        writer = DataWriter(self.dp, self._topic(topic, kind), qos=self._qos(latch))
        self._writers.append(writer)
        encode = self._types[kind][1]
        return lambda value: writer.write(encode(value))

    def subscribe(self, topic: str, kind: str, callback: Callable[[Any], None], required: bool = True,
                  latched: bool = False) -> None:
        """``callback`` runs on this participant's dispatcher thread for every sample, in order; ``latched``
        also takes what a transient-local writer sent before (a volatile writer would not match such a
        reader)."""
        from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState
        from cyclonedds.sub import DataReader

        reader = DataReader(self.dp, self._topic(topic, kind), qos=self._qos(latched))
        condition = ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any)
        with self._lock:
            self._readers.append((reader, condition, self._types[kind][2], callback, topic))
            self._waitset.attach(condition)
        if required:
            self._required.append(reader)
        if self._thread is None:
            self._thread = threading.Thread(target=self._dispatch, name=f"ros2:{self.name}", daemon=True)
            self._thread.start()

    def _dispatch(self) -> None:
        """One thread for every reader: sleep on a wait set until data arrives, then hand it out."""
        from cyclonedds.util import duration

        while not self._closed:
            self._waitset.wait(duration(milliseconds=100))
            with self._lock:
                readers = list(self._readers)
            for reader, condition, decode, callback, topic in readers:
                try:
                    samples = reader.take(N=64, condition=condition)
                except Exception:  # noqa: BLE001 - the participant closed under us
                    return
                for sample in samples:
                    info = getattr(sample, "sample_info", None)
                    if info is not None and not info.valid_data:
                        continue
                    try:
                        callback(decode(sample))
                    except Exception:  # noqa: BLE001 - one bad message must not stop the topic
                        log.exception("callback on %s failed", topic)

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """True once every writer has a matched reader and every required reader a matched writer."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(len(w.get_matched_subscriptions()) > 0 for w in self._writers) and \
                    all(len(r.get_matched_publications()) > 0 for r in self._required):
                return True
            time.sleep(0.02)
        return False

    def check(self) -> None:
        """DDS has no master to lose: peers are found by discovery."""

    def close(self) -> None:
        self._closed = True
        with self._lock:
            self._readers, self._writers, self._required = [], [], []
