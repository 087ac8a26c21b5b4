"""A throwaway PostgreSQL cluster on loopback (initdb in a temp folder, a free port), for the
scheduling benchmark and the tests: the server binaries of the machine, no service of its
own. Run as root, the cluster belongs to the ``postgres`` user (initdb refuses root)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or no way to run them; the message says which."""


def bindir() -> Path | None:
    """The newest PostgreSQL server binaries (Debian's /usr/lib/postgresql/N/bin, or PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    host: str
    port: int
    bindir: Path
    user: str
    password: str

    def url(self, database: str, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{self.user}:{secret}@{self.host}:{self.port}/{database}"

    def _client(self, program: str, database: str, *args: str) -> str:
        return subprocess.run(
            [str(self.bindir / program), "-h", self.host, "-p", str(self.port), "-U", self.user]
            + ["-d", database, *args],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def psql(self, database: str, sql: str) -> str:
        return self._client("psql", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql)

    def create_database(self, name: str) -> str:
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dump(self, database: str) -> str:
        """Everything the database holds, as SQL text."""
        return self._client("pg_dump", database)


@contextlib.contextmanager
def throwaway_cluster(user: str, password: str, durable: bool = True) -> Iterator[Cluster]:
    """A fresh cluster on 127.0.0.1:<free port> with password (SCRAM) authentication over
    TCP, as a real server asks; removed afterwards. ``durable=False`` turns off fsync and
    synchronous commit (tests: speed over crash safety)."""
    binaries = bindir()
    if binaries is None:
        raise PostgresUnavailable(
            "the PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        )
    as_owner: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable(
                "running as root, and no runuser to start PostgreSQL as another user"
            )
        as_owner = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="vidgen-pg-"))
    datadir, sockets, pwfile = root / "data", root / "sockets", root / "pw"
    sockets.mkdir()
    pwfile.write_text(password + "\n")
    if as_owner:
        for path in (root, sockets, pwfile):
            shutil.chown(path, "postgres")
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    try:
        subprocess.run(
            [*as_owner, str(binaries / "initdb"), "-D", str(datadir), "-U", user]
            + ["--pwfile", str(pwfile), "--auth-host=scram-sha-256", "--auth-local=trust"]
            + ["-E", "UTF8"]
            + ([] if durable else ["--no-sync"]),
            capture_output=True,
            text=True,
            check=True,
        )
        subprocess.run(
            [*as_owner, str(binaries / "pg_ctl"), "-D", str(datadir), "-o", options]
            + ["-l", str(root / "server.log"), "-w", "-t", "60", "start"],
            capture_output=True,
            text=True,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        log = root / "server.log"
        server_log = log.read_text()[-1500:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(
            f"PostgreSQL did not start: {(exc.stderr or exc.stdout).strip()[-1500:]} {server_log}"
        ) from None
    try:
        yield Cluster("127.0.0.1", port, binaries, user, password)
    finally:
        subprocess.run(
            [*as_owner, str(binaries / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
