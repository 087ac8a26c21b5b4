"""Tiny random text and image encoders (transformers), built from configs with fixed seeds.

Each returns a model in ``eval()`` mode (a directly built model is in training mode: T5's dropout
would make every call differ) whose vocabulary matches the committed tokenizer it is used with.
"""

from __future__ import annotations

T5_DIM = 32  # d_model of the tiny T5 / umT5 encoders: the DiT's text_dim / caption_channels


def t5_encoder(tokenizer, kind: str = "t5", seed: int = 0):
    """A 2-layer T5 (``kind="t5"``: LTX-Video, CogVideoX) or umT5 (``"umt5"``: Wan) encoder."""
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config_class, model_class = {
        "t5": (T5Config, T5EncoderModel),
        "umt5": (UMT5Config, UMT5EncoderModel),
    }[kind]
    torch.manual_seed(seed)
    config = config_class(
        vocab_size=len(tokenizer),
        d_model=T5_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return model_class(config).eval()


def clip_vision_encoder(image_size: int, hidden_size: int, *, projection: bool, seed: int = 0):
    """A 2-layer CLIP vision tower on ``image_size`` pixels, patch 4 (``image_size / 4`` squared
    patches plus the class token); with a projection head if ``projection``."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        projection_dim=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=4,
    )
    model_class = CLIPVisionModelWithProjection if projection else CLIPVisionModel
    return model_class(config).eval()


def siglip_vision_encoder(image_size: int, hidden_size: int, seed: int = 0):
    """A 2-layer SigLIP vision tower on ``image_size`` pixels, patch 4."""
    import torch
    from transformers import SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(seed)
    config = SiglipVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=4,
    )
    return SiglipVisionModel(config).eval()
