"""Shared fixtures: a temp VIDGEN_HOME with a real Dagster instance in it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
# Small and short, so end-to-end runs take seconds on two cores.
SMALL = {"width": 128, "height": 72, "fps": 8.0, "duration_s": 3.0}


def dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.is_file():
        pytest.skip(
            f"{path} is absent (the prompt suites live in ../shared/datasets beside the repo)"
        )
    return path


@pytest.fixture
def vidgen_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "vidgen_home"
    monkeypatch.setenv("VIDGEN_HOME", str(home))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("VIDGEN_STORAGE", raising=False)
    from vidgen_pipeline.instance import prepare_home

    prepare_home()  # sets DAGSTER_HOME for this process; monkeypatch restores it
    monkeypatch.setenv("DAGSTER_HOME", os.environ["DAGSTER_HOME"])
    return home


@pytest.fixture
def one_thread():
    """Tiny models are all thread-sync overhead: on a busy 2-core box 64 tokens of the tiny LLM
    take ~1.5 s with 2 torch threads and ~0.1 s with one; a tiny video render likewise."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def instance(vidgen_home):
    from dagster import DagsterInstance

    with DagsterInstance.get() as inst:
        yield inst


def cli_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["VIDGEN_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


VIDGEN = [sys.executable, "-m", "vidgen_pipeline.cli"]
