"""Speed recipes on the tiny random SVD: fast matches default within the stated tolerance,
every recipe applies on the CPU (CUDA-only parts degrade with a note), and the choices."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vidgen_pipeline.core import recipes
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.resources import runtime

SIZE = {"height": 64, "width": 64, "num_frames": 4}


@pytest.fixture
def svd_folder(tiny_models):
    """The session's tiny SVD (conftest)."""
    return tiny_models["svd"]


@pytest.fixture
def pipe(svd_folder):
    """A fresh copy per test, loaded as users load it."""
    from diffusers import StableVideoDiffusionPipeline

    loaded = StableVideoDiffusionPipeline.from_pretrained(str(svd_folder), use_safetensors=True)
    loaded.set_progress_bar_config(disable=True)
    return loaded


def image():
    from PIL import Image

    ys, xs = np.mgrid[0:64, 0:64]
    rgb = np.stack([xs * 4, ys * 4, (xs + ys) * 2], axis=-1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb)


def frames(pipe, decode_chunk_size=4):
    generator = torch.Generator("cpu").manual_seed(5)
    out = pipe(
        image(),
        num_inference_steps=2,
        decode_chunk_size=decode_chunk_size,
        generator=generator,
        output_type="np",
        **SIZE,
    )
    return np.asarray(out.frames[0], dtype=np.float64)


def test_fast_matches_default_within_the_stated_tolerance(pipe, svd_folder):
    from diffusers import StableVideoDiffusionPipeline

    other = StableVideoDiffusionPipeline.from_pretrained(str(svd_folder), use_safetensors=True)
    other.set_progress_bar_config(disable=True)
    recipes.apply_recipe(pipe, recipes.DEFAULT, "cpu")
    notes = recipes.apply_recipe(other, recipes.FAST, "cpu")
    assert any(n.startswith("fused QKV in") and not n.startswith("fused QKV in 0") for n in notes)
    assert any(n.startswith("channels-last (") for n in notes)
    # The same decode grouping (4 frames at once) for both: SVD's temporal decoder mixes
    # the frames of a chunk, so only the recipes' numerics are compared.
    default, fast = frames(pipe), frames(other)
    assert np.isfinite(fast).all()
    assert np.abs(fast - default).max() <= recipes.FAST_MAX_ABS_DIFF_CPU


def test_the_compile_path_traces_on_the_cpu_and_keeps_the_output(pipe, svd_folder):
    """Inductor's C++ warm-up is minutes on this CPU; Dynamo's tracing with the eager
    backend runs the same code path (in-place module compile, channels-last, fused QKV)."""
    from diffusers import StableVideoDiffusionPipeline

    reference = frames(pipe)
    compiled = StableVideoDiffusionPipeline.from_pretrained(str(svd_folder), use_safetensors=True)
    compiled.set_progress_bar_config(disable=True)
    recipe = replace(recipes.FAST, compile_on_cpu=True, compile_backend="eager")
    notes = recipes.apply_recipe(compiled, recipe, "cpu")
    assert any(n.startswith("torch.compile UNet + VAE decoder eager") for n in notes)
    assert compiled.unet._compiled_call_impl is not None
    out = frames(compiled)
    assert np.abs(out - reference).max() <= recipes.FAST_MAX_ABS_DIFF_CPU
    recipes.reset_recipe(compiled)
    assert compiled.unet._compiled_call_impl is None
    torch._dynamo.reset()


@pytest.mark.parametrize("name", [*recipes.RECIPES, *recipes.VARIANTS])
def test_every_recipe_applies_on_the_cpu_with_notes(pipe, name):
    recipe = recipes.get_recipe(name)
    notes = recipes.apply_recipe(pipe, recipe, "cpu")
    assert recipes.applied_recipe(pipe).name == name
    if recipe.dtype in ("fp16", "bf16"):
        assert f"{recipe.dtype} skipped on the CPU: fp32" in notes
    if recipe.offload:
        assert "model CPU offload skipped: CUDA only" in notes
    if recipe.xformers:
        assert "xFormers skipped: CUDA only; PyTorch SDPA" in notes
    if recipe.compile:
        assert "torch.compile skipped on the CPU (the recipe targets CUDA)" in notes
    assert pipe.unet.dtype == torch.float32 and pipe.device.type == "cpu"
    if name in recipes.RECIPES:  # the variants differ from fast only in CUDA settings
        out = frames(pipe, decode_chunk_size=2)
        assert out.shape == (4, 64, 64, 3) and np.isfinite(out).all()


def test_reset_undoes_what_the_recipe_did(pipe):
    from diffusers.models.attention_processor import AttnProcessor2_0

    recipes.apply_recipe(pipe, recipes.FAST, "cpu")
    assert "decode_latents" in vars(pipe)
    recipes.reset_recipe(pipe)
    assert recipes.applied_recipe(pipe) is None
    assert "decode_latents" not in vars(pipe)
    processors = {type(p) for p in pipe.unet.attn_processors.values()}
    assert processors == {AttnProcessor2_0}
    conv = pipe.unet.conv_in.weight
    assert conv.is_contiguous()


def test_default_recipe_for_device_and_memory():
    assert recipes.default_recipe_for("cpu") is recipes.PLAIN
    assert recipes.default_recipe_for("cpu", 80) is recipes.PLAIN
    assert recipes.default_recipe_for("cuda", 141) is recipes.FAST
    assert recipes.default_recipe_for("cuda", 24) is recipes.FAST  # 16 GB x 1.25 = 20
    assert recipes.default_recipe_for("cuda", 12) is recipes.LOW_MEMORY
    assert recipes.default_recipe_for("cuda", 12, need_gb=8) is recipes.FAST
    assert recipes.default_recipe_for("cuda", None) is recipes.FAST
    with pytest.raises(ValueError, match="unknown recipe 'turbo'"):
        recipes.get_recipe("turbo")


def test_placement_recipe_is_fast_on_a_whole_gpu_low_memory_offloaded_none_on_cpu(
    monkeypatch,
):
    monkeypatch.delenv(runtime.RECIPE_ENV, raising=False)
    assert runtime.recipe_for_placement("cpu", "cpu") is None
    assert runtime.recipe_for_placement("gpu", "cpu") is None
    fast = runtime.recipe_for_placement("gpu", "cuda")
    assert fast.name == "fast" and fast.compile and fast.channels_last
    # place() owns dtype, device and offload; the caller owns the decode chunk.
    assert fast.dtype is None and fast.offload is None and fast.decode_chunk_size is None
    for mode in ("model_offload", "sequential_offload"):
        low = runtime.recipe_for_placement(mode, "cuda")
        assert low.name == "low_memory" and low.forward_chunking and low.offload is None
    monkeypatch.setenv(runtime.RECIPE_ENV, "none")
    assert runtime.recipe_for_placement("gpu", "cuda") is None
    monkeypatch.setenv(runtime.RECIPE_ENV, "default")
    assert runtime.recipe_for_placement("gpu", "cuda").name == "default"
    monkeypatch.setenv(runtime.RECIPE_ENV, "turbo")
    with pytest.raises(ModelChoiceError, match="VIDGEN_RECIPE: unknown recipe 'turbo'"):
        runtime.recipe_for_placement("gpu", "cuda")


def test_place_on_the_cpu_is_unchanged_and_a_cuda_recipe_is_applied_once(pipe, monkeypatch):
    monkeypatch.delenv(runtime.RECIPE_ENV, raising=False)
    runtime.place(pipe, "cpu", "cpu", "sdpa")
    assert recipes.applied_recipe(pipe) is None
    # The placement recipe's bookkeeping, without a GPU: once per pipeline and mode.
    monkeypatch.setattr(torch._dynamo.config, "suppress_errors", False)
    monkeypatch.setattr(recipes, "_compile", lambda pipe, recipe, cuda: ["compile stubbed"])
    first = runtime.apply_placement_recipe(pipe, "gpu", "cuda")
    assert "compile stubbed" in first and recipes.applied_recipe(pipe).name == "fast"
    fused = pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_qkv
    assert runtime.apply_placement_recipe(pipe, "gpu", "cuda") == first
    assert pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_qkv is fused
    # Stepping down the memory ladder swaps fast for low_memory.
    runtime.apply_placement_recipe(pipe, "model_offload", "cuda")
    assert recipes.applied_recipe(pipe).name == "low_memory"
    assert not hasattr(pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1, "to_qkv")
    runtime.release(pipe)
