"""Speed recipes: named, frozen sets of settings for a loaded diffusers pipeline (data only).

``resources/placement.py`` puts one into effect (``place``) on whatever denoiser the
pipeline has: SVD's and the UNet families' ``unet``, the DiT families' ``transformer`` (and
Wan 2.2 A14B's ``transformer_2``). Every part looks for the component or method it needs
and notes its absence instead of failing.

- ``default``: diffusers' own: bf16 (fp16 where bf16 is emulated) and PyTorch SDPA.
- ``fast``: exact: ``torch.compile`` of the denoiser (regional: its repeated transformer
  blocks, compiled once and reused, where the model declares them; whole for UNets) and the
  VAE decoder, the best exact attention backend present (flash attention through diffusers'
  dispatcher when installed, else PyTorch SDPA), fused QKV projections where supported,
  channels-last UNets, SVD's whole-clip decode.
- ``cache``: ``fast`` plus the family's step cache (First Block Cache on the DiTs: a step
  whose first block changes the residual less than the threshold reuses the rest of the
  last step). Not exact: opt-in only, never a default; the bench reports its difference.
- ``low_memory``: VAE tiling and slicing, UNet feed-forward chunking, SVD decode chunk 2;
  offloading is the memory mode's (model, group or sequential offload).
- ``brief``: the original brief's (fp16, attention slicing, xFormers if installed).
- ``plain``: nothing at all (fp32 on the CPU): what the CPU has always run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

DTYPES = ("fp16", "bf16", "fp32")
SDPA_BACKENDS = ("flash", "efficient", "cudnn", "math")
OFFLOAD = ("model", "group", "sequential")
COMPILE = ("none", "full", "regional")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")

# Output of ``fast`` against ``default`` on the same seed, frames in [0, 1].
# On the CPU both run in fp32, so only summation order differs (channels-last, fused QKV).
FAST_MAX_ABS_DIFF_CPU = 1e-4
# On CUDA both run in bf16/fp16 (compiled kernels vs eager ones): the aim, measured by the bench.
FAST_MIN_PSNR_DB_CUDA = 40.0
# First Block Cache's threshold when the resource sets none (diffusers' default).
CACHE_THRESHOLD = 0.05


@dataclass(frozen=True)
class Recipe:
    """How to run a pipeline: precision, attention, layout, compilation, memory, caching."""

    name: str
    summary: str
    dtype: str | None = "bf16"  # what the bench loads in; None: keep. Runs load the plan's
    attention: str = "sdpa"  # "sdpa" (PyTorch's choice), "best" (fastest exact present)
    attention_slicing: bool = False
    xformers: bool = False  # when installed (CUDA only); else PyTorch SDPA
    sdpa_backends: tuple[str, ...] = ()  # (): PyTorch's own choice; else only these (+ math)
    channels_last: bool = False  # UNets and VAEs (2-D convolutions)
    fuse_qkv: bool = False
    compile: str = "none"  # "none", "full" (the whole denoiser) or "regional" (its blocks)
    compile_mode: str = "default"  # torch.compile mode; CUDA-graph modes are CUDA-only
    compile_backend: str = "inductor"  # "eager": Dynamo tracing only (tests on the CPU)
    compile_vae_decoder: bool = True  # with ``compile``: the VAE decoder too
    compile_on_cpu: bool = False
    step_cache: bool = False  # the family's step cache (its threshold: the resource's)
    decode_chunk_size: int | None = None  # SVD frames per VAE decode; None: the caller's
    offload: str | None = None  # bench only: "model", "group" or "sequential" (CUDA)
    forward_chunking: bool = False  # UNet feed-forward chunking (less activation memory)
    vae_tiling: bool = False
    vae_slicing: bool = False

    @property
    def compiles(self) -> bool:
        return self.compile != "none"

    @property
    def cuda_graphs(self) -> bool:
        return self.compiles and self.compile_mode in CUDA_GRAPH_MODES


PLAIN = Recipe("plain", "nothing applied: the pipeline as loaded (fp32 on the CPU)", dtype=None)
BRIEF = Recipe(
    "brief",
    "the brief's: fp16, attention slicing, xFormers if installed",
    dtype="fp16",
    attention_slicing=True,
    xformers=True,
)
DEFAULT = Recipe("default", "diffusers' default: bf16, PyTorch SDPA")
FAST = Recipe(
    "fast",
    "exact: torch.compile (regional on DiTs) + VAE decoder, best attention backend, fused "
    "QKV, channels-last UNet, whole-clip SVD decode",
    attention="best",
    channels_last=True,
    fuse_qkv=True,
    # mode=default: Inductor's fusions with cuBLAS/cuDNN kernels; warm-up about a minute.
    # max-autotune (the ``fast_autotune`` variant) also times Triton GEMM templates.
    compile="regional",
    decode_chunk_size=25,
)
CACHE = replace(
    FAST,
    name="cache",
    summary="fast plus the family's step cache (First Block Cache on DiTs): not exact, opt-in",
    step_cache=True,
)
LOW_MEMORY = Recipe(
    "low_memory",
    "VAE tiling and slicing, UNet forward chunking, decode chunk 2 (offload: the memory mode's)",
    forward_chunking=True,
    decode_chunk_size=2,
    vae_tiling=True,
    vae_slicing=True,
)
RECIPES: dict[str, Recipe] = {r.name: r for r in (BRIEF, DEFAULT, FAST, CACHE, LOW_MEMORY, PLAIN)}
# Variants the bench can be asked for by name (``--recipes``), not defaults anywhere.
VARIANTS: dict[str, Recipe] = {
    r.name: r
    for r in (
        replace(FAST, name="fast_fp16", summary="fast in fp16", dtype="fp16"),
        replace(
            FAST, name="fast_full", summary="fast, the whole denoiser compiled", compile="full"
        ),
        replace(
            FAST,
            name="fast_cudnn",
            summary="fast with cuDNN attention only (flash and efficient off)",
            attention="sdpa",
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
        replace(
            LOW_MEMORY,
            name="low_memory_group",
            summary="low_memory with group offload (block level, CUDA streams)",
            offload="group",
        ),
        replace(
            LOW_MEMORY,
            name="low_memory_model",
            summary="low_memory with model CPU offload",
            offload="model",
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    try:
        return {**RECIPES, **VARIANTS}[name]
    except KeyError:
        known = ", ".join([*RECIPES, *VARIANTS])
        raise ValueError(f"unknown recipe {name!r}; known: {known}") from None


def describe(recipe: Recipe) -> dict[str, Any]:
    """The recipe's settings as plain data (for JSON and the bench table)."""
    return {**asdict(recipe), "cuda_graphs": recipe.cuda_graphs}
