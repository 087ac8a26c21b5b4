"""Video files with real ffmpeg (imageio-ffmpeg), storyboard cards and the animatic backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageDraw

from vidgen_pipeline.core.animatic import animate_keyframe
from vidgen_pipeline.core.cards import drawable, font, render_card, wrap_text
from vidgen_pipeline.core.media import (
    MediaError,
    encode_h264,
    even_size,
    frames_for_span,
    moov_before_mdat,
    probe_video,
    read_frames,
)
from vidgen_pipeline.core.prompts import CameraMotion, read_camera
from vidgen_pipeline.core.storyboard import write_storyboard


def ramp_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """Flat grey frames getting brighter, so the decoded order and count are checkable."""
    return [
        np.full((height, width, 3), 10 + i * 200 // max(1, count - 1), np.uint8)
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def two_second_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    frames = ramp_frames(48, 64, 48)
    written = encode_h264(frames, path, fps=24)  # default crf and preset
    return path, written, frames


# ---------------------------------------------------------------------------------------
# encode_h264 + probe_video


def test_encoded_file_is_browser_playable_h264(two_second_clip):
    path, written, _ = two_second_clip
    facts = probe_video(path)
    assert written == 48
    assert facts.codec == "h264"
    assert facts.pix_fmt == "yuv420p"
    assert facts.faststart is True
    assert moov_before_mdat(path) is True
    assert (facts.width, facts.height) == (64, 48)


def test_exact_frame_count_and_duration(two_second_clip):
    path, _, _ = two_second_clip
    facts = probe_video(path)
    assert facts.frame_count == 48
    assert facts.fps == 24.0
    assert facts.duration_s == pytest.approx(2.0, abs=1e-9)


def test_frames_decode_in_order(two_second_clip):
    path, _, frames = two_second_clip
    decoded = list(read_frames(path))
    assert len(decoded) == len(frames)
    for original, got in zip(frames, decoded, strict=True):
        assert got.shape == original.shape
        assert abs(float(got.mean()) - float(original.mean())) < 4


@pytest.mark.parametrize("fps,count", [(8, 16), (25, 50), (30, 45), (60, 30)])
def test_frame_count_and_duration_at_other_rates(tmp_path, fps, count):
    path = tmp_path / "clip.mp4"
    assert encode_h264(ramp_frames(count, 32, 32), path, fps=fps, preset="ultrafast") == count
    facts = probe_video(path)
    assert facts.frame_count == count
    assert facts.fps == pytest.approx(fps)
    assert facts.duration_s == pytest.approx(count / fps, abs=1e-6)


def test_ntsc_rate_keeps_every_frame(tmp_path):
    path = tmp_path / "ntsc.mp4"
    encode_h264(ramp_frames(30, 32, 32), path, fps=30000 / 1001, preset="ultrafast")
    facts = probe_video(path)
    assert facts.frame_count == 30
    assert facts.duration_s == pytest.approx(1.001, abs=1e-3)


@pytest.mark.parametrize(
    "size,expected", [((65, 49), (64, 48)), ((3, 3), (2, 2)), ((64, 49), (64, 48))]
)
def test_odd_sizes_are_cropped_to_even(tmp_path, size, expected):
    width, height = size
    assert even_size(width, height) == expected
    # A frame whose last column/row is white: cropping must drop exactly that edge.
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, -1] = 255
    frame[-1, :] = 255
    path = tmp_path / "odd.mp4"
    assert encode_h264([frame] * 6, path, fps=24, preset="ultrafast") == 6
    facts = probe_video(path)
    assert (facts.width, facts.height) == expected
    assert facts.pix_fmt == "yuv420p"
    if width % 2 and height % 2 and width > 8:
        assert facts.mean_luma < 8  # the white edges were cropped away


@pytest.mark.parametrize(
    "frames", [[], iter([]), (f for f in [])], ids=["list", "iter", "generator"]
)
def test_no_frames_raises_media_error(tmp_path, frames):
    with pytest.raises(MediaError, match="no frames"):
        encode_h264(frames, tmp_path / "empty.mp4", fps=24)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((16, 16, 3), np.float32),
        np.zeros((16, 16), np.uint8),
        np.zeros((16, 16, 4), np.uint8),
        np.zeros((1, 16, 3), np.uint8),
    ],
    ids=["float", "grey", "rgba", "one-row"],
)
def test_unusable_frames_raise_media_error(tmp_path, frame):
    with pytest.raises(MediaError):
        encode_h264([frame], tmp_path / "bad.mp4", fps=24)


def test_frame_size_change_raises_media_error(tmp_path):
    frames = [np.zeros((16, 16, 3), np.uint8), np.zeros((16, 18, 3), np.uint8)]
    with pytest.raises(MediaError, match="frame 1"):
        encode_h264(frames, tmp_path / "bad.mp4", fps=24, preset="ultrafast")


def test_missing_and_empty_files_raise_media_error(tmp_path):
    with pytest.raises(MediaError):
        probe_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError):
        probe_video(tmp_path / "empty.mp4")


def test_garbage_file_raises_media_error(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError):
        probe_video(path)


@pytest.mark.parametrize("keep", [8, 64, 400])
def test_truncated_file_raises_media_error(tmp_path, two_second_clip, keep):
    """A copy cut off inside its header (an interrupted copy or download)."""
    data = two_second_clip[0].read_bytes()
    assert len(data) > keep
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[:keep])
    with pytest.raises(MediaError):
        probe_video(path)


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_file_cut_inside_its_video_data_raises_media_error(tmp_path, two_second_clip, fraction):
    """A faststart file keeps its header; a cut in the media data must still be caught."""
    data = two_second_clip[0].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(MediaError) as error:
        probe_video(path)
    assert "\n" not in str(error.value)  # one line, not ffmpeg's whole log


# ---------------------------------------------------------------------------------------
# frames_for_span


@pytest.mark.parametrize("fps", [6, 8, 23.976, 24, 25, 29.97, 30, 60])
def test_frames_for_span_over_scenes_sums_to_the_total(fps):
    texts = ["A cat. A dog. A bird. A fish. A frog.", "One long story. " * 9, "一只猫。一只狗！"]
    checked = 0
    for text in texts:
        for target in (1, 2.5, 7.777, 8, 10.01, 33.333, 59.999, 123.456, 600):
            for count in (None, 1, 3, 7, 24):
                board = write_storyboard(text, duration_s=target, scenes=count)
                start, frames = 0.0, []
                for scene in board.scenes:
                    frames.append(frames_for_span(start, start + scene.duration_s, fps))
                    start += scene.duration_s
                exact = board.target_duration_s * fps
                if abs(exact - math.floor(exact) - 0.5) < 1e-6:
                    continue  # a tie: either neighbour is as close
                assert sum(frames) == round(exact), (target, count, frames)
                assert all(
                    f >= math.floor(scene.duration_s * fps) - 1
                    for f, scene in zip(frames, board.scenes, strict=True)
                )
                checked += 1
    assert checked > 100


def test_frames_for_span_uses_one_global_grid():
    # Three scenes of 1/3 s at 10 fps: 3.33 frames each, 10 in all, not 3 + 3 + 3.
    edges = [0, 1 / 3, 2 / 3, 1.0]
    frames = [frames_for_span(a, b, 10) for a, b in zip(edges, edges[1:], strict=False)]
    assert sum(frames) == 10
    assert sorted(frames) == [3, 3, 4]


# ---------------------------------------------------------------------------------------
# cards


def test_font_has_real_chinese_glyphs():
    face = font(48)
    bear = face.getmask("熊")
    missing = face.getmask("\uffff")  # a non-character: drawn as the font's .notdef box
    assert bear.getbbox() is not None
    bear_pixels = np.asarray(bear)
    missing_pixels = np.asarray(missing)
    assert bear_pixels.any()
    assert bear_pixels.shape != missing_pixels.shape or not np.array_equal(
        bear_pixels, missing_pixels
    )
    # Two different ideographs are two different glyphs (no shared fallback box).
    assert not np.array_equal(np.asarray(face.getmask("熊")), np.asarray(face.getmask("猫")))


def test_drawing_chinese_differs_from_drawing_tofu():
    face = font(32)

    def draw(text: str) -> Image.Image:
        image = Image.new("L", (400, 60), 0)
        ImageDraw.Draw(image).text((4, 4), text, font=face, fill=255)
        return image

    chinese = draw("一只熊在公园里")
    tofu = draw("\uffff" * 7)
    assert chinese.getbbox() is not None
    assert ImageChops.difference(chinese, tofu).getbbox() is not None
    # Tofu boxes are all alike; real glyphs are not.
    assert draw("熊").tobytes() != draw("猫").tobytes()
    assert draw("\uffff").tobytes() == draw("\ufffe").tobytes()


def test_render_card_draws_chinese_text():
    args = dict(scene_number=1, scene_count=3, title="熊", width=256, height=144)
    chinese = render_card("一只熊在公园里弹吉他，夕阳西下。", **args)
    tofu = render_card("\uffff" * 15, **args)
    blank = render_card("…", **args)
    assert chinese.size == (256, 144) and chinese.mode == "RGB"
    assert ImageChops.difference(chinese, tofu).getbbox() is not None
    assert ImageChops.difference(chinese, blank).getbbox() is not None


def test_render_card_drops_emoji_instead_of_boxes():
    assert drawable("a cat 🐱 on a mat 🚀") == "a cat  on a mat"
    args = dict(scene_number=2, scene_count=2, title="t", width=200, height=120)
    assert render_card("🐱🚀", **args).tobytes() == render_card("…", **args).tobytes()


def test_wrap_text_breaks_chinese_between_characters():
    face = font(20)
    text = "一只熊在公园里弹吉他，夕阳西下，微风吹过湖面。" * 3
    lines = wrap_text(text, face, 120)
    assert len(lines) > 1
    assert "".join(lines) == text
    assert all(face.getlength(line) <= 120 for line in lines)


def test_wrap_text_breaks_english_at_spaces():
    face = font(20)
    text = "a quick brown fox jumps over the lazy dog " * 3
    lines = wrap_text(text.strip(), face, 150)
    assert len(lines) > 1
    assert " ".join(lines).split() == text.split()
    assert all(face.getlength(line) <= 150 for line in lines)


# ---------------------------------------------------------------------------------------
# animatic


@pytest.fixture(scope="module")
def keyframe() -> Image.Image:
    return render_card("一只熊在公园里弹吉他。A bear plays guitar.", 1, 1, "bear", 160, 90)


def test_animate_keyframe_shape_and_dtype(keyframe):
    frames = animate_keyframe(keyframe, read_camera("zoom in"), 12, 128, 72)
    assert frames.shape == (12, 72, 128, 3)
    assert frames.dtype == np.uint8


def test_zoom_changes_frames_over_time(keyframe):
    frames = animate_keyframe(keyframe, read_camera("zoom in"), 12, 128, 72).astype(np.int16)
    drift = [float(np.abs(frames[i] - frames[0]).mean()) for i in range(12)]
    assert drift[-1] > 2
    assert all(b >= a - 1e-6 for a, b in zip(drift, drift[1:], strict=False))  # moves steadily away
    assert not np.array_equal(frames[5], frames[6])


@pytest.mark.parametrize("phrase", ["zoom out", "pan left", "pan right", "tilt up", "tilt down"])
def test_named_moves_change_frames(keyframe, phrase):
    frames = animate_keyframe(keyframe, read_camera(phrase), 6, 96, 54)
    assert not np.array_equal(frames[0], frames[-1])


def test_static_camera_keeps_frames_still(keyframe):
    frames = animate_keyframe(keyframe, read_camera("static"), 4, 96, 54)
    assert all(np.array_equal(frames[0], f) for f in frames)


def test_animate_keyframe_needs_a_frame(keyframe):
    with pytest.raises(ValueError):
        animate_keyframe(keyframe, CameraMotion(), 0, 64, 36)


def test_animatic_frames_encode(tmp_path, keyframe):
    frames = animate_keyframe(keyframe, CameraMotion(), 24, 96, 54)
    path = tmp_path / "animatic.mp4"
    assert encode_h264(frames, path, fps=24, preset="ultrafast") == 24
    facts = probe_video(path)
    assert facts.frame_count == 24 and facts.duration_s == pytest.approx(1.0)
    assert facts.luma_std > 1  # not a blank clip
