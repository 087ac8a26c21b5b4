"""The Dagster instance under VIDGEN_HOME, shared by the CLI and `dagster dev`."""

from __future__ import annotations

import os
import shutil
from importlib.resources import files
from pathlib import Path

from vidgen_pipeline.core.storage import dagster_home, vidgen_home


def prepare_home() -> Path:
    """Create VIDGEN_HOME and its Dagster home (with our dagster.yaml); set DAGSTER_HOME."""
    home = vidgen_home()
    dagster_dir = dagster_home()
    dagster_dir.mkdir(parents=True, exist_ok=True)
    config = dagster_dir / "dagster.yaml"
    if not config.exists():
        with files("vidgen_pipeline").joinpath("dagster.yaml").open("rb") as src:
            with open(config, "wb") as dest:
                shutil.copyfileobj(src, dest)
    os.environ["VIDGEN_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(dagster_dir)
    return home


if __name__ == "__main__":  # `python -m vidgen_pipeline.instance`: used by `make ui`
    print(prepare_home())
