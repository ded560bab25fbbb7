"""Videos a person can read: the robot's left is the image's left, the named places and the caption are
drawn, 640x480 played back in real time."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embodied.cli import main
from embodied.world.scene import LOCATIONS, TABLE_Z
from envs.video import VIDEO_FPS, VideoRecorder, project, video_camera


def test_the_robots_left_is_the_images_left() -> None:
    cam = video_camera()
    uv = dict(zip(LOCATIONS, project(cam, np.array([(x, y, TABLE_Z) for x, y in LOCATIONS.values()])), strict=True))
    assert uv["top left corner"][0] < uv["top right corner"][0]
    assert uv["bottom left corner"][0] < uv["bottom right corner"][0]
    assert uv["top left corner"][1] < uv["bottom left corner"][1]  # far is up
    assert all(0 <= u < cam.width and 0 <= v < cam.height for u, v in uv.values())  # every place in view


def test_places_and_caption_are_drawn(env) -> None:
    recorder = VideoRecorder(env, caption="put the red block in the green bowl")
    plain = np.full((480, 640, 3), 200, np.uint8)
    drawn = recorder.annotate(plain, "step 1: pick up the red block")
    assert (drawn[:30] < 60).mean() > 0.5 and (drawn[:30] > 200).any()  # a dark band with light text
    assert (drawn[-30:] < 60).mean() > 0.5
    u, v = (int(round(c)) for c in recorder.places[0])
    assert (drawn[v - 6:v + 7, u - 6:u + 7] < 100).any()  # the place's ring


@pytest.mark.slow
def test_an_episode_video_is_640x480_in_real_time(tmp_path) -> None:
    import imageio.v2 as imageio

    assert main(["run", "--generate", "stack_two", "--seed", "2", "--planner", "oracle", "--state", "ground-truth",
                 "--affordance", "analytic", "--success", "analytic", "--no-library", "--video", "--out",
                 str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    reader = imageio.get_reader(tmp_path / "video.mp4")
    meta = reader.get_metadata() if hasattr(reader, "get_metadata") else reader.get_meta_data()
    assert tuple(meta["size"]) == (640, 480) and meta["fps"] == VIDEO_FPS
    seconds = reader.count_frames() / VIDEO_FPS
    simulated = summary["physics_steps"] / 240
    assert simulated <= seconds <= simulated + 2.5  # real time, plus the held outcome
