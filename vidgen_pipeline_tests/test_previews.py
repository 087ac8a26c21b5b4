"""Inline previews for the UI: small, decodable, and within their byte budget."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image, ImageSequence

from vidgen_pipeline.core.previews import (
    animated_preview,
    contact_sheet,
    markdown_image,
    poster_markdown,
)

DATA_URI = re.compile(r"^!\[(?P<alt>[^\]]*)\]\(data:(?P<mime>image/\w+);base64,(?P<b64>[^)]+)\)$")


def decode(markdown: str) -> tuple[str, str, Image.Image]:
    match = DATA_URI.match(markdown)
    assert match, markdown[:80]
    image = Image.open(io.BytesIO(base64.b64decode(match["b64"])))
    return match["alt"], match["mime"], image


def frame_durations(image: Image.Image) -> list[int]:
    durations = []
    for frame in ImageSequence.Iterator(image):
        frame.load()  # WebP frames report their duration once decoded
        durations.append(frame.info["duration"])
    return durations


def colour_steps(count: int, height: int = 72, width: int = 128) -> np.ndarray:
    """Frame i is one flat grey of level 255*i/(count-1): each frame is recognisable."""
    levels = np.linspace(0, 255, count).round().astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, height, width, 3)).copy()


def noise(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def test_animated_preview_is_a_looping_webp_of_all_frames_lasting_as_long_as_the_clip():
    frames = colour_steps(16)
    text = animated_preview(frames, fps=8)
    alt, mime, image = decode(text)
    assert (alt, mime, image.format) == ("preview", "image/webp", "WEBP")
    assert image.is_animated and image.n_frames == 16
    assert image.size == (128, 72)  # smaller than max_width: never enlarged
    assert image.info.get("loop") == 0
    assert sum(frame_durations(image)) == pytest.approx(2000, abs=16)  # 16 frames at 8 fps


def test_long_clips_are_subsampled_evenly_keeping_first_and_last_frame():
    frames = colour_steps(100)
    _, _, image = decode(animated_preview(frames, fps=25, max_frames=10))
    assert image.n_frames == 10
    shown = [np.asarray(f.convert("RGB")).mean() for f in ImageSequence.Iterator(image)]
    assert shown[0] == pytest.approx(0, abs=4) and shown[-1] == pytest.approx(255, abs=4)
    assert all(b > a for a, b in zip(shown, shown[1:], strict=False))  # in order
    assert sum(frame_durations(image)) == pytest.approx(4000, abs=10)  # still the clip's 4 s


def test_wide_frames_are_shrunk_to_max_width_keeping_the_aspect_ratio():
    frames = colour_steps(4, height=576, width=1024)
    _, _, image = decode(animated_preview(frames, fps=8, max_width=320))
    assert image.size == (320, 180)


@pytest.mark.parametrize("budget", [150_000, 40_000, 8_000])
def test_byte_budget_is_respected_even_for_incompressible_noise(budget):
    frames = noise(48, 288, 512)
    text = animated_preview(frames, fps=24, max_bytes=budget)
    print(f"budget {budget}: {len(text)} bytes")
    assert len(text) <= budget
    _, _, image = decode(text)
    assert image.n_frames >= 1 and image.width <= 320
    if budget == 8_000:
        assert image.width < 320 or image.n_frames < 24  # it had to give something up


def test_a_budget_nothing_fits_in_is_refused_clearly():
    with pytest.raises(ValueError, match="no preview fits in 100 bytes"):
        animated_preview(noise(4, 64, 64), fps=8, max_bytes=100)


def test_a_single_frame_clip_still_makes_a_preview():
    _, mime, image = decode(animated_preview(colour_steps(1), fps=8))
    assert mime == "image/webp" and image.n_frames == 1


@pytest.mark.parametrize(
    ("frames", "fps", "message"),
    [
        (np.zeros((0, 8, 8, 3), np.uint8), 8, "T >= 1"),
        (np.zeros((8, 8, 3), np.uint8), 8, r"\(T, H, W, 3\)"),
        (np.zeros((2, 8, 8, 4), np.uint8), 8, r"\(T, H, W, 3\)"),
        (np.zeros((2, 8, 8, 3), np.float32), 8, "uint8"),
        (np.zeros((2, 8, 8, 3), np.uint8), 0, "fps must be positive"),
    ],
)
def test_bad_clips_are_refused(frames, fps, message):
    with pytest.raises(ValueError, match=message):
        animated_preview(frames, fps=fps)


def test_poster_markdown_is_a_small_jpeg_of_the_frame():
    frame = np.zeros((576, 1024, 3), np.uint8)
    frame[:, :512] = (255, 0, 0)
    alt, mime, image = decode(poster_markdown(frame))
    assert (alt, mime, image.format, image.size) == ("poster", "image/jpeg", "JPEG", (320, 180))
    left, right = np.asarray(image)[90, 40], np.asarray(image)[90, 280]
    assert left[0] > 200 and left[1] < 60 and right.max() < 60
    assert decode(poster_markdown(Image.fromarray(frame)))[2].size == (320, 180)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        poster_markdown(np.zeros((4, 4), np.uint8))


def test_contact_sheet_and_markdown_image_keep_working():
    images = [Image.new("RGB", (128, 72), (i * 40, 0, 0)) for i in range(6)]
    sheet = contact_sheet(images)
    assert sheet.size == (640, 180)  # 4 columns of 160x90, 2 rows
    alt, mime, image = decode(markdown_image(sheet, "keyframes", max_width=480))
    assert (alt, mime, image.size) == ("keyframes", "image/jpeg", (480, 135))
