"""Rendering one scene: the loop every family shares.

Load the plan's pipeline once per process and place it in memory; make the scene's clips
(``core/chunks.py``), each through the memory ladder, with per-step progress; record what
made them. The family module supplies the call arguments and reads the output.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import numpy as np

from vidgen_pipeline.core.animatic import animate_keyframe
from vidgen_pipeline.core.chunks import Chunk, plan_chunks, render_chunks
from vidgen_pipeline.core.clip_audio import describe, join_clip_audio
from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.memory import run_with_ladder
from vidgen_pipeline.core.models import VideoPlan
from vidgen_pipeline.core.prompts import ScenePrompt
from vidgen_pipeline.core.weights import ResolvedWeights
from vidgen_pipeline.families.base import ClipRequest, Family, FrameRule
from vidgen_pipeline.families.registry import FAMILIES
from vidgen_pipeline.resources import extras, placement, runtime


def render_animatic(plan: VideoPlan, scene: ScenePrompt, image, frame_count: int) -> SceneClip:
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


def load(generator, plan: VideoPlan, log=print):
    """The plan's pipeline, loaded once per process and placed in memory (the mode is
    decided once per process and lowered by any out-of-memory error since)."""
    weights = ResolvedWeights(
        path=Path(plan.weights_path),
        source=plan.weights_source or "",
        pipeline_class=plan.pipeline,
    )
    pipe = runtime.load_pipeline(
        weights,
        plan.dtype,
        plan.device,
        generator,
        plan.motion_adapter_path,
        plan.pipeline if plan.motion_adapter_path else None,
        log,
        unet_weights=plan.unet_weights_path,
        scheduler=(plan.scheduler, plan.scheduler_config) if plan.scheduler else None,
        variant=plan.weights_variant,
        component_dtypes=plan.component_dtypes,
    )
    placed = placement.placement(pipe)
    if placed is not None:
        if extras.loras_of(pipe) != extras.wanted_loras(plan.loras):
            # Another prompt's LoRAs: fused projections and compiled blocks are rebuilt.
            placement.reset(pipe)
            extras.apply_loras(pipe, plan.loras, log)
            _place(generator, pipe, plan, placed)
        return pipe, placed
    extras.apply_loras(pipe, plan.loras, log)  # before the recipe fuses projections
    mode = plan.memory_mode
    if mode == "auto":
        mode = runtime.auto_memory_mode(plan.vram_gb)
        log(f"memory_mode auto -> {mode}")
    # Placing can itself run out of memory (pipe.to on a small card): same ladder.
    _, mode, _ = run_with_ladder(
        mode,
        apply=lambda m: None,
        attempt=lambda m: _place(generator, pipe, plan, m),
        is_oom=runtime.is_out_of_memory,
        log=log,
    )
    return pipe, mode


def _place(generator, pipe, plan: VideoPlan, mode: str) -> None:
    family = FAMILIES[plan.family]
    placement.place_for_run(
        pipe,
        mode,
        plan.device,
        generator.recipe,
        attention=generator.attention,
        forward_chunking=generator.forward_chunking,
        step_cache=family.step_cache(generator.cache_threshold or None),
    )


def render_diffusers(
    generator, plan: VideoPlan, scene: ScenePrompt, image, frame_count: int, log, continuing
) -> SceneClip:
    """``frame_count`` frames of ``scene`` from its clips; ``continuing``: ``image`` is the
    previous scene's last frame (continuity), which the first clip then does not repeat."""
    family = FAMILIES[plan.family]
    pipe, mode = load(generator, plan, log)
    prepared = family.prepare(pipe, plan)
    runtime.guard_decode(pipe, log)
    runtime.reset_peak_memory(plan.device)
    started = time.perf_counter()
    chunks = plan_chunks(
        frame_count,
        plan.frames_per_clip,
        FrameRule(**plan.frame_rule),
        continues=plan.takes_images,
        first_continues=continuing and plan.takes_images,
    )
    state = {"mode": mode, "tried": []}
    sounds: list = []  # each clip's (samples, rate), or None from a silent family

    def make(chunk: Chunk, start) -> np.ndarray:
        (frames, sound), state["mode"], rungs = run_with_ladder(
            state["mode"],
            apply=lambda m: _place(generator, pipe, plan, m),
            attempt=lambda m: _clip(pipe, family, plan, scene, chunk, start, m, log),
            is_oom=runtime.is_out_of_memory,
            log=log,
        )
        state["tried"] += [r for r in rungs if r not in state["tried"]]
        sounds.append(sound)
        return frames

    frames = render_chunks(chunks, make, image, _to_image)
    info = _provenance(pipe, plan, scene, chunks, state, prepared)
    info.update(seconds=round(time.perf_counter() - started, 3))
    info.update(peak_memory_mb=runtime.peak_memory_mb(plan.device))
    clip = SceneClip(scene.scene_number, frames, plan.fps, info)
    _attach_audio(clip, chunks, sounds)
    return clip


def _attach_audio(clip: SceneClip, chunks: list[Chunk], sounds: list) -> None:
    """The scene's audio from its clips', joined as their frames are (``clip_audio``)."""
    if not any(sounds):
        return
    rates = {sound[1] if sound else None for sound in sounds}
    if len(rates) != 1:  # a clip without sound, or at another rate, among clips with it
        raise RuntimeError(f"scene {clip.scene_number}: its clips' audio does not match")
    rate = rates.pop()
    spans = [(c.skip, c.keep) for c in chunks]
    clip.audio = join_clip_audio(spans, [samples for samples, _ in sounds], clip.fps, rate)
    clip.audio_rate = rate
    clip.info["audio"] = describe(clip.audio, rate)


def _to_image(frame: np.ndarray):
    from PIL import Image

    return Image.fromarray(frame)


def _clip(pipe, family: Family, plan, scene, chunk: Chunk, image, mode: str, log):
    """One pipeline call: ``chunk.frames`` frames as uint8 (T, H, W, 3), and the sound made
    with them (samples, rate), or None from a silent family."""
    import torch

    request = ClipRequest(
        frames=chunk.frames,
        seed=scene.seed + chunk.index,
        image=image,
        index=chunk.index,
        mode=mode,
        decode_chunk=family.decode_chunk(plan, mode, runtime.free_memory_bytes(plan.device)),
    )
    run = runtime.pipeline_as(
        pipe, plan.image_pipeline if image is not None else plan.text_pipeline
    )
    generator = torch.Generator("cpu").manual_seed(request.seed)
    family.bind_generator(run, generator)
    arguments = family.call_arguments(plan, scene, request)
    arguments.update(generator=generator, output_type=family.output_type)
    arguments.update(_progress(run, plan, scene, chunk.index, log))
    output = run(**arguments)
    video = np.asarray(family.frames_of(output))  # (T, H, W, 3) in [0, 1]
    frames = (np.clip(video, 0, 1) * 255).round().astype(np.uint8)
    return frames, family.audio_of(output, run)


def _provenance(pipe, plan: VideoPlan, scene, chunks, state, prepared) -> dict:
    applied = placement.applied_recipe(pipe)
    info = {
        "backend": "diffusers",
        "generated": True,
        "model": plan.model,
        "family": plan.family,
        "pipeline": type(pipe).__name__,
        "weights": plan.weights_path,
        "weights_variant": plan.weights_variant,
        "dtype": plan.dtype,
        "memory_mode": state["mode"],
        "memory_modes_tried": state["tried"],
        "steps": plan.steps,
        "seed": scene.seed,
        "chunks": len(chunks),
        "frames_per_clip": plan.frames_per_clip,
        "clip_frames": [c.frames for c in chunks],
        "call_options": plan.call_options,
        "peak_memory_kind": "cuda allocated" if plan.device == "cuda" else "process rss",
        # What the speed recipe applied on CUDA (none on the CPU), and what it skipped.
        "recipe": {"name": applied.name, "notes": list(applied.notes)} if applied else None,
    }
    if prepared:
        info["prepared"] = prepared
    if plan.unet_weights_path:
        info.update(unet_weights=plan.unet_weights_path, scheduler=plan.scheduler)
    if plan.loras:
        info["loras"] = [{"path": lora["path"], "scale": lora["scale"]} for lora in plan.loras]
    options = plan.call_options
    if "max_guidance_scale" in options:  # SVD's guidance ramp (few-step: 1.0 to 1.0)
        info["guidance"] = [options["min_guidance_scale"], options["max_guidance_scale"]]
    return info


def _progress(pipe, plan: VideoPlan, scene: ScenePrompt, chunk: int, log) -> dict:
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
