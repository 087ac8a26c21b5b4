"""The model registry: every family module, and friendly names for the models people use.

A name maps to a hub id (the diffusers organisations' ``-Diffusers`` repos where there are
such), the family and pipeline class its folder holds, and what differs from the family's
published defaults. Any local folder or hub id of a class a family drives works without a
name: its ``model_index.json`` names the class, and the class picks the family.

Adding a family: one module beside this one (a ``Family`` subclass and ``FAMILY``), its tiny
builder in ``vidgen_pipeline/testing/``, and its line in ``FAMILIES`` below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.families import (
    animatediff,
    animatic,
    cogvideox,
    hunyuan_video15,
    ltx2,
    ltx_video,
    modelscope,
    svd,
    wan,
)
from vidgen_pipeline.families.base import Family, Inputs, Native

FAMILIES: dict[str, Family] = {
    module.FAMILY.name: module.FAMILY
    for module in (svd, modelscope, animatediff, wan, ltx_video, cogvideox, hunyuan_video15, ltx2)
}
ANIMATIC = animatic.FAMILY


def family_for(pipeline_class: str) -> Family:
    """The family that drives ``pipeline_class``; one line listing them all otherwise."""
    for family in FAMILIES.values():
        if pipeline_class in family.pipelines:
            return family
    driven = ", ".join(f"{f.name} ({', '.join(f.pipelines)})" for f in FAMILIES.values())
    raise ModelChoiceError(
        f"a {pipeline_class or 'pipeline of unknown class'} is not a video model driven here; "
        f"families: {driven}"
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
class DistilledLora:
    """A few-step LoRA on a base model (one safetensors file in a hub repo), and the steps
    it was distilled for."""

    hub_id: str
    filename: str
    steps: tuple[int, int]


@dataclass(frozen=True)
class ModelEntry:
    """A registry name: where its weights are published and what it runs as."""

    name: str
    hub_id: str | None
    family: str
    pipeline: str  # the class its folder's model_index.json names
    summary: str
    native: Native | None = None  # None: the family's
    vram_gb: float | None = None  # bf16/fp16, all on the GPU at the native size
    half_variant: bool = False  # the repo publishes *.fp16.safetensors beside full precision
    denoisers: tuple[str, ...] = ()  # components its folder must hold (beyond the family's)
    call_options: dict[str, Any] = field(default_factory=dict)  # over the family's defaults
    motion_adapter: str | None = None  # AnimateDiff: adapter repo loaded beside a base model
    unet: ReplacementUNet | None = None  # few-step: a distilled UNet on the base
    lora: DistilledLora | None = None  # few-step: a distilled LoRA on the base
    base: str | None = None  # the registry entry whose weights (and folder) it runs on
    takes: Inputs | None = None  # what its folder takes, where configs decide (TI2V-5B)

    @property
    def inputs(self) -> Inputs:
        """What it takes, as its published folder does (before any folder is at hand)."""
        return self.takes or self.family_module.inputs(self.pipeline, None)

    @property
    def family_module(self) -> Family:
        return ANIMATIC if self.family == "animatic" else FAMILIES[self.family]

    @property
    def output(self) -> Native:
        return self.native or self.family_module.native

    @property
    def vram(self) -> float:
        return self.vram_gb if self.vram_gb is not None else self.family_module.vram_gb


def _entry(name, hub_id, family, pipeline, summary, **fields) -> ModelEntry:
    return ModelEntry(name, hub_id, family, pipeline, summary, **fields)


WAN_A14B = {"denoisers": ("transformer", "transformer_2")}

VIDEO_MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in [
        _entry(
            "svd-xt",
            "stabilityai/stable-video-diffusion-img2vid-xt",
            "svd",
            "StableVideoDiffusionPipeline",
            "SVD-XT: 25 frames from a keyframe",
            half_variant=True,
        ),
        _entry(
            "svd",
            "stabilityai/stable-video-diffusion-img2vid",
            "svd",
            "StableVideoDiffusionPipeline",
            "SVD: 14 frames from a keyframe",
            native=Native(1024, 576, 14, 6, 25),
            vram_gb=14,
            half_variant=True,
        ),
        _entry(
            "modelscope-t2v",
            "ali-vilab/text-to-video-ms-1.7b",
            "modelscope-t2v",
            "TextToVideoSDPipeline",
            "ModelScope T2V 1.7B",
            half_variant=True,
        ),
        _entry(
            "animatediff",
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "animatediff",
            "StableDiffusionPipeline",
            "AnimateDiff v1.5-2 adapter on SD 1.5",
            half_variant=True,
            motion_adapter="guoyww/animatediff-motion-adapter-v1-5-2",
        ),
        # No model: pan and zoom over the keyframe. Not generated footage, and says so.
        _entry("animatic", None, "animatic", "animatic", ANIMATIC.summary),
        # Few-step: AnimateLCM-SVD-xt's consistency-distilled UNet on the SVD-XT base, 4-8
        # steps without classifier-free guidance (min = max = 1.0: one UNet pass a step,
        # about 12x less UNet work than svd-xt's 25 guided steps). Its scheduler
        # (AnimateLCMSVDStochasticIterativeScheduler) is not part of diffusers: a port lives in
        # core/animatelcm_scheduler.py. The base pipeline is svd-xt's (its folder, its cache);
        # the UNet file goes to VIDGEN_HOME/models/animatelcm-svd-xt/ or the hub cache.
        _entry(
            "animatelcm-svd-xt",
            "stabilityai/stable-video-diffusion-img2vid-xt",
            "svd",
            "StableVideoDiffusionPipeline",
            "AnimateLCM's 4-8 step UNet on SVD-XT",
            native=Native(1024, 576, 25, 6, 4),
            half_variant=True,
            base="svd-xt",
            call_options={"min_guidance_scale": 1.0, "max_guidance_scale": 1.0},
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
        ),
        _entry(
            "wan2.1-t2v-1.3b",
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            "wan",
            "WanPipeline",
            "Wan 2.1 T2V 1.3B: 480p",
            vram_gb=16,
        ),
        _entry(
            "wan2.1-t2v-14b",
            "Wan-AI/Wan2.1-T2V-14B-Diffusers",
            "wan",
            "WanPipeline",
            "Wan 2.1 T2V 14B: 720p",
            native=Native(1280, 720, 81, 16, 50),
            vram_gb=48,
        ),
        _entry(
            "wan2.1-i2v-14b-480p",
            "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
            "wan",
            "WanImageToVideoPipeline",
            "Wan 2.1 I2V 14B: image and text, 480p",
            vram_gb=48,
        ),
        # Few-step Wan: lightx2v's step- and CFG-distilled LoRAs (rank 64) on the 14B bases, 4
        # steps without classifier-free guidance (guidance 1.0: one transformer pass a step),
        # about 25x less transformer work than 50 guided steps. The LoRA file goes to
        # VIDGEN_HOME/models/<name>/ or the hub cache; the base is the named entry's.
        _entry(
            "wan2.1-t2v-14b-lightx2v",
            "Wan-AI/Wan2.1-T2V-14B-Diffusers",
            "wan",
            "WanPipeline",
            "Wan 2.1 T2V 14B in 4 steps (lightx2v distilled LoRA), 720p",
            native=Native(1280, 720, 81, 16, 4),
            vram_gb=48,
            base="wan2.1-t2v-14b",
            call_options={"guidance_scale": 1.0},
            lora=DistilledLora(
                "lightx2v/Wan2.1-Distill-Loras",
                "wan2.1_t2v_14b_lora_rank64_lightx2v_4step.safetensors",
                steps=(4, 8),
            ),
        ),
        _entry(
            "wan2.1-i2v-14b-480p-lightx2v",
            "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
            "wan",
            "WanImageToVideoPipeline",
            "Wan 2.1 I2V 14B in 4 steps (lightx2v distilled LoRA), 480p",
            native=Native(832, 480, 81, 16, 4),
            vram_gb=48,
            base="wan2.1-i2v-14b-480p",
            call_options={"guidance_scale": 1.0},
            lora=DistilledLora(
                "lightx2v/Wan2.1-Distill-Loras",
                "wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors",
                steps=(4, 8),
            ),
        ),
        _entry(
            "wan2.2-ti2v-5b",
            "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            "wan",
            "WanPipeline",
            "Wan 2.2 TI2V 5B: text, or image and text, 720p 24 fps",
            native=Native(1280, 704, 121, 24, 50),
            vram_gb=24,
            takes=Inputs(text=True, image="optional"),  # expand_timesteps in its index
        ),
        _entry(
            "wan2.2-t2v-a14b",
            "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            "wan",
            "WanPipeline",
            "Wan 2.2 T2V A14B: two experts, 720p",
            native=Native(1280, 720, 81, 16, 40),
            vram_gb=72,
            call_options={"guidance_scale": 4.0, "guidance_scale_2": 3.0},
            **WAN_A14B,
        ),
        _entry(
            "wan2.2-i2v-a14b",
            "Wan-AI/Wan2.2-I2V-A14B-Diffusers",
            "wan",
            "WanImageToVideoPipeline",
            "Wan 2.2 I2V A14B: two experts, image and text, 720p",
            native=Native(1280, 720, 81, 16, 40),
            vram_gb=72,
            call_options={"guidance_scale": 3.5, "guidance_scale_2": 3.5},
            **WAN_A14B,
        ),
        _entry(
            "ltx-video",
            "Lightricks/LTX-Video",
            "ltx-video",
            "LTXPipeline",
            "LTX-Video 0.9: text, or image and text, same weights",
            vram_gb=16,
        ),
        _entry(
            "cogvideox-2b",
            "THUDM/CogVideoX-2b",
            "cogvideox",
            "CogVideoXPipeline",
            "CogVideoX 2B: 6 s at 8 fps",
            vram_gb=18,
        ),
        _entry(
            "cogvideox-5b",
            "THUDM/CogVideoX-5b",
            "cogvideox",
            "CogVideoXPipeline",
            "CogVideoX 5B: 6 s at 8 fps",
            vram_gb=26,
        ),
        _entry(
            "cogvideox-5b-i2v",
            "THUDM/CogVideoX-5b-I2V",
            "cogvideox",
            "CogVideoXImageToVideoPipeline",
            "CogVideoX 5B I2V: image and text, 720x480",
            vram_gb=26,
        ),
        _entry(
            "hunyuanvideo-1.5-480p",
            "hunyuanvideo-community/HunyuanVideo-1.5-480p_t2v",
            "hunyuanvideo-1.5",
            "HunyuanVideo15Pipeline",
            "HunyuanVideo 1.5 text to video, 480p",
        ),
        _entry(
            "hunyuanvideo-1.5-480p-i2v",
            "hunyuanvideo-community/HunyuanVideo-1.5-480p_i2v",
            "hunyuanvideo-1.5",
            "HunyuanVideo15ImageToVideoPipeline",
            "HunyuanVideo 1.5 image to video, 480p",
        ),
        # LTX-2.0 19B (dev): video with its own synchronized stereo sound; the repo's root
        # also holds single-file checkpoints (fp8, distilled, LoRAs) that nothing here reads.
        _entry(
            "ltx-2",
            "Lightricks/LTX-2",
            "ltx-2",
            "LTX2Pipeline",
            "LTX-2 19B: video with sound, text or image and text, same weights",
            vram_gb=70,
        ),
    ]
}

# What `video_model: auto` tries on a CUDA GPU, best first: the first whose weights are here
# and whose estimate fits the free memory (README: "What auto picks").
AUTO_ORDER = ("wan2.2-ti2v-5b", "ltx-video", "wan2.1-t2v-1.3b", "svd-xt")


@dataclass(frozen=True)
class ModelRow:
    """One line of ``vidgen models``."""

    name: str
    family: str
    kind: str
    output: str
    vram_gb: float
    languages: str
    sound: str  # "audio": the model makes sound with its frames; "-": silent
    weights: str  # where they are, or "absent"


def model_rows(allow_unsafe_weights: bool = False) -> list[ModelRow]:
    """Every registry entry with its kind, native output, VRAM estimate, the languages its
    text encoder reads and whether its weights are here (looked up offline, as a run would:
    a local folder under VIDGEN_HOME/models, then the Hugging Face cache)."""
    from vidgen_pipeline.core.weights import WeightsError, resolve_weights

    rows = []
    for entry in VIDEO_MODELS.values():
        family = entry.family_module
        native = entry.output
        weights = "none needed"
        if entry.hub_id:
            try:
                found = resolve_weights(
                    "video",
                    entry.name,
                    entry.hub_id,
                    entry.base or entry.name,
                    allow_unsafe_weights=allow_unsafe_weights,
                )
                weights = f"{found.source}: {found.path}"
            except WeightsError as exc:
                weights = "absent" if "has no weights here" in str(exc) else f"unusable: {exc}"
        output = (
            f"{native.frames} x {native.width}x{native.height} at {native.fps:g} fps, {native.steps} steps"
            if native.frames
            else f"any length, {native.width}x{native.height} at {native.fps:g} fps"
        )
        rows.append(
            ModelRow(
                name=entry.name,
                family=family.name,
                kind=entry.inputs.kind if entry.family != "animatic" else "none (keyframe)",
                output=output,
                vram_gb=entry.vram,
                languages=", ".join(family.languages) or "-",
                sound="audio" if family.makes_audio else "-",
                weights=weights,
            )
        )
    return rows
