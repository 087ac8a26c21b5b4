"""The narrator resource: speaks the storyboard's narration lines.

A voice is, in this order: the prompt's ``voice_model`` or the resource's (a local folder or
hub id of a transformers ``text-to-speech`` model: VITS / MMS-TTS and the like, checked by the
video models' weights rules: safetensors only unless opted in, a broken or pickle-only folder
is one line before any model loads), else ``espeak-ng`` when installed (no weights; ``cmn``
for Chinese). Spoken lines are cached by text and voice (``VIDGEN_HOME/cache/speech``), so the
``script`` step that times the scenes and ``final_video`` that mixes them speak each once.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dagster import ConfigurableResource
from pydantic import Field

from vidgen_pipeline.core.audio import read_wav, two_d, write_wav
from vidgen_pipeline.core.models import ModelChoiceError, looks_like_hub_id
from vidgen_pipeline.core.storage import vidgen_home
from vidgen_pipeline.core.weights import WeightsError, resolve_weights

ESPEAK_VOICES = {"zh": "cmn", "en": "en"}
HOW_TO_GET_A_VOICE = (
    "narration needs a voice: no text-to-speech model is set and espeak-ng is not installed; "
    "install espeak-ng (apt-get install espeak-ng) or pass --voice-model FOLDER_OR_HUB_ID "
    "(a transformers text-to-speech model such as facebook/mms-tts-eng, safetensors)"
)


@dataclass(frozen=True)
class Voice:
    """A resolved voice: ``kind`` ``model`` (``name`` its folder) or ``espeak`` (``name``
    the espeak-ng voice); ``identity`` is what the speech cache and provenance record."""

    kind: str
    name: str
    identity: str


class Narrator(ConfigurableResource):
    """Text-to-speech for narration: a transformers model, else espeak-ng."""

    voice_model: str = Field(
        default="",
        description="a text-to-speech model folder or hub id (VITS / MMS-TTS); empty: espeak-ng",
    )
    espeak: str = Field(default="espeak-ng", description="the espeak-ng program")
    words_per_minute: int = Field(default=160, description="espeak-ng's speaking rate")
    allow_download: bool = Field(default=False, description="download a missing voice model")
    allow_unsafe_weights: bool = Field(default=False, description="load pickle (.bin) weights")

    def voice(self, voice_model: str | None, language: str) -> Voice:
        """The voice for a prompt in ``language`` (``en``, ``zh``); one ``ModelChoiceError``
        line when there is none, or the model folder cannot be used."""
        name = (voice_model or self.voice_model or "").strip()
        if name:
            return _model_voice(name, self.allow_download, self.allow_unsafe_weights)
        program = shutil.which(self.espeak)
        if program is None:
            raise ModelChoiceError(HOW_TO_GET_A_VOICE)
        voice = ESPEAK_VOICES.get(language, "en")
        version = _espeak_version(program)
        return Voice("espeak", voice, f"{version} -v {voice} -s {self.words_per_minute}")

    def speak(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        """``text`` spoken by ``voice``: mono float32 ``(N, 1)`` and its rate; an empty line
        is no samples (silence). Cached by text and voice."""
        text = " ".join((text or "").split())
        if not text:
            return np.zeros((0, 1), np.float32), 16_000
        key = hashlib.sha256(f"{voice.kind}\x1f{voice.identity}\x1f{text}".encode()).hexdigest()
        cached = vidgen_home() / "cache" / "speech" / f"{key}.wav"
        if cached.is_file():
            return read_wav(cached)
        if voice.kind == "model":
            samples, rate = _model_speech(voice.name, text)
        else:
            samples, rate = self._espeak_speech(voice.name, text)
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_wav(cached, samples, rate)
        return read_wav(cached)  # what a later run will read: the same 16-bit samples

    def _espeak_speech(self, voice: str, text: str) -> tuple[np.ndarray, int]:
        # The text goes in on stdin (never as an argument: a line may start with "-").
        done = subprocess.run(
            [self.espeak, "-v", voice, "-s", str(self.words_per_minute), "-b", "1"]
            + ["--stdin", "--stdout"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=120,
        )
        if done.returncode != 0 or not done.stdout:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise ModelChoiceError(f"espeak-ng -v {voice}: {reason[-1] if reason else 'no audio'}")
        with wave.open(io.BytesIO(_fixed_wav_header(done.stdout)), "rb") as source:
            rate, width = source.getframerate(), source.getsampwidth()
            raw = source.readframes(source.getnframes())
        if width != 2:
            raise ModelChoiceError(f"espeak-ng -v {voice}: {8 * width}-bit audio, not 16-bit")
        return np.frombuffer(raw, "<i2").astype(np.float32)[:, None] / 32768, rate


def _fixed_wav_header(data: bytes) -> bytes:
    """espeak-ng writing to a pipe cannot seek back to fill in its WAV sizes: set them."""
    if data[:4] != b"RIFF" or data[36:40] != b"data":
        return data
    body = len(data) - 44
    return (
        data[:4]
        + (36 + body).to_bytes(4, "little")
        + data[8:40]
        + body.to_bytes(4, "little")
        + data[44:]
    )


@functools.lru_cache(maxsize=4)
def _espeak_version(program: str) -> str:
    done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
    return " ".join(done.stdout.split()[:4]) or "espeak-ng"


def _model_voice(name: str, allow_download: bool, allow_unsafe: bool) -> Voice:
    """A text-to-speech model's voice, its folder checked before anything loads."""
    try:
        weights = resolve_weights(
            "voice",
            name,
            name if looks_like_hub_id(name) else None,
            None,
            allow_download,
            allow_unsafe,
            layout="transformers",
        )
    except WeightsError as exc:
        raise ModelChoiceError(str(exc)) from None
    model_type = _model_type(weights.path)
    if model_type not in _speech_model_types():
        raise ModelChoiceError(
            f"voice model {name!r}: {weights.path} is a {model_type or 'unknown'} model, not "
            "one transformers' text-to-speech pipeline runs (VITS / MMS-TTS, Bark, ...)"
        )
    return Voice("model", str(weights.path), f"{model_type}:{_folder_digest(weights.path)}")


def _model_type(folder: Path) -> str:

    return str(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type"))


def _speech_model_types() -> set[str]:
    from transformers.models.auto import modeling_auto

    return set(modeling_auto.MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES) | set(
        modeling_auto.MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES
    )


def _folder_digest(folder: Path) -> str:
    """The model's config and its weight files' names and sizes (its identity in caches)."""
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=2)
def _speech_pipeline(folder: str):
    from transformers import pipeline

    return pipeline("text-to-speech", model=folder, device="cpu")


def _model_speech(folder: str, text: str) -> tuple[np.ndarray, int]:
    import torch

    torch.manual_seed(0)  # VITS samples its durations and noise: the same line, the same sound
    out = _speech_pipeline(folder)(text)
    audio = two_d(np.asarray(out["audio"], np.float32).reshape(-1))
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return (audio / peak * 0.9 if peak > 1.0 else audio), int(out["sampling_rate"])
