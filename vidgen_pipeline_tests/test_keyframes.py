"""The keyframe resource: its placement recipe, the sizes it can make, a safety checker's
blacked-out keyframes, and the SVD decode that fails alone on a small card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.prompts import optimize_prompts
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.storyboard import write_storyboard
from vidgen_pipeline.resources import KeyframeGenerator, VideoGenerator, placement, runtime
from vidgen_pipeline.resources.keyframes import KeyframeBlocked
from vidgen_pipeline.testing.layout import save_pipeline
from vidgen_pipeline.testing.tiny_unet_models import save_tiny_sd


@pytest.fixture(scope="module")
def flagging_sd(tmp_path_factory) -> Path:
    return save_tiny_sd_that_flags_everything(tmp_path_factory.mktemp("tiny") / "flagging")


@pytest.fixture
def tiny(tiny_models, flagging_sd):
    """The session's tiny SD and SVD (conftest), and an SD whose safety checker flags all."""
    return {"sd": tiny_models["sd"], "svd": tiny_models["svd"], "flagging_sd": flagging_sd}


def save_tiny_sd_that_flags_everything(path: Path) -> Path:
    """SD 1.5's layout with its safety checker (a tiny CLIP vision model) whose concept
    thresholds are below any similarity: every image is flagged and blacked out."""
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1},
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 16,
        },
        projection_dim=32,
    )
    checker = StableDiffusionSafetyChecker(config).eval()
    checker.concept_embeds_weights.data.fill_(-2.0)  # cosine similarity is never below -1
    plain = StableDiffusionPipeline.from_pretrained(str(save_tiny_sd(path.parent / "plain")))
    pipe = StableDiffusionPipeline(
        **{
            k: v
            for k, v in plain.components.items()
            if k not in ("safety_checker", "feature_extractor")
        },
        safety_checker=checker,
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32),
        requires_safety_checker=True,
    )
    return save_pipeline(pipe, path)


def prompts_for(plan, text="A red kite over green hills. It dives."):
    board = write_storyboard(text, duration_s=2.0, scenes=2)
    return board, optimize_prompts(board).model_copy(update={"video": plan})


def animatic_plan(keyframe_model: str, **size):
    settings = GenerationSettings(keyframe_model=keyframe_model, **size)
    return VideoGenerator(model="animatic").plan(settings, KeyframeGenerator())


def test_a_keyframe_blacked_out_by_the_safety_checker_fails_loudly(vidgen_home, tiny):
    plan = animatic_plan(str(tiny["flagging_sd"]), width=64, height=64)
    board, prompts = prompts_for(plan)
    generator = KeyframeGenerator(cache=False)
    with pytest.raises(KeyframeBlocked, match="keyframe of scene 1 was blacked out") as caught:
        generator.make(board, prompts)
    assert "nsfw_content_detected" in str(caught.value) and "\n" not in str(caught.value)
    generator.release()
    ok = animatic_plan(str(tiny["sd"]), width=64, height=64)  # no checker: two keyframes
    assert len(KeyframeGenerator(cache=False).make(*prompts_for(ok))) == 2


def test_keyframes_are_placed_without_compile(vidgen_home, tiny, monkeypatch):
    """A 2-step text-to-image model would pay minutes of torch.compile warm-up per process."""
    placed = []
    real_place = placement.place_for_run

    def spy(pipe, mode, device, setting="auto", **options):
        placed.append(setting)
        return real_place(pipe, mode, device, setting, **options)

    monkeypatch.setattr(placement, "place_for_run", spy)
    runtime.release_all()
    generator = KeyframeGenerator(cache=False)
    generator.make(*prompts_for(animatic_plan(str(tiny["sd"]), width=64, height=64)))
    generator.release()
    assert placed == ["default"]
    # What that recipe is on a whole CUDA GPU (this machine has none): no compilation.
    recipe = placement.recipe_for("gpu", "cuda", placed[0])
    assert recipe.name == "default" and not recipe.compiles
    assert placement.recipe_for("gpu", "cuda", "auto").compiles  # the video model's


def test_a_size_the_keyframe_model_cannot_make_is_refused_at_plan_time(vidgen_home, tiny):
    animatic_plan("cards", width=100, height=60)  # cards make any even size
    with pytest.raises(ModelChoiceError) as caught:
        animatic_plan(str(tiny["sd"]), width=100, height=60)
    assert "width 100 is not a multiple of 8" in str(caught.value)
    assert f"keyframe model {tiny['sd']} needs multiples of 8" in str(caught.value)


def test_an_out_of_memory_error_in_decoding_retries_the_decode_alone(vidgen_home, tiny):
    runtime.release_all()
    generator = VideoGenerator(width=64, height=64, fps=4.0, frames=4, steps=2)
    settings = GenerationSettings(video_model=str(tiny["svd"]), keyframe_model=str(tiny["sd"]))
    plan = generator.plan(settings, KeyframeGenerator())
    pipe, _ = generator.load(plan)
    unet_passes, decoded = [], []
    pipe.unet.register_forward_hook(lambda *_: unet_passes.append(1))
    forward = pipe.vae.decoder.forward

    def small_card(sample, *args, **kwargs):  # decoding two frames at once does not fit
        decoded.append(len(sample))
        if len(sample) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.80 GiB")
        return forward(sample, *args, **kwargs)

    pipe.vae.decoder.forward = small_card
    scene = optimize_prompts(write_storyboard("a kite", duration_s=1.0)).scenes[0]
    image = np.full((64, 64, 3), 128, np.uint8)
    from PIL import Image

    logs: list[str] = []
    clip = generator.render(plan, scene, Image.fromarray(image), 4, log=logs.append)
    assert clip.frames.shape == (4, 64, 64, 3)
    # Denoised once (2 steps, image guidance doubles the batch, one pass a step), decoded in
    # ones after each two-frame try ran out of memory; the memory mode stayed.
    assert len(unet_passes) == 2 and decoded.count(1) == 4 and decoded.count(2) == 2
    assert clip.info["memory_modes_tried"] == ["cpu"]
    assert sum("decoding 1 at a time" in line for line in logs) == 2
    runtime.release_all()
