"""The video generator resource (the design card's GPU resource).

This version renders the ``animatic`` backend only; diffusers video models plug in here.
"""

from __future__ import annotations

import time

from dagster import ConfigurableResource
from pydantic import Field

from vidgen_pipeline.core.animatic import animate_keyframe
from vidgen_pipeline.core.clips import Keyframe, SceneClip
from vidgen_pipeline.core.models import (
    ModelChoiceError,
    VideoPlan,
    choose_video_model,
    resolve_plan,
)
from vidgen_pipeline.core.prompts import ScenePrompt
from vidgen_pipeline.core.requests import GenerationSettings

DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    import torch  # imported here: never at module import, never in the parent of a step

    return bool(torch.cuda.is_available())


class VideoGenerator(ConfigurableResource):
    """Turns one scene (prompt, keyframe, duration) into frames."""

    model: str = Field(default="auto", description="registry name, hub id, local path or auto")
    device: str = Field(default="auto", description="auto, cpu or cuda")
    width: int = Field(default=0, description="0: the model's native width")
    height: int = Field(default=0, description="0: the model's native height")
    fps: float = Field(default=0, description="0: the model's native frame rate")
    steps: int = Field(default=0, description="denoising steps; 0: the model's default")
    frames: int = Field(default=0, description="frames per generated clip; 0: native")

    def plan(self, settings: GenerationSettings) -> VideoPlan:
        """Resolve model, device and sizes for one prompt; raise ``ModelChoiceError``."""
        device = settings.device or self.device
        if device not in DEVICES:
            raise ModelChoiceError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
        has_cuda = cuda_available() if device != "cpu" else False
        choice = choose_video_model(settings.video_model or self.model, device, has_cuda)
        resolved_device = (
            "cuda" if device == "auto" and has_cuda else (device if device != "auto" else "cpu")
        )
        return resolve_plan(
            choice,
            resolved_device,
            settings.width or self.width,
            settings.height or self.height,
            settings.fps or self.fps,
            settings.steps or self.steps,
            settings.frames or self.frames,
        )

    def render(
        self, plan: VideoPlan, scene: ScenePrompt, keyframe: Keyframe, frame_count: int
    ) -> SceneClip:
        """Frames for ``scene`` lasting ``frame_count`` frames at ``plan.fps``."""
        if plan.backend != "animatic":
            raise ModelChoiceError(
                f"video backend {plan.backend!r} is not available in this version"
            )
        started = time.perf_counter()
        frames = animate_keyframe(
            keyframe.image, scene.camera, frame_count, plan.width, plan.height
        )
        return SceneClip(
            scene_number=scene.scene_number,
            frames=frames,
            fps=plan.fps,
            info={
                "backend": "animatic",
                "generated": False,
                "model": plan.model,
                "camera": scene.camera.name,
                "keyframe_source": keyframe.info.get("source"),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
