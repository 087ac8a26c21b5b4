"""The parts a speed recipe is made of, each on whatever component a pipeline has: compile,
attention backends, fused projections, channels-last, step caches, VAE tiling, SVD's decode
chunk. ``placement.place`` applies them in order and records what it did, so
``placement.reset`` undoes exactly that.

torch and diffusers are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
from pathlib import Path

from vidgen_pipeline.core.recipes import CUDA_GRAPH_MODES, SDPA_BACKENDS, Recipe

DENOISERS = ("unet", "transformer", "transformer_2")
# Exact attention kernels of diffusers' dispatcher, fastest first, with the package each
# needs (SageAttention quantises: not exact, never chosen here).
EXACT_BACKENDS = (("_flash_3", "flash_attn_interface"), ("flash", "flash_attn"))


def denoisers(pipe) -> list[tuple[str, object]]:
    return [(n, getattr(pipe, n)) for n in DENOISERS if getattr(pipe, n, None) is not None]


def xformers_installed() -> bool:
    return importlib.util.find_spec("xformers") is not None


def best_attention_backend() -> str | None:
    """The fastest exact attention backend installed, or None (PyTorch SDPA, which already
    picks its flash kernel on recent GPUs)."""
    for name, package in EXACT_BACKENDS:
        if importlib.util.find_spec(package) is not None:
            return name
    return None


def set_attention_backend(pipe, backend: str | None) -> int:
    """Route the DiT denoisers' attention through diffusers' dispatcher ``backend``
    (``native`` again when None); returns how many denoisers took it."""
    count = 0
    for _, model in denoisers(pipe):
        if hasattr(model, "set_attention_backend") and hasattr(model, "attn_processors"):
            try:
                model.set_attention_backend(backend or "native")
            except (ValueError, NotImplementedError, RuntimeError):
                continue  # a model whose attention the dispatcher does not route (SVD's UNet)
            count += 1
    return count


def set_sdpa_backends(backends: tuple[str, ...]) -> None:
    """Allow only ``backends`` (math stays as the fallback); () allows all again."""
    import torch

    if not torch.cuda.is_available():
        return
    unknown = set(backends) - set(SDPA_BACKENDS)
    if unknown:
        raise ValueError(f"unknown SDPA backends {sorted(unknown)}; use {SDPA_BACKENDS}")
    allow_all = not backends
    torch.backends.cuda.enable_flash_sdp(allow_all or "flash" in backends)
    torch.backends.cuda.enable_mem_efficient_sdp(allow_all or "efficient" in backends)
    torch.backends.cuda.enable_cudnn_sdp(allow_all or "cudnn" in backends)
    torch.backends.cuda.enable_math_sdp(True)


def channels_last(model, memory_format=None) -> int:
    """Channels-last weights for the 2-D convolutions of ``model`` (3-D ones stay as they are:
    the format is for 4-D tensors). Returns how many were changed."""
    import torch

    memory_format = memory_format or torch.channels_last
    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.to(memory_format=memory_format)
            count += 1
    return count


def fuse_qkv_projections(model) -> int:
    """Fuse the Q, K and V projections of every attention layer of ``model`` that takes it.

    Models on diffusers' newer attention classes have ``fuse_qkv_projections``; SVD's UNet
    and VAE use the older ``Attention`` class, whose ``fuse_projections`` makes the fused
    weights and ``FusedAttnProcessor2_0`` uses them. Returns the number fused.
    """
    from diffusers.models.attention_processor import (
        Attention,
        AttnProcessor2_0,
        FusedAttnProcessor2_0,
    )

    count = 0
    for module in model.modules():
        if not isinstance(module, Attention):
            continue
        if type(module.processor) is not AttnProcessor2_0:
            continue  # IP-adapter, added-KV, xFormers...: left as they are
        module.fuse_projections(fuse=True)
        module.set_processor(FusedAttnProcessor2_0())
        count += 1
    if count == 0 and hasattr(model, "fuse_qkv_projections"):
        try:
            model.fuse_qkv_projections()
        except (ValueError, NotImplementedError, AttributeError, TypeError):
            return 0
        count = sum(bool(getattr(m, "fused_projections", False)) for m in model.modules())
    return count


def unfuse_qkv_projections(model) -> None:
    from diffusers.models.attention_processor import (
        Attention,
        AttnProcessor2_0,
        FusedAttnProcessor2_0,
    )

    for module in model.modules():
        if isinstance(module, Attention) and isinstance(module.processor, FusedAttnProcessor2_0):
            module.set_processor(AttnProcessor2_0())
            module.fused_projections = False
            for name in ("to_qkv", "to_kv"):
                if hasattr(module, name):
                    delattr(module, name)
    if hasattr(model, "unfuse_qkv_projections"):
        try:
            model.unfuse_qkv_projections()
        except (ValueError, NotImplementedError, AttributeError, TypeError):
            pass  # nothing fused through the model's own method


def enable_step_cache(pipe, config) -> int:
    """The family's step cache on every DiT denoiser; returns how many took it (a model of
    one block has nothing to skip: First Block Cache needs a first block and a rest)."""
    count = 0
    for _, model in denoisers(pipe):
        if config is not None and hasattr(model, "enable_cache"):
            try:
                model.enable_cache(config)
            except (IndexError, ValueError):
                continue
            count += 1
    return count


def disable_step_cache(pipe) -> None:
    for _, model in denoisers(pipe):
        if getattr(model, "is_cache_enabled", False):
            model.disable_cache()


def vae_tiling(pipe, on: bool = True) -> list[str]:
    """VAE tiling and slicing where the VAE has them."""
    vae = getattr(pipe, "vae", None)
    done = []
    for feature in ("tiling", "slicing"):
        method = getattr(vae, f"{'enable' if on else 'disable'}_{feature}", None)
        if method is not None:
            try:
                method()
            except (NotImplementedError, ValueError):
                continue
            done.append(feature)
    return done


def override_decode_chunk(pipe, chunk: int) -> bool:
    """Make ``pipe.decode_latents`` decode ``chunk`` frames at a time, whatever it is asked
    (SVD's whole-clip decode on a whole GPU)."""
    method = getattr(type(pipe), "decode_latents", None)
    if method is None or "decode_chunk_size" not in inspect.signature(method).parameters:
        return False
    bound = method.__get__(pipe)

    @functools.wraps(bound)
    def decode_latents(*args, **kwargs):
        params = inspect.signature(bound).bind(*args, **kwargs)
        params.arguments["decode_chunk_size"] = chunk
        return bound(*params.args, **params.kwargs)

    pipe.decode_latents = decode_latents  # an instance attribute: ``reset`` drops it
    return True


def compile_pipeline(pipe, recipe: Recipe, cuda: bool) -> list[str]:
    """``torch.compile`` the denoisers in place (regional: their repeated blocks where the
    model declares them; else whole) and, with ``compile_vae_decoder``, the VAE decoder."""
    import torch

    if not cuda and not recipe.compile_on_cpu:
        return ["torch.compile skipped on the CPU (the recipe targets CUDA)"]
    mode = recipe.compile_mode
    notes: list[str] = []
    if not cuda and (mode in CUDA_GRAPH_MODES or "autotune" in mode):
        notes.append(f"compile mode {mode} is for CUDA: mode default on the CPU")
        mode = "default"
    if cuda:
        from torch.utils._triton import has_triton

        if not has_triton():
            return ["torch.compile skipped: Triton is not installed"]
        # A model that does not compile runs eagerly rather than failing the scene.
        torch._dynamo.config.suppress_errors = True
    cache = use_inductor_cache()
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    if cuda:
        inductor_config.conv_1x1_as_mm = True  # 1x1 convolutions as GEMMs (UNet shortcuts)
    # Last clips of a scene are shorter: one recompile with dynamic shapes, then no more.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 16)
    options = {"mode": mode} if recipe.compile_backend == "inductor" else {}
    options["backend"] = recipe.compile_backend
    done = [
        _compile_denoiser(label, model, recipe.compile, options) for label, model in denoisers(pipe)
    ]
    decoder = getattr(getattr(pipe, "vae", None), "decoder", None)
    if recipe.compile_vae_decoder and decoder is not None:
        decoder.compile(**options)
        done.append("VAE decoder")
    how = f"mode={mode}" if recipe.compile_backend == "inductor" else recipe.compile_backend
    notes.append(
        f"torch.compile {' + '.join(done)} {how} (cache {cache}; warm-up on the first call)"
    )
    return notes


def _compile_denoiser(label: str, model, how: str, options: dict) -> str:
    blocks = getattr(model, "_repeated_blocks", None)
    if how == "regional" and blocks and hasattr(model, "compile_repeated_blocks"):
        model.compile_repeated_blocks(fullgraph=False, **options)
        return f"{label} ({', '.join(blocks)} blocks)"
    model.compile(**options)
    return label


def compiled_modules(pipe) -> list:
    import torch

    found = []
    for component in getattr(pipe, "components", {}).values():
        if isinstance(component, torch.nn.Module):
            found += [m for m in component.modules() if getattr(m, "_compiled_call_impl", None)]
    return found


def inductor_cache_dir() -> Path:
    """Where Inductor keeps compiled kernels across processes: warm-up is paid once."""
    try:
        from vidgen_pipeline.core.storage import vidgen_home
    except ImportError:  # a bare GPU box running only the bench
        return (
            Path(os.environ.get("VIDGEN_HOME") or ".vidgen").resolve() / "cache" / "torchinductor"
        )
    return vidgen_home() / "cache" / "torchinductor"


def use_inductor_cache() -> str:
    """Point Inductor's on-disk cache at ``VIDGEN_HOME/cache/torchinductor`` unless the user
    chose a folder (``TORCHINDUCTOR_CACHE_DIR``): compiled kernels then outlive the process
    and a run's warm-up is paid once per machine, not once per step process."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        default = os.path.abspath(default_cache_dir())
    except ImportError:  # older torch
        default = None
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or os.path.abspath(current) == default:
        cache = inductor_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]
