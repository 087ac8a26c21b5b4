"""Finding model weights: a local folder wins, then the Hugging Face cache, then a download.

Every miss says which model, which places were tried and the command that fetches it, and
a folder is checked before anything loads: ``model_index.json``, every component's folder,
and safetensors weights (pickle-based ``.bin`` files only when the user opts in). A single
file (a few-step model's replacement UNet) is found the same way by ``resolve_file``.

The same places serve diffusers pipelines (``layout="diffusers"``) and transformers models
such as the storyboard LLM (``layout="transformers"``): a folder given as a path,
``VIDGEN_HOME/models/<registry name>``, a Hugging Face cache snapshot. Weights may be in
full precision, in the ``fp16`` variant only (``*.fp16.safetensors``: what the model cards'
``variant="fp16"`` downloads leave), or both; ``ResolvedWeights.variant_for`` says which
files a load in a given dtype reads, and a download fetches one precision only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from vidgen_pipeline.core.storage import vidgen_home

UNSAFE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
WEIGHT_SUFFIXES = (".safetensors", *UNSAFE_WEIGHT_SUFFIXES)
# Configs, tokenizers, chat templates: small files a folder needs besides its weights.
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".jinja")
HALF = "fp16"  # the one weights variant read here (bf16 loads read it too: half the IO)


class WeightsError(ValueError):
    """Weights that cannot be used, with a one-line message for the user."""


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a model's files are, how they were found, and what its index says."""

    path: Path
    source: str  # "local folder", "VIDGEN_HOME/models", "Hugging Face cache", "download"
    pipeline_class: str
    revision: str | None = None
    # The fp16 variant: "some" components have *.fp16.safetensors beside full-precision
    # files, "only" some have nothing else (diffusers must then be told variant="fp16").
    half_files: str | None = None  # None, "some" or "only"

    def variant_for(self, dtype: str) -> str | None:
        """The variant a load in ``dtype`` reads: ``fp16`` for half precision (fp16, bf16)
        when the files are there, and whenever a component has no other; else None (the
        full-precision files)."""
        if self.half_files == "only" or (self.half_files and dtype in ("fp16", "bf16")):
            return HALF
        return None


def models_dir() -> Path:
    """Where ``hf download ... --local-dir`` puts a registry model: ``VIDGEN_HOME/models``."""
    return vidgen_home() / "models"


def fetch_command(
    hub_id: str,
    registry_name: str | None,
    layout: str = "diffusers",
    precision: str = "fp32",
    half_variant: bool = False,
) -> str:
    """The ``hf download`` command that fetches what a load reads: a registry model into
    VIDGEN_HOME/models/<name>, any other hub id into the HF cache.

    Diffusers layout: the index and the component folders, not the root single-file
    checkpoints (``svd_xt.safetensors``, ...). ``half_variant``: the repo publishes
    ``*.fp16.safetensors`` beside full precision; then only the ``precision`` wanted is
    fetched. (``download_plan`` chooses file by file where the repo's listing is at hand.)
    """
    weights = f"*.{HALF}.safetensors" if half_variant and precision == HALF else "*.safetensors"
    if layout == "transformers":
        include = ["*.json", "*.txt", "*.model", "*.jinja", "*.py", weights]
    else:
        include = ["model_index.json", "*/*.json", "*/*.txt", "*/*.model", f"*/{weights}"]
    command = f"hf download {hub_id} --include {' '.join(repr(p) for p in include)}"
    if half_variant and precision != HALF:
        command += f" --exclude '*.{HALF}.*'"
    if registry_name:
        command += f" --local-dir {models_dir() / registry_name}"
    return command


def is_half_file(name: str) -> bool:
    """``model.fp16.safetensors``, ``diffusion_pytorch_model.fp16-00001-of-00002.safetensors``."""
    return f".{HALF}." in name or f".{HALF}-" in name


def download_plan(
    files: list[str],
    layout: str,
    model_index: dict | None = None,
    precision: str = "fp32",
    allow_unsafe: bool = False,
) -> list[str]:
    """The files of a hub repo (``files``: its listing) that a load reads, in one precision.

    Diffusers layout: ``model_index.json`` and, per component it names, the component's
    configs, tokenizer files and weights: the ``precision`` (``fp16`` or ``fp32``) files where
    the component has them, else the other precision. Nothing else: no root single-file
    checkpoints, ONNX exports, images or components the index does not name. Transformers
    layout: the root's configs, tokenizer files, code and weights (not ``onnx/``,
    ``original/``...). Pickle weights only with ``allow_unsafe`` and only where a folder has
    no safetensors.
    """
    if layout == "transformers":
        return _folder_plan([f for f in files if "/" not in f], "", precision, allow_unsafe, True)
    chosen = ["model_index.json"] if "model_index.json" in files else []
    for component in sorted(_index_components(model_index or {})):
        inside = [f for f in files if f.startswith(f"{component}/")]
        chosen += _folder_plan(inside, component, precision, allow_unsafe, False)
    return chosen


def _folder_plan(
    files: list[str], folder: str, precision: str, allow_unsafe: bool, with_code: bool
) -> list[str]:
    """One folder's configs (and code) plus its weights in one precision."""
    keep = CONFIG_SUFFIXES + ((".py",) if with_code else ())
    chosen = [f for f in files if f.endswith(keep)]
    for suffixes in ((".safetensors",), UNSAFE_WEIGHT_SUFFIXES if allow_unsafe else ()):
        weights = [f for f in files if f.endswith(suffixes)]
        if weights:
            half = [f for f in weights if is_half_file(f)]
            full = [f for f in weights if not is_half_file(f)]
            preferred, other = (half, full) if precision == HALF else (full, half)
            return chosen + (preferred or other)
    return chosen


def folder_variant(folder: Path, dtype: str) -> str | None:
    """The variant a load in ``dtype`` reads from one model folder (a motion adapter's):
    ``fp16`` for half precision when its files are there, or when they are the only ones."""
    names = [p.name for p in Path(folder).iterdir() if p.name.endswith(WEIGHT_SUFFIXES)]
    half = [n for n in names if is_half_file(n)]
    if half and (len(half) == len(names) or dtype in ("fp16", "bf16")):
        return HALF
    return None


def _index_components(index: dict) -> list[str]:
    """The components a ``model_index.json`` names (``[library, class]``, not ``null``)."""
    return [
        key
        for key, value in index.items()
        if not key.startswith("_") and isinstance(value, list) and value and value[0] is not None
    ]


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
    precision: str = "fp32",
    half_variant: bool = False,
) -> ResolvedWeights:
    """Find and check the weights folder of ``name_or_path``.

    Order: an existing local path; ``VIDGEN_HOME/models/<registry name>``; the Hugging Face
    cache (no network); a download into that cache when ``allow_download`` (only the files a
    load in ``precision`` reads, see ``download_plan``). ``layout`` is ``diffusers`` (a
    pipeline folder) or ``transformers`` (one model with its tokenizer); every place is
    checked by the same rules. ``half_variant``: the hub repo publishes ``*.fp16``
    files (for the fetch command of a miss).
    """
    check = _checked if layout == "diffusers" else _checked_transformers
    label = f"{kind} model {name_or_path!r}"
    local = Path(name_or_path).expanduser()
    if local.exists():
        return check(label, local.resolve(), "local folder", allow_unsafe_weights)
    if hub_id is None:
        raise WeightsError(f"{label}: {local.resolve()} does not exist")
    tried: list[str] = []
    if registry_name:
        candidate = models_dir() / registry_name
        tried.append(str(candidate))
        if candidate.exists():
            return check(label, candidate, "VIDGEN_HOME/models", allow_unsafe_weights)
    cached = cached_snapshot(hub_id)
    if cached is not None:
        return check(label, cached, "Hugging Face cache", allow_unsafe_weights)
    from huggingface_hub import constants

    tried.append(f"Hugging Face cache ({constants.HF_HUB_CACHE})")
    downloaded = download_or_explain(
        f"{label} ({hub_id})",
        "has no weights here",
        tried,
        fetch_command(hub_id, registry_name, layout, precision, half_variant),
        allow_download,
        lambda: download_snapshot(hub_id, layout, precision, allow_unsafe_weights),
    )
    return check(label, downloaded, "download", allow_unsafe_weights)


def cached_snapshot(hub_id: str) -> Path | None:
    """The Hugging Face cache's snapshot of ``hub_id`` (``refs/main``), without the network;
    None when it is not cached (or ``hub_id`` is not a valid repo id)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(hub_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None  # ValueError: not a valid hub id (HFValidationError), so not cached


def download_snapshot(hub_id: str, layout: str, precision: str, allow_unsafe: bool) -> str:
    """Download into the Hugging Face cache only what ``download_plan`` selects from the
    repo's listing (its ``model_index.json`` first, for a diffusers pipeline)."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    files = HfApi().list_repo_files(hub_id)
    index = None
    if layout == "diffusers":
        index_path = hf_hub_download(hub_id, "model_index.json")
        index = json.loads(Path(index_path).read_text(encoding="utf-8"))
    plan = download_plan(files, layout, index, precision, allow_unsafe)
    return snapshot_download(hub_id, allow_patterns=plan)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def download_or_explain(what, missing, tried, fetch, allow_download, download) -> Path:
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
        return ResolvedFile(cached, "Hugging Face cache", snapshot_of(cached))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass
    downloaded = download_or_explain(
        f"{label}: {filename} from {hub_id}",
        "is not here",
        [str(candidate), f"Hugging Face cache ({constants.HF_HUB_CACHE})"],
        fetch_file_command(hub_id, filename, registry_name),
        allow_download,
        lambda: hf_hub_download(hub_id, filename),
    )
    return ResolvedFile(downloaded, "download", snapshot_of(downloaded))


def snapshot_of(path: Path) -> str | None:
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def _checked(label: str, folder: Path, source: str, allow_unsafe: bool) -> ResolvedWeights:
    """A diffusers pipeline folder: its index, every component's folder and weights."""
    index = _read_json(label, folder / "model_index.json", "not a diffusers pipeline folder")
    precisions: list[set[str]] = []
    for component in _index_components(index):
        sub = folder / component
        if not sub.is_dir():
            raise WeightsError(f"{label}: {folder} lacks the component folder {component}/")
        if not (sub / "config.json").is_file():
            continue  # schedulers, tokenizers and processors carry no weights
        precisions.append(_weights_precisions(label, sub, f"{component}/", allow_unsafe))
    half = None
    if any(p == {HALF} for p in precisions):
        half = "only"  # what the model cards' `variant="fp16"` downloads leave behind
    elif any(HALF in p for p in precisions):
        half = "some"
    revision = snapshot_of(folder / "model_index.json")
    return ResolvedWeights(folder, source, str(index.get("_class_name", "")), revision, half)


def _read_json(label: str, path: Path, missing: str) -> dict:
    if not path.is_file():
        raise WeightsError(f"{label}: {path.parent} has no {path.name} ({missing})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise WeightsError(f"{label}: {path} is not valid JSON ({exc})") from None


def _weights_precisions(label: str, folder: Path, where: str, allow_unsafe: bool) -> set[str]:
    """The precisions (``fp16``, ``fp32``) of the weights in ``folder``, which must hold
    safetensors (or pickle files, with ``allow_unsafe``)."""
    files = [p.name for p in folder.iterdir() if p.is_file()]
    safe = [f for f in files if f.endswith(".safetensors")]
    unsafe = [f for f in files if f.endswith(UNSAFE_WEIGHT_SUFFIXES)]
    if not safe and unsafe and not allow_unsafe:
        raise WeightsError(
            f"{label}: {where} has only pickle weights ({unsafe[0]}); "
            "convert them to safetensors or opt in with allow_unsafe_weights"
        )
    if not safe and not unsafe:
        raise WeightsError(f"{label}: {where} has a config but no weights")
    return {HALF if is_half_file(f) else "fp32" for f in (safe or unsafe)}


def _checked_transformers(
    label: str, folder: Path, source: str, allow_unsafe: bool
) -> ResolvedWeights:
    """A transformers model folder: config.json, weights, and a tokenizer."""
    config = _read_json(label, folder / "config.json", "not a transformers model")
    if not any(
        (folder / f).is_file()
        for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    ):
        raise WeightsError(f"{label}: {folder} has no tokenizer files")
    precisions = _weights_precisions(label, folder, str(folder), allow_unsafe)
    half = "only" if precisions == {HALF} else ("some" if HALF in precisions else None)
    architecture = (config.get("architectures") or [config.get("model_type", "")])[0]
    revision = snapshot_of(folder / "config.json")
    return ResolvedWeights(folder, source, str(architecture), revision, half)
