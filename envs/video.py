"""Video of an episode from an oblique camera of the simulated world (the runtime passes it to the episode
loop as a context manager, so the loop never touches the world)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embodied.world.scene import TABLE_Z
from envs.sim import CameraConfig
from envs.tabletop import TabletopEnv


class VideoRecorder:
    """Collects frames from an oblique camera every few physics steps while skills run."""

    def __init__(self, env: TabletopEnv, size: tuple[int, int] = (240, 320)) -> None:
        self.env = env
        self.camera = CameraConfig(width=size[1], height=size[0], fov_deg=50.0, far=3.0,
                                   eye=(1.15, -0.45, TABLE_Z + 0.65), target=(0.42, 0.0, TABLE_Z + 0.05))
        self.frames: list[np.ndarray] = []

    def __enter__(self) -> VideoRecorder:
        self.env.world.frame_hooks.append(self.capture)
        self.capture()
        return self

    def __exit__(self, *exc: object) -> None:
        self.env.world.frame_hooks.remove(self.capture)

    def capture(self) -> None:
        if self.env.world.steps % 8 == 0:  # 30 frames per simulated second
            self.frames.append(self.env.world.render(self.camera)[0])

    def save(self, path: Path, fps: int = 15) -> None:
        import imageio.v2 as imageio

        with imageio.get_writer(path, fps=fps, codec="libx264", quality=6, macro_block_size=8) as writer:
            for frame in self.frames:
                writer.append_data(frame)
