"""Tiny random-weight HunyuanVideo 1.5 pipelines: text to video and image to video.

Components as the ``hunyuanvideo-community/HunyuanVideo-1.5-*`` repos and diffusers' test
(``tests/pipelines/hunyuan_video1_5/``):

- ``text_encoder``: ``Qwen2_5_VLTextModel`` (the text half of Qwen2.5-VL) with ``tokenizer``
  ``Qwen2Tokenizer`` (the committed ``chat_llm`` tokenizer: Qwen2's byte-level BPE and ChatML
  template; recorded as ``Qwen2TokenizerFast``). The pipeline wraps the prompt in a chat (a fixed
  system message describing what to detail), pads it to 1000 + 108 tokens, takes the hidden
  states two layers before the last and drops the first 108 positions (the real tokenizer's
  length of that system message; with this tokenizer they are still the system turn).
- ``text_encoder_2``: a ``T5EncoderModel`` (ByT5, the glyph encoder) with ``tokenizer_2``
  ``ByT5Tokenizer`` (bytes: no files). It only reads text in quotes ("..." or “...”) of the
  prompt, for rendering lettering; without quotes it gets zeros.
- ``guider``: ``ClassifierFreeGuidance`` (guidance_scale 6.0) saved as a component: the guidance
  scale is a component's config, not a ``__call__`` argument.
- ``vae``: ``AutoencoderKLHunyuanVideo15`` with the real compression (16x spatial, 4x temporal),
  4 latent channels; ``transformer``: ``HunyuanVideo15Transformer3DModel`` taking latents + image
  latents + mask (9 channels); ``scheduler``: ``FlowMatchEulerDiscreteScheduler(shift=7.0)``.

Rules (diffusers 0.42): no size or frame check in ``check_inputs``; latent frames are
``(num_frames - 1) // 4 + 1`` (so use 4k+1) and sizes are cut to multiples of 16. Output
``.frames`` (batch, frames, height, width, 3) with the default ``output_type="np"``.
"""

from __future__ import annotations

from pathlib import Path

from vidgen_pipeline.testing.encoders import T5_DIM, siglip_vision_encoder, t5_encoder
from vidgen_pipeline.testing.layout import Precision, save_pipeline
from vidgen_pipeline.testing.tokenizers import load_byt5_tokenizer, load_qwen2_tokenizer

LATENT_CHANNELS = 4
QWEN_DIM = 16
IMAGE_DIM = 12  # SigLIP width (1152 in the real so400m encoder)
TARGET_SIZE = 32  # the transformer's target_size: default sizes are picked around 32x32


def _qwen_text_encoder(tokenizer):
    import torch
    from transformers import Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel

    torch.manual_seed(0)
    config = Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=QWEN_DIM,
        intermediate_size=16,
        num_hidden_layers=3,  # the pipeline reads the hidden states of layer -3
        num_attention_heads=2,
        num_key_value_heads=2,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        rope_theta=1000000.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    return Qwen2_5_VLTextModel(config).eval()


def _vae():
    import torch
    from diffusers import AutoencoderKLHunyuanVideo15

    torch.manual_seed(0)
    return AutoencoderKLHunyuanVideo15(
        in_channels=3,
        out_channels=3,
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(8, 8, 8, 8),  # four 2x down-steps: 16x, the last two also in time
        layers_per_block=1,
        spatial_compression_ratio=16,
        temporal_compression_ratio=4,
        downsample_match_channel=False,
        upsample_match_channel=False,
    ).eval()


def _transformer(task_type: str):
    import torch
    from diffusers import HunyuanVideo15Transformer3DModel

    torch.manual_seed(0)
    return HunyuanVideo15Transformer3DModel(
        in_channels=2 * LATENT_CHANNELS + 1,
        out_channels=LATENT_CHANNELS,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        num_refiner_layers=1,
        mlp_ratio=2.0,
        patch_size=1,
        patch_size_t=1,
        text_embed_dim=QWEN_DIM,
        text_embed_2_dim=T5_DIM,
        image_embed_dim=IMAGE_DIM,
        rope_axes_dim=(2, 2, 4),
        target_size=TARGET_SIZE,
        task_type=task_type,
    ).eval()


def _components(task_type: str) -> dict:
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.guiders import ClassifierFreeGuidance

    tokenizer = load_qwen2_tokenizer()
    tokenizer_2 = load_byt5_tokenizer()
    return {
        "text_encoder": _qwen_text_encoder(tokenizer),
        "tokenizer": tokenizer,
        "text_encoder_2": t5_encoder(tokenizer_2, kind="t5"),
        "tokenizer_2": tokenizer_2,
        "transformer": _transformer(task_type),
        "vae": _vae(),
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
        "guider": ClassifierFreeGuidance(guidance_scale=6.0),
    }


def save_tiny_hunyuan15_t2v(path: Path, precision: Precision = "fp32") -> Path:
    """HunyuanVideo 1.5 480p T2V kind: ``HunyuanVideo15Pipeline``, text -> video.

    Without ``height``/``width`` the size is the bucket of ``target_size`` nearest 16:9 (real 480p:
    480x848; here 32x32, the only bucket near); pass them.
    The image branch gets 729 zero tokens (``vision_num_semantic_tokens``), masked out.
    Render: ``pipe("a fox", height=32, width=32, num_frames=9, num_inference_steps=2,
    generator=...)`` -> ``.frames`` (1, 9, 32, 32, 3).
    """
    from diffusers import HunyuanVideo15Pipeline

    pipe = HunyuanVideo15Pipeline(**_components("t2v"))
    return save_pipeline(pipe, path, precision, fast_tokenizers=("tokenizer",))


def save_tiny_hunyuan15_i2v(path: Path, precision: Precision = "fp32") -> Path:
    """HunyuanVideo 1.5 480p I2V kind: ``HunyuanVideo15ImageToVideoPipeline``, image + text.

    Adds ``image_encoder`` (``SiglipVisionModel``, 32 px, 64 tokens of ``IMAGE_DIM``) and
    ``feature_extractor`` (``SiglipImageProcessor``, 32 px). ``__call__`` has no height/width:
    the size is the bucket of ``target_size`` nearest the image's aspect ratio (a square image:
    32x32), the image is resized and centre-cropped to it and VAE-encoded as latent frame 0.
    Render: ``pipe(image=PIL 32x32, prompt="a fox", num_frames=9, num_inference_steps=2,
    generator=...)`` -> ``.frames`` (1, 9, 32, 32, 3).
    """
    from diffusers import HunyuanVideo15ImageToVideoPipeline
    from transformers import SiglipImageProcessor

    pipe = HunyuanVideo15ImageToVideoPipeline(
        image_encoder=siglip_vision_encoder(32, IMAGE_DIM),
        feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}),
        **_components("i2v"),
    )
    return save_pipeline(pipe, path, precision, fast_tokenizers=("tokenizer",))
