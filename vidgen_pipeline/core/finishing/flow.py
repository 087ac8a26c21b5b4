"""Optical-flow interpolation: frames in between the frames of one scene.

``interpolate`` works on one scene at a time: never pass it frames that span a cut (the
assembly converts scene by scene).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vidgen_pipeline.core.finishing.inputs import check_clip, check_factor, check_method

# Optical flow is computed on a grey copy whose longer side is at most FLOW_MAX_SIDE (DIS at
# 512 px is accurate to well under a pixel on smooth footage and ~4x cheaper than at 1024)
# and at least FLOW_MIN_SIDE (a pyramid deep enough to follow a tenth of the picture), with
# a shorter side of at least DIS_MIN_SIDE (below it DIS crashes or returns NaN).
FLOW_MAX_SIDE = 512
FLOW_MIN_SIDE = 256
DIS_MIN_SIDE = 32


def interpolate(
    frames: np.ndarray | Sequence[np.ndarray], factor: int, method: str = "flow"
) -> np.ndarray:
    """Insert ``factor - 1`` frames between each pair of consecutive frames.

    Returns ``(T - 1) * factor + 1`` frames; the originals keep their places (every
    ``factor``-th frame). ``method``: ``"flow"`` follows the motion (DIS optical flow both
    ways, projected to the in-between time, both neighbours warped there with ``cv2.remap``
    and blended, each alone where the other cannot see the content: see ``_FlowWarper``);
    ``"blend"`` is a plain cross-blend. ``factor`` must be 1..4 (1 returns the frames
    unchanged), else ``FinishingError``; a one-frame clip is returned unchanged. Works on one
    scene: never pass frames that span a cut (``iter_assemble`` converts scene by scene).
    """
    factor = check_factor(factor)
    check_method(method, "interpolation method")
    clip = check_clip(frames)
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
            middles = [blend(first, second, t) for t in times]
        else:
            middles = warper.inbetweens(first, second, times)
        out[index * factor + 1 : (index + 1) * factor] = middles
    out[-1] = clip[-1]
    return out


def blend(first: np.ndarray, second: np.ndarray, t: float) -> np.ndarray:
    """``first`` and ``second`` mixed ``(1 - t, t)`` (a cross-blend, or a dissolve's frame)."""
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
