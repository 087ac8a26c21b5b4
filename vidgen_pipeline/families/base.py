"""What every model family declares, and the helpers the family modules share.

A family is the one place that knows a kind of video model: the diffusers pipeline classes it
drives (a folder's ``model_index.json`` ``_class_name`` picks the family), what it takes (text,
an image, or both), its native output, the size multiple and the frame counts it can make, its
denoiser components, what its text encoder reads, the call arguments built from a scene (a pure
function), loading extras and a VRAM estimate. The video resource holds only what all families
share (plan, chunk loop, memory ladder, progress, provenance).

Plain Python: no Dagster, and torch only inside functions that run a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from vidgen_pipeline.core.models import ModelChoiceError, VideoPlan
from vidgen_pipeline.core.prompts import ScenePrompt

ImageInput = Literal["none", "required", "optional"]


@dataclass(frozen=True)
class Native:
    """A model's native output: what it was trained to make."""

    width: int
    height: int
    frames: int
    fps: float
    steps: int


@dataclass(frozen=True)
class FrameRule:
    """The frame counts a model can make: ``step * k + offset`` (k >= 1), within bounds.

    Wan and HunyuanVideo make 4k+1 frames (their VAEs compress time 4x and keep the first
    frame), LTX-Video 8k+1, the UNet video models any count from 2.
    """

    step: int = 1
    offset: int = 0
    minimum: int = 2
    maximum: int | None = None

    def legal(self, frames: int) -> bool:
        return (
            frames >= self.minimum
            and (self.maximum is None or frames <= self.maximum)
            and (frames - self.offset) % self.step == 0
        )

    def at_least(self, frames: int) -> int:
        """The smallest legal count of ``frames`` or more (the largest one when none is)."""
        count = max(frames, self.minimum)
        count += (self.offset - count) % self.step
        while not self.legal(count) and (self.maximum is None or count <= self.maximum):
            count += self.step
        if self.maximum is not None and count > self.maximum:
            return self.at_most(self.maximum)
        return count

    def at_most(self, frames: int) -> int:
        """The largest legal count of ``frames`` or fewer (the smallest one when none is)."""
        if self.maximum is not None:
            frames = min(frames, self.maximum)
        count = frames - (frames - self.offset) % self.step
        if count < self.minimum:
            return self.at_least(self.minimum)
        return count

    def describe(self) -> str:
        if self.step == 1:
            text = f"any from {self.minimum}"
        else:
            text = f"{self.step}k+{self.offset}" if self.offset else f"multiples of {self.step}"
        return text + (f" up to {self.maximum}" if self.maximum is not None else "")


@dataclass(frozen=True)
class Inputs:
    """What one pipeline folder reads: the prompt, and a starting image (none, required, or
    optional: text-to-video without one, image-to-video with one)."""

    text: bool
    image: ImageInput

    @property
    def kind(self) -> str:
        if self.image == "none":
            return "text"
        if not self.text:
            return "image"
        return "text+image" if self.image == "optional" else "image+text"


@dataclass(frozen=True)
class ClipRequest:
    """One call of a pipeline: ``frames`` frames from ``seed``, starting from ``image`` (a PIL
    image, or None), in memory mode ``mode``; ``decode_chunk``: frames per VAE decode where
    the family decodes in chunks (SVD)."""

    frames: int
    seed: int
    image: Any = None
    index: int = 0
    mode: str = "cpu"
    decode_chunk: int | None = None


class Family:
    """Base of every family module: declarations (class attributes) and pure rules."""

    name: ClassVar[str]
    summary: ClassVar[str]
    pipelines: ClassVar[tuple[str, ...]]  # model_index.json classes this family drives
    denoisers: ClassVar[tuple[str, ...]] = ("transformer",)
    native: ClassVar[Native]
    size_multiple: ClassVar[int] = 8
    frame_rule: ClassVar[FrameRule] = FrameRule()
    languages: ClassVar[tuple[str, ...]] = ("en",)
    text_encoder: ClassVar[str] = "CLIP"
    token_limit: ClassVar[int] = 77
    # "clip": short prompts (77 tokens, style words dropped first); "sentences": the full
    # description, up to the text encoder's limit.
    prompt_style: ClassVar[str] = "clip"
    # The family's own negative prompt; None: the project's base list plus the style's.
    negative_prompt: ClassVar[str | None] = None
    vram_gb: ClassVar[float] = 16.0
    output_type: ClassVar[str] = "np"
    # The call options (``defaults``, the registry entry's) passed to ``__call__`` as they are.
    passed_options: ClassVar[tuple[str, ...]] = ()
    # Its pipeline returns sound with the frames (``audio_of``); the others are silent.
    makes_audio: ClassVar[bool] = False

    # ------------------------------------------------------------------ folder rules
    def inputs(self, pipeline_class: str, folder: Path | None) -> Inputs:
        """What a folder of ``pipeline_class`` takes (a family may read its configs)."""
        raise NotImplementedError

    def image_pipeline(self, pipeline_class: str, folder: Path | None) -> str | None:
        """The class that runs a clip with a starting image, when ``pipeline_class`` itself
        takes none but the same weights do (LTX-Video, Wan 2.2 TI2V); else None."""
        return None

    def text_pipeline(self, pipeline_class: str) -> str | None:
        """The class that runs a text-only clip, when ``pipeline_class`` needs an image but
        the same weights also make video from text alone; else None."""
        return None

    def pipeline_for(self, pipeline_class: str, folder: Path | None, with_image: bool) -> str:
        """The class that runs one clip of a ``pipeline_class`` folder: itself, or one made
        from the loaded pipeline's components (``from_pipe``, no second load)."""
        other = (
            self.image_pipeline(pipeline_class, folder)
            if with_image
            else self.text_pipeline(pipeline_class)
        )
        return other or pipeline_class

    def fit_size(
        self, pipeline_class: str, folder: Path | None, width: int, height: int
    ) -> tuple[int, int]:
        """The size a folder will really make when asked for ``width`` x ``height`` (a
        pipeline that sizes its output itself); unchanged for most."""
        return width, height

    def check_size(self, folder: Path | None, width: int, height: int) -> None:
        """Refuse a size this folder cannot make beyond the multiple (one line)."""

    def rules(self, folder: Path | None) -> tuple[int, FrameRule]:
        """(size multiple, frame rule) of a folder: from its configs where they say, else the
        family's published values."""
        return self.size_multiple, self.frame_rule

    def check_folder(self, folder: Path, pipeline_class: str, expects: tuple[str, ...]) -> None:
        """Refuse a folder that lacks what this model needs (``expects``: denoiser components
        its registry entry names), in one line, before anything loads."""
        index = read_index(folder)
        missing = [c for c in expects if not has_component(index, c)]
        if missing:
            raise ModelChoiceError(
                f"{folder} holds a {pipeline_class} without {', '.join(missing)}: "
                f"this model needs {' and '.join(expects)} (download the whole repo)"
            )

    # ------------------------------------------------------------------ loading
    def resource_options(self, generator) -> dict[str, Any]:
        """Call settings taken from the video resource's config (SVD's noise augmentation)."""
        return {}

    def step_cache(self, threshold: float | None):
        """The step cache the ``cache`` recipe puts on this family's denoiser (a diffusers
        cache config), or None: First Block Cache on the diffusion transformers."""
        if self.denoisers[:1] != ("transformer",):
            return None
        from diffusers import FirstBlockCacheConfig

        from vidgen_pipeline.core.recipes import CACHE_THRESHOLD

        return FirstBlockCacheConfig(threshold=threshold or CACHE_THRESHOLD)

    def component_dtypes(self, dtype: str) -> dict[str, str]:
        """Components loaded in another dtype than the pipeline's (Wan's VAE in fp32)."""
        return {}

    def prepare(self, pipe, plan: VideoPlan) -> list[str]:
        """Adjust a loaded pipeline for ``plan`` (a scheduler setting); return notes."""
        return []

    # ------------------------------------------------------------------ calling
    def defaults(self, pipeline_class: str, width: int, height: int) -> dict[str, Any]:
        """Call settings fixed at plan time (guidance, flow shift, ...): recorded in the plan,
        so they are part of its provenance and of the scene cache key."""
        return {}

    def folder_options(self, pipeline_class: str, folder: Path | None) -> dict[str, Any]:
        """Call settings a folder's configs decide (which generation of a model it holds),
        recorded in the plan beside ``defaults``; {} without a folder."""
        return {}

    def call_arguments(self, plan: VideoPlan, scene: ScenePrompt, clip: ClipRequest) -> dict:
        """The keyword arguments of one pipeline call (pure: the same inputs, the same
        arguments); the generator and the progress callback are added by the caller. By
        default: the prompts, the size, frames and steps, ``passed_options``, and the image
        when the clip starts from one."""
        arguments = {**prompt_arguments(plan, scene), **size_arguments(plan, clip)}
        options = plan.call_options
        arguments.update({k: options[k] for k in self.passed_options if options.get(k) is not None})
        if clip.image is not None:
            arguments["image"] = clip.image
        return arguments

    def bind_generator(self, pipe, generator) -> None:
        """Hand the call's seeded generator to parts that draw noise outside the pipeline's
        own use of it (AnimateLCM's scheduler)."""

    def decode_chunk(self, plan: VideoPlan, mode: str, free_bytes: int | None) -> int | None:
        """Frames per VAE decode, for families that decode in chunks (SVD); else None."""
        return None

    def frames_of(self, output) -> Any:
        """The clip of a pipeline output: (T, H, W, 3) floats in [0, 1]."""
        return output.frames[0]

    def audio_of(self, output, pipe) -> tuple[Any, int] | None:
        """The sound of a pipeline output, starting with its first frame: float32 samples
        (N, channels) in [-1, 1] and their rate in Hz; None for a family that makes none."""
        return None


def read_index(folder: Path | None) -> dict:
    """A pipeline folder's ``model_index.json`` ({} without a folder)."""
    if folder is None:
        return {}
    return read_config(Path(folder) / "model_index.json")


def read_config(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def component_config(folder: Path | None, component: str) -> dict:
    """``<folder>/<component>/config.json`` ({} when absent)."""
    if folder is None:
        return {}
    return read_config(Path(folder) / component / "config.json")


def has_component(index: dict, name: str) -> bool:
    value = index.get(name)
    return isinstance(value, list) and bool(value) and value[0] is not None


def prompt_arguments(plan: VideoPlan, scene: ScenePrompt) -> dict:
    """The prompt, and the negative prompt where there is one."""
    arguments = {"prompt": scene.prompt}
    if scene.negative_prompt:
        arguments["negative_prompt"] = scene.negative_prompt
    return arguments


def size_arguments(plan: VideoPlan, clip: ClipRequest) -> dict:
    return {
        "height": plan.height,
        "width": plan.width,
        "num_frames": clip.frames,
        "num_inference_steps": plan.steps,
    }
