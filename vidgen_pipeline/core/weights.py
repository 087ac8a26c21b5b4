"""Finding model weights: a local folder wins, then the Hugging Face cache, then a download.

Every miss says which model, which places were tried and the command that fetches it, and
a folder is checked before anything loads: ``model_index.json``, every component's folder,
and safetensors weights (pickle-based ``.bin`` files only when the user opts in). A single
file (a few-step model's replacement UNet) is found the same way by ``resolve_file``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from vidgen_pipeline.core.storage import vidgen_home

UNSAFE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# What a diffusers/transformers folder needs, and not the single-file checkpoints many repos
# also keep at their root (svd_xt.safetensors, ...: gigabytes nothing here loads).
DOWNLOAD_PATTERNS = [
    "*.json",
    "*.txt",
    "*.model",
    "*.jinja",
    "*.py",
    "model*.safetensors",
    "*/*.safetensors",
]


class WeightsError(ValueError):
    """Weights that cannot be used, with a one-line message for the user."""


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a model's files are, how they were found, and what its index says."""

    path: Path
    source: str  # "local folder", "VIDGEN_HOME/models", "Hugging Face cache", "download"
    pipeline_class: str
    revision: str | None = None
    variant: str | None = None  # "fp16" when only *.fp16.safetensors files are there


def models_dir() -> Path:
    """Where ``hf download ... --local-dir`` puts a registry model: ``VIDGEN_HOME/models``."""
    return vidgen_home() / "models"


def fetch_command(hub_id: str, registry_name: str | None) -> str:
    """A registry model goes to VIDGEN_HOME/models/<name>; any other hub id to the HF cache."""
    include = " ".join(f"'{p}'" for p in DOWNLOAD_PATTERNS)
    if registry_name:
        return (
            f"hf download {hub_id} --include {include} --local-dir {models_dir() / registry_name}"
        )
    return f"hf download {hub_id} --include {include}"


def downloads_allowed(setting: bool) -> bool:
    """The resource setting, or ``VIDGEN_ALLOW_DOWNLOAD=1`` (what ``--allow-download`` sets)."""
    return setting or os.environ.get("VIDGEN_ALLOW_DOWNLOAD", "") in ("1", "true", "yes")


def resolve_weights(
    kind: str,
    name_or_path: str,
    hub_id: str | None,
    registry_name: str | None,
    allow_download: bool = False,
    allow_unsafe_weights: bool = False,
    layout: str = "diffusers",
) -> ResolvedWeights:
    """Find and check a diffusers pipeline folder for ``name_or_path``.

    Order: an existing local path; ``VIDGEN_HOME/models/<registry name>``; the Hugging Face
    cache (no network); a download into that cache when ``allow_download``. ``layout`` is
    ``diffusers`` (a pipeline folder) or ``transformers`` (one model with its tokenizer).
    """
    check = _checked if layout == "diffusers" else _checked_transformers
    tried: list[str] = []
    local = Path(name_or_path).expanduser().resolve()
    if local.exists():
        return check(kind, name_or_path, local, "local folder", allow_unsafe_weights)
    if hub_id is None:
        raise WeightsError(f"{kind} model {name_or_path!r}: {local} does not exist")
    if registry_name:
        candidate = models_dir() / registry_name
        tried.append(str(candidate))
        if candidate.exists():
            return _checked(
                kind, name_or_path, candidate, "VIDGEN_HOME/models", allow_unsafe_weights
            )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        cached = snapshot_download(hub_id, local_files_only=True)
        return _checked(
            kind, name_or_path, Path(cached), "Hugging Face cache", allow_unsafe_weights
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        # ValueError: not a valid hub id (HFValidationError), so not in the cache either
        from huggingface_hub import constants

        tried.append(f"Hugging Face cache ({constants.HF_HUB_CACHE})")
    patterns = (
        None if allow_unsafe_weights else ["*.json", "*.txt", "*.model", "*.safetensors", "*.py"]
    )
    downloaded = _download_or_explain(
        f"{kind} model {name_or_path!r} ({hub_id})",
        "has no weights here",
        tried,
        fetch_command(hub_id, registry_name),
        allow_download,
        lambda: snapshot_download(hub_id, allow_patterns=patterns),
    )
    return check(kind, name_or_path, downloaded, "download", allow_unsafe_weights)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _download_or_explain(what, missing, tried, fetch, allow_download, download) -> Path:
    """``download()`` when downloads are allowed; else, or when it fails, one line naming the
    places tried and the command that fetches the files."""
    from huggingface_hub.errors import HfHubHTTPError

    if not downloads_allowed(allow_download):
        raise WeightsError(
            f"{what} {missing}; tried {'; '.join(tried)}; downloading is off (allow_download). "
            f"Fetch it with: {fetch}"
        )
    try:
        return Path(download())
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise WeightsError(
            f"{what}: download failed ({first_line(exc)}); tried {'; '.join(tried)}. "
            f"Fetch it with: {fetch}"
        ) from None


@dataclass(frozen=True)
class ResolvedFile:
    """One weights file (a replacement UNet's state dict) and how it was found."""

    path: Path
    source: str  # "local file", "VIDGEN_HOME/models", "Hugging Face cache", "download"
    revision: str | None = None  # the hub snapshot's commit, when it came from the hub


def fetch_file_command(hub_id: str, filename: str, registry_name: str) -> str:
    """The command that puts one file of a hub repo where ``resolve_file`` looks first."""
    return f"hf download {hub_id} {filename} --local-dir {models_dir() / registry_name}"


def resolve_file(
    kind: str,
    registry_name: str,
    hub_id: str,
    filename: str,
    local_path: str = "",
    allow_download: bool = False,
) -> ResolvedFile:
    """Find the safetensors file ``filename`` of ``hub_id`` for the registry model
    ``registry_name``.

    Order: ``local_path`` when given (the file, or a folder holding ``filename``; nothing else
    is tried then); ``VIDGEN_HOME/models/<registry name>/<filename>``; the Hugging Face cache
    (no network); a download into that cache when ``allow_download``. Only ``.safetensors``
    files are taken: the file is a bare state dict, and pickle files run code when loaded.
    """
    label = f"{kind} model {registry_name!r}"
    if local_path:
        local = Path(local_path).expanduser().resolve()
        path = local / filename if local.is_dir() else local
        if not path.is_file():
            raise WeightsError(f"{label}: {path} does not exist")
        if path.suffix != ".safetensors":
            raise WeightsError(f"{label}: {path} is not a .safetensors file")
        return ResolvedFile(path, "local file")
    if not filename.endswith(".safetensors"):
        raise WeightsError(f"{label}: {filename} is not a .safetensors file")
    candidate = models_dir() / registry_name / filename
    if candidate.is_file():
        return ResolvedFile(candidate, "VIDGEN_HOME/models")
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        cached = Path(hf_hub_download(hub_id, filename, local_files_only=True))
        return ResolvedFile(cached, "Hugging Face cache", _snapshot(cached))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass
    downloaded = _download_or_explain(
        f"{label}: {filename} from {hub_id}",
        "is not here",
        [str(candidate), f"Hugging Face cache ({constants.HF_HUB_CACHE})"],
        fetch_file_command(hub_id, filename, registry_name),
        allow_download,
        lambda: hf_hub_download(hub_id, filename),
    )
    return ResolvedFile(downloaded, "download", _snapshot(downloaded))


def _snapshot(path: Path) -> str | None:
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def _checked(
    kind: str, name: str, folder: Path, source: str, allow_unsafe: bool
) -> ResolvedWeights:
    index = _read_json(kind, name, folder / "model_index.json", "not a diffusers pipeline folder")
    variant = None
    components = {
        key: value
        for key, value in index.items()
        if not key.startswith("_") and isinstance(value, list) and value[0] is not None
    }
    for component in components:
        sub = folder / component
        if not sub.is_dir():
            raise WeightsError(
                f"{kind} model {name!r}: {folder} lacks the component folder {component}/"
            )
        if not (sub / "config.json").is_file():
            continue  # schedulers, tokenizers and processors carry no weights
        _weights_problem(kind, name, sub, f"{component}/", allow_unsafe)
        names = [p.name for p in sub.glob("*.safetensors")]
        if names and all(".fp16." in n for n in names):
            variant = "fp16"  # what the model cards' `variant="fp16"` downloads leave behind
    revision = folder.name if source in ("Hugging Face cache", "download") else None
    return ResolvedWeights(folder, source, str(index.get("_class_name", "")), revision, variant)


def _read_json(kind: str, name: str, path: Path, missing: str) -> dict:
    if not path.is_file():
        raise WeightsError(f"{kind} model {name!r}: {path.parent} has no {path.name} ({missing})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise WeightsError(f"{kind} model {name!r}: {path} is not valid JSON ({exc})") from None


def _weights_problem(kind: str, name: str, folder: Path, label: str, allow_unsafe: bool) -> None:
    files = [p.name for p in folder.iterdir() if p.is_file()]
    safe = [f for f in files if f.endswith(".safetensors")]
    unsafe = [f for f in files if f.endswith(UNSAFE_WEIGHT_SUFFIXES)]
    if not safe and unsafe and not allow_unsafe:
        raise WeightsError(
            f"{kind} model {name!r}: {label} has only pickle weights ({unsafe[0]}); "
            "convert them to safetensors or opt in with allow_unsafe_weights"
        )
    if not safe and not unsafe:
        raise WeightsError(f"{kind} model {name!r}: {label} has a config but no weights")


def _checked_transformers(
    kind: str, name: str, folder: Path, source: str, allow_unsafe: bool
) -> ResolvedWeights:
    """A transformers model folder: config.json, weights, and a tokenizer."""
    config = _read_json(kind, name, folder / "config.json", "not a transformers model")
    if not any(
        (folder / f).is_file()
        for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    ):
        raise WeightsError(f"{kind} model {name!r}: {folder} has no tokenizer files")
    _weights_problem(kind, name, folder, str(folder), allow_unsafe)
    architecture = (config.get("architectures") or [config.get("model_type", "")])[0]
    revision = folder.name if source in ("Hugging Face cache", "download") else None
    return ResolvedWeights(folder, source, str(architecture), revision)
