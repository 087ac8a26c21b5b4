"""Finished scene clips, stored under a key of everything that determines them.

A re-run, or a run restarted after a crash, reuses the scenes that were finished, and a
changed scene (its prompt, seed, model, size, ...) gets a new key, so only it is made again.
The key covers the video plan (model, weights, size, fps, steps, dtype, device, ...), the
weights' revision, the video resource's settings, the scene's optimised prompt, negative
prompt, seed and camera, the frame count, the conditioning image's pixels and the code
version. Entries live in ``VIDGEN_HOME/cache/scenes`` (safe to delete at any time).

An entry is a folder with the frames as PNG (lossless), the scene's mp4 and ``entry.json``;
it is written in a temp folder and renamed into place, so a killed run leaves either a whole
entry or none, and two runs making the same scene at once both end with one whole entry.

When ``VIDGEN_STORAGE`` is an object store, both caches are shared there too
(``<storage>/cache/scenes``, ``<storage>/cache/keyframes``; see ``SharedTier``): a scene one
machine finished is found by every other, and the local folder stays the copy in front.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

import vidgen_pipeline
from vidgen_pipeline.core.audio import read_wav, write_wav
from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.storage import (
    atomic_write_bytes,
    remove_dead_leftovers,
    shared_cache_root,
    vidgen_home,
)

# Bump when the same inputs would render different frames (a renderer change).
CACHE_VERSION = "1"
ENTRY = "entry.json"
# Plan fields that describe the choice rather than shape the frames (where the weights came
# from changes between the run that downloaded them and the next one; what they are is in
# the weights revision).
_DESCRIPTIVE = {"reason", "notes", "weights_source", "unet_weights_source"}


def default_cache_dir() -> Path:
    return vidgen_home() / "cache" / "scenes"


def weights_revision(path: str | None) -> str:
    """A cheap identity of a weights folder: the hub snapshot's commit when the path is in
    the Hugging Face cache, else a hash of its files' names, sizes and modification times."""
    if not path:
        return "none"
    parts = Path(path).parts
    if "snapshots" in parts[:-1]:
        return "hub:" + parts[parts.index("snapshots") + 1]
    folder = Path(path)
    if not folder.exists():
        return "missing"
    digest = hashlib.sha256()
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    for file in files:
        stat = file.stat()
        digest.update(
            f"{file.relative_to(folder.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
        )
    return "files:" + digest.hexdigest()[:16]


def image_digest(image: Image.Image | np.ndarray | None) -> str:
    if image is None:
        return "none"
    pixels = np.ascontiguousarray(
        np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    )
    return hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()[:24]


def scene_key(
    plan: Mapping[str, Any],
    scene: Mapping[str, Any],
    frame_count: int,
    condition: Image.Image | np.ndarray | None,
    weights: str,
    settings: Mapping[str, Any],
) -> str:
    """The cache key (hex) of one scene clip; see the module docstring for what it covers."""
    document = {
        "cache_version": CACHE_VERSION,
        "code_version": vidgen_pipeline.__version__,
        "plan": {k: v for k, v in plan.items() if k not in _DESCRIPTIVE},
        "scene": dict(scene),
        "frame_count": frame_count,
        "condition": image_digest(condition),
        "weights": weights,
        "settings": dict(settings),
    }
    canonical = json.dumps(document, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_png(path, rgb: np.ndarray, compression: int = 1) -> None:
    """Lossless PNG (zlib level 1 is ~5x faster than 9 and still lossless)."""
    ok, data = cv2.imencode(
        ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression]
    )
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(data.tobytes())


def read_png(data: bytes, where: object = "PNG") -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"{where} is not a readable PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def frame_name(index: int) -> str:
    return f"{index:06d}.png"


_FROM_ENV: Any = object()  # "the shared tier VIDGEN_STORAGE names, if any"


class SharedTier:
    """Cache entries on an object store, for every machine: ``<root>/<k2>/<key>/<version>/``
    holds an entry's files and ``<root>/<k2>/<key>/current.json`` names the version, written
    last (one PUT), so a reader that finds ``current.json`` finds a whole entry. A machine
    that finds an entry there already keeps it (the same key, the same scene); two machines
    uploading at once each upload a whole version and the last pointer wins."""

    POINTER = "current.json"

    def __init__(self, root):
        self.root = root

    def _entry(self, key: str):
        return self.root / key[:2] / key

    def fetch(self, key: str, final: Path, is_whole: Callable[[], bool]) -> bool:
        """Copy the shared entry ``key`` into the local folder ``final``; False when there
        is none (or it vanished while being read)."""
        entry = self._entry(key)
        try:
            pointer = json.loads((entry / self.POINTER).read_bytes())
        except (FileNotFoundError, ValueError):
            return False
        version = entry / pointer["version"]

        def fill(tmp: Path) -> None:
            for name in pointer["files"]:
                (tmp / name).write_bytes((version / name).read_bytes())

        try:
            publish_entry(final, fill, is_whole)
        except FileNotFoundError:
            return False
        return True

    def push(self, key: str, folder: Path) -> None:
        """Upload the local entry ``folder`` unless the shared tier has ``key`` already."""
        entry = self._entry(key)
        if (entry / self.POINTER).exists():
            return
        version = f"v-{uuid.uuid4().hex[:12]}"
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
        for name in names:
            (entry / version / name).write_bytes((folder / name).read_bytes())
        pointer = {"version": version, "files": names}
        atomic_write_bytes(entry / self.POINTER, json.dumps(pointer).encode())


def _shared(kind: str, shared) -> SharedTier | None:
    root = shared_cache_root(kind) if shared is _FROM_ENV else shared
    return SharedTier(root) if root is not None else None


class KeyframeCache:
    """Generated keyframes by key (model, weights revision, size, steps, guidance, dtype,
    device, the scene's prompt, negative prompt and seed, code version) under ``root``: a
    re-run or a restart makes the same keyframes without loading the text-to-image model,
    so the scenes conditioned on them are found in the scene cache too."""

    def __init__(self, root: Path | None = None, shared=_FROM_ENV):
        self.root = Path(root) if root else vidgen_home() / "cache" / "keyframes"
        self.shared = _shared("keyframes", shared)

    @staticmethod
    def key(parts: Mapping[str, Any]) -> str:
        document = {"cache_version": CACHE_VERSION, "code_version": vidgen_pipeline.__version__}
        canonical = json.dumps({**document, **parts}, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def get(self, key: str) -> tuple[Image.Image, dict] | None:
        hit = self._read(key)
        if hit is None and self.shared is not None:
            if self.shared.fetch(key, self.root / key[:2] / key, lambda: self._read(key)):
                hit = self._read(key)
        return hit

    def _read(self, key: str) -> tuple[Image.Image, dict] | None:
        folder = self.root / key[:2] / key
        try:
            info = json.loads((folder / ENTRY).read_text())
            image = Image.fromarray(read_png((folder / "keyframe.png").read_bytes(), folder))
        except (OSError, ValueError):
            return None
        return image, info

    def put(self, key: str, image: Image.Image, info: dict) -> None:
        def fill(tmp: Path) -> None:
            write_png(tmp / "keyframe.png", np.asarray(image.convert("RGB")))
            (tmp / ENTRY).write_text(json.dumps(info, indent=2, default=str))

        final = self.root / key[:2] / key
        publish_entry(final, fill, lambda: self._read(key) is not None)
        if self.shared is not None:
            self.shared.push(key, final)


class SceneCache:
    """Scene clips by key under ``root`` (a local folder), and in the shared tier on
    ``VIDGEN_STORAGE``'s object store when there is one (``shared``: a tier root, or None
    for none)."""

    def __init__(self, root: Path | None = None, shared=_FROM_ENV):
        self.root = Path(root) if root else default_cache_dir()
        self.shared = _shared("scenes", shared)

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> SceneClip | None:
        """The stored clip, or None when there is no whole entry for ``key`` (here, or in
        the shared tier: then it is copied here first)."""
        clip = self._read(key)
        if clip is None and self.shared is not None:
            if self.shared.fetch(key, self.folder(key), lambda: self._read(key) is not None):
                clip = self._read(key)
        return clip

    def _read(self, key: str) -> SceneClip | None:
        folder = self.folder(key)
        try:
            entry = json.loads((folder / ENTRY).read_text())
            frames = np.stack(
                [
                    read_png((folder / frame_name(i)).read_bytes(), folder / frame_name(i))
                    for i in range(entry["frames"])
                ]
            )
        except (OSError, ValueError, KeyError):
            return None  # absent, or damaged by hand: made again
        mp4, wav = folder / "clip.mp4", folder / "audio.wav"
        audio, rate = read_wav(wav) if wav.exists() else (None, None)
        return SceneClip(
            entry["scene_number"],
            frames,
            entry["fps"],
            {**entry["info"], "cache": "reused", "cache_key": key[:16]},
            mp4 if mp4.exists() else None,
            source_dir=folder,
            audio=audio,
            audio_rate=rate,
        )

    def put(self, key: str, clip: SceneClip) -> SceneClip:
        """Store ``clip`` (its frames, and its mp4 if made) and return it backed by the entry."""
        final = self.folder(key)

        def fill(tmp: Path) -> None:
            for index, frame in enumerate(clip.frames):
                write_png(tmp / frame_name(index), frame)
            if clip.mp4_path is not None:
                shutil.move(clip.mp4_path, tmp / "clip.mp4")  # the scratch copy is done with
            if clip.audio is not None:  # the sound the model made with the frames
                write_wav(tmp / "audio.wav", clip.audio, clip.audio_rate)
            info = {k: v for k, v in clip.info.items() if k not in ("cache", "cache_key")}
            entry = {
                "scene_number": clip.scene_number,
                "fps": clip.fps,
                "frames": len(clip.frames),
                "info": info,
            }
            (tmp / ENTRY).write_text(json.dumps(entry, indent=2, default=str))

        publish_entry(final, fill, lambda: self._read(key) is not None)
        if self.shared is not None:
            self.shared.push(key, final)
        clip.info = {**clip.info, "cache": "new", "cache_key": key[:16]}
        clip.source_dir = final
        mp4 = final / "clip.mp4"
        clip.mp4_path = mp4 if mp4.exists() else None
        return clip

    def remove_stale_temp(self) -> int:
        """Delete temp folders left by killed runs (their pid is gone); return how many."""
        return remove_dead_leftovers(self.root.glob("*/.tmp-*"), lambda name: name.split("-")[2])


def publish_entry(final: Path, fill: Callable[[Path], None], is_whole: Callable[[], bool]) -> None:
    """Make a cache entry at ``final`` all at once: ``fill`` a temp folder beside it, then
    rename. If ``final`` exists already, another run made the same entry first (``is_whole``:
    keep theirs) or it was damaged by hand (replace it)."""
    final.parent.mkdir(parents=True, exist_ok=True)

    def temp(kind: str) -> Path:  # .tmp-<kind>-<pid>-<random>: swept once the pid is gone
        return final.parent / f".tmp-{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    tmp = temp(final.name[:16])
    tmp.mkdir()
    try:
        fill(tmp)
        try:
            os.rename(tmp, final)  # atomic; fails if the entry exists
        except OSError:
            if not is_whole():
                broken = temp("broken")
                os.rename(final, broken)
                shutil.rmtree(broken, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
