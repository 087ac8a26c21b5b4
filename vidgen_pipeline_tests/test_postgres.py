"""VIDGEN_DATABASE_URL: the instance in a real PostgreSQL server started here (initdb in a
temp folder, a free port on loopback). `vidgen generate` twice at once on a new database;
`dagster dev`'s daemon running the dataset sensor's 5-prompt backfill; the runs read back
through Dagster's API; no SQLite file written; the password in no output, file or database
row; a bad URL is one line naming host and database, before anything runs."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from vidgen_pipeline.batch import RANGE_END_TAG, RANGE_START_TAG
from vidgen_pipeline.core.requests import partition_key_for
from vidgen_pipeline_tests.conftest import REPO, VIDGEN, cli_env
from vidgen_pipeline_tests.services import PG_PASSWORD, free_port, postgres_server, stop_group

SMALL = ["--video-model", "animatic", "--width", "64", "--height", "36", "--fps", "4"]
SMALL += ["--duration", "1", "--scenes", "1"]
BATCH = [f"A paper boat number {n} drifts on a pond." for n in range(5)]


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


def env_for(home: Path, url: str) -> dict:
    return {**cli_env(home), "VIDGEN_DATABASE_URL": url}


def vidgen(home: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*VIDGEN, *args], env=env_for(home, url), capture_output=True, text=True, timeout=600
    )


@contextlib.contextmanager
def instance_at(home: Path, url: str):
    """The instance the commands used, opened the way they open it (Dagster's API)."""
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "VIDGEN_DATABASE_URL")}
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    os.environ["VIDGEN_DATABASE_URL"] = url
    try:
        with DagsterInstance.get() as instance:
            yield instance
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sqlite_files(home: Path) -> list[Path]:
    found = []
    for path in home.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                if handle.read(16) == b"SQLite format 3\x00":
                    found.append(path)
    return found


def files_holding(home: Path, secret: bytes) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file() and secret in p.read_bytes()]


@contextlib.contextmanager
def daemon(home: Path, env: dict, log_path: Path):
    """`dagster-daemon run` on the workspace, as `dagster dev` starts it."""
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would stall it
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env={**env, "DAGSTER_HOME": str(home / "dagster")},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # it starts a code server of its own
        )
        try:
            yield proc
        finally:
            stop_group(proc)


def wait_for_backfill_run(home: Path, url: str, proc: subprocess.Popen, limit_s: float):
    """The sensor's backfill run once it has finished (None: it did not, in time)."""
    deadline = time.monotonic() + limit_s
    with instance_at(home, url) as instance:
        while time.monotonic() < deadline and proc.poll() is None:
            runs = [r for r in instance.get_runs() if "dagster/backfill" in r.tags]
            if runs and runs[0].is_finished:
                return runs[0]
            time.sleep(2)
    return None


@pytest.fixture(scope="module")
def on_postgres(postgres, tmp_path_factory):
    """On a new database: two `vidgen generate` at once, and meanwhile `dagster dev`'s
    daemon, whose dataset sensor turns a 5-prompt file into a backfill: one run of 5."""
    root = tmp_path_factory.mktemp("pg")
    home = root / "home"
    url = postgres.create_database(f"vidgen_{uuid.uuid4().hex[:8]}")
    prompts = ["A red kite over a beach.", "A snail climbs a wet leaf."]
    procs = [
        subprocess.Popen(
            [*VIDGEN, "generate", text, *SMALL],
            env=env_for(home, url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for text in prompts
    ]
    # The daemon starts once the two commands have made the tables (it would make them too,
    # but that race is the commands' to win), and its runs overlap with theirs.
    deadline = time.monotonic() + 300
    while postgres.psql(url.rsplit("/", 1)[1], "SELECT to_regclass('jobs')").strip() != "jobs":
        assert time.monotonic() < deadline and all(p.poll() in (None, 0) for p in procs)
        time.sleep(0.5)
    folder = home / "datasets"
    folder.mkdir()
    rows = "".join(f"{text},1,1,animatic\n" for text in BATCH)
    (folder / "five.csv").write_text("prompt,duration,scenes,video_model\n" + rows)
    with daemon(home, env_for(home, url), root / "daemon.log") as proc:
        generated = [(p, *p.communicate(timeout=600)) for p in procs]
        backfill_run = wait_for_backfill_run(home, url, proc, 420)
    return {
        "home": home,
        "url": url,
        "database": url.rsplit("/", 1)[1],
        "prompts": prompts,
        "generated": generated,
        "backfill_run": backfill_run,
        "daemon_log": (root / "daemon.log").read_text(),
        "outputs": [out + err for _, out, err in generated],
    }


@pytest.mark.slow
def test_two_generates_at_once_on_a_new_database_are_read_back_from_it(on_postgres):
    for proc, out, err in on_postgres["generated"]:
        assert proc.returncode == 0, err[-3000:]
        assert Path(out.split()[-1]).is_file()
    with instance_at(on_postgres["home"], on_postgres["url"]) as instance:
        assert type(instance.run_storage).__module__.startswith("dagster_postgres")
        runs = [r for r in instance.get_runs() if r.tags.get("vidgen/source") == "cli"]
        assert len(runs) == 2 and {r.status for r in runs} == {DagsterRunStatus.SUCCESS}
        made = instance.get_materialized_partitions(AssetKey("final_video"))
        assert {partition_key_for(text) for text in on_postgres["prompts"]} <= made


@pytest.mark.slow
def test_the_daemon_runs_the_sensors_5_prompt_backfill_on_postgres(on_postgres):
    run = on_postgres["backfill_run"]
    assert run is not None, on_postgres["daemon_log"][-3000:]
    assert run.status == DagsterRunStatus.SUCCESS, on_postgres["daemon_log"][-3000:]
    keys = sorted(partition_key_for(text) for text in BATCH)
    assert (run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]) == (keys[0], keys[-1])
    assert run.tags["vidgen/source"] == "dataset"
    with instance_at(on_postgres["home"], on_postgres["url"]) as instance:
        (backfill,) = instance.get_backfills()
        assert backfill.backfill_id == run.tags["dagster/backfill"]
        assert set(keys) <= instance.get_materialized_partitions(AssetKey("final_video"))
        assert len([r for r in instance.get_runs() if "dagster/backfill" in r.tags]) == 1


@pytest.mark.slow
def test_no_sqlite_file_is_written_with_a_database_url(on_postgres):
    home = on_postgres["home"]
    assert (home / "dagster" / "dagster.yaml").is_file()
    assert sqlite_files(home) == []


@pytest.mark.slow
def test_the_password_is_in_no_output_file_or_database_row(on_postgres, postgres):
    assert all(PG_PASSWORD not in text for text in on_postgres["outputs"])
    assert PG_PASSWORD not in on_postgres["daemon_log"]
    assert files_holding(on_postgres["home"], PG_PASSWORD.encode()) == []
    config = (on_postgres["home"] / "dagster" / "dagster.yaml").read_text()
    assert "env: VIDGEN_DATABASE_URL" in config  # the instance reads it from the environment
    dump = postgres.dump(on_postgres["database"])
    assert "final_video" in dump and PG_PASSWORD not in dump  # runs, events, tags, metadata


# --------------------------------------------------------------------------- bad URLs


@contextlib.contextmanager
def not_postgres():
    """A TCP server on loopback that answers like a web server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                with contextlib.suppress(OSError):
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.mark.parametrize("fault", ["wrong password", "connection refused", "not postgres"])
def test_a_bad_database_url_is_one_line_before_anything_runs(postgres, tmp_path, fault):
    database = f"vidgen_{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as stack:
        if fault == "wrong password":
            postgres.create_database(database)
            port, password, words = postgres.port, "Not-The-Pw-1", "refused the password"
        elif fault == "connection refused":
            port, password, words = free_port(), PG_PASSWORD, "connection refused"
        else:
            port = stack.enter_context(not_postgres())
            password, words = PG_PASSWORD, "does not speak the PostgreSQL protocol"
        url = f"postgresql://vidgen:{password}@127.0.0.1:{port}/{database}"
        home = tmp_path / "home"
        done = vidgen(home, url, "generate", "A gull lands on a post.", *SMALL)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert f"127.0.0.1:{port}" in lines[0] and repr(database) in lines[0] and words in lines[0]
    assert password not in done.stderr + done.stdout
    # Nothing ran: no instance configured, no prompt registered, no tables made.
    assert not (home / "dagster" / "dagster.yaml").exists() and not (home / "prompts").exists()
    if fault == "wrong password":
        tables = postgres.psql(database, "SELECT count(*) FROM pg_tables WHERE schemaname='public'")
        assert tables.strip() == "0"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgres://vidgen:pw@db.internal/vidgen", "write postgresql://"),
        ("mysql://vidgen:pw@db.internal/vidgen", "names a mysql database"),
        ("postgresql+psycopg://vidgen:pw@db.internal/vidgen", "dagster-postgres speaks psycopg2"),
        ("postgresql://vidgen:pw@db.internal", "names no database"),
        ("db.internal:5432", "is not a database URL"),
    ],
)
def test_a_url_that_is_not_for_dagster_postgres_is_refused_without_connecting(url, words):
    from vidgen_pipeline.core.database import DatabaseError, parse

    with pytest.raises(DatabaseError, match=words) as refused:
        parse(url)
    assert "pw" not in str(refused.value).replace("psycopg", "")
