"""AnimateDiff: a motion adapter on a Stable Diffusion 1.5 base (text to video, CLIP).

A folder saved as an ``AnimateDiffPipeline`` runs as it is; an SD 1.5 base with the adapter
(the ``animatediff`` registry entry) gets the scheduler the adapter was trained with: DDIM
with linear betas (SD 1.5 ships PNDM with scaled-linear betas, which blurs the motion).
"""

from __future__ import annotations

from vidgen_pipeline.families.base import (
    Family,
    FrameRule,
    Inputs,
    Native,
    component_config,
)

# The motion adapter's documented setup (guoyww/animatediff, diffusers' AnimateDiff docs).
ADAPTER_SCHEDULER = {
    "beta_schedule": "linear",
    "clip_sample": False,
    "timestep_spacing": "linspace",
    "steps_offset": 1,
}


class AnimateDiff(Family):
    name = "animatediff"
    summary = "AnimateDiff: a motion adapter on Stable Diffusion 1.5 (CLIP text encoder)"
    pipelines = ("AnimateDiffPipeline",)
    denoisers = ("unet",)
    native = Native(width=512, height=512, frames=16, fps=8, steps=25)
    size_multiple = 8
    frame_rule = FrameRule(maximum=32)  # the v1.5 adapters' positional encodings
    vram_gb = 8.0

    def inputs(self, pipeline_class, folder) -> Inputs:
        return Inputs(text=True, image="none")

    def rules(self, folder):
        adapter = component_config(folder, "motion_adapter") or component_config(folder, "unet")
        longest = adapter.get("motion_max_seq_length") or 32
        return self.size_multiple, FrameRule(maximum=int(longest))

    def prepare(self, pipe, plan) -> list[str]:
        if not plan.motion_adapter_path:
            return []
        from diffusers import DDIMScheduler

        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, **ADAPTER_SCHEDULER)
        return ["DDIM scheduler with linear betas (the motion adapter's setup)"]


FAMILY = AnimateDiff()
