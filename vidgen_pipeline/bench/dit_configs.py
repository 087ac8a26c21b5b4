"""Published configs of the two diffusion transformers the GPU bench measures, to build them
full size with random weights: no download, and no text encoder (the bench feeds random
prompt embeddings of the encoder's shape instead; umT5-XXL and T5-XXL are billions of
parameters that are no part of a denoising step).

Where each value comes from (huggingface/diffusers at 58eb52c, the commit in
``/work/.mirror/huggingface+diffusers``; ``git show HEAD:<path>``):

- **Wan2.1-T2V-1.3B-Diffusers**. Transformer: ``scripts/convert_wan_to_diffusers.py``,
  ``model_type == "Wan-T2V-1.3B"`` (dim 1536 = 12 heads x 128, 30 layers, ffn 8960,
  text_dim 4096, freq_dim 256, in/out 16, patch (1, 2, 2), qk_norm rms_norm_across_heads,
  cross_attn_norm, eps 1e-6); ``rope_max_seq_len`` is not set there, so the model's default
  (1024, ``WanTransformer3DModel.__init__``). VAE: the same script's ``convert_vae()`` builds
  ``AutoencoderKLWan()`` with its defaults (``autoencoder_kl_wan.py``: base_dim 96, z_dim 16,
  dim_mult [1, 2, 4, 4], num_res_blocks 2, no attention scales, temperal_downsample
  [False, True, True]). Scheduler: the script's ``UniPCMultistepScheduler(
  prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000,
  flow_shift=3.0)`` for T2V.
- **LTX-Video 0.9.1** (``scripts/convert_ltx_to_diffusers.py``). Transformer:
  ``get_transformer_config`` for every 0.9.x but 0.9.7 (28 layers, 32 heads x 64,
  cross_attention_dim 2048, caption_channels 4096, in/out 128, patch 1/1, qk_norm
  rms_norm_across_heads, gelu-approximate, no elementwise affine, eps 1e-6, biases). VAE:
  ``get_vae_config("0.9.1")``: the timestep-conditioned decoder the family's
  ``decode_timestep`` / ``decode_noise_scale`` are for (0.9.0's ignores them). Scheduler: the
  script's 0.9.0/0.9.1 ``FlowMatchEulerDiscreteScheduler`` (dynamic shifting 0.95 to 2.05
  over 1024 to 4096 tokens, shift_terminal 0.1).
"""

from __future__ import annotations

import copy
from typing import Any

WAN_T2V_1_3B: dict[str, dict[str, Any]] = {
    "transformer": {
        "added_kv_proj_dim": None,
        "attention_head_dim": 128,
        "cross_attn_norm": True,
        "eps": 1e-06,
        "ffn_dim": 8960,
        "freq_dim": 256,
        "in_channels": 16,
        "num_attention_heads": 12,
        "num_layers": 30,
        "out_channels": 16,
        "patch_size": [1, 2, 2],
        "qk_norm": "rms_norm_across_heads",
        "text_dim": 4096,
        "rope_max_seq_len": 1024,
    },
    "vae": {
        "base_dim": 96,
        "z_dim": 16,
        "dim_mult": [1, 2, 4, 4],
        "num_res_blocks": 2,
        "attn_scales": [],
        "temperal_downsample": [False, True, True],
    },
    "scheduler": {
        "prediction_type": "flow_prediction",
        "use_flow_sigmas": True,
        "num_train_timesteps": 1000,
        "flow_shift": 3.0,
    },
}

LTX_VIDEO_091: dict[str, dict[str, Any]] = {
    "transformer": {
        "in_channels": 128,
        "out_channels": 128,
        "patch_size": 1,
        "patch_size_t": 1,
        "num_attention_heads": 32,
        "attention_head_dim": 64,
        "cross_attention_dim": 2048,
        "num_layers": 28,
        "activation_fn": "gelu-approximate",
        "qk_norm": "rms_norm_across_heads",
        "norm_elementwise_affine": False,
        "norm_eps": 1e-6,
        "caption_channels": 4096,
        "attention_bias": True,
        "attention_out_bias": True,
    },
    "vae": {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 128,
        "block_out_channels": (128, 256, 512, 512),
        "down_block_types": ("LTXVideoDownBlock3D",) * 4,
        "decoder_block_out_channels": (256, 512, 1024),
        "layers_per_block": (4, 3, 3, 3, 4),
        "decoder_layers_per_block": (5, 6, 7, 8),
        "spatio_temporal_scaling": (True, True, True, False),
        "decoder_spatio_temporal_scaling": (True, True, True),
        "decoder_inject_noise": (True, True, True, False),
        "downsample_type": ("conv", "conv", "conv", "conv"),
        "upsample_residual": (True, True, True),
        "upsample_factor": (2, 2, 2),
        "timestep_conditioning": True,
        "patch_size": 4,
        "patch_size_t": 1,
        "resnet_norm_eps": 1e-6,
        "scaling_factor": 1.0,
        "encoder_causal": True,
        "decoder_causal": False,
    },
    "scheduler": {
        "use_dynamic_shifting": True,
        "base_shift": 0.95,
        "max_shift": 2.05,
        "base_image_seq_len": 1024,
        "max_image_seq_len": 4096,
        "shift_terminal": 0.1,
    },
}

CONFIGS = {"wan2.1-t2v-1.3b": WAN_T2V_1_3B, "ltx-video": LTX_VIDEO_091}
# The sizes the models are published as (their model cards: "1.3B", "2B"); the configs above
# give 1.419e9 and 1.923e9 transformer parameters.
NOMINAL_TRANSFORMER_PARAMETERS = {"wan2.1-t2v-1.3b": 1.3e9, "ltx-video": 1.9e9}


def configs(name: str) -> dict[str, dict[str, Any]]:
    """A deep copy of model ``name``'s transformer, VAE and scheduler configs."""
    return copy.deepcopy(CONFIGS[name])


def build_dit_pipeline(name: str, device: str = "cpu", seed: int = 0):
    """Model ``name``'s pipeline (``WanPipeline`` or ``LTXPipeline``), fp32 random weights
    made on ``device`` (``meta``: shapes only, no memory), without text encoder and
    tokenizer: call it with ``prompt_embeds``."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
        UniPCMultistepScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )

    cfg = configs(name)
    wan = name == "wan2.1-t2v-1.3b"
    transformer_class = WanTransformer3DModel if wan else LTXVideoTransformer3DModel
    vae_class = AutoencoderKLWan if wan else AutoencoderKLLTXVideo
    with torch.device(device):
        torch.manual_seed(seed)
        transformer = transformer_class(**cfg["transformer"]).eval()
        torch.manual_seed(seed)
        vae = vae_class(**cfg["vae"]).eval()
    parts = {"vae": vae, "transformer": transformer, "text_encoder": None, "tokenizer": None}
    if wan:
        pipe = WanPipeline(scheduler=UniPCMultistepScheduler(**cfg["scheduler"]), **parts)
    else:
        pipe = LTXPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**cfg["scheduler"]), **parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def parameter_counts(pipe) -> dict[str, int]:
    """Parameters of each model of ``pipe`` (meta tensors count as well)."""
    import torch

    return {
        name: sum(p.numel() for p in module.parameters())
        for name, module in pipe.components.items()
        if isinstance(module, torch.nn.Module)
    }
