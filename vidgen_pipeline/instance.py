"""The Dagster instance under VIDGEN_HOME, shared by the CLI and `dagster dev`.

``prepare_home`` runs before any command does anything: it checks ``VIDGEN_DATABASE_URL`` and
``VIDGEN_STORAGE`` (one line each when unusable), writes ``$DAGSTER_HOME/dagster.yaml`` from
the template ``vidgen_pipeline/dagster.yaml`` (run queue and ``gpu`` pool sized by
``VIDGEN_GPUS``; PostgreSQL storage when ``VIDGEN_DATABASE_URL`` is set, else SQLite in
``DAGSTER_HOME``) and creates the instance's tables once.
"""

from __future__ import annotations

import fcntl
import os
import sys
from importlib.resources import files
from pathlib import Path
from string import Template

from vidgen_pipeline.core.database import (
    DATABASE_ENV,
    DatabaseError,
    check_database,
    creation_lock,
    database_url,
)
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.storage import (
    StorageError,
    atomic_write_bytes,
    check_storage,
    dagster_home,
    vidgen_home,
)

MANAGED = "# vidgen: this file is written by vidgen"
POSTGRES_STORAGE = f"""
# Runs, events, schedules and pool slots in PostgreSQL ({DATABASE_ENV}, read from the
# environment when the instance starts: the URL and its password are never written here).
storage:
  postgres:
    postgres_url:
      env: {DATABASE_ENV}
"""
SQLITE_STORAGE = f"""
# Storage: SQLite files in this folder (set {DATABASE_ENV} for PostgreSQL).
"""


class SetupError(RuntimeError):
    """The database, the object store or the instance settings cannot be used (one line)."""


def prepare_home() -> Path:
    """Check the database and the object store, write the instance's dagster.yaml, create
    its tables; set DAGSTER_HOME. Raise ``SetupError`` (one line) before anything runs."""
    home = vidgen_home()
    dagster_dir = dagster_home()
    dagster_dir.mkdir(parents=True, exist_ok=True)
    os.environ["VIDGEN_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(dagster_dir)
    url = database_url()
    try:
        tables_ready = check_database(url) if url else None
        check_storage()
    except (DatabaseError, StorageError) as exc:
        raise SetupError(str(exc)) from None
    write_config(dagster_dir / "dagster.yaml", url is not None)
    if url:
        if not tables_ready:
            with creation_lock(url):  # commands on other machines may be creating them too
                _create_tables()
        return home
    ready = dagster_dir / ".initialized"
    if ready.exists():
        return home
    # Two commands started at once on a new home must not both create the SQLite tables.
    with open(dagster_dir / ".init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            _create_tables()
            ready.touch()
    return home


def render_config(postgres: bool) -> str:
    """The instance's dagster.yaml for the current ``VIDGEN_GPUS`` and storage."""
    from vidgen_pipeline.gpus import pool_slots

    try:
        slots = pool_slots()
    except ModelChoiceError as exc:
        raise SetupError(str(exc)) from None
    template = files("vidgen_pipeline").joinpath("dagster.yaml").read_text()
    storage = POSTGRES_STORAGE if postgres else SQLITE_STORAGE
    return Template(template).substitute(gpu_slots=slots, storage=storage.strip("\n"))


def write_config(config: Path, postgres: bool) -> None:
    """Write ``config`` when it is absent or ours (its first line says so) and differs from
    what the environment asks for; a file of the user's own is only checked."""
    wanted = render_config(postgres)
    current = config.read_text() if config.exists() else None
    if current is None or (current.startswith(MANAGED) and current != wanted):
        atomic_write_bytes(config, wanted.encode())
        return
    if current.startswith(MANAGED):
        return
    has_postgres = _uses_postgres(current)
    if postgres and not has_postgres:
        raise SetupError(
            f"{DATABASE_ENV} is set, but {config} (your own) keeps the instance in SQLite: add "
            f"`storage: {{postgres: {{postgres_url: {{env: {DATABASE_ENV}}}}}}}` to it, or "
            "delete it and vidgen writes one"
        )
    if has_postgres and not postgres:
        raise SetupError(
            f"{config} (your own) stores the instance in PostgreSQL: set {DATABASE_ENV}"
        )
    if "pools:" not in current:
        print(
            f"vidgen: {config} predates the gpu pool limit; compare it with "
            "vidgen_pipeline/dagster.yaml (runs from the shell and the UI may share the GPU)",
            file=sys.stderr,
        )


def _uses_postgres(text: str) -> bool:
    """Whether a dagster.yaml keeps runs in PostgreSQL (``storage: postgres`` or the
    per-storage form the Helm chart writes)."""
    import yaml

    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return False
    if "postgres" in (config.get("storage") or {}):
        return True
    run_storage = config.get("run_storage") or {}
    return str(run_storage.get("module", "")).startswith("dagster_postgres")


def _create_tables() -> None:
    from dagster import DagsterInstance

    with DagsterInstance.get():  # each storage creates its tables when they are missing
        pass


def main() -> int:
    """``python -m vidgen_pipeline.instance`` (``make ui``): prepare, print VIDGEN_HOME."""
    try:
        print(prepare_home())
    except SetupError as exc:
        print(f"vidgen: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
