"""The video generator resource (the design card's GPU resource).

It plans (which model and family, where its weights are, sizes, dtype, memory mode: all
checked before any heavy work; ``video_planning``) and renders scenes (``video_render``):
any family's diffusers pipeline (``vidgen_pipeline.families``), or the ``animatic``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.models import VideoPlan
from vidgen_pipeline.core.prompts import ScenePrompt
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.scene_cache import SceneCache
from vidgen_pipeline.resources import video_render
from vidgen_pipeline.resources.keyframes import KeyframeGenerator
from vidgen_pipeline.resources.runtime import DiffusersSettings
from vidgen_pipeline.resources.video_planning import plan_video


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
    image_dirs: list[str] = Field(
        default_factory=list,
        description="folders a Launchpad or dataset image path may name, besides "
        "VIDGEN_HOME/inputs and a dataset's own folder",
    )
    loras: list[str] = Field(
        default_factory=list,
        description="LoRAs on the video model for every prompt without its own lora setting: "
        "PATH_OR_HUB_ID[:SCALE] each (safetensors only)",
    )
    unet_weights: str = Field(
        default="",
        description="few-step models (animatelcm-svd-xt): their replacement UNet .safetensors "
        "file or its folder; empty: VIDGEN_HOME/models/<model>/, then the hub cache",
    )
    recipe: str = Field(
        default="auto",
        description="CUDA speed recipe: auto (fast on a whole GPU, low_memory offloaded), none, "
        "or a name from vidgen_pipeline.core.recipes (cache: fast plus a step cache, not "
        "exact); the VIDGEN_RECIPE env var overrides it",
    )
    cache_threshold: float = Field(
        default=0.0,
        ge=0,
        description="the cache recipe's threshold (First Block Cache: higher is faster and "
        "further from the exact output); 0: the family's default",
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
            "cache_threshold": self.cache_threshold,
        }

    def plan(self, settings: GenerationSettings, keyframes: KeyframeGenerator) -> VideoPlan:
        """Resolve model, weights, device and sizes for one prompt (see ``video_planning``);
        raise ``ModelChoiceError`` with one line."""
        return plan_video(self, settings, keyframes)

    def load(self, plan: VideoPlan, log=print):
        """The plan's pipeline, loaded once per process and placed in memory."""
        return video_render.load(self, plan, log)

    def render(
        self,
        plan: VideoPlan,
        scene: ScenePrompt,
        image,
        frame_count: int,
        log=print,
        continuing: bool = False,
    ) -> SceneClip:
        """``frame_count`` frames at ``plan.fps`` for ``scene``; ``image``: its start (a
        keyframe, the user's image, or with ``continuing`` the previous scene's last frame)."""
        if plan.backend == "animatic":
            return video_render.render_animatic(plan, scene, image, frame_count)
        return video_render.render_diffusers(self, plan, scene, image, frame_count, log, continuing)
