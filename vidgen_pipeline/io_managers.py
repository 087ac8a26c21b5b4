"""IO managers: JSON documents, frames (lossless) and mp4 files under one base path.

The base path is ``VIDGEN_HOME/storage`` unless set; any fsspec URL works (``s3://...``).
Paths are ``<base>/<asset key>/<partition>``, where the partition part is a safe file name
(see ``safe_path_component``) whatever the partition key holds. Every write is atomic: a
killed run leaves the previous value readable.

On an object store (``s3://...``) the same holds: a value is published by one PUT (a JSON
document, an mp4) or by its manifest (frames), so a reader sees the old value or the new one,
and of two machines writing one partition the last whole write wins.

A run may cover several partitions (backfills load the models once for many prompts): the
asset then returns ``{partition_key: value}`` and receives its inputs the same way; with one
partition, values are passed plain. Each partition is written to its own path and gets its
own ``path`` metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from PIL import Image
from pydantic import BaseModel
from upath import UPath

from vidgen_pipeline.core.clip_audio import read_clip_audio, write_clip_audio
from vidgen_pipeline.core.clips import FinalVideo, Keyframe, SceneClip
from vidgen_pipeline.core.frame_store import (
    STORE_FORMAT,
    STORE_NAME,
    RecentFrames,
    read_lossless,
    write_lossless,
)
from vidgen_pipeline.core.media import probe_video
from vidgen_pipeline.core.prompts import OptimizedPrompts
from vidgen_pipeline.core.requests import PromptRequest, safe_path_component
from vidgen_pipeline.core.scene_cache import read_png, read_png_frames, write_png
from vidgen_pipeline.core.storage import (
    atomic_move_file,
    atomic_write_bytes,
    default_storage_path,
    is_local,
    local_copy,
    process_alive,
    remove_orphan_temp_files,
    storage_path,
)
from vidgen_pipeline.core.storyboard import Storyboard

DONE = ".done"  # in a frames version folder: every file of it is written
RECENT_FRAMES = RecentFrames()  # scene_clips' frames, for final_video in the same run
MODELS_BY_ASSET: dict[str, type[BaseModel]] = {
    "prompt": PromptRequest,
    "script": Storyboard,
    "optimized_prompts": OptimizedPrompts,
}


class StorageIOManager(ConfigurableIOManager):
    """Shared path scheme; subclasses say how one partition's value is written and read."""

    base_path: str = ""
    extension: ClassVar[str] = ""  # how the subclass names a file (not configuration)

    def _base(self) -> UPath:
        return storage_path(self.base_path or default_storage_path())

    def path_for(self, context: InputContext | OutputContext, key: str | None = None) -> UPath:
        folder = self._base().joinpath(*context.asset_key.path)
        if key is None:
            key = (
                context.asset_partition_key if context.has_asset_partitions else "__unpartitioned__"
            )
        return folder / f"{safe_path_component(key)}{self.extension}"

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not context.has_asset_partitions:
            self._write_one(context, obj, None, None)
            return
        keys = sorted(context.asset_partition_keys)
        if len(keys) == 1:
            value = obj[keys[0]] if isinstance(obj, dict) and set(obj) == set(keys) else obj
            self._write_one(context, value, None, keys[0])
        elif isinstance(obj, dict) and set(obj) == set(keys):
            for key in keys:
                self._write_one(context, obj[key], key, key)
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()} ran for {len(keys)} partitions and must "
                f"return a dict keyed by partition, not {type(obj).__name__}"
            )

    def _write_one(
        self, context: OutputContext, obj: Any, metadata_key: str | None, key: str | None
    ) -> None:
        """Write one partition's value; its metadata goes to that partition alone
        (``metadata_key``) or to the whole output (None: the output is one partition)."""
        path = self.path_for(context, key)
        remove_orphan_temp_files(path.parent)  # left by a killed run's interrupted write
        metadata = {"path": MetadataValue.path(str(path)), **self.dump(obj, path, context)}
        if metadata_key is None:
            context.add_output_metadata(metadata)
        else:
            context.step_context.add_asset_metadata(
                metadata, asset_key=context.asset_key, partition_key=metadata_key
            )

    def load_input(self, context: InputContext) -> Any:
        if not context.has_asset_partitions:
            return self._read_one(context, None)
        keys = sorted(context.asset_partition_keys)
        if len(keys) == 1:
            return self._read_one(context, keys[0])
        return {key: self._read_one(context, key) for key in keys}

    def _read_one(self, context: InputContext, key: str | None) -> Any:
        path = self.path_for(context, key)
        try:  # read, not exists-then-read: no race with a writer, no stale listing of a store
            return self.load(path, context)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()} has no stored value at {path}; "
                "materialize it first"
            ) from None

    def dump(self, obj: Any, path: UPath, context: OutputContext) -> dict:
        raise NotImplementedError

    def load(self, path: UPath, context: InputContext) -> Any:
        raise NotImplementedError


class JsonIOManager(StorageIOManager):
    """Pydantic models as indented JSON (prompt, script, optimized_prompts)."""

    extension: ClassVar[str] = ".json"

    def dump(self, obj: BaseModel, path: UPath, context: OutputContext) -> dict:
        data = obj.model_dump_json(indent=2).encode()
        atomic_write_bytes(path, data)
        return {"bytes": len(data)}

    def load(self, path: UPath, context: InputContext) -> BaseModel:
        # Multi-partition inputs are unannotated dicts, so the model comes from the asset key.
        model = MODELS_BY_ASSET.get(context.asset_key.to_user_string())
        if model is None:
            model = context.dagster_type.typing_type
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"no document model known for {context.asset_key.to_user_string()}")
        return model.model_validate_json(path.read_bytes())


class FramesIOManager(StorageIOManager):
    """Keyframes as PNG files and each scene clip's frames in one lossless file
    (``clip.mp4``, ``core.frame_store``: also the scene's own video), one version folder per
    write. Versions written before the lossless store (a scene's frames as ``%06d.png``)
    are still read.

    ``<partition>/manifest.json`` names the current version folder; it is replaced
    atomically after the new folder is complete (it then holds ``.done``), then other
    versions are removed, except the one it replaced and those another writer is still
    filling (no ``.done`` yet, and its process alive on this machine, or younger than
    ``STALE_WRITE_S`` when it writes from another machine). A crash mid-write leaves the
    old manifest pointing at the old, intact frames; of two writers of one partition (two
    machines), the last manifest names a whole version.
    """

    STALE_WRITE_S: ClassVar[float] = 3600.0  # no write of one partition's frames takes longer

    png_compression: int = 1  # zlib level: PNG stays lossless; 1 is ~5x faster than 9

    def dump(self, obj: list, path: UPath, context: OutputContext) -> dict:
        version = f"v-{context.run_id[:8]}-{uuid.uuid4().hex[:6]}-{_writer_mark()}"
        folder = path / version
        entries = []
        frame_total = 0
        for item in obj:
            if not isinstance(item, Keyframe | SceneClip):
                raise TypeError(f"FramesIOManager cannot store {type(item).__name__}")
            scene_dir = folder / f"scene_{item.scene_number:03d}"
            scene_dir.mkdir(parents=True, exist_ok=True)
            if isinstance(item, Keyframe):
                self._write_png(scene_dir / "keyframe.png", np.asarray(item.image.convert("RGB")))
                entries.append(
                    {"kind": "keyframe", "scene_number": item.scene_number, "info": item.info}
                )
            elif isinstance(item, SceneClip):
                entries.append(self._write_clip(item, scene_dir))
                frame_total += len(item.frames)
        folder.mkdir(parents=True, exist_ok=True)  # a text-to-video model's keyframes: none
        (folder / DONE).write_bytes(b"")  # whole: no longer some writer's work in progress
        manifest = {"version": version, "items": entries}
        previous = self._current_version(path)
        atomic_write_bytes(path / "manifest.json", json.dumps(manifest, indent=2).encode())
        # The version just replaced stays one more write: a run that read the old manifest a
        # moment ago (another run of this partition) can still load its frames.
        self._remove_old_versions(path, keep={version, previous})
        return {"items": len(entries), "frames": frame_total}

    def _write_clip(self, item: SceneClip, scene_dir: UPath) -> dict:
        """One scene's frames as ``clip.mp4`` in ``scene_dir``: its lossless mp4 linked from
        the scene cache (copied where links cannot go), moved from scratch, or written from
        the frames; returns its manifest entry. ``item.mp4_path`` then names the stored file."""
        store = scene_dir / STORE_NAME
        if item.mp4_path is not None and item.mp4_lossless:
            if item.source_dir is not None and is_local(store):
                _link_or_copy(Path(item.mp4_path), scene_dir)
            elif item.source_dir is not None:  # a copy: the cache keeps its own
                atomic_write_bytes(store, Path(item.mp4_path).read_bytes())
            else:
                atomic_move_file(Path(item.mp4_path), store)
        elif is_local(store):
            self._write_store(item, Path(store))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                self._write_store(item, Path(tmp) / STORE_NAME)
                atomic_move_file(Path(tmp) / STORE_NAME, store)
        item.mp4_path = Path(str(store)) if is_local(store) else None
        item.mp4_lossless = item.mp4_path is not None
        if item.mp4_path is not None:
            RECENT_FRAMES.remember(item.mp4_path, np.asarray(item.frames))
        entry = {
            "kind": "clip",
            "scene_number": item.scene_number,
            "fps": item.fps,
            "frames": len(item.frames),
            "store": STORE_FORMAT,
            "mp4": STORE_NAME,
            "info": item.info,
        }
        audio = write_clip_audio(scene_dir, item.audio, item.audio_rate)
        if audio is not None:  # a silent clip has no audio file
            entry["audio"] = audio
        return entry

    @staticmethod
    def _write_store(item: SceneClip, path: Path) -> None:
        # Inside a fresh version folder (or a temp folder): nothing reads it until the
        # manifest names the folder.
        write_lossless(item.frames, path, item.fps)

    def load(self, path: UPath, context: InputContext) -> list:
        manifest = json.loads((path / "manifest.json").read_bytes())
        folder = path / manifest["version"]
        items: list = []
        for entry in manifest["items"]:
            scene_dir = folder / f"scene_{entry['scene_number']:03d}"
            if entry["kind"] == "keyframe":
                image = Image.fromarray(self._read_png(scene_dir / "keyframe.png"))
                items.append(Keyframe(entry["scene_number"], image, entry["info"]))
                continue
            lossless = entry.get("store") == STORE_FORMAT
            if lossless:
                frames = _read_store(scene_dir / STORE_NAME, entry["frames"])
            else:  # a version written before the lossless store
                frames = read_png_frames(scene_dir, entry["frames"])
            mp4 = scene_dir / entry["mp4"] if "mp4" in entry else None
            local = mp4 is not None and is_local(mp4)
            audio, rate = read_clip_audio(scene_dir, entry.get("audio"))
            items.append(
                SceneClip(
                    entry["scene_number"],
                    frames,
                    entry["fps"],
                    entry["info"],
                    Path(str(mp4)) if local else None,
                    mp4_lossless=lossless and local,
                    audio=audio,
                    audio_rate=rate,
                )
            )
        return items

    def _write_png(self, path: UPath, rgb: np.ndarray) -> None:
        # Files inside a fresh version folder need no temp+rename: nothing reads them until
        # the manifest names the folder.
        write_png(path, rgb, self.png_compression)

    @staticmethod
    def _read_png(path: UPath) -> np.ndarray:
        return read_png(path.read_bytes(), path)

    @staticmethod
    def _current_version(path: UPath) -> str | None:
        try:
            return json.loads((path / "manifest.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            return None

    @classmethod
    def _remove_old_versions(cls, path: UPath, keep: set) -> None:
        for child in path.iterdir():
            if not child.name.startswith("v-") or child.name in keep:
                continue
            finished = (child / DONE).exists()
            if not (finished or _abandoned(child.name, cls.STALE_WRITE_S)) or not child.is_dir():
                continue
            if is_local(child):
                shutil.rmtree(Path(child), ignore_errors=True)
            else:
                child.fs.rm(child.path, recursive=True)


def _read_store(path: UPath, count: int) -> np.ndarray:
    """A scene's lossless store: the frames this process stored there a moment ago when it
    still holds them (``RECENT_FRAMES``), else decoded; on an object store, through a
    temporary local copy."""
    if is_local(path):
        held = RECENT_FRAMES.take(Path(path))
        if held is not None and len(held) == count:
            return held
        return read_lossless(Path(path), count)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / STORE_NAME
        copy.write_bytes(path.read_bytes())
        return read_lossless(copy, count)


def _host_mark() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _writer_mark() -> str:
    """``<ms since epoch, hex>.<pid>.<host>``: who writes a version folder, and since when."""
    return f"{int(time.time() * 1000):x}.{os.getpid()}.{_host_mark()}"


def _abandoned(version: str, stale_after_s: float) -> bool:
    """Whether no writer is still filling the unfinished ``version``: its process is gone
    (this machine), or it started more than ``stale_after_s`` ago (another machine).
    Folders named before writers were marked count as abandoned."""
    try:
        started_ms, pid, host = version.rsplit("-", 1)[1].split(".")
        started_s, pid_number = int(started_ms, 16) / 1000, int(pid)
    except ValueError:
        return True
    if host == _host_mark():
        return not process_alive(pid_number)
    return time.time() - started_s > stale_after_s


def _link_or_copy(src: Path, folder: UPath) -> None:
    """A hard link to ``src`` in ``folder`` (no second copy of a cached scene), or a copy
    where links cannot be made (another filesystem)."""
    dest = Path(folder) / src.name
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


class VideoIOManager(StorageIOManager):
    """The final mp4, moved into place atomically, with a JSON sidecar of its facts."""

    extension: ClassVar[str] = ".mp4"

    def dump(self, obj: FinalVideo, path: UPath, context: OutputContext) -> dict:
        sidecar = {
            "duration_s": obj.duration_s,
            "frame_count": obj.frame_count,
            "fps": obj.fps,
            "width": obj.width,
            "height": obj.height,
            "info": obj.info,
        }
        extra = {}
        size = Path(obj.path).stat().st_size
        atomic_move_file(Path(obj.path), path)
        # The subtitles and the sound track's mix lie beside the mp4; an older run's that
        # this video lacks would not match it, so they go.
        for attribute, suffix, label in (
            ("subtitles_path", ".vtt", "subtitles"),
            ("audio_path", ".wav", "sound_track"),
        ):
            beside = path.with_suffix(suffix)
            if getattr(obj, attribute) is not None:
                atomic_move_file(Path(getattr(obj, attribute)), beside)
                setattr(obj, attribute, Path(str(beside)) if is_local(beside) else None)
                extra[label] = MetadataValue.path(str(beside))
            elif beside.exists():
                beside.unlink()
        sidecar["bytes"] = size  # ties the sidecar to this very file
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(sidecar, indent=2).encode())
        if is_local(path):
            obj.path = Path(path)
        return {"bytes": size, **extra}

    def load(self, path: UPath, context: InputContext) -> FinalVideo:
        """The stored video (on an object store: a local copy of it, for tools that read
        files), with the facts of its sidecar when the sidecar is this file's."""
        video = local_copy(path)
        sidecar_path = path.with_suffix(".json")
        try:
            sidecar = json.loads(sidecar_path.read_bytes())
        except FileNotFoundError:
            sidecar = {}
        if sidecar.pop("bytes", None) != video.stat().st_size:
            # Killed between the two renames: the mp4 is newer than its sidecar; ask the file.
            facts = probe_video(video)
            sidecar = {
                "duration_s": facts.duration_s,
                "frame_count": facts.frame_count,
                "fps": facts.fps,
                "width": facts.width,
                "height": facts.height,
                "info": {},
            }
        vtt = path.with_suffix(".vtt")
        subtitles = local_copy(vtt) if vtt.exists() else None
        wav = path.with_suffix(".wav")
        audio = local_copy(wav) if wav.exists() else None
        return FinalVideo(path=video, subtitles_path=subtitles, audio_path=audio, **sidecar)
