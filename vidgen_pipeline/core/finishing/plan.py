"""The finishing plan: how scene clips become the final video (rate, transitions, encode).

Decided once per prompt in ``optimized_prompts`` (so ``scene_clips`` renders the crossfade
handles it needs and a re-run reproduces the same video), from the prompt's settings over
the ``finishing`` resource's defaults. Values that cannot work are clamped with a note (a
crossfade longer than the shortest scene) or refused before any rendering (an unknown
transition, a factor outside 1..4).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from vidgen_pipeline.core.finishing.inputs import (
    INTERPOLATION_METHODS,
    MAX_FACTOR,
    TRANSITIONS,
    FinishingError,
)
from vidgen_pipeline.core.finishing.timing import (
    frames_needed,
    interpolation_factor,
    scene_frame_counts,
)
from vidgen_pipeline.core.media import MediaError, rate_control_args
from vidgen_pipeline.core.sound import SoundPlan

# Generated footage below this rate is interpolated up to it unless asked otherwise.
SMOOTH_FPS = 24.0


class FinishingPlan(BaseModel):
    """How the ``final_video`` asset finishes one prompt's clips."""

    model_config = ConfigDict(extra="forbid")

    clip_fps: float = Field(description="the rate the scene clips are rendered at")
    output_fps: float
    interpolation: str | None = Field(description="flow, blend, or None (frames picked only)")
    factor: int = Field(description="frame-rate multiplier before resampling (1: no new frames)")
    transition: str = "cut"
    transition_s: float = 0.0
    fade_in_s: float = 0.0
    fade_out_s: float = 0.0
    crf: int = 18
    bitrate: str | None = None
    preset: str = "medium"
    subtitles: bool = True
    sound: SoundPlan = Field(default_factory=SoundPlan)
    notes: list[str] = Field(default_factory=list)

    def clip_frames(self, durations_s: Sequence[float]) -> list[int]:
        """Frames each scene clip must have (its span plus crossfade handles)."""
        return frames_needed(durations_s, self.clip_fps, self.transition, self.transition_s)

    def output_frames(self, durations_s: Sequence[float]) -> list[int]:
        """Frames each finished clip has at the output rate (span plus handles)."""
        return frames_needed(durations_s, self.output_fps, self.transition, self.transition_s)


def plan_finishing(
    durations_s: Sequence[float],
    clip_fps: float,
    generated: bool,
    *,
    output_fps: float | None = None,
    interpolate: int | None = None,
    interpolation: str = "flow",
    transition: str = "cut",
    transition_s: float = 0.0,
    fade_s: float = 0.0,
    crf: int = 18,
    bitrate: str | None = None,
    preset: str = "medium",
    subtitles: bool = True,
) -> FinishingPlan:
    """The plan for scenes of ``durations_s`` rendered at ``clip_fps``.

    ``output_fps`` unset: ``clip_fps x interpolate`` when a factor is given, else 24 fps for
    generated footage slower than that (SVD's 6-7 fps, T2V's 8), else ``clip_fps``.
    ``interpolate`` 1 means no new frames; 2..4 flow (or ``interpolation``) frames between
    each pair. Raises ``FinishingError`` for what cannot be clamped.
    """
    # 1. refuse what cannot work
    _refuse_impossible(interpolate, interpolation, transition, transition_s, fade_s)
    _refuse_bad_encoding(crf, preset, bitrate)
    # 2. the rates, and the interpolation between them
    output_fps = _output_fps(clip_fps, generated, output_fps, interpolate)
    # The factor follows from the two rates (with both --interpolate and --output-fps set,
    # the rates win); 1 (asked for, or no faster output) means frames are picked, never made.
    factor = interpolation_factor(clip_fps, output_fps) if output_fps > clip_fps else 1
    if interpolate == 1:
        factor = 1
    # 3. clamp the transition and the fades to what the scenes can hold
    notes: list[str] = []
    if transition == "cut":
        transition_s = 0.0
    elif len(durations_s) > 1:
        transition_s = _fit_crossfade(durations_s, transition_s, (clip_fps, output_fps), notes)
    fade_s = _fit_fades(durations_s, fade_s, notes)
    return FinishingPlan(
        clip_fps=clip_fps,
        output_fps=output_fps,
        interpolation=interpolation if factor > 1 else None,
        factor=factor,
        transition=transition,
        transition_s=transition_s,
        fade_in_s=fade_s,
        fade_out_s=fade_s,
        crf=crf,
        bitrate=bitrate,
        preset=preset,
        subtitles=subtitles,
        notes=notes,
    )


def _refuse_impossible(
    interpolate: int | None,
    interpolation: str,
    transition: str,
    transition_s: float,
    fade_s: float,
) -> None:
    if interpolate is not None and not 1 <= interpolate <= MAX_FACTOR:
        raise FinishingError(f"interpolate must be 1..{MAX_FACTOR}, got {interpolate}")
    if interpolation not in INTERPOLATION_METHODS:
        raise FinishingError(
            f"interpolation {interpolation!r} is not one of {', '.join(INTERPOLATION_METHODS)}"
        )
    if transition not in TRANSITIONS:
        raise FinishingError(f"transition {transition!r} is not one of {', '.join(TRANSITIONS)}")
    if transition_s < 0 or fade_s < 0:
        raise FinishingError("transition and fade lengths cannot be negative")


def _refuse_bad_encoding(crf: int, preset: str, bitrate: str | None) -> None:
    try:
        rate_control_args(crf, preset, bitrate)  # refuses a bad crf, preset or bitrate now
    except MediaError as exc:
        raise FinishingError(str(exc)) from None


def _output_fps(
    clip_fps: float, generated: bool, output_fps: float | None, interpolate: int | None
) -> float:
    if output_fps is None:
        if interpolate:
            output_fps = clip_fps * interpolate
        elif generated and clip_fps < SMOOTH_FPS:
            output_fps = SMOOTH_FPS
        else:
            output_fps = clip_fps
    if not 1 <= output_fps <= 120:
        raise FinishingError(f"output fps {output_fps:g} is outside 1..120")
    return output_fps


def _fit_crossfade(
    durations_s: Sequence[float], transition_s: float, rates: Sequence[float], notes: list[str]
) -> float:
    """A dissolve no longer than the shortest scene (at the clip and the output rates)."""
    room = min(min(scene_frame_counts(durations_s, rate)) / rate for rate in rates)
    if transition_s > room:
        notes.append(
            f"crossfade shortened from {transition_s:g} s to {room:.3g} s: the shortest "
            "scene is that long"
        )
        return room
    return transition_s


def _fit_fades(durations_s: Sequence[float], fade_s: float, notes: list[str]) -> float:
    """Fades in and out that together fit in the video."""
    total = sum(durations_s)
    if 2 * fade_s > total:
        notes.append(f"fades shortened from {fade_s:g} s to {total / 2:.3g} s each")
        return total / 2
    return fade_s
