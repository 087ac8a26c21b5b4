"""The asset graph end to end, in-process, in a real Dagster instance in a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidgen_pipeline.core.media import probe_video
from vidgen_pipeline.definitions import defs
from vidgen_pipeline.resources import PromptStoreResource
from vidgen_pipeline_tests.conftest import checks, dataset, metadata, run_prompt

ASSETS = ["prompt", "script", "optimized_prompts", "keyframes", "scene_clips", "final_video"]


def test_english_prompt_makes_every_asset_and_a_video_of_planned_length(instance, vidgen_home):
    key, result = run_prompt(
        instance,
        "A lighthouse stands in a storm. Waves crash on the rocks. The camera pans left.",
        scenes=3,
    )
    assert result.success
    assert [
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
    ] == ASSETS
    final = metadata(result, "final_video")
    path = Path(final["path"])
    assert path.is_absolute() and path.is_relative_to(vidgen_home)
    facts = probe_video(path)
    assert (facts.codec, facts.pix_fmt, facts.faststart) == ("h264", "yuv420p", True)
    assert (facts.width, facts.height) == (128, 72)
    assert abs(facts.duration_s - 3.0) <= 1 / 8
    assert facts.frame_count == 24
    assert checks(result) == {
        "matches_schema": True,
        "written_by_requested_writer": True,
        "frame_counts_as_planned": True,
        "generated_footage": False,  # animatic clips are flagged, never passed off as footage
        "plays_in_browser": True,
        "not_blank": True,
        "not_frozen": True,
        "no_flicker": True,
        "duration_as_planned": True,
        "one_audio_track": True,  # a silent video: no audio stream at all
    }
    clips = metadata(result, "scene_clips")
    assert clips["backend"] == "animatic"
    assert [s["generated"] for s in clips["scenes"]] == [False, False, False]
    assert metadata(result, "optimized_prompts")["video_model_reason"].startswith("auto:")
    assert final["poster"].startswith("![poster](data:image/jpeg;base64,")
    assert [s["camera"] for s in clips["scenes"]][2] == "pan left"


def test_chinese_prompt_keeps_its_text_and_renders(instance):
    text = "一只熊猫在竹林里吃竹子。镜头缓缓推近。熊猫抬头看向镜头。"
    key, result = run_prompt(instance, text)
    assert result.success
    assert key.startswith("prompt-")
    stored = PromptStoreResource().store().get(key)
    assert stored.text == text
    script = metadata(result, "script")
    assert script["language"] == "zh" and script["scenes"] == 3


def test_vbench_chinese_prompts_run_through_the_graph(instance):
    lines = dataset("vbench_all_dimension_zh.txt").read_text(encoding="utf-8").splitlines()
    for text in [lines[0], lines[len(lines) // 2]]:
        _, result = run_prompt(instance, text, duration_s=2.0)
        assert result.success, text
        assert checks(result)["duration_as_planned"]


def test_rerun_replaces_the_video_atomically_and_keeps_two_frames_versions(instance, vidgen_home):
    key, first = run_prompt(instance, "A paper boat drifts down a rainy street.", seed=1)
    path = Path(metadata(first, "final_video")["path"])
    _, second = run_prompt(instance, "A paper boat drifts down a rainy street.", seed=1)
    assert second.success and Path(metadata(second, "final_video")["path"]) == path
    clips_dir = vidgen_home / "storage" / "scene_clips" / key
    versions = [p.name for p in clips_dir.iterdir() if p.name.startswith("v-")]
    manifest = json.loads((clips_dir / "manifest.json").read_text())
    assert len(versions) == 2 and manifest["version"] in versions  # current and previous
    leftovers = [p for p in (vidgen_home / "storage").rglob("*.tmp")]
    assert leftovers == []


@pytest.mark.parametrize(
    "hostile",
    ["../../etc/passwd", "a/b\\c \"quoted\" 'x' 🎬🔥 " * 3, "..", "x" * 10_000],
)
def test_hostile_prompt_text_never_reaches_a_path(instance, vidgen_home, hostile):
    key, result = run_prompt(instance, hostile, duration_s=1.0)
    assert result.success
    storage = (vidgen_home / "storage").resolve()
    for item in storage.rglob("*"):
        assert item.resolve().is_relative_to(storage)
        assert len(item.name) <= 100
    assert PromptStoreResource().store().get(key).text == hostile.strip()


def test_partition_added_by_hand_in_the_ui_uses_its_key_as_the_prompt(instance, vidgen_home):
    raw_key = "a heron fishing at dusk / ../../x"
    instance.add_dynamic_partitions("prompts", [raw_key])
    result = defs.resolve_job_def("generate_video").execute_in_process(
        instance=instance,
        partition_key=raw_key,
        raise_on_error=False,
        run_config={
            "resources": {"video_generator": {"config": {"width": 96, "height": 64, "fps": 4.0}}}
        },
    )
    assert result.success
    assert metadata(result, "prompt")["characters"] == len(raw_key)
    final = Path(metadata(result, "final_video")["path"])
    assert final.resolve().is_relative_to((vidgen_home / "storage").resolve())


def test_unavailable_model_fails_the_run_with_its_reason(instance):
    _, result = run_prompt(instance, "A cat.", video_model="svd-xt")
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and failures[0].step_key == "optimized_prompts"
    assert "svd-xt" in failures[0].event_specific_data.error.to_string()


def test_storage_can_be_any_fsspec_url(instance, monkeypatch):
    import fsspec

    monkeypatch.setenv("VIDGEN_STORAGE", "memory://vidgen-test-store")
    key, result = run_prompt(instance, "A windmill turns slowly.", duration_s=1.0)
    assert result.success
    files = fsspec.filesystem("memory").find("/vidgen-test-store")
    assert f"/vidgen-test-store/final_video/{key}.mp4" in files
    assert any(f.endswith("/clip.mp4") for f in files)
    fsspec.filesystem("memory").rm("/vidgen-test-store", recursive=True)
