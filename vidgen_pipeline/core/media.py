"""Video files: the one H.264 encoder, decoding, and facts about a finished mp4.

ffmpeg comes from the ``imageio-ffmpeg`` wheel, which ships a build with libx264. (OpenCV's
pip wheels cannot write H.264, and its ``mp4v`` is MPEG-4 Part 2, which browsers do not play.)
"""

from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

DEFAULT_CRF = 18
DEFAULT_PRESET = "medium"
# libx264's presets, fastest first.
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
# With a target bitrate: peaks up to 1.5x the target, over a 2 s (2x target) VBV buffer.
MAXRATE_FACTOR = 1.5
BUFSIZE_FACTOR = 2.0
_BITRATE = re.compile(r"(\d+(?:\.\d+)?)([kKmM])")


class _SampledDecodeNote(logging.Filter):
    """imageio-ffmpeg warns whenever frames are read at another size than the file's; a
    decode at ``sample_width`` asks for exactly that."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("The frame size for reading")


logging.getLogger("imageio_ffmpeg").addFilter(_SampledDecodeNote())


class MediaError(RuntimeError):
    """Encoding or decoding failed; the message says which file and why."""


def even_size(width: int, height: int) -> tuple[int, int]:
    """The largest even frame size within ``width`` x ``height`` (yuv420p needs even sides)."""
    return width - width % 2, height - height % 2


def bitrate_kbps(bitrate: str) -> float:
    """``"5000k"`` -> 5000.0, ``"5M"`` -> 5000.0 (kbit/s); ``MediaError`` for anything else."""
    match = _BITRATE.fullmatch(str(bitrate).strip())
    if not match or float(match.group(1)) <= 0:
        raise MediaError(
            f"bitrate {bitrate!r} is not a positive number of kbit/s or Mbit/s like '5000k' or '5M'"
        )
    value = float(match.group(1))
    return value * 1000 if match.group(2) in "mM" else value


def rate_control_args(
    crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET, bitrate: str | None = None
) -> list[str]:
    """Validated libx264 options: ``-preset`` and either ``-crf`` or a bitrate with VBV.

    crf must be a whole number 0..51 (0 is lossless, 18 looks lossless, 23 is x264's
    default); preset one of ``X264_PRESETS``; bitrate like ``"5000k"`` or ``"5M"``. With a
    bitrate the CRF is not used: ``-b:v`` is the target, ``-maxrate`` 1.5x and ``-bufsize``
    2x it. Raises ``MediaError`` naming the bad value.
    """
    if isinstance(crf, bool) or not isinstance(crf, int | np.integer) or not 0 <= crf <= 51:
        raise MediaError(f"crf must be a whole number from 0 to 51, not {crf!r}")
    if preset not in X264_PRESETS:
        raise MediaError(f"preset {preset!r} is not an x264 preset: {', '.join(X264_PRESETS)}")
    args = ["-preset", preset]
    if bitrate is None:
        return args + ["-crf", str(int(crf))]
    kbps = bitrate_kbps(bitrate)
    return args + [
        "-b:v",
        f"{kbps:g}k",
        "-maxrate",
        f"{kbps * MAXRATE_FACTOR:g}k",
        "-bufsize",
        f"{kbps * BUFSIZE_FACTOR:g}k",
    ]


def encode_h264(
    frames: Iterable[np.ndarray],
    path: Path,
    fps: float,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    bitrate: str | None = None,
) -> int:
    """Write RGB uint8 frames (H, W, 3) to ``path`` as H.264 in mp4; return the frame count.

    The file plays in browsers: yuv420p, even dimensions (an odd last row or column is
    cropped), constant frame rate, and the index (``moov``) at the front (``+faststart``).
    Quality is CRF ``crf`` (default 18), or a target ``bitrate`` such as ``"5000k"`` when
    given (then ``crf`` is ignored); see ``rate_control_args`` for the checks on each.
    """
    if not fps or not 0 < float(fps) <= 1000:
        raise MediaError(f"fps must be above 0 (and at most 1000), not {fps!r}")
    rate_control = rate_control_args(crf, preset, bitrate)
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
            *rate_control,
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


def probe_video(
    path: Path,
    on_frame: Callable[[np.ndarray], None] | None = None,
    sample_width: int | None = None,
) -> VideoFacts:
    """Decode the whole file; raise ``MediaError`` when it does not decode. ``on_frame``
    sees every decoded RGB frame (so a caller measuring them needs no second decode).

    ``sample_width``: frames wider than that are handed over at that width, their pixels
    picked on a regular grid (nearest neighbour, no averaging: as ``quality`` samples a
    frame), which saves the copying and converting of full-size frames; the whole stream
    is still decoded, and the facts (size, counts, luma) are the file's."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(f"{path} is missing or empty")
    scale = None
    if sample_width is not None:
        scale = ["-vf", f"scale=w=min(iw\\,{int(sample_width)}):h=-2:flags=neighbor"]
    try:
        reader = imageio_ffmpeg.read_frames(str(path), output_params=scale)
        meta = next(reader)
        width, height = meta["size"]
        full_width, full_height = meta.get("source_size") or meta["size"]
        # The luma figures read every 4th pixel of the full frame, whatever size arrives.
        step = max(1, round(4 * width / full_width))
        count = 0
        luma_sum = 0.0
        luma_sq = 0.0
        for raw in reader:
            frame = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            if on_frame is not None:
                on_frame(frame)
            luma = frame[::step, ::step].astype(np.float32) @ np.array(
                [0.299, 0.587, 0.114], np.float32
            )
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
        width=full_width,
        height=full_height,
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


def vtt_timestamp(seconds: float) -> str:
    """``3725.5`` -> ``"01:02:05.500"`` (WebVTT's HH:MM:SS.mmm; hours may exceed 99)."""
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _vtt_payload(text: str) -> str:
    # Cue text is markup: & and < are escaped, "-->" may not appear, and a blank line would
    # end the cue, so empty lines are dropped.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line)


def webvtt_text(cues: Iterable[tuple[float, float, str]]) -> str:
    """A WebVTT document: one numbered cue per ``(start_s, end_s, text)``, sorted by start.

    Raises ``MediaError`` for a negative start or an end not after its start. Text is
    escaped (``&``, ``<``, ``>``; so ``-->`` becomes ``--&gt;``) and loses its blank lines.
    """
    ordered = sorted(cues, key=lambda cue: cue[0])
    blocks = ["WEBVTT"]
    for number, (start, end, text) in enumerate(ordered, start=1):
        if not 0 <= start < end:
            raise MediaError(
                f"cue {text[:40]!r}: times {start!r} -> {end!r} are not 0 <= start < end"
            )
        blocks.append(
            f"{number}\n{vtt_timestamp(start)} --> {vtt_timestamp(end)}\n{_vtt_payload(text)}"
        )
    return "\n\n".join(blocks) + "\n"


def write_webvtt(path: Path, cues: Iterable[tuple[float, float, str]]) -> Path:
    """Write ``webvtt_text(cues)`` to ``path`` (UTF-8) atomically: a temp file, then a rename."""
    path = Path(path)
    text = webvtt_text(cues)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
