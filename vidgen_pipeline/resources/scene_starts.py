"""What each scene starts from, planned with the video model: the user's image (scene one),
a text-to-image model's keyframes, storyboard cards (the animatic), or nothing (a text-to-
video model; scenes chained by continuity). Nothing here loads a model."""

from __future__ import annotations

from vidgen_pipeline.core.images import stored_image
from vidgen_pipeline.core.models import (
    DEFAULT_KEYFRAME_MODEL,
    KEYFRAME_MODELS,
    ModelChoiceError,
    VideoPlan,
    check_size,
)
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.families.registry import VIDEO_MODELS
from vidgen_pipeline.resources import runtime


def plan_image(plan: VideoPlan, settings: GenerationSettings) -> None:
    """The user's image starts the first scene: checked here (it is a registered input,
    decodes), refused for a model that takes no image."""
    if not settings.image:
        return
    if plan.image_input == "none":
        refuse_image(plan.model)
    stored_image(settings.image)  # a registered input that decodes
    plan.image_path = settings.image


def refuse_image(model: str) -> None:
    capable = [e.name for e in VIDEO_MODELS.values() if e.inputs.image != "none"]
    raise ModelChoiceError(
        f"{model} makes video from text only and cannot start from an image; "
        f"image-capable models: {', '.join(capable)}"
    )


def plan_keyframes(plan: VideoPlan, settings, keyframes, device: str) -> None:
    """Which keyframes the scenes start from: a text-to-image model's, storyboard cards (the
    animatic), or none (text-to-video; an optional image; scenes chained by continuity)."""
    keyframe = (settings.keyframe_model or keyframes.model or "auto").strip()
    steps = settings.keyframe_steps
    if plan.backend == "animatic":
        if keyframe not in ("auto", "cards"):
            add_keyframe_model(plan, keyframe, keyframes, device, steps)
        return
    if plan.image_input == "none":
        plan.keyframe_model = "none"
        if keyframe not in ("auto", "none"):
            plan.notes.append(f"keyframe model {keyframe} ignored: {plan.pipeline} reads text")
        return
    # Continuity from the user's image: every scene starts from the one before it.
    chained = bool(plan.image_path and plan.continuity)
    if keyframe in ("auto", "none") and (plan.image_input == "optional" or chained):
        plan.keyframe_model = "none"
        return
    if keyframe in ("cards", "none"):
        raise ModelChoiceError(
            f"{plan.model} animates a keyframe image; storyboard cards would make a meaningless "
            "video: use a text-to-image keyframe model (sdxl-turbo, sd15, a hub id or a folder)"
        )
    name = DEFAULT_KEYFRAME_MODEL if keyframe == "auto" else keyframe
    add_keyframe_model(plan, name, keyframes, device, steps)


def add_keyframe_model(plan: VideoPlan, name: str, keyframes, device: str, steps) -> None:
    """A text-to-image model makes the keyframes, with the keyframe resource's own device
    settings, at the video's size (which it must be able to make)."""
    from vidgen_pipeline.resources.keyframes import KEYFRAME_SIZE_MULTIPLE

    keyframes.check_settings()
    keyframes.check_recipe()
    check_size(plan.width, plan.height, plan.fps, KEYFRAME_SIZE_MULTIPLE, f"keyframe model {name}")
    kf_device = runtime.resolve_device(keyframes.device) if keyframes.device != "auto" else device
    kf_dtype, _ = runtime.resolve_dtype(keyframes.dtype, kf_device)
    weights = keyframes.resolve(name, runtime.weights_precision(kf_dtype))
    spec = KEYFRAME_MODELS.get(name)
    plan.keyframe_model = name
    plan.keyframe_weights_path = str(weights.path)
    plan.keyframe_weights_source = weights.source
    plan.keyframe_weights_variant = weights.variant_for(kf_dtype)
    plan.keyframe_steps = steps or keyframes.steps or (spec.steps if spec else 25)
    plan.keyframe_guidance_scale = (
        keyframes.guidance_scale
        if keyframes.guidance_scale >= 0
        else (spec.guidance_scale if spec else 7.5)
    )
    plan.keyframe_device = kf_device
    plan.keyframe_dtype = kf_dtype
    plan.keyframe_memory_mode = keyframes.memory_mode if kf_device == "cuda" else "cpu"
