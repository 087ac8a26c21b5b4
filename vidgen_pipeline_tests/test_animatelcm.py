"""The few-step model ``animatelcm-svd-xt``: AnimateLCM-SVD-xt's distilled UNet on the SVD-XT
base, with its own scheduler and no guidance. Tiny random-weight SVD and a tiny replacement
UNet file, laid out where a user puts the real ones (``VIDGEN_HOME/models/<name>/``)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from vidgen_pipeline.core.animatelcm_scheduler import AnimateLCMSVDStochasticIterativeScheduler
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.prompts import optimize_prompts
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.storyboard import write_storyboard
from vidgen_pipeline.families.base import ClipRequest
from vidgen_pipeline.families.registry import FAMILIES, VIDEO_MODELS
from vidgen_pipeline.resources import KeyframeGenerator, VideoGenerator, placement, runtime
from vidgen_pipeline.testing.tiny_unet_models import (
    save_tiny_replacement_unet,
)

NAME = "animatelcm-svd-xt"
SPEC = VIDEO_MODELS[NAME]
FILE = "AnimateLCM-SVD-xt.safetensors"
SIZE = {"width": 64, "height": 64, "fps": 4.0, "frames": 4}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_models) -> dict[str, Path]:
    """The session's tiny SVD and SD (conftest), and a replacement UNet for that SVD."""
    root = tmp_path_factory.mktemp("tiny")
    svd = tiny_models["svd"]
    return {
        "svd": svd,
        "sd": tiny_models["sd"],
        "unet": save_tiny_replacement_unet(svd, root / "lcm" / FILE, seed=1),
    }


@pytest.fixture
def home(tmp_path, monkeypatch, tiny) -> Path:
    """VIDGEN_HOME with svd-xt's folder and no UNet file yet; no network, an empty hub cache."""
    home = tmp_path / "home"
    shutil.copytree(tiny["svd"], home / "models" / "svd-xt")
    monkeypatch.setenv("VIDGEN_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("VIDGEN_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.delenv(placement.RECIPE_ENV, raising=False)
    runtime.release_all()
    yield home
    runtime.release_all()


def with_unet(home: Path, tiny) -> Path:
    dest = home / "models" / NAME / FILE
    dest.parent.mkdir(parents=True)
    shutil.copy(tiny["unet"], dest)
    return dest


def plan_for(tiny, generator=None, **settings):
    generator = generator or VideoGenerator(**SIZE)
    request = GenerationSettings(video_model=NAME, keyframe_model=str(tiny["sd"]), **settings)
    return generator.plan(request, KeyframeGenerator())


def scene(seed: int):
    first = optimize_prompts(write_storyboard("a red fox in the snow", duration_s=1.0)).scenes[0]
    return first.model_copy(update={"seed": seed})


KEYFRAME = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))


def test_plan_takes_the_unet_from_vidgen_home_its_scheduler_four_steps_no_guidance(home, tiny):
    unet = with_unet(home, tiny)
    plan = plan_for(tiny)
    assert plan.model == NAME and plan.pipeline == "StableVideoDiffusionPipeline"
    assert plan.weights_path == str(home / "models" / "svd-xt")  # the base is svd-xt's folder
    assert plan.unet_weights_path == str(unet)
    assert plan.unet_weights_source == "VIDGEN_HOME/models"
    assert plan.unet_weights_revision.startswith("files:")  # a replaced file is a new cache key
    assert plan.scheduler == "AnimateLCMSVDStochasticIterativeScheduler"
    assert plan.scheduler_config["sigma_max"] == 700.0 and plan.scheduler_config["sigma_data"] == 1
    assert plan.steps == 4 and SPEC.unet.steps == (4, 8)
    guidance = (plan.call_options["min_guidance_scale"], plan.call_options["max_guidance_scale"])
    assert guidance == (1.0, 1.0)
    # A file named by the resource's unet_weights wins over VIDGEN_HOME/models.
    local = plan_for(tiny, VideoGenerator(unet_weights=str(tiny["unet"]), **SIZE), steps=8)
    assert (
        local.unet_weights_path == str(tiny["unet"]) and local.unet_weights_source == "local file"
    )
    assert local.steps == 8


def test_steps_outside_the_distilled_range_are_refused(home, tiny):
    with_unet(home, tiny)
    for steps in (3, 9, 25):
        with pytest.raises(ModelChoiceError, match=rf"steps {steps} is outside 4\.\.8"):
            plan_for(tiny, steps=steps)


def test_missing_unet_file_is_one_line_with_the_paths_and_the_fetch_command(home, tiny):
    with pytest.raises(ModelChoiceError) as caught:
        plan_for(tiny)
    line = str(caught.value)
    assert "\n" not in line
    assert str(home / "models" / NAME / FILE) in line and "Hugging Face cache" in line
    assert line.endswith(
        f"Fetch it with: hf download wangfuyun/AnimateLCM-SVD-xt {FILE} "
        f"--local-dir {home / 'models' / NAME}"
    )
    # A missing base names svd-xt's folder and its fetch command.
    shutil.rmtree(home / "models" / "svd-xt")
    with pytest.raises(ModelChoiceError) as caught:
        plan_for(tiny)
    line = str(caught.value)
    assert "\n" not in line and line.startswith(f"{NAME} runs on svd-xt's pipeline")
    assert f"--local-dir {home / 'models' / 'svd-xt'}" in line
    # Only safetensors: a pickle file named by the setting is refused.
    pickle = home / "unet.bin"
    pickle.write_bytes(b"not read")
    shutil.copytree(tiny["svd"], home / "models" / "svd-xt")
    with pytest.raises(ModelChoiceError, match=r"unet\.bin is not a \.safetensors file"):
        plan_for(tiny, VideoGenerator(unet_weights=str(pickle), **SIZE))


def test_render_runs_the_distilled_unet_once_a_step_and_the_seed_decides_the_frames(home, tiny):
    unet_file = with_unet(home, tiny)
    generator = VideoGenerator(**SIZE)
    plan = plan_for(tiny, generator)
    pipe, _ = generator.load(plan, log=lambda line: None)
    assert isinstance(pipe.scheduler, AnimateLCMSVDStochasticIterativeScheduler)
    assert pipe.scheduler.config.sigma_max == 700.0 and not pipe.scheduler.config.clip_denoised
    state = load_file(str(unet_file))
    assert all(torch.equal(value, state[key]) for key, value in pipe.unet.state_dict().items())
    base = load_file(
        str(home / "models" / "svd-xt" / "unet" / "diffusion_pytorch_model.safetensors")
    )
    assert not torch.equal(pipe.unet.conv_in.weight, base["conv_in.weight"])

    batches: list[int] = []
    hook = pipe.unet.register_forward_hook(lambda m, args, out: batches.append(args[0].shape[0]))
    try:
        logs: list[str] = []
        clip = generator.render(plan, scene(11), KEYFRAME, 4, log=logs.append)
        assert batches == [1, 1, 1, 1]  # 4 steps, one pass each: no classifier-free guidance
        assert "step 4/4" in logs[-1]
        again = generator.render(plan, scene(11), KEYFRAME, 4, log=logs.append)
        other = generator.render(plan, scene(12), KEYFRAME, 4, log=logs.append)
    finally:
        hook.remove()
    assert clip.frames.shape == (4, 64, 64, 3)
    assert np.array_equal(clip.frames, again.frames)
    assert not np.array_equal(clip.frames, other.frames)
    info = clip.info
    assert info["unet_weights"] == str(unet_file) and info["guidance"] == [1.0, 1.0]
    assert info["scheduler"] == "AnimateLCMSVDStochasticIterativeScheduler"
    assert info["steps"] == 4 and info["recipe"] is None  # no speed recipe on the CPU
    assert runtime.LOAD_COUNTS[plan.weights_path] >= 1


def test_a_unet_file_that_does_not_fit_is_one_line(home, tiny, tmp_path):
    state = load_file(str(tiny["unet"]))
    state.pop("conv_in.bias")
    state["conv_out.weight"] = torch.zeros(4, 32, 1, 1)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad))
    generator = VideoGenerator(unet_weights=str(bad), **SIZE)
    plan = plan_for(tiny, generator)
    with pytest.raises(ModelChoiceError) as caught:
        generator.load(plan, log=lambda line: None)
    line = str(caught.value)
    assert "\n" not in line and "does not fit the UNetSpatioTemporalConditionModel" in line
    assert "1 keys missing (e.g. conv_in.bias)" in line and "conv_out.weight: (4, 32, 1, 1)" in line


def test_scheduler_step_matches_the_formulas_by_hand():
    config = dict(SPEC.unet.scheduler_config)
    scheduler = AnimateLCMSVDStochasticIterativeScheduler(**config)
    assert scheduler.init_noise_sigma == pytest.approx(math.sqrt(700.0**2 + 1))
    scheduler.set_timesteps(4)

    def karras(ramp, lo=0.002, hi=700.0, rho=7.0):
        return (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho

    sigmas = [karras(k * 10 / 39) for k in range(4)]  # 40 // 4 = 10 train steps apart
    assert scheduler.sigmas.tolist() == pytest.approx([*sigmas, 0.0], rel=1e-6)
    assert sigmas[0] == pytest.approx(700.0)
    assert scheduler.timesteps.tolist() == pytest.approx([0.25 * math.log(s) for s in sigmas])

    x = torch.linspace(-2, 2, 24, dtype=torch.float64).reshape(1, 2, 3, 4).float()
    out = torch.linspace(1, -1, 24, dtype=torch.float64).reshape(1, 2, 3, 4).float()
    results = []
    for i, t in enumerate(scheduler.timesteps):
        sigma, following = sigmas[i], ([*sigmas, 0.0])[i + 1]
        scaled = scheduler.scale_model_input(x, t)
        assert torch.allclose(scaled, x / math.sqrt(sigma**2 + 1))
        scheduler.generator = torch.Generator().manual_seed(100 + i)
        got = scheduler.step(out, t, x).prev_sample
        c_skip = 1 / (sigma**2 + 1)
        c_out = -sigma / math.sqrt(sigma**2 + 1)
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(100 + i))
        expected = c_skip * x + c_out * out + (z * following if following else 0)
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), i
        results.append(got)
    # The last step adds no noise: the denoised sample itself.
    last = sigmas[-1]
    assert torch.allclose(results[-1], x / (last**2 + 1) - last / math.sqrt(last**2 + 1) * out)
    # A generator passed to step wins over the scheduler's own.
    scheduler.set_timesteps(4)
    scheduler.generator = torch.Generator().manual_seed(5)
    t0 = scheduler.timesteps[0]
    a = scheduler.step(out, t0, x, generator=torch.Generator().manual_seed(6)).prev_sample
    scheduler.set_timesteps(4)
    b = scheduler.step(out, t0, x, generator=torch.Generator().manual_seed(6)).prev_sample
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="outside 1..40"):
        scheduler.set_timesteps(41)


class FakeSVD:
    """A pipeline object with the ported scheduler, as the loaded SVD pipeline has."""

    def __init__(self):
        self.scheduler = AnimateLCMSVDStochasticIterativeScheduler()


def test_call_passes_guidance_the_scheduler_generator_and_the_decode_chunk(home, tiny):
    with_unet(home, tiny)
    generator = VideoGenerator(**SIZE)
    plan = plan_for(tiny, generator).model_copy(update={"frames_per_clip": 25})
    svd = FAMILIES["svd"]
    chunk = svd.decode_chunk(plan, "cpu", None)
    kwargs = svd.call_arguments(plan, scene(3), ClipRequest(25, 3, KEYFRAME, decode_chunk=chunk))
    assert (kwargs["min_guidance_scale"], kwargs["max_guidance_scale"]) == (1.0, 1.0)
    fake, seeded = FakeSVD(), torch.Generator().manual_seed(3)
    svd.bind_generator(fake, seeded)
    assert fake.scheduler.generator is seeded  # one seeded stream
    assert kwargs["decode_chunk_size"] == 2 and kwargs["num_inference_steps"] == 4
    assert svd.decode_chunk(plan, "gpu", None) == 8  # a whole "gpu" placement on the CPU
    cuda = plan.model_copy(update={"device": "cuda"})
    assert svd.decode_chunk(cuda, "gpu", 80 * 2**30) == 25  # the whole clip in one decode
    assert svd.decode_chunk(cuda, "model_offload", 80 * 2**30) == 2
    # What fits: 1024x576 in fp16 needs about 0.9 GB per decoded frame.
    big = cuda.model_copy(update={"width": 1024, "height": 576, "dtype": "fp16"})
    assert svd.decode_chunk(big, "gpu", 4 * 2**30) == 3
    assert svd.decode_chunk(big, "gpu", 0.5 * 2**30) == 1


def test_recipe_setting_and_its_env_override(home, tiny, monkeypatch):
    with_unet(home, tiny)
    with pytest.raises(ModelChoiceError, match="recipe: unknown recipe 'turbo'"):
        plan_for(tiny, VideoGenerator(recipe="turbo", **SIZE))
    assert placement.recipe_for("gpu", "cuda", "default").name == "default"
    assert placement.recipe_for("gpu", "cuda", "none") is None
    assert placement.recipe_for("gpu", "cpu", "fast") is None
    monkeypatch.setenv(placement.RECIPE_ENV, "low_memory")
    assert placement.recipe_for("gpu", "cuda", "default").name == "low_memory"
    assert VideoGenerator(recipe="fast").output_settings()["recipe"] == "fast"
