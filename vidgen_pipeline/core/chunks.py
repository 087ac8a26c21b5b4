"""How a scene longer than one clip is made of several (plain Python, no models).

Each clip's length is one the model can make (``FrameRule``); the last clip makes only
what is still needed, rounded up to a legal count, and its surplus frames are dropped. A
clip that continues from the previous clip's last frame (image-capable families) starts with
that frame again: SVD and the image-to-video DiTs reproduce their conditioning image as their
first frame. It therefore makes one frame more and drops its first, so no frame repeats at a
join.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vidgen_pipeline.families.base import FrameRule


@dataclass(frozen=True)
class Chunk:
    """One clip: ``frames`` to make, of which ``frames[skip:skip + keep]`` are kept."""

    index: int
    frames: int
    skip: int
    keep: int
    continues: bool  # starts from the previous clip's last frame


def plan_chunks(
    frame_count: int,
    per_clip: int,
    rule: FrameRule,
    continues: bool,
    first_continues: bool = False,
) -> list[Chunk]:
    """The clips that make ``frame_count`` frames with at most ``per_clip`` each (a legal
    count); ``continues``: later clips start from the previous clip's last frame;
    ``first_continues``: so does the first (from the previous scene's, with continuity)."""
    chunks: list[Chunk] = []
    made = 0
    while made < frame_count:
        follows = (continues and bool(chunks)) or (first_continues and not chunks)
        skip = 1 if follows else 0
        need = frame_count - made
        length = rule.at_least(min(per_clip, need + skip))
        keep = min(length - skip, need)
        if keep < 1:
            raise ValueError(
                f"a clip of {length} frames cannot continue a scene ({rule.describe()})"
            )
        chunks.append(Chunk(len(chunks), length, skip, keep, follows))
        made += keep
    return chunks


def render_chunks(
    chunks: list[Chunk],
    make: Callable[[Chunk, object], np.ndarray],
    first_image,
    to_image: Callable[[np.ndarray], object],
) -> np.ndarray:
    """Make every chunk (``make(chunk, image)`` returns (T, H, W, 3) frames) and join the kept
    frames; a continuing chunk gets the previous chunk's last frame as ``image``."""
    kept: list[np.ndarray] = []
    image = first_image
    for chunk in chunks:
        if chunk.continues and kept:
            image = to_image(kept[-1][-1])
        frames = make(chunk, image)
        if len(frames) != chunk.frames:
            raise RuntimeError(
                f"clip {chunk.index + 1}: {len(frames)} frames, {chunk.frames} asked"
            )
        kept.append(frames[chunk.skip : chunk.skip + chunk.keep])
    return np.concatenate(kept)
