"""The model registry: friendly names -> hub ids, pipeline kinds and native output.

Any local folder or hub id laid out like a diffusers repository works too: its
``model_index.json`` names the pipeline class, and the class says how to drive it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelChoiceError(ValueError):
    """A model setting that cannot be honoured, with a message for the user."""


@dataclass(frozen=True)
class PipelineDefaults:
    """How a diffusers pipeline class is driven, and its native output."""

    conditioning: str  # "image" (needs a keyframe) or "text"
    frames: int
    width: int
    height: int
    fps: float
    steps: int
    vram_gb: float  # rough need at fp16 in the "gpu" memory mode, for memory_mode=auto


VIDEO_PIPELINES: dict[str, PipelineDefaults] = {
    "StableVideoDiffusionPipeline": PipelineDefaults("image", 25, 1024, 576, 6, 25, 16),
    "TextToVideoSDPipeline": PipelineDefaults("text", 16, 256, 256, 8, 25, 8),
    "AnimateDiffPipeline": PipelineDefaults("text", 16, 512, 512, 8, 25, 8),
}
TEXT_TO_IMAGE_PIPELINES = (
    "StableDiffusionPipeline",
    "StableDiffusionXLPipeline",
    "StableDiffusion3Pipeline",
    "FluxPipeline",
    "PixArtAlphaPipeline",
    "PixArtSigmaPipeline",
    "SanaPipeline",
)


@dataclass(frozen=True)
class ReplacementUNet:
    """A distilled UNet that replaces the base pipeline's (same architecture, a state dict
    in one safetensors file), and the scheduler it was distilled for."""

    hub_id: str
    filename: str
    scheduler: str  # class name; not in diffusers for AnimateLCM-SVD (see its repo's code)
    scheduler_config: tuple[tuple[str, object], ...]
    steps: tuple[int, int]  # the range it was distilled for (min, max)


@dataclass(frozen=True)
class VideoModelSpec:
    name: str
    hub_id: str | None
    pipeline: str
    defaults: PipelineDefaults | None
    motion_adapter: str | None = None  # AnimateDiff: adapter repo loaded beside a base model
    unet: ReplacementUNet | None = None  # few-step: a distilled UNet on the base (hub_id)
    guidance: tuple[float, float] | None = None  # (min, max) guidance scale; None: pipeline's
    base: str | None = None  # the registry entry whose weights (and folder) it runs on

    @property
    def conditioning(self) -> str:
        return self.defaults.conditioning if self.defaults else "none"


def _video(name, hub_id, pipeline, **overrides) -> VideoModelSpec:
    adapter = overrides.pop("motion_adapter", None)
    unet = overrides.pop("unet", None)
    guidance = overrides.pop("guidance", None)
    base = overrides.pop("base", None)
    defaults = replace(VIDEO_PIPELINES[pipeline], **overrides)
    return VideoModelSpec(name, hub_id, pipeline, defaults, adapter, unet, guidance, base)


VIDEO_MODELS: dict[str, VideoModelSpec] = {
    spec.name: spec
    for spec in [
        _video(
            "svd-xt",
            "stabilityai/stable-video-diffusion-img2vid-xt",
            "StableVideoDiffusionPipeline",
        ),
        _video(
            "svd",
            "stabilityai/stable-video-diffusion-img2vid",
            "StableVideoDiffusionPipeline",
            frames=14,
            vram_gb=14,
        ),
        _video("modelscope-t2v", "ali-vilab/text-to-video-ms-1.7b", "TextToVideoSDPipeline"),
        _video(
            "animatediff",
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "AnimateDiffPipeline",
            motion_adapter="guoyww/animatediff-motion-adapter-v1-5-2",
        ),
        # No model: pan and zoom over the keyframe. Not generated footage, and says so.
        VideoModelSpec("animatic", None, "animatic", None),
        # Few-step: AnimateLCM-SVD-xt's consistency-distilled UNet on the SVD-XT base, 4-8
        # steps without classifier-free guidance (min = max = 1.0: one UNet pass a step,
        # about 12x less UNet work than svd-xt's 25 guided steps). Its scheduler
        # (AnimateLCMSVDStochasticIterativeScheduler) is not part of diffusers: a port lives in
        # core/animatelcm_scheduler.py. The base pipeline is svd-xt's (its folder, its cache);
        # the UNet file goes to VIDGEN_HOME/models/animatelcm-svd-xt/ or the hub cache.
        _video(
            "animatelcm-svd-xt",
            "stabilityai/stable-video-diffusion-img2vid-xt",
            "StableVideoDiffusionPipeline",
            base="svd-xt",
            steps=4,
            unet=ReplacementUNet(
                hub_id="wangfuyun/AnimateLCM-SVD-xt",
                filename="AnimateLCM-SVD-xt.safetensors",
                scheduler="AnimateLCMSVDStochasticIterativeScheduler",
                scheduler_config=(
                    ("num_train_timesteps", 40),
                    ("sigma_min", 0.002),
                    ("sigma_max", 700.0),
                    ("sigma_data", 1.0),
                    ("s_noise", 1.0),
                    ("rho", 7.0),
                    ("clip_denoised", False),
                ),
                steps=(4, 8),
            ),
            guidance=(1.0, 1.0),
        ),
    ]
}


@dataclass(frozen=True)
class KeyframeModelSpec:
    name: str
    hub_id: str | None
    steps: int
    guidance_scale: float


KEYFRAME_MODELS: dict[str, KeyframeModelSpec] = {
    spec.name: spec
    for spec in [
        # Distilled: 1-4 steps without guidance; the default keyframe model for SVD.
        KeyframeModelSpec("sdxl-turbo", "stabilityai/sdxl-turbo", 2, 0.0),
        KeyframeModelSpec("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", 25, 7.5),
        KeyframeModelSpec("cards", None, 0, 0.0),  # labelled storyboard cards, no model
    ]
}
DEFAULT_KEYFRAME_MODEL = "sdxl-turbo"


def looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


class VideoPlan(BaseModel):
    """The resolved model settings of one prompt, recorded in ``optimized_prompts``."""

    model_config = ConfigDict(extra="forbid")

    model: str
    reason: str
    backend: str  # "animatic" or "diffusers"
    pipeline: str
    conditioning: str  # "image", "text" or "none"
    weights_path: str | None = None
    weights_source: str | None = None
    weights_revision: str | None = None
    weights_variant: str | None = None
    motion_adapter_path: str | None = None
    # Few-step models: the replacement UNet's state dict, the scheduler it was distilled for,
    # and the guidance range (None: the pipeline's own).
    unet_weights_path: str | None = None
    unet_weights_source: str | None = None
    unet_weights_revision: str | None = None
    scheduler: str | None = None
    scheduler_config: dict[str, Any] | None = None
    min_guidance_scale: float | None = None
    max_guidance_scale: float | None = None
    device: str
    dtype: str = "fp32"
    memory_mode: str = "cpu"
    width: int
    height: int
    fps: float
    steps: int | None = None
    frames_per_clip: int | None = None
    keyframe_model: str = "cards"
    keyframe_weights_path: str | None = None
    keyframe_device: str = "cpu"
    keyframe_dtype: str = "fp32"
    keyframe_memory_mode: str = "cpu"
    keyframe_steps: int | None = None
    keyframe_guidance_scale: float | None = None
    continuity: bool = False
    notes: list[str] = Field(default_factory=list)


MIN_SIDE, MAX_SIDE = 16, 4096


def check_size(width: int, height: int, fps: float, multiple: int) -> None:
    """Refuse sizes the encoder or the model cannot take, before any heavy work."""
    for label, side in (("width", width), ("height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ModelChoiceError(f"{label} {side} is outside {MIN_SIDE}..{MAX_SIDE} pixels")
        if side % multiple:
            need = (
                "H.264 (yuv420p) needs even sides"
                if multiple == 2
                else (f"the model needs multiples of {multiple}")
            )
            raise ModelChoiceError(f"{label} {side} is not a multiple of {multiple}; {need}")
    if not 1 <= fps <= 120:
        raise ModelChoiceError(f"fps {fps:g} is outside 1..120")
