"""Timing: the storyboard's frame grid, and bringing a clip to a frame count or a rate.

Frame-count contract (storyboard grid): scene ``i`` spans the frames
``[round(start_i * fps), round(end_i * fps))`` of one global grid (``frames_for_span``), so
the storyboard's total is ``round(sum(durations_s) * fps)`` however the durations round.
With a ``"cut"`` every scene supplies exactly its own span. With a ``"crossfade"`` of
``k = round(transition_s * fps)`` frames, each dissolve is centred on its storyboard cut: it
starts ``k // 2`` frames before the cut and ends ``k - k // 2`` frames after it. The scenes
are rendered with handles so that nothing is lost: a scene after the first has ``k // 2``
extra frames at its head, a scene before the last ``k - k // 2`` extra frames at its tail;
the handles are only ever seen inside the dissolves. ``frames_needed`` gives those counts.
The assembled video therefore has exactly the storyboard's frame count, and every cut lands
in the middle of its dissolve::

    needed = frames_needed(durations_s, fps, transition, transition_s)  # before rendering
    # render scene i with needed[i] frames at ``fps`` (or fewer at a model's native rate,
    # passing scene_fps to iter_assemble)
    video = iter_assemble(scenes, fps, durations_s, transition, transition_s, ...)
    assert len(list(video)) == total_frames(durations_s, fps)          # the storyboard's
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vidgen_pipeline.core.finishing.flow import interpolate
from vidgen_pipeline.core.finishing.inputs import (
    MAX_FACTOR,
    FinishingError,
    check_clip,
    check_fps,
    check_seconds,
    check_transition,
)
from vidgen_pipeline.core.media import frames_for_span


def interpolation_factor(native_fps: float, target_fps: float) -> int:
    """How many times to multiply ``native_fps`` towards ``target_fps``: 1..4.

    Rounds up (7 -> 24 fps gives 4, i.e. 28 fps, then ``resample`` drops 4 frames a second:
    dropping frames judders less than repeating them) unless the ratio is within 5% of the
    whole number below (12.1 -> 24 gives 2). A native rate at or above the target gives 1.
    """
    native_fps, target_fps = check_fps(native_fps, "native_fps"), check_fps(target_fps)
    return max(1, min(MAX_FACTOR, math.ceil(target_fps / native_fps - 0.05)))


def resample(frames: np.ndarray | Sequence[np.ndarray], count: int) -> np.ndarray:
    """Exactly ``count`` frames spread evenly over the clip, each the nearest original.

    Output frame j is frame ``floor((j + 0.5) * T / count)``: frames are dropped or repeated
    evenly, never blended; ``count == T`` returns the clip as it is.
    """
    clip = check_clip(frames)
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise FinishingError(f"a clip needs at least one frame, not {count!r}")
    if count == len(clip):
        return clip
    picks = np.minimum(len(clip) - 1, ((np.arange(count) + 0.5) * len(clip) / count).astype(int))
    return clip[picks]


def to_rate(
    frames: np.ndarray | Sequence[np.ndarray],
    src_fps: float,
    dst_fps: float,
    method: str | None = "flow",
    count: int | None = None,
) -> np.ndarray:
    """Convert one scene from its model's native rate to ``dst_fps``.

    Interpolates by ``interpolation_factor(src_fps, dst_fps)`` with ``method`` (``None``:
    no interpolation), then ``resample``s to ``count`` frames (default: the clip's duration
    at ``dst_fps``, ``round(T * dst / src)``). The interpolated clip is stretched evenly over
    that count, so the scene keeps its length and no frame is held at the end.
    """
    clip = check_clip(frames)
    src_fps, dst_fps = check_fps(src_fps, "src_fps"), check_fps(dst_fps, "dst_fps")
    target = count if count is not None else max(1, round(len(clip) * dst_fps / src_fps))
    if method is not None:
        clip = interpolate(clip, interpolation_factor(src_fps, dst_fps), method)
    return resample(clip, target)


def scene_frame_counts(durations_s: Sequence[float], fps: float) -> list[int]:
    """Each scene's frames on the storyboard's global grid (``frames_for_span``); they sum to
    ``total_frames``. A duration that is not positive, or so short that its scene gets no
    frame at ``fps``, raises ``FinishingError``."""
    fps = check_fps(fps)
    if not durations_s:
        raise FinishingError("no scenes: durations_s is empty")
    counts, start = [], 0.0
    for number, duration in enumerate(durations_s, start=1):
        if isinstance(duration, bool) or not isinstance(duration, int | float | np.number):
            raise FinishingError(f"scene {number}'s duration {duration!r} is not a number")
        if not math.isfinite(duration) or duration <= 0:
            raise FinishingError(f"scene {number}'s duration must be above 0 s, not {duration!r}")
        count = frames_for_span(start, start + duration, fps)
        if count < 1:
            raise FinishingError(
                f"scene {number} ({duration:g} s) gets no frame at {fps:g} fps; "
                "make it longer or raise the frame rate"
            )
        counts.append(count)
        start += duration
    return counts


def total_frames(durations_s: Sequence[float], fps: float) -> int:
    """The storyboard's frame count: ``round(sum(durations_s) * fps)``, whatever the
    transition (``iter_assemble`` makes exactly this many)."""
    return sum(scene_frame_counts(durations_s, fps))


def cut_frames(durations_s: Sequence[float], fps: float) -> list[int]:
    """Output frame index at which each scene after the first begins on the storyboard grid
    (the middle of its dissolve with a crossfade); for ``quality.assess(cuts=...)``."""
    counts = scene_frame_counts(durations_s, fps)
    return [int(v) for v in np.cumsum(counts)[:-1]]


def transition_frames(fps: float, transition: str = "cut", transition_s: float = 0.0) -> int:
    """Frames in each dissolve: 0 for ``"cut"`` (its ``transition_s`` is ignored, but must
    not be negative), ``round(transition_s * fps)`` for ``"crossfade"``. An unknown
    transition name or a negative duration raises ``FinishingError``."""
    fps = check_fps(fps)
    check_transition(transition)
    transition_s = check_seconds(transition_s, "transition_s")
    return 0 if transition == "cut" else round(transition_s * fps)


def frames_needed(
    durations_s: Sequence[float], fps: float, transition: str = "cut", transition_s: float = 0.0
) -> list[int]:
    """Frames to render for each scene at ``fps`` so that ``iter_assemble`` hits the storyboard's
    total exactly.

    Its own span on the storyboard grid (``scene_frame_counts``), plus, with a crossfade of
    k frames, a head handle of ``k // 2`` frames (every scene but the first) and a tail
    handle of ``k - k // 2`` (every scene but the last). A crossfade longer than the
    shortest scene (k above its frame count) is refused with ``FinishingError``, as are a
    negative ``transition_s`` and an unknown transition name.
    """
    counts = scene_frame_counts(durations_s, fps)
    k = transition_frames(fps, transition, transition_s)
    if len(counts) > 1 and k > min(counts):
        shortest = int(np.argmin(counts))
        raise FinishingError(
            f"a {transition_s:g} s crossfade ({k} frames at {fps:g} fps) is longer than scene "
            f"{shortest + 1} ({durations_s[shortest]:g} s, {counts[shortest]} frames); "
            f"use at most {counts[shortest] / fps:.3g} s"
        )
    head, tail = k // 2, k - k // 2
    last = len(counts) - 1
    return [n + (head if i > 0 else 0) + (tail if i < last else 0) for i, n in enumerate(counts)]


def scene_cues(
    durations_s: Sequence[float], texts: Sequence[str]
) -> list[tuple[float, float, str]]:
    """WebVTT cues ``(start_s, end_s, text)``, one per scene, back to back from 0 (for
    ``media.write_webvtt``); with a crossfade the text changes mid-dissolve, at the cut."""
    if len(durations_s) != len(texts):
        raise FinishingError(f"{len(texts)} texts for {len(durations_s)} scenes")
    cues, start = [], 0.0
    for duration, text in zip(durations_s, texts, strict=True):
        cues.append((start, start + float(duration), text))
        start += float(duration)
    return cues
