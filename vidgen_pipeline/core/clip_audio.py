"""The sound a video model makes with its frames (LTX-2): kept with the frames it belongs to.

A clip's audio is float32 samples (N, channels) in [-1, 1] that start with its first frame and
run in real time: frame ``i`` of a clip at ``fps`` begins at sample ``round(i * rate / fps)``.
So what is done to frames is done to the samples under them: a scene made of several clips
keeps, of each clip's audio, the samples under the frames it keeps (a continuing clip's first
frame, a last clip's surplus frames: their share of the audio is dropped with them), and a
scene's audio is exactly as long as its frames (short model audio padded with silence).

Stored beside the frames as ``audio.wav``, 16-bit PCM (the stdlib ``wave`` module): a step of
1/32768, well below what the final AAC track keeps. Plain numpy and the stdlib: no Dagster.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence

import numpy as np

AUDIO_FILE = "audio.wav"
PCM_SCALE = 32767


def samples_for(frames: int, fps: float, rate: int) -> int:
    """Where frame ``frames`` of a clip at ``fps`` begins, in samples at ``rate``."""
    return round(frames * rate / fps)


def as_samples(audio) -> np.ndarray:
    """``audio`` as float32 (N, channels) in [-1, 1] (a mono (N,) array gets one channel)."""
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[1] < 1:
        raise ValueError(f"audio must be (samples, channels), not {samples.shape}")
    return np.clip(np.nan_to_num(samples), -1.0, 1.0)


def fit_length(samples: np.ndarray, count: int) -> np.ndarray:
    """``samples`` cut or padded with silence at the end to exactly ``count`` samples."""
    if len(samples) >= count:
        return samples[:count]
    pad = np.zeros((count - len(samples), samples.shape[1]), dtype=samples.dtype)
    return np.concatenate([samples, pad])


def join_clip_audio(
    spans: Sequence[tuple[int, int]], pieces: Sequence[np.ndarray], fps: float, rate: int
) -> np.ndarray:
    """One scene's audio from its clips' (``pieces``), as the frames are joined: ``spans``
    are each clip's kept frames ``(skip, keep)`` (``core.chunks.Chunk``). Clip ``j``'s kept
    frames are the scene's frames ``[made, made + keep)``; the samples under them in the scene
    are ``[round(made * rate / fps), round((made + keep) * rate / fps))``, taken from the
    clip's own audio from under its frame ``skip`` on. The result has exactly
    ``round(total_frames * rate / fps)`` samples."""
    if len(spans) != len(pieces):
        raise ValueError(f"{len(pieces)} audio clips for {len(spans)} video clips")
    kept, made = [], 0
    for (skip, keep), piece in zip(spans, pieces, strict=True):
        count = samples_for(made + keep, fps, rate) - samples_for(made, fps, rate)
        start = samples_for(skip, fps, rate)
        kept.append(fit_length(as_samples(piece)[start:], count))
        made += keep
    return np.concatenate(kept)


def fit_to_frames(samples: np.ndarray, frames: int, fps: float, rate: int) -> np.ndarray:
    """``samples`` cut or padded to the duration of ``frames`` frames at ``fps`` (a scene
    brought to the output rate keeps its length, to the rounding of a frame)."""
    return fit_length(as_samples(samples), samples_for(frames, fps, rate))


def describe(samples: np.ndarray, rate: int) -> dict:
    """What a clip's metadata says of its audio."""
    return {
        "rate": int(rate),
        "channels": int(samples.shape[1]),
        "seconds": round(len(samples) / rate, 4),
    }


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """``samples`` (float32 (N, channels) in [-1, 1]) as a 16-bit PCM WAV file."""
    pcm = np.round(as_samples(samples) * PCM_SCALE).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def read_wav(data: bytes, where: object = "WAV") -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file's samples as float32 (N, channels) in [-1, 1], and its rate."""
    try:
        with wave.open(io.BytesIO(data), "rb") as source:
            if source.getsampwidth() != 2:
                raise ValueError(f"{where}: {8 * source.getsampwidth()}-bit audio, not 16-bit")
            channels, rate = source.getnchannels(), source.getframerate()
            pcm = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{where} is not a readable WAV file ({exc})") from None
    return (pcm.reshape(-1, channels).astype(np.float32) / PCM_SCALE), rate


def write_clip_audio(folder, audio: np.ndarray | None, rate: int | None) -> dict | None:
    """Write a clip's audio as ``folder/audio.wav`` (``folder``: a path with ``write_bytes``,
    local or on a store, that nothing reads until its owner publishes it); the entry its
    manifest keeps, or None for a silent clip (no file)."""
    if audio is None:
        return None
    if not rate:
        raise ValueError("a clip with audio needs its audio_rate")
    samples = as_samples(audio)
    (folder / AUDIO_FILE).write_bytes(wav_bytes(samples, rate))
    return {"file": AUDIO_FILE, **describe(samples, rate)}


def read_clip_audio(folder, entry: dict | None) -> tuple[np.ndarray | None, int | None]:
    """A stored clip's audio and rate from its manifest ``entry`` (None, None: silent, or
    stored before clips kept their sound)."""
    if not entry:
        return None, None
    path = folder / entry.get("file", AUDIO_FILE)
    return read_wav(path.read_bytes(), path)
