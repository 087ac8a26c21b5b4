"""The Dagster instance under VIDGEN_HOME, shared by the CLI and `dagster dev`."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from importlib.resources import files
from pathlib import Path

from vidgen_pipeline.core.storage import dagster_home, vidgen_home


def prepare_home() -> Path:
    """Create VIDGEN_HOME and its Dagster home (with our dagster.yaml); set DAGSTER_HOME."""
    home = vidgen_home()
    dagster_dir = dagster_home()
    dagster_dir.mkdir(parents=True, exist_ok=True)
    os.environ["VIDGEN_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(dagster_dir)
    config = dagster_dir / "dagster.yaml"
    ready = dagster_dir / ".initialized"
    if ready.exists():
        if config.exists() and "pools:" not in config.read_text():
            print(
                f"vidgen: {config} predates the gpu pool limit; compare it with "
                "vidgen_pipeline/dagster.yaml (runs from the shell and the UI may share the GPU)",
                file=sys.stderr,
            )
        return home
    # Two commands started at once on a new home must not both create the SQLite tables.
    with open(dagster_dir / ".init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not config.exists():
            with files("vidgen_pipeline").joinpath("dagster.yaml").open("rb") as src:
                with open(config, "wb") as dest:
                    shutil.copyfileobj(src, dest)
        if not ready.exists():
            from dagster import DagsterInstance

            with DagsterInstance.get():  # creates the storage's tables
                pass
            ready.touch()
    return home


if __name__ == "__main__":  # `python -m vidgen_pipeline.instance`: used by `make ui`
    print(prepare_home())
