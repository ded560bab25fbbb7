"""Video of an episode that a person can read: seen from behind the robot's right shoulder (the robot's left
is the image's left), the table's named places drawn on it, a caption with the instruction, the skill call
running and, at the end, the outcome; 640x480 at 15 frames per simulated second, played back in real time.
The runtime passes it to the episode loop as a context manager, so the loop never touches the world."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embodied.world.scene import LOCATIONS, TABLE_Z
from envs.sim import DT, CameraConfig
from envs.tabletop import TabletopEnv

VIDEO_FPS = 15  # frames per simulated second, and the playback rate: real time
VIDEO_SIZE = (480, 640)  # height, width
HOLD_S = 1.5  # the last frame, with the outcome, held this long


def video_camera(size: tuple[int, int] = VIDEO_SIZE) -> CameraConfig:
    """Behind the robot's right shoulder, looking along its forward axis at the table."""
    return CameraConfig(width=size[1], height=size[0], fov_deg=55.0, far=3.0, eye=(-0.15, -0.55, TABLE_Z + 0.85),
                        target=(0.50, 0.05, TABLE_Z))


def project(camera: CameraConfig, points: np.ndarray) -> np.ndarray:
    """Pixel (column, row) of world points in ``camera``'s image."""
    view, proj = camera.matrices()
    vp = np.asarray(proj, dtype=np.float64).reshape(4, 4).T @ np.asarray(view, dtype=np.float64).reshape(4, 4).T
    clip = np.c_[points, np.ones(len(points))] @ vp.T
    ndc = clip[:, :2] / clip[:, 3:4]
    return np.c_[(ndc[:, 0] + 1) * 0.5 * camera.width, (1 - ndc[:, 1]) * 0.5 * camera.height]


class VideoRecorder:
    """Collects frames every ``1 / VIDEO_FPS`` simulated seconds while skills run; `on_call` sets the caption
    of the skill call that follows, `finish` the outcome; `save` draws the overlays and writes the mp4."""

    def __init__(self, env: TabletopEnv, size: tuple[int, int] = VIDEO_SIZE, caption: str = "") -> None:
        self.env, self.caption = env, caption
        self.camera = video_camera(size)
        self.every = round(1 / (DT * VIDEO_FPS))
        self.frames: list[np.ndarray] = []
        self.captions: list[str] = []
        self.current = ""
        self.places = project(self.camera, np.array([(x, y, TABLE_Z) for x, y in LOCATIONS.values()]))

    def __enter__(self) -> VideoRecorder:
        self.env.world.frame_hooks.append(self.capture)
        if not self.frames:
            self._grab()
        return self

    def __exit__(self, *exc: object) -> None:
        self.env.world.frame_hooks.remove(self.capture)

    def on_call(self, step: int, text: str) -> None:
        """The skill call about to run (shown until the next one)."""
        self.current = f"step {step + 1}: {text}"

    def finish(self, outcome: str) -> None:
        """The episode's outcome, on the last frame, held for `HOLD_S` seconds."""
        if self.frames:
            self.frames.extend([self.frames[-1]] * int(HOLD_S * VIDEO_FPS))
            self.captions.extend([outcome] * int(HOLD_S * VIDEO_FPS))

    def capture(self) -> None:
        if self.env.world.steps % self.every == 0:
            self._grab()

    def _grab(self) -> None:
        self.frames.append(self.env.world.render(self.camera)[0])
        self.captions.append(self.current)

    def annotate(self, frame: np.ndarray, line: str) -> np.ndarray:
        """The named places and the caption (instruction, then ``line``) drawn on one frame."""
        from PIL import Image, ImageDraw, ImageFont

        image = Image.fromarray(frame)
        draw = ImageDraw.Draw(image)
        small, big = (ImageFont.load_default(size=s) for s in (13, 18))
        for name, (u, v) in zip(LOCATIONS, self.places, strict=True):
            draw.ellipse((u - 5, v - 5, u + 5, v + 5), outline=(20, 20, 20), width=2)
            draw.text((u + 8, v - 8), name, fill=(20, 20, 20), font=small)
        w, h = image.size
        draw.rectangle((0, 0, w, 30), fill=(0, 0, 0))
        draw.text((8, 5), self.caption, fill=(255, 255, 255), font=big)
        if line:
            draw.rectangle((0, h - 30, w, h), fill=(0, 0, 0))
            draw.text((8, h - 25), line, fill=(255, 230, 120), font=big)
        return np.asarray(image)

    def save(self, path: Path) -> None:
        import imageio.v2 as imageio

        with imageio.get_writer(path, fps=VIDEO_FPS, codec="libx264", quality=7, macro_block_size=8,
                                pixelformat="yuv420p", ffmpeg_log_level="error") as writer:
            for frame, line in zip(self.frames, self.captions, strict=True):
                writer.append_data(self.annotate(frame, line))
