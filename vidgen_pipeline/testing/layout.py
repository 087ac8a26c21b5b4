"""How tiny models are written: hub-repo folders (one or two precisions) and hub-cache snapshots.

:func:`save_pipeline` is the one way the builders save a pipeline:
``save_pretrained(path, safe_serialization=True)`` gives ``model_index.json`` plus one folder per
component, weights as ``*.safetensors``, loadable with plain
``DiffusionPipeline.from_pretrained(path, use_safetensors=True)``. ``precision`` picks the
weights written, as hub repos publish them:

- ``"fp32"``: ``diffusion_pytorch_model.safetensors`` / ``model.safetensors`` only;
- ``"fp16"``: only the ``fp16`` variant (``*.fp16.safetensors``, float16 tensors); load with
  ``from_pretrained(path, variant="fp16", dtype=torch.float16)``;
- ``"both"``: the float32 files and the ``fp16`` variant side by side.

:func:`save_hub_snapshot` lays a saved folder (or one file) out as the Hugging Face hub cache
does (``<cache>/models--org--name/{blobs,refs/main,snapshots/<commit>/...}``), so that
``snapshot_download(repo_id, cache_dir=cache, local_files_only=True)``,
``hf_hub_download(repo_id, filename, cache_dir=cache, local_files_only=True)`` and
``DiffusionPipeline.from_pretrained(repo_id, cache_dir=cache)`` with ``HF_HUB_OFFLINE=1`` find it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Literal

Precision = Literal["fp32", "fp16", "both"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "both")


def save_pipeline(
    pipe, path: Path, precision: Precision = "fp32", fast_tokenizers: tuple[str, ...] = ()
) -> Path:
    """Save ``pipe`` under ``path`` as a hub repo folder in ``precision`` (see the module doc).

    ``fast_tokenizers``: components whose class ``model_index.json`` should record under its
    fast name (``T5TokenizerFast``, not ``T5Tokenizer``). transformers 5 has one tokenizer class
    per model and writes its bare name; in transformers 4.x that name is the SentencePiece/slow
    class, which needs files (``spiece.model``, ``vocab.json``) a locally trained tokenizer lacks.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if precision in ("fp32", "both"):
        pipe.save_pretrained(str(path), safe_serialization=True)
    if precision in ("fp16", "both"):  # last: this leaves ``pipe`` in float16
        import torch

        pipe.to(dtype=torch.float16)
        pipe.save_pretrained(str(path), safe_serialization=True, variant="fp16")
    _portable_model_index(path, fast_tokenizers)
    return path


def _portable_model_index(path: Path, fast_tokenizers: tuple[str, ...] = ()) -> None:
    """Record class names in model_index.json that transformers 4.x and 5.x both load.

    Without torchvision, transformers 5 builds ``CLIPImageProcessorPil`` for
    ``CLIPImageProcessor`` and ``save_pretrained`` writes that name; it does not exist in
    transformers 4.x. ``CLIPImageProcessor`` loads everywhere (falling back to the PIL backend).
    Tokenizers named in ``fast_tokenizers`` get their ``...Fast`` name (see :func:`save_pipeline`).
    """
    import transformers

    index_file = path / "model_index.json"
    index = json.loads(index_file.read_text())
    changed = False
    for key, value in index.items():
        if not (isinstance(value, list) and len(value) == 2 and value[0] == "transformers"):
            continue
        name = value[1]
        if not isinstance(name, str):
            continue
        if name.endswith("Pil") and hasattr(transformers, name[: -len("Pil")]):
            index[key] = ["transformers", name[: -len("Pil")]]
            changed = True
        elif key in fast_tokenizers and not name.endswith("Fast"):
            if not hasattr(transformers, name + "Fast"):
                raise ValueError(f"{key}: transformers has no {name}Fast")
            index[key] = ["transformers", name + "Fast"]
            changed = True
    if changed:
        index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------
# Hub cache
# --------------------------------------------------------------------------------------------


def save_hub_snapshot(
    source: Path,
    cache_dir: Path,
    repo_id: str,
    *,
    filename: str | None = None,
    revision: str = "main",
) -> Path:
    """Copy ``source`` (a folder, or one file stored as ``filename``) into the hub cache
    ``cache_dir`` as repo ``repo_id`` at ``revision``; returns the snapshot folder.

    As ``huggingface_hub`` writes it: each file's bytes once under ``blobs/<sha256>``, the
    snapshot ``snapshots/<commit>/<path>`` as relative symlinks to them (copies where the file
    system has no symlinks), ``refs/<revision>`` holding the commit. The commit id is the SHA-1
    of the file names and contents, so the same files give the same snapshot. A second call for
    the same repo and revision moves the ref to the new snapshot.
    """
    source = Path(source)
    if source.is_dir():
        files = {
            p.relative_to(source).as_posix(): p for p in sorted(source.rglob("*")) if p.is_file()
        }
    elif source.is_file():
        files = {filename or source.name: source}
    else:
        raise FileNotFoundError(source)
    if not files:
        raise ValueError(f"{source}: no files")

    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    blobs = {name: _store_blob(repo / "blobs", path) for name, path in files.items()}
    commit = hashlib.sha1(
        "".join(f"{name}\0{blob}\n" for name, blob in sorted(blobs.items())).encode()
    ).hexdigest()

    snapshot = repo / "snapshots" / commit
    for name, blob in blobs.items():
        _link(repo / "blobs" / blob, snapshot / name)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snapshot


def _store_blob(blobs: Path, path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    blobs.mkdir(parents=True, exist_ok=True)
    if not (blobs / digest).exists():
        shutil.copyfile(path, blobs / digest)
    return digest


def _link(blob: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    try:
        dest.symlink_to(os.path.relpath(blob, dest.parent))
    except OSError:  # no symlinks here (Windows without developer mode): copy, as the hub does
        shutil.copyfile(blob, dest)
