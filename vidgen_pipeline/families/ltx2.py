"""LTX-2 (Lightricks): a 19B audio-video DiT that makes synchronized sound with its frames, from
text (``LTX2Pipeline``) or from an image and text (``LTX2ImageToVideoPipeline``, made from the
loaded pipeline without a second load). A Gemma 3 text encoder (read here as English, with
long descriptive prompts up to its 1024 tokens), a video VAE that compresses 32x in space and
8x in time, an audio VAE and a vocoder that turns its mel spectrograms into 24 kHz stereo.

Frames: 8k+1. Sides: multiples of 32, at least 64 (a one-latent side fails in the decoder's
padding). The frame rate is passed to the model: it sets the length of the audio it makes
(``num_frames / frame_rate`` seconds) and the motion's time base.

Guidance is diffusers' (CFG 3.0, spatio-temporal guidance, modality isolation, audio CFG 7.0);
what differs between generations is read from the folder: LTX-2.0's ``LTX2Vocoder`` folders
get the legacy cross-modality timestep and STG at block 29, as diffusers documents for 2.0;
2.3 and later (``LTX2VocoderWithBWE``) keep the pipeline's defaults (block 28).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.families.base import (
    ClipRequest,
    Family,
    FrameRule,
    Inputs,
    Native,
    component_config,
    read_index,
)

T2V, I2V = "LTX2Pipeline", "LTX2ImageToVideoPipeline"
# LTX-2.0's vocoder class; 2.3 and later ship LTX2VocoderWithBWE (bandwidth extension).
LTX2_0_VOCODER = "LTX2Vocoder"
# LTX-2 was trained on H.264-compressed conditioning images (CRF 33): diffusers re-encodes the
# start image through PyAV, which is optional here; without it the image goes in as it is.
TRAINED_IMAGE_CRF = None  # the pipeline's own choice (33 for Gemma 3 generations)


class LTX2(Family):
    name = "ltx-2"
    summary = "LTX-2: audio-video DiT, Gemma 3 text encoder; text or image, with sound"
    pipelines = (T2V, I2V)
    native = Native(width=768, height=512, frames=121, fps=24, steps=30)
    size_multiple = 32
    frame_rule = FrameRule(step=8, offset=1, minimum=9)
    text_encoder = "Gemma 3"
    token_limit = 1024
    prompt_style = "sentences"
    makes_audio = True
    passed_options = (
        "guidance_scale",
        "audio_guidance_scale",
        "stg_scale",
        "modality_scale",
        "spatio_temporal_guidance_blocks",
        "use_cross_timestep",
    )
    # bf16, all on the GPU at 121 x 768x512: the 19B transformer (~38 GB), Gemma 3 12B
    # (~24 GB), the VAEs and vocoder, activations (an estimate: not measured here).
    vram_gb = 70.0

    @property
    def negative_prompt(self) -> str:
        """LTX-2's own default negative prompt (diffusers keeps Lightricks' text), which
        names audio faults too (muted audio, robotic voice, off-sync audio)."""
        from diffusers.pipelines.ltx2.utils import DEFAULT_NEGATIVE_PROMPT

        return DEFAULT_NEGATIVE_PROMPT

    def inputs(self, pipeline_class, folder) -> Inputs:
        return Inputs(text=True, image="optional")

    def image_pipeline(self, pipeline_class, folder) -> str | None:
        return I2V if pipeline_class == T2V else None

    def text_pipeline(self, pipeline_class) -> str | None:
        """An image-to-video folder makes its text-only clips through ``LTX2Pipeline``."""
        return T2V if pipeline_class == I2V else None

    def rules(self, folder):
        """From the VAE's config (its compression is stated there; the formula diffusers
        falls back on counts every block as both spatial and temporal)."""
        vae = component_config(folder, "vae")
        transformer = component_config(folder, "transformer")
        spatial = int(vae.get("spatial_compression_ratio") or 32)
        temporal = int(vae.get("temporal_compression_ratio") or 8)
        multiple = spatial * int(transformer.get("patch_size") or 1)
        return multiple, FrameRule(step=temporal, offset=1, minimum=temporal + 1)

    def check_size(self, folder, width: int, height: int) -> None:
        smallest = 2 * self.rules(folder)[0]
        if min(width, height) < smallest:
            raise ModelChoiceError(
                f"size {width}x{height} is too small for ltx-2: each side at least {smallest} "
                "(two latent pixels; its decoder pads by one)"
            )

    def defaults(self, pipeline_class, width, height) -> dict:
        return {
            "guidance_scale": 3.0,
            "audio_guidance_scale": 7.0,
            "stg_scale": 1.0,
            "modality_scale": 3.0,
            # 0: the start image is used as it is (no PyAV here to re-encode it as trained).
            "image_crf": TRAINED_IMAGE_CRF if importlib.util.find_spec("av") else 0,
        }

    def folder_options(self, pipeline_class, folder) -> dict:
        """LTX-2.0 folders (``LTX2Vocoder``): the legacy cross-modality timestep and STG at
        block 29 (diffusers' pipeline defaults are LTX-2.3's and later's)."""
        vocoder = read_index(folder).get("vocoder") or [None, None]
        if folder is None or vocoder[-1] != LTX2_0_VOCODER:
            return {}
        return {"use_cross_timestep": False, "spatio_temporal_guidance_blocks": [29]}

    def prepare(self, pipe, plan) -> list[str]:
        if plan.call_options.get("image_crf") == 0 and plan.image_pipeline == I2V:
            return ["start images not re-encoded as LTX-2 was trained (pip install av for it)"]
        return []

    def call_arguments(self, plan, scene, clip: ClipRequest) -> dict:
        arguments = {**super().call_arguments(plan, scene, clip), "frame_rate": plan.fps}
        if clip.image is not None and plan.call_options.get("image_crf") is not None:
            arguments["image_crf"] = plan.call_options["image_crf"]
        return arguments

    def audio_of(self, output, pipe) -> tuple[np.ndarray, int]:
        """The first (only) video's audio: the pipeline returns (batch, channels, samples)
        at the vocoder's ``output_sampling_rate``."""
        audio = output.audio[0]
        if hasattr(audio, "float"):  # a torch tensor, bf16 on a GPU
            audio = audio.float().cpu().numpy()
        samples = np.clip(np.asarray(audio, dtype=np.float32).T, -1.0, 1.0)
        return samples, int(pipe.vocoder.config.output_sampling_rate)


FAMILY = LTX2()
