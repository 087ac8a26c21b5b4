"""Tiny random-weight UNet pipelines (SVD, SD 1.5, ModelScope T2V, AnimateDiff), from configs.

Each ``save_tiny_*`` builds one pipeline with fixed seeds (``torch.manual_seed(0)`` before every
component) and saves it with :func:`~vidgen_pipeline.testing.layout.save_pipeline`: a folder laid
out like a Hugging Face hub repo (``model_index.json`` plus one subfolder per component, weights as
``*.safetensors``) that loads back through plain
``DiffusionPipeline.from_pretrained(path, use_safetensors=True)``. ``precision="fp16"`` writes
only the ``fp16`` variant, ``"both"`` both precisions (see ``layout``).

Nothing here touches the network. The CLIP tokenizer is the committed ``tokenizer_files/clip``
(see ``tokenizers``), so token ids never change between runs.

Every pipeline runs at 64x64 with 2 steps in well under a second on a CPU. Defaults that the
pipelines derive from configs also give 64x64: ``unet.config.sample_size`` is 8 and the VAEs
downsample 8x (four blocks), like the real models.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vidgen_pipeline.testing.layout import Precision, save_pipeline
from vidgen_pipeline.testing.tokenizers import (
    CLIP_MAX_LENGTH,
    load_clip_tokenizer,
    tokenizer_dir,
)

# Latent size 8 x VAE factor 8 = 64 px: what the pipelines use when no height/width is passed
# (except SVD, whose __call__ defaults to 576x1024 regardless).
SAMPLE_SIZE = 8
CROSS_DIM = 32
VAE_CHANNELS = (32, 32, 64, 64)  # four blocks -> 8x downsample, like the real VAEs

# The tiny SVD's component configs (the benchmark's --tiny SVD is save_tiny_svd's).
SVD_UNET = {
    "sample_size": SAMPLE_SIZE,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
    "up_block_types": ("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "num_attention_heads": (2, 4),
    "cross_attention_dim": CROSS_DIM,
    "addition_time_embed_dim": 32,
    "projection_class_embeddings_input_dim": 3 * 32,  # fps, motion bucket, noise aug
    "num_frames": 4,
}
SVD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * len(VAE_CHANNELS),
    "block_out_channels": list(VAE_CHANNELS),
    "layers_per_block": 1,
    "latent_channels": 4,
    "sample_size": SAMPLE_SIZE * 8,
}
# The pipeline resizes PIL input to 224 before the image encoder, so it must take 224 px.
SVD_IMAGE_ENCODER = {  # transformers CLIPVisionConfig
    "hidden_size": 32,
    "intermediate_size": 37,
    "projection_dim": CROSS_DIM,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 224,
    "patch_size": 32,
}
SVD_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "trained_betas": None,
    "prediction_type": "v_prediction",
    "interpolation_type": "linear",
    "use_karras_sigmas": True,
    "sigma_min": 0.002,
    "sigma_max": 700.0,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "steps_offset": 1,
}


def _text_encoder(tokenizer):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH,
        projection_dim=32,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        layer_norm_eps=1e-5,
    )
    return CLIPTextModel(config).eval()


def _vae():
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * len(VAE_CHANNELS),
        up_block_types=["UpDecoderBlock2D"] * len(VAE_CHANNELS),
        block_out_channels=list(VAE_CHANNELS),
        layers_per_block=1,
        latent_channels=4,
        sample_size=SAMPLE_SIZE * 8,
    ).eval()


def _unet2d():
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=SAMPLE_SIZE,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=CROSS_DIM,
        attention_head_dim=(2, 4),
    ).eval()


def _save(pipe, path: Path, precision: Precision) -> Path:
    path = save_pipeline(pipe, path, precision)
    tok_dir = path / "tokenizer"
    if tok_dir.is_dir():
        # transformers 5 saves only tokenizer.json; 4.x's slow CLIPTokenizer needs these two.
        for name in ("vocab.json", "merges.txt"):
            if not (tok_dir / name).exists():
                shutil.copy(tokenizer_dir("clip") / name, tok_dir / name)
    return path


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------


def save_tiny_svd(path: Path, precision: Precision = "fp32") -> Path:
    """StableVideoDiffusionPipeline (image -> video).

    Run with: ``pipe(image, height=64, width=64, num_frames=4, num_inference_steps=2,
    decode_chunk_size=2, generator=...)``; ``num_frames`` defaults to ``unet.config.num_frames``
    (4). Height/width must be passed: SVD's __call__ defaults to 576x1024.
    """
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(**SVD_UNET).eval()
    scheduler = EulerDiscreteScheduler(**SVD_SCHEDULER)
    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(**SVD_VAE).eval()
    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**SVD_IMAGE_ENCODER)).eval()
    feature_extractor = CLIPImageProcessor(crop_size=224, size=224)

    pipe = StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=scheduler,
        feature_extractor=feature_extractor,
    )
    return _save(pipe, path, precision)


def save_tiny_replacement_unet(pipeline: Path, dest: Path, seed: int = 1) -> Path:
    """A replacement UNet for the pipeline folder ``pipeline`` (as AnimateLCM-SVD-xt is for
    SVD-XT): its UNet's config with other random weights (``torch.manual_seed(seed)``), saved
    as one safetensors state dict with diffusers key names at ``dest``."""
    import torch
    from diffusers import UNetSpatioTemporalConditionModel
    from safetensors.torch import save_file

    config = UNetSpatioTemporalConditionModel.load_config(str(Path(pipeline) / "unet"))
    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel.from_config(config)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(dest))
    return dest


def save_tiny_sd(path: Path, precision: Precision = "fp32") -> Path:
    """StableDiffusionPipeline (text -> image), no safety checker.

    Run with: ``pipe(prompt, height=64, width=64, num_inference_steps=2, generator=...)``
    (64x64 is also the default).
    """
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    tokenizer = load_clip_tokenizer()
    pipe = StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(tokenizer),
        tokenizer=tokenizer,
        unet=_unet2d(),
        scheduler=DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            set_alpha_to_one=False,
            steps_offset=1,
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _save(pipe, path, precision)


def save_tiny_modelscope_t2v(path: Path, precision: Precision = "fp32") -> Path:
    """TextToVideoSDPipeline (ModelScope text -> video; deprecated in diffusers, still works).

    Run with: ``pipe(prompt, height=64, width=64, num_frames=4, num_inference_steps=2,
    generator=...)``; the default output_type "np" gives ``frames`` of shape
    (batch, frames, 64, 64, 3).
    """
    import torch
    from diffusers import DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    tokenizer = load_clip_tokenizer()
    text_encoder = _text_encoder(tokenizer)
    vae = _vae()
    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        sample_size=SAMPLE_SIZE,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=CROSS_DIM,
        attention_head_dim=8,
    ).eval()
    pipe = TextToVideoSDPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            set_alpha_to_one=False,
            steps_offset=1,
        ),
    )
    return _save(pipe, path, precision)


def save_tiny_animatediff(path: Path, precision: Precision = "fp32") -> Path:
    """AnimateDiffPipeline (text -> video with a motion adapter).

    The pipeline merges the UNet2DConditionModel and MotionAdapter into a UNetMotionModel at
    construction, so the saved ``unet/`` is a UNetMotionModel and ``motion_adapter/`` is saved too.

    Run with: ``pipe(prompt, height=64, width=64, num_frames=4, num_inference_steps=2,
    generator=...)``.
    """
    import torch
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

    tokenizer = load_clip_tokenizer()
    text_encoder = _text_encoder(tokenizer)
    vae = _vae()
    unet = _unet2d()
    torch.manual_seed(0)
    motion_adapter = MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=1,  # must equal the UNet's layers_per_block
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
    ).eval()
    pipe = AnimateDiffPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        motion_adapter=motion_adapter,
        scheduler=DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="linear",
            clip_sample=False,
            steps_offset=1,
            timestep_spacing="linspace",
        ),
        feature_extractor=None,
        image_encoder=None,
    )
    return _save(pipe, path, precision)


BUILDERS = {
    "svd": save_tiny_svd,
    "sd": save_tiny_sd,
    "t2v": save_tiny_modelscope_t2v,
    "animatediff": save_tiny_animatediff,
}


def save_all(root: Path) -> dict[str, Path]:
    """Build all four tiny pipelines under ``root/{svd,sd,t2v,animatediff}``."""
    root = Path(root)
    return {name: build(root / name) for name, build in BUILDERS.items()}
