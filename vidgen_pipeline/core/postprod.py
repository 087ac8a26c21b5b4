"""Post-production on frames: interpolation, frame-rate conversion, transitions and assembly.

Everything here is pure numpy/OpenCV on RGB uint8 arrays ``(T, H, W, 3)``; nothing touches
Dagster or the disk (except ``bench_postprod``, which times an encode into a temp folder).

How the pieces fit (what the media assets do)::

    plan = frames_needed(durations_s, fps, transition, transition_s)   # before rendering
    # render scene i with plan[i] frames at ``fps`` (or about native_frames(plan[i], ...)
    # frames at a model's native rate, passing scene_fps to assemble)
    video = assemble(scenes, fps, durations_s, transition, transition_s, ...)
    assert len(video) == total_frames(durations_s, fps)                # the storyboard's

Frame-count contract (storyboard grid): scene ``i`` spans the frames
``[round(start_i * fps), round(end_i * fps))`` of one global grid (``frames_for_span``), so
the storyboard's total is ``round(sum(durations_s) * fps)`` however the durations round.
With a ``"cut"`` every scene supplies exactly its own span. With a ``"crossfade"`` of
``k = round(transition_s * fps)`` frames, each dissolve is centred on its storyboard cut: it
starts ``k // 2`` frames before the cut and ends ``k - k // 2`` frames after it. The scenes
are rendered with handles so that nothing is lost: a scene after the first has ``k // 2``
extra frames at its head, a scene before the last ``k - k // 2`` extra frames at its tail;
the handles are only ever seen inside the dissolves. ``frames_needed`` gives those counts.
The output therefore has exactly the storyboard's frame count, and every cut lands in the
middle of its dissolve.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from vidgen_pipeline.core.media import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    encode_h264,
    even_size,
    frames_for_span,
    rate_control_args,
)

MAX_FACTOR = 4
INTERPOLATION_METHODS = ("flow", "blend")
TRANSITIONS = ("cut", "crossfade")
# Optical flow is computed on a grey copy whose longer side is at most FLOW_MAX_SIDE (DIS at
# 512 px is accurate to well under a pixel on smooth footage and ~4x cheaper than at 1024)
# and at least FLOW_MIN_SIDE (a pyramid deep enough to follow a tenth of the picture), with
# a shorter side of at least DIS_MIN_SIDE (below it DIS crashes or returns NaN).
FLOW_MAX_SIDE = 512
FLOW_MIN_SIDE = 256
DIS_MIN_SIDE = 32


class PostprodError(ValueError):
    """Bad input to post-production (a factor, a transition, frame sizes); says which."""


# ---------------------------------------------------------------------------------------
# checks


def _check_clip(frames: np.ndarray | Sequence[np.ndarray], what: str = "clip") -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise PostprodError(
            f"{what} must be RGB uint8 frames (T, H, W, 3); got {array.dtype} {array.shape}"
        )
    if len(array) == 0:
        raise PostprodError(f"{what} has no frames")
    return array


def _check_factor(factor: int) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer):
        raise PostprodError(f"interpolation factor must be a whole number 1..4, not {factor!r}")
    if not 1 <= factor <= MAX_FACTOR:
        raise PostprodError(
            f"interpolation factor {factor} is outside 1..{MAX_FACTOR} "
            "(1 keeps the frames; 2-4 insert 1-3 frames between each pair)"
        )
    return int(factor)


def _check_fps(fps: float, what: str = "fps") -> float:
    if isinstance(fps, bool) or not isinstance(fps, int | float | np.number):
        raise PostprodError(f"{what} must be a number of frames per second, not {fps!r}")
    if not math.isfinite(fps) or not 0 < fps <= 1000:
        raise PostprodError(f"{what} must be above 0 (and at most 1000), not {fps!r}")
    return float(fps)


def _check_seconds(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise PostprodError(f"{what} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise PostprodError(f"{what} must be 0 or more seconds, not {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------
# interpolation and frame-rate conversion


def interpolation_factor(native_fps: float, target_fps: float) -> int:
    """How many times to multiply ``native_fps`` towards ``target_fps``: 1..4.

    Rounds up (7 -> 24 fps gives 4, i.e. 28 fps, then ``retime`` drops 4 frames a second:
    dropping frames judders less than repeating them) unless the ratio is within 5% of the
    whole number below (12.1 -> 24 gives 2). A native rate at or above the target gives 1.
    """
    native_fps, target_fps = _check_fps(native_fps, "native_fps"), _check_fps(target_fps)
    return max(1, min(MAX_FACTOR, math.ceil(target_fps / native_fps - 0.05)))


def interpolate(
    frames: np.ndarray | Sequence[np.ndarray], factor: int, method: str = "flow"
) -> np.ndarray:
    """Insert ``factor - 1`` frames between each pair of consecutive frames.

    Returns ``(T - 1) * factor + 1`` frames; the originals keep their places (every
    ``factor``-th frame). ``method``: ``"flow"`` follows the motion (DIS optical flow both
    ways, projected to the in-between time, both neighbours warped there with ``cv2.remap``
    and blended, each alone where the other cannot see the content: see ``_FlowWarper``);
    ``"blend"`` is a plain cross-blend. ``factor`` must be 1..4 (1 returns the frames
    unchanged), else ``PostprodError``; a one-frame clip is returned unchanged. Works on one
    scene: never pass frames that span a cut (``assemble`` interpolates scene by scene).
    """
    factor = _check_factor(factor)
    if method not in INTERPOLATION_METHODS:
        raise PostprodError(
            f"interpolation method {method!r} is not one of {', '.join(INTERPOLATION_METHODS)}"
        )
    clip = _check_clip(frames)
    count, height, width = clip.shape[:3]
    if factor == 1 or count < 2:
        return clip
    out = np.empty(((count - 1) * factor + 1, height, width, 3), np.uint8)
    times = [step / factor for step in range(1, factor)]
    warper = _FlowWarper(height, width) if method == "flow" else None
    for index in range(count - 1):
        first, second = clip[index], clip[index + 1]
        out[index * factor] = first
        if warper is None:
            middles = [_mix(first, second, t) for t in times]
        else:
            middles = warper.inbetweens(first, second, times)
        out[index * factor + 1 : (index + 1) * factor] = middles
    out[-1] = clip[-1]
    return out


def _mix(first: np.ndarray, second: np.ndarray, t: float) -> np.ndarray:
    return cv2.addWeighted(first, 1.0 - t, second, t, 0.0)


class _FlowWarper:
    """Frames in between two frames by optical flow; per pair of frames:

    1. DIS optical flow both ways (``FAST`` preset) on grey copies sized by
       ``FLOW_MAX_SIDE``, ``FLOW_MIN_SIDE`` and ``DIS_MIN_SIDE``, scaled to full size at the
       end.
    2. Sharper motion edges: DIS smears the flow across the edge of a moving object, so each
       pixel takes, of its own flow and those 4 and 8 px away, the one whose match in the
       other frame differs least (3x3 mean absolute grey difference).
    3. Flow projection to time t: every pixel of frame 0 moves by t * F01 and every pixel of
       frame 1 by (1 - t) * F10 into the in-between frame; where several land on one pixel
       the best match wins (the object in front, not the ground it is about to cover).
       Pixels nothing lands on (cracks of an expanding motion) take the Super SloMo
       approximation of the flow (Jiang et al., 2018).
    4. Occlusion: a frame is used where its own projection landed with the chosen motion:
       both frames blended (1 - t, t) where both see the content, one alone where only it
       does (ground being uncovered or covered, content entering or leaving the picture).
    5. Both frames warped at full size with ``cv2.remap`` (fixed-point maps, 1/32 px, about
       twice as fast as float maps) and blended with those weights.
    """

    EDGE_OFFSETS = ((0, 0), (4, 0), (-4, 0), (0, 4), (0, -4), (8, 0), (-8, 0), (0, 8), (0, -8))

    def __init__(self, height: int, width: int) -> None:
        self.size = (width, height)
        long, short = max(width, height), min(width, height)
        scale = max(min(FLOW_MAX_SIDE / long, max(1.0, FLOW_MIN_SIDE / long)), DIS_MIN_SIDE / short)
        self.flow_size = (
            max(DIS_MIN_SIDE, round(width * scale)),
            max(DIS_MIN_SIDE, round(height * scale)),
        )
        # Flow vectors in flow-image pixels -> full-size pixels.
        self.gain = np.array([width / self.flow_size[0], height / self.flow_size[1]], np.float32)
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self.grid = _pixel_grid(width, height)
        self.small_grid = _pixel_grid(*self.flow_size)

    def inbetweens(
        self, first: np.ndarray, second: np.ndarray, times: list[float]
    ) -> list[np.ndarray]:
        grey0, grey1 = self._grey(first), self._grey(second)
        f01, error0 = self._sharpen(self._flow(grey0, grey1), grey0, grey1)
        f10, error1 = self._sharpen(self._flow(grey1, grey0), grey1, grey0)
        frames = []
        for t in times:
            # Motion from frame 0 to frame 1 of the content at each in-between pixel.
            motion0, hit0, match0 = self._project(f01, error0, t)
            backward, hit1, match1 = self._project(f10, error1, 1 - t)
            motion1 = -backward
            use0 = hit0 & (~hit1 | (match0 <= match1))
            use1 = hit1 & ~use0
            cracks = (1 - t) * f01 - t * f10  # Super SloMo's F_t0 = -t * this
            motion = np.where(use0[..., None], motion0, np.where(use1[..., None], motion1, cracks))
            seen0 = hit0 & _near(motion0, motion)
            seen1 = hit1 & _near(motion1, motion)
            weight0 = (1 - t) * (cv2.blur(seen0.astype(np.float32), (3, 3)) + 1e-3)
            weight1 = t * (cv2.blur(seen1.astype(np.float32), (3, 3)) + 1e-3)
            frames.append(
                cv2.blendLinear(
                    self._warp(first, -t * motion),
                    self._warp(second, (1 - t) * motion),
                    self._up(weight0),
                    self._up(weight1),
                )
            )
        return frames

    def _flow(self, grey: np.ndarray, other: np.ndarray) -> np.ndarray:
        # Belt and braces: a NaN vector (DIS on a picture its pyramid does not fit) is no
        # motion, so that pixel is blended.
        return np.nan_to_num(self.dis.calc(grey, other, None), nan=0.0, posinf=0.0, neginf=0.0)

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if grey.shape[::-1] == self.flow_size:
            return grey
        shrink = self.flow_size[0] < self.size[0]
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        return cv2.resize(grey, self.flow_size, interpolation=interpolation)

    def _sample(self, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """``image`` (flow-size) read at each pixel moved by ``flow``; edges extended."""
        return cv2.remap(
            image,
            self.small_grid + flow,
            None,
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def _sharpen(
        self, flow: np.ndarray, grey: np.ndarray, other: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each pixel's best flow among its own and its neighbours', and that match's error
        (ties keep the pixel's own flow)."""
        height, width = flow.shape[:2]
        pad = max(max(abs(dx), abs(dy)) for dx, dy in self.EDGE_OFFSETS)
        padded = cv2.copyMakeBorder(flow, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        best, best_error = None, None
        for dx, dy in self.EDGE_OFFSETS:
            candidate = padded[pad + dy : pad + dy + height, pad + dx : pad + dx + width]
            error = cv2.blur(cv2.absdiff(grey, self._sample(other, candidate)), (3, 3))
            if best is None:
                best, best_error = candidate.copy(), error
                continue
            better = cv2.compare(error, best_error, cv2.CMP_LT)
            cv2.copyTo(candidate, better, best)
            best_error = cv2.min(best_error, error)
        return best, best_error.astype(np.float32)

    def _project(
        self, flow: np.ndarray, error: np.ndarray, t: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Splat each pixel's ``flow`` to where ``t * flow`` takes it; per landing pixel the
        lowest ``error`` wins. Returns the flow field there, where anything landed, and the
        winner's error (inf where nothing did)."""
        height, width = flow.shape[:2]
        target = self.small_grid + t * flow
        xs = np.rint(target[..., 0]).astype(np.int64).ravel()
        ys = np.rint(target[..., 1]).astype(np.int64).ravel()
        sources = np.flatnonzero((xs >= 0) & (xs < width) & (ys >= 0) & (ys < height))
        landing = ys[sources] * width + xs[sources]
        errors = error.ravel()[sources]
        best = np.full(height * width, np.inf, np.float32)
        np.minimum.at(best, landing, errors)
        winners = errors == best[landing]
        # Each (x, y) vector moved as one complex64: 10x faster than rows of a (N, 2) array.
        vectors = np.ascontiguousarray(flow, np.float32).view(np.complex64).ravel()
        field = np.zeros(height * width, np.complex64)
        field[landing[winners]] = vectors[sources[winners]]
        return (
            field.view(np.float32).reshape(height, width, 2),
            np.isfinite(best).reshape(height, width),
            best.reshape(height, width),
        )

    def _up(self, image: np.ndarray) -> np.ndarray:
        if image.shape[1::-1] == self.size:
            return np.ascontiguousarray(image)
        return cv2.resize(image, self.size, interpolation=cv2.INTER_LINEAR)

    def _warp(self, frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
        points = cv2.add(self.grid, self._up(flow * self.gain))
        map1, map2 = cv2.convertMaps(points, None, cv2.CV_16SC2)
        return cv2.remap(
            frame, map1, map2, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )


def _near(flow: np.ndarray, other: np.ndarray, limit: float = 1.0) -> np.ndarray:
    """Where two flow fields are within ``limit`` px of each other."""
    return cv2.magnitude(flow[..., 0] - other[..., 0], flow[..., 1] - other[..., 1]) < limit


def _pixel_grid(width: int, height: int) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack([xs, ys])


def resample(frames: np.ndarray | Sequence[np.ndarray], count: int) -> np.ndarray:
    """Exactly ``count`` frames spread evenly over the clip, each the nearest original.

    Output frame j is frame ``floor((j + 0.5) * T / count)``: frames are dropped or repeated
    evenly, never blended; ``count == T`` returns the clip as it is.
    """
    clip = _check_clip(frames)
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise PostprodError(f"a clip needs at least one frame, not {count!r}")
    if count == len(clip):
        return clip
    picks = np.minimum(len(clip) - 1, ((np.arange(count) + 0.5) * len(clip) / count).astype(int))
    return clip[picks]


def retime(frames: np.ndarray | Sequence[np.ndarray], src_fps: float, dst_fps: float) -> np.ndarray:
    """The clip at ``dst_fps`` with the same duration: ``max(1, round(T * dst / src))``
    frames picked by ``resample`` (nearest frame, no blending)."""
    clip = _check_clip(frames)
    src_fps, dst_fps = _check_fps(src_fps, "src_fps"), _check_fps(dst_fps, "dst_fps")
    return resample(clip, max(1, round(len(clip) * dst_fps / src_fps)))


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
    clip = _check_clip(frames)
    src_fps, dst_fps = _check_fps(src_fps, "src_fps"), _check_fps(dst_fps, "dst_fps")
    target = count if count is not None else max(1, round(len(clip) * dst_fps / src_fps))
    if method is not None:
        clip = interpolate(clip, interpolation_factor(src_fps, dst_fps), method)
    return resample(clip, target)


def native_frames(count: int, fps: float, native_fps: float) -> int:
    """How many frames to ask a model running at ``native_fps`` for, so that ``to_rate``
    fills ``count`` frames at ``fps`` with the same duration (at least 2)."""
    fps, native_fps = _check_fps(fps), _check_fps(native_fps, "native_fps")
    return max(2, math.ceil(count * native_fps / fps - 1e-9))


# ---------------------------------------------------------------------------------------
# sizes


def fit_frames(frames: np.ndarray | Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """The clip at ``size`` (width, height): scaled to fit and centred on black (letterbox or
    pillarbox), never cropped or stretched. A clip at most one pixel larger in each direction
    (an odd side made even) is cropped at its right and bottom edges instead."""
    clip = _check_clip(frames)
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
    even and at least 2, else ``PostprodError``), else the first scene's, an odd side made
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
            raise PostprodError(
                f"output size {width}x{height} must be whole, even numbers of at least 2 "
                "(H.264 in yuv420p needs even sides)"
            )
        return int(width), int(height)
    height, width = np.asarray(scenes[0]).shape[1:3]
    even = even_size(width, height)
    if even[0] < 2 or even[1] < 2:
        raise PostprodError(f"scene 1's frames ({width}x{height}) are too small for a video")
    return even


# ---------------------------------------------------------------------------------------
# transitions and assembly


def scene_frame_counts(durations_s: Sequence[float], fps: float) -> list[int]:
    """Each scene's frames on the storyboard's global grid (``frames_for_span``); they sum to
    ``total_frames``. A duration that is not positive, or so short that its scene gets no
    frame at ``fps``, raises ``PostprodError``."""
    fps = _check_fps(fps)
    if not durations_s:
        raise PostprodError("no scenes: durations_s is empty")
    counts, start = [], 0.0
    for number, duration in enumerate(durations_s, start=1):
        if isinstance(duration, bool) or not isinstance(duration, int | float | np.number):
            raise PostprodError(f"scene {number}'s duration {duration!r} is not a number")
        if not math.isfinite(duration) or duration <= 0:
            raise PostprodError(f"scene {number}'s duration must be above 0 s, not {duration!r}")
        count = frames_for_span(start, start + duration, fps)
        if count < 1:
            raise PostprodError(
                f"scene {number} ({duration:g} s) gets no frame at {fps:g} fps; "
                "make it longer or raise the frame rate"
            )
        counts.append(count)
        start += duration
    return counts


def total_frames(durations_s: Sequence[float], fps: float) -> int:
    """The storyboard's frame count: ``round(sum(durations_s) * fps)``, whatever the
    transition (``assemble`` returns exactly this many)."""
    return sum(scene_frame_counts(durations_s, fps))


def cut_frames(durations_s: Sequence[float], fps: float) -> list[int]:
    """Output frame index at which each scene after the first begins on the storyboard grid
    (the middle of its dissolve with a crossfade); for ``quality.assess(cuts=...)``."""
    counts = scene_frame_counts(durations_s, fps)
    return [int(v) for v in np.cumsum(counts)[:-1]]


def transition_frames(fps: float, transition: str = "cut", transition_s: float = 0.0) -> int:
    """Frames in each dissolve: 0 for ``"cut"`` (its ``transition_s`` is ignored, but must
    not be negative), ``round(transition_s * fps)`` for ``"crossfade"``. An unknown
    transition name or a negative duration raises ``PostprodError``."""
    fps = _check_fps(fps)
    if transition not in TRANSITIONS:
        raise PostprodError(f"transition {transition!r} is not one of {', '.join(TRANSITIONS)}")
    transition_s = _check_seconds(transition_s, "transition_s")
    return 0 if transition == "cut" else round(transition_s * fps)


def frames_needed(
    durations_s: Sequence[float], fps: float, transition: str = "cut", transition_s: float = 0.0
) -> list[int]:
    """Frames to render for each scene at ``fps`` so that ``assemble`` hits the storyboard's
    total exactly.

    Its own span on the storyboard grid (``scene_frame_counts``), plus, with a crossfade of
    k frames, a head handle of ``k // 2`` frames (every scene but the first) and a tail
    handle of ``k - k // 2`` (every scene but the last). A crossfade longer than the
    shortest scene (k above its frame count) is refused with ``PostprodError``, as are a
    negative ``transition_s`` and an unknown transition name.
    """
    counts = scene_frame_counts(durations_s, fps)
    k = transition_frames(fps, transition, transition_s)
    if len(counts) > 1 and k > min(counts):
        shortest = int(np.argmin(counts))
        raise PostprodError(
            f"a {transition_s:g} s crossfade ({k} frames at {fps:g} fps) is longer than scene "
            f"{shortest + 1} ({durations_s[shortest]:g} s, {counts[shortest]} frames); "
            f"use at most {counts[shortest] / fps:.3g} s"
        )
    head, tail = k // 2, k - k // 2
    last = len(counts) - 1
    return [n + (head if i > 0 else 0) + (tail if i < last else 0) for i, n in enumerate(counts)]


def assemble(*args, **kwargs) -> np.ndarray:
    """The finished video, ``(total_frames(durations_s, fps), H, W, 3)`` uint8.

    ``assemble(scenes, fps, durations_s, transition="cut", transition_s=0.0, fade_in_s=0.0,
    fade_out_s=0.0, size=None, scene_fps=None, interpolation="flow")``: the frames of
    ``iter_assemble`` with the same arguments (see it for what each does and what is
    refused), stacked. It holds the whole video in memory; for a long video encode
    ``iter_assemble``'s frames as they come.
    """
    return np.stack(list(iter_assemble(*args, **kwargs)))


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
    (see the module's frame-count contract), and fades from and to black over
    ``round(fade_in_s * fps)`` and ``round(fade_out_s * fps)`` frames (the first and last
    frames are black).

    Refused with ``PostprodError`` before any frame is made: an unknown transition, a
    negative transition or fade, a crossfade longer than the shortest scene, a fade longer
    than the video, a scene count unlike the durations', a scene that is not RGB uint8
    ``(T, H, W, 3)`` or has no frames, a scene of a single frame that would have to fill
    more than one (it cannot move), an odd or tiny explicit ``size``. Odd sizes of the
    scenes themselves are made even (see ``output_size``).
    """
    fps = _check_fps(fps)
    needed = frames_needed(durations_s, fps, transition, transition_s)
    if len(scenes) != len(needed):
        raise PostprodError(f"{len(scenes)} scenes but {len(needed)} durations")
    rates = list(scene_fps) if scene_fps is not None else [None] * len(needed)
    if len(rates) != len(needed):
        raise PostprodError(f"{len(rates)} scene frame rates for {len(needed)} scenes")
    if interpolation is not None and interpolation not in INTERPOLATION_METHODS:
        raise PostprodError(
            f"interpolation {interpolation!r} is not one of "
            f"{', '.join(INTERPOLATION_METHODS)} or None"
        )
    clips = [_check_clip(scene, f"scene {i + 1}") for i, scene in enumerate(scenes)]
    for number, (clip, count, rate) in enumerate(zip(clips, needed, rates, strict=True), 1):
        if rate is not None:
            _check_fps(rate, f"scene {number}'s fps")
        if len(clip) == 1 and count > 1:
            raise PostprodError(
                f"scene {number} has a single frame but must fill {count} frames; "
                "a still cannot be a clip (render at least 2 frames)"
            )
    total = total_frames(durations_s, fps)
    fade_in = round(_check_seconds(fade_in_s, "fade_in_s") * fps)
    fade_out = round(_check_seconds(fade_out_s, "fade_out_s") * fps)
    for name, frames in (("fade_in_s", fade_in), ("fade_out_s", fade_out)):
        if frames > total:
            raise PostprodError(
                f"{name} ({frames} frames) is longer than the video ({total} frames)"
            )
    width, height = output_size(clips, size)
    k = transition_frames(fps, transition, transition_s)

    def prepare(index: int) -> np.ndarray:
        clip, rate = clips[index], rates[index]
        if rate is not None and rate != fps:
            clip = to_rate(clip, rate, fps, interpolation, count=needed[index])
        return fit_frames(resample(clip, needed[index]), (width, height))

    def produce() -> Iterator[np.ndarray]:
        position = 0

        def finish(frame: np.ndarray) -> np.ndarray:
            nonlocal position
            level = 1.0
            if position < fade_in:
                level *= position / fade_in
            if total - 1 - position < fade_out:
                level *= (total - 1 - position) / fade_out
            position += 1
            if level >= 1.0:
                return frame
            return cv2.convertScaleAbs(frame, alpha=level)

        head, tail = k // 2, k - k // 2
        current = prepare(0)
        start = 0  # first of ``current``'s frames not yet shown
        for index in range(len(clips)):
            last = index == len(clips) - 1
            solo_end = len(current) - (0 if last else tail + head)
            for frame in current[start:solo_end]:
                yield finish(frame)
            if last:
                break
            incoming = prepare(index + 1)
            for step in range(k):
                alpha = (step + 1) / (k + 1)
                yield finish(_mix(current[solo_end + step], incoming[step], alpha))
            current, start = incoming, k
        if position != total:  # the contract, checked
            raise AssertionError(f"assembled {position} frames, planned {total}")

    return produce()


# ---------------------------------------------------------------------------------------
# subtitles


def scene_cues(
    durations_s: Sequence[float], texts: Sequence[str]
) -> list[tuple[float, float, str]]:
    """WebVTT cues ``(start_s, end_s, text)``, one per scene, back to back from 0 (for
    ``media.write_webvtt``); with a crossfade the text changes mid-dissolve, at the cut."""
    if len(durations_s) != len(texts):
        raise PostprodError(f"{len(texts)} texts for {len(durations_s)} scenes")
    cues, start = [], 0.0
    for duration, text in zip(durations_s, texts, strict=True):
        cues.append((start, start + float(duration), text))
        start += float(duration)
    return cues


# ---------------------------------------------------------------------------------------
# benchmark


def _bench_frames(width: int, height: int, count: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture panning 3 px right and 1 px down per frame."""
    rng = np.random.default_rng(seed)
    margin = 3 * count + 8
    noise = rng.integers(0, 256, (height + margin, width + margin, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(noise, (0, 0), 3)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    return np.stack([texture[i : i + height, 3 * i : 3 * i + width] for i in range(count)])


def _best_seconds(run, repeats: int) -> float:
    """The fastest of ``repeats`` wall-clock timings of ``run()`` (the least disturbed by
    other work on the machine)."""
    best = math.inf
    for _ in range(max(1, repeats)):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return best


def bench_postprod(
    width: int = 1024,
    height: int = 576,
    frames: int = 48,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    fps: float = 24.0,
    repeats: int = 3,
) -> dict:
    """Frames per second of this machine's post-production on ``frames`` synthetic frames
    (a smooth random texture panning 3 px right and 1 px down a frame).

    ``encode_fps``: ``encode_h264`` to an mp4; ``ffmpeg_cli_fps``: the same frames piped as
    rawvideo into the same ffmpeg binary with the same crf, preset and flags, for comparison;
    ``interp_flow_fps`` / ``interp_blend_fps``: output frames per second of ``interpolate``
    x2 (``(frames - 1) * 2 + 1`` frames made). Each figure is the best of ``repeats`` runs.
    """
    clip = _bench_frames(width, height, frames)
    result: dict = {"width": width, "height": height, "frames": frames, "crf": crf}
    result.update(preset=preset, fps=fps, repeats=repeats)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mp4"
        seconds = _best_seconds(
            lambda: encode_h264(clip, path, fps, crf=crf, preset=preset), repeats
        )
        result["encode_fps"] = round(frames / seconds, 2)
        command = [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error"),
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"),
            *("-r", f"{fps:g}", "-i", "-"),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", *rate_control_args(crf, preset)),
            *("-fps_mode", "cfr", "-movflags", "+faststart", str(Path(folder) / "cli.mp4")),
        ]
        raw = clip.tobytes()
        seconds = _best_seconds(lambda: subprocess.run(command, input=raw, check=True), repeats)
        result["ffmpeg_cli_fps"] = round(frames / seconds, 2)
    made = (frames - 1) * 2 + 1
    for method in INTERPOLATION_METHODS:
        seconds = _best_seconds(lambda method=method: interpolate(clip, 2, method), repeats)
        result[f"interp_{method}_fps"] = round(made / seconds, 2)
    return result
