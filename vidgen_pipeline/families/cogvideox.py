"""CogVideoX (THUDM / Zhipu): a DiT with a T5 text encoder (English). Text to video
(``CogVideoXPipeline``: 2B, 5B) and image to video (``CogVideoXImageToVideoPipeline``:
5B-I2V, separate weights).

Frames: 8k+1 up to the length it was trained on (49 for 1.0: 6 s at 8 fps): the VAE makes
four frames of each latent frame but the first, and decodes latent frames in pairs, so only an
odd latent count gives back the frames asked for. The 5B-I2V's
learned positional embeddings fix its size to the trained one (720x480). Sides: multiples of
16 (the VAE's 8x times the patch size).
"""

from __future__ import annotations

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.families.base import (
    Family,
    FrameRule,
    Inputs,
    Native,
    component_config,
)


class CogVideoX(Family):
    name = "cogvideox"
    summary = "CogVideoX: DiT, T5 text encoder; text or image (separate weights)"
    pipelines = ("CogVideoXPipeline", "CogVideoXImageToVideoPipeline")
    native = Native(width=720, height=480, frames=49, fps=8, steps=50)
    size_multiple = 16
    frame_rule = FrameRule(step=8, offset=1, minimum=9, maximum=49)
    text_encoder = "T5"
    token_limit = 226
    prompt_style = "sentences"
    negative_prompt = ""  # none
    passed_options = ("guidance_scale", "use_dynamic_cfg", "max_sequence_length")
    vram_gb = 26.0

    def inputs(self, pipeline_class, folder) -> Inputs:
        image = "required" if pipeline_class == "CogVideoXImageToVideoPipeline" else "none"
        return Inputs(text=True, image=image)

    def rules(self, folder):
        vae = component_config(folder, "vae")
        transformer = component_config(folder, "transformer")
        spatial = 2 ** (len(vae.get("block_out_channels") or [0, 0, 0, 0]) - 1)
        temporal = int(vae.get("temporal_compression_ratio") or 4)
        multiple = spatial * int(transformer.get("patch_size") or 2)
        trained = int(transformer.get("sample_frames") or 49)
        step = 2 * temporal  # an odd number of latent frames (decoded in pairs after the first)
        return multiple, FrameRule(step=step, offset=1, minimum=step + 1, maximum=trained)

    def check_size(self, folder, width: int, height: int) -> None:
        """Learned positional embeddings (5B-I2V) exist for the trained size only."""
        transformer = component_config(folder, "transformer")
        if not transformer.get("use_learned_positional_embeddings"):
            return
        spatial = 2 ** (len(component_config(folder, "vae").get("block_out_channels") or []) - 1)
        trained = (transformer["sample_width"] * spatial, transformer["sample_height"] * spatial)
        if (width, height) != trained:
            raise ModelChoiceError(
                f"{width}x{height}: this CogVideoX has learned positional embeddings for "
                f"{trained[0]}x{trained[1]} only"
            )

    def defaults(self, pipeline_class, width, height) -> dict:
        return {
            "guidance_scale": 6.0,
            "use_dynamic_cfg": True,
            "max_sequence_length": self.token_limit,
        }


FAMILY = CogVideoX()
