"""Speed recipes: named, frozen sets of settings applied to a loaded diffusers pipeline.

A recipe is data (``Recipe``); ``apply_recipe(pipe, recipe, device)`` puts it into effect and
returns notes saying what was applied and what was skipped and why. Written for
``StableVideoDiffusionPipeline`` first and generic where that is cheap: every step looks for
the component or method it needs and notes its absence instead of failing.

- ``brief``: what the original brief asked for: fp16, attention slicing, xFormers if
  installed. Attention slicing is a no-op on SVD (its UNet has no sliceable attention).
- ``default``: diffusers' own default: fp16 and PyTorch SDPA, nothing else.
- ``fast``: fp16, SDPA (PyTorch's kernel choice unless ``sdpa_backends`` says otherwise),
  channels-last UNet and VAE, fused QKV projections, ``torch.compile`` of the UNet and the
  VAE decoder with a persistent Inductor cache, and a larger decode chunk.
- ``low_memory``: model CPU offload, UNet feed-forward chunking, decode chunk 2.
- ``plain``: nothing at all (fp32 on the CPU): what the CPU has always run.

On the CPU the CUDA-only parts degrade with a note: fp32 instead of fp16/bf16, no offload, no
xFormers, no SDPA backend choice, no CUDA graphs, and ``torch.compile`` only when the recipe
says ``compile_on_cpu`` (Inductor's C++ warm-up costs more than a tiny model gains).

torch and diffusers are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import functools
import inspect
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DTYPES = ("fp16", "bf16", "fp32")
SDPA_BACKENDS = ("flash", "efficient", "cudnn", "math")
OFFLOAD = ("model", "sequential")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")

# Output of ``fast`` against ``default`` on the same seed, frames in [0, 1].
# On the CPU both run in fp32, so only summation order differs (channels-last, fused QKV).
FAST_MAX_ABS_DIFF_CPU = 1e-4
# On CUDA both run in fp16 (compiled kernels vs eager ones): the aim, measured by the bench.
FAST_MIN_PSNR_DB_CUDA = 40.0
# ``default_recipe_for``: fast when the GPU holds the model with this much room to spare.
FAST_HEADROOM = 1.25


@dataclass(frozen=True)
class Recipe:
    """How to run a pipeline: precision, attention, layout, compilation, memory."""

    name: str
    summary: str
    dtype: str | None = "fp16"  # fp16, bf16, fp32 on CUDA (fp32 on the CPU); None: keep
    attention_slicing: bool = False
    xformers: bool = False  # when installed (CUDA only); else PyTorch SDPA
    sdpa_backends: tuple[str, ...] = ()  # (): PyTorch's own choice; else only these (+ math)
    channels_last: bool = False
    fuse_qkv: bool = False
    compile: bool = False
    compile_mode: str = "default"  # torch.compile mode; CUDA-graph modes are CUDA-only
    compile_backend: str = "inductor"  # "eager": Dynamo tracing only (tests on the CPU)
    compile_vae_decoder: bool = True  # with ``compile``: the VAE decoder too
    compile_on_cpu: bool = False
    decode_chunk_size: int | None = None  # frames per VAE decode; None: the caller's value
    offload: str | None = None  # "model" or "sequential" CPU offload (CUDA only)
    forward_chunking: bool = False  # UNet feed-forward chunking (less activation memory)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def cuda_graphs(self) -> bool:
        return self.compile and self.compile_mode in CUDA_GRAPH_MODES


PLAIN = Recipe("plain", "nothing applied: the pipeline as loaded (fp32 on the CPU)", dtype=None)
BRIEF = Recipe(
    "brief",
    "the brief's: fp16, attention slicing, xFormers if installed",
    attention_slicing=True,
    xformers=True,
)
DEFAULT = Recipe("default", "diffusers' default: fp16, PyTorch SDPA")
FAST = Recipe(
    "fast",
    "ours: fp16, SDPA, channels-last, fused QKV, torch.compile (UNet + VAE decoder), "
    "decode chunk 25",
    channels_last=True,
    fuse_qkv=True,
    compile=True,
    # mode=default: Inductor's fusions with cuBLAS/cuDNN kernels; warm-up about a minute.
    # max-autotune (the ``fast_autotune`` variant) also times Triton GEMM/conv templates:
    # many minutes of warm-up on a 1.5B-parameter UNet for little gain on conv-heavy nets.
    compile_mode="default",
    decode_chunk_size=25,
)
LOW_MEMORY = Recipe(
    "low_memory",
    "ours: fp16, model CPU offload, UNet forward chunking, decode chunk 2",
    offload="model",
    forward_chunking=True,
    decode_chunk_size=2,
)
RECIPES: dict[str, Recipe] = {r.name: r for r in (BRIEF, DEFAULT, FAST, LOW_MEMORY, PLAIN)}
# Variants the bench can be asked for by name (``--recipes``), not defaults anywhere.
VARIANTS: dict[str, Recipe] = {
    r.name: r
    for r in (
        replace(FAST, name="fast_bf16", summary="fast in bf16", dtype="bf16"),
        replace(
            FAST,
            name="fast_cudnn",
            summary="fast with cuDNN attention only (flash and efficient off)",
            sdpa_backends=("cudnn",),
        ),
        replace(
            FAST,
            name="fast_autotune",
            summary="fast with torch.compile mode=max-autotune-no-cudagraphs (long warm-up)",
            compile_mode="max-autotune-no-cudagraphs",
        ),
        replace(
            FAST,
            name="fast_cuda_graphs",
            summary="fast with torch.compile mode=max-autotune (CUDA graphs)",
            compile_mode="max-autotune",
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    try:
        return {**RECIPES, **VARIANTS}[name]
    except KeyError:
        known = ", ".join([*RECIPES, *VARIANTS])
        raise ValueError(f"unknown recipe {name!r}; known: {known}") from None


def default_recipe_for(device: str, vram_gb: float | None = None, need_gb: float = 16.0) -> Recipe:
    """``fast`` on a GPU that holds the model with room to spare, ``low_memory`` on a smaller
    one, ``plain`` on the CPU (fp32, as it has always run there)."""
    if device != "cuda":
        return PLAIN
    if vram_gb is None or vram_gb >= need_gb * FAST_HEADROOM:
        return FAST
    return LOW_MEMORY


# ---------------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class Applied:
    """What ``apply_recipe`` did to a pipeline: kept on it, so it can be undone."""

    name: str
    notes: tuple[str, ...]
    done: frozenset[str]


def apply_recipe(pipe, recipe: Recipe, device: str, move: bool = True) -> list[str]:
    """Put ``recipe`` into effect on ``pipe`` for ``device``; return notes on what happened.

    A recipe applied before is undone first. ``move=False``: the caller has already placed
    the pipeline (device, dtype, offload), so those parts of the recipe are left alone.
    """
    import torch

    cuda = device == "cuda"
    notes: list[str] = []
    done: set[str] = set()
    if applied_recipe(pipe) is not None:
        reset_recipe(pipe)

    # 1. Precision and placement.
    dtype = recipe.dtype
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"recipe {recipe.name}: unknown dtype {dtype!r}")
    if not cuda and dtype in ("fp16", "bf16"):
        notes.append(f"{dtype} skipped on the CPU: fp32")
        dtype = "fp32"
    if cuda and dtype == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        notes.append("bf16 is emulated on this GPU: fp16 instead")
        dtype = "fp16"
    torch_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}.get(
        dtype or ""
    )
    offload = recipe.offload
    if offload is not None and offload not in OFFLOAD:
        raise ValueError(f"recipe {recipe.name}: unknown offload {offload!r}")
    if offload and not cuda:
        notes.append(f"{offload} CPU offload skipped: CUDA only")
        offload = None
    if move:
        if hasattr(pipe, "remove_all_hooks"):
            pipe.remove_all_hooks()
        if torch_dtype is not None and torch_dtype == getattr(pipe, "dtype", None):
            torch_dtype = None  # already so (and diffusers warns about every cast)
        if offload:
            pipe.to("cpu", torch_dtype) if torch_dtype else pipe.to("cpu")
            if offload == "model":
                pipe.enable_model_cpu_offload(device=device)
            else:
                pipe.enable_sequential_cpu_offload(device=device)
            notes.append(f"{offload} CPU offload")
        else:
            pipe.to(device, torch_dtype) if torch_dtype else pipe.to(device)
        if dtype:
            notes.append(dtype)

    unet = getattr(pipe, "unet", None)
    vae = getattr(pipe, "vae", None)

    # 2. Attention.
    if recipe.xformers:
        if not cuda:
            notes.append("xFormers skipped: CUDA only; PyTorch SDPA")
        elif _xformers_installed():
            pipe.enable_xformers_memory_efficient_attention()
            notes.append("xFormers attention")
            done.add("xformers")
        else:
            notes.append("xFormers not installed: PyTorch SDPA")
    if recipe.attention_slicing:
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
    if recipe.sdpa_backends:
        if cuda:
            _set_sdpa_backends(recipe.sdpa_backends)
            notes.append(f"SDPA backends: {', '.join(recipe.sdpa_backends)} (+ math)")
            done.add("sdpa")
        else:
            notes.append("SDPA backend choice skipped on the CPU")

    # 3. Layout and fusion.
    if recipe.channels_last:
        convs = sum(_channels_last(m) for m in (unet, vae) if m is not None)
        notes.append(f"channels-last ({convs} 2-D convolutions)")
        done.add("channels_last")
    if recipe.fuse_qkv:
        fused = sum(fuse_qkv_projections(m) for m in (unet, vae) if m is not None)
        notes.append(f"fused QKV in {fused} attention layers" if fused else "no QKV to fuse")
        done.add("fuse_qkv")

    # 4. Memory.
    if recipe.forward_chunking:
        if unet is not None and hasattr(unet, "enable_forward_chunking"):
            unet.enable_forward_chunking(chunk_size=1, dim=1)
            notes.append("UNet forward chunking")
            done.add("forward_chunking")
        else:
            notes.append("forward chunking: the UNet does not support it")
    if recipe.decode_chunk_size:
        if _override_decode_chunk(pipe, recipe.decode_chunk_size):
            notes.append(f"decode chunk {recipe.decode_chunk_size}")
            done.add("decode_chunk")
        else:
            notes.append("decode chunk: the pipeline has no chunked decode")

    # 5. Compilation (last: it traces what the steps above set up).
    if recipe.compile:
        compiled = _compile(pipe, recipe, cuda)
        notes += compiled
        if compiled and compiled[-1].startswith("torch.compile "):
            done.add("compile")

    pipe._vidgen_recipe = Applied(recipe.name, tuple(notes), frozenset(done))
    return notes


def applied_recipe(pipe) -> Applied | None:
    """What the recipe last applied to ``pipe`` did, if any."""
    return getattr(pipe, "_vidgen_recipe", None)


def reset_recipe(pipe) -> None:
    """Undo what ``apply_recipe`` changed in place (not dtype, device or offload), and only
    that: settings made by others (xFormers or forward chunking asked for by the user) stay."""
    import torch

    applied = applied_recipe(pipe)
    if applied is None:
        return
    done = applied.done
    models = [m for m in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)) if m is not None]
    if "compile" in done:
        for module in _modules(pipe):
            if getattr(module, "_compiled_call_impl", None) is not None:
                module._compiled_call_impl = None  # eager again; the Inductor cache stays
    if "fuse_qkv" in done:
        for model in models:
            unfuse_qkv_projections(model)
    if "channels_last" in done:
        for model in models:
            _channels_last(model, torch.contiguous_format)
    if "forward_chunking" in done:
        for module in pipe.unet.modules():
            if hasattr(module, "set_chunk_feed_forward"):
                module.set_chunk_feed_forward(None, 0)
    if "decode_chunk" in done and "decode_latents" in vars(pipe):
        del pipe.decode_latents
    if "xformers" in done:
        pipe.disable_xformers_memory_efficient_attention()
    if "slicing" in done:
        pipe.disable_attention_slicing()
    if "sdpa" in done:
        _set_sdpa_backends(())
    pipe._vidgen_recipe = None


def restore_global_defaults() -> None:
    """Process-wide settings a recipe may change (the SDPA backends allowed) back to
    PyTorch's defaults."""
    _set_sdpa_backends(())


# ------------------------------------------------------------------------------- helpers


def _xformers_installed() -> bool:
    try:
        import xformers  # noqa: F401
    except ImportError:
        return False
    return True


def _modules(pipe) -> list:
    import torch

    found = []
    for component in getattr(pipe, "components", {}).values():
        if isinstance(component, torch.nn.Module):
            found += list(component.modules())
    return found


def _set_sdpa_backends(backends: tuple[str, ...]) -> None:
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


def _channels_last(model, memory_format=None) -> int:
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

    Models built on diffusers' newer attention classes have ``fuse_qkv_projections``; SVD's
    UNet and VAE use the older ``Attention`` class, whose ``fuse_projections`` makes the
    fused weights and ``FusedAttnProcessor2_0`` uses them. Returns the number fused.
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
            count = sum(bool(getattr(m, "fused_projections", False)) for m in model.modules())
        except (ValueError, NotImplementedError, AttributeError):
            count = 0
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


def _override_decode_chunk(pipe, chunk: int) -> bool:
    """Make ``pipe.decode_latents`` decode ``chunk`` frames at a time, whatever it is asked."""
    method = getattr(type(pipe), "decode_latents", None)
    if method is None or "decode_chunk_size" not in inspect.signature(method).parameters:
        return False
    bound = method.__get__(pipe)

    @functools.wraps(bound)
    def decode_latents(*args, **kwargs):
        params = inspect.signature(bound).bind(*args, **kwargs)
        params.arguments["decode_chunk_size"] = chunk
        return bound(*params.args, **params.kwargs)

    pipe.decode_latents = decode_latents  # an instance attribute: ``reset_recipe`` drops it
    return True


def inductor_cache_dir() -> Path:
    """Where Inductor keeps compiled kernels across processes: warm-up is paid once."""
    return _home() / "cache" / "torchinductor"


def _home() -> Path:
    """VIDGEN_HOME; read directly where ``core.storage`` cannot import (a bare GPU box
    running only the bench has no ``universal-pathlib``)."""
    try:
        from vidgen_pipeline.core.storage import vidgen_home
    except ImportError:
        return Path(os.environ.get("VIDGEN_HOME") or ".vidgen").resolve()
    return vidgen_home()


def _compile(pipe, recipe: Recipe, cuda: bool) -> list[str]:
    import torch

    if not cuda and not recipe.compile_on_cpu:
        return ["torch.compile skipped on the CPU (the recipe targets CUDA)"]
    notes: list[str] = []
    mode = recipe.compile_mode
    if not cuda and (mode in CUDA_GRAPH_MODES or "autotune" in mode):
        notes.append(f"compile mode {mode} is for CUDA: mode default on the CPU")
        mode = "default"
    if cuda:
        from torch.utils._triton import has_triton

        if not has_triton():
            return ["torch.compile skipped: Triton is not installed"]
    cache = use_inductor_cache()
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    if cuda:
        inductor_config.conv_1x1_as_mm = True  # 1x1 convolutions as GEMMs (UNet shortcuts)
    # Last clips of a scene are shorter: one recompile with dynamic shapes, then no more.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 16)
    targets = [("UNet", getattr(pipe, "unet", None))]
    vae = getattr(pipe, "vae", None)
    if recipe.compile_vae_decoder and vae is not None:
        targets.append(("VAE decoder", getattr(vae, "decoder", None)))
    done = []
    for label, module in targets:
        if module is None:
            continue
        # In place: the same module and state dict, with a compiled call.
        if recipe.compile_backend == "inductor":
            module.compile(mode=mode)
        else:
            module.compile(backend=recipe.compile_backend)
        done.append(label)
    how = f"mode={mode}" if recipe.compile_backend == "inductor" else recipe.compile_backend
    notes.append(
        f"torch.compile {' + '.join(done)} {how} (cache {cache}; warm-up on the first call)"
    )
    return notes


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


def describe(recipe: Recipe) -> dict[str, Any]:
    """The recipe's settings as plain data (for JSON and the bench table)."""
    from dataclasses import asdict

    data = asdict(recipe)
    data.pop("extra", None)
    data["cuda_graphs"] = recipe.cuda_graphs
    return data
