"""Headless video of an episode from a fixed camera.

Frames come from PyBullet's CPU TinyRenderer at a video rate (not every
physics step: rendering costs far more than physics, see docs). imageio
writes MP4 through the ffmpeg binary that the imageio-ffmpeg wheel ships;
where that is unavailable it falls back to an animated GIF.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

FPS = 10
SIZE = (320, 240)


class Recorder:
    def __init__(self, world, stem: Path, fps: int = FPS) -> None:
        self.world = world
        self.stem = Path(stem)
        self.fps = fps
        self.frames: list[np.ndarray] = []
        self._next_t = 0.0

    def maybe_capture(self, t: float) -> None:
        if t + 1e-9 >= self._next_t:
            self.frames.append(self.world.render(*SIZE))
            self._next_t += 1.0 / self.fps

    def close(self) -> Path:
        path = self.stem.with_suffix(".mp4")
        try:
            with imageio.get_writer(path, fps=self.fps, codec="libx264", quality=7,
                                    macro_block_size=8) as writer:
                for frame in self.frames:
                    writer.append_data(frame)
        except Exception:  # no ffmpeg backend: fall back to GIF
            path.unlink(missing_ok=True)
            path = self.stem.with_suffix(".gif")
            imageio.mimsave(path, self.frames, duration=1.0 / self.fps)
        return path
