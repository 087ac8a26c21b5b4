"""The keyframe generator resource: one conditioning image per scene.

Image-to-video models (SVD) have no text input: the story reaches them only through these
keyframes, made by a text-to-image model. Without one (``cards``) the keyframes are
labelled storyboard cards, fit only for the animatic.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field

from vidgen_pipeline.core.cards import render_card
from vidgen_pipeline.core.clips import Keyframe
from vidgen_pipeline.core.images import fit_image, stored_image
from vidgen_pipeline.core.models import (
    KEYFRAME_MODELS,
    TEXT_TO_IMAGE_PIPELINES,
    ModelChoiceError,
    looks_like_hub_id,
)
from vidgen_pipeline.core.prompts import OptimizedPrompts
from vidgen_pipeline.core.scene_cache import KeyframeCache, weights_revision
from vidgen_pipeline.core.storyboard import Storyboard
from vidgen_pipeline.core.weights import ResolvedWeights, WeightsError, resolve_weights
from vidgen_pipeline.resources import placement, runtime
from vidgen_pipeline.resources.runtime import DiffusersSettings

KEYFRAME_VRAM_GB = 10.0
KEYFRAME_SIZE_MULTIPLE = 8  # SD, SDXL and their kin refuse other sides


class KeyframeBlocked(ModelChoiceError):
    """The text-to-image model's safety checker blacked out a keyframe: animating it would
    make a black video, so the step fails and says which scene."""


class KeyframeGenerator(DiffusersSettings):
    """Text-to-image keyframes (any diffusers text-to-image pipeline), or storyboard cards."""

    model: str = Field(
        default="auto",
        description="auto (sdxl-turbo for image-to-video models, cards for the animatic), "
        "cards, sdxl-turbo, sd15, a hub id or a local folder",
    )
    steps: int = Field(default=0, description="denoising steps; 0: the model's default")
    guidance_scale: float = Field(default=-1.0, description="-1: the model's default")
    recipe: str = Field(
        default="default",
        description="CUDA speed recipe (vidgen_pipeline.core.recipes): default (no compile: a "
        "2-step model would pay minutes of torch.compile warm-up per process), fast, none",
    )
    cache: bool = Field(default=True, description="reuse generated keyframes (re-runs, restarts)")
    cache_dir: str = Field(default="", description="keyframe cache; empty: VIDGEN_HOME/cache")

    def resolve(self, name: str, precision: str = "fp32") -> ResolvedWeights:
        """Find and check a text-to-image model's weights (no loading); ``precision``: the
        files a download fetches (``fp16`` for a half-precision load)."""
        spec = KEYFRAME_MODELS.get(name)
        if spec is None and not (looks_like_hub_id(name) or Path(name).expanduser().exists()):
            raise ModelChoiceError(
                f"unknown keyframe model {name!r}; known: {', '.join(KEYFRAME_MODELS)}, "
                "a hub id (org/name) or an existing local folder"
            )
        hub_id = spec.hub_id if spec else (name if looks_like_hub_id(name) else None)
        try:
            weights = resolve_weights(
                "keyframe",
                name,
                hub_id,
                spec.name if spec else None,
                self.allow_download,
                self.allow_unsafe_weights,
                precision=precision,
                half_variant=spec.half_variant if spec else False,
            )
        except WeightsError as exc:
            raise ModelChoiceError(str(exc)) from None
        if weights.pipeline_class not in TEXT_TO_IMAGE_PIPELINES:
            raise ModelChoiceError(
                f"keyframe model {name!r} is a {weights.pipeline_class}, not a text-to-image "
                f"pipeline ({', '.join(TEXT_TO_IMAGE_PIPELINES)})"
            )
        return weights

    def make(self, storyboard: Storyboard, prompts: OptimizedPrompts, log=print) -> list[Keyframe]:
        """One keyframe per scene at the video's size (none for a text-to-video model), the
        first being the user's image when there is one; the model stays loaded for the next
        prompt of the run until ``release()``."""
        plan = prompts.video
        scenes = prompts.scenes
        first = _user_keyframe(plan, scenes[0].scene_number) if plan.image_path else None
        rest = scenes[1:] if first is not None else scenes
        if plan.keyframe_model == "none" or not rest:
            made = []
        elif plan.keyframe_model == "cards":
            made = [
                Keyframe(
                    scene.scene_number,
                    render_card(
                        scene.description,
                        scene.scene_number,
                        len(scenes),
                        storyboard.title,
                        plan.width,
                        plan.height,
                    ),
                    {"source": "cards", "generated": False},
                )
                for scene in rest
            ]
        else:
            made = self._generate(prompts, rest, log)
        return ([first] if first is not None else []) + made

    def _generate(self, prompts: OptimizedPrompts, scenes, log) -> list[Keyframe]:
        plan = prompts.video
        # Checked and found at plan time; found the same way again if the plan is older.
        weights = (
            ResolvedWeights(
                Path(plan.keyframe_weights_path),
                plan.keyframe_weights_source,
                "",
            )
            if plan.keyframe_weights_source
            else self.resolve(plan.keyframe_weights_path or plan.keyframe_model)
        )
        cache = (
            KeyframeCache(Path(self.cache_dir) if self.cache_dir else None) if self.cache else None
        )
        common = {
            "model": plan.keyframe_model,
            "weights": weights_revision(str(weights.path)),
            "size": [plan.width, plan.height],
            "steps": plan.keyframe_steps,
            "guidance": plan.keyframe_guidance_scale,
            "dtype": plan.keyframe_dtype,
            "device": plan.keyframe_device,
        }
        keyframes: dict[int, Keyframe] = {}
        keys = {}
        for scene in scenes:
            if cache is None:
                break
            keys[scene.scene_number] = cache.key(
                {
                    **common,
                    "prompt": scene.keyframe_prompt or scene.prompt,
                    "negative": scene.keyframe_negative_prompt or scene.negative_prompt,
                    "seed": scene.seed,
                }
            )
            hit = cache.get(keys[scene.scene_number])
            if hit is not None:
                image, info = hit
                keyframes[scene.scene_number] = Keyframe(
                    scene.scene_number, image, {**info, "cache": "reused"}
                )
        todo = [scene for scene in scenes if scene.scene_number not in keyframes]
        if todo:
            for keyframe in self._render(plan, weights, todo, len(prompts.scenes), log):
                keyframes[keyframe.scene_number] = keyframe
                if cache is not None:
                    cache.put(keys[keyframe.scene_number], keyframe.image, keyframe.info)
        else:
            log(f"all {len(keyframes)} keyframes reused from the keyframe cache (model not loaded)")
        return [keyframes[scene.scene_number] for scene in scenes]

    def _render(self, plan, weights, scenes, count, log) -> list[Keyframe]:
        import torch

        device = plan.keyframe_device
        variant = (
            plan.keyframe_weights_variant
            if plan.keyframe_weights_source
            else weights.variant_for(plan.keyframe_dtype)
        )
        pipe = runtime.load_pipeline(
            weights, plan.keyframe_dtype, device, self, log=log, variant=variant
        )
        mode = placement.placement(pipe)
        if mode is None:  # placed once per process: later prompts of a run reuse it
            mode = plan.keyframe_memory_mode
            if mode == "auto":
                mode = runtime.auto_memory_mode(KEYFRAME_VRAM_GB)
            placement.place_for_run(pipe, mode, device, self.recipe, attention=self.attention)
        keyframes = []
        for scene in scenes:
            started = time.perf_counter()
            generator = torch.Generator("cpu").manual_seed(scene.seed)
            kwargs = {
                "prompt": scene.keyframe_prompt or scene.prompt,
                "height": plan.height,
                "width": plan.width,
                "num_inference_steps": plan.keyframe_steps,
                "guidance_scale": plan.keyframe_guidance_scale,
                "generator": generator,
            }
            if plan.keyframe_guidance_scale and plan.keyframe_guidance_scale > 1:
                kwargs["negative_prompt"] = scene.keyframe_negative_prompt or scene.negative_prompt
            result = pipe(**kwargs)
            _refuse_blacked_out(result, scene.scene_number, plan.keyframe_model)
            image = result.images[0]
            seconds = round(time.perf_counter() - started, 3)
            log(f"keyframe {scene.scene_number}/{count} in {seconds} s ({mode})")
            keyframes.append(
                Keyframe(
                    scene.scene_number,
                    image,
                    {
                        "source": plan.keyframe_model,
                        "generated": True,
                        "pipeline": type(pipe).__name__,
                        "seed": scene.seed,
                        "steps": plan.keyframe_steps,
                        "seconds": seconds,
                    },
                )
            )
        return keyframes

    def check_recipe(self) -> None:
        placement.check_recipe(self.recipe)

    def release(self) -> None:
        """Free the text-to-image model (the video model needs the memory next); the
        ``keyframes`` asset calls this after its last prompt."""
        runtime.release_all()


def _refuse_blacked_out(result, scene_number: int, model: str) -> None:
    """SD 1.5's safety checker replaces a flagged image by a black one and says so only in
    ``nsfw_content_detected``: never pass that image on to be animated."""
    flags = getattr(result, "nsfw_content_detected", None)
    if flags and flags[0]:
        raise KeyframeBlocked(
            f"the keyframe of scene {scene_number} was blacked out by the safety checker of "
            f"{model} (nsfw_content_detected); an image-to-video model would animate a black "
            "frame: reword the scene, or use a keyframe model without a safety checker"
        )


def _user_keyframe(plan, scene_number: int) -> Keyframe:
    """The user's image, fitted to the video's size, as the first scene's keyframe."""
    image, note = fit_image(stored_image(plan.image_path), plan.width, plan.height)
    info = {"source": "user image", "generated": False, "image": plan.image_path}
    if note:
        info["fitted"] = note
    return Keyframe(scene_number, image, info)
