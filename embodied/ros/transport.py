"""How the bridge and the simulator node talk ROS, kept small so other transports fit: publish and
subscribe plain Python values (dicts, bytes, strings) by message kind; the transport converts them to and
from its message types. `Ros1` uses rospy against a ROS 1 master (Debian's python3-rospy)."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from embodied.world.errors import EmbodiedError

log = logging.getLogger(__name__)

DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
# message kinds the bridge uses, by the ROS type each stands for
KINDS = {"joint_state": "sensor_msgs/JointState", "pose": "geometry_msgs/PoseStamped", "string": "std_msgs/String",
         "bool": "std_msgs/Bool", "image": "sensor_msgs/Image", "camera_info": "sensor_msgs/CameraInfo",
         "tf": "tf2_msgs/TFMessage"}


class TransportError(EmbodiedError):
    """The transport cannot work: no ROS installed, no master, lost master."""


class Transport(Protocol):
    """Publish and subscribe by topic and message kind (`KINDS`)."""

    def publisher(self, topic: str, kind: str, latch: bool = False) -> Callable[[Any], None]: ...

    def subscribe(self, topic: str, kind: str, callback: Callable[[Any], None], required: bool = True,
                  latched: bool = False) -> None: ...

    def wait_connected(self, timeout: float = 5.0) -> bool: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


def import_rospy() -> Any:
    """rospy from the environment, else from Debian's packages (appended to the path, so this venv's own
    packages win); a clear error when neither has it."""
    try:
        import rospy
    except ImportError:
        if os.path.isdir(DEBIAN_DIST_PACKAGES) and DEBIAN_DIST_PACKAGES not in sys.path:
            sys.path.append(DEBIAN_DIST_PACKAGES)
        try:
            import rospy
        except ImportError:
            raise TransportError("ROS 1 is not installed: apt-get install --no-install-recommends python3-rospy "
                                 "python3-rosmaster python3-sensor-msgs python3-geometry-msgs python3-tf2-msgs "
                                 "(`make setup` does)") from None
    return rospy


def master_pid(uri: str, timeout: float = 2.0) -> int | None:
    """The process id of the ROS master at ``uri``, or None when none answers within ``timeout``."""
    import socket
    import xmlrpc.client

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        code, _, pid = xmlrpc.client.ServerProxy(uri).getPid("/embodied_probe")
        return int(pid) if code == 1 else None
    except (OSError, xmlrpc.client.Error):
        return None
    finally:
        socket.setdefaulttimeout(old)


class Ros1:
    """A rospy node on the master at ``master_uri`` (default: ``$ROS_MASTER_URI``). rospy allows one node
    per process, so a process's transports share it."""

    _node: tuple[str, str] | None = None  # (master, name) of this process's node

    def __init__(self, name: str, master_uri: str | None = None) -> None:
        self.rospy = rospy = import_rospy()
        uri = master_uri or os.environ.get("ROS_MASTER_URI")
        if not uri:
            raise TransportError("no ROS master: set ROS_MASTER_URI (or pass --master URI; `embodied ros sim "
                                 "--master auto` starts one and prints it)")
        self.uri = uri
        self.pid = master_pid(uri)
        if self.pid is None:
            raise TransportError(f"no ROS master answers at {uri}; start one (roscore, or `embodied ros sim "
                                 "--master auto`) or point ROS_MASTER_URI at it")
        os.environ["ROS_MASTER_URI"] = uri
        if uri.startswith(("http://127.0.0.1", "http://localhost")):
            os.environ.setdefault("ROS_HOSTNAME", "127.0.0.1")  # a loopback master: stay on loopback
        if Ros1._node is None:
            rospy.init_node(name, anonymous=True, disable_signals=True, log_level=rospy.WARN)
            Ros1._node = (uri, name)
        elif Ros1._node[0] != uri:
            raise TransportError(f"this process already has a ROS node on {Ros1._node[0]}; rospy allows one")
        self._publishers: list[Any] = []
        self._subscribers: list[Any] = []
        self._required: list[Any] = []
        self._types = _ros1_types()

    def publisher(self, topic: str, kind: str, latch: bool = False) -> Callable[[Any], None]:
        msg_type, encode = self._types[kind]
        pub = self.rospy.Publisher(topic, msg_type, queue_size=20, latch=latch)
        self._publishers.append(pub)
        return lambda value: pub.publish(encode(value))

    def subscribe(self, topic: str, kind: str, callback: Callable[[Any], None], required: bool = True,
                  latched: bool = False) -> None:
        """``required``: `wait_connected` waits for a publisher (an e-stop topic may have none yet);
        ``latched`` is the publisher's business in ROS 1."""
        msg_type, decode = self._types[kind][0], _ros1_decoders()[kind]
        sub = self.rospy.Subscriber(topic, msg_type, lambda m: callback(decode(m)), queue_size=20)
        self._subscribers.append(sub)
        if required:
            self._required.append(sub)

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """True once every publisher has a subscriber and every subscription a publisher (or after
        ``timeout``: False); a message sent before its connection is up is lost."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(p.get_num_connections() > 0 for p in [*self._publishers, *self._required]):
                return True
            time.sleep(0.02)
        return False

    def check(self) -> None:
        """Fail clearly when the master is gone or was restarted (rospy does not register again with a new
        master: topics set up before keep flowing, new ones would not connect)."""
        pid = master_pid(self.uri, timeout=1.0)
        if pid is None:
            raise TransportError(f"the ROS master at {self.uri} is gone")
        if pid != self.pid:
            raise TransportError(f"the ROS master at {self.uri} was restarted (pid {self.pid} -> {pid}); this "
                                 "node is no longer registered with it: restart the bridge")

    def close(self) -> None:
        for s in self._subscribers:
            s.unregister()
        for p in self._publishers:
            p.unregister()
        self._subscribers, self._publishers, self._required = [], [], []


def _stamp(rospy: Any, t: float) -> Any:
    return rospy.Time.from_sec(max(t, 0.0))


def _ros1_types() -> dict[str, tuple[Any, Callable[[Any], Any]]]:
    """Each kind's ROS 1 message class and its encoder from plain values."""
    import rospy
    from geometry_msgs.msg import PoseStamped, TransformStamped
    from sensor_msgs.msg import CameraInfo, Image, JointState
    from std_msgs.msg import Bool, String
    from tf2_msgs.msg import TFMessage

    def joint_state(v: dict) -> Any:
        m = JointState(name=list(v["name"]), position=list(v["position"]), velocity=list(v.get("velocity", [])))
        m.header.stamp = _stamp(rospy, v["stamp"])
        return m

    def pose(v: dict) -> Any:
        m = PoseStamped()
        m.header.stamp, m.header.frame_id = _stamp(rospy, v["stamp"]), v.get("frame", "world")
        m.pose.position.x, m.pose.position.y, m.pose.position.z = v["position"]
        o = m.pose.orientation
        o.x, o.y, o.z, o.w = v["orientation"]
        return m

    def image(v: dict) -> Any:
        m = Image(height=v["height"], width=v["width"], encoding=v["encoding"], is_bigendian=0, step=v["step"],
                  data=v["data"])
        m.header.stamp, m.header.frame_id = _stamp(rospy, v["stamp"]), v["frame"]
        return m

    def camera_info(v: dict) -> Any:
        m = CameraInfo(height=v["height"], width=v["width"], distortion_model="plumb_bob", D=[0.0] * 5,
                       K=list(v["K"]), R=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], P=list(v["P"]))
        m.header.stamp, m.header.frame_id = _stamp(rospy, v["stamp"]), v["frame"]
        return m

    def tf(v: list) -> Any:
        out = TFMessage()
        for t in v:
            ts = TransformStamped()
            ts.header.stamp, ts.header.frame_id, ts.child_frame_id = _stamp(rospy, t["stamp"]), t["parent"], t["child"]
            tr, ro = ts.transform.translation, ts.transform.rotation
            tr.x, tr.y, tr.z = t["translation"]
            ro.x, ro.y, ro.z, ro.w = t["rotation"]
            out.transforms.append(ts)
        return out

    return {"joint_state": (JointState, joint_state), "pose": (PoseStamped, pose),
            "string": (String, lambda v: String(data=v)), "bool": (Bool, lambda v: Bool(data=bool(v))),
            "image": (Image, image), "camera_info": (CameraInfo, camera_info), "tf": (TFMessage, tf)}


def _ros1_decoders() -> dict[str, Callable[[Any], Any]]:
    """Each kind's decoder from a ROS 1 message to plain values (text from the robot side stays data)."""

    def header(m: Any) -> dict:
        return {"stamp": m.header.stamp.to_sec(), "frame": m.header.frame_id}

    return {
        "joint_state": lambda m: {**header(m), "name": list(m.name), "position": list(m.position),
                                  "velocity": list(m.velocity)},
        "pose": lambda m: {**header(m), "position": (m.pose.position.x, m.pose.position.y, m.pose.position.z),
                           "orientation": (m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z,
                                           m.pose.orientation.w)},
        "string": lambda m: str(m.data),
        "bool": lambda m: bool(m.data),
        "image": lambda m: {**header(m), "height": m.height, "width": m.width, "encoding": m.encoding,
                            "step": m.step, "data": bytes(m.data)},
        "camera_info": lambda m: {**header(m), "height": m.height, "width": m.width, "K": list(m.K),
                                  "P": list(m.P)},
        "tf": lambda m: [{"stamp": t.header.stamp.to_sec(), "parent": t.header.frame_id, "child": t.child_frame_id,
                          "translation": (t.transform.translation.x, t.transform.translation.y,
                                          t.transform.translation.z),
                          "rotation": (t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
                                       t.transform.rotation.w)} for t in m.transforms],
    }


def start_master(port: int | None = None) -> tuple[Any, str]:
    """A private ROS 1 master on 127.0.0.1 (a free port unless given): the process and its URI."""
    import shutil
    import socket
    import subprocess

    exe = shutil.which("rosmaster")
    if exe is None:
        raise TransportError("rosmaster is not installed (apt-get install python3-rosmaster; `make setup` does)")
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ROS_HOSTNAME": "127.0.0.1", "ROS_MASTER_URI": uri}
    proc = subprocess.Popen([exe, "--core", "-p", str(port), "-w", "3"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if master_pid(uri, timeout=0.5) is not None:
            return proc, uri
        if proc.poll() is not None:
            raise TransportError(f"rosmaster exited with code {proc.returncode} on port {port}")
        time.sleep(0.05)
    proc.kill()
    raise TransportError(f"rosmaster did not answer on {uri} within 10 s")


def make_transport(profile: Any, name: str, master_uri: str | None = None) -> Any:
    """The transport a profile names: ROS 1 on a master, or ROS 2 over DDS (no master)."""
    if profile.transport == "ros2":
        if master_uri:
            raise TransportError("ROS 2 has no master: drop --master (DDS finds peers by discovery; "
                                 "ROS_DOMAIN_ID picks the domain)")
        from embodied.ros.ros2 import Ros2

        return Ros2(name, loopback=profile.loopback)
    return Ros1(name, master_uri)
