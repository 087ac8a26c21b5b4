"""A prompt request: the text a user asked for, its settings, and its partition key.

Partition keys are derived from the text, never the text itself: Dagster accepts any string
as a dynamic partition key, but a key reaches file paths (IO managers, caches), so it must be
short, unique and safe whatever the prompt holds.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from upath import UPath

from vidgen_pipeline.core.storage import atomic_write_bytes, storage_path

MAX_PROMPT_CHARS = 100_000
_SAFE_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")


class PromptError(ValueError):
    """A prompt request that cannot be used, with a message for the user."""


class GenerationSettings(BaseModel):
    """Per-prompt overrides; ``None`` means "use the resource's default"."""

    model_config = ConfigDict(extra="forbid")

    style: str | None = None
    duration_s: float | None = Field(default=None, description="target length of the video")
    scenes: int | None = Field(default=None, description="number of scenes")
    seed: int | None = None
    script_model: str | None = None
    keyframe_model: str | None = None
    keyframe_steps: int | None = None
    video_model: str | None = None
    device: str | None = None
    steps: int | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = Field(default=None, description="the rate clips are generated at")
    # Finishing (see core/finishing.py): None means the post_production resource's default.
    output_fps: float | None = Field(default=None, gt=0, le=120, description="final video rate")
    interpolate: int | None = Field(
        default=None, ge=1, le=4, description="frame-rate multiplier by optical flow (1: off)"
    )
    transition: Literal["cut", "crossfade"] | None = None
    transition_s: float | None = Field(default=None, ge=0, le=10, description="crossfade, s")
    fade_s: float | None = Field(default=None, ge=0, le=10, description="fade in/out, s")
    crf: int | None = Field(default=None, ge=0, le=51, description="x264 quality")
    bitrate: str | None = Field(
        default=None, pattern=r"^[1-9][0-9]*[kKmM]?$", description="e.g. 5000k (instead of crf)"
    )


class PromptRequest(BaseModel):
    """What the ``prompt`` asset of one partition holds: the whole text and its settings."""

    model_config = ConfigDict(extra="forbid")

    text: str
    sample: int = 0
    settings: GenerationSettings = Field(default_factory=GenerationSettings)

    @field_validator("text")
    @classmethod
    def _text_is_usable(cls, value: str) -> str:
        return normalize_prompt(value)

    @property
    def partition_key(self) -> str:
        return partition_key_for(self.text, self.sample)


def normalize_prompt(text: str) -> str:
    """NFC-normalise and trim a prompt; refuse an empty or absurdly long one."""
    if not isinstance(text, str):
        raise PromptError("the prompt must be text")
    cleaned = unicodedata.normalize("NFC", text).replace("\x00", "").strip()
    if not cleaned:
        raise PromptError("the prompt is empty")
    if len(cleaned) > MAX_PROMPT_CHARS:
        raise PromptError(
            f"the prompt has {len(cleaned):,} characters; the limit is {MAX_PROMPT_CHARS:,}"
        )
    return cleaned


def slugify(text: str, max_len: int = 40) -> str:
    """Lower-case ASCII words of ``text`` joined by dashes (may be empty, e.g. for Chinese)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_len:
            break
        slug = candidate
    if not slug and words:
        slug = words[0][:max_len]  # one very long word
    return slug


def partition_key_for(text: str, sample: int = 0) -> str:
    """A stable, unique, file-name-safe key: readable slug plus a hash of the whole text."""
    normalized = normalize_prompt(text)
    digest = hashlib.sha256(f"{sample}\x1f{normalized}".encode()).hexdigest()[:12]
    slug = slugify(normalized) or "prompt"
    key = f"{slug}-{digest}"
    return f"{key}-s{sample}" if sample else key


def is_safe_key(key: str) -> bool:
    return bool(_SAFE_KEY.match(key))


def safe_path_component(partition_key: str) -> str:
    """The folder/file name used for a partition: the key itself when it is one of ours.

    A key typed into the UI ("Add partition") may be anything; it is then hashed too.
    """
    if is_safe_key(partition_key):
        return partition_key
    digest = hashlib.sha256(partition_key.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{slugify(partition_key) or 'key'}-{digest}"


class PromptStore:
    """One JSON document per partition key under a base path (local folder or fsspec URL)."""

    def __init__(self, base_path: str | Path):
        self.base = storage_path(base_path)

    def _path(self, partition_key: str) -> UPath:
        return self.base / f"{safe_path_component(partition_key)}.json"

    def put(self, request: PromptRequest) -> str:
        key = request.partition_key
        data = request.model_dump_json(indent=2).encode()
        atomic_write_bytes(self._path(key), data)
        return key

    def get(self, partition_key: str) -> PromptRequest | None:
        try:
            data = self._path(partition_key).read_bytes()
        except FileNotFoundError:
            return None
        return PromptRequest.model_validate(json.loads(data.decode("utf-8")))

    def request_for(self, partition_key: str) -> PromptRequest:
        """The stored request, or, for a key added by hand in the UI, the key as the prompt."""
        stored = self.get(partition_key)
        if stored is not None:
            return stored
        return PromptRequest(text=partition_key)
