"""Where things live (``VIDGEN_HOME``, ``VIDGEN_STORAGE``) and how they are written (atomically).

``VIDGEN_STORAGE`` is a folder or any fsspec URL. When it is an object store (``s3://...``,
``gs://...``), it holds everything a second machine needs: the IO managers' values, the prompt
requests (``<storage>/prompts``) and the scene and keyframe caches (``<storage>/cache``), with
``VIDGEN_HOME/cache`` as the local copy in front. A local ``VIDGEN_STORAGE`` holds the IO
managers' values only, as it always has.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from upath import UPath

DEFAULT_HOME = ".vidgen"


def vidgen_home() -> Path:
    """The folder holding the Dagster instance, prompts, datasets and storage."""
    return Path(os.environ.get("VIDGEN_HOME", DEFAULT_HOME)).expanduser().resolve()


def dagster_home() -> Path:
    """``DAGSTER_HOME`` if set, else ``VIDGEN_HOME/dagster``."""
    explicit = os.environ.get("DAGSTER_HOME")
    return Path(explicit).expanduser().resolve() if explicit else vidgen_home() / "dagster"


def default_storage_path() -> str:
    """``VIDGEN_STORAGE`` (a folder or any fsspec URL) if set, else ``VIDGEN_HOME/storage``."""
    return os.environ.get("VIDGEN_STORAGE") or str(vidgen_home() / "storage")


def default_prompt_store_path() -> str:
    """``<VIDGEN_STORAGE>/prompts`` on an object store (every machine reads the same
    requests), else ``VIDGEN_HOME/prompts``."""
    shared = shared_store()
    return str(shared / "prompts") if shared is not None else str(vidgen_home() / "prompts")


def storage_path(url: str | Path) -> UPath:
    """``url`` (a folder or an fsspec URL) as a path. On an object store without fsspec's
    listing cache: other machines write there, and a cached listing would name objects, or
    versions of them, that changed since (a read of a replaced manifest then fails)."""
    path = UPath(url)
    return path if is_local(path) else UPath(url, use_listings_cache=False)


def shared_store() -> UPath | None:
    """``VIDGEN_STORAGE`` when it is an object store (not a local folder), else None."""
    url = os.environ.get("VIDGEN_STORAGE")
    if not url:
        return None
    path = storage_path(url)
    return None if is_local(path) else path


def shared_cache_root(kind: str) -> UPath | None:
    """Where the ``kind`` cache (``scenes``, ``keyframes``) is shared between machines:
    ``<VIDGEN_STORAGE>/cache/<kind>`` on an object store, else None (local only)."""
    shared = shared_store()
    return shared / "cache" / kind if shared is not None else None


def is_local(path: UPath | Path) -> bool:
    return isinstance(path, Path) and getattr(path, "protocol", "") in ("", "file", "local")


class StorageError(RuntimeError):
    """The object store cannot be used; the message is one line for the user."""


def check_storage(url: str | None = None) -> None:
    """Fail fast, in one line, when ``VIDGEN_STORAGE``'s object store cannot be reached
    (no such host, connection refused, no such bucket, credentials refused). A local folder
    is always usable (it is made when first written)."""
    url = url or os.environ.get("VIDGEN_STORAGE")
    if not url:
        return
    try:
        path = UPath(url)
    except (ImportError, ValueError) as exc:  # an unknown protocol, its package missing
        raise StorageError(f"VIDGEN_STORAGE={url}: {_first_line(exc)}") from None
    if is_local(path):
        return
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    where = f" (endpoint {endpoint})" if endpoint and path.protocol in ("s3", "s3a") else ""
    try:
        path.fs.ls(path.fs._strip_protocol(str(path)).split("/", 1)[0], detail=False)
    except Exception as exc:  # noqa: BLE001  every fsspec backend raises its own kinds
        raise StorageError(
            f"cannot use the object store of VIDGEN_STORAGE={url}{where}: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def local_copy(path: UPath | Path) -> Path:
    """A local file with ``path``'s bytes: ``path`` itself when local, else a copy under
    ``VIDGEN_HOME/cache/storage`` (downloaded once per object version, written atomically)
    for the tools that need a file (ffprobe, a browser)."""
    if is_local(path):
        return Path(path)
    import hashlib

    info = path.fs.info(path.path)
    stamp = str(info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("size"))
    digest = hashlib.sha256(f"{path}\0{stamp}".encode()).hexdigest()[:16]
    copy = vidgen_home() / "cache" / "storage" / digest / path.name
    if not copy.exists():
        atomic_write_bytes(copy, path.read_bytes())
    return copy


def atomic_write_bytes(path: UPath | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Locally: a temp file in the same folder, fsync, then ``os.replace``. Object stores
    (fsspec URLs) publish an object only when its upload completes (a single PUT, or a
    multipart upload that is completed at the end), so a plain write is atomic there: a writer
    killed half-way leaves the previous object, and of two writers the last whole one wins.
    """
    if not is_local(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_move_file(src: Path, dest: UPath | Path) -> None:
    """Move a finished local file into place atomically (or upload it to an fsspec URL)."""
    if not is_local(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as handle:
            dest.write_bytes(handle.read())
        src.unlink()
        return
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    if src.stat().st_dev != target.parent.stat().st_dev:
        # os.replace is only atomic within one filesystem: copy beside the target first.
        atomic_write_bytes(target, src.read_bytes())
        src.unlink()
    else:
        os.replace(src, target)


@contextlib.contextmanager
def scratch_dir(label: str) -> Iterator[Path]:
    """A private folder under ``VIDGEN_HOME/tmp`` for files a step makes before they are
    moved into storage (same filesystem, so the move is a rename); removed afterwards."""
    root = vidgen_home() / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    _remove_orphans(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{label}-{os.getpid()}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_dead_leftovers(paths: Iterable[Path], pid_of: Callable[[str], str]) -> int:
    """Delete the files and folders among ``paths`` whose writer (the pid ``pid_of`` reads
    from the name) is gone: what a killed process left half-made. Return how many."""
    removed = 0
    for path in paths:
        try:
            pid = int(pid_of(path.name))
        except (IndexError, ValueError):
            continue  # not one of ours
        if process_alive(pid):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


def remove_orphan_temp_files(folder: UPath | Path) -> int:
    """Delete the temp files (``.name.<pid>-xxxx.tmp``) that killed processes left in a
    local ``folder``; return how many."""
    if not is_local(folder) or not Path(folder).is_dir():
        return 0
    return remove_dead_leftovers(
        Path(folder).glob(".*.tmp"), lambda name: name.rsplit(".", 2)[-2].split("-", 1)[0]
    )


def _remove_orphans(root: Path) -> None:
    """Remove scratch folders of processes that are gone (a run killed mid-step)."""
    remove_dead_leftovers(root.iterdir(), lambda name: name.rsplit("-", 2)[1])


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (tells a killed run's leftovers)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
