"""What finishing accepts: its error, the names it knows and the checks of its inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MAX_FACTOR = 4
INTERPOLATION_METHODS = ("flow", "blend")
TRANSITIONS = ("cut", "crossfade")


class FinishingError(ValueError):
    """Bad input to finishing (a factor, a transition, frame sizes); says which."""


def check_clip(frames: np.ndarray | Sequence[np.ndarray], what: str = "clip") -> np.ndarray:
    """``frames`` as one RGB uint8 array ``(T, H, W, 3)`` with at least one frame."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise FinishingError(
            f"{what} must be RGB uint8 frames (T, H, W, 3); got {array.dtype} {array.shape}"
        )
    if len(array) == 0:
        raise FinishingError(f"{what} has no frames")
    return array


def check_factor(factor: int) -> int:
    """An interpolation factor: a whole number 1..``MAX_FACTOR``."""
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer):
        raise FinishingError(f"interpolation factor must be a whole number 1..4, not {factor!r}")
    if not 1 <= factor <= MAX_FACTOR:
        raise FinishingError(
            f"interpolation factor {factor} is outside 1..{MAX_FACTOR} "
            "(1 keeps the frames; 2-4 insert 1-3 frames between each pair)"
        )
    return int(factor)


def check_fps(fps: float, what: str = "fps") -> float:
    """A frame rate above 0 and at most 1000."""
    if isinstance(fps, bool) or not isinstance(fps, int | float | np.number):
        raise FinishingError(f"{what} must be a number of frames per second, not {fps!r}")
    if not math.isfinite(fps) or not 0 < fps <= 1000:
        raise FinishingError(f"{what} must be above 0 (and at most 1000), not {fps!r}")
    return float(fps)


def check_seconds(value: float, what: str) -> float:
    """A length of 0 or more seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise FinishingError(f"{what} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise FinishingError(f"{what} must be 0 or more seconds, not {value!r}")
    return float(value)


def check_method(
    method: str | None, what: str = "interpolation", allow_none: bool = False
) -> str | None:
    """An interpolation method of ``INTERPOLATION_METHODS`` (or ``None`` where allowed)."""
    if method is None and allow_none:
        return None
    if method not in INTERPOLATION_METHODS:
        names = ", ".join(INTERPOLATION_METHODS) + (" or None" if allow_none else "")
        raise FinishingError(f"{what} {method!r} is not one of {names}")
    return method


def check_transition(transition: str) -> str:
    """A transition of ``TRANSITIONS``."""
    if transition not in TRANSITIONS:
        raise FinishingError(f"transition {transition!r} is not one of {', '.join(TRANSITIONS)}")
    return transition
