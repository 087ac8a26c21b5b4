"""Stable Video Diffusion (SVD, SVD-XT, and AnimateLCM's few-step UNet on SVD-XT).

SVD is conditioned on an image only: ``StableVideoDiffusionPipeline.__call__`` has no prompt
and no ``guidance_scale``. The story reaches it through a keyframe made by a text-to-image
model; camera words pick its motion bucket.
"""

from __future__ import annotations

from vidgen_pipeline.core.models import VideoPlan
from vidgen_pipeline.core.prompts import ScenePrompt
from vidgen_pipeline.families.base import ClipRequest, Family, FrameRule, Inputs, Native

# Motion bucket (0-255, default 127) from the camera words of a scene.
MOTION_BUCKETS = {"static": 40, "zoom in": 150, "zoom out": 150, "pan left": 160, "pan right": 160}
# Decoder activations alive at once per frame, in units of one full-resolution map of its
# widest block (128 channels at the output size): an estimate for the memory-fitted chunk.
DECODE_MAPS_PER_FRAME = 6
DECODE_CHANNELS = 128


class StableVideoDiffusion(Family):
    name = "svd"
    summary = "Stable Video Diffusion: animates a keyframe image (no text input)"
    pipelines = ("StableVideoDiffusionPipeline",)
    denoisers = ("unet",)
    native = Native(width=1024, height=576, frames=25, fps=6, steps=25)
    size_multiple = 8
    frame_rule = FrameRule()
    languages = ()
    text_encoder = "none (animates a keyframe)"
    token_limit = 0
    vram_gb = 16.0

    def inputs(self, pipeline_class, folder) -> Inputs:
        return Inputs(text=False, image="required")

    def resource_options(self, generator) -> dict:
        options = {"noise_aug_strength": generator.noise_aug_strength}
        if generator.decode_chunk_size:
            options["decode_chunk_size"] = generator.decode_chunk_size
        return options

    def call_arguments(self, plan: VideoPlan, scene: ScenePrompt, clip: ClipRequest) -> dict:
        options = plan.call_options
        arguments = {
            "image": clip.image,
            "height": plan.height,
            "width": plan.width,
            "num_frames": clip.frames,
            "num_inference_steps": plan.steps,
            "fps": max(1, round(plan.fps)),
            "motion_bucket_id": MOTION_BUCKETS.get(scene.camera.name.split(",")[0], 127),
            "noise_aug_strength": options.get("noise_aug_strength", 0.02),
            "decode_chunk_size": min(clip.decode_chunk or clip.frames, clip.frames),
        }
        if "min_guidance_scale" in options:  # few-step: 1.0 means one UNet pass a step
            arguments["min_guidance_scale"] = options["min_guidance_scale"]
            arguments["max_guidance_scale"] = options["max_guidance_scale"]
        return arguments

    def decode_chunk(self, plan: VideoPlan, mode: str, free_bytes: int | None) -> int:
        """Frames the VAE decodes at once: the resource's ``decode_chunk_size`` when set; on a
        whole CUDA GPU as many as fit in the free memory (estimated; an out-of-memory error
        in decoding halves it and decodes again, see ``runtime.guard_decode``); 2 offloaded
        or on the CPU."""
        chosen = int(plan.call_options.get("decode_chunk_size") or 0)
        if chosen:
            return chosen
        if plan.device != "cuda":
            return 8 if mode == "gpu" else 2
        if mode != "gpu" or not free_bytes:
            return 2
        element = 4 if plan.dtype == "fp32" else 2
        per_frame = plan.width * plan.height * DECODE_CHANNELS * element * DECODE_MAPS_PER_FRAME
        return max(1, min(plan.frames_per_clip or 25, int(free_bytes * 0.8 // per_frame)))

    def bind_generator(self, pipe, generator) -> None:
        """diffusers' SVD pipeline calls ``scheduler.step`` without the generator: the ported
        AnimateLCM scheduler draws its per-step noise from this one, continuing the seeded
        stream after the initial noise (as the upstream demo's global RNG does)."""
        from vidgen_pipeline.core.animatelcm_scheduler import (
            AnimateLCMSVDStochasticIterativeScheduler,
        )

        if isinstance(pipe.scheduler, AnimateLCMSVDStochasticIterativeScheduler):
            pipe.scheduler.generator = generator


FAMILY = StableVideoDiffusion()
