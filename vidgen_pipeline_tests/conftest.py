"""Shared fixtures and helpers: a temp VIDGEN_HOME with a real Dagster instance in it,
running a prompt's whole graph in-process, reading what a run recorded, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# One thread per process for torch and the BLAS it uses, set before torch is imported: the
# tiny models are overhead-bound, and pytest-xdist already runs one worker per core (more
# threads than cores made the CLI's tiny-model runs about 3x slower). Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def _ram_scratch(folder: Path = Path("/dev/shm"), need: int = 4 << 30) -> None:
    """Temp folders (and so every test's Dagster instance) on a RAM disk where the machine
    has one with room: Dagster's SQLite storage commits once per event, and a commit that
    reaches the disk took 15 ms here against 0.3 ms in memory (about half of a tiny run's
    time). Subprocesses inherit TMPDIR. An explicit TMPDIR is kept."""
    import shutil
    import tempfile

    if "TMPDIR" in os.environ or not (folder.is_dir() and os.access(folder, os.W_OK)):
        return
    if shutil.disk_usage(folder).free < need:
        return
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)


_ram_scratch()

import pytest  # noqa: E402

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


class TinyModels:
    """The tiny random-weight pipelines, saved like hub repos: ``tiny_models["svd"]`` (also
    ``sd``, ``t2v``, ``animatediff``, ``llm``) is a folder, built on first use, once per
    session (per xdist worker). Read-only: a test that changes one copies it first."""

    def __init__(self, root: Path):
        self.root = root
        self.folders: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self.folders:
            from vidgen_pipeline.testing.registry import TINY_VIDEO_MODELS
            from vidgen_pipeline.testing.tiny_llm import save_tiny_chat_llm
            from vidgen_pipeline.testing.tiny_unet_models import BUILDERS

            if name == "llm":
                build = save_tiny_chat_llm
            else:  # sd, t2v, ... and every family's (wan2.1-t2v, ltx-video, ...)
                build = BUILDERS.get(name) or TINY_VIDEO_MODELS[name].build
            self.folders[name] = build(self.root / name)
        return self.folders[name]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("tiny_models"))


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


def vidgen(home: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``vidgen ARGS`` in a subprocess with ``home`` as its VIDGEN_HOME."""
    return subprocess.run(
        [*VIDGEN, *args], env=cli_env(home), capture_output=True, text=True, timeout=timeout
    )


def run_prompt(
    instance,
    text: str,
    *,
    defaults: dict = SMALL,
    resources: dict | None = None,
    resource_config: dict | None = None,
    **settings,
):
    """Register ``text`` (``settings`` over ``defaults``) as a partition and materialize its
    whole graph in this process: ``(key, result)``. ``resources`` replaces resources with
    other objects; ``resource_config`` is run config for the default ones."""
    from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest
    from vidgen_pipeline.definitions import defs
    from vidgen_pipeline.jobs import register_prompt
    from vidgen_pipeline.resources import PromptStoreResource

    request = PromptRequest(text=text, settings=GenerationSettings(**{**defaults, **settings}))
    key, _ = register_prompt(request, PromptStoreResource(), instance)
    options: dict = {"resources": resources} if resources else {}
    if resource_config:
        options["run_config"] = {"resources": resource_config}
    result = defs.resolve_job_def("generate_video").execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False, **options
    )
    return key, result


def metadata(result, asset: str) -> dict:
    """The metadata values of ``asset``'s one materialization in ``result``."""
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]
    assert len(events) == 1, f"{asset} materialized {len(events)} times"
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def checks(result) -> dict[str, bool]:
    """Every check the run evaluated: name -> passed."""
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


# ------------------------------------------------------------- dagster dev (the UI)

# The modules that use `webserver` run on one xdist worker, so one `dagster dev` serves them.
SHARED_SERVER_MODULES = ("test_webserver.py", "test_browser.py")
# Modules whose module-scoped fixture is most of their work (a PostgreSQL cluster with two
# generates and a daemon backfill, the tiny GPU section, an S3 server): each runs on one
# worker, so the fixture runs once rather than once per worker its tests land on.
ONE_WORKER_MODULES = ("test_postgres.py", "test_bench.py", "test_object_storage.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist load`` (each test its own unit of work, handed to whichever worker is free),
    except that the ``SHARED_SERVER_MODULES`` are one unit and each of the
    ``ONE_WORKER_MODULES`` one. (xdist's own ``xdist_group`` marks are not honoured with
    pytest 9 here: their tests still spread over workers.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedServerScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module.endswith(SHARED_SERVER_MODULES):
                return "dagster_dev"
            return module if module.endswith(ONE_WORKER_MODULES) else nodeid

    return SharedServerScheduling(config, log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    body = json.dumps({"query": query}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


@pytest.fixture(scope="session")
def webserver(tmp_path_factory):
    """`dagster dev` as `make ui` starts it, on a fresh VIDGEN_HOME: ``(port, home)``. One
    per session: the modules that use it run on one xdist worker (see
    ``pytest_xdist_make_scheduler``), so they share one server."""
    home = tmp_path_factory.mktemp("ui") / "home"
    subprocess.run(
        [sys.executable, "-m", "vidgen_pipeline.instance"], env=cli_env(home), check=True
    )
    env = {**cli_env(home), "DAGSTER_HOME": str(home / "dagster")}
    port = free_port()
    dagster = Path(sys.executable).with_name("dagster")
    log_path = home / "dagster-dev.log"
    log = open(log_path, "w")  # a file, not a pipe: a full pipe would stall the daemon
    proc = subprocess.Popen(
        [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # dagster dev starts the webserver and daemon as children
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"dagster dev exited: {log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("webserver did not answer within 120 s")
        yield port, home
    finally:
        for sig in (signal.SIGINT, signal.SIGKILL):  # dagster dev stops on Ctrl-C
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=10)  # a temp server: no need to wait long
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()
