"""What a prompt's models resolve to (``VideoPlan``), the keyframe models, and the checks
every plan shares. The video models' registry and their families live in
``vidgen_pipeline.families``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelChoiceError(ValueError):
    """A model setting that cannot be honoured, with a message for the user."""


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
class KeyframeModelSpec:
    name: str
    hub_id: str | None
    steps: int
    guidance_scale: float
    half_variant: bool = True  # the hub repo publishes *.fp16.safetensors beside fp32


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
    """The resolved model settings of one prompt, recorded in ``optimized_prompts``: which
    model and family, why, where its weights are, what it takes, sizes, the call settings
    fixed at plan time (its provenance, and part of every scene's cache key)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    reason: str
    backend: str  # "animatic" or "diffusers"
    family: str = "animatic"
    pipeline: str
    conditioning: str  # "text", "image", "image+text" (image required), "text+image", "none"
    takes_text: bool = False
    image_input: str = "none"  # "none", "required" or "optional"
    # The classes that run a clip with and without a starting image (made from the loaded
    # pipeline's components where they differ from ``pipeline``).
    image_pipeline: str | None = None
    text_pipeline: str | None = None
    weights_path: str | None = None
    weights_source: str | None = None
    weights_revision: str | None = None
    weights_variant: str | None = None  # "fp16": the *.fp16.safetensors files are read
    motion_adapter_path: str | None = None
    # Few-step models: the replacement UNet's state dict and the scheduler it was distilled for.
    unet_weights_path: str | None = None
    unet_weights_source: str | None = None
    unet_weights_revision: str | None = None
    scheduler: str | None = None
    scheduler_config: dict[str, Any] | None = None
    # LoRAs on the denoiser, in order: file, scale, where found, revision (core/loras.py).
    loras: list[dict[str, Any]] = Field(default_factory=list)
    denoisers: list[str] = Field(default_factory=list)
    component_dtypes: dict[str, str] = Field(default_factory=dict)
    call_options: dict[str, Any] = Field(default_factory=dict)  # guidance, flow shift, ...
    # What the text encoder reads (the prompt optimiser fits prompts to it).
    languages: list[str] = Field(default_factory=list)
    text_encoder: str | None = None
    token_limit: int = 77
    prompt_style: str = "clip"
    negative_prompt: str | None = None
    size_multiple: int = 2
    frame_rule: dict[str, int | None] = Field(default_factory=dict)
    device: str
    dtype: str = "fp32"
    memory_mode: str = "cpu"
    vram_gb: float = 0.0
    width: int
    height: int
    fps: float
    steps: int | None = None
    frames_per_clip: int | None = None
    keyframe_model: str = "cards"
    keyframe_weights_path: str | None = None
    keyframe_weights_source: str | None = None
    keyframe_weights_variant: str | None = None
    keyframe_device: str = "cpu"
    keyframe_dtype: str = "fp32"
    keyframe_memory_mode: str = "cpu"
    keyframe_steps: int | None = None
    keyframe_guidance_scale: float | None = None
    continuity: bool = False
    # The user's own image: the first scene starts from it (fitted to the size, as noted).
    image_path: str | None = None
    image_fit: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def takes_images(self) -> bool:
        return self.image_input != "none"


MIN_SIDE, MAX_SIDE = 16, 4096


def check_size(width: int, height: int, fps: float, multiple: int, who: str = "the model") -> None:
    """Refuse sizes the encoder or the model (``who``) cannot take, before any heavy work."""
    for label, side in (("width", width), ("height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ModelChoiceError(f"{label} {side} is outside {MIN_SIDE}..{MAX_SIDE} pixels")
        if side % multiple:
            need = (
                "H.264 (yuv420p) needs even sides"
                if multiple == 2
                else (f"{who} needs multiples of {multiple}")
            )
            raise ModelChoiceError(f"{label} {side} is not a multiple of {multiple}; {need}")
    if not 1 <= fps <= 120:
        raise ModelChoiceError(f"fps {fps:g} is outside 1..120")
