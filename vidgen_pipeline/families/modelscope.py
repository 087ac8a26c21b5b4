"""ModelScope text-to-video (Damo's 1.7B UNet3D; ``TextToVideoSDPipeline``, deprecated
upstream but still shipped): English prompts through CLIP."""

from __future__ import annotations

from vidgen_pipeline.families.base import (
    Family,
    FrameRule,
    Inputs,
    Native,
)


class ModelScopeT2V(Family):
    name = "modelscope-t2v"
    summary = "ModelScope text-to-video (UNet3D, CLIP text encoder)"
    pipelines = ("TextToVideoSDPipeline",)
    denoisers = ("unet",)
    native = Native(width=256, height=256, frames=16, fps=8, steps=25)
    size_multiple = 8
    frame_rule = FrameRule()
    vram_gb = 8.0

    def inputs(self, pipeline_class, folder) -> Inputs:
        return Inputs(text=True, image="none")


FAMILY = ModelScopeT2V()
