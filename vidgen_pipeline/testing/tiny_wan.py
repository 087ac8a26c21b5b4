"""Tiny random-weight Wan 2.1 / 2.2 pipelines (``WanPipeline``, ``WanImageToVideoPipeline``).

Configs follow diffusers' own tests (``tests/pipelines/wan/``) and the real ``-Diffusers`` repos'
layouts: umT5 text encoder (``UMT5EncoderModel``, the committed ``t5`` tokenizer recorded as
``T5TokenizerFast``), ``AutoencoderKLWan`` (8x spatial, 4x temporal; the 2.2-5B kind: 48 latent
channels, patchified, 16x spatial), ``WanTransformer3DModel`` (patch 1x2x2),
``UniPCMultistepScheduler`` with flow sigmas as the real repos ship.

Rules every Wan pipeline applies (``check_inputs`` and ``__call__``): height and width multiples
of 16 (else ValueError); ``num_frames`` is 4k+1, any other is rounded down to 4k+1 with a warning.
Output: ``.frames`` of shape (batch, num_frames, height, width, 3) in [0, 1] with
``output_type="np"`` (the default). All render 9 frames at 32x32 with 2 steps in well under a
second on a CPU; pass ``max_sequence_length=16`` to skip encoding 512 padded tokens.
"""

from __future__ import annotations

from pathlib import Path

from vidgen_pipeline.testing.encoders import T5_DIM, clip_vision_encoder, t5_encoder
from vidgen_pipeline.testing.layout import Precision, save_pipeline
from vidgen_pipeline.testing.tokenizers import load_t5_tokenizer

WAN_IMAGE_DIM = 16  # the 2.1 I2V image encoder's width (1280 in the real open-CLIP ViT-H)


def _vae():
    """Wan 2.1's VAE kind (also 2.2-A14B's): 16 latent channels, 8x spatial, 4x temporal."""
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ).eval()


def _vae_22_5b():
    """Wan 2.2-TI2V-5B's VAE kind: 2x2 pixel patches in (12 channels), residual blocks,
    48 latent channels, 16x spatial and 4x temporal compression."""
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    ).eval()


def _transformer(in_channels: int, out_channels: int, seed: int = 0, image_dim: int | None = None):
    import torch
    from diffusers import WanTransformer3DModel

    heads, head_dim = 2, 12
    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=heads,
        attention_head_dim=head_dim,
        in_channels=in_channels,
        out_channels=out_channels,
        text_dim=T5_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=image_dim,
        # 2.1 I2V: the image tokens get their own key/value projections, as in the real model
        added_kv_proj_dim=heads * head_dim if image_dim else None,
    ).eval()


def _scheduler(flow_shift: float):
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=flow_shift
    )


def _text_components() -> dict:
    tokenizer = load_t5_tokenizer()
    return {"tokenizer": tokenizer, "text_encoder": t5_encoder(tokenizer, kind="umt5")}


def _save(pipe, path: Path, precision: Precision) -> Path:
    return save_pipeline(pipe, path, precision, fast_tokenizers=("tokenizer",))


def save_tiny_wan21_t2v(path: Path, precision: Precision = "fp32") -> Path:
    """Wan 2.1 T2V (1.3B / 14B kind): ``WanPipeline``, text -> video.

    Render: ``pipe("a fox", height=32, width=32, num_frames=9, num_inference_steps=2,
    max_sequence_length=16, generator=...)`` -> ``.frames`` (1, 9, 32, 32, 3).
    """
    from diffusers import WanPipeline

    pipe = WanPipeline(
        vae=_vae(),
        transformer=_transformer(16, 16),
        transformer_2=None,
        scheduler=_scheduler(3.0),
        **_text_components(),
    )
    return _save(pipe, path, precision)


def save_tiny_wan21_i2v(path: Path, precision: Precision = "fp32") -> Path:
    """Wan 2.1 I2V-14B kind: ``WanImageToVideoPipeline``, image + text -> video.

    A CLIP vision encoder (``CLIPVisionModel``; its next-to-last hidden states, 65 tokens of
    ``WAN_IMAGE_DIM``) and ``CLIPImageProcessor`` (32 px) feed the transformer's image
    cross-attention; the VAE-encoded image is concatenated to the latents (16 + 4 mask + 16 = 36
    input channels). The output's first frame follows the image.

    Render: ``pipe(image=PIL 32x32, prompt="a fox", height=32, width=32, num_frames=9,
    num_inference_steps=2, max_sequence_length=16, generator=...)`` -> ``.frames`` (1, 9, 32, 32, 3).
    """
    from diffusers import WanImageToVideoPipeline
    from transformers import CLIPImageProcessor

    pipe = WanImageToVideoPipeline(
        vae=_vae(),
        transformer=_transformer(36, 16, image_dim=WAN_IMAGE_DIM),
        transformer_2=None,
        scheduler=_scheduler(3.0),
        image_encoder=clip_vision_encoder(32, WAN_IMAGE_DIM, projection=False),
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
        **_text_components(),
    )
    return _save(pipe, path, precision)


def save_tiny_wan22_ti2v_5b(path: Path, precision: Precision = "fp32") -> Path:
    """Wan 2.2 TI2V-5B kind: one folder for text -> video and image + text -> video.

    Saved as the real repo is: ``WanPipeline`` with ``expand_timesteps=True``, no
    ``transformer_2``, the 48-channel VAE (16x spatial), a 48-in/48-out transformer. What
    diffusers 0.42 does with it:

    - ``DiffusionPipeline.from_pretrained(path)`` gives ``WanPipeline`` (text only). With
      ``expand_timesteps`` the timestep is given per latent token (``timestep`` of shape
      (batch, tokens)) rather than one per sample.
    - ``WanImageToVideoPipeline.from_pretrained(path)`` loads the same files (its
      ``image_encoder`` and ``image_processor`` stay None: the 5B has no CLIP branch). The image
      is VAE-encoded as latent frame 0; a first-frame mask keeps that frame fixed while the others
      are denoised (and gives it timestep 0), and it is pasted in again before decoding.

    Both need height and width multiples of 32 (16x VAE times patch 2); frames 4k+1. Render:
    ``pipe("a fox", height=32, width=32, num_frames=9, num_inference_steps=2,
    max_sequence_length=16, generator=...)`` -> ``.frames`` (1, 9, 32, 32, 3); the image call
    adds ``image=PIL 32x32``.
    """
    from diffusers import WanPipeline

    pipe = WanPipeline(
        vae=_vae_22_5b(),
        transformer=_transformer(48, 48),
        transformer_2=None,
        scheduler=_scheduler(5.0),
        boundary_ratio=None,
        expand_timesteps=True,
        **_text_components(),
    )
    return _save(pipe, path, precision)


def save_tiny_wan22_t2v_a14b(path: Path, precision: Precision = "fp32") -> Path:
    """Wan 2.2 T2V-A14B kind: ``WanPipeline`` with two transformers.

    ``transformer`` denoises the high-noise steps (timestep >= ``boundary_ratio`` * 1000),
    ``transformer_2`` (other random weights: seed 1) the rest; ``boundary_ratio`` 0.875 as the
    real repo's ``model_index.json``. ``guidance_scale_2`` sets the second stage's guidance.

    Render: ``pipe("a fox", height=32, width=32, num_frames=9, num_inference_steps=2,
    max_sequence_length=16, generator=...)`` -> ``.frames`` (1, 9, 32, 32, 3); with 2 steps
    (timesteps 1000 and 500 before shift) both transformers run once.
    """
    from diffusers import WanPipeline

    pipe = WanPipeline(
        vae=_vae(),
        transformer=_transformer(16, 16, seed=0),
        transformer_2=_transformer(16, 16, seed=1),
        scheduler=_scheduler(3.0),
        boundary_ratio=0.875,
        **_text_components(),
    )
    return _save(pipe, path, precision)


def save_tiny_wan22_i2v_a14b(path: Path, precision: Precision = "fp32") -> Path:
    """Wan 2.2 I2V-A14B kind: ``WanImageToVideoPipeline`` with two transformers, no image encoder.

    As the real repo: ``image_encoder`` / ``image_processor`` None (the image reaches the model
    only VAE-encoded, concatenated to the latents: 36 input channels), ``boundary_ratio`` 0.9.

    Render: ``pipe(image=PIL 32x32, prompt="a fox", height=32, width=32, num_frames=9,
    num_inference_steps=2, max_sequence_length=16, generator=...)`` -> ``.frames`` (1, 9, 32, 32, 3).
    """
    from diffusers import WanImageToVideoPipeline

    pipe = WanImageToVideoPipeline(
        vae=_vae(),
        transformer=_transformer(36, 16, seed=0),
        transformer_2=_transformer(36, 16, seed=1),
        scheduler=_scheduler(3.0),
        image_encoder=None,
        image_processor=None,
        boundary_ratio=0.9,
        **_text_components(),
    )
    return _save(pipe, path, precision)
