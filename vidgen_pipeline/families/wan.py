"""Wan 2.1 and 2.2 (Alibaba): flow-matching diffusion transformers with a umT5 text encoder
that reads Chinese and English.

- ``WanPipeline``: text to video (2.1 1.3B/14B, 2.2 T2V-A14B). With ``expand_timesteps`` in its
  index (2.2 TI2V-5B) the same weights also start from an image, through
  ``WanImageToVideoPipeline``.
- ``WanImageToVideoPipeline``: image (and text) to video (2.1 I2V-14B, 2.2 I2V-A14B).
- Wan 2.2 A14B has two transformers (``transformer`` for high noise, ``transformer_2`` for low
  noise, switched at ``boundary_ratio``) and a second guidance scale.

Frames: 4k+1 (the VAE compresses time 4x and keeps the first frame). Sides: multiples of the
VAE's spatial factor times the patch size (16; 32 for TI2V-5B's 16x VAE). The VAE runs in
fp32 as Wan's own examples load it. Flow shift 3.0 at 480p, 5.0 above (Wan's guidance).
"""

from __future__ import annotations

from vidgen_pipeline.families.base import (
    Family,
    FrameRule,
    Inputs,
    Native,
    component_config,
    read_index,
)

# Wan's own default negative prompt (its umT5 reads Chinese).
NEGATIVE = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
AREA_480P = 832 * 480


class Wan(Family):
    name = "wan"
    summary = "Wan 2.1 / 2.2: flow-matching DiT, umT5 text encoder (Chinese and English)"
    pipelines = ("WanPipeline", "WanImageToVideoPipeline")
    denoisers = ("transformer",)
    native = Native(width=832, height=480, frames=81, fps=16, steps=50)
    size_multiple = 16
    frame_rule = FrameRule(step=4, offset=1, minimum=5)
    languages = ("zh", "en")
    text_encoder = "umT5"
    token_limit = 512
    prompt_style = "sentences"
    negative_prompt = NEGATIVE
    passed_options = ("guidance_scale", "guidance_scale_2", "max_sequence_length")
    vram_gb = 16.0

    def inputs(self, pipeline_class, folder) -> Inputs:
        if pipeline_class == "WanImageToVideoPipeline":
            return Inputs(text=True, image="required")
        image = "optional" if read_index(folder).get("expand_timesteps") else "none"
        return Inputs(text=True, image=image)

    def image_pipeline(self, pipeline_class, folder) -> str | None:
        if pipeline_class == "WanPipeline" and read_index(folder).get("expand_timesteps"):
            return "WanImageToVideoPipeline"
        return None

    def rules(self, folder):
        vae = component_config(folder, "vae")
        transformer = component_config(folder, "transformer")
        spatial = int(vae.get("scale_factor_spatial") or 8)
        patch = transformer.get("patch_size") or [1, 2, 2]
        temporal = int(vae.get("scale_factor_temporal") or 4)
        return spatial * int(patch[1]), FrameRule(step=temporal, offset=1, minimum=temporal + 1)

    def check_folder(self, folder, pipeline_class, expects) -> None:
        """Wan 2.2 A14B switches to ``transformer_2`` at ``boundary_ratio``: both must be there."""
        if read_index(folder).get("boundary_ratio") is not None:
            expects = tuple(dict.fromkeys((*expects, "transformer", "transformer_2")))
        super().check_folder(folder, pipeline_class, expects)

    def component_dtypes(self, dtype: str) -> dict[str, str]:
        return {"vae": "fp32"}

    def defaults(self, pipeline_class, width, height) -> dict:
        return {
            "guidance_scale": 5.0,
            "flow_shift": 3.0 if width * height <= AREA_480P else 5.0,
            "max_sequence_length": self.token_limit,
        }

    def prepare(self, pipe, plan) -> list[str]:
        shift = plan.call_options.get("flow_shift")
        scheduler = pipe.scheduler
        if shift is None or "flow_shift" not in scheduler.config:
            return []
        if scheduler.config.flow_shift != shift:
            pipe.scheduler = type(scheduler).from_config(scheduler.config, flow_shift=shift)
        return [f"flow shift {shift:g}"]


FAMILY = Wan()
