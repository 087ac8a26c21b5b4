"""Video files: the one H.264 encoder, decoding, and facts about a finished mp4.

ffmpeg comes from the ``imageio-ffmpeg`` wheel, which ships a build with libx264. (OpenCV's
pip wheels cannot write H.264, and its ``mp4v`` is MPEG-4 Part 2, which browsers do not play.)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

DEFAULT_CRF = 18
DEFAULT_PRESET = "medium"


class MediaError(RuntimeError):
    """Encoding or decoding failed; the message says which file and why."""


def even_size(width: int, height: int) -> tuple[int, int]:
    """The largest even frame size within ``width`` x ``height`` (yuv420p needs even sides)."""
    return width - width % 2, height - height % 2


def encode_h264(
    frames: Iterable[np.ndarray],
    path: Path,
    fps: float,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
) -> int:
    """Write RGB uint8 frames (H, W, 3) to ``path`` as H.264 in mp4; return the frame count.

    The file plays in browsers: yuv420p, even dimensions (an odd last row or column is
    cropped), constant frame rate, and the index (``moov``) at the front (``+faststart``).
    """
    iterator = iter(frames)
    try:
        first = next(iterator)
    except StopIteration:
        raise MediaError(f"no frames to encode into {path}") from None
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise MediaError(f"frames must be uint8 (H, W, 3); got {first.dtype} {first.shape}")
    height, width = first.shape[:2]
    out_w, out_h = even_size(width, height)
    if out_w < 2 or out_h < 2:
        raise MediaError(f"frame size {width}x{height} is too small to encode")
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (out_w, out_h),
        fps=Fraction(fps).limit_denominator(1001),
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        output_params=[
            "-crf",
            str(int(crf)),
            "-preset",
            preset,
            "-fps_mode",
            "cfr",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ],
    )
    writer.send(None)
    count = 0
    try:
        for frame in _chain(first, iterator):
            if frame.shape[:2] != (height, width):
                raise MediaError(
                    f"frame {count} is {frame.shape[1]}x{frame.shape[0]}, "
                    f"the first was {width}x{height}"
                )
            writer.send(np.ascontiguousarray(frame[:out_h, :out_w]))
            count += 1
    finally:
        writer.close()
    return count


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


@dataclass(frozen=True)
class VideoFacts:
    """What a decoder says about a file, and what we measured by decoding all of it."""

    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    faststart: bool
    mean_luma: float
    luma_std: float


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Decode ``path`` to RGB uint8 frames."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    for raw in reader:
        yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


def moov_before_mdat(path: Path) -> bool:
    """True when the mp4's index precedes its media data (``+faststart``): top-level boxes."""
    order = []
    with open(path, "rb") as handle:
        while True:
            header = handle.read(8)
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", handle.read(8))[0]
                handle.seek(size - 16, 1)
            elif size == 0:
                order.append(kind)
                break
            else:
                handle.seek(size - 8, 1)
            order.append(kind)
    return b"moov" in order and b"mdat" in order and order.index(b"moov") < order.index(b"mdat")


def probe_video(path: Path) -> VideoFacts:
    """Decode the whole file; raise ``MediaError`` when it does not decode."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(f"{path} is missing or empty")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        width, height = meta["size"]
        count = 0
        luma_sum = 0.0
        luma_sq = 0.0
        for raw in reader:
            frame = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            luma = frame[::4, ::4].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            luma_sum += float(luma.mean())
            luma_sq += float((luma**2).mean())
            count += 1
    except (RuntimeError, OSError, StopIteration) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MediaError(f"{path} does not decode: {reason}") from exc
    if count == 0:
        raise MediaError(f"{path} has no video frames")
    fps = float(meta.get("fps") or 0.0)
    # The container's header says how long the stream is; fewer decodable frames than that
    # means the file was cut off (a partial copy, a killed writer).
    declared = float(meta.get("duration") or 0.0)
    if fps and declared and count < round(declared * fps) - 1:
        raise MediaError(
            f"{path} is truncated: {count} frames decode, the header declares "
            f"{declared:.3f} s ({round(declared * fps)} frames)"
        )
    mean = luma_sum / count
    return VideoFacts(
        codec=str(meta.get("codec", "")).split()[0],
        pix_fmt=str(meta.get("pix_fmt", "")).split("(")[0].strip(),
        width=width,
        height=height,
        fps=fps,
        frame_count=count,
        duration_s=count / fps if fps else 0.0,
        faststart=moov_before_mdat(path),
        mean_luma=mean,
        luma_std=max(0.0, luma_sq / count - mean**2) ** 0.5,
    )


def frames_for_span(start_s: float, end_s: float, fps: float) -> int:
    """Frames covering [start, end) on one global frame grid, so a sequence of scenes never
    drifts from the storyboard's total by more than one frame."""
    return round(end_s * fps) - round(start_s * fps)
