"""A finished scene's frames in one file, losslessly: H.264 in RGB (libx264rgb) at qp 0.

Every pixel comes back exactly (x264's lossless mode, RGB in and out: no colour conversion),
at a fraction of PNG's cost: 192 frames at 1024x576 wrote in 0.39 s and read in 1.05 s on
two cores, where PNG took 6.49 s and 3.62 s (``docs/benchmarks.md``). The file is an mp4, so
it is also the scene's own video (ffmpeg-based players show it; browsers do not play H.264
4:4:4 RGB: the final video is the one made for them).

The decoder hands back planar GBR (``gbrp``, x264's own layout) and the planes are merged
here: ffmpeg's conversion to packed RGB costs more than the decode.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

STORE_NAME = "clip.mp4"  # in a scene's folder (frames storage, a scene-cache entry)
STORE_FORMAT = "h264-rgb-lossless"  # what a manifest or cache entry says its store is


class FrameStoreError(OSError):
    """A stored scene that cannot be read back as it was written; says which file and why."""


def write_lossless(frames: Iterable[np.ndarray], path: Path, fps: float) -> int:
    """Write RGB uint8 frames (H, W, 3) of one size to ``path`` (mp4) losslessly; return the
    count. ``path`` is written in place: callers write into a folder nothing reads yet (a
    fresh version folder, a temp folder) or rename afterwards."""
    writer = None
    count, shape = 0, None
    try:
        for frame in frames:
            frame = np.ascontiguousarray(frame)
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise FrameStoreError(
                    f"frames must be uint8 (H, W, 3); got {frame.dtype} {frame.shape}"
                )
            if writer is None:
                shape = frame.shape
                writer = _writer(path, frame.shape[1], frame.shape[0], fps)
            elif frame.shape != shape:
                raise FrameStoreError(f"frame {count} is {frame.shape}, the first was {shape}")
            writer.send(frame)
            count += 1
    finally:
        if writer is not None:
            writer.close()
    if count == 0:
        raise FrameStoreError(f"no frames to store in {path}")
    return count


def _writer(path: Path, width: int, height: int, fps: float):
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=Fraction(float(fps)).limit_denominator(1001),
        codec="libx264rgb",
        pix_fmt_in="rgb24",
        pix_fmt_out="rgb24",
        quality=None,
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=["-qp", "0", "-preset", "ultrafast", "-f", "mp4"],
    )
    writer.send(None)
    return writer


def read_lossless(path: Path, count: int | None = None) -> np.ndarray:
    """The frames ``write_lossless`` stored at ``path``, as one array (T, H, W, 3). With
    ``count``, anything but exactly that many frames is a ``FrameStoreError`` (a damaged or
    cut-off file); so is a file that does not decode or was not stored losslessly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="gbrp", bits_per_pixel=24)
        meta = next(reader)
        if not str(meta.get("pix_fmt", "")).startswith("gbrp"):
            reader.close()
            raise FrameStoreError(f"{path} is not a lossless RGB store ({meta.get('pix_fmt')})")
        width, height = meta["size"]
        # Decoded straight into the result when the count is known (no second copy).
        out = np.empty((count, height, width, 3), np.uint8) if count else None
        frames: list[np.ndarray] = []
        for index, raw in enumerate(reader):
            planes = np.frombuffer(raw, np.uint8).reshape(3, height, width)
            rgb = [planes[2], planes[0], planes[1]]  # G, B, R -> R, G, B
            if out is not None and index < len(out):
                cv2.merge(rgb, dst=out[index])
            frames.append(out[index] if out is not None and index < len(out) else cv2.merge(rgb))
    except FrameStoreError:
        raise
    except (RuntimeError, OSError, StopIteration) as exc:  # what ffmpeg says of a bad file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FrameStoreError(f"{path} does not decode: {reason}") from exc
    if not frames or (count is not None and len(frames) != count):
        raise FrameStoreError(f"{path} holds {len(frames)} frames, expected {count}")
    return out if out is not None else np.stack(frames)


class RecentFrames:
    """Scene frames this process has just stored, handed to the next step of the run without
    decoding them again (a run executes its steps in one process: ``in_process_executor``).

    Kept by the path of their store file and that file's identity (device, inode, size,
    modification time): a file replaced or changed since is decoded as usual. Taken once
    (the entry goes with the first reader; a second one decodes); at most ``max_bytes`` of
    frames are held, the oldest let go first. What it hands back is exactly what the file
    decodes to (the store is lossless), as a read-only view.
    """

    def __init__(self, max_bytes: int = 2 << 30):
        self.max_bytes = max_bytes
        self._held: dict[str, tuple[tuple, np.ndarray]] = {}

    @staticmethod
    def _identity(path: Path) -> tuple:
        stat = Path(path).stat()
        return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns

    def remember(self, path: Path, frames: np.ndarray) -> None:
        if frames.nbytes > self.max_bytes:
            return
        self._held.pop(str(path), None)
        self._held[str(path)] = (self._identity(path), frames)
        while sum(f.nbytes for _, f in self._held.values()) > self.max_bytes:
            self._held.pop(next(iter(self._held)))

    def take(self, path: Path) -> np.ndarray | None:
        held = self._held.pop(str(path), None)
        if held is None:
            return None
        identity, frames = held
        try:
            if self._identity(path) != identity:
                return None
        except OSError:
            return None
        view = frames.view()
        view.flags.writeable = False
        return view
