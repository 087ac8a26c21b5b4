"""What loads on top of a pipeline: a few-step model's replacement UNet weights, the
scheduler it was distilled for, and LoRAs on the denoiser."""

from __future__ import annotations

from pathlib import Path

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.weights import ResolvedWeights, first_line


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


def apply_loras(pipe, loras: list[dict], log=print) -> None:
    """Put exactly ``loras`` (the plan's: file and scale each) on ``pipe``'s denoiser, in
    that order; what another prompt of the run put there before is unloaded first. The file
    is read as safetensors here and handed to diffusers as a state dict."""
    wanted = wanted_loras(loras)
    if wanted == loras_of(pipe):
        return
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if getattr(pipe, "_vidgen_loras", ()):
        pipe.unload_lora_weights()
    names = []
    for index, (path, _scale) in enumerate(wanted):
        name = f"vidgen_{index}"
        try:
            pipe.load_lora_weights(load_file(path), adapter_name=name)
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as exc:
            pipe._vidgen_loras = ()
            raise ModelChoiceError(f"could not load the LoRA {path}: {first_line(exc)}") from None
        names.append(name)
    if names:
        pipe.set_adapters(names, adapter_weights=[scale for _, scale in wanted])
        log(f"LoRAs: {', '.join(f'{Path(p).name} x{s:g}' for p, s in wanted)}")
    pipe._vidgen_loras = wanted


def wanted_loras(loras: list[dict]) -> tuple:
    return tuple((lora["path"], float(lora["scale"])) for lora in loras)


def loras_of(pipe) -> tuple:
    """The (file, scale) LoRAs ``apply_loras`` put on ``pipe``."""
    return getattr(pipe, "_vidgen_loras", ())


def make_scheduler(name: str, config: dict | None):
    """A scheduler by class name: the ported AnimateLCM-SVD one, or any of diffusers'."""
    import diffusers

    from vidgen_pipeline.core import animatelcm_scheduler

    cls = getattr(animatelcm_scheduler, name, None) or getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_config"):
        raise ModelChoiceError(f"unknown scheduler {name!r}")
    return cls.from_config(dict(config or {}))
