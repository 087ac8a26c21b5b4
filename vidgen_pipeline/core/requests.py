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
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.fields import FieldInfo
from upath import UPath

from vidgen_pipeline.core.setting_kinds import FINISHING_GROUP, SOUND_GROUP, Column, Flag, Setting
from vidgen_pipeline.core.storage import atomic_write_bytes, storage_path

MAX_PROMPT_CHARS = 100_000
_SAFE_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")


class PromptError(ValueError):
    """A prompt request that cannot be used, with a message for the user."""


class GenerationSettings(BaseModel):
    """Per-prompt overrides; ``None`` means "use the resource's default".

    Each field says where it can be set (``Setting``); the CLI options, the Launchpad config
    and the dataset columns are built from these, in this order.
    """

    model_config = ConfigDict(extra="forbid")

    video_model: Annotated[
        str | None,
        Setting(
            flag=Flag(
                "--video-model",
                "NAME_OR_PATH",
                "auto (default), a registry name (vidgen models lists them: wan2.1-t2v-1.3b, "
                "wan2.2-ti2v-5b, ltx-video, cogvideox-5b, hunyuanvideo-1.5-480p, svd-xt, ...), "
                "animatic, a hub id or a local folder",
            ),
            launchpad=True,
            column=Column("video_model", cell="video_model"),
        ),
    ] = Field(default=None, description="auto, animatic, or a model name/path")
    keyframe_model: Annotated[
        str | None,
        Setting(
            flag=Flag("--keyframe-model", "NAME_OR_PATH", "cards (default)"),
            column=Column("keyframe_model", cell="keyframe_model"),
        ),
    ] = None
    keyframe_steps: Annotated[
        int | None,
        Setting(
            flag=Flag("--keyframe-steps", "N", "text-to-image denoising steps", "positive_int")
        ),
    ] = None
    script_model: Annotated[
        str | None,
        Setting(
            flag=Flag("--script-model", "NAME_OR_PATH", "rules (default)"),
            column=Column("script_model"),
        ),
    ] = None
    device: Annotated[
        str | None, Setting(flag=Flag("--device", choices=("auto", "cpu", "cuda")))
    ] = None
    steps: Annotated[
        int | None, Setting(flag=Flag("--steps", "N", "denoising steps", "positive_int"))
    ] = None
    frames: Annotated[
        int | None,
        Setting(flag=Flag("--frames", "N", "frames per generated clip", "positive_int")),
    ] = None
    width: Annotated[
        int | None, Setting(flag=Flag("--width", "W", parse="positive_int"), launchpad=True)
    ] = None
    height: Annotated[
        int | None, Setting(flag=Flag("--height", "H", parse="positive_int"), launchpad=True)
    ] = None
    fps: Annotated[
        float | None, Setting(flag=Flag("--fps", "N", parse="positive_float"), launchpad=True)
    ] = Field(default=None, description="rate the clips are generated at")
    lora: Annotated[
        list[str] | None,
        Setting(
            flag=Flag(
                "--lora",
                "PATH_OR_HUB_ID[:SCALE]",
                "a LoRA on the video model (repeatable): a .safetensors file, a folder, or a "
                "hub repo[/file]; :SCALE its weight (default 1)",
            ),
            launchpad=True,
            column=Column("lora", cell="list"),
        ),
    ] = Field(
        default=None,
        description="LoRAs on the video model: PATH_OR_HUB_ID[:SCALE] each (safetensors only)",
    )
    image: Annotated[
        str | None,
        Setting(
            flag=Flag(
                "--image",
                "PATH",
                "the first scene starts from this image (image-capable models; the "
                "animatic's first card)",
            ),
            launchpad=True,
            column=Column("image", cell="text"),
        ),
    ] = Field(
        default=None,
        description="an image the first scene starts from: a file under VIDGEN_HOME/inputs "
        "(or a folder in video_generator.image_dirs); stored as inputs/<sha256>.<ext>",
    )
    seed: Annotated[
        int | None,
        Setting(flag=Flag("--seed", "N"), launchpad=True, column=Column("seed", cell="seed")),
    ] = None
    scenes: Annotated[
        int | None,
        Setting(
            flag=Flag("--scenes", "N", "number of scenes"),
            launchpad=True,
            column=Column("scenes", cell="count"),
        ),
    ] = Field(default=None, description="number of scenes")
    duration_s: Annotated[
        float | None,
        Setting(
            flag=Flag("--duration", "SECONDS", "target length (default 8)"),
            launchpad=True,
            column=Column("duration", aliases=("duration_s",), cell="seconds"),
        ),
    ] = Field(default=None, description="target length in seconds")
    style: Annotated[
        str | None,
        Setting(
            flag=Flag("--style", help="cinematic (default), documentary, anime, watercolor, none"),
            launchpad=True,
            column=Column("style", cell="style"),
        ),
    ] = Field(default=None, description="cinematic, documentary, anime, watercolor, none")
    # Finishing (see core/finishing/plan.py): None means the finishing resource's default.
    interpolate: Annotated[
        int | None,
        Setting(
            flag=Flag(
                "--interpolate",
                "N",
                "frame-rate multiplier by optical flow, 1..4 (1: none; default: up to 24 fps)",
                choices=range(1, 5),
                group=FINISHING_GROUP,
            ),
            launchpad=True,
        ),
    ] = Field(default=None, ge=1, le=4, description="1..4: optical-flow frames")
    output_fps: Annotated[
        float | None,
        Setting(
            flag=Flag(
                "--output-fps", "N", "final video rate", "positive_float", group=FINISHING_GROUP
            ),
            launchpad=True,
        ),
    ] = Field(default=None, gt=0, le=120, description="final video rate")
    transition: Annotated[
        Literal["cut", "crossfade"] | None,
        Setting(
            flag=Flag("--transition", help="between scenes", group=FINISHING_GROUP), launchpad=True
        ),
    ] = Field(default=None, description="cut or crossfade")
    transition_s: Annotated[
        float | None,
        Setting(
            flag=Flag(
                "--transition-seconds",
                "S",
                "crossfade length",
                "non_negative_float",
                group=FINISHING_GROUP,
            ),
            launchpad=True,
        ),
    ] = Field(default=None, ge=0, le=10, description="crossfade length, seconds")
    fade_s: Annotated[
        float | None,
        Setting(
            flag=Flag(
                "--fade", "S", "fade in and out", "non_negative_float", group=FINISHING_GROUP
            ),
            launchpad=True,
        ),
    ] = Field(default=None, ge=0, le=10, description="fade in and out, seconds")
    crf: Annotated[
        int | None,
        Setting(
            flag=Flag(
                "--crf", "N", "x264 quality 0..51 (18)", choices=range(0, 52), group=FINISHING_GROUP
            ),
            launchpad=True,
        ),
    ] = Field(default=None, ge=0, le=51, description="x264 quality 0..51")
    bitrate: Annotated[
        str | None,
        Setting(
            flag=Flag(
                "--bitrate", "RATE", "e.g. 5000k: average bitrate, not CRF", group=FINISHING_GROUP
            ),
            launchpad=True,
        ),
    ] = Field(
        default=None, pattern=r"^[1-9][0-9]*[kKmM]?$", description="e.g. 5000k: instead of crf"
    )
    # Sound (see core/sound.py): None means the narrator resource's default.
    narration: Annotated[
        bool | None,
        Setting(
            flag=Flag("--narration", help="speak a line per scene", group=SOUND_GROUP),
            launchpad=True,
            column=Column("narration"),
        ),
    ] = Field(default=None, description="speak a narration line per scene")
    voice_model: Annotated[
        str | None,
        Setting(
            flag=Flag(
                "--voice-model",
                "FOLDER_OR_HUB_ID",
                "a transformers text-to-speech model (e.g. facebook/mms-tts-eng); default "
                "espeak-ng",
                group=SOUND_GROUP,
            ),
            launchpad=True,
            column=Column("voice_model", cell="text"),
        ),
    ] = Field(default=None, description="text-to-speech model folder or hub id (safetensors)")
    music: Annotated[
        str | None,
        Setting(
            flag=Flag(
                "--music", "FILE", "a music bed (any format ffmpeg reads)", group=SOUND_GROUP
            ),
            launchpad=True,
            column=Column("music", cell="text"),
        ),
    ] = Field(
        default=None,
        description="a music file under VIDGEN_HOME/inputs; stored as inputs/<sha256>.<ext>",
    )
    burn_subtitles: Annotated[
        bool | None,
        Setting(
            flag=Flag(
                "--burn-subtitles", help="draw the narration into the picture", group=SOUND_GROUP
            ),
            launchpad=True,
            column=Column("burn_subtitles"),
        ),
    ] = Field(default=None, description="draw the narration into the picture")


def settings_fields(
    model: type[BaseModel] = GenerationSettings,
) -> list[tuple[str, FieldInfo, Setting]]:
    """``(name, field, setting)`` for each field of ``model`` that says where it can be set,
    in the model's order."""
    found = []
    for name, info in model.model_fields.items():
        setting = next((m for m in info.metadata if isinstance(m, Setting)), None)
        if setting is not None:
            found.append((name, info, setting))
    return found


def value_type(info: FieldInfo) -> tuple[Any, bool]:
    """A field's type without ``None``, and whether it is a list: ``int | None`` gives
    ``(int, False)``, ``list[str] | None`` gives ``(str, True)``,
    ``Literal["a", "b"] | None`` gives ``(Literal["a", "b"], False)``."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        annotation = kinds[0] if len(kinds) == 1 else annotation
    if get_origin(annotation) is list:
        (item,) = get_args(annotation) or (str,)
        return item, True
    return annotation, False


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

    def path_for(self, partition_key: str) -> UPath:
        """Where the request of ``partition_key`` is stored (always inside the base path)."""
        return self.base / f"{safe_path_component(partition_key)}.json"

    def put(self, request: PromptRequest) -> str:
        key = request.partition_key
        data = request.model_dump_json(indent=2).encode()
        atomic_write_bytes(self.path_for(key), data)
        return key

    def get(self, partition_key: str) -> PromptRequest | None:
        try:
            data = self.path_for(partition_key).read_bytes()
        except FileNotFoundError:
            return None
        return PromptRequest.model_validate(json.loads(data.decode("utf-8")))

    def request_for(self, partition_key: str) -> PromptRequest:
        """The stored request, or, for a key added by hand in the UI, the key as the prompt."""
        stored = self.get(partition_key)
        if stored is not None:
            return stored
        return PromptRequest(text=partition_key)
