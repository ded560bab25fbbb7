"""What the ROS bridge decides without ROS: profiles checked with clear errors, the safety layer's limits,
and a pinhole RGB-D view (a ROS camera's) that agrees with the simulator's own back-projection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embodied.ros.profile import PROFILES, ProfileError, load_profile
from embodied.ros.safety import Refused, Safety
from embodied.world.observation import View


def test_the_shipped_profiles_load() -> None:
    sim, ros2, franka = (load_profile(PROFILES / f"{n}.yaml") for n in ("sim", "sim_ros2", "franka_realsense"))
    assert sim.simulated and sim.limits.enabled and sim.main_camera == "main"
    assert ros2.transport == "ros2" and ros2.loopback and ros2.cameras == sim.cameras  # extends sim
    assert not franka.simulated and franka.cameras[0].depth.endswith("aligned_depth_to_color/image_raw")


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\ncameras: [{name: top, color: /c, depth: /d, info: /i, frame: f}]\nbogus: 1\n", "unknown key 'bogus'"),
    ("name: x\ncameras: []\n", "at least one camera"),
    ("name: x\ncameras: [{name: top, color: /c}]\n", "missing depth, info, frame"),
    ("name: x\ncameras: [{name: top, color: /c, depth: /d, info: /i, frame: f}]\nlimits: {enabled: false}\n",
     "without limits_off_reason"),
    ("name: x\ncameras: [{name: top, color: /c, depth: /d, info: /i, frame: f}]\nlimits: {max_speed_mps: -1}\n",
     "must be positive"),
    ("name: x\ncameras: [{name: top, color: /c, depth: /d, info: /i, frame: f}]\nlimits: {workspace: {x: [1, 0], "
     "y: [0, 1], z: [0, 1]}}\n", "low 1.0 must be below high 0.0"),
    ("name: x\n  cameras: [\n", "line 2"),
])
def test_a_bad_profile_is_named_with_what_is_wrong(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_profile(path)


def test_limits_turned_off_must_say_why_and_then_only_finite_numbers_are_checked(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("extends: sim\nname: bench\nlimits: {enabled: false}\nlimits_off_reason: a bench test\n")
    profile = load_profile(path)
    assert profile.describe()["limits_off_reason"] == "a bench test"
    safety = Safety(profile.limits)
    safety.check_move((5.0, 5.0, -1.0), 0.0, 9.0, (0.0, 0.0, 0.0))  # no box, step or speed limit now
    with pytest.raises(Refused, match="not a finite number"):
        safety.check_move((math.inf, 0.0, 0.8), 0.0, 0.3, None)


def test_the_safety_layer_names_each_limit() -> None:
    safety = Safety(load_profile().limits)
    safety.check_move((0.5, 0.0, 0.8), 0.3, 0.5, (0.45, 0.0, 0.9))
    for args, message in [(((0.5, 0.6, 0.8), 0.0, 0.5, None), "y=0.600 m is outside"),
                          (((0.5, 0.0, 0.8), 0.0, 0.0, None), "speed 0.000 m/s"),
                          (((0.5, 0.0, 0.8), math.nan, 0.5, None), "not a finite number")]:
        with pytest.raises(Refused, match=message):
            safety.check_move(*args)
    with pytest.raises(Refused, match="no joint state has arrived"):
        safety.check_fresh(None)
    with pytest.raises(Refused, match="0.90 s old"):
        safety.check_fresh(0.9)


def test_a_pinhole_view_matches_the_simulators_back_projection(env) -> None:
    """The bridge builds views from depth + camera_info + tf, as from a real camera; with the simulator
    node's intrinsics they agree with the in-process views point for point."""
    import pybullet as p

    from envs.generator import generate
    from envs.record import camera_info
    from envs.sim import TINY_RENDERER_PIXEL_OFFSET, perception_cameras

    task = generate("stack_three", 3)
    env.reset(seed=task.seed, options={"task": task})
    du, dv = TINY_RENDERER_PIXEL_OFFSET
    for cam in perception_cameras(64):
        rgb, depth, zbuf = env.world.render(cam)
        view, proj = cam.matrices()
        sim = View.from_zbuffer("sim", rgb, zbuf, view, proj, TINY_RENDERER_PIXEL_OFFSET)
        ci = camera_info(cam)
        k = np.array([[ci.fx, 0, ci.width / 2 - du], [0, ci.fy, ci.height / 2 - dv], [0, 0, 1]])
        pose = np.eye(4)
        pose[:3, :3] = np.asarray(p.getMatrixFromQuaternion(ci.quaternion)).reshape(3, 3)
        pose[:3, 3] = ci.position
        d = depth.copy()
        d[zbuf >= 0.9999] = np.nan
        ros = View.from_depth("ros", rgb, d, k, pose)
        seen = ~np.isnan(sim.points[:, 0])
        assert np.array_equal(seen, ~np.isnan(ros.points[:, 0]))
        assert np.abs(sim.points[seen] - ros.points[seen]).max() < 1e-5
        assert np.allclose(sim.eye, ros.eye)
