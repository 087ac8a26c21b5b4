"""LTX-2 makes sound with its frames: the tiny random-weight LTX-2 (saved like a hub repo)
through planning, rendering and the whole graph, and the sound kept per scene: joined as the
frames are, stored beside them, in the scene cache, after a resume."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from dagster import build_input_context, build_output_context
from PIL import Image

from vidgen_pipeline.core.chunks import plan_chunks
from vidgen_pipeline.core.clip_audio import (
    AUDIO_FILE,
    fit_to_frames,
    join_clip_audio,
    read_wav,
    wav_bytes,
)
from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.prompts import optimize_prompts
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.scene_cache import SceneCache
from vidgen_pipeline.core.storyboard import write_storyboard
from vidgen_pipeline.families.base import FrameRule
from vidgen_pipeline.io_managers import FramesIOManager
from vidgen_pipeline.resources import KeyframeGenerator, VideoGenerator, runtime
from vidgen_pipeline_tests.conftest import metadata, run_prompt

RATE = 24000  # the vocoder's output_sampling_rate
FPS = 24.0
SIZE = {"width": 64, "height": 64, "fps": FPS, "steps": 2}  # the tiny model's smallest size
QUIET = {"log": lambda _m: None}


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch, one_thread):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    runtime.release_all()
    yield
    runtime.release_all()


@pytest.fixture
def ltx2(tiny_models):
    return tiny_models["ltx-2"]


def plan_for(folder, **resource):
    generator = VideoGenerator(**{**SIZE, "frames": 9, **resource})
    return generator, generator.plan(
        GenerationSettings(video_model=str(folder)), KeyframeGenerator()
    )


def scene(seed=5):
    board = write_storyboard("A fox barks at the snow.", duration_s=2.0)
    return optimize_prompts(board, seed=seed).scenes[0]


def noise_image(value: int) -> Image.Image:
    pixels = np.random.default_rng(value).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def assert_sound_of(clip: SceneClip) -> None:
    """Stereo at the vocoder's rate, as long as the frames, and not silence."""
    assert clip.audio_rate == RATE and clip.audio.dtype == np.float32
    assert clip.audio.shape == (round(len(clip.frames) / clip.fps * RATE), 2)
    assert np.abs(clip.audio).max() <= 1.0 and np.abs(clip.audio).max() > 0.01


# ------------------------------------------------------------------------ the family


def test_ltx2_plans_from_its_folder_with_the_2_0_guidance(ltx2, tmp_path):
    _, plan = plan_for(ltx2)
    assert (plan.family, plan.pipeline, plan.conditioning) == (
        "ltx-2",
        "LTX2Pipeline",
        "text+image",
    )
    assert (plan.image_pipeline, plan.text_pipeline) == ("LTX2ImageToVideoPipeline", "LTX2Pipeline")
    assert plan.size_multiple == 32 and FrameRule(**plan.frame_rule).describe() == "8k+1"
    assert plan.prompt_style == "sentences" and plan.languages == ["en"]
    # An LTX2Vocoder folder is LTX-2.0: the legacy cross-modality timestep, STG at block 29.
    assert plan.call_options["use_cross_timestep"] is False
    assert plan.call_options["spatio_temporal_guidance_blocks"] == [29]
    newer = tmp_path / "ltx23"
    shutil.copytree(ltx2, newer)
    index = json.loads((newer / "model_index.json").read_text())
    index["vocoder"] = ["ltx2", "LTX2VocoderWithBWE"]
    (newer / "model_index.json").write_text(json.dumps(index))
    _, later = plan_for(newer)
    assert "use_cross_timestep" not in later.call_options  # the pipeline's (2.3+) defaults


def test_ltx2_reads_whole_english_sentences_with_its_own_negative_prompt():
    from vidgen_pipeline_tests.test_prompt_readers import LONG_EN, ZH, Writer, plan_of, prompts

    _, fisherman = prompts(plan_of("ltx-2"), LONG_EN, Writer(llm=False))
    assert fisherman.prompt.startswith(LONG_EN) and not fisherman.truncated
    assert "mismatched lip sync, silent or muted audio" in fisherman.negative_prompt
    readers, panda = prompts(plan_of("ltx-2"), ZH, Writer(llm=True))
    assert panda.prompt.startswith("shot: english of 一只熊猫")  # translated, then extended
    assert readers.optimizer == "rules + llm translation + llm shot descriptions"


def test_ltx2_refuses_a_side_below_two_latent_pixels_in_one_line(ltx2):
    with pytest.raises(ModelChoiceError, match="too small for ltx-2: each side at least 64"):
        plan_for(ltx2, width=32)


def test_text_to_video_comes_with_its_sound(ltx2):
    generator, plan = plan_for(ltx2)
    clip = generator.render(plan, scene(), None, 9, **QUIET)
    again = generator.render(plan, scene(), None, 9, **QUIET)
    assert clip.frames.shape == (9, 64, 64, 3)
    assert_sound_of(clip)
    assert np.array_equal(clip.audio, again.audio)  # the seed decides the sound too
    assert clip.info["audio"] == {"rate": RATE, "channels": 2, "seconds": 0.375}


def test_image_to_video_starts_from_the_image_and_has_sound(ltx2):
    generator, plan = plan_for(ltx2)
    first = generator.render(plan, scene(), noise_image(1), 9, **QUIET)
    other = generator.render(plan, scene(), noise_image(2), 9, **QUIET)
    assert not np.array_equal(first.frames, other.frames)
    assert_sound_of(first)


def test_a_two_clip_scene_keeps_the_sound_under_the_frames_it_keeps(ltx2):
    generator, plan = plan_for(ltx2)
    alone = generator.render(plan, scene(), None, 9, **QUIET)
    joined = generator.render(plan, scene(), None, 15, **QUIET)
    assert joined.info["clip_frames"] == [9, 9]  # the second continues: 6 kept of 9
    assert_sound_of(joined)  # 15 frames: 0.625 s, 15000 samples
    # The first clip is the same call as the clip alone: its sound opens the scene.
    np.testing.assert_array_equal(joined.audio[:9000], alone.audio)


def test_an_fp16_only_ltx2_folder_loads_through_the_same_rules(tmp_path):
    """As a ``variant="fp16"`` download leaves it: the CPU's fp32 load reads those files."""
    from vidgen_pipeline.testing.tiny_ltx2 import save_tiny_ltx2

    folder = save_tiny_ltx2(tmp_path / "ltx2-fp16", precision="fp16")
    assert not list(folder.glob("transformer/*[!6].safetensors"))  # no full-precision file
    generator, plan = plan_for(folder)
    assert plan.weights_variant == "fp16" and plan.dtype == "fp32"
    assert_sound_of(generator.render(plan, scene(), None, 9, **QUIET))


# ------------------------------------------------------------------ joining, storing


def test_clips_audio_is_joined_as_their_frames_are():
    chunks = plan_chunks(15, 9, FrameRule(step=8, offset=1, minimum=9), continues=True)
    assert [(c.skip, c.keep) for c in chunks] == [(0, 9), (1, 6)]
    rate = 2400  # 100 samples a frame at 24 fps
    first = np.linspace(0, 0.5, 850, dtype=np.float32)[:, None]  # short: padded with silence
    second = -np.linspace(0, 0.5, 900, dtype=np.float32)[:, None]
    joined = join_clip_audio([(c.skip, c.keep) for c in chunks], [first, second], FPS, rate)
    assert joined.shape == (1500, 1)
    np.testing.assert_array_equal(joined[:850], first)
    assert not joined[850:900].any()
    # The second clip's first frame repeats the first clip's last: its 100 samples go with it.
    np.testing.assert_array_equal(joined[900:], second[100:700])
    # Brought to another rate, a scene's sound keeps the frames' duration.
    assert fit_to_frames(joined, 30, 48.0, rate).shape == (1500, 1)


def test_wav_keeps_the_samples_to_16_bits():
    samples = np.random.default_rng(0).uniform(-1, 1, (4800, 2)).astype(np.float32)
    back, rate = read_wav(wav_bytes(samples, RATE))
    assert rate == RATE and back.shape == samples.shape
    assert np.abs(back - samples).max() <= 0.5 / 32767 + 1e-7
    with pytest.raises(ValueError, match="not a readable WAV"):
        read_wav(b"RIFF not really")


def sounding_clip(scene_number: int, seconds: float = 0.5) -> SceneClip:
    frames = np.random.default_rng(scene_number).integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    audio = np.random.default_rng(9).uniform(-0.9, 0.9, (round(seconds * RATE), 2))
    info = {"backend": "diffusers", "generated": True}
    return SceneClip(
        scene_number, frames, FPS, info, audio=audio.astype(np.float32), audio_rate=RATE
    )


def test_the_frames_io_manager_stores_a_clips_sound_beside_its_frames(tmp_path, instance):
    manager = FramesIOManager(base_path=str(tmp_path))
    silent = SceneClip(2, sounding_clip(2).frames, FPS, {"backend": "animatic"})
    key = "p-1"
    out = build_output_context(
        asset_key=["scene_clips"], partition_key=key, run_id=str(uuid.uuid4()), instance=instance
    )
    manager.handle_output(out, [sounding_clip(1), silent])
    folder = tmp_path / "scene_clips" / key
    version = folder / json.loads((folder / "manifest.json").read_text())["version"]
    assert (version / "scene_001" / AUDIO_FILE).is_file()
    assert not (version / "scene_002" / AUDIO_FILE).exists()  # a silent clip writes none
    loaded = manager.load_input(
        build_input_context(asset_key=["scene_clips"], partition_key=key, instance=instance)
    )
    assert loaded[0].audio_rate == RATE
    assert np.abs(loaded[0].audio - sounding_clip(1).audio).max() < 1e-4
    # Silent, like every clip stored before clips kept their sound (no "audio" entry).
    assert loaded[1].audio is None and loaded[1].audio_rate is None


def test_the_scene_cache_keeps_and_restores_the_sound(tmp_path):
    cache = SceneCache(tmp_path / "cache", shared=None)
    cache.put("a" * 64, sounding_clip(1))
    cache.put("b" * 64, SceneClip(2, sounding_clip(2).frames, FPS, {"backend": "animatic"}))
    hit = cache.get("a" * 64)
    assert hit.audio.shape == (12000, 2) and hit.audio_rate == RATE
    assert np.abs(hit.audio - sounding_clip(1).audio).max() < 1e-4
    silent = cache.get("b" * 64)
    assert silent.audio is None and not (cache.folder("b" * 64) / AUDIO_FILE).exists()
    (cache.folder("a" * 64) / AUDIO_FILE).write_bytes(b"damaged")
    assert cache.get("a" * 64) is None  # damaged by hand: made again, not silent


# ------------------------------------------------------------------ CLI and the graph


def test_vidgen_models_says_ltx2_makes_sound(vidgen_home, capsys):
    from vidgen_pipeline.cli import main

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-2:] == ["sound", "weights"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["ltx-2"][-2:] == ["audio", "absent"]
    assert "~70" in rows["ltx-2"] and "text+image" in rows["ltx-2"]
    assert rows["ltx-video"][-2] == "-"  # silent families say so


def stored_scene_clips(instance, key: str) -> list[SceneClip]:
    context = build_input_context(asset_key=["scene_clips"], partition_key=key, instance=instance)
    return FramesIOManager().load_input(context)


def test_a_video_made_with_ltx2_keeps_each_scenes_sound_through_the_graph(instance, ltx2):
    settings = {"video_model": str(ltx2), "duration_s": 2.0, "scenes": 2, "seed": 3, **SIZE}
    text = "A dog barks on a beach. Waves crash."
    key, result = run_prompt(instance, text, defaults={}, **settings)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    scenes = metadata(result, "scene_clips")["scenes"]
    assert [s["audio"] for s in scenes] == [{"rate": RATE, "channels": 2, "seconds": 1.0}] * 2
    # The model's sound reaches the finished file: one AAC track as long as the picture,
    # and the WAV of the mix beside it is not silence.
    from vidgen_pipeline.core.audio import read_wav as read_mix
    from vidgen_pipeline.core.media import probe_video
    from vidgen_pipeline.core.sound import probe_audio

    mp4 = Path(metadata(result, "final_video")["path"])
    picture, sound = probe_video(mp4), probe_audio(mp4)
    assert sound.codecs == ["aac"] and abs(sound.duration_s - picture.duration_s) <= 1 / 24
    mix, _rate = read_mix(mp4.with_suffix(".wav"))
    assert np.sqrt(np.mean(np.square(mix))) > 1e-3
    clips = stored_scene_clips(instance, key)
    for clip in clips:  # 1 s each at 24 fps: 24 frames and 24000 samples
        assert len(clip.frames) == 24
        assert_sound_of(clip)
    # A second run finds the scenes in the scene cache, sound and all.
    _, again = run_prompt(instance, text, defaults={}, **settings)
    assert again.success
    assert [s["cache"] for s in metadata(again, "scene_clips")["scenes"]] == ["reused"] * 2
    for before, after in zip(clips, stored_scene_clips(instance, key), strict=True):
        np.testing.assert_array_equal(after.audio, before.audio)
