"""Real diffusers pipelines (tiny random weights, saved like hub repos) through the whole
graph: SVD with text-to-image keyframes, ModelScope T2V, AnimateDiff; loading rules, the
memory ladder, determinism and continuity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from upath import UPath

from vidgen_pipeline.core.media import probe_video
from vidgen_pipeline.core.memory import OutOfMemoryOnLastRung, run_with_ladder
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.prompts import optimize_prompts
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.storyboard import write_storyboard
from vidgen_pipeline.io_managers import FramesIOManager
from vidgen_pipeline.resources import (
    KeyframeGenerator,
    VideoGenerator,
    placement,
    runtime,
)
from vidgen_pipeline_tests.conftest import VIDGEN, checks, cli_env, metadata, run_prompt

TINY = {"width": 64, "height": 64, "fps": 4.0, "frames": 4, "steps": 2, "keyframe_steps": 2}


@pytest.fixture
def tiny(tiny_models):
    """The session's tiny pipelines (conftest)."""
    return tiny_models


@pytest.fixture(autouse=True)
def offline_hub(tmp_path, monkeypatch):
    """No network, and an empty Hugging Face cache: what this machine really has."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("VIDGEN_ALLOW_DOWNLOAD", raising=False)


def stored_clips(home: Path, key: str):
    storage = home / "storage"
    return FramesIOManager(base_path=str(storage)).load(UPath(storage) / "scene_clips" / key, None)


def test_svd_with_text_to_image_keyframes_makes_generated_footage(instance, vidgen_home, tiny):
    key, result = run_prompt(
        instance,
        "A red kite over green hills. The kite dives toward the camera.",
        defaults=TINY,
        video_model=str(tiny["svd"]),
        keyframe_model=str(tiny["sd"]),
        duration_s=3.0,
        scenes=2,
    )
    assert result.success
    assert checks(result) == {
        "matches_schema": True,
        "written_by_requested_writer": True,
        "frame_counts_as_planned": True,
        "generated_footage": True,
        "plays_in_browser": True,
        "not_blank": True,
        "not_frozen": True,
        "no_flicker": True,
        "duration_as_planned": True,
        "one_audio_track": True,  # a silent video: no audio stream at all
    }
    keyframes = metadata(result, "keyframes")
    assert keyframes["count"] == 2 and keyframes["source"] == str(tiny["sd"])
    scenes = metadata(result, "scene_clips")["scenes"]
    # 3 s at 4 fps on one frame grid, finished at 24 fps by optical-flow interpolation.
    assert [s["native_frames"] for s in scenes] == [6, 6]
    assert sum(s["frames"] for s in scenes) == 72  # the scenes' spans on the 24 fps grid
    assert {s["interpolation"] for s in scenes} == {"flow"}
    for scene in scenes:
        assert scene["pipeline"] == "StableVideoDiffusionPipeline"
        assert scene["generated"] is True and scene["dtype"] == "fp32"
        assert scene["chunks"] == 2  # 6 frames from clips of 4
        assert {"seed", "seconds", "peak_memory_mb", "memory_mode", "steps"} <= set(scene)
    facts = probe_video(Path(metadata(result, "final_video")["path"]))
    assert (facts.width, facts.height, facts.frame_count) == (64, 64, 72)
    clips = stored_clips(vidgen_home, key)
    assert [c.frames.shape[1:] for c in clips] == [(64, 64, 3)] * 2
    assert [len(c.frames) for c in clips] == [s["frames"] for s in scenes]
    assert runtime.loaded_count() == 0  # keyframe model freed after keyframes, video at teardown


def test_same_seed_same_frames_and_another_seed_other_frames(instance, vidgen_home, tiny):
    common = {"video_model": str(tiny["t2v"]), "duration_s": 1.0}
    no_cache = {"video_generator": {"config": {"scene_cache": False}}}
    key, first = run_prompt(instance, "Rain on a window.", defaults=TINY, seed=11, **common)
    frames_a = stored_clips(vidgen_home, key)[0].frames
    # Rendered again (not read from the scene cache): the model itself is deterministic.
    _, again = run_prompt(
        instance, "Rain on a window.", defaults=TINY, resource_config=no_cache, seed=11, **common
    )
    frames_b = stored_clips(vidgen_home, key)[0].frames
    assert stored_clips(vidgen_home, key)[0].info["backend"] == "diffusers"
    assert "cache" not in stored_clips(vidgen_home, key)[0].info
    _, other = run_prompt(instance, "Rain on a window.", defaults=TINY, seed=12, **common)
    frames_c = stored_clips(vidgen_home, key)[0].frames
    assert first.success and again.success and other.success
    assert np.array_equal(frames_a, frames_b)
    assert not np.array_equal(frames_a, frames_c)


def test_continuity_starts_scene_two_from_the_end_of_scene_one(instance, vidgen_home, tiny):
    settings = {
        "video_model": str(tiny["svd"]),
        "keyframe_model": str(tiny["sd"]),
        "duration_s": 2.0,
        "scenes": 2,
        "seed": 3,
    }
    key, plain = run_prompt(instance, "A fox walks. The fox sits.", defaults=TINY, **settings)
    without = stored_clips(vidgen_home, key)
    _, linked = run_prompt(
        instance,
        "A fox walks. The fox sits.",
        defaults=TINY,
        resource_config={"video_generator": {"config": {"continuity": True}}},
        **settings,
    )
    with_continuity = stored_clips(vidgen_home, key)
    assert plain.success and linked.success
    # Scene 1 is the same; scene 2 is conditioned on another image, so it differs.
    assert np.array_equal(without[0].frames, with_continuity[0].frames)
    assert not np.array_equal(without[1].frames, with_continuity[1].frames)
    assert with_continuity[1].info["conditioned_on"] == "last frame of scene 1"
    assert "conditioned_on" not in without[1].info


@pytest.mark.parametrize(
    ("model", "pipeline"),
    [("t2v", "TextToVideoSDPipeline"), ("animatediff", "AnimateDiffPipeline")],
)
def test_text_to_video_models_through_the_cli(tmp_path, tiny, model, pipeline):
    home = tmp_path / "home"
    env = {**cli_env(home), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [
            *VIDGEN,
            "generate",
            "A paper boat on a stream.",
            "--video-model",
            str(tiny[model]),
            "--width",
            "64",
            "--height",
            "64",
            "--frames",
            "4",
            "--steps",
            "2",
            "--fps",
            "4",
            "--duration",
            "2",
            "--seed",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    facts = probe_video(Path(done.stdout.strip().splitlines()[-1]))
    # 8 generated frames at 4 fps, brought to 24 fps by optical-flow interpolation.
    assert (facts.width, facts.height, facts.frame_count, facts.fps) == (64, 64, 48, 24.0)
    assert "4 -> 24 fps (flow interpolation)" in done.stderr
    assert "keyframes: none" in done.stderr
    assert "step 2/2" in done.stderr and "ETA" in done.stderr  # per-step progress
    assert f"loaded {pipeline}" in done.stderr


def test_registry_name_finds_weights_in_vidgen_home_models(instance, vidgen_home, tiny):
    shutil.copytree(tiny["svd"], vidgen_home / "models" / "svd-xt")
    _, result = run_prompt(
        instance,
        "A lighthouse.",
        defaults=TINY,
        video_model="svd-xt",
        keyframe_model=str(tiny["sd"]),
        duration_s=1.0,
    )
    assert result.success
    prompts = metadata(result, "optimized_prompts")
    assert prompts["video_model"] == "svd-xt"
    assert prompts["weights"] == str(vidgen_home / "models" / "svd-xt")


# --------------------------------------------------------------------------- bad input


def bad(tmp_path, tiny_root: Path, *args: str) -> str:
    home = tmp_path / "home"
    env = {**cli_env(home), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [*VIDGEN, "generate", "a cat", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert not (home / "storage").exists()  # refused before any run
    return lines[0]


def test_missing_component_folder_is_one_line(tmp_path, tiny):
    broken = tmp_path / "svd-no-unet"
    shutil.copytree(tiny["svd"], broken)
    shutil.rmtree(broken / "unet")
    line = bad(tmp_path, broken, "--video-model", str(broken), "--keyframe-model", str(tiny["sd"]))
    assert "lacks the component folder unet/" in line


def test_pickle_only_checkpoint_is_refused(tmp_path, tiny):
    pickled = tmp_path / "t2v-bin"
    shutil.copytree(tiny["t2v"], pickled)
    weights = pickled / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(weights), pickled / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    line = bad(tmp_path, pickled, "--video-model", str(pickled))
    assert "only pickle weights" in line and "allow_unsafe_weights" in line


def test_unknown_registry_name_lists_the_known_ones(tmp_path, tiny):
    line = bad(tmp_path, tiny["svd"], "--video-model", "svd-xxl")
    assert (
        "unknown video model 'svd-xxl'" in line
        and "svd-xt, svd, modelscope-t2v, animatediff" in line
    )


def test_absent_registry_weights_name_the_paths_and_the_fetch_command(tmp_path, tiny):
    line = bad(tmp_path, tiny["svd"], "--video-model", "modelscope-t2v")
    assert "ali-vilab/text-to-video-ms-1.7b" in line
    assert str(tmp_path / "home" / "models" / "modelscope-t2v") in line
    assert "Hugging Face cache" in line
    assert "hf download ali-vilab/text-to-video-ms-1.7b --include" in line
    assert line.endswith(f"--local-dir {tmp_path / 'home' / 'models' / 'modelscope-t2v'}")


def test_cuda_without_a_gpu_is_refused(tmp_path, tiny):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    line = bad(tmp_path, tiny["t2v"], "--video-model", str(tiny["t2v"]), "--device", "cuda")
    assert "no CUDA GPU" in line


def test_resolution_the_model_cannot_take_is_refused(tmp_path, tiny):
    line = bad(
        tmp_path, tiny["t2v"], "--video-model", str(tiny["t2v"]), "--width", "60", "--height", "64"
    )
    assert "width 60 is not a multiple of 8" in line


def test_svd_on_storyboard_cards_is_refused(tmp_path, tiny):
    line = bad(
        tmp_path, tiny["svd"], "--video-model", str(tiny["svd"]), "--keyframe-model", "cards"
    )
    assert "meaningless" in line


# ------------------------------------------------------------------------ memory ladder


def test_ladder_steps_down_and_reports_every_rung():
    applied, logs = [], []

    def attempt(mode):
        if mode != "sequential_offload":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return "frames"

    result = run_with_ladder(
        "gpu", applied.append, attempt, lambda e: isinstance(e, torch.OutOfMemoryError), logs.append
    )
    assert result == (
        "frames",
        "sequential_offload",
        ["gpu", "model_offload", "group_offload", "sequential_offload"],
    )
    assert applied == ["model_offload", "group_offload", "sequential_offload"]
    assert len(logs) == 3 and "stepping down to model_offload" in logs[0]


def test_ladder_fails_on_the_last_rung_and_never_swallows_other_errors():
    def oom(_mode):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(
        OutOfMemoryOnLastRung, match="gpu, model_offload, group_offload, sequential_offload"
    ):
        run_with_ladder(
            "gpu", lambda m: None, oom, lambda e: isinstance(e, torch.OutOfMemoryError), print
        )

    def broken(_mode):
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        run_with_ladder("gpu", lambda m: None, broken, lambda e: False, print)


def test_injected_oom_steps_down_the_ladder_in_the_video_generator(vidgen_home, tiny):
    runtime.release_all()  # a fresh placement, as in a new step process
    generator = VideoGenerator(width=64, height=64, fps=4.0, frames=4, steps=2)
    settings = GenerationSettings(video_model=str(tiny["t2v"]))
    plan = generator.plan(settings, KeyframeGenerator())
    # The ladder's rungs are device placements; on this CPU-only machine each places on the
    # CPU, but the stepping down, retry and reporting are the real code path.
    plan = plan.model_copy(update={"memory_mode": "gpu"})
    pipe, _ = generator.load(plan)
    modes: list[str] = []
    forward = pipe.unet.forward

    def small_gpu(*args, **kwargs):  # the first two UNet passes run out of memory
        modes.append(placement.placement(pipe))
        if len(modes) <= 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(*args, **kwargs)

    pipe.unet.forward = small_gpu
    scene = optimize_prompts(write_storyboard("a cat", duration_s=1.0)).scenes[0]
    logs: list[str] = []
    clip = generator.render(plan, scene, None, 4, log=logs.append)
    assert list(dict.fromkeys(modes)) == ["gpu", "model_offload", "group_offload"]
    assert clip.info["memory_mode"] == "group_offload"
    assert clip.frames.shape == (4, 64, 64, 3)
    assert sum("stepping down" in line for line in logs) == 2
    runtime.release_all()


def test_unknown_memory_settings_are_refused(tiny):
    with pytest.raises(ModelChoiceError, match="unknown memory_mode 'tiny'"):
        VideoGenerator(memory_mode="tiny").plan(
            GenerationSettings(video_model=str(tiny["t2v"])), KeyframeGenerator()
        )
