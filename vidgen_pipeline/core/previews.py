"""Small inline previews for the Dagster UI (markdown images with ``data:`` URIs).

Dagster has no image metadata type, but its UI renders markdown, and markdown images may
point at ``data:`` URIs. Every materialization keeps its metadata in the event log, so the
previews stay a few tens of KB: a JPEG poster, an animated WebP of a few frames, a contact
sheet of the keyframes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future

import numpy as np
from PIL import Image

PREVIEW_MAX_WIDTH = 320
PREVIEW_MAX_FRAMES = 24
PREVIEW_MAX_BYTES = 150_000  # of the whole markdown string, base64 included
_MIN_WIDTH = 32
_QUALITIES = (60, 40, 25)


def jpeg_data_uri(image: Image.Image, max_width: int = 320, quality: int = 70) -> str:
    image = image.convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, max(1, image.height * max_width // image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def contact_sheet(
    images: list[Image.Image], columns: int = 4, cell_width: int = 160
) -> Image.Image:
    """The images side by side in a grid, each ``cell_width`` wide."""
    first = images[0]
    cell_height = max(1, first.height * cell_width // first.width)
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (cell_width * min(columns, len(images)), cell_height * rows))
    for index, image in enumerate(images):
        thumb = image.convert("RGB").resize((cell_width, cell_height))
        sheet.paste(thumb, ((index % columns) * cell_width, (index // columns) * cell_height))
    return sheet


def markdown_image(image: Image.Image, alt: str, max_width: int = 320) -> str:
    return f"![{alt}]({jpeg_data_uri(image, max_width=max_width)})"


def poster_markdown(frame: np.ndarray | Image.Image, max_width: int = 320) -> str:
    """One frame (H, W, 3 uint8 array or image) as a small JPEG markdown image."""
    image = frame if isinstance(frame, Image.Image) else Image.fromarray(_rgb(frame))
    return markdown_image(image, "poster", max_width=max_width)


def animated_preview(
    frames: np.ndarray,
    fps: float,
    max_width: int = PREVIEW_MAX_WIDTH,
    max_frames: int = PREVIEW_MAX_FRAMES,
    max_bytes: int = PREVIEW_MAX_BYTES,
    alt: str = "preview",
) -> str:
    """A looping animated WebP of the whole clip as a markdown image, at most ``max_bytes``
    long (the markdown string itself, as stored in the event log).

    Frames are subsampled evenly to at most ``max_frames``, each shown for its share of the
    clip's duration (so the preview lasts as long as the video); then quality, width and
    frame count are lowered in turn until the string fits. Raises ``ValueError`` when even
    the smallest preview does not fit or the input is not a (T, H, W, 3) uint8 clip.
    """
    clip = np.asarray(frames)
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[0] == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T >= 1, got {clip.shape}")
    if clip.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {clip.dtype}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if max_frames < 1 or max_width < 1:
        raise ValueError("max_frames and max_width must be at least 1")
    total_ms = clip.shape[0] * 1000.0 / fps
    count = min(max_frames, clip.shape[0])
    width = min(max_width, clip.shape[2])
    while True:
        picked = clip[_even_indices(clip.shape[0], count)]
        images = [_shrunk(Image.fromarray(f), width) for f in picked]
        duration = max(20, round(total_ms / count))  # browsers clamp shorter frames anyway
        for quality in _QUALITIES:
            text = f"![{alt}]({_webp_data_uri(images, duration, quality)})"
            if len(text) <= max_bytes:
                return text
        if width > _MIN_WIDTH:
            width = max(_MIN_WIDTH, width * 3 // 4)
        elif count > 1:
            count = max(1, count // 2)
        else:
            raise ValueError(f"no preview fits in {max_bytes} bytes (smallest: {len(text)})")


def _webp_data_uri(images: list[Image.Image], duration_ms: int, quality: int) -> str:
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="WEBP",
        save_all=True,
        append_images=images[1:],
        duration=duration_ms,
        loop=0,
        quality=quality,
        method=4,
    )
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode()


def _even_indices(total: int, count: int) -> np.ndarray:
    """``count`` indices spread evenly over ``range(total)``, first and last included."""
    if count >= total:
        return np.arange(total)
    return np.round(np.linspace(0, total - 1, count)).astype(int)


def _shrunk(image: Image.Image, max_width: int) -> Image.Image:
    if image.width <= max_width:
        return image
    height = max(1, round(image.height * max_width / image.width))
    return image.resize((max_width, height), Image.Resampling.BILINEAR)


def _rgb(frame: np.ndarray) -> np.ndarray:
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"a frame must be (H, W, 3) uint8, got {array.shape} {array.dtype}")
    return array


class PreviewKeeper:
    """Passes frames through (to the encoder) and keeps a small copy of every n-th one, for
    the poster and the animated preview, so the finished video is never decoded for them.

    With a ``worker`` (an executor), the copies are made there while the frames flow on
    (PIL releases the GIL while it resizes), so the encoder is not kept waiting."""

    def __init__(
        self, frames: Iterable[np.ndarray], keep_every: int, worker: Executor | None = None
    ):
        self.frames, self.every, self.worker = frames, keep_every, worker
        self._kept: list[np.ndarray | Future] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        for index, frame in enumerate(self.frames):
            if index % self.every == 0:
                if self.worker is None:
                    self._kept.append(_small_copy(frame))
                else:
                    self._kept.append(self.worker.submit(_small_copy, frame))
            yield frame

    @property
    def kept(self) -> list[np.ndarray]:
        """The small copies, in order (waiting for any still being made)."""
        return [item.result() if isinstance(item, Future) else item for item in self._kept]

    def middle(self) -> np.ndarray:
        """The kept frame in the middle of the video."""
        return self.kept[len(self.kept) // 2]


def _small_copy(frame: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).resize(_preview_size(frame)))


def _preview_size(frame: np.ndarray) -> tuple[int, int]:
    height, width = frame.shape[:2]
    scale = min(1.0, PREVIEW_MAX_WIDTH / width)
    return max(2, round(width * scale)), max(2, round(height * scale))
