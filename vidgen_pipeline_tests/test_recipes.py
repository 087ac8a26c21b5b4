"""Speed recipes on tiny random SVD, Wan and LTX-Video: fast matches default within the
stated tolerance, the cache recipe puts the family's step cache on and says so, every recipe
applies on the CPU (CUDA-only parts degrade with a note), one placement function owns it all,
and which recipe a run gets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vidgen_pipeline.core import recipes
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.families.registry import FAMILIES
from vidgen_pipeline.resources import placement, speedups

SIZE = {"height": 64, "width": 64, "num_frames": 4}


@pytest.fixture
def folders(tiny_models):
    """The session's tiny SVD, Wan and LTX-Video (conftest)."""
    return {
        "svd": tiny_models["svd"],
        "wan": tiny_models["wan2.1-t2v"],
        "ltx-video": tiny_models["ltx-video"],
    }


def load(folder):
    """A fresh copy, loaded as users load it."""
    from diffusers import DiffusionPipeline

    loaded = DiffusionPipeline.from_pretrained(str(folder), use_safetensors=True)
    loaded.set_progress_bar_config(disable=True)
    return loaded


@pytest.fixture
def pipe(folders):
    return load(folders["svd"])


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


def dit_frames(pipe, name, steps=2):
    size = 32 if name == "wan" else 64
    out = pipe(
        prompt="a red fox trots through fresh snow",
        height=size,
        width=size,
        num_frames=9,
        num_inference_steps=steps,
        max_sequence_length=16,
        generator=torch.Generator("cpu").manual_seed(5),
        output_type="np",
    )
    return np.asarray(out.frames[0], dtype=np.float64)


def place(pipe, recipe, **options):
    """As the bench does: the recipe's own memory mode and dtype, on this CPU."""
    return placement.place(
        pipe, placement.mode_of(recipe), "cpu", recipe, dtype=recipe.dtype, **options
    )


def test_fast_matches_default_within_the_stated_tolerance(pipe, folders):
    other = load(folders["svd"])
    place(pipe, recipes.DEFAULT)
    notes = place(other, recipes.FAST)
    assert any(n.startswith("fused QKV in") and not n.startswith("fused QKV in 0") for n in notes)
    assert any(n.startswith("channels-last (") for n in notes)
    # The same decode grouping (4 frames at once) for both: SVD's temporal decoder mixes
    # the frames of a chunk, so only the recipes' numerics are compared.
    default, fast = frames(pipe), frames(other)
    assert np.isfinite(fast).all()
    assert np.abs(fast - default).max() <= recipes.FAST_MAX_ABS_DIFF_CPU


@pytest.mark.parametrize("name", ["wan", "ltx-video"])
def test_fast_matches_default_on_the_diffusion_transformers(folders, name):
    """The DiT path: regional compilation of the repeated blocks (Dynamo tracing with the
    eager backend: Inductor's C++ warm-up is minutes on this CPU) and fused projections."""
    reference = dit_frames(load(folders[name]), name)
    fast = load(folders[name])
    recipe = replace(recipes.FAST, compile_on_cpu=True, compile_backend="eager")
    notes = place(fast, recipe)
    compiled = [n for n in notes if n.startswith("torch.compile ")]
    assert compiled and "blocks)" in compiled[0], notes  # the repeated blocks, not the whole
    assert speedups.compiled_modules(fast)
    out = dit_frames(fast, name)
    assert np.abs(out - reference).max() <= recipes.FAST_MAX_ABS_DIFF_CPU
    placement.reset(fast)
    assert not speedups.compiled_modules(fast)
    torch._dynamo.reset()


@pytest.mark.parametrize("name", ["wan", "ltx-video"])
def test_the_cache_recipe_puts_the_step_cache_on_and_says_so(folders, name):
    family = FAMILIES["wan" if name == "wan" else "ltx-video"]
    exact = dit_frames(load(folders[name]), name, steps=6)
    cached = load(folders[name])
    threshold = 10.0  # so high that every step after the first reuses the cached blocks
    notes = place(cached, recipes.CACHE, step_cache=family.step_cache(threshold))
    assert f"FirstBlockCache threshold {threshold:g}" in notes
    assert placement.applied_recipe(cached).name == "cache"
    calls = []
    model = cached.transformer
    block = (getattr(model, "blocks", None) or model.transformer_blocks)[-1]
    inner = getattr(block, "ffn", None) or block.ff  # runs only when the block really runs
    hook = inner.register_forward_hook(lambda *_: calls.append(1))
    out = dit_frames(cached, name, steps=6)
    hook.remove()
    # With the cache, the last block runs for the first step only (guidance doubles it).
    assert 0 < len(calls) < 6 and np.isfinite(out).all()
    assert np.abs(out - exact).max() > 0  # not exact: why it is never a default
    placement.reset(cached)
    assert not getattr(cached.transformer, "is_cache_enabled", False)
    assert placement.recipe_for("gpu", "cuda", "auto").name == "fast"  # auto never caches


def test_the_unet_families_have_no_step_cache(pipe):
    notes = place(pipe, recipes.CACHE, step_cache=FAMILIES["svd"].step_cache(None))
    assert "step cache: this family has none (the recipe runs as fast)" in notes


def test_the_compile_path_traces_on_the_cpu_and_keeps_the_output(pipe, folders):
    reference = frames(pipe)
    compiled = load(folders["svd"])
    recipe = replace(recipes.FAST, compile_on_cpu=True, compile_backend="eager")
    notes = place(compiled, recipe)
    assert any(n.startswith("torch.compile unet + VAE decoder eager") for n in notes)
    assert compiled.unet._compiled_call_impl is not None
    out = frames(compiled)
    assert np.abs(out - reference).max() <= recipes.FAST_MAX_ABS_DIFF_CPU
    placement.reset(compiled)
    assert compiled.unet._compiled_call_impl is None
    torch._dynamo.reset()


@pytest.mark.parametrize("name", [*recipes.RECIPES, *recipes.VARIANTS])
def test_every_recipe_applies_on_the_cpu_with_notes(pipe, name):
    recipe = recipes.get_recipe(name)
    notes = place(pipe, recipe)
    assert placement.applied_recipe(pipe).name == name
    if recipe.dtype in ("fp16", "bf16"):
        assert f"{recipe.dtype} skipped on the CPU: fp32" in notes
    if recipe.offload:
        assert f"{recipe.offload}_offload skipped: CUDA only" in notes
    if recipe.xformers:
        assert "xFormers skipped: CUDA only; PyTorch SDPA" in notes
    if recipe.compiles:
        assert "torch.compile skipped on the CPU (the recipe targets CUDA)" in notes
    assert pipe.unet.dtype == torch.float32 and pipe.device.type == "cpu"
    if name in recipes.RECIPES:  # the variants differ from theirs only in CUDA settings
        out = frames(pipe, decode_chunk_size=2)
        assert out.shape == (4, 64, 64, 3) and np.isfinite(out).all()


def test_reset_undoes_what_the_recipe_did(pipe):
    from diffusers.models.attention_processor import AttnProcessor2_0

    place(pipe, recipes.FAST)
    assert "decode_latents" in vars(pipe)
    placement.reset(pipe)
    assert placement.applied_recipe(pipe) is None
    assert "decode_latents" not in vars(pipe)
    processors = {type(p) for p in pipe.unet.attn_processors.values()}
    assert processors == {AttnProcessor2_0}
    conv = pipe.unet.conv_in.weight
    assert conv.is_contiguous()
    with pytest.raises(ValueError, match="unknown recipe 'turbo'"):
        recipes.get_recipe("turbo")


def test_a_run_gets_fast_on_a_whole_gpu_low_memory_offloaded_none_on_cpu(monkeypatch):
    monkeypatch.delenv(placement.RECIPE_ENV, raising=False)
    assert placement.recipe_for("cpu", "cpu") is None
    assert placement.recipe_for("gpu", "cpu") is None
    fast = placement.recipe_for("gpu", "cuda")
    assert fast.name == "fast" and fast.compile == "regional" and fast.channels_last
    # The placement owns dtype, device and offload; the caller owns the decode chunk.
    assert fast.dtype is None and fast.offload is None and fast.decode_chunk_size is None
    for mode in ("model_offload", "group_offload", "sequential_offload"):
        low = placement.recipe_for(mode, "cuda")
        assert low.name == "low_memory" and low.vae_tiling and low.offload is None
    monkeypatch.setenv(placement.RECIPE_ENV, "none")
    assert placement.recipe_for("gpu", "cuda") is None
    monkeypatch.setenv(placement.RECIPE_ENV, "default")
    assert placement.recipe_for("gpu", "cuda").name == "default"
    monkeypatch.setenv(placement.RECIPE_ENV, "turbo")
    with pytest.raises(ModelChoiceError, match="VIDGEN_RECIPE: unknown recipe 'turbo'"):
        placement.recipe_for("gpu", "cuda")


def test_a_runs_recipe_is_applied_once_per_mode(pipe, monkeypatch):
    monkeypatch.delenv(placement.RECIPE_ENV, raising=False)
    placement.place_for_run(pipe, "cpu", "cpu")
    assert placement.applied_recipe(pipe) is None
    # The run's bookkeeping, without a GPU: once per pipeline and mode.
    monkeypatch.setattr(
        speedups, "compile_pipeline", lambda pipe, recipe, cuda: ["compile stubbed"]
    )
    monkeypatch.setattr(placement, "_memory", lambda *args: None)  # no CUDA device to move to
    first = placement.place_for_run(pipe, "gpu", "cuda")
    assert "compile stubbed" in first and placement.applied_recipe(pipe).name == "fast"
    fused = pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_qkv
    assert placement.place_for_run(pipe, "gpu", "cuda") == first
    assert pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_qkv is fused
    # Stepping down the memory ladder swaps fast for low_memory.
    placement.place_for_run(pipe, "model_offload", "cuda")
    assert placement.applied_recipe(pipe).name == "low_memory"
    assert not hasattr(pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1, "to_qkv")
    placement.forget(pipe)


def test_reset_undoes_low_memory_on_the_svd_unet(pipe):
    place(pipe, recipes.LOW_MEMORY)
    placement.reset(pipe)  # SVD's temporal blocks take the chunk's dim as a keyword only
    assert placement.applied_recipe(pipe) is None
    assert all(getattr(m, "_chunk_size", None) is None for m in pipe.unet.modules())
