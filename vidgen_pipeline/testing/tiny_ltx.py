"""Tiny random-weight LTX-Video (0.9.x) pipeline: one folder for text and image to video.

Components as diffusers' tests (``tests/pipelines/ltx/``) and the real ``Lightricks/LTX-Video``
layout: T5 encoder (``T5EncoderModel``, the committed ``t5`` tokenizer as ``T5TokenizerFast``),
``AutoencoderKLLTXVideo`` with the real compression (4x4 pixel patches and three 2x down-steps:
32x spatial, 8x temporal), ``LTXVideoTransformer3DModel`` (patch 1), and
``FlowMatchEulerDiscreteScheduler`` with the real repo's resolution-dependent shift.
"""

from __future__ import annotations

from pathlib import Path

from vidgen_pipeline.testing.encoders import T5_DIM, t5_encoder
from vidgen_pipeline.testing.layout import Precision, save_pipeline
from vidgen_pipeline.testing.tokenizers import load_t5_tokenizer

LATENT_CHANNELS = 8


def _vae():
    import torch
    from diffusers import AutoencoderKLLTXVideo

    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    return vae.eval()


def _transformer():
    import torch
    from diffusers import LTXVideoTransformer3DModel

    torch.manual_seed(0)
    return LTXVideoTransformer3DModel(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=2,  # two: a step cache needs a first block and a rest
        caption_channels=T5_DIM,
    ).eval()


def _scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    # Lightricks/LTX-Video's scheduler config: the shift grows with the latent sequence length.
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=0.95,
        max_shift=2.05,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        shift_terminal=0.1,
    )


def save_tiny_ltx_video(path: Path, precision: Precision = "fp32") -> Path:
    """LTX-Video: ``LTXPipeline`` in ``model_index.json``; the same folder loads as
    ``LTXImageToVideoPipeline`` and ``LTXConditionPipeline`` (identical components).

    Rules (``check_inputs``): height and width multiples of 32 (else ValueError). Frames 8k+1:
    latent frames are ``(num_frames - 1) // 8 + 1``, so another count decodes to the 8k+1 below
    it, without a warning. ``frame_rate`` (default 25) enters the model's positions.

    Render (64x64 gives a 2x2 latent; 32x32 also works, 1x1):
    ``pipe("a fox", height=64, width=64, num_frames=9, num_inference_steps=2,
    max_sequence_length=16, generator=...)`` -> ``.frames`` (1, 9, 64, 64, 3) with
    ``output_type="np"`` (default "pil"). Image: ``LTXImageToVideoPipeline.from_pretrained(path)``
    and ``image=PIL 64x64``.

    ``LTXConditionPipeline`` (made for LTX-Video 0.9.5+) loads the folder but its ``__call__``
    fails on this scheduler config ("`mu` must be passed when `use_dynamic_shifting` is set"): it
    passes no ``mu``. It renders (``image=`` or ``conditions=[LTXVideoCondition(...)]``) with
    ``scheduler=FlowMatchEulerDiscreteScheduler.from_pretrained(path, subfolder="scheduler",
    use_dynamic_shifting=False)`` given to ``from_pretrained``.
    """
    from diffusers import LTXPipeline

    tokenizer = load_t5_tokenizer()
    pipe = LTXPipeline(
        scheduler=_scheduler(),
        vae=_vae(),
        text_encoder=t5_encoder(tokenizer, kind="t5"),
        tokenizer=tokenizer,
        transformer=_transformer(),
    )
    return save_pipeline(pipe, path, precision, fast_tokenizers=("tokenizer",))
