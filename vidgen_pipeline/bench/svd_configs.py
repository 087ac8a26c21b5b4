"""Configs of Stable Video Diffusion XT, to build it with random weights (no download).

``FULL`` is stabilityai/stable-video-diffusion-img2vid-xt as published (unet/, vae/,
image_encoder/, scheduler/ and feature_extractor/ configs; about 1.52 B UNet, 98 M VAE and
632 M image-encoder parameters); ``run`` holds the call's size, 25 frames at 576x1024. The
bench's ``--tiny`` SVD is the tests' (``testing.tiny_unet_models.save_tiny_svd``).
"""

from __future__ import annotations

import copy

from vidgen_pipeline.testing.tiny_unet_models import SVD_SCHEDULER

SCHEDULER = SVD_SCHEDULER  # SVD-XT's own scheduler config, at every size

FEATURE_EXTRACTOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}

FULL = {
    "unet": {
        "sample_size": 96,
        "in_channels": 8,
        "out_channels": 4,
        "down_block_types": [
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "DownBlockSpatioTemporal",
        ],
        "up_block_types": [
            "UpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
        ],
        "block_out_channels": [320, 640, 1280, 1280],
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 768,
        "layers_per_block": 2,
        "cross_attention_dim": 1024,
        "transformer_layers_per_block": 1,
        "num_attention_heads": [5, 10, 20, 20],
        "num_frames": 25,
    },
    "vae": {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "block_out_channels": [128, 256, 512, 512],
        "layers_per_block": 2,
        "latent_channels": 4,
        "sample_size": 768,
        "scaling_factor": 0.18215,
        "force_upcast": True,
    },
    "image_encoder": {  # transformers CLIPVisionConfig: OpenCLIP ViT-H/14
        "hidden_size": 1280,
        "intermediate_size": 5120,
        "projection_dim": 1024,
        "num_hidden_layers": 32,
        "num_attention_heads": 16,
        "num_channels": 3,
        "image_size": 224,
        "patch_size": 14,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-05,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "initializer_factor": 1.0,
    },
    "scheduler": SCHEDULER,
    "feature_extractor": FEATURE_EXTRACTOR,
    "run": {"height": 576, "width": 1024, "num_frames": 25, "fps": 6},
}


def configs() -> dict:
    """A deep copy of the configs."""
    return copy.deepcopy(FULL)


def build_svd(device: str = "cpu", seed: int = 0):
    """A StableVideoDiffusionPipeline with random weights (fp32), built on ``device`` (on
    the GPU the random initialisation of 2.2 B parameters is much faster)."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    cfg = configs()
    with torch.device(device):
        torch.manual_seed(seed)
        unet = UNetSpatioTemporalConditionModel(**cfg["unet"]).eval()
        torch.manual_seed(seed)
        vae = AutoencoderKLTemporalDecoder(**cfg["vae"]).eval()
        torch.manual_seed(seed)
        image_encoder = CLIPVisionModelWithProjection(
            CLIPVisionConfig(**cfg["image_encoder"])
        ).eval()
    pipe = StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**cfg["scheduler"]),
        feature_extractor=CLIPImageProcessor(**cfg["feature_extractor"]),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
