"""Audio samples through ffmpeg (imageio-ffmpeg's binary): decoding, resampling, loudness,
WAV files. Samples are float32 ``(N, channels)`` in [-1, 1] throughout."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tempfile
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np

MIX_RATE = 48_000
SILENCE_LUFS = -70.0  # EBU R128's absolute gate: anything quieter is silence
_INTEGRATED = re.compile(r"I:\s+(-?[0-9.]+|-inf)\s+LUFS")


class AudioError(RuntimeError):
    """Audio that cannot be read or written; the message says which and why, in one line."""


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], data: bytes | None = None, what: str = "ffmpeg") -> bytes:
    """ffmpeg ``args`` with ``data`` on its standard input; its standard output."""
    feed = {"input": data} if data is not None else {"stdin": subprocess.DEVNULL}
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *args], capture_output=True, **feed
    )
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(f"{what}: {lines[-1] if lines else f'ffmpeg exit {done.returncode}'}")
    return done.stdout


def two_d(samples: np.ndarray) -> np.ndarray:
    """``samples`` as float32 ``(N, channels)`` (a 1-D array is one channel)."""
    audio = np.asarray(samples, np.float32)
    return audio[:, None] if audio.ndim == 1 else audio


def as_channels(samples: np.ndarray, channels: int) -> np.ndarray:
    """``samples`` as float32 ``(N, channels)``: mono spread, or channels averaged down."""
    audio = two_d(samples)
    if audio.shape[1] == channels:
        return audio
    mono = audio.mean(axis=1, keepdims=True)
    return np.repeat(mono, channels, axis=1)


def decode_audio(
    path: Path, rate: int = MIX_RATE, channels: int = 2, seconds: float | None = None
) -> np.ndarray:
    """The first audio stream of ``path`` at ``rate`` Hz and ``channels``; with ``seconds``,
    looped (``-stream_loop -1``) or cut to exactly that long."""
    loop = ["-stream_loop", "-1"] if seconds is not None else []
    limit = ["-t", f"{seconds:.6f}"] if seconds is not None else []
    raw = run_ffmpeg(
        [*loop, "-i", str(path), "-map", "0:a:0", *limit, "-ac", str(channels), "-ar", str(rate)]
        + ["-f", "f32le", "-"],
        what=f"{Path(path).name}",
    )
    audio = np.frombuffer(raw, np.float32).reshape(-1, channels)
    return audio if seconds is None else fit_length(audio, round(seconds * rate))


def fit_length(samples: np.ndarray, count: int) -> np.ndarray:
    """``samples`` cut or padded with silence to exactly ``count`` samples."""
    if len(samples) >= count:
        return samples[:count]
    pad = np.zeros((count - len(samples), samples.shape[1]), np.float32)
    return np.concatenate([samples, pad])


def resample(samples: np.ndarray, rate: int, to_rate: int = MIX_RATE) -> np.ndarray:
    """``samples`` (N, C) at ``rate`` Hz converted to ``to_rate`` by ffmpeg's resampler."""
    audio = two_d(samples)
    if rate == to_rate or len(audio) == 0:
        return audio
    channels = audio.shape[1]
    raw = run_ffmpeg(
        ["-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "-"]
        + ["-ar", str(to_rate), "-f", "f32le", "-"],
        np.ascontiguousarray(audio).tobytes(),
        "resample",
    )
    return np.frombuffer(raw, np.float32).reshape(-1, channels).copy()


def loudness_lufs(samples: np.ndarray, rate: int = MIX_RATE) -> float:
    """Integrated loudness (EBU R128, gated: silence between words does not count) by ffmpeg's
    ``ebur128``; ``SILENCE_LUFS`` for silence."""
    audio = two_d(samples)
    if not np.any(np.abs(audio) > 1e-5):
        return SILENCE_LUFS
    audio = fit_length(audio, max(len(audio), rate))  # ebur128 needs whole 400 ms blocks
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-f", "f32le", "-ar", str(rate)]
        + ["-ac", str(audio.shape[1]), "-i", "-", "-af", "ebur128=framelog=quiet", "-f", "null"]
        + ["-"],
        input=np.ascontiguousarray(audio).tobytes(),
        capture_output=True,
    )
    found = _INTEGRATED.findall(done.stderr.decode("utf-8", "replace"))
    if not found or found[-1] == "-inf":
        return SILENCE_LUFS
    return max(SILENCE_LUFS, float(found[-1]))


def gain_to(samples: np.ndarray, target_lufs: float, rate: int = MIX_RATE) -> np.ndarray:
    """``samples`` scaled so their loudness is ``target_lufs`` (silence stays silence; the
    peak is kept under -1 dBFS)."""
    measured = loudness_lufs(samples, rate)
    if measured <= SILENCE_LUFS:
        return samples
    gain = 10 ** ((target_lufs - measured) / 20)
    peak = float(np.max(np.abs(samples))) * gain
    if peak > 0.89:  # -1 dBFS
        gain *= 0.89 / peak
    return (samples * gain).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = MIX_RATE) -> bytes:
    """``samples`` as a 16-bit PCM WAV file's bytes."""
    audio = two_d(samples)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(audio.shape[1])
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def wav_samples(data: bytes, where: object = "WAV") -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file's bytes as float32 ``(N, channels)`` and its rate."""
    try:
        with wave.open(io.BytesIO(data), "rb") as source:
            channels, rate = source.getnchannels(), source.getframerate()
            if source.getsampwidth() != 2:
                raise AudioError(f"{where}: only 16-bit PCM WAV is read here")
            raw = source.readframes(source.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{where} is not a readable WAV file ({exc})") from None
    # The scale wav_bytes writes with, so a round trip is exact to half a step.
    return np.frombuffer(raw, "<i2").reshape(-1, channels).astype(np.float32) / 32767, rate


def write_wav(path: Path, samples: np.ndarray, rate: int = MIX_RATE) -> Path:
    """``samples`` as 16-bit PCM WAV at ``path``, atomically (temp file, then rename)."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(wav_bytes(samples, rate))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file as float32 ``(N, channels)`` and its rate."""
    return wav_samples(Path(path).read_bytes(), path)
