"""The video generator resource (the design card's GPU resource).

It plans (which model, where its weights are, sizes, dtype, memory mode: all checked before
any heavy work) and renders scenes: diffusers video pipelines driven by their kind, image-
conditioned (SVD) or text-conditioned (ModelScope T2V, AnimateDiff), or the ``animatic``.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from vidgen_pipeline.core import recipes
from vidgen_pipeline.core.animatic import animate_keyframe
from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.memory import run_with_ladder
from vidgen_pipeline.core.models import (
    DEFAULT_KEYFRAME_MODEL,
    KEYFRAME_MODELS,
    VIDEO_MODELS,
    VIDEO_PIPELINES,
    ModelChoiceError,
    VideoModelSpec,
    VideoPlan,
    check_size,
    looks_like_hub_id,
)
from vidgen_pipeline.core.prompts import ScenePrompt
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.scene_cache import SceneCache, weights_revision
from vidgen_pipeline.core.weights import (
    ResolvedFile,
    ResolvedWeights,
    WeightsError,
    downloads_allowed,
    resolve_file,
    resolve_weights,
)
from vidgen_pipeline.resources import runtime
from vidgen_pipeline.resources.keyframes import KeyframeGenerator
from vidgen_pipeline.resources.runtime import DiffusersSettings

ANIMATIC = VIDEO_MODELS["animatic"]
ANIMATIC_SIZE = (1024, 576, 24.0)
# SVD's motion bucket (0-255, default 127) from the camera words of a scene.
MOTION_BUCKETS = {"static": 40, "zoom in": 150, "zoom out": 150, "pan left": 160, "pan right": 160}


class VideoGenerator(DiffusersSettings):
    """Turns one scene (prompt, keyframe, duration) into frames."""

    model: str = Field(
        default="auto", description="auto, a registry name, a hub id or a local folder"
    )
    width: int = Field(default=0, description="0: the model's native width")
    height: int = Field(default=0, description="0: the model's native height")
    fps: float = Field(default=0, description="0: the model's native frame rate")
    steps: int = Field(default=0, description="denoising steps; 0: the model's default")
    frames: int = Field(default=0, description="frames per generated clip; 0: native")
    decode_chunk_size: int = Field(
        default=0, description="SVD VAE frames per decode; 0: by memory mode"
    )
    forward_chunking: bool = Field(
        default=False, description="UNet feed-forward chunking (less memory)"
    )
    noise_aug_strength: float = Field(default=0.02, description="SVD: noise added to the keyframe")
    unet_weights: str = Field(
        default="",
        description="few-step models (animatelcm-svd-xt): their replacement UNet .safetensors "
        "file or its folder; empty: VIDGEN_HOME/models/<model>/, then the hub cache",
    )
    recipe: str = Field(
        default="auto",
        description="CUDA speed recipe: auto (fast on a whole GPU, low_memory offloaded), none, "
        "or a name from vidgen_pipeline.core.recipes; the VIDGEN_RECIPE env var overrides it",
    )
    continuity: bool = Field(
        default=False,
        description="image-conditioned models: start scene N+1 from the last frame of scene N",
    )
    fallback: str = Field(
        default="fail",
        description="when the chosen model's weights are missing: fail, or animatic (flagged)",
    )
    scene_cache: bool = Field(
        default=True,
        description="reuse finished scenes (re-runs, restarts after a crash); see cache_dir",
    )
    cache_dir: str = Field(default="", description="scene cache folder; empty: VIDGEN_HOME/cache")

    def cache(self) -> SceneCache | None:
        return (
            SceneCache(Path(self.cache_dir) if self.cache_dir else None)
            if self.scene_cache
            else None
        )

    def output_settings(self) -> dict:
        """The settings that shape a clip's frames (part of the scene cache key)."""
        return {
            "decode_chunk_size": self.decode_chunk_size,
            "forward_chunking": self.forward_chunking,
            "noise_aug_strength": self.noise_aug_strength,
            "attention": self.attention,
            "continuity": self.continuity,
            "recipe": self.recipe,
        }

    # ----------------------------------------------------------------------------- planning

    def plan(self, settings: GenerationSettings, keyframes: KeyframeGenerator) -> VideoPlan:
        """Resolve model, weights, device and sizes for one prompt; raise ``ModelChoiceError``."""
        self.check_settings()
        runtime.check_recipe(self.recipe)
        if self.fallback not in ("fail", "animatic"):
            raise ModelChoiceError(f"unknown fallback {self.fallback!r}; use fail or animatic")
        device = runtime.resolve_device(settings.device or self.device)
        name = (settings.video_model or self.model or "auto").strip()
        notes: list[str] = []
        if name == "auto":
            spec, weights, reason = self._auto(device, keyframes)
            unet = None
        else:
            spec, weights, reason, unet = self._named(name, notes)
        if self.unet_weights and unet is None:
            notes.append(
                f"unet_weights ignored: {spec.name if spec else name} has no replacement UNet"
            )
        if spec is ANIMATIC:
            return self._plan_animatic(settings, keyframes, device, reason, notes)
        label = spec.name if spec else name
        return self._plan_diffusers(
            settings, keyframes, device, label, spec, weights, reason, notes, unet
        )

    def _auto(self, device: str, keyframes: KeyframeGenerator):
        if device != "cuda":
            return (
                ANIMATIC,
                None,
                "auto: no CUDA GPU, so no diffusion model can run at a useful speed",
            )
        spec = VIDEO_MODELS["svd-xt"]
        try:
            weights = self._resolve(spec.name, spec, allow_download=False)
            if keyframes.model == "auto":
                keyframes.resolve(DEFAULT_KEYFRAME_MODEL)
        except ModelChoiceError as exc:
            return ANIMATIC, None, f"auto: a GPU is present but {exc}"
        return spec, weights, f"auto: a GPU and svd-xt weights ({weights.source})"

    def _named(self, name: str, notes: list[str]):
        if name == "animatic":
            return ANIMATIC, None, "asked for by name", None
        spec = VIDEO_MODELS.get(name)
        if spec is None and not (
            looks_like_hub_id(name) or "/" in name or name.startswith((".", "~"))
        ):
            raise ModelChoiceError(
                f"unknown video model {name!r}; known: {', '.join(VIDEO_MODELS)}, auto, "
                "a hub id (org/name) or a local folder"
            )
        try:
            weights = self._resolve(name, spec, allow_download=self.allow_download)
            unet = self._resolve_unet(spec) if spec is not None and spec.unet else None
        except ModelChoiceError as exc:
            if self.fallback != "animatic":
                raise
            notes.append(f"fallback to animatic: {exc}")
            return ANIMATIC, None, f"fallback (configured): {exc}", None
        return spec, weights, "asked for by name", unet

    def _resolve(
        self, name: str, spec: VideoModelSpec | None, allow_download: bool
    ) -> ResolvedWeights:
        hub_id = spec.hub_id if spec else (name if looks_like_hub_id(name) else None)
        try:
            return resolve_weights(
                "video",
                name,
                hub_id,
                (spec.base or spec.name) if spec else None,
                allow_download,
                self.allow_unsafe_weights,
            )
        except WeightsError as exc:
            base = f"{spec.name} runs on {spec.base}'s pipeline: " if spec and spec.base else ""
            raise ModelChoiceError(f"{base}{exc}") from None

    def _resolve_unet(self, spec: VideoModelSpec) -> ResolvedFile:
        """A few-step model's replacement UNet file: ``unet_weights``, else
        ``VIDGEN_HOME/models/<name>/<file>``, the hub cache, or a download when allowed."""
        try:
            return resolve_file(
                "video",
                spec.name,
                spec.unet.hub_id,
                spec.unet.filename,
                self.unet_weights,
                self.allow_download,
            )
        except WeightsError as exc:
            raise ModelChoiceError(str(exc)) from None

    def _plan_animatic(
        self, settings, keyframes: KeyframeGenerator, device, reason, notes
    ) -> VideoPlan:
        width = int(settings.width or self.width or ANIMATIC_SIZE[0])
        height = int(settings.height or self.height or ANIMATIC_SIZE[1])
        fps = float(settings.fps or self.fps or ANIMATIC_SIZE[2])
        check_size(width, height, fps, multiple=2)
        for label, value in (
            ("steps", settings.steps or self.steps),
            ("frames", settings.frames or self.frames),
        ):
            if value:
                notes.append(
                    f"{label}={value} ignored: the animatic backend has no {label} setting"
                )
        keyframe = (settings.keyframe_model or keyframes.model or "auto").strip()
        plan = VideoPlan(
            model="animatic",
            reason=reason,
            backend="animatic",
            pipeline="animatic",
            conditioning="none",
            device=device,
            width=width,
            height=height,
            fps=fps,
            keyframe_model="cards",
            notes=notes,
        )
        if keyframe not in ("auto", "cards"):
            self._add_keyframe_model(plan, keyframe, keyframes, device, settings.keyframe_steps)
        return plan

    def _plan_diffusers(
        self, settings, keyframes, device, label, spec, weights, reason, notes, unet=None
    ) -> VideoPlan:
        pipeline = weights.pipeline_class
        if spec is not None and spec.motion_adapter and pipeline == "StableDiffusionPipeline":
            pipeline = spec.pipeline  # a base text-to-image model plus a motion adapter
        defaults = VIDEO_PIPELINES.get(pipeline)
        if defaults is None:
            raise ModelChoiceError(
                f"{weights.path} holds a {pipeline or 'pipeline of unknown class'}; video pipelines "
                f"driven here: {', '.join(VIDEO_PIPELINES)}"
            )
        if spec is not None and spec.defaults is not None:
            defaults = spec.defaults
        dtype, dtype_note = runtime.resolve_dtype(self.dtype, device)
        if dtype_note:
            notes.append(dtype_note)
        width = int(settings.width or self.width or defaults.width)
        height = int(settings.height or self.height or defaults.height)
        fps = float(settings.fps or self.fps or defaults.fps)
        check_size(width, height, fps, multiple=8)
        adapter_path = None
        if (
            spec is not None
            and spec.motion_adapter
            and weights.pipeline_class != "AnimateDiffPipeline"
        ):
            adapter = self._resolve_adapter(spec)
            adapter_path = str(adapter)
        steps = int(settings.steps or self.steps or defaults.steps)
        few_step: dict = {}
        if unet is not None:
            low, high = spec.unet.steps
            if not low <= steps <= high:
                raise ModelChoiceError(
                    f"steps {steps} is outside {low}..{high}: {spec.name}'s UNet was distilled "
                    f"for {low}-{high} steps (default {defaults.steps})"
                )
            few_step = {
                "unet_weights_path": str(unet.path),
                "unet_weights_source": unet.source,
                "unet_weights_revision": unet.revision or weights_revision(str(unet.path)),
                "scheduler": spec.unet.scheduler,
                "scheduler_config": dict(spec.unet.scheduler_config),
            }
        if spec is not None and spec.guidance is not None:
            few_step["min_guidance_scale"], few_step["max_guidance_scale"] = spec.guidance
        plan = VideoPlan(
            model=label,
            reason=reason,
            backend="diffusers",
            pipeline=pipeline,
            conditioning=defaults.conditioning,
            weights_path=str(weights.path),
            weights_source=weights.source,
            weights_revision=weights.revision,
            weights_variant=weights.variant,
            motion_adapter_path=adapter_path,
            device=device,
            dtype=dtype,
            memory_mode=self.memory_mode if device == "cuda" else "cpu",
            width=width,
            height=height,
            fps=fps,
            steps=steps,
            frames_per_clip=int(settings.frames or self.frames or defaults.frames),
            continuity=self.continuity and defaults.conditioning == "image",
            notes=notes,
            **few_step,
        )
        keyframe = (settings.keyframe_model or keyframes.model or "auto").strip()
        if defaults.conditioning == "text":
            plan.keyframe_model = "none"
            if keyframe not in ("auto", "none"):
                notes.append(
                    f"keyframe model {keyframe} ignored: {pipeline} is conditioned on text"
                )
            return plan
        if keyframe == "cards":
            raise ModelChoiceError(
                f"{plan.model} animates a keyframe image; storyboard cards would make a meaningless "
                "video: use a text-to-image keyframe model (sdxl-turbo, sd15, a hub id or a folder)"
            )
        self._add_keyframe_model(
            plan,
            DEFAULT_KEYFRAME_MODEL if keyframe == "auto" else keyframe,
            keyframes,
            device,
            settings.keyframe_steps,
        )
        return plan

    def _resolve_adapter(self, spec: VideoModelSpec):
        from huggingface_hub import snapshot_download

        try:
            return snapshot_download(
                spec.motion_adapter, local_files_only=not downloads_allowed(self.allow_download)
            )
        except Exception as exc:  # noqa: BLE001  any hub failure becomes one clear line
            raise ModelChoiceError(
                f"motion adapter {spec.motion_adapter} for {spec.name} is not here "
                f"({type(exc).__name__}); fetch it with: hf download {spec.motion_adapter}"
            ) from None

    @staticmethod
    def _add_keyframe_model(
        plan: VideoPlan, name: str, keyframes: KeyframeGenerator, device: str, steps: int | None
    ) -> None:
        weights = keyframes.resolve(name)
        spec = KEYFRAME_MODELS.get(name)
        plan.keyframe_model = name
        plan.keyframe_weights_path = str(weights.path)
        plan.keyframe_steps = steps or keyframes.steps or (spec.steps if spec else 25)
        plan.keyframe_guidance_scale = (
            keyframes.guidance_scale
            if keyframes.guidance_scale >= 0
            else (spec.guidance_scale if spec else 7.5)
        )
        # The keyframe model runs with the keyframe resource's own device settings.
        kf_device = (
            runtime.resolve_device(keyframes.device) if keyframes.device != "auto" else device
        )
        plan.keyframe_device = kf_device
        plan.keyframe_dtype, _ = runtime.resolve_dtype(keyframes.dtype, kf_device)
        plan.keyframe_memory_mode = keyframes.memory_mode if kf_device == "cuda" else "cpu"

    # ------------------------------------------------------------------------------ render

    def render(
        self,
        plan: VideoPlan,
        scene: ScenePrompt,
        image,
        frame_count: int,
        log=print,
    ) -> SceneClip:
        """``frame_count`` frames at ``plan.fps`` for ``scene`` (``image``: its conditioning)."""
        if plan.backend == "animatic":
            return self._render_animatic(plan, scene, image, frame_count)
        return self._render_diffusers(plan, scene, image, frame_count, log)

    def _render_animatic(self, plan, scene, image, frame_count) -> SceneClip:
        started = time.perf_counter()
        frames = animate_keyframe(image, scene.camera, frame_count, plan.width, plan.height)
        return SceneClip(
            scene_number=scene.scene_number,
            frames=frames,
            fps=plan.fps,
            info={
                "backend": "animatic",
                "generated": False,
                "model": plan.model,
                "reason": plan.reason,
                "camera": scene.camera.name,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    def load(self, plan: VideoPlan, log=print):
        """The plan's pipeline, loaded once per process and placed in memory."""
        weights = ResolvedWeights(
            path=Path(plan.weights_path),
            source=plan.weights_source or "",
            pipeline_class=plan.pipeline,
            variant=plan.weights_variant,
        )
        pipeline_class = plan.pipeline if plan.motion_adapter_path else None
        pipe = runtime.load_pipeline(
            weights,
            plan.dtype,
            plan.device,
            self,
            plan.motion_adapter_path,
            pipeline_class,
            log,
            unet_weights=plan.unet_weights_path,
            scheduler=(plan.scheduler, plan.scheduler_config) if plan.scheduler else None,
        )
        placed = runtime.placement(pipe)
        if placed is not None:
            return pipe, placed  # decided once per process; lowered by any earlier OOM
        mode = plan.memory_mode
        if mode == "auto":
            mode = runtime.auto_memory_mode(VIDEO_PIPELINES[plan.pipeline].vram_gb)
            log(f"memory_mode auto -> {mode}")
        # Placing can itself run out of memory (pipe.to on a small card): same ladder.
        _, mode, _ = run_with_ladder(
            mode,
            apply=lambda m: None,
            attempt=lambda m: runtime.place(
                pipe, m, plan.device, self.attention, self.forward_chunking, self.recipe
            ),
            is_oom=runtime.is_out_of_memory,
            log=log,
        )
        return pipe, mode

    def _render_diffusers(self, plan, scene, image, frame_count, log) -> SceneClip:
        pipe, mode = self.load(plan, log)
        runtime.reset_peak_memory(plan.device)
        started = time.perf_counter()
        chunks: list[np.ndarray] = []
        made = 0
        condition = image
        chunk_index = 0
        # A scene longer than one clip is made of several; an image-conditioned model
        # continues from the last frame of the previous chunk.
        tried: list[str] = []
        while made < frame_count:
            seed = scene.seed + chunk_index
            # The last clip of a scene makes only what is still needed (no wasted denoising).
            length = min(plan.frames_per_clip, max(2, frame_count - made))

            def attempt(current_mode, seed=seed, condition=condition, index=chunk_index, n=length):
                return self._call(pipe, plan, scene, condition, seed, current_mode, index, log, n)

            frames, mode, rungs = run_with_ladder(
                mode,
                apply=lambda m: runtime.place(
                    pipe, m, plan.device, self.attention, self.forward_chunking, self.recipe
                ),
                attempt=attempt,
                is_oom=runtime.is_out_of_memory,
                log=log,
            )
            tried += [r for r in rungs if r not in tried]
            chunks.append(frames)
            made += len(frames)
            chunk_index += 1
            if plan.conditioning == "image":
                from PIL import Image

                condition = Image.fromarray(frames[-1])
        frames = np.concatenate(chunks)[:frame_count]
        seconds = round(time.perf_counter() - started, 3)
        applied = recipes.applied_recipe(pipe)
        few_step = {}
        if plan.unet_weights_path:
            few_step = {"unet_weights": plan.unet_weights_path, "scheduler": plan.scheduler}
        if plan.max_guidance_scale is not None:
            few_step["guidance"] = [plan.min_guidance_scale, plan.max_guidance_scale]
        return SceneClip(
            scene_number=scene.scene_number,
            frames=frames,
            fps=plan.fps,
            info={
                "backend": "diffusers",
                "generated": True,
                "model": plan.model,
                "pipeline": type(pipe).__name__,
                "weights": plan.weights_path,
                "dtype": plan.dtype,
                "memory_mode": mode,
                "memory_modes_tried": tried,
                "steps": plan.steps,
                "seed": scene.seed,
                "chunks": chunk_index,
                "frames_per_clip": plan.frames_per_clip,
                "seconds": seconds,
                "peak_memory_mb": runtime.peak_memory_mb(plan.device),
                "peak_memory_kind": "cuda allocated" if plan.device == "cuda" else "process rss",
                # What the speed recipe applied on CUDA (none on the CPU), and what it skipped.
                "recipe": (
                    {"name": applied.name, "notes": list(applied.notes)} if applied else None
                ),
                **few_step,
            },
        )

    def _call(
        self, pipe, plan: VideoPlan, scene: ScenePrompt, image, seed, mode, chunk, log, frames=None
    ) -> np.ndarray:
        """One clip of ``frames`` (default ``plan.frames_per_clip``) as uint8 (T, H, W, 3)."""
        frames = frames or plan.frames_per_clip
        import torch

        generator = torch.Generator("cpu").manual_seed(seed)
        kwargs = {
            "height": plan.height,
            "width": plan.width,
            "num_frames": frames,
            "num_inference_steps": plan.steps,
            "generator": generator,
            "output_type": "np",
        }
        if plan.max_guidance_scale is not None:  # few-step: 1.0 means one UNet pass a step
            kwargs.update(
                min_guidance_scale=plan.min_guidance_scale,
                max_guidance_scale=plan.max_guidance_scale,
            )
        from vidgen_pipeline.core.animatelcm_scheduler import (
            AnimateLCMSVDStochasticIterativeScheduler,
        )

        if isinstance(pipe.scheduler, AnimateLCMSVDStochasticIterativeScheduler):
            # diffusers' SVD pipeline calls scheduler.step without the generator: the ported
            # AnimateLCM scheduler draws its per-step noise from this one, continuing the
            # seeded stream after the initial noise (as the upstream demo's global RNG does).
            pipe.scheduler.generator = generator
        if plan.conditioning == "image":
            # The whole clip in one VAE decode on a whole GPU (CUDA); a little at a time else.
            whole = 25 if plan.device == "cuda" else 8
            decode_chunk = self.decode_chunk_size or (whole if mode == "gpu" else 2)
            kwargs.update(
                image=image,
                fps=max(1, round(plan.fps)),
                motion_bucket_id=MOTION_BUCKETS.get(scene.camera.name.split(",")[0], 127),
                noise_aug_strength=self.noise_aug_strength,
                decode_chunk_size=min(decode_chunk, frames),
            )
        else:
            kwargs.update(prompt=scene.prompt, negative_prompt=scene.negative_prompt)
        kwargs.update(self._progress_kwargs(pipe, plan, scene, chunk, log))
        video = np.asarray(pipe(**kwargs).frames[0])  # output_type="np": (T, H, W, 3) in [0, 1]
        return (np.clip(video, 0, 1) * 255).round().astype(np.uint8)

    @staticmethod
    def _progress_kwargs(pipe, plan, scene, chunk, log) -> dict:
        """Per-step progress with an ETA, through whichever callback the pipeline offers."""
        total = plan.steps
        started = time.perf_counter()

        def report(step: int) -> None:
            done = step + 1
            elapsed = time.perf_counter() - started
            eta = elapsed / done * (total - done)
            log(
                f"scene {scene.scene_number} clip {chunk + 1}: step {done}/{total}, "
                f"{elapsed / done:.2f} s/step, ETA {eta:.0f} s"
            )

        params = inspect.signature(pipe.__call__).parameters
        if "callback_on_step_end" in params:

            def on_step_end(_pipe, step, _timestep, callback_kwargs):
                report(step)
                return callback_kwargs

            return {"callback_on_step_end": on_step_end}
        if "callback" in params:
            return {"callback": lambda step, _t, _latents: report(step), "callback_steps": 1}
        return {}
