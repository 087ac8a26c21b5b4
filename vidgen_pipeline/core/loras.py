"""LoRAs for the video model: ``--lora PATH_OR_HUB_ID[:SCALE]`` (repeatable), the resource's
``loras``, a dataset's ``lora`` column, and the LoRA a few-step registry entry runs with.

A LoRA is one safetensors file: a local file, a folder holding one (diffusers' own name,
``pytorch_lora_weights.safetensors``, first), or a hub repo (``org/name``, or
``org/name/path/in/repo.safetensors``) found in the Hugging Face cache or downloaded when
allowed. Pickle files are refused: they run code when loaded. Each resolved LoRA records its
file, scale and revision, so it is part of the plan's provenance and of every scene's cache
key.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from vidgen_pipeline.core.weights import (
    UNSAFE_WEIGHT_SUFFIXES,
    WeightsError,
    download_or_explain,
    snapshot_of,
)

DIFFUSERS_NAME = "pytorch_lora_weights.safetensors"


@dataclass(frozen=True)
class LoraChoice:
    """One LoRA as resolved: what was asked, its file, its weight, where it was found."""

    given: str
    path: str
    scale: float
    source: str  # "local file", "Hugging Face cache", "download"
    revision: str | None = None

    def as_plan(self) -> dict:
        return asdict(self)


def parse_lora(text: str) -> tuple[str, float]:
    """``PATH_OR_HUB_ID[:SCALE]`` -> (name, scale); a tail that is not a number is part of the
    name (``C:\\loras\\x.safetensors``)."""
    text = (text or "").strip()
    if not text:
        raise WeightsError("lora: an empty name")
    name, sep, tail = text.rpartition(":")
    if sep and name:
        try:
            scale = float(tail)
        except ValueError:
            return text, 1.0
        if not math.isfinite(scale):
            raise WeightsError(f"lora {text!r}: the scale {tail} is not a number")
        return name, scale
    return text, 1.0


def resolve_lora(text: str, allow_download: bool = False) -> LoraChoice:
    """Find the safetensors file of ``text`` (see the module doc); one ``WeightsError`` line
    when it is missing, not a LoRA file, or pickle-only."""
    name, scale = parse_lora(text)
    local = Path(name).expanduser()
    if local.exists():
        return LoraChoice(text, str(_local_file(name, local.resolve())), scale, "local file")
    parts = name.split("/")
    if len(parts) < 2 or not all(parts) or name.startswith((".", "/", "~")):
        raise WeightsError(f"lora {name!r}: no such file, and not a hub id (org/name[/file])")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or DIFFUSERS_NAME
    _refuse_pickle(name, filename)
    path, source = _hub_file(name, repo, filename, allow_download)
    return LoraChoice(text, str(path), scale, source, snapshot_of(Path(path)))


def _local_file(name: str, path: Path) -> Path:
    if path.is_file():
        _refuse_pickle(name, path.name)
        if path.suffix != ".safetensors":
            raise WeightsError(f"lora {name!r}: {path.name} is not a .safetensors file")
        return path
    if (path / DIFFUSERS_NAME).is_file():
        return path / DIFFUSERS_NAME
    found = sorted(path.glob("*.safetensors"))
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(p.name for p in found)
        raise WeightsError(f"lora {name!r}: {path} holds several LoRA files ({names}); name one")
    pickled = [p.name for p in path.iterdir() if p.name.endswith(UNSAFE_WEIGHT_SUFFIXES)]
    if pickled:
        _refuse_pickle(name, pickled[0])
    raise WeightsError(f"lora {name!r}: {path} holds no .safetensors file")


def _refuse_pickle(name: str, filename: str) -> None:
    if filename.endswith(UNSAFE_WEIGHT_SUFFIXES):
        raise WeightsError(
            f"lora {name!r}: {filename} is a pickle file, which runs code when loaded; "
            "only .safetensors LoRAs are read (convert it first)"
        )


def _hub_file(name: str, repo: str, filename: str, allow_download: bool) -> tuple[Path, str]:
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True)), "Hugging Face cache"
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass
    downloaded = download_or_explain(
        f"lora {name!r}: {filename} from {repo}",
        "is not here",
        [f"Hugging Face cache ({constants.HF_HUB_CACHE})"],
        f"hf download {repo} {filename}",
        allow_download,
        lambda: hf_hub_download(repo, filename),
    )
    return downloaded, "download"
