"""Tiny random-weight CogVideoX pipelines: text to video and image to video (separate weights).

As upstream (``THUDM/CogVideoX-2b`` / ``-5b``, ``THUDM/CogVideoX-5b-I2V``) the two are separate
repos with different transformers; configs follow diffusers' tests (``tests/pipelines/cogvideo/``):
T5 encoder (``T5EncoderModel``, the committed ``t5`` tokenizer as ``T5TokenizerFast``; the text is
always padded to ``max_text_seq_length`` = 226 tokens, the real length, so the pipelines' default
``max_sequence_length`` works), ``AutoencoderKLCogVideoX`` (8x spatial, 4x temporal, 4 latent
channels), ``CogVideoXTransformer3DModel`` (patch 2) trained, as its config says, on
``sample_frames`` = 9 frames at ``sample_height`` x ``sample_width`` = 4 x 4 latents (32x32 px),
the CogVideoX DDIM / DPM schedulers with the real repos' settings.

Rules: height and width multiples of 8 (``check_inputs``); ``num_frames`` defaults to the trained
``sample_frames`` (real models: 49 at 8 fps), latent frames are ``(num_frames - 1) // 4 + 1`` and
the VAE decodes them to ``4 * (latent - 1) + 1`` frames: use 4k+1 (9 here, 49 real). Output:
``.frames`` (batch, frames, height, width, 3) with ``output_type="np"`` (default "pil").
"""

from __future__ import annotations

from pathlib import Path

from vidgen_pipeline.testing.encoders import T5_DIM, t5_encoder
from vidgen_pipeline.testing.layout import Precision, save_pipeline
from vidgen_pipeline.testing.tokenizers import load_t5_tokenizer

LATENT_CHANNELS = 4
SAMPLE = 4  # trained latent height and width: 32 px through the 8x VAE
SAMPLE_FRAMES = 9
TEXT_TOKENS = 226  # CogVideoX's max_text_seq_length and the pipelines' max_sequence_length

# THUDM/CogVideoX-*'s scheduler settings (both schedulers take them).
SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "set_alpha_to_one": True,
    "snr_shift_scale": 3.0,
    "steps_offset": 0,
    "timestep_spacing": "trailing",
}


def _vae():
    import torch
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(0)
    return AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=LATENT_CHANNELS,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    ).eval()


def _transformer(image_to_video: bool):
    """T2V: sinusoidal positions, 4 heads of 8 (CogVideoX-2b's kind). I2V: image latents
    concatenated to the noise (8 input channels), rotary plus learned positions, 2 heads of 16
    (rotary needs head dims of 16) as CogVideoX-5b-I2V; learned positions tie it to the trained
    size."""
    import torch
    from diffusers import CogVideoXTransformer3DModel

    torch.manual_seed(0)
    return CogVideoXTransformer3DModel(
        num_attention_heads=2 if image_to_video else 4,
        attention_head_dim=16 if image_to_video else 8,
        in_channels=2 * LATENT_CHANNELS if image_to_video else LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        time_embed_dim=2,
        text_embed_dim=T5_DIM,
        num_layers=1,
        sample_width=SAMPLE,
        sample_height=SAMPLE,
        sample_frames=SAMPLE_FRAMES,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=TEXT_TOKENS,
        use_rotary_positional_embeddings=image_to_video,
        use_learned_positional_embeddings=image_to_video,
    ).eval()


def _components(image_to_video: bool) -> dict:
    tokenizer = load_t5_tokenizer()
    return {
        "tokenizer": tokenizer,
        "text_encoder": t5_encoder(tokenizer, kind="t5"),
        "vae": _vae(),
        "transformer": _transformer(image_to_video),
    }


def save_tiny_cogvideox_t2v(path: Path, precision: Precision = "fp32") -> Path:
    """CogVideoX-2b kind: ``CogVideoXPipeline``, text -> video, ``CogVideoXDDIMScheduler``.

    Render: ``pipe("a fox", num_inference_steps=2, generator=..., output_type="np")`` (defaults:
    32x32, 9 frames) or with ``height``/``width`` (multiples of 8: sinusoidal positions follow the
    size) -> ``.frames`` (1, 9, 32, 32, 3).
    """
    from diffusers import CogVideoXDDIMScheduler, CogVideoXPipeline

    pipe = CogVideoXPipeline(scheduler=CogVideoXDDIMScheduler(**SCHEDULER), **_components(False))
    return save_pipeline(pipe, path, precision, fast_tokenizers=("tokenizer",))


def save_tiny_cogvideox_i2v(path: Path, precision: Precision = "fp32") -> Path:
    """CogVideoX-5b-I2V kind: ``CogVideoXImageToVideoPipeline``, image + text -> video,
    ``CogVideoXDPMScheduler``. The image is VAE-encoded as the first latent frame.

    Size: exactly the trained 32x32 (learned positions: another size raises ValueError "not
    possible to generate videos at a different resolution"). Render:
    ``pipe(image=PIL 32x32, prompt="a fox", num_inference_steps=2, generator=...,
    output_type="np")`` -> ``.frames`` (1, 9, 32, 32, 3).
    """
    from diffusers import CogVideoXDPMScheduler, CogVideoXImageToVideoPipeline

    pipe = CogVideoXImageToVideoPipeline(
        scheduler=CogVideoXDPMScheduler(**SCHEDULER), **_components(True)
    )
    return save_pipeline(pipe, path, precision, fast_tokenizers=("tokenizer",))
