"""Loading diffusers pipelines once per process, placing them in memory, and freeing them.

torch and diffusers are imported inside functions: importing this module never touches
CUDA (a Dagster parent process must not initialise it before forking step processes).
"""

from __future__ import annotations

import gc
import os
import resource
import time
from collections import Counter
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.weights import ResolvedWeights, first_line

# Progress goes to the Dagster log (per denoising step); library progress bars and
# import-time chatter would only clutter it. A user's own settings win.
for _name, _value in (
    ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
    ("DIFFUSERS_VERBOSITY", "error"),
    ("TRANSFORMERS_VERBOSITY", "error"),
):
    os.environ.setdefault(_name, _value)

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "fp16", "bf16", "fp32")
MEMORY_MODES = ("auto", "gpu", "model_offload", "sequential_offload")
ATTENTION = ("sdpa", "xformers")

# Pipelines loaded in this process, by (weights path, adapter, dtype, device, class, replacement
# UNet, scheduler), and the memory mode each was placed in (kept across scenes, and lowered
# when a scene ran out of memory).
_LOADED: dict[tuple, Any] = {}
_PLACEMENT: dict[int, str] = {}
# How often each model was loaded from disk in this process (a backfill's runs should load
# each model once, not once per prompt); read by tests and the benchmark.
LOAD_COUNTS: Counter[str] = Counter()


class DiffusersSettings(ConfigurableResource):
    """Settings shared by the resources that run diffusers pipelines."""

    device: str = Field(default="auto", description="auto (cuda when present), cpu or cuda")
    dtype: str = Field(
        default="auto", description="auto (bf16/fp16 on GPU, fp32 on CPU), fp16, bf16, fp32"
    )
    memory_mode: str = Field(
        default="auto",
        description="auto (from free VRAM), gpu, model_offload, sequential_offload",
    )
    attention: str = Field(
        default="sdpa", description="sdpa (PyTorch) or xformers (CUDA, if installed)"
    )
    allow_download: bool = Field(default=False, description="download missing weights from the hub")
    allow_unsafe_weights: bool = Field(default=False, description="load pickle (.bin) weights")
    trust_remote_code: bool = Field(default=False, description="run code shipped with a model repo")

    def teardown_after_execution(self, context) -> None:
        """Free every pipeline this process loaded, once the step (or run) is done."""
        release_all()

    def check_settings(self) -> None:
        for label, value, allowed in (
            ("device", self.device, DEVICES),
            ("dtype", self.dtype, DTYPES),
            ("memory_mode", self.memory_mode, MEMORY_MODES),
            ("attention", self.attention, ATTENTION),
        ):
            if value not in allowed:
                raise ModelChoiceError(
                    f"unknown {label} {value!r}; use one of {', '.join(allowed)}"
                )


def cuda_available() -> bool:
    from vidgen_pipeline.gpus import hold_device

    hold_device()  # VIDGEN_GPUS: this process's own device, chosen before CUDA starts
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(setting: str) -> str:
    if setting not in DEVICES:
        raise ModelChoiceError(f"unknown device {setting!r}; use one of {', '.join(DEVICES)}")
    if setting == "cpu":
        return "cpu"
    has_cuda = cuda_available()
    if setting == "cuda" and not has_cuda:
        raise ModelChoiceError("device 'cuda' was asked for, but no CUDA GPU is visible to torch")
    return "cuda" if has_cuda else "cpu"


def resolve_dtype(setting: str, device: str) -> tuple[str, str | None]:
    """The dtype to load in, and a note when the setting was overridden."""
    if device == "cpu":
        note = None if setting in ("auto", "fp32") else f"dtype {setting} ignored: fp32 on CPU"
        return "fp32", note
    if setting != "auto":
        return setting, None
    import torch

    # Emulated bf16 (T4, V100) is slow: only native support counts.
    return ("bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"), None


def torch_dtype(name: str):
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def auto_memory_mode(vram_gb_needed: float) -> str:
    """From free VRAM: all on the GPU when it fits, else offload whole models, else layers."""
    import torch

    free, _total = torch.cuda.mem_get_info()
    free_gb = free / 2**30
    if free_gb >= vram_gb_needed * 1.1:
        return "gpu"
    if free_gb >= vram_gb_needed * 0.5:
        return "model_offload"
    return "sequential_offload"


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


def load_pipeline(
    weights: ResolvedWeights,
    dtype: str,
    device: str,
    settings: DiffusersSettings,
    motion_adapter: str | None = None,
    pipeline_class: str | None = None,
    log=print,
    unet_weights: str | None = None,
    scheduler: tuple[str, dict | None] | None = None,
):
    """Load (once per process) the diffusers pipeline in ``weights``, in ``dtype``.

    ``unet_weights``: a safetensors state dict (diffusers key names) that replaces the UNet's
    weights, as a few-step distilled model does; ``scheduler``: (class name, config) of the
    scheduler that replaces the pipeline's own.
    """
    scheduler_key = (
        (scheduler[0], tuple(sorted((scheduler[1] or {}).items()))) if scheduler else None
    )
    key = (
        str(weights.path),
        motion_adapter,
        dtype,
        device,
        pipeline_class,
        unet_weights,
        scheduler_key,
    )
    if key in _LOADED:
        return _LOADED[key]
    # One model in memory at a time: the LLM and the keyframe model make way for the next.
    release_all()
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    started = time.perf_counter()
    kwargs: dict[str, Any] = {
        "dtype": torch_dtype(dtype),
        "use_safetensors": not settings.allow_unsafe_weights,
    }
    if settings.trust_remote_code:
        kwargs["trust_remote_code"] = True
    if motion_adapter:
        kwargs["motion_adapter"] = diffusers.MotionAdapter.from_pretrained(
            motion_adapter, dtype=torch_dtype(dtype), use_safetensors=kwargs["use_safetensors"]
        )
    cls = getattr(diffusers, pipeline_class) if pipeline_class else diffusers.DiffusionPipeline
    try:
        pipe = cls.from_pretrained(str(weights.path), **kwargs)
    except (OSError, ValueError, TypeError) as exc:
        reason = first_line(exc)
        raise ModelChoiceError(f"could not load {weights.path}: {reason}") from exc
    pipe.set_progress_bar_config(disable=True)  # progress is logged per step instead
    extra = ""
    if unet_weights:
        replace_unet_weights(pipe, unet_weights, weights)
        extra += f", UNet from {unet_weights}"
    if scheduler:
        pipe.scheduler = make_scheduler(*scheduler)
        extra += f", {scheduler[0]}"
    LOAD_COUNTS[str(weights.path)] += 1
    log(
        f"loaded {type(pipe).__name__} from {weights.path} ({weights.source}) in {dtype}"
        f"{extra} in {time.perf_counter() - started:.1f} s"
    )
    _LOADED[key] = pipe
    return pipe


def replace_unet_weights(pipe, path: str, weights: ResolvedWeights) -> None:
    """Load the state dict in the safetensors file ``path`` into ``pipe.unet`` (strict: every
    key, every shape); a file that does not fit is one ``ModelChoiceError`` line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    unet = getattr(pipe, "unet", None)
    if unet is None:
        raise ModelChoiceError(f"{weights.path} has no UNet for {path} to replace")
    try:
        state = load_file(path)
    except (OSError, SafetensorError) as exc:
        reason = first_line(exc)
        raise ModelChoiceError(f"could not read {path}: {reason}") from None
    own = unet.state_dict()
    missing = sorted(own.keys() - state.keys())
    unexpected = sorted(state.keys() - own.keys())
    reshaped = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        problems = []
        if missing:
            problems.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if reshaped:
            k = reshaped[0]
            problems.append(
                f"{len(reshaped)} of another shape (e.g. {k}: {tuple(state[k].shape)} in the "
                f"file, {tuple(own[k].shape)} in the model)"
            )
        raise ModelChoiceError(
            f"{path} does not fit the {type(unet).__name__} of {weights.path}: "
            f"{'; '.join(problems)} (diffusers key names expected)"
        )
    unet.load_state_dict(state, strict=True)


def make_scheduler(name: str, config: dict | None):
    """A scheduler by class name: the ported AnimateLCM-SVD one, or any of diffusers'."""
    import diffusers

    from vidgen_pipeline.core import animatelcm_scheduler

    cls = getattr(animatelcm_scheduler, name, None) or getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_config"):
        raise ModelChoiceError(f"unknown scheduler {name!r}")
    return cls.from_config(dict(config or {}))


def placement(pipe) -> str | None:
    """The memory mode ``pipe`` was last placed in, if any."""
    return _PLACEMENT.get(id(pipe))


def place(
    pipe,
    mode: str,
    device: str,
    attention: str,
    forward_chunking: bool = False,
    recipe: str = "auto",
) -> None:
    """Put ``pipe`` in memory as ``mode`` says: on the device, or offloaded to the CPU; on
    CUDA with the speed ``recipe`` (see ``recipe_for_placement``)."""
    _PLACEMENT[id(pipe)] = mode
    if hasattr(pipe, "remove_all_hooks"):
        pipe.remove_all_hooks()
    if device == "cpu" or mode == "cpu":
        pipe.to("cpu")
    elif mode == "gpu":
        pipe.to(device)
    elif mode == "model_offload":
        pipe.to("cpu")
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential_offload":
        pipe.to("cpu")
        pipe.enable_sequential_cpu_offload(device=device)
        if hasattr(pipe, "enable_attention_slicing"):
            pipe.enable_attention_slicing()  # lowest rung only: slower, and a no-op on SVD
    else:
        raise ModelChoiceError(f"unknown memory mode {mode!r}")
    if attention == "xformers":
        if device != "cuda":
            raise ModelChoiceError("attention 'xformers' is CUDA-only; use sdpa on the CPU")
        try:
            import xformers  # noqa: F401
        except ImportError:
            raise ModelChoiceError(
                "attention 'xformers' asked for, but xformers is not installed (pip install '.[xformers]')"
            ) from None
        pipe.enable_xformers_memory_efficient_attention()
    unet = getattr(pipe, "unet", None)
    if forward_chunking and unet is not None and hasattr(unet, "enable_forward_chunking"):
        unet.enable_forward_chunking(chunk_size=1, dim=1)
    if device == "cuda":  # the CPU runs the pipeline as loaded, as it always has
        apply_placement_recipe(pipe, mode, device, recipe)


def load_chat_model(
    weights: ResolvedWeights, device: str, dtype: str, trust_remote_code: bool, log=print
):
    """A transformers causal LM and its tokenizer, loaded once per process."""
    key = ("llm", str(weights.path), dtype, device)
    if key in _LOADED:
        return _LOADED[key]
    release_all()
    import transformers

    transformers.utils.logging.disable_progress_bar()
    started = time.perf_counter()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(weights.path), trust_remote_code=trust_remote_code
        )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(weights.path),
            dtype=torch_dtype(dtype),
            trust_remote_code=trust_remote_code,
            use_safetensors=True,
        )
    except (OSError, ValueError, TypeError) as exc:
        reason = first_line(exc)
        raise ModelChoiceError(f"could not load {weights.path}: {reason}") from exc
    model.to(device).eval()
    if tokenizer.chat_template is None:
        raise ModelChoiceError(f"{weights.path} has no chat template: use an instruct/chat model")
    log(
        f"loaded {type(model).__name__} from {weights.path} ({weights.source}) in {dtype} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    LOAD_COUNTS[str(weights.path)] += 1
    _LOADED[key] = (tokenizer, model)
    return _LOADED[key]


def release(pipe) -> None:
    """Forget ``pipe`` in this process. Its memory returns once the caller drops its own
    reference too; then call ``collect()``."""
    for key, value in list(_LOADED.items()):
        if value is pipe:
            del _LOADED[key]
    _PLACEMENT.pop(id(pipe), None)


def collect() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def release_all() -> None:
    _LOADED.clear()
    _PLACEMENT.clear()
    collect()


def loaded_count() -> int:
    return len(_LOADED)


def reset_peak_memory(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: str) -> float:
    """Peak GPU memory since the last reset (CUDA), else this process's peak RSS."""
    if device == "cuda":
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def token_counter(pipeline_folder: str | None):
    """The prompt-token count of a pipeline's own text tokenizer (``tokenizer/``), and its
    limit; (None, 77) when there is none to read."""
    if not pipeline_folder:
        return None, 77
    from pathlib import Path

    folder = Path(pipeline_folder) / "tokenizer"
    if not folder.is_dir():
        return None, 77
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    limit = min(int(getattr(tokenizer, "model_max_length", 77) or 77), 4096)
    return (lambda text: len(tokenizer(text)["input_ids"])), limit


# ------------------------------------------------------------------------- speed recipes

RECIPE_ENV = "VIDGEN_RECIPE"


def check_recipe(setting: str) -> None:
    """Refuse an unknown ``recipe`` setting (``auto``, ``none`` or a recipe's name)."""
    from vidgen_pipeline.core import recipes

    if setting not in ("auto", "none"):
        try:
            recipes.get_recipe(setting)
        except ValueError as exc:
            raise ModelChoiceError(f"recipe: {exc}; or auto, none") from None


def recipe_for_placement(mode: str, device: str, setting: str = "auto"):
    """The speed recipe (``vidgen_pipeline.core.recipes``) for a pipeline placed in memory
    mode ``mode``: on CUDA ``fast`` when all of it is on the GPU, ``low_memory`` (its forward
    chunking) when offloaded; none on the CPU. ``setting`` (the resource's ``recipe``) names
    another recipe, or ``none``; ``VIDGEN_RECIPE``, when set, overrides it. ``place`` owns
    dtype, device and offload, the caller the decode chunk, so the recipe returned leaves
    those alone."""
    from dataclasses import replace

    from vidgen_pipeline.core import recipes

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


def apply_placement_recipe(pipe, mode: str, device: str, setting: str = "auto") -> list[str]:
    """Apply ``recipe_for_placement`` once per pipeline and mode (a compiled UNet stays
    compiled across the clips of a run); return the recipe's notes."""
    from vidgen_pipeline.core import recipes

    recipe = recipe_for_placement(mode, device, setting)
    current = recipes.applied_recipe(pipe)
    if recipe is None:
        if current is not None:
            recipes.reset_recipe(pipe)
        return []
    if current is not None and current.name == recipe.name:
        return list(current.notes)
    if recipe.compile:
        import torch._dynamo

        # A model that does not compile runs eagerly rather than failing the scene.
        torch._dynamo.config.suppress_errors = True
    return recipes.apply_recipe(pipe, recipe, device, move=False)
