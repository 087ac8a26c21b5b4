"""LoRAs on the video model: parsed, found (safetensors only), loaded through diffusers'
load_lora_weights, part of the scene cache key and provenance; a few-step Wan entry with its
distilled LoRA and its step range."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from vidgen_pipeline.core.loras import parse_lora, resolve_lora
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.prompts import optimize_prompts
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.scene_cache import scene_key
from vidgen_pipeline.core.storyboard import write_storyboard
from vidgen_pipeline.core.weights import WeightsError
from vidgen_pipeline.families.registry import VIDEO_MODELS
from vidgen_pipeline.resources import KeyframeGenerator, VideoGenerator, runtime
from vidgen_pipeline.testing.tiny_lora import save_tiny_lora

SIZE = {"width": 32, "height": 32, "fps": 8.0, "steps": 2}


@pytest.fixture
def wan(tiny_models):
    return tiny_models["wan2.1-t2v"]


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("loras")


@pytest.fixture
def lora(wan, lora_dir):
    file = lora_dir / "one" / "pytorch_lora_weights.safetensors"
    return file if file.exists() else save_tiny_lora(wan, lora_dir / "one")


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch, one_thread):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    runtime.release_all()
    yield
    runtime.release_all()


def scene(seed=4):
    return optimize_prompts(write_storyboard("A fox in snow.", duration_s=1.0), seed=seed).scenes[0]


def plan_with(wan, **settings):
    generator = VideoGenerator(**SIZE)
    return generator, generator.plan(
        GenerationSettings(video_model=str(wan), **settings), KeyframeGenerator()
    )


def test_names_and_scales_parse():
    assert parse_lora("style.safetensors:0.6") == ("style.safetensors", 0.6)
    assert parse_lora("org/name") == ("org/name", 1.0)
    assert parse_lora("org/name/sub/file.safetensors:-0.5") == (
        "org/name/sub/file.safetensors",
        -0.5,
    )
    assert parse_lora(r"C:\loras\x.safetensors") == (r"C:\loras\x.safetensors", 1.0)
    with pytest.raises(WeightsError, match="not a number"):
        parse_lora("x.safetensors:nan")


def test_a_lora_changes_the_frames_and_the_scene_cache_key(wan, lora):
    generator, plain = plan_with(wan)
    _, styled = plan_with(wan, lora=[f"{lora}:0.8"])
    assert styled.loras == [
        {
            "given": f"{lora}:0.8",
            "path": str(lora),
            "scale": 0.8,
            "source": "local file",
            "revision": styled.loras[0]["revision"],
        }
    ]
    first = generator.render(plain, scene(), None, 9, log=lambda _m: None)
    logs: list[str] = []
    with_lora = generator.render(styled, scene(), None, 9, log=logs.append)
    again = generator.render(plain, scene(), None, 9, log=lambda _m: None)  # unloaded again
    assert not np.array_equal(first.frames, with_lora.frames)
    assert np.array_equal(first.frames, again.frames)
    assert with_lora.info["loras"] == [{"path": str(lora), "scale": 0.8}]
    assert "LoRAs: pytorch_lora_weights.safetensors x0.8" in logs
    keys = {
        scene_key(p.model_dump(mode="json"), scene().model_dump(mode="json"), 9, None, "r", {})
        for p in (plain, styled)
    }
    assert len(keys) == 2


def test_missing_and_pickle_loras_are_one_line(wan, lora, tmp_path):
    with pytest.raises(ModelChoiceError) as missing:
        plan_with(wan, lora=["someone/wan-style"])
    line = str(missing.value)
    assert "has no weights here" not in line and "is not here" in line
    assert "hf download someone/wan-style pytorch_lora_weights.safetensors" in line
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    torch.save({"w": torch.zeros(1)}, pickled / "lora.bin")
    with pytest.raises(ModelChoiceError, match="is a pickle file, which runs code when loaded"):
        plan_with(wan, lora=[str(pickled)])
    with pytest.raises(WeightsError, match="not a hub id"):
        resolve_lora(str(tmp_path / "nowhere.safetensors"))


def test_a_resource_default_lora_and_the_prompts_own(wan, lora, lora_dir):
    other = save_tiny_lora(wan, lora_dir / "two", seed=9)
    generator = VideoGenerator(**SIZE, loras=[str(lora)])
    own = generator.plan(
        GenerationSettings(video_model=str(wan), lora=[str(other)]), KeyframeGenerator()
    )
    default = generator.plan(GenerationSettings(video_model=str(wan)), KeyframeGenerator())
    assert [entry["path"] for entry in own.loras] == [str(other)]
    assert [entry["path"] for entry in default.loras] == [str(lora)]


def test_few_step_wan_runs_its_distilled_lora_in_its_step_range(wan, lora, vidgen_home):
    entry = VIDEO_MODELS["wan2.1-t2v-14b-lightx2v"]
    shutil.copytree(wan, vidgen_home / "models" / entry.base)  # a tiny stand-in for the base
    home_lora = vidgen_home / "models" / entry.name / entry.lora.filename
    home_lora.parent.mkdir(parents=True)
    shutil.copy(lora, home_lora)
    generator = VideoGenerator(**{**SIZE, "steps": 0})
    plan = generator.plan(GenerationSettings(video_model=entry.name), KeyframeGenerator())
    assert plan.steps == 4 and plan.call_options["guidance_scale"] == 1.0
    assert plan.loras[0]["path"] == str(home_lora)
    assert plan.loras[0]["source"] == "VIDGEN_HOME/models"
    clip = generator.render(plan, scene(), None, 9, log=lambda _m: None)
    assert clip.frames.shape == (9, 32, 32, 3) and clip.info["steps"] == 4
    for steps in (2, 12):
        with pytest.raises(ModelChoiceError, match=rf"steps {steps} is outside 4\.\.8"):
            generator.plan(
                GenerationSettings(video_model=entry.name, steps=steps), KeyframeGenerator()
            )
