"""Assembly: the scenes fitted to one size, joined by cuts or crossfades, faded in and out.

``iter_assemble`` reads like a pipeline's ``__call__``: it checks every input before any
frame is made, then yields the finished frames one at a time, holding at most two scenes.
The frame counts follow the storyboard grid of ``timing`` (see its contract).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vidgen_pipeline.core.finishing.flow import blend
from vidgen_pipeline.core.finishing.inputs import (
    FinishingError,
    check_clip,
    check_fps,
    check_method,
    check_seconds,
)
from vidgen_pipeline.core.finishing.timing import (
    frames_needed,
    resample,
    to_rate,
    total_frames,
    transition_frames,
)
from vidgen_pipeline.core.media import even_size


def fit_frames(frames: np.ndarray | Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """The clip at ``size`` (width, height): scaled to fit and centred on black (letterbox or
    pillarbox), never cropped or stretched. A clip at most one pixel larger in each direction
    (an odd side made even) is cropped at its right and bottom edges instead."""
    clip = check_clip(frames)
    width, height = size
    src_h, src_w = clip.shape[1:3]
    if (src_w, src_h) == (width, height):
        return clip
    if 0 <= src_w - width <= 1 and 0 <= src_h - height <= 1:
        return np.ascontiguousarray(clip[:, :height, :width])
    scale = min(width / src_w, height / src_h)
    inner_w = max(1, min(width, round(src_w * scale)))
    inner_h = max(1, min(height, round(src_h * scale)))
    left, top = (width - inner_w) // 2, (height - inner_h) // 2
    shrink = inner_w < src_w or inner_h < src_h
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    out = np.zeros((len(clip), height, width, 3), np.uint8)
    for index, frame in enumerate(clip):
        out[index, top : top + inner_h, left : left + inner_w] = cv2.resize(
            frame, (inner_w, inner_h), interpolation=interpolation
        )
    return out


def output_size(
    scenes: Sequence[np.ndarray], size: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The (width, height) every scene is fitted to: ``size`` when given (both sides must be
    even and at least 2, else ``FinishingError``), else the first scene's, an odd side made
    even by dropping its last row or column (yuv420p needs even sides)."""
    if size is not None:
        width, height = size
        if (
            not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in size)
            or width < 2
            or height < 2
            or width % 2
            or height % 2
        ):
            raise FinishingError(
                f"output size {width}x{height} must be whole, even numbers of at least 2 "
                "(H.264 in yuv420p needs even sides)"
            )
        return int(width), int(height)
    height, width = np.asarray(scenes[0]).shape[1:3]
    even = even_size(width, height)
    if even[0] < 2 or even[1] < 2:
        raise FinishingError(f"scene 1's frames ({width}x{height}) are too small for a video")
    return even


def iter_assemble(
    scenes: Sequence[np.ndarray],
    fps: float,
    durations_s: Sequence[float],
    transition: str = "cut",
    transition_s: float = 0.0,
    fade_in_s: float = 0.0,
    fade_out_s: float = 0.0,
    size: tuple[int, int] | None = None,
    scene_fps: Sequence[float | None] | None = None,
    interpolation: str | None = "flow",
) -> Iterator[np.ndarray]:
    """Stitch scenes into one video, frame by frame: exactly ``total_frames(durations_s,
    fps)`` RGB frames of one size. Holds at most two scenes' frames at a time.

    Per scene, in order: the frame rate (when ``scene_fps[i]`` is given and differs from
    ``fps``: ``to_rate`` with ``interpolation``, ``"flow"``, ``"blend"`` or ``None`` for
    nearest-frame only; scenes are converted one by one, so nothing is interpolated across a
    cut), the length (``resample``d to ``frames_needed(...)[i]`` when it differs: a scene
    with too few frames plays slower, one with too many faster), the size (``fit_frames``
    to ``output_size(scenes, size)``). Then ``"cut"`` or ``"crossfade"`` between scenes
    (see the frame-count contract in ``timing``), and fades from and to black over
    ``round(fade_in_s * fps)`` and ``round(fade_out_s * fps)`` frames (the first and last
    frames are black).

    Refused with ``FinishingError`` before any frame is made: an unknown transition, a
    negative transition or fade, a crossfade longer than the shortest scene, a fade longer
    than the video, a scene count unlike the durations', a scene that is not RGB uint8
    ``(T, H, W, 3)`` or has no frames, a scene of a single frame that would have to fill
    more than one (it cannot move), an odd or tiny explicit ``size``. Odd sizes of the
    scenes themselves are made even (see ``output_size``).
    """
    # 1. check every input (raises here, not when the first frame is asked for)
    assembly = _check_inputs(
        scenes,
        fps,
        durations_s,
        transition=transition,
        transition_s=transition_s,
        fade_in_s=fade_in_s,
        fade_out_s=fade_out_s,
        size=size,
        scene_fps=scene_fps,
        interpolation=interpolation,
    )
    # 2. join the scenes (each converted when its turn comes), 3. fade the ends
    return _faded(assembly, _joined(assembly))


@dataclass(frozen=True)
class _Assembly:
    """Checked inputs of one assembly and what follows from them (frames are counted at the
    output rate)."""

    clips: list[np.ndarray]
    rates: list[float | None]  # each scene's own rate; None: already at ``fps``
    needed: list[int]  # each scene's frames, handles included (``frames_needed``)
    fps: float
    size: tuple[int, int]
    interpolation: str | None
    dissolve: int  # frames of each crossfade (0: cuts)
    fade_in: int
    fade_out: int
    total: int


def _check_inputs(
    scenes: Sequence[np.ndarray],
    fps: float,
    durations_s: Sequence[float],
    *,
    transition: str,
    transition_s: float,
    fade_in_s: float,
    fade_out_s: float,
    size: tuple[int, int] | None,
    scene_fps: Sequence[float | None] | None,
    interpolation: str | None,
) -> _Assembly:
    """The inputs checked in the order ``iter_assemble``'s docstring lists its refusals."""
    fps = check_fps(fps)
    needed = frames_needed(durations_s, fps, transition, transition_s)
    if len(scenes) != len(needed):
        raise FinishingError(f"{len(scenes)} scenes but {len(needed)} durations")
    rates = list(scene_fps) if scene_fps is not None else [None] * len(needed)
    if len(rates) != len(needed):
        raise FinishingError(f"{len(rates)} scene frame rates for {len(needed)} scenes")
    check_method(interpolation, allow_none=True)
    clips = [check_clip(scene, f"scene {i + 1}") for i, scene in enumerate(scenes)]
    for number, (clip, count, rate) in enumerate(zip(clips, needed, rates, strict=True), 1):
        if rate is not None:
            check_fps(rate, f"scene {number}'s fps")
        if len(clip) == 1 and count > 1:
            raise FinishingError(
                f"scene {number} has a single frame but must fill {count} frames; "
                "a still cannot be a clip (render at least 2 frames)"
            )
    total = total_frames(durations_s, fps)
    fade_in = round(check_seconds(fade_in_s, "fade_in_s") * fps)
    fade_out = round(check_seconds(fade_out_s, "fade_out_s") * fps)
    for name, frames in (("fade_in_s", fade_in), ("fade_out_s", fade_out)):
        if frames > total:
            raise FinishingError(
                f"{name} ({frames} frames) is longer than the video ({total} frames)"
            )
    return _Assembly(
        clips=clips,
        rates=rates,
        needed=needed,
        fps=fps,
        size=output_size(clips, size),
        interpolation=interpolation,
        dissolve=transition_frames(fps, transition, transition_s),
        fade_in=fade_in,
        fade_out=fade_out,
        total=total,
    )


def _scene(assembly: _Assembly, index: int) -> np.ndarray:
    """Scene ``index`` ready to show: at the output rate, its planned length and size."""
    clip, rate, count = assembly.clips[index], assembly.rates[index], assembly.needed[index]
    if rate is not None and rate != assembly.fps:
        clip = to_rate(clip, rate, assembly.fps, assembly.interpolation, count=count)
    return fit_frames(resample(clip, count), assembly.size)


def _joined(assembly: _Assembly) -> Iterator[np.ndarray]:
    """The scenes back to back: each scene's frames shown alone, then (crossfade) the
    dissolve from its tail handle into the next scene's head handle."""
    k = assembly.dissolve
    handles = k // 2 + (k - k // 2)  # head of the next scene + tail of this one
    current, start = _scene(assembly, 0), 0  # ``start``: first frame not yet shown
    for index in range(1, len(assembly.clips)):
        solo_end = len(current) - handles
        yield from current[start:solo_end]
        incoming = _scene(assembly, index)
        for step in range(k):
            yield blend(current[solo_end + step], incoming[step], (step + 1) / (k + 1))
        current, start = incoming, k
    yield from current[start:]


def _faded(assembly: _Assembly, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """``frames`` faded from black over the first ``fade_in`` and to black over the last
    ``fade_out``; checks that they were exactly the storyboard's ``total``."""
    position = 0
    for frame in frames:
        level = 1.0
        if position < assembly.fade_in:
            level *= position / assembly.fade_in
        remaining = assembly.total - 1 - position
        if remaining < assembly.fade_out:
            level *= remaining / assembly.fade_out
        yield frame if level >= 1.0 else cv2.convertScaleAbs(frame, alpha=level)
        position += 1
    if position != assembly.total:  # the contract, checked
        raise AssertionError(f"assembled {position} frames, planned {assembly.total}")
