"""Where things live (``VIDGEN_HOME``) and how they are written (atomically)."""

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
    return str(vidgen_home() / "prompts")


def is_local(path: UPath | Path) -> bool:
    return isinstance(path, Path) and getattr(path, "protocol", "") in ("", "file", "local")


def atomic_write_bytes(path: UPath | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Locally: a temp file in the same folder, fsync, then ``os.replace``. Object stores
    (fsspec URLs) publish an object only when its upload completes, so a plain write is atomic.
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
