"""The model registry: friendly names -> hub ids, pipeline kinds and native output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ModelChoiceError(ValueError):
    """A model setting that cannot be honoured, with a message for the user."""


@dataclass(frozen=True)
class VideoModelSpec:
    name: str
    hub_id: str | None
    pipeline: str
    conditioning: str  # "image", "text" or "none"
    frames: int
    width: int
    height: int
    fps: float
    steps: int


VIDEO_MODELS: dict[str, VideoModelSpec] = {
    spec.name: spec
    for spec in [
        VideoModelSpec(
            "svd-xt",
            "stabilityai/stable-video-diffusion-img2vid-xt",
            "StableVideoDiffusionPipeline",
            "image",
            25,
            1024,
            576,
            6,
            25,
        ),
        VideoModelSpec(
            "svd",
            "stabilityai/stable-video-diffusion-img2vid",
            "StableVideoDiffusionPipeline",
            "image",
            14,
            1024,
            576,
            6,
            25,
        ),
        VideoModelSpec(
            "modelscope-t2v",
            "ali-vilab/text-to-video-ms-1.7b",
            "TextToVideoSDPipeline",
            "text",
            16,
            256,
            256,
            8,
            25,
        ),
        VideoModelSpec(
            "animatediff",
            "guoyww/animatediff-motion-adapter-v1-5-2",
            "AnimateDiffPipeline",
            "text",
            16,
            512,
            512,
            8,
            25,
        ),
        # No model: pan and zoom over the keyframe. Not generated footage, and says so.
        VideoModelSpec("animatic", None, "animatic", "none", 0, 1024, 576, 24, 0),
    ]
}
KEYFRAME_MODELS = {"cards": "labelled storyboard cards (no model)"}
SCRIPT_MODELS = {"rules": "deterministic rule-based writer (no model)"}
DIFFUSERS_NOT_BUILT = (
    "diffusers model backends are not part of this version yet; "
    "use 'animatic' (or 'auto', which picks it)"
)


@dataclass(frozen=True)
class ModelChoice:
    spec: VideoModelSpec
    reason: str


def choose_video_model(setting: str, device: str, cuda_available: bool) -> ModelChoice:
    """Resolve a ``video_model`` setting to a registry entry, saying why it was picked.

    ``auto`` picks ``animatic`` until a diffusers backend can run here; a named model that
    cannot run is an error, never silently another model.
    """
    name = (setting or "auto").strip()
    if device == "cuda" and not cuda_available:
        raise ModelChoiceError("device 'cuda' was asked for, but no CUDA GPU is visible to torch")
    if name == "auto":
        if not cuda_available:
            reason = "auto: no CUDA GPU, so no diffusion model can run at a useful speed"
        else:
            reason = f"auto: a GPU is present, but {DIFFUSERS_NOT_BUILT.split(';')[0]}"
        return ModelChoice(VIDEO_MODELS["animatic"], reason)
    if name == "animatic":
        return ModelChoice(VIDEO_MODELS["animatic"], "asked for by name")
    if name in VIDEO_MODELS or Path(name).expanduser().exists() or "/" in name:
        raise ModelChoiceError(f"video model {name!r}: {DIFFUSERS_NOT_BUILT}")
    raise ModelChoiceError(
        f"unknown video model {name!r}; known: {', '.join(VIDEO_MODELS)}, auto, or a local path"
    )


def check_named_model(kind: str, setting: str, known: dict[str, str]) -> str:
    """Keyframe and script models: only the no-model options exist in this version."""
    name = (setting or "").strip()
    if name in known:
        return name
    if name in ("", "auto"):
        return next(iter(known))
    raise ModelChoiceError(
        f"{kind} model {name!r} is not available in this version; known: {', '.join(known)}"
    )


class VideoPlan(BaseModel):
    """The resolved video settings of one prompt, recorded in ``optimized_prompts``."""

    model_config = ConfigDict(extra="forbid")

    model: str
    reason: str
    backend: str
    pipeline: str
    device: str
    width: int
    height: int
    fps: float
    steps: int | None = None
    frames_per_clip: int | None = None
    notes: list[str] = Field(default_factory=list)


MIN_SIDE, MAX_SIDE = 16, 4096


def resolve_plan(
    choice: ModelChoice,
    device: str,
    width: int | None,
    height: int | None,
    fps: float | None,
    steps: int | None,
    frames: int | None,
) -> VideoPlan:
    """Fill unset sizes from the model's native output and check what was asked for."""
    spec = choice.spec
    width = int(width or spec.width)
    height = int(height or spec.height)
    fps = float(fps or spec.fps)
    for label, side in (("width", width), ("height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ModelChoiceError(f"{label} {side} is outside {MIN_SIDE}..{MAX_SIDE} pixels")
        if side % 2:
            raise ModelChoiceError(f"{label} {side} is odd; H.264 (yuv420p) needs even sides")
    if not 1 <= fps <= 120:
        raise ModelChoiceError(f"fps {fps:g} is outside 1..120")
    notes = []
    if spec.name == "animatic":
        for label, value in (("steps", steps), ("frames", frames)):
            if value:
                notes.append(
                    f"{label}={value} ignored: the animatic backend has no {label} setting"
                )
        steps = frames = None
    return VideoPlan(
        model=spec.name,
        reason=choice.reason,
        backend="animatic" if spec.name == "animatic" else "diffusers",
        pipeline=spec.pipeline,
        device=device,
        width=width,
        height=height,
        fps=fps,
        steps=steps or (spec.steps or None),
        frames_per_clip=frames or (spec.frames or None),
        notes=notes,
    )
