"""The sound track: narration, the sound the model made, and a music bed ducked under the
speech, mixed to one stereo track exactly as long as the video, and muxed into the mp4 as
AAC (the video stream copied: still H.264 yuv420p, ``+faststart``).

Levels: speech at ``SPEECH_LUFS``, the bed at ``music.MUSIC_LUFS`` and ducked (ffmpeg's
``sidechaincompress`` keyed by the speech) while a line is spoken; model audio as the model
made it. Every figure lands in ``SoundTrack.levels`` for the asset's metadata.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from vidgen_pipeline.core.audio import (
    MIX_RATE,
    SILENCE_LUFS,
    as_channels,
    decode_audio,
    ffmpeg_exe,
    fit_length,
    gain_to,
    loudness_lufs,
    resample,
    run_ffmpeg,
    write_wav,
)
from vidgen_pipeline.core.music import music_bed
from vidgen_pipeline.core.narration import LEAD_S, speech_fitted, speech_room

SPEECH_LUFS = -16.0
AAC_BITRATE = "160k"
# The bed is pushed down by up to ~18 dB while speech (at -16 LUFS) is above ~-36 dBFS.
DUCKING = "sidechaincompress=threshold=0.015:ratio=10:attack=15:release=350:makeup=1"


class SoundPlan(BaseModel):
    """What a prompt's track holds, decided in ``optimized_prompts`` from its settings."""

    model_config = ConfigDict(extra="forbid")

    narration: bool = False
    voice_model: str | None = None
    music: str | None = None  # a stored input's reference (core/music.py)
    burn_subtitles: bool = False


@dataclass
class SceneSound:
    """One scene's sound: where it starts and how long it lasts in the video, its spoken
    line (mono at ``speech_rate``; empty: silence) and the model's audio (any rate)."""

    start_s: float
    duration_s: float
    line: str = ""
    speech: np.ndarray | None = None
    speech_rate: int = MIX_RATE
    model_audio: np.ndarray | None = None
    model_rate: int | None = None


@dataclass
class SoundTrack:
    """The mixed track (stereo float32 at ``MIX_RATE``), what it holds, and when each line is
    spoken (``(start_s, end_s, text)``, for the subtitles)."""

    samples: np.ndarray
    levels: dict = field(default_factory=dict)
    spoken: list[tuple[float, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def mix_track(
    scenes: Sequence[SceneSound], total_s: float, music: Path | None, folder: Path
) -> SoundTrack:
    """The track of ``scenes`` over a video of ``total_s`` seconds (``folder``: scratch)."""
    count = round(total_s * MIX_RATE)
    # 1. the narration, each line at its scene's start (fitted into the scene if need be)
    speech, spoken, notes = _narration(scenes, count)
    speech = gain_to(speech, SPEECH_LUFS)
    # 2. the model's own sound, each scene's placed at its start, fitted to its length
    model = _model_audio(scenes, count)
    # 3. the music bed, ducked under the speech
    levels: dict = {"speech_lufs": _rounded(loudness_lufs(speech))}
    bed = np.zeros((count, 2), np.float32)
    if music is not None:
        bed = music_bed(music, total_s)
        levels["music_lufs"] = _rounded(loudness_lufs(bed))
        if spoken:
            ducked = _ducked(bed, speech, folder)
            levels["duck_db"] = _duck_db(bed, ducked, spoken)
            bed = ducked
    # 4. the sum, kept under full scale
    mix = bed + as_channels(speech, 2) + model
    peak = float(np.max(np.abs(mix))) if count else 0.0
    if peak > 0.98:
        mix *= 0.98 / peak
        notes.append(f"mix scaled by {0.98 / peak:.2f} to stay under full scale")
    levels["mix_lufs"] = _rounded(loudness_lufs(mix))
    levels["model_audio_scenes"] = [
        i + 1 for i, s in enumerate(scenes) if s.model_audio is not None
    ]
    return SoundTrack(mix.astype(np.float32), levels, spoken, notes)


def _rounded(lufs: float) -> float | None:
    return None if lufs <= SILENCE_LUFS else round(lufs, 1)


def _narration(scenes: Sequence[SceneSound], count: int):
    speech = np.zeros((count, 1), np.float32)
    spoken, notes = [], []
    for number, scene in enumerate(scenes, 1):
        if scene.speech is None or len(scene.speech) == 0:
            continue
        line = resample(scene.speech, scene.speech_rate, MIX_RATE)[:, :1]
        factor, note = speech_fitted(len(line) / MIX_RATE, scene.duration_s)
        if note:
            notes.append(f"scene {number}: {note}")
            line = _tempo(line, factor)[: round(speech_room(scene.duration_s) * MIX_RATE)]
        start = round((scene.start_s + LEAD_S) * MIX_RATE)
        end = min(count, start + len(line))
        speech[start:end] += line[: end - start]
        spoken.append((start / MIX_RATE, end / MIX_RATE, scene.line))
    return speech, spoken, notes


def _tempo(samples: np.ndarray, factor: float) -> np.ndarray:
    raw = run_ffmpeg(
        ["-f", "f32le", "-ar", str(MIX_RATE), "-ac", "1", "-i", "-"]
        + ["-af", f"atempo={factor:.4f}", "-f", "f32le", "-"],
        np.ascontiguousarray(samples).tobytes(),
        "atempo",
    )
    return np.frombuffer(raw, np.float32).reshape(-1, 1).copy()


def _model_audio(scenes: Sequence[SceneSound], count: int) -> np.ndarray:
    track = np.zeros((count, 2), np.float32)
    for scene in scenes:
        if scene.model_audio is None or not scene.model_rate:
            continue
        audio = as_channels(resample(scene.model_audio, scene.model_rate, MIX_RATE), 2)
        start = round(scene.start_s * MIX_RATE)
        end = min(count, start + round(scene.duration_s * MIX_RATE))
        track[start:end] += fit_length(np.clip(audio, -1.0, 1.0), end - start)
    return track


def _ducked(bed: np.ndarray, speech: np.ndarray, folder: Path) -> np.ndarray:
    """``bed`` through ``sidechaincompress`` keyed by ``speech`` (both as WAV in ``folder``)."""
    write_wav(folder / "bed.wav", bed)
    write_wav(folder / "key.wav", as_channels(speech, 2))
    raw = run_ffmpeg(
        ["-i", str(folder / "bed.wav"), "-i", str(folder / "key.wav")]
        + ["-filter_complex", f"[0:a][1:a]{DUCKING}[out]", "-map", "[out]"]
        + ["-ar", str(MIX_RATE), "-ac", "2", "-f", "f32le", "-"],
        what="ducking",
    )
    return fit_length(np.frombuffer(raw, np.float32).reshape(-1, 2), len(bed))


def _duck_db(bed: np.ndarray, ducked: np.ndarray, spoken) -> float:
    """How far the bed went down while lines were spoken (dB, RMS)."""
    mask = np.zeros(len(bed), bool)
    for start, end, _ in spoken:
        mask[round(start * MIX_RATE) : round(end * MIX_RATE)] = True
    before = float(np.sqrt(np.mean(bed[mask] ** 2))) if mask.any() else 0.0
    after = float(np.sqrt(np.mean(ducked[mask] ** 2))) if mask.any() else 0.0
    return round(20 * np.log10(max(after, 1e-9) / max(before, 1e-9)), 1) if before else 0.0


def mux_track(video: Path, wav: Path, out: Path) -> Path:
    """``video`` with ``wav`` as its one AAC track, the video stream copied, ``+faststart``."""
    run_ffmpeg(
        ["-y", "-i", str(video), "-i", str(wav), "-map", "0:v:0", "-map", "1:a:0"]
        + ["-c:v", "copy", "-c:a", "aac", "-b:a", AAC_BITRATE, "-movflags", "+faststart"]
        + ["-f", "mp4", str(out)],
        what=f"muxing {Path(out).name}",
    )
    return out


_AUDIO_STREAM = re.compile(r"Stream #\d+:\d+[^:]*: Audio: (\w+)")


@dataclass(frozen=True)
class AudioFacts:
    """The audio streams of a file (their codecs) and how long the first one decodes."""

    codecs: list[str]
    duration_s: float


def probe_audio(path: Path) -> AudioFacts:
    """What ffmpeg says of ``path``'s audio streams, and the first one decoded in full."""
    info = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    codecs = _AUDIO_STREAM.findall(info)
    if not codecs:
        return AudioFacts([], 0.0)
    return AudioFacts(codecs, len(decode_audio(path, MIX_RATE, 1)) / MIX_RATE)
