"""The finishing resource: defaults for how clips are finished into the final video."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import ConfigurableResource
from pydantic import Field

from vidgen_pipeline.core.finishing.plan import FinishingPlan, plan_finishing
from vidgen_pipeline.core.media import DEFAULT_CRF, DEFAULT_PRESET
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.sound import SoundPlan


class Finishing(ConfigurableResource):
    """Frame interpolation, transitions, fades and H.264 settings (a prompt's own settings
    win over these)."""

    output_fps: float = Field(
        default=0, description="0: 24 for generated footage slower than that, else the clips'"
    )
    interpolation: str = Field(
        default="flow", description="flow (optical flow, follows motion) or blend"
    )
    transition: str = Field(default="cut", description="cut or crossfade between scenes")
    transition_s: float = Field(default=0.5, description="crossfade length in seconds")
    fade_s: float = Field(default=0.0, description="fade in from and out to black, seconds")
    crf: int = Field(default=DEFAULT_CRF, description="x264 quality, 0..51 (lower is better)")
    bitrate: str = Field(default="", description="e.g. 5000k: average bitrate instead of CRF")
    preset: str = Field(default=DEFAULT_PRESET, description="x264 preset (speed vs size)")
    subtitles: bool = Field(default=True, description="a WebVTT sidecar of scene descriptions")

    def plan(
        self,
        settings: GenerationSettings,
        durations_s: Sequence[float],
        clip_fps: float,
        generated: bool,
    ) -> FinishingPlan:
        transition = settings.transition or self.transition
        plan = plan_finishing(
            durations_s,
            clip_fps,
            generated,
            output_fps=settings.output_fps or self.output_fps or None,
            interpolate=settings.interpolate,
            interpolation=self.interpolation,
            transition=transition,
            transition_s=(
                settings.transition_s if settings.transition_s is not None else self.transition_s
            ),
            fade_s=settings.fade_s if settings.fade_s is not None else self.fade_s,
            crf=settings.crf if settings.crf is not None else self.crf,
            bitrate=settings.bitrate or self.bitrate or None,
            preset=self.preset,
            subtitles=self.subtitles,
        )
        plan.sound = SoundPlan(
            narration=bool(settings.narration),
            voice_model=settings.voice_model,
            music=settings.music,
            burn_subtitles=bool(settings.burn_subtitles),
        )
        return plan
