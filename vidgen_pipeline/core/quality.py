"""Is a clip watchable? Blank, frozen and flickering frames, measured on luma.

Every figure is in luma levels (0..255, BT.601 weights on RGB) and comes from one pass over
the frames, which may be any iterable of RGB uint8 ``(H, W, 3)`` frames (an array, or
``media.read_frames`` of a file), so a long video is never held in memory. Frames wider
than ``SAMPLE_WIDTH`` are read on a regular grid of pixels (every 2nd for 1024 px): a
sampled pixel still sees a motion of a fraction of a pixel, which averaging would blur.

Verdicts and their thresholds (each figure also goes into the check's metadata):

``is_blank``: at least ``BLANK_SHARE`` (half) of the frames are blank; a frame is blank
    when its luma standard deviation is under ``BLANK_STD`` (a flat black, grey or white
    picture; a storyboard card has ~26) or its mean luma is under ``BLACK_MEAN`` (black with
    a few specks).
``is_frozen``: at least ``FROZEN_SHARE`` (half) of the clip's one-second windows are still.
    A window is still when its frames differ from its last frame by under ``STILL_MAD``
    (mean absolute luma difference), taking the median over the window's frames, so that
    an encoder settling after a keyframe (x264 ``ultrafast`` refines a still picture for a
    few frames) or a one-off glitch does not count as motion. Judged over a second rather
    than frame to frame, so a very slow move still counts as moving: the slowest push-in a
    storyboard asks for (zoom 1.06 over a 15 s scene) changes ~0.05-0.1 levels a frame,
    no more than codec noise, but its windows differ by 0.2-1.3 levels (160 to 512 px
    wide); a repeated frame stays under 0.07 after H.264 (crf 18-35). The ease-in and
    ease-out of an animatic, where it barely moves, are well under half the clip.
``flickers``: ``flicker_score`` is ``FLICKER_LEVELS`` or more: the mean of
    ``|m[i+1] - 2 m[i] + m[i-1]| / 2`` over the clip, where ``m`` is each frame's mean luma.
    Brightness alternating by A levels every frame scores A; a steady change (a fade, a
    pan onto a brighter area) scores ~0; motion at constant light scores ~0. Terms that
    span a scene cut are left out when ``cuts`` are given (a hard cut would add its step).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

SAMPLE_WIDTH = 512
# The checks of a finished clip read it at most this wide (``sampled``, or a decode at this
# width): the frozen threshold holds from 160 to 512 px wide (see above), and a quarter of
# the pixels of a 1024 px frame cost a quarter as much to move and measure.
CHECK_WIDTH = 256
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)

BLANK_STD = 2.5
BLACK_MEAN = 3.0
BLANK_SHARE = 0.5
NEAR_IDENTICAL_MAD = 0.05  # a consecutive pair this close counts as a repeated frame
STILL_MAD = 0.15
STILL_WINDOW_S = 1.0
FROZEN_SHARE = 0.5
FLICKER_LEVELS = 3.0
DEFAULT_FPS = 24.0


class QualityError(ValueError):
    """Frames that cannot be measured (wrong shape or type, or none)."""


@dataclass(frozen=True)
class BlankStats:
    """Luma level and contrast, per frame and for the whole clip."""

    mean_luma: float  # over all frames
    luma_std: float  # of every sampled pixel of every frame around ``mean_luma``
    frame_means: np.ndarray
    frame_stds: np.ndarray  # each frame's own (spatial) standard deviation
    blank_share: float  # frames under BLANK_STD or BLACK_MEAN


@dataclass(frozen=True)
class FrozenStats:
    """How much consecutive frames, and frames within a window, differ."""

    mean_abs_diff: float  # mean over consecutive pairs of their mean absolute luma difference
    pair_diffs: np.ndarray  # that difference for each consecutive pair (T - 1 values)
    near_identical_share: float  # pairs under NEAR_IDENTICAL_MAD (1.0 for a single frame)
    still_share: float  # still one-second windows (see the module; 1.0 for a single frame)
    window: int  # frames per window (a second's worth)


@dataclass(frozen=True)
class QualityReport:
    """Every figure of one clip, and the verdicts (see the module for the thresholds)."""

    frames: int
    fps: float
    duration_s: float
    blank: BlankStats = field(repr=False)
    frozen: FrozenStats = field(repr=False)
    flicker_score: float
    is_blank: bool
    is_frozen: bool
    flickers: bool

    @property
    def passed(self) -> bool:
        return not (self.is_blank or self.is_frozen or self.flickers)

    def problems(self) -> list[str]:
        """One line per failed verdict, with its figure (empty when the clip passed)."""
        lines = []
        if self.is_blank:
            lines.append(
                f"blank: {self.blank.blank_share:.0%} of frames are flat or black "
                f"(mean luma {self.blank.mean_luma:.1f}, std {self.blank.luma_std:.1f})"
            )
        if self.is_frozen:
            lines.append(
                f"frozen: {self.frozen.still_share:.0%} of its seconds do not move "
                f"(mean frame difference {self.frozen.mean_abs_diff:.3f} levels)"
            )
        if self.flickers:
            lines.append(
                f"flickers: mean luma jumps {self.flicker_score:.2f} levels a frame "
                f"(limit {FLICKER_LEVELS:g})"
            )
        return lines

    def as_metadata(self) -> dict[str, float | int | bool]:
        """Plain numbers (and the verdicts as booleans) for Dagster metadata."""
        return {
            "frames": self.frames,
            "fps": self.fps,
            "duration_s": round(self.duration_s, 4),
            "mean_luma": round(self.blank.mean_luma, 3),
            "luma_std": round(self.blank.luma_std, 3),
            "min_frame_luma_std": round(float(self.blank.frame_stds.min()), 3),
            "blank_share": round(self.blank.blank_share, 4),
            "mean_abs_frame_diff": round(self.frozen.mean_abs_diff, 4),
            "near_identical_share": round(self.frozen.near_identical_share, 4),
            "still_share": round(self.frozen.still_share, 4),
            "flicker_score": round(self.flicker_score, 4),
            "is_blank": self.is_blank,
            "is_frozen": self.is_frozen,
            "flickers": self.flickers,
            "passed": self.passed,
        }


class _Scan:
    """One pass over the frames, keeping per-frame figures and two luma images."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.means: list[float] = []
        self.stds: list[float] = []
        self.pair_diffs: list[float] = []
        self.window_drifts: list[float] = []
        self.total = 0.0
        self.total_sq = 0.0
        self.pixels = 0
        self._previous: np.ndarray | None = None
        self._window: list[np.ndarray] = []  # luma of the open window's frames so far
        self._shape: tuple[int, ...] | None = None

    def add(self, frame: np.ndarray) -> None:
        index = len(self.means)
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise QualityError(
                f"frame {index} must be RGB uint8 (H, W, 3); got {frame.dtype} {frame.shape}"
            )
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise QualityError(f"frame {index} is {frame.shape}, the first was {self._shape}")
        step = max(1, -(-frame.shape[1] // SAMPLE_WIDTH))
        luma = frame[::step, ::step].astype(np.float32) @ _LUMA
        mean = float(luma.mean())
        self.means.append(mean)
        self.stds.append(float(luma.std()))
        self.total += float(luma.sum(dtype=np.float64))
        self.total_sq += float(np.square(luma, dtype=np.float64).sum())
        self.pixels += luma.size
        if self._previous is not None:
            self.pair_diffs.append(float(np.abs(luma - self._previous).mean()))
        self._window.append(luma)
        if index and index % self.window == 0:  # this frame closes a window, opens the next
            self._close_window()
        self._previous = luma

    def _close_window(self) -> None:
        last = self._window[-1]
        drifts = [float(np.abs(luma - last).mean()) for luma in self._window[:-1]]
        self.window_drifts.append(float(np.median(drifts)))
        self._window = [last]

    def finish(self) -> _Scan:
        if not self.means:
            raise QualityError("no frames to measure")
        if len(self._window) > 1:  # a last, shorter window
            self._close_window()
        return self

    def blank(self) -> BlankStats:
        means, stds = np.array(self.means), np.array(self.stds)
        mean = self.total / self.pixels
        blank = (stds < BLANK_STD) | (means < BLACK_MEAN)
        return BlankStats(
            mean_luma=mean,
            luma_std=max(0.0, self.total_sq / self.pixels - mean * mean) ** 0.5,
            frame_means=means,
            frame_stds=stds,
            blank_share=float(blank.mean()),
        )

    def frozen(self) -> FrozenStats:
        diffs = np.array(self.pair_diffs)
        drifts = np.array(self.window_drifts)
        return FrozenStats(
            mean_abs_diff=float(diffs.mean()) if len(diffs) else 0.0,
            pair_diffs=diffs,
            near_identical_share=float((diffs < NEAR_IDENTICAL_MAD).mean()) if len(diffs) else 1.0,
            still_share=float((drifts < STILL_MAD).mean()) if len(drifts) else 1.0,
            window=self.window,
        )

    def flicker(self, cuts: Sequence[int] = ()) -> float:
        means = np.array(self.means)
        if len(means) < 3:
            return 0.0
        jitter = np.abs(means[2:] - 2 * means[1:-1] + means[:-2]) / 2
        keep = np.ones(len(jitter), bool)
        for cut in cuts:  # term i covers frames i..i+2; it spans a cut at c when i < c <= i+2
            keep[max(0, cut - 2) : max(0, cut)] = False
        return float(jitter[keep].mean()) if keep.any() else 0.0


def sampled(frames: np.ndarray, width: int = CHECK_WIDTH) -> np.ndarray:
    """Frames (T, H, W, 3) read on a regular grid of pixels at most ``width`` wide (every
    n-th pixel each way; a view, nothing is copied), for the checks."""
    step = max(1, -(-frames.shape[2] // width))
    return frames[:, ::step, ::step]


def _window(fps: float | None) -> int:
    rate = DEFAULT_FPS if fps is None else float(fps)
    if not rate > 0:
        raise QualityError(f"fps must be above 0, not {fps!r}")
    return max(1, round(rate * STILL_WINDOW_S))


def _scan(frames: Iterable[np.ndarray], fps: float | None = None) -> _Scan:
    scan = _Scan(_window(fps))
    for frame in frames:
        scan.add(frame)
    return scan.finish()


def blank_stats(frames: Iterable[np.ndarray]) -> BlankStats:
    """Mean luma and luma standard deviation, per frame and overall, and the share of blank
    frames (luma std under ``BLANK_STD`` or mean under ``BLACK_MEAN``)."""
    return _scan(frames).blank()


def frozen_stats(frames: Iterable[np.ndarray], fps: float | None = None) -> FrozenStats:
    """Mean absolute luma difference of consecutive frames, the share of near-identical
    pairs (under ``NEAR_IDENTICAL_MAD``), and the share of still one-second windows (under
    ``STILL_MAD``, see the module; ``fps`` sets the window, default 24 frames)."""
    return _scan(frames, fps).frozen()


def flicker_score(frames: Iterable[np.ndarray], cuts: Sequence[int] = ()) -> float:
    """Temporal flicker in luma levels: mean ``|m[i+1] - 2 m[i] + m[i-1]| / 2`` of the
    frames' mean luma ``m`` (0 for fewer than 3 frames). ``cuts``: indices of frames that
    start a new scene; the terms spanning them are left out."""
    return _scan(frames).flicker(cuts)


def assess(frames: Iterable[np.ndarray], fps: float, cuts: Sequence[int] = ()) -> QualityReport:
    """All the figures of a clip in one pass, and the verdicts against the thresholds.

    ``frames``: RGB uint8 frames of one size (an array ``(T, H, W, 3)`` or any iterable);
    ``fps``: the clip's rate (sets the one-second window of the frozen check and the
    duration); ``cuts``: for a whole video, the first frame index of each scene after the
    first (``finishing.timing.cut_frames``), so hard cuts do not count as flicker. Raises
    ``QualityError`` for no frames or frames of the wrong shape or type.
    """
    assessor = Assessor(fps)
    for frame in frames:
        assessor.add(frame)
    return assessor.report(cuts)


class Assessor:
    """``assess`` fed one frame at a time: hand ``add`` to whatever already walks the
    frames (the decoder that probes a finished file), then ask for the ``report``."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self._scan = _Scan(_window(fps))

    def add(self, frame: np.ndarray) -> None:
        self._scan.add(frame)

    def report(self, cuts: Sequence[int] = ()) -> QualityReport:
        scan, fps = self._scan.finish(), self.fps
        blank, frozen = scan.blank(), scan.frozen()
        score = scan.flicker(cuts)
        return QualityReport(
            frames=len(scan.means),
            fps=float(fps),
            duration_s=len(scan.means) / float(fps),
            blank=blank,
            frozen=frozen,
            flicker_score=score,
            is_blank=blank.blank_share >= BLANK_SHARE,
            is_frozen=frozen.still_share >= FROZEN_SHARE,
            flickers=score >= FLICKER_LEVELS,
        )
