"""Finishing in the graph: interpolation to the output rate, crossfades and fades with the
storyboard's exact frame count, CRF/bitrate, WebVTT, previews in the metadata, and the
quality checks catching black, frozen and flickering clips."""

from __future__ import annotations

import base64
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.finishing.inputs import FinishingError
from vidgen_pipeline.core.finishing.plan import plan_finishing
from vidgen_pipeline.core.media import probe_video, read_frames
from vidgen_pipeline.resources import VideoGenerator
from vidgen_pipeline_tests.conftest import VIDGEN, cli_env, metadata, run_prompt

SMALL = {"width": 128, "height": 72, "fps": 8.0}
TEXT = "A kite over a beach. A dog runs after it. The sun sets."


def evaluations(result, asset):
    return {
        e.check_name: e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.to_user_string() == asset
    }


def test_crossfade_and_fades_keep_the_storyboard_frame_count(instance, vidgen_home):
    _, result = run_prompt(
        instance,
        TEXT,
        defaults=SMALL,
        duration_s=3.0,
        scenes=3,
        output_fps=24.0,
        transition="crossfade",
        transition_s=0.5,
        fade_s=0.25,
    )
    assert result.success
    final = metadata(result, "final_video")
    frames = list(read_frames(Path(final["path"])))
    assert len(frames) == 72 == final["frames"]  # 3 s at 24 fps, dissolves included
    assert (final["fps"], final["clip_fps"], final["interpolation"]) == (24.0, 8.0, "flow")
    # The fades start and end on black.
    assert frames[0].mean() < 2 and frames[-1].mean() < 2 and frames[36].mean() > 10
    # Scene clips carry the dissolve handles: 0.5 s split around each cut, rendered at 8 fps
    # (4 frames) and finished at 24 fps (12 frames) while the next scene renders.
    clips = metadata(result, "scene_clips")
    assert [s["native_frames"] for s in clips["scenes"]] == [8 + 2, 8 + 2 + 2, 8 + 2]
    assert [s["frames"] for s in clips["scenes"]] == [24 + 6, 24 + 12, 24 + 6]
    assert {s["native_fps"] for s in clips["scenes"]} == {8.0}
    checks = evaluations(result, "final_video")
    assert checks["duration_as_planned"].passed
    assert checks["duration_as_planned"].metadata["planned_frames"].value == 72


def test_webvtt_sidecar_and_previews_in_the_metadata(instance, vidgen_home):
    _, result = run_prompt(instance, TEXT, defaults=SMALL, duration_s=3.0, scenes=3, crf=30)
    assert result.success
    final = metadata(result, "final_video")
    vtt = Path(final["subtitles"]).read_text()
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == 3
    assert "00:00:01.000 --> 00:00:02.000\nA dog runs after it." in vtt
    assert final["rate_control"] == "crf 30"
    for name, kind in (("poster", "jpeg"), ("preview", "webp"), ("scenes", "jpeg")):
        match = re.fullmatch(
            rf"!\[\w+\]\(data:image/{kind};base64,([A-Za-z0-9+/=]+)\)", final[name]
        )
        assert match, name
        assert len(final[name]) < 160_000
        image = Image.open(io.BytesIO(base64.b64decode(match.group(1))))
        assert image.width <= 480
    preview = Image.open(io.BytesIO(base64.b64decode(final["preview"].split(",", 1)[1][:-1])))
    assert getattr(preview, "n_frames", 1) > 4  # animated
    assert set(final["quality"]) >= {"mean_luma", "flicker_score", "still_share"}


def test_a_good_clip_passes_every_quality_check(instance, vidgen_home):
    _, result = run_prompt(instance, TEXT, defaults=SMALL, duration_s=3.0, scenes=3)
    assert result.success
    for asset in ("scene_clips", "final_video"):
        checks = evaluations(result, asset)
        for name in ("not_blank", "not_frozen", "no_flicker"):
            assert checks[name].passed, (asset, name, checks[name].description)
            assert checks[name].metadata, (asset, name)


class _Broken(VideoGenerator):
    """A video generator whose clips go wrong in one known way (the check must see it)."""

    fault: str = "black"

    def render(self, plan, scene, image, frame_count, log=print, continuing=False) -> SceneClip:
        rng = np.random.default_rng(scene.scene_number)
        base = rng.integers(40, 200, (plan.height, plan.width, 3), dtype=np.uint8)
        if self.fault == "black":
            frames = np.zeros((frame_count, plan.height, plan.width, 3), np.uint8)
        elif self.fault == "frozen":
            frames = np.repeat(base[None], frame_count, axis=0)
        else:  # flicker: every other frame much darker, texture moving
            frames = np.stack(
                [np.roll(base, i, axis=1) // (3 if i % 2 else 1) for i in range(frame_count)]
            ).astype(np.uint8)
        return SceneClip(
            scene.scene_number, frames, plan.fps, {"backend": "test", "generated": True}
        )


@pytest.mark.parametrize(
    ("fault", "check", "figure"),
    [
        ("black", "not_blank", "mean_luma"),
        ("frozen", "not_frozen", "still_share"),
        ("flicker", "no_flicker", "flicker_score"),
    ],
)
def test_quality_checks_catch_a_broken_clip(instance, vidgen_home, fault, check, figure):
    _, result = run_prompt(
        instance,
        TEXT,
        defaults=SMALL,
        duration_s=2.0,
        scenes=2,
        video_model="animatic",
        output_fps=8.0,
        resources={"video_generator": _Broken(fault=fault, scene_cache=False)},
    )
    for asset in ("scene_clips", "final_video"):
        evaluation = evaluations(result, asset)[check]
        assert not evaluation.passed, (asset, fault)
        assert evaluation.description and fault[:5] in evaluation.description.replace(
            "flickers", "flicker"
        )
        figures = next(iter(evaluation.metadata.values())).value
        assert figure in figures
    others = {"not_blank", "not_frozen", "no_flicker"} - {check}
    if fault != "black":  # a black clip is also frozen; the others are only what they are
        for name in others:
            assert evaluations(result, "scene_clips")[name].passed, (fault, name)


def test_finishing_plan_refuses_or_clamps_what_cannot_work():
    plan = plan_finishing([2.0, 0.5, 2.0], 8.0, True, transition="crossfade", transition_s=3.0)
    assert plan.transition_s == 0.5 and "crossfade shortened" in plan.notes[0]
    assert plan.output_fps == 24.0 and plan.interpolation == "flow"
    assert plan_finishing([2.0], 24.0, False).interpolation is None  # nothing to add
    assert plan_finishing([2.0], 8.0, True, interpolate=2).output_fps == 16.0
    assert plan_finishing([2.0], 8.0, True, interpolate=1).interpolation is None
    for bad in (
        {"interpolate": 0},
        {"interpolate": 10},
        {"transition": "wipe"},
        {"transition_s": -1.0, "transition": "crossfade"},
        {"crf": 60},
        {"bitrate": "fast"},
    ):
        with pytest.raises(FinishingError):
            plan_finishing([2.0, 2.0], 8.0, True, **bad)


def vidgen(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*VIDGEN, "generate", TEXT, "--duration", "3", "--width", "128", "--height", "72", *args],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interpolate", "0"], "--interpolate"),
        (["--interpolate", "10"], "--interpolate"),
        (["--transition-seconds", "-1"], "cannot be negative"),
        (["--transition", "wipe"], "--transition"),
        (["--crf", "99"], "--crf"),
        (["--bitrate", "fast"], "bitrate"),
    ],
)
def test_cli_refuses_bad_finishing_options_in_one_line(tmp_path, args, message):
    done = vidgen(tmp_path / "home", *args)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_cli_interpolates_with_a_bitrate_and_clamps_a_long_crossfade(tmp_path):
    done = vidgen(
        tmp_path / "home",
        "--fps",
        "6",
        "--interpolate",
        "4",
        "--transition",
        "crossfade",
        "--transition-seconds",
        "5",
        "--bitrate",
        "800k",
        "--scenes",
        "3",
    )
    assert done.returncode == 0, done.stderr
    assert "crossfade shortened from 5 s to 1 s" in done.stderr
    facts = probe_video(Path(done.stdout.split()[-1]))
    assert (facts.fps, facts.frame_count, facts.codec, facts.faststart) == (24.0, 72, "h264", True)


class _Waiting(VideoGenerator):
    """Says when scene 2's render starts (scene 1's finishing waits for that: it can only
    see it if finishing runs beside rendering, not after it)."""

    def render(self, plan, scene, image, frame_count, log=print, continuing=False) -> SceneClip:
        if scene.scene_number == 2:
            OVERLAP["scene_2_rendering"].set()
        rng = np.random.default_rng(scene.scene_number)
        base = rng.integers(0, 255, (plan.height, plan.width, 3), dtype=np.uint8)
        frames = np.stack([np.roll(base, 2 * i, axis=1) for i in range(frame_count)])
        return SceneClip(
            scene.scene_number, frames, plan.fps, {"backend": "test", "generated": True}
        )


OVERLAP: dict = {}


def test_scene_n_is_finished_while_scene_n_plus_1_renders(instance, vidgen_home, monkeypatch):
    import threading

    from vidgen_pipeline.assets import scene_schedule

    OVERLAP.clear()
    OVERLAP["scene_2_rendering"] = threading.Event()
    original = scene_schedule.finish_scene

    def finish(clip, *args, **kwargs):
        if clip.scene_number == 1:  # sequential code would wait here in vain, then say so
            OVERLAP["seen"] = OVERLAP["scene_2_rendering"].wait(timeout=60)
        return original(clip, *args, **kwargs)

    monkeypatch.setattr(scene_schedule, "finish_scene", finish)
    _, result = run_prompt(
        instance,
        TEXT,
        defaults=SMALL,
        duration_s=2.0,
        scenes=2,
        fps=6.0,
        output_fps=24.0,
        resources={"video_generator": _Waiting(scene_cache=False)},
    )
    assert result.success
    assert OVERLAP["seen"] is True
    scenes = metadata(result, "scene_clips")["scenes"]
    assert [s["native_frames"] for s in scenes] == [6, 6]
    assert [s["frames"] for s in scenes] == [24, 24]
