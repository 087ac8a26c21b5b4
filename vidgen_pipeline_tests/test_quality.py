"""Quality checks on synthetic clips: black, frozen and flickering clips are caught; moving
footage and the storyboard animatic's slow camera moves pass."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from vidgen_pipeline.core import quality
from vidgen_pipeline.core.animatic import animate_keyframe
from vidgen_pipeline.core.cards import render_card
from vidgen_pipeline.core.media import encode_h264, read_frames
from vidgen_pipeline.core.prompts import CameraMotion, read_camera
from vidgen_pipeline.core.quality import (
    QualityError,
    assess,
    blank_stats,
    flicker_score,
    frozen_stats,
)

W, H = 160, 90


@pytest.fixture(scope="module")
def card() -> Image.Image:
    return render_card("A bear plays guitar in the park at dusk.", 1, 3, "bear", W, H)


def moving_texture(count: int = 48, step: int = 2) -> np.ndarray:
    noise = np.random.default_rng(5).integers(0, 256, (H, W + step * count, 3), dtype=np.uint8)
    ground = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 2), None, 0, 255, cv2.NORM_MINMAX)
    return np.stack([ground[:, i * step : i * step + W] for i in range(count)])


def test_good_moving_clip_passes():
    report = assess(moving_texture(), fps=24)
    assert report.passed, report.problems()
    assert report.problems() == []
    assert report.frames == 48 and report.duration_s == pytest.approx(2.0)
    assert report.frozen.mean_abs_diff > 1
    assert report.flicker_score < 0.5


def test_black_clip_is_caught():
    report = assess(np.zeros((24, H, W, 3), np.uint8), fps=24)
    assert report.is_blank and not report.passed
    assert report.blank.mean_luma == 0 and report.blank.luma_std == 0
    assert report.blank.blank_share == 1.0
    assert "blank" in report.problems()[0]


def test_flat_grey_and_nearly_black_frames_are_blank():
    grey = np.full((12, H, W, 3), 128, np.uint8)
    assert assess(grey, fps=24).is_blank
    specks = np.zeros((12, H, W, 3), np.uint8)
    specks[:, ::20, ::20] = 255  # a few stars on black: mean under BLACK_MEAN
    stats = blank_stats(specks)
    assert stats.frame_means.max() < quality.BLACK_MEAN and stats.blank_share == 1.0


def test_a_fade_from_black_is_not_a_blank_clip():
    clip = moving_texture()
    clip[:12] = (clip[:12] * (np.arange(12) / 12)[:, None, None, None]).astype(np.uint8)
    report = assess(clip, fps=24)
    assert 0 < report.blank.blank_share < quality.BLANK_SHARE
    assert report.passed, report.problems()


def test_frozen_clip_is_caught():
    one = moving_texture(1)
    report = assess(np.repeat(one, 48, axis=0), fps=24)
    assert report.is_frozen and not report.is_blank and not report.flickers
    assert report.frozen.mean_abs_diff == 0
    assert report.frozen.near_identical_share == 1 and report.frozen.still_share == 1
    assert "frozen" in report.problems()[0]


def test_a_clip_that_stops_half_way_is_frozen_and_a_short_pause_is_not():
    clip = moving_texture(49)
    half = clip.copy()
    half[24:] = half[24]
    assert assess(half, fps=24).is_frozen
    pause = clip.copy()
    pause[20:30] = pause[20]  # 10 frames held inside 2 s
    assert not assess(pause, fps=24).is_frozen


@pytest.mark.parametrize("preset,crf", [("veryfast", 18), ("medium", 28), ("ultrafast", 18)])
def test_frozen_clip_is_caught_after_h264(tmp_path, preset, crf):
    """Codec noise on a repeated frame (ultrafast keeps refining it for a few frames after
    the keyframe) is not motion."""
    path = tmp_path / "frozen.mp4"
    still = np.repeat(moving_texture(1), 48, axis=0)
    encode_h264(still, path, fps=24, preset=preset, crf=crf)
    report = assess(read_frames(path), fps=24)  # frames streamed from the decoder
    assert report.frames == 48 and report.is_frozen


def test_flickering_clip_is_caught():
    clip = moving_texture()
    clip[::2] = clip[::2] // 2  # every other frame at half brightness
    report = assess(clip, fps=24)
    assert report.flickers and not report.is_frozen
    assert report.flicker_score > 10 * quality.FLICKER_LEVELS
    assert "flickers" in report.problems()[0]


def test_flicker_score_is_the_amplitude_of_alternating_brightness():
    means = [100, 104] * 12
    clip = np.stack([np.full((8, 8, 3), m, np.uint8) for m in means])
    assert flicker_score(clip) == pytest.approx(4.0, abs=0.01)
    ramp = np.stack([np.full((8, 8, 3), 10 + 5 * i, np.uint8) for i in range(24)])
    assert flicker_score(ramp) == pytest.approx(0.0, abs=0.01)  # a fade is not flicker


def test_cuts_between_scenes_are_not_flicker():
    dark = moving_texture(24) // 4
    bright = moving_texture(24)
    video = np.concatenate([dark, bright, dark, bright])
    cuts = [24, 48, 72]
    assert flicker_score(video) > 1
    assert flicker_score(video, cuts=cuts) < 0.5
    assert assess(video, fps=24, cuts=cuts).flicker_score < 0.5


@pytest.mark.parametrize(
    "camera,seconds",
    [
        (read_camera("pan right slow motion"), 4),
        (read_camera("tilt up"), 2),
        (read_camera("zoom out"), 2),
        (CameraMotion(), 4),
        (CameraMotion(speed=0.5), 15),  # the slowest push-in a storyboard asks for
    ],
    ids=["slow pan", "tilt", "zoom out", "push in", "slow push in 15 s"],
)
def test_storyboard_animatic_moves_pass(card, camera, seconds):
    frames = animate_keyframe(card, camera, seconds * 24, W, H)
    report = assess(frames, fps=24)
    assert report.passed, report.problems()


def test_a_very_slow_zoom_is_judged_over_a_second_not_frame_to_frame(card):
    """A 3% zoom over 30 s: almost every consecutive pair is below the near-identical line,
    yet over a second it moves, so it is not frozen."""
    frames = animate_keyframe(card, CameraMotion(zoom=1.03), 720, W, H)
    stats = frozen_stats(frames, fps=24)
    assert stats.near_identical_share > 0.9
    assert stats.still_share < quality.FROZEN_SHARE
    assert not assess(frames, fps=24).is_frozen


def test_static_camera_animatic_is_frozen(card):
    assert assess(animate_keyframe(card, read_camera("static"), 48, W, H), fps=24).is_frozen


def test_metadata_is_plain_numbers():
    metadata = assess(moving_texture(), fps=24).as_metadata()
    assert all(type(v) in (int, float, bool) for v in metadata.values()), metadata
    for key in ["mean_luma", "luma_std", "mean_abs_frame_diff", "flicker_score", "still_share"]:
        assert key in metadata
    assert metadata["passed"] is True and metadata["frames"] == 48


def test_short_clips():
    one = assess(moving_texture(1), fps=24)
    assert one.is_frozen and one.flicker_score == 0  # a single still is not a video
    two = frozen_stats(moving_texture(2), fps=24)
    assert len(two.pair_diffs) == 1 and two.still_share == 0


def test_bad_frames_raise_quality_error():
    with pytest.raises(QualityError, match="no frames"):
        assess([], fps=24)
    with pytest.raises(QualityError, match="uint8"):
        assess(np.zeros((2, 8, 8, 3), np.float32), fps=24)
    with pytest.raises(QualityError, match="frame 1"):
        assess([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)], fps=24)
    with pytest.raises(QualityError, match="fps"):
        assess(moving_texture(2), fps=0)
