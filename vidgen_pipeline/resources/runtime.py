"""Loading diffusers pipelines once per process, placing them in memory, and freeing them.

torch and diffusers are imported inside functions: importing this module never touches
CUDA (a Dagster parent process must not initialise it before forking step processes).
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.weights import ResolvedWeights, first_line, folder_variant
from vidgen_pipeline.resources import decode_guard, extras, placement
from vidgen_pipeline.resources.decode_guard import OutOfMemoryInDecode

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
MEMORY_MODES = placement.MEMORY_MODES
ATTENTION = ("sdpa", "xformers")

# Pipelines loaded in this process, by (weights path, adapter, dtype, device, class, replacement
# UNet, scheduler, variant, component dtypes); their memory modes: ``placement``.
_LOADED: dict[tuple, Any] = {}
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
    if "torch" not in sys.modules and _cpu_only_torch():
        return False  # a CPU build has no CUDA: no need to import torch (seconds) to ask it
    import torch

    return bool(torch.cuda.is_available())


def _cpu_only_torch() -> bool:
    """The installed torch is a CPU-only build (its version's local tag: ``2.13.0+cpu``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch").endswith("+cpu")
    except PackageNotFoundError:
        return False


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


def weights_precision(dtype: str) -> str:
    """The weights files a load in ``dtype`` prefers: ``fp16`` for half precision."""
    return "fp16" if dtype in ("fp16", "bf16") else "fp32"


def torch_dtype(name: str):
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def auto_memory_mode(vram_gb_needed: float) -> str:
    """From free VRAM: all on the GPU when it fits, else offload whole models, else groups
    of layers (streamed), else single layers."""
    import torch

    free, _total = torch.cuda.mem_get_info()
    free_gb = free / 2**30
    if free_gb >= vram_gb_needed * 1.1:
        return "gpu"
    if free_gb >= vram_gb_needed * 0.5:
        return "model_offload"
    if free_gb >= vram_gb_needed * 0.25:
        return "group_offload"
    return "sequential_offload"


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError | OutOfMemoryInDecode)


guard_decode = decode_guard.guard_decode


def free_memory_bytes(device: str) -> int | None:
    """Free memory on the CUDA device (None on the CPU)."""
    if device != "cuda":
        return None
    import torch

    free, _total = torch.cuda.mem_get_info()
    return int(free)


def free_memory_gb() -> float:
    return (free_memory_bytes("cuda") or 0) / 2**30


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
    variant: str | None = None,
    component_dtypes: dict[str, str] | None = None,
):
    """Load (once per process) the diffusers pipeline in ``weights``, in ``dtype``.

    ``variant``: the weights files to read (``fp16``: ``*.fp16.safetensors``, see
    ``ResolvedWeights.variant_for``; None: the full-precision ones). ``unet_weights``: a
    safetensors state dict (diffusers key names) that replaces the UNet's weights, as a
    few-step distilled model does; ``scheduler``: (class name, config) of the scheduler that
    replaces the pipeline's own; ``component_dtypes``: components kept in another dtype
    (Wan's VAE in fp32).
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
        variant,
        tuple(sorted((component_dtypes or {}).items())),
    )
    if key in _LOADED:
        return _LOADED[key]
    # One model in memory at a time: the LLM and the keyframe model make way for the next.
    release_all()
    _loaded_something()  # from here on, a failed load may leave garbage too
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    started = time.perf_counter()
    kwargs = _loading_arguments(dtype, settings, variant, component_dtypes)
    if motion_adapter:
        kwargs["motion_adapter"] = diffusers.MotionAdapter.from_pretrained(
            motion_adapter,
            dtype=torch_dtype(dtype),
            use_safetensors=kwargs["use_safetensors"],
            variant=folder_variant(Path(motion_adapter), dtype),
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
        extras.replace_unet_weights(pipe, unet_weights, weights)
        extra += f", UNet from {unet_weights}"
    if scheduler:
        pipe.scheduler = extras.make_scheduler(*scheduler)
        extra += f", {scheduler[0]}"
    LOAD_COUNTS[str(weights.path)] += 1
    files = f"{variant} files" if variant else "full-precision files"
    log(
        f"loaded {type(pipe).__name__} from {weights.path} ({weights.source}, {files}) in "
        f"{dtype}{extra} in {time.perf_counter() - started:.1f} s"
    )
    _LOADED[key] = pipe
    return pipe


def _loading_arguments(dtype: str, settings, variant, component_dtypes) -> dict[str, Any]:
    """``from_pretrained``'s arguments: the dtype (per component where some differ), the
    files' variant, safetensors unless opted out, remote code only when opted in."""
    kwargs: dict[str, Any] = {
        "dtype": torch_dtype(dtype),
        "use_safetensors": not settings.allow_unsafe_weights,
    }
    if component_dtypes:
        kwargs["dtype"] = {
            "default": torch_dtype(dtype),
            **{name: torch_dtype(value) for name, value in component_dtypes.items()},
        }
    if variant:
        kwargs["variant"] = variant
    if settings.trust_remote_code:
        kwargs["trust_remote_code"] = True
    return kwargs


def pipeline_as(pipe, class_name: str | None):
    """``pipe`` as another pipeline class of the same components (LTX-Video's image-to-video
    pipeline for a text-to-video folder), made once and kept beside it. The components are
    shared as they are: no second load, no dtype cast (``from_pipe`` would cast them all)."""
    if not class_name or type(pipe).__name__ == class_name:
        return pipe
    key = ("as", id(pipe), class_name)
    if key in _LOADED:
        return _LOADED[key][1]
    _loaded_something()  # from here on, a failed load may leave garbage too
    import diffusers

    cls = getattr(diffusers, class_name)
    expected, optional = cls._get_signature_keys(cls)
    components = pipe.components
    arguments = {name: components.get(name) for name in expected}
    arguments.update({k: pipe.config[k] for k in optional if k in pipe.config})
    sibling = cls(**arguments)
    sibling.set_progress_bar_config(disable=True)
    _LOADED[key] = (pipe, sibling)  # keeps pipe's id valid while the sibling lives
    return sibling


def load_chat_model(
    weights: ResolvedWeights, device: str, dtype: str, trust_remote_code: bool, log=print
):
    """A transformers causal LM and its tokenizer, loaded once per process."""
    key = ("llm", str(weights.path), dtype, device)
    if key in _LOADED:
        return _LOADED[key]
    release_all()
    _loaded_something()  # from here on, a failed load may leave garbage too
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
            variant=weights.variant_for(dtype),  # model.fp16.safetensors where that is what's here
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


_LOADS_SINCE_COLLECT = False  # a model was loaded since the last collect()


def _loaded_something() -> None:
    global _LOADS_SINCE_COLLECT
    _LOADS_SINCE_COLLECT = True


def release(pipe) -> None:
    """Forget ``pipe`` in this process. Its memory returns once the caller drops its own
    reference too; then call ``collect()``."""
    for key, value in list(_LOADED.items()):
        if value is pipe or (key[0] == "as" and value[0] is pipe):
            del _LOADED[key]
    placement.forget(pipe)


def collect() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def release_all() -> None:
    """Forget every loaded pipeline and free its memory. A process that loaded none since
    the last time skips the collection (a full ``gc.collect`` over torch and Dagster's
    objects costs ~0.5 s, and each resource calls this at teardown)."""
    global _LOADS_SINCE_COLLECT
    held = bool(_LOADED) or _LOADS_SINCE_COLLECT
    _LOADED.clear()
    placement.forget_all()
    if held:
        collect()
        _LOADS_SINCE_COLLECT = False


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
    folder = Path(pipeline_folder) / "tokenizer"
    if not folder.is_dir():
        return None, 77
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    limit = min(int(getattr(tokenizer, "model_max_length", 77) or 77), 4096)
    return (lambda text: len(tokenizer(text)["input_ids"])), limit
