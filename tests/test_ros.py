"""The ROS bridge against a real ROS 1 master (rosmaster on 127.0.0.1) and the simulator node in another
process: the agent's episodes over the bridge, every safety case with its message (and the node's own log
showing that no refused command reached it), the e-stop, dry runs, a node killed mid-episode and a
restarted master."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embodied.world.tasks import save_tasks
from envs.generator import generate

ROS = shutil.which("rosmaster") is not None
if not ROS and os.environ.get("CI"):
    pytest.fail("ROS 1 is not installed; `make setup` installs it", pytrace=False)
pytestmark = pytest.mark.skipif(not ROS, reason="ROS 1 not installed (`make setup` installs python3-rospy etc.)")

FAST = ["--planner", "oracle", "--state", "ground-truth", "--affordance", "analytic", "--success", "analytic",
        "--no-library"]
EXE = [sys.executable, "-m", "embodied.cli"]


class SimNode:
    """`embodied ros sim` in a subprocess on ``uri``, its command log at ``log``."""

    def __init__(self, uri: str | None, log: Path, profile: Path | None = None, env: dict | None = None) -> None:
        self.uri, self.log = uri, log
        where = ["--master", uri] if uri else ["--profile", str(profile)]
        self.proc = subprocess.Popen([*EXE, "ros", "sim", *where, "--log", str(log)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
        line = self.proc.stdout.readline()  # the node prints where it is (master URI, DDS domain) once it serves
        if "ROS_MASTER_URI" not in line and "ROS_DOMAIN_ID" not in line:
            raise RuntimeError(f"the simulator node did not start: {line}{self.proc.stderr.read()}")

    def goals(self) -> list[dict]:
        rows = [json.loads(x) for x in self.log.read_text().splitlines()] if self.log.exists() else []
        return [r for r in rows if r["event"] == "goal"]

    def events(self, name: str) -> list[dict]:
        return [r for r in map(json.loads, self.log.read_text().splitlines()) if r["event"] == name]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # SIGINT may be ignored in a background job
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def master():
    from embodied.ros.transport import start_master

    proc, uri = start_master()
    yield uri
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def sim(master, tmp_path_factory):
    node = SimNode(master, tmp_path_factory.mktemp("ros") / "sim.jsonl")
    yield node
    node.stop()


@pytest.fixture(scope="module")
def transport(master):
    from embodied.ros.transport import Ros1

    return Ros1("embodied_test", master)


def _robot(transport, sim, profile=None, **kw):
    from embodied.ros.profile import load_profile
    from embodied.ros.robot import RosRobot

    robot = RosRobot(transport, load_profile(profile), **kw)
    robot.wait_ready()
    return robot


def test_the_agent_runs_over_the_bridge_with_the_physics_of_in_process(sim, tmp_path) -> None:
    from embodied.cli import main

    tasks = [generate("block_in_bowl", 1), generate("stack_two", 2)]
    save_tasks(tasks, tmp_path / "t.jsonl")
    code = subprocess.run([*EXE, "eval", "--tasks", str(tmp_path / "t.jsonl"), *FAST, "--robot", "ros", "--master",
                           sim.uri, "--out", str(tmp_path / "ros")], capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr[-2000:]
    assert main(["eval", "--tasks", str(tmp_path / "t.jsonl"), *FAST, "--out", str(tmp_path / "local")]) == 0
    rows = {}
    for where in ("ros", "local"):
        rows[where] = {r["id"]: r for r in map(json.loads, (tmp_path / where / "results.jsonl").read_text().splitlines())}
    for t in tasks:
        ros, local = rows["ros"][t.id], rows["local"][t.id]
        assert ros["success"] and local["success"]
        assert ros["physics_steps"] == local["physics_steps"]  # the same physics, over a real master
        assert ros["bridge_commands"] > 0 and len(ros["bridge_ms"]) == ros["bridge_commands"]
    config = json.loads((tmp_path / "ros" / "config.json").read_text())
    assert config["robot"] == "ros" and config["ros_profile"]["limits"]["enabled"]


def test_every_safety_case_is_refused_with_its_reason_and_never_reaches_the_robot(sim, transport, tmp_path) -> None:
    from embodied.ros.check import safety_cases
    from embodied.ros.profile import PROFILES

    robot = _robot(transport, sim)
    short = tmp_path / "short.yaml"  # a profile of our own with a short step limit
    short.write_text((PROFILES / "sim.yaml").read_text().replace("max_step_m: 0.9", "max_step_m: 0.05"))
    cases = safety_cases(robot, lambda: len(sim.goals()), short_step=_robot(transport, sim, short),
                         pause=lambda on: sim.proc.send_signal(signal.SIGSTOP if on else signal.SIGCONT))
    said = {c["case"]: c["message"] for c in cases}
    assert "outside the workspace z" in said["pose outside the workspace"]
    assert "not a finite number" in said["NaN in the target"]
    assert "speed 5.000 m/s is outside" in said["too fast"]
    assert "gripper width 0.2000 m is outside" in said["gripper too wide"]
    assert "step is longer than the limit 0.050 m" in said["step too large"]
    assert "s old (limit 0.50 s)" in said["stale state"]
    assert all(c["refused"] and not c["halt"] for c in cases)
    assert sum(c["reached_robot"] for c in cases) == 0  # the node's own log: no refused command reached it
    before = len(sim.goals())
    assert robot.move_to((0.4, 0.0, 0.9), 0.0, 0.5) is True and robot.take_fault() is None
    assert len(sim.goals()) == before + 1  # and an allowed one does


def test_a_dry_run_sends_nothing(sim, transport) -> None:
    from embodied.ros.check import dry_run_case

    robot = _robot(transport, sim, dry_run=True)
    assert dry_run_case(robot, lambda: len(sim.goals())) == {"case": "dry run", "commands_logged": 2, "sent": 0,
                                                             "reached_robot": 0}
    assert robot.move_to((0.5, 0.0, 0.3)) is False and "workspace" in robot.take_fault().reason  # still checked


def test_the_e_stop_halts_a_motion_within_100_ms_of_simulated_time(sim, transport) -> None:
    from embodied.ros.check import estop_case

    robot = _robot(transport, sim)
    estop = transport.publisher("/embodied/estop", "bool")
    transport.wait_connected(3.0)
    out = estop_case(robot, lambda: len(sim.goals()), estop, lambda: sim.events("estop_rest"))
    assert not out["move_finished"] and out["halt"] and "e-stop" in out["message"]
    assert out["stop_ms_simulated"] <= 100.0
    assert abs(out["hand_when_stopped"][0] - 0.70) > 0.05  # stopped on the way, not at the target
    assert out["refused_while_engaged"] and out["moves_after_release"]


def test_ros_move_cli_exits_2_naming_the_limit(sim) -> None:
    out = subprocess.run([*EXE, "ros", "move", "--master", sim.uri, "--to", "0.5,0,0.3"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "outside the workspace z" in out.stdout + out.stderr
    dry = subprocess.run([*EXE, "ros", "move", "--master", sim.uri, "--to", "0.45,0,0.9", "--dry-run"],
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and '"sent": 0' in dry.stdout


def test_a_restarted_master_is_named(tmp_path) -> None:
    """A bridge whose master was restarted fails clearly at the next episode (rospy does not register again)."""
    from embodied.ros.transport import start_master

    proc, uri = start_master()
    node = SimNode(uri, tmp_path / "sim.jsonl")
    script = tmp_path / "bridge.py"
    script.write_text(f"""
import sys, time
from embodied.ros.profile import load_profile
from embodied.ros.robot import RosEnv, RosRobot
from embodied.ros.transport import Ros1
from envs.generator import generate
robot = RosRobot(Ros1("bridge", "{uri}"), load_profile())
env = RosEnv(robot)
env.reset(options={{"task": generate("block_in_bowl", 1)}})
print("ready", flush=True)
sys.stdin.readline()
try:
    env.reset(options={{"task": generate("block_in_bowl", 2)}})
    print("no error")
except Exception as e:
    print("error:", e)
""")
    bridge = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).parent.parent)
    try:
        assert bridge.stdout.readline().strip() == "ready"
        proc.terminate()
        proc.wait(10)
        port = int(uri.rsplit(":", 1)[1])
        proc, _ = start_master(port)  # the same address, a new master
        bridge.stdin.write("\n")
        bridge.stdin.flush()
        said = bridge.stdout.readline()
        assert "was restarted" in said and "restart the bridge" in said
    finally:
        bridge.kill()
        node.stop()
        proc.terminate()
        proc.wait(10)


def test_a_node_killed_mid_episode_fails_the_episode_within_2_s(tmp_path) -> None:
    from embodied.ros.transport import start_master

    proc, uri = start_master()
    node = SimNode(uri, tmp_path / "sim.jsonl")
    save_tasks([generate("stack_three", 3), generate("block_in_bowl", 4)], tmp_path / "t.jsonl")
    evaluation = subprocess.Popen([*EXE, "eval", "--tasks", str(tmp_path / "t.jsonl"), *FAST, "--robot", "ros",
                                   "--master", uri, "--out", str(tmp_path / "ev")], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 120
        while len(node.goals()) < 3 and time.monotonic() < end:  # in the middle of the first episode
            time.sleep(0.01)
        node.proc.kill()
        killed = time.monotonic()
        rows_file = tmp_path / "ev" / "results.jsonl"
        while not (rows_file.exists() and rows_file.read_text().strip()) and time.monotonic() < killed + 10:
            time.sleep(0.02)
        first_row = time.monotonic() - killed
        out, err = evaluation.communicate(timeout=60)
        rows = [json.loads(x) for x in rows_file.read_text().splitlines()]
        assert first_row < 2.0, first_row
        assert rows[0]["outcome"] == "failed" and "stopped answering" in rows[0]["reason"]
        assert evaluation.returncode == 2 and "simulator node" in out + err
        report = json.loads((tmp_path / "ev" / "report.json").read_text())
        assert report["n"] == len(rows) and report["complete"] is False
    finally:
        evaluation.kill()
        node.stop()
        proc.terminate()
        proc.wait(10)


def test_the_ros2_transport_runs_the_agent_over_dds_on_loopback(tmp_path) -> None:
    """ROS 2's wire conventions over Cyclone DDS between two processes of ours (no rclpy here)."""
    pytest.importorskip("cyclonedds")
    from embodied.cli import main
    from embodied.ros.profile import PROFILES

    profile = PROFILES / "sim_ros2.yaml"
    env = {**os.environ, "ROS_DOMAIN_ID": str(100 + os.getpid() % 100)}  # a domain of this test's own
    node = SimNode(None, tmp_path / "sim.jsonl", profile, env)
    tasks = [generate("block_on_block", 4)]
    save_tasks(tasks, tmp_path / "t.jsonl")
    try:
        ran = subprocess.run([*EXE, "eval", "--tasks", str(tmp_path / "t.jsonl"), *FAST, "--robot", "ros",
                              "--ros-profile", str(profile), "--out", str(tmp_path / "ros")], capture_output=True,
                             text=True, timeout=300, env=env)
        assert ran.returncode == 0, ran.stderr[-2000:]
        refused = subprocess.run([*EXE, "ros", "move", "--profile", str(profile), "--to", "0.5,0,0.3"],
                                 capture_output=True, text=True, timeout=60, env=env)
        assert refused.returncode == 2 and "outside the workspace z" in refused.stdout + refused.stderr
    finally:
        node.stop()
    assert main(["eval", "--tasks", str(tmp_path / "t.jsonl"), *FAST, "--out", str(tmp_path / "local")]) == 0
    ros, local = (json.loads((tmp_path / w / "results.jsonl").read_text().splitlines()[0]) for w in ("ros", "local"))
    assert ros["success"] and ros["physics_steps"] == local["physics_steps"]
    assert all(g["position"][2] >= 0.6 for g in node.goals() if g["kind"] == "move_to")  # the refused one never came
