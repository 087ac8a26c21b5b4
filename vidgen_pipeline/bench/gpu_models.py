"""The models the GPU section measures: how each is built (full size from its published
configs, ``--tiny`` from the package's tiny builders in ``vidgen_pipeline.testing``), what one
call takes, and the issue's floor and aims for it.

The DiTs get random prompt embeddings of their text encoder's output shape (umT5-XXL's 512 x
4096 for Wan, T5-XXL's 128 x 4096 with an attention mask for LTX-Video) in place of the text
encoder. Their call settings (guidance, decode timestep, ...) are the family's own
(``families.<family>.defaults`` and ``passed_options``), as a real run gets them.

Heavy imports (torch, diffusers, the families) happen inside functions: importing the bench
stays cheap.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMBED_SEED = 99
PROMPT_TOKENS = 48  # of the LTX prompt's 128 padded tokens, how many the mask keeps


@dataclass(frozen=True)
class RunSize:
    """What one benchmark call renders, and a real clip's step count."""

    height: int
    width: int
    frames: int
    clip_steps: int  # steps of a real clip (the estimate scales the timed steps to these)
    text_tokens: int  # length of the prompt embeddings (the encoder's padded length)
    fps: int = 16


@dataclass(frozen=True)
class Aim:
    """One of the issue's aims for a model: the best of ``recipes``' figure ``field`` (those
    measured) at most ``limit``."""

    label: str
    recipes: tuple[str, ...]
    field: str  # a figure of the recipe: clip_s_est, peak_memory_mb
    limit: float


@dataclass(frozen=True)
class BenchModel:
    """One model of the section: sizes, builders, inputs, and what the issue aims at."""

    name: str  # the registry name (``families.registry.VIDEO_MODELS``)
    full: RunSize
    tiny: RunSize
    build_full: Callable[[str], Any]  # device -> pipeline with random weights
    build_tiny: Callable[[Path], Any]  # work folder -> the tiny builder's pipeline
    inputs: Callable[[Any, RunSize, str], dict]  # (pipe, size, device) -> call arguments
    pass_inputs: Callable[[RunSize], dict] | None = None  # one transformer pass, on meta
    stated_floor_s: float | None = None  # the physical floor for one clip
    aims: tuple[Aim, ...] = ()
    budget_share: float = 0.5  # of the section's time budget, when several models run

    def size(self, tiny: bool) -> RunSize:
        return self.tiny if tiny else self.full


# ---------------------------------------------------------------------------------- builders


def _loaded(save: Callable[[Path], Path], folder: Path, text: bool = False):
    """A tiny builder's folder loaded the way users load one (text encoder left out)."""
    from diffusers import DiffusionPipeline

    save(folder)
    skip = {} if text else {"text_encoder": None, "tokenizer": None}
    pipe = DiffusionPipeline.from_pretrained(str(folder), use_safetensors=True, **skip)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tiny_wan(folder: Path):
    from vidgen_pipeline.testing.tiny_wan import save_tiny_wan21_t2v

    return _loaded(save_tiny_wan21_t2v, folder / "wan")


def _tiny_ltx(folder: Path):
    from vidgen_pipeline.testing.tiny_ltx import save_tiny_ltx_video

    return _loaded(save_tiny_ltx_video, folder / "ltx")


def _tiny_svd(folder: Path):
    from vidgen_pipeline.testing.tiny_unet_models import save_tiny_svd

    return _loaded(save_tiny_svd, folder / "svd", text=True)


def _full_dit(name: str) -> Callable[[str], Any]:
    def build(device: str):
        from vidgen_pipeline.bench.dit_configs import build_dit_pipeline

        return build_dit_pipeline(name, device)

    return build


def _full_svd(device: str):
    from vidgen_pipeline.bench.svd_configs import build_svd

    return build_svd("full", device=device)


def build(model: BenchModel, tiny: bool, device: str, folder: Path | None = None):
    """``model``'s pipeline with random weights: tiny ones through a work folder (a
    temporary one unless given), full ones made on ``device``."""
    if not tiny:
        return model.build_full(device)
    if folder is not None:
        return model.build_tiny(folder)
    with tempfile.TemporaryDirectory(prefix="vidgen-bench-") as tmp:
        return model.build_tiny(Path(tmp))


# ------------------------------------------------------------------------------------ inputs


def family_call_options(name: str, size: RunSize) -> dict[str, Any]:
    """The call settings a run of registry model ``name`` passes (guidance and the like)."""
    from vidgen_pipeline.families.registry import VIDEO_MODELS

    entry = VIDEO_MODELS[name]
    family = entry.family_module
    options = {**family.defaults(entry.pipeline, size.width, size.height), **entry.call_options}
    return {k: options[k] for k in family.passed_options if options.get(k) is not None}


def _embeddings(pipe, size: RunSize, device: str, mask: bool) -> dict[str, Any]:
    """Random prompt and negative-prompt embeddings of the text encoder's output shape, in the
    denoiser's dtype; with ``mask``, attention masks keeping the first ``PROMPT_TOKENS``."""
    import torch

    config = pipe.transformer.config
    width = config.get("text_dim") or config.get("caption_channels")
    generator = torch.Generator("cpu").manual_seed(EMBED_SEED)
    dtype = pipe.transformer.dtype
    shape = (1, size.text_tokens, width)
    found = {
        key: torch.randn(shape, generator=generator).to(device, dtype)
        for key in ("prompt_embeds", "negative_prompt_embeds")
    }
    if mask:
        keep = torch.zeros(1, size.text_tokens, device=device)
        keep[:, : min(PROMPT_TOKENS, size.text_tokens)] = 1
        found["prompt_attention_mask"] = keep
        found["negative_prompt_attention_mask"] = keep.clone()
    return found


def _size_arguments(size: RunSize) -> dict[str, int]:
    return {"height": size.height, "width": size.width, "num_frames": size.frames}


def _wan_inputs(pipe, size: RunSize, device: str) -> dict[str, Any]:
    options = family_call_options("wan2.1-t2v-1.3b", size)
    return {**_embeddings(pipe, size, device, mask=False), **_size_arguments(size), **options}


def _ltx_inputs(pipe, size: RunSize, device: str) -> dict[str, Any]:
    options = family_call_options("ltx-video", size)
    arguments = {**_embeddings(pipe, size, device, mask=True), **_size_arguments(size)}
    return {**arguments, **options, "frame_rate": size.fps}


def _svd_inputs(pipe, size: RunSize, device: str) -> dict[str, Any]:
    """A smooth picture (gradients and a disc), decoded as one chunk: what the family picks
    on a whole H200, and what ``fast`` decodes, so the frames compare. (``low_memory``'s
    chunk of 2 changes them: SVD's temporal decoder mixes the frames of a chunk.)"""
    import numpy as np
    from PIL import Image

    ys, xs = np.mgrid[0 : size.height, 0 : size.width].astype(np.float32)
    disc = ((xs - size.width * 0.6) ** 2 + (ys - size.height * 0.45) ** 2) < (
        min(size.width, size.height) * 0.2
    ) ** 2
    red, green = xs / max(1, size.width - 1), ys / max(1, size.height - 1)
    rgb = np.stack([red, green, np.where(disc, 0.9, 0.2)], axis=-1)
    image = Image.fromarray((rgb * 255).round().astype(np.uint8))
    return {
        "image": image,
        **_size_arguments(size),
        "fps": size.fps,
        "decode_chunk_size": size.frames,
    }


# ------------------------------------------------------------------ one pass on the meta device


def _wan_pass(size: RunSize) -> dict[str, Any]:
    """One guidance half of one step: latents 4x fewer frames (+1), 8x smaller sides."""
    import torch

    frames = (size.frames - 1) // 4 + 1
    shape = (1, 16, frames, size.height // 8, size.width // 8)
    return {
        "hidden_states": torch.empty(shape, device="meta", dtype=torch.bfloat16),
        "timestep": torch.empty(1, device="meta", dtype=torch.long),
        "encoder_hidden_states": torch.empty(
            1, size.text_tokens, 4096, device="meta", dtype=torch.bfloat16
        ),
    }


def _ltx_pass(size: RunSize) -> dict[str, Any]:
    """One guidance half: 8x fewer frames (+1) and 32x smaller sides, as packed tokens."""
    import torch

    frames, height, width = (size.frames - 1) // 8 + 1, size.height // 32, size.width // 32
    tokens = frames * height * width
    return {
        "hidden_states": torch.empty(1, tokens, 128, device="meta", dtype=torch.bfloat16),
        "encoder_hidden_states": torch.empty(
            1, size.text_tokens, 4096, device="meta", dtype=torch.bfloat16
        ),
        "timestep": torch.empty(1, device="meta"),
        "encoder_attention_mask": torch.empty(1, size.text_tokens, device="meta"),
        "num_frames": frames,
        "height": height,
        "width": width,
        "rope_interpolation_scale": (8 / size.fps, 32, 32),
    }


def full_pass_flops(model: BenchModel) -> float | None:
    """FLOPs of one full-size transformer pass (batch 1), counted on the meta device: no
    memory, no GPU; the physical floor follows from it."""
    if model.pass_inputs is None:
        return None
    import torch

    from vidgen_pipeline.bench.gpu_probe import count_flops

    transformer = model.build_full("meta").transformer.to(torch.bfloat16)
    return count_flops(transformer, (), model.pass_inputs(model.full))


MODELS: dict[str, BenchModel] = {
    m.name: m
    for m in (
        BenchModel(
            "wan2.1-t2v-1.3b",
            full=RunSize(480, 832, 81, clip_steps=50, text_tokens=512),
            tiny=RunSize(32, 32, 9, clip_steps=50, text_tokens=16),
            build_full=_full_dit("wan2.1-t2v-1.3b"),
            build_tiny=_tiny_wan,
            inputs=_wan_inputs,
            pass_inputs=_wan_pass,
            stated_floor_s=28.0,
            aims=(
                Aim("fast within 1.6x of the floor (45 s a clip)", ("fast",), "clip_s_est", 45),
                Aim("cache under 20 s a clip", ("cache",), "clip_s_est", 20),
                Aim("low_memory under 10 GB peak", ("low_memory",), "peak_memory_mb", 10 * 1024),
            ),
            budget_share=0.6,
        ),
        BenchModel(
            "ltx-video",
            full=RunSize(512, 768, 121, clip_steps=40, text_tokens=128, fps=25),
            tiny=RunSize(64, 64, 9, clip_steps=40, text_tokens=16, fps=25),
            build_full=_full_dit("ltx-video"),
            build_tiny=_tiny_ltx,
            inputs=_ltx_inputs,
            pass_inputs=_ltx_pass,
            stated_floor_s=3.0,
            aims=(
                Aim("under 5 s a clip (fast, else default)", ("fast", "default"), "clip_s_est", 5),
            ),
            budget_share=0.4,
        ),
        BenchModel(
            "svd-xt",
            full=RunSize(576, 1024, 25, clip_steps=25, text_tokens=0, fps=6),
            tiny=RunSize(64, 64, 4, clip_steps=25, text_tokens=0, fps=6),
            build_full=_full_svd,
            build_tiny=_tiny_svd,
            inputs=_svd_inputs,
            budget_share=0.3,
        ),
    )
}
DEFAULT_MODELS = ("wan2.1-t2v-1.3b", "ltx-video")
