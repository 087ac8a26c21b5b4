"""Subtitles: the cues of a video (the narration's own timing when it is spoken, else one per
scene), and the narration drawn into the picture (``--burn-subtitles``) with the project's
Noto Sans CJK font, so Chinese lines render as well as Latin ones.

Burning is PIL on the frames before the encode (the bundled ffmpeg's libass would need a
font configuration of its own): each cue's text is drawn once onto a transparent strip and
blended onto the frames it covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw

from vidgen_pipeline.core.cards import font, wrap_text

Cue = tuple[float, float, str]


def narration_cues(spoken: Sequence[Cue]) -> list[Cue]:
    """The spoken lines as cues (empty lines dropped: they are silence, not captions)."""
    return [(start, end, text) for start, end, text in spoken if text.strip() and end > start]


def burned(frames: Iterable[np.ndarray], cues: Sequence[Cue], fps: float) -> Iterator[np.ndarray]:
    """``frames`` with each cue's text drawn at the bottom while it is spoken."""
    strips: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
    for index, frame in enumerate(frames):
        time = index / fps
        cue = next((i for i, (s, e, _) in enumerate(cues) if s <= time < e), None)
        if cue is None:
            yield frame
            continue
        if cue not in strips:
            strips[cue] = _strip(cues[cue][2], frame.shape[1], frame.shape[0])
        yield _blend(frame, *strips[cue])


def _strip(text: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The text as RGB and alpha arrays of a strip as wide as the frame, and its top row."""
    size = max(8, height // 14)
    face = font(size)
    margin = max(2, width // 20)
    lines = wrap_text(text, face, width - 2 * margin)[:3]
    line_height = round(size * 1.25)
    strip_h = line_height * len(lines) + size // 2
    image = Image.new("RGBA", (width, strip_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    outline = max(1, size // 12)
    for number, line in enumerate(lines):
        draw.text(
            (width // 2, size // 4 + number * line_height),
            line,
            font=face,
            anchor="ma",
            fill=(255, 255, 255, 255),
            stroke_width=outline,
            stroke_fill=(0, 0, 0, 255),
        )
    rgba = np.asarray(image, np.float32)
    top = max(0, height - strip_h - max(2, height // 24))
    return rgba[..., :3], rgba[..., 3:] / 255.0, top


def _blend(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, top: int) -> np.ndarray:
    out = frame.copy()
    rows = min(len(rgb), frame.shape[0] - top)
    region = out[top : top + rows].astype(np.float32)
    mixed = region * (1 - alpha[:rows]) + rgb[:rows] * alpha[:rows]
    out[top : top + rows] = mixed.round().astype(np.uint8)
    return out
