"""LTX-Video (Lightricks): a fast DiT with a T5 text encoder (English); one set of weights
makes video from text (``LTXPipeline``) or from an image and text
(``LTXImageToVideoPipeline``, made from the loaded pipeline without a second load);
``LTXConditionPipeline`` folders (0.9.5+) take either.

Frames: 8k+1 (the VAE compresses time 8x). Sides: multiples of 32 (the VAE's spatial factor).
"""

from __future__ import annotations

from vidgen_pipeline.families.base import (
    ClipRequest,
    Family,
    FrameRule,
    Inputs,
    Native,
    component_config,
)

NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"


class LTXVideo(Family):
    name = "ltx-video"
    summary = "LTX-Video: fast DiT, T5 text encoder; text or image with the same weights"
    pipelines = ("LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline")
    native = Native(width=704, height=512, frames=161, fps=25, steps=50)
    size_multiple = 32
    frame_rule = FrameRule(step=8, offset=1, minimum=9)
    text_encoder = "T5"
    token_limit = 128
    prompt_style = "sentences"
    negative_prompt = NEGATIVE
    passed_options = (
        "guidance_scale",
        "decode_timestep",
        "decode_noise_scale",
        "max_sequence_length",
    )
    vram_gb = 16.0

    def inputs(self, pipeline_class, folder) -> Inputs:
        return Inputs(text=True, image="optional")

    def image_pipeline(self, pipeline_class, folder) -> str | None:
        return "LTXImageToVideoPipeline" if pipeline_class == "LTXPipeline" else None

    def text_pipeline(self, pipeline_class) -> str | None:
        """An image-to-video folder makes its text-only clips through ``LTXPipeline``."""
        return "LTXPipeline" if pipeline_class == "LTXImageToVideoPipeline" else None

    def rules(self, folder):
        vae = component_config(folder, "vae")
        transformer = component_config(folder, "transformer")
        patch, patch_t = int(vae.get("patch_size") or 4), int(vae.get("patch_size_t") or 1)
        scaling = vae.get("spatio_temporal_scaling") or [True, True, True, False]
        spatial = vae.get("spatial_compression_ratio") or patch * 2 ** sum(scaling)
        temporal = vae.get("temporal_compression_ratio") or patch_t * 2 ** sum(scaling)
        multiple = int(spatial) * int(transformer.get("patch_size") or 1)
        return multiple, FrameRule(step=int(temporal), offset=1, minimum=int(temporal) + 1)

    def defaults(self, pipeline_class, width, height) -> dict:
        return {
            "guidance_scale": 3.0,
            # Used by the timestep-conditioned VAE of 0.9.1+ (ignored by 0.9.0's).
            "decode_timestep": 0.05,
            "decode_noise_scale": 0.025,
            "max_sequence_length": self.token_limit,
        }

    def call_arguments(self, plan, scene, clip: ClipRequest) -> dict:
        return {**super().call_arguments(plan, scene, clip), "frame_rate": plan.fps}


FAMILY = LTXVideo()
