"""A tiny random LoRA on a tiny pipeline's denoiser, made with peft and saved the way diffusers
saves LoRAs (``pytorch_lora_weights.safetensors``), so it loads through the users' path."""

from __future__ import annotations

from pathlib import Path

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def save_tiny_lora(pipeline: Path, dest: Path, seed: int = 3, rank: int = 4) -> Path:
    """A rank-``rank`` LoRA with random (not zero) weights on the attention projections of the
    denoiser of the tiny pipeline folder ``pipeline``; returns the safetensors file."""
    import torch
    from diffusers import DiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = DiffusionPipeline.from_pretrained(str(pipeline), use_safetensors=True)
    denoiser = "transformer" if getattr(pipe, "transformer", None) is not None else "unet"
    model = getattr(pipe, denoiser)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank, lora_alpha=rank, target_modules=list(TARGETS), init_lora_weights=False
    )
    model.add_adapter(config)
    layers = get_peft_model_state_dict(model)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(
        str(dest), **{f"{denoiser}_lora_layers": layers}, safe_serialization=True
    )
    return dest / "pytorch_lora_weights.safetensors"
