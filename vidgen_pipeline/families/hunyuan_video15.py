"""HunyuanVideo 1.5 (Tencent): an 8.3B DiT with a Qwen2.5-VL text encoder (Chinese and
English) and a ByT5 glyph encoder for text in the picture. Text to video
(``HunyuanVideo15Pipeline``) and image to video (``HunyuanVideo15ImageToVideoPipeline``, its
own weights), guidance set by the folder's ``guider``.

The image-to-video pipeline picks its output size itself: the bucket of its ``target_size``
nearest the image's aspect ratio; the plan takes that size (noted) so the frames come out as
planned. Frames: 4k+1. Sides: multiples of 16 (the VAE's spatial factor).
"""

from __future__ import annotations

from vidgen_pipeline.families.base import (
    ClipRequest,
    Family,
    FrameRule,
    Inputs,
    Native,
    component_config,
    prompt_arguments,
)

I2V = "HunyuanVideo15ImageToVideoPipeline"


class HunyuanVideo15(Family):
    name = "hunyuanvideo-1.5"
    summary = "HunyuanVideo 1.5: DiT, Qwen2.5-VL text encoder (Chinese and English)"
    pipelines = ("HunyuanVideo15Pipeline", I2V)
    native = Native(width=848, height=480, frames=121, fps=24, steps=50)
    size_multiple = 16
    frame_rule = FrameRule(step=4, offset=1, minimum=5)
    languages = ("zh", "en")
    text_encoder = "Qwen2.5-VL + ByT5"
    token_limit = 1000
    prompt_style = "sentences"
    negative_prompt = ""  # none
    vram_gb = 40.0

    def inputs(self, pipeline_class, folder) -> Inputs:
        return Inputs(text=True, image="required" if pipeline_class == I2V else "none")

    def rules(self, folder):
        vae = component_config(folder, "vae")
        temporal = int(vae.get("temporal_compression_ratio") or 4)
        multiple = int(vae.get("spatial_compression_ratio") or 16)
        return multiple, FrameRule(step=temporal, offset=1, minimum=temporal + 1)

    def fit_size(self, pipeline_class, folder, width: int, height: int) -> tuple[int, int]:
        """The size the image-to-video pipeline will make for an image of this shape."""
        if pipeline_class != I2V:
            return width, height
        from diffusers.pipelines.hunyuan_video1_5.image_processor import (
            generate_crop_size_list,
            get_closest_ratio,
        )

        target = int(component_config(folder, "transformer").get("target_size") or 640)
        spatial = self.rules(folder)[0]
        buckets = generate_crop_size_list(base_size=target, patch_size=spatial)
        import numpy as np

        ratios = np.array([round(float(h) / float(w), 5) for h, w in buckets])
        (fitted_height, fitted_width), _ = get_closest_ratio(height, width, ratios, buckets)
        return int(fitted_width), int(fitted_height)

    def call_arguments(self, plan, scene, clip: ClipRequest) -> dict:
        arguments = {
            **prompt_arguments(plan, scene),
            "num_frames": clip.frames,
            "num_inference_steps": plan.steps,
        }
        if clip.image is not None:
            arguments["image"] = clip.image  # the size follows from the image
        else:
            arguments.update(height=plan.height, width=plan.width)
        return arguments


FAMILY = HunyuanVideo15()
