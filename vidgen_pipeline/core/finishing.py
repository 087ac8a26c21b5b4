"""The finishing plan: how scene clips become the final video (rate, transitions, encode).

Decided once per prompt in ``optimized_prompts`` (so ``scene_clips`` renders the crossfade
handles it needs and a re-run reproduces the same video), from the prompt's settings over
the ``post_production`` resource's defaults. Values that cannot work are clamped with a
note (a crossfade longer than the shortest scene) or refused before any rendering (an
unknown transition, a factor outside 1..4).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from vidgen_pipeline.core.media import MediaError, rate_control_args
from vidgen_pipeline.core.postprod import (
    INTERPOLATION_METHODS,
    MAX_FACTOR,
    TRANSITIONS,
    PostprodError,
    frames_needed,
    interpolation_factor,
    scene_frame_counts,
)

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
    notes: list[str] = Field(default_factory=list)

    def clip_frames(self, durations_s: Sequence[float]) -> list[int]:
        """Frames each scene clip must have (its span plus crossfade handles)."""
        return frames_needed(durations_s, self.clip_fps, self.transition, self.transition_s)


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
    each pair. Raises ``PostprodError`` for what cannot be clamped.
    """
    notes: list[str] = []
    if interpolate is not None and not 1 <= interpolate <= MAX_FACTOR:
        raise PostprodError(f"interpolate must be 1..{MAX_FACTOR}, got {interpolate}")
    if interpolation not in INTERPOLATION_METHODS:
        raise PostprodError(
            f"interpolation {interpolation!r} is not one of {', '.join(INTERPOLATION_METHODS)}"
        )
    if transition not in TRANSITIONS:
        raise PostprodError(f"transition {transition!r} is not one of {', '.join(TRANSITIONS)}")
    if transition_s < 0 or fade_s < 0:
        raise PostprodError("transition and fade lengths cannot be negative")
    try:
        rate_control_args(crf, preset, bitrate)  # refuses a bad crf, preset or bitrate now
    except MediaError as exc:
        raise PostprodError(str(exc)) from None
    if output_fps is None:
        if interpolate:
            output_fps = clip_fps * interpolate
        elif generated and clip_fps < SMOOTH_FPS:
            output_fps = SMOOTH_FPS
        else:
            output_fps = clip_fps
    if not 1 <= output_fps <= 120:
        raise PostprodError(f"output fps {output_fps:g} is outside 1..120")
    # The factor follows from the two rates (with both --interpolate and --output-fps set,
    # the rates win); 1 (asked for, or no faster output) means frames are picked, never made.
    factor = interpolation_factor(clip_fps, output_fps) if output_fps > clip_fps else 1
    if interpolate == 1:
        factor = 1
    method = interpolation if factor > 1 else None
    if transition == "cut":
        transition_s = 0.0
    elif len(durations_s) > 1:
        # A dissolve cannot be longer than the shortest scene (at the clip and output rates).
        room = min(
            min(scene_frame_counts(durations_s, rate)) / rate for rate in (clip_fps, output_fps)
        )
        if transition_s > room:
            notes.append(
                f"crossfade shortened from {transition_s:g} s to {room:.3g} s: the shortest "
                "scene is that long"
            )
            transition_s = room
    total = sum(durations_s)
    if 2 * fade_s > total:
        notes.append(f"fades shortened from {fade_s:g} s to {total / 2:.3g} s each")
        fade_s = total / 2
    return FinishingPlan(
        clip_fps=clip_fps,
        output_fps=output_fps,
        interpolation=method,
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
