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

from collections.abc import Sequence

import numpy as np

# One WAV writer and reader, and one length fit, for clips and the mix (core/audio.py).
from vidgen_pipeline.core.audio import AudioError, fit_length, wav_bytes, wav_samples

AUDIO_FILE = "audio.wav"


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


def read_wav(data: bytes, where: object = "WAV") -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file's samples as float32 (N, channels) in [-1, 1], and its rate; a
    damaged file is a ValueError (the scene cache then makes its scene again)."""
    try:
        return wav_samples(data, where)
    except AudioError as exc:
        raise ValueError(str(exc)) from None


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
