"""The animatic: no model, pan and zoom over the keyframe (a storyboard card, a keyframe from
a text-to-image model, or the user's image). Not generated footage, and always says so."""

from __future__ import annotations

from vidgen_pipeline.families.base import Family, FrameRule, Inputs, Native


class Animatic(Family):
    name = "animatic"
    summary = "no model: pan and zoom over the keyframe (flagged as not generated)"
    pipelines = ()
    denoisers = ()
    native = Native(width=1024, height=576, frames=0, fps=24, steps=0)
    size_multiple = 2  # yuv420p
    frame_rule = FrameRule(minimum=1)
    languages = ()
    text_encoder = "-"
    token_limit = 0
    vram_gb = 0.0

    def inputs(self, pipeline_class, folder) -> Inputs:
        return Inputs(text=False, image="optional")


FAMILY = Animatic()
