"""Real servers for the tests, started and stopped by them: a PostgreSQL cluster (``initdb``
in a temp folder, a free port on loopback) and an S3-protocol server (moto in server mode).

Without the PostgreSQL server binaries the tests that need them skip with the reason, except
under ``CI=true`` where they fail: CI installs them (``.ci/run``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_USER = "vidgen"
# A password no log line or metadata value may ever contain (the tests grep for it).
PG_PASSWORD = "s3cr3t-Pw-7f1c9e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: these tests must run, but {reason}")
    pytest.skip(reason)


# ------------------------------------------------------------------------------ PostgreSQL


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server binaries here (Debian's /usr/lib/postgresql/N/bin,
    pg_config's bindir, or PATH)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class Postgres:
    host: str
    port: int
    bindir: Path
    datadir: Path
    as_user: list[str]  # prefix that runs a command as the cluster's owner

    def url(self, database: str, password: str = PG_PASSWORD) -> str:
        return f"postgresql://{PG_USER}:{password}@{self.host}:{self.port}/{database}"

    def psql(self, database: str, sql: str) -> str:
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD}
        out = subprocess.run(
            [str(self.bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", PG_USER]
            + ["-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    def create_database(self, name: str) -> str:
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dump(self, database: str) -> str:
        """Everything the database holds, as SQL text (to look for secrets in)."""
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD}
        return subprocess.run(
            [str(self.bindir / "pg_dump"), "-h", self.host, "-p", str(self.port), "-U", PG_USER]
            + ["-d", database],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster on 127.0.0.1:<free port>, password authentication for
    TCP connections (as a real server would ask), removed afterwards."""
    bindir = postgres_bindir()
    if bindir is None:
        _missing("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    # initdb refuses to run as root: then the cluster belongs to the postgres user.
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            _missing("running as root without runuser to start PostgreSQL as another user")
        as_user = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="vidgen-pg-"))
    datadir, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_user:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        shutil.chown(pwfile, "postgres")
    port = free_port()
    try:
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(datadir), "-U", PG_USER]
            + ["--pwfile", str(pwfile), "--auth-host=scram-sha-256", "--auth-local=trust"]
            + ["-E", "UTF8", "--no-sync"],
            capture_output=True,
            text=True,
            check=True,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(datadir), "-o", options]
            + ["-l", str(root / "server.log"), "-w", "-t", "60", "start"],
            capture_output=True,
            text=True,
            check=True,
        )
        yield Postgres("127.0.0.1", port, bindir, datadir, as_user)
    except subprocess.CalledProcessError as exc:
        log = root / "server.log"
        pytest.fail(
            f"PostgreSQL did not start: {exc.stderr or exc.stdout}"
            + (log.read_text()[-2000:] if log.exists() else "")
        )
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------ S3 (moto)


@dataclass
class S3Server:
    endpoint: str
    env: dict  # what a process needs to reach it: endpoint and (fake) credentials

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        )


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's S3 in server mode, in its own process on 127.0.0.1:<free port>."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.2)
        env = {
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "testing-key-id",
            "AWS_SECRET_ACCESS_KEY": "testing-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        yield S3Server(endpoint, env)
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """Stop a process started with ``start_new_session`` and all it started: SIGTERM, then
    SIGKILL after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
