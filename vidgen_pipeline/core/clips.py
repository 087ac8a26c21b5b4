"""In-memory values handed between the media assets (persisted by the frames IO manager)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Keyframe:
    """One scene's conditioning image, and where it came from."""

    scene_number: int
    image: Image.Image
    info: dict = field(default_factory=dict)  # source ("cards" or a model), seed, ...


@dataclass
class SceneClip:
    """One scene's frames (T, H, W, 3) uint8 at ``fps``, with provenance in ``info``."""

    scene_number: int
    frames: np.ndarray
    fps: float
    info: dict = field(default_factory=dict)  # backend, model, seconds, ...
    mp4_path: Path | None = None  # the scene's own mp4, once made
    # ``mp4_path`` holds exactly ``frames``, losslessly (``core.frame_store``): storage keeps
    # that file as the frames' store instead of encoding them again.
    mp4_lossless: bool = False
    # A folder already holding these frames (a scene-cache entry: ``clip.mp4``, or
    # ``%06d.png`` in an entry made before the lossless store): storage links to its files
    # instead of writing the frames again, and never moves them.
    source_dir: Path | None = None
    # The sound the model made with these frames (LTX-2): float32 samples (N, channels) in
    # [-1, 1] at ``audio_rate`` Hz, starting with the first frame; None for a silent model.
    audio: np.ndarray | None = None
    audio_rate: int | None = None

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.fps


@dataclass
class FinalVideo:
    """The stitched mp4: a finished file on local disk, moved into storage by the IO manager."""

    path: Path
    duration_s: float
    frame_count: int
    fps: float
    width: int
    height: int
    info: dict = field(default_factory=dict)
    subtitles_path: Path | None = None  # WebVTT of the scenes, stored beside the mp4
    audio_path: Path | None = None  # WAV of the sound track's mix, stored beside the mp4
