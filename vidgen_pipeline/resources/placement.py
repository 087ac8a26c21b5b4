"""Placing a loaded pipeline: one function, ``place``, puts it in a memory mode and a speed
recipe, and records what it did on the pipeline so the next placement undoes exactly that.

Memory modes (the out-of-memory ladder steps down them): ``gpu`` (all on the device),
``model_offload`` (one model at a time), ``group_offload`` (groups of layers, streamed),
``sequential_offload`` (one layer at a time), ``cpu``. The recipe (``core/recipes.py``)
adds the speed settings; the resource's own ``attention`` and ``forward_chunking`` settings
apply in any mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from vidgen_pipeline.core import recipes
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.recipes import Recipe
from vidgen_pipeline.resources import speedups

RECIPE_ENV = "VIDGEN_RECIPE"
MEMORY_MODES = ("auto", "gpu", "model_offload", "group_offload", "sequential_offload")
# The memory mode each pipeline was last placed in (kept across scenes, lowered by an OOM).
_PLACEMENT: dict[int, str] = {}


@dataclass(frozen=True)
class Applied:
    """What ``place`` did to a pipeline beyond its memory mode: kept on it, to be undone."""

    name: str
    notes: tuple[str, ...]
    done: frozenset[str]


def placement(pipe) -> str | None:
    """The memory mode ``pipe`` was last placed in, if any."""
    return _PLACEMENT.get(id(pipe))


def forget(pipe) -> None:
    _PLACEMENT.pop(id(pipe), None)


def forget_all() -> None:
    _PLACEMENT.clear()


def applied_recipe(pipe) -> Applied | None:
    """What the recipe last applied to ``pipe`` did, if any."""
    return getattr(pipe, "_vidgen_recipe", None)


def place(
    pipe,
    mode: str,
    device: str,
    recipe: Recipe | None = None,
    *,
    attention: str = "sdpa",
    forward_chunking: bool = False,
    step_cache=None,
    dtype: str | None = None,
) -> list[str]:
    """Put ``pipe`` in memory ``mode`` on ``device`` with ``recipe`` (None: none); return the
    recipe's notes. ``step_cache``: the family's cache config for recipes that use one;
    ``dtype``: cast first (the bench loads once and places in each recipe's dtype)."""
    _PLACEMENT[id(pipe)] = mode
    # 1. undo the last placement: hooks, and what its recipe changed in place
    reset(pipe)
    if hasattr(pipe, "remove_all_hooks"):
        pipe.remove_all_hooks()
    cuda = device == "cuda"
    notes: list[str] = []
    done: set[str] = set()
    # 2. precision and memory
    _memory(pipe, mode, device, _dtype(dtype, cuda, notes), notes)
    # 3. attention
    _attention(pipe, recipe, attention, cuda, notes, done)
    # 4. memory helpers, 5. layout and fusion, 6. step cache, 7. compilation (last: it traces
    # what the steps above set up)
    if forward_chunking or (recipe and recipe.forward_chunking):
        _forward_chunking(pipe, notes, done)
    if recipe is not None:
        _recipe_parts(pipe, recipe, cuda, step_cache, notes, done)
    pipe._vidgen_recipe = Applied(recipe.name, tuple(notes), frozenset(done)) if recipe else None
    return notes


def _dtype(dtype: str | None, cuda: bool, notes: list[str]):
    import torch

    if dtype is None:
        return None
    if dtype not in recipes.DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}")
    if not cuda and dtype in ("fp16", "bf16"):
        notes.append(f"{dtype} skipped on the CPU: fp32")
        dtype = "fp32"
    if cuda and dtype == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        notes.append("bf16 is emulated on this GPU: fp16 instead")
        dtype = "fp16"
    notes.append(dtype)
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype]


def _memory(pipe, mode: str, device: str, torch_dtype, notes: list[str]) -> None:
    if torch_dtype is not None and torch_dtype != getattr(pipe, "dtype", None):
        pipe.to(dtype=torch_dtype)
    if device == "cpu" or mode == "cpu":
        if mode not in ("cpu", "gpu"):
            notes.append(f"{mode} skipped: CUDA only")
        pipe.to("cpu")
    elif mode == "gpu":
        pipe.to(device)
    elif mode == "model_offload":
        pipe.to("cpu")
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "group_offload":
        import torch

        pipe.to("cpu")
        pipe.enable_group_offload(
            onload_device=torch.device(device),
            offload_type="block_level",
            num_blocks_per_group=1,
            use_stream=True,
        )
    elif mode == "sequential_offload":
        pipe.to("cpu")
        pipe.enable_sequential_cpu_offload(device=device)
        if hasattr(pipe, "enable_attention_slicing"):
            pipe.enable_attention_slicing()  # lowest rung only: slower, and a no-op on SVD
    else:
        raise ModelChoiceError(f"unknown memory mode {mode!r}")
    if mode != "gpu" and device != "cpu":
        notes.append(mode.replace("_", " "))


def _attention(pipe, recipe: Recipe | None, setting: str, cuda: bool, notes, done) -> None:
    wants_xformers = setting == "xformers" or (recipe is not None and recipe.xformers)
    if wants_xformers:
        if not cuda:
            if setting == "xformers":
                raise ModelChoiceError("attention 'xformers' is CUDA-only; use sdpa on the CPU")
            notes.append("xFormers skipped: CUDA only; PyTorch SDPA")
        elif speedups.xformers_installed():
            pipe.enable_xformers_memory_efficient_attention()
            notes.append("xFormers attention")
            done.add("xformers")
        elif setting == "xformers":
            raise ModelChoiceError(
                "attention 'xformers' asked for, but xformers is not installed (pip install '.[xformers]')"
            )
        else:
            notes.append("xFormers not installed: PyTorch SDPA")
    if recipe is None:
        return
    if recipe.attention == "best":
        backend = speedups.best_attention_backend() if cuda else None
        if backend and speedups.set_attention_backend(pipe, backend):
            notes.append(f"attention backend {backend}")
            done.add("attention_backend")
        else:
            notes.append("attention: PyTorch SDPA (no faster exact kernel here)")
    if recipe.sdpa_backends:
        if cuda:
            speedups.set_sdpa_backends(recipe.sdpa_backends)
            notes.append(f"SDPA backends: {', '.join(recipe.sdpa_backends)} (+ math)")
            done.add("sdpa")
        else:
            notes.append("SDPA backend choice skipped on the CPU")
    if recipe.attention_slicing:
        import torch

        sliceable = [
            m
            for m in pipe.components.values()
            if isinstance(m, torch.nn.Module) and hasattr(m, "set_attention_slice")
        ]
        if sliceable and hasattr(pipe, "enable_attention_slicing"):
            pipe.enable_attention_slicing()
            notes.append("attention slicing")
            done.add("slicing")
        else:
            notes.append("attention slicing: no component supports it (no-op)")


def _forward_chunking(pipe, notes, done) -> None:
    unet = getattr(pipe, "unet", None)
    if unet is not None and hasattr(unet, "enable_forward_chunking"):
        unet.enable_forward_chunking(chunk_size=1, dim=1)
        notes.append("UNet forward chunking")
        done.add("forward_chunking")
    else:
        notes.append("forward chunking: the denoiser does not support it")


def _recipe_parts(pipe, recipe: Recipe, cuda: bool, step_cache, notes, done) -> None:
    unet, vae = getattr(pipe, "unet", None), getattr(pipe, "vae", None)
    if recipe.vae_tiling or recipe.vae_slicing:
        made = speedups.vae_tiling(pipe)
        notes.append(f"VAE {' and '.join(made)}" if made else "VAE tiling: not supported")
        if made:
            done.add("vae_tiling")
    if recipe.channels_last:
        convs = sum(speedups.channels_last(m) for m in (unet, vae) if m is not None)
        notes.append(f"channels-last ({convs} 2-D convolutions)")
        done.add("channels_last")
    if recipe.fuse_qkv and getattr(pipe, "_vidgen_loras", ()):
        notes.append("fused QKV skipped: LoRAs are on the projections")
    elif recipe.fuse_qkv:
        models = [m for _, m in speedups.denoisers(pipe)] + ([vae] if vae is not None else [])
        fused = sum(speedups.fuse_qkv_projections(m) for m in models)
        notes.append(f"fused QKV in {fused} attention layers" if fused else "no QKV to fuse")
        done.add("fuse_qkv")
    if recipe.decode_chunk_size:
        if speedups.override_decode_chunk(pipe, recipe.decode_chunk_size):
            notes.append(f"decode chunk {recipe.decode_chunk_size}")
            done.add("decode_chunk")
    if recipe.step_cache:
        if step_cache is not None and speedups.enable_step_cache(pipe, step_cache):
            threshold = getattr(step_cache, "threshold", None)
            notes.append(
                f"{type(step_cache).__name__.removesuffix('Config')} threshold {threshold:g}"
            )
            done.add("step_cache")
        else:
            notes.append("step cache: this family has none (the recipe runs as fast)")
    if recipe.compiles:
        compiled = speedups.compile_pipeline(pipe, recipe, cuda)
        notes += compiled
        if compiled and compiled[-1].startswith("torch.compile "):
            done.add("compile")


def reset(pipe) -> None:
    """Undo what ``place`` changed in place (not dtype, device or offload), and only that:
    settings made by others stay."""
    import torch

    applied = applied_recipe(pipe)
    if applied is None:
        return
    done = applied.done
    models = [m for m in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)) if m is not None]
    if "compile" in done:
        for module in speedups.compiled_modules(pipe):
            module._compiled_call_impl = None  # eager again; the Inductor cache stays
    if "step_cache" in done:
        speedups.disable_step_cache(pipe)
    if "fuse_qkv" in done:
        for model in [m for _, m in speedups.denoisers(pipe)] + models[1:]:
            speedups.unfuse_qkv_projections(model)
    if "channels_last" in done:
        for model in models:
            speedups.channels_last(model, torch.contiguous_format)
    if "forward_chunking" in done:
        for module in pipe.unet.modules():
            if hasattr(module, "set_chunk_feed_forward"):
                # by keyword: SVD's temporal blocks take ``dim`` in **kwargs only
                module.set_chunk_feed_forward(None, dim=0)
    if "vae_tiling" in done:
        speedups.vae_tiling(pipe, on=False)
    if "decode_chunk" in done and "decode_latents" in vars(pipe):
        del pipe.decode_latents
    if "attention_backend" in done:
        speedups.set_attention_backend(pipe, None)
    if "xformers" in done:
        pipe.disable_xformers_memory_efficient_attention()
    if "slicing" in done:
        pipe.disable_attention_slicing()
    if "sdpa" in done:
        speedups.set_sdpa_backends(())
    pipe._vidgen_recipe = None


def check_recipe(setting: str) -> None:
    """Refuse an unknown ``recipe`` setting (``auto``, ``none`` or a recipe's name)."""
    if setting not in ("auto", "none"):
        try:
            recipes.get_recipe(setting)
        except ValueError as exc:
            raise ModelChoiceError(f"recipe: {exc}; or auto, none") from None


def recipe_for(mode: str, device: str, setting: str = "auto") -> Recipe | None:
    """The speed recipe for a pipeline placed in memory mode ``mode``: on CUDA ``fast`` when
    all of it is on the GPU, ``low_memory`` when offloaded; none on the CPU. ``setting`` (the
    resource's ``recipe``) names another recipe, or ``none``; ``VIDGEN_RECIPE``, when set,
    overrides it. The placement owns dtype and offload, the caller the decode chunk, so the
    recipe returned leaves those alone."""
    if device != "cuda" or mode == "cpu":
        return None
    from_env = os.environ.get(RECIPE_ENV, "").strip()
    chosen = from_env or setting or "auto"
    if chosen == "none":
        return None
    if chosen == "auto":
        recipe = recipes.FAST if mode == "gpu" else recipes.LOW_MEMORY
    else:
        try:
            recipe = recipes.get_recipe(chosen)
        except ValueError as exc:
            raise ModelChoiceError(f"{RECIPE_ENV if from_env else 'recipe'}: {exc}") from None
    return replace(recipe, dtype=None, offload=None, decode_chunk_size=None)


def mode_of(recipe: Recipe) -> str:
    """The memory mode a recipe's own ``offload`` (bench variants) means."""
    return f"{recipe.offload}_offload" if recipe.offload else "gpu"


def place_for_run(pipe, mode: str, device: str, setting: str = "auto", **options) -> list[str]:
    """``place`` with the recipe a run gets (``recipe_for``); a pipeline already placed so
    keeps its compiled state (a compiled denoiser stays compiled across a run's clips)."""
    recipe = recipe_for(mode, device, setting)
    current = applied_recipe(pipe)
    if placement(pipe) == mode and current is not None and recipe is not None:
        if current.name == recipe.name:
            return list(current.notes)
    return place(pipe, mode, device, recipe, **options)
