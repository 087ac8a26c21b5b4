"""``VIDGEN_DATABASE_URL``: the PostgreSQL database that holds the Dagster instance.

Checked before anything runs, so a wrong URL is one line naming the host and the database
(never the password) instead of a traceback from deep inside a run. The URL itself is only
ever read from the environment: ``dagster.yaml`` names the variable, not its value.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

DATABASE_ENV = "VIDGEN_DATABASE_URL"
CONNECT_TIMEOUT_S = 5
# Tables of dagster-postgres' run, event log and schedule storages: all three there means the
# instance was created before (no need to take the creation lock).
INSTANCE_TABLES = ("runs", "event_logs", "jobs")
# pg_advisory_lock key that serialises the creation of the tables by concurrent commands.
_CREATION_LOCK = 0x76696467  # "vidg"


class DatabaseError(RuntimeError):
    """The database cannot be used; the message is one line, without the password."""


@dataclass(frozen=True)
class Database:
    """The parts of a ``postgresql://`` URL; ``str()`` never shows the password."""

    host: str
    port: int
    database: str
    user: str | None
    password: str | None
    options: dict

    def __str__(self) -> str:
        who = f", user {self.user!r}" if self.user else ""
        return f"PostgreSQL database {self.database!r} on {self.host}:{self.port}{who}"

    def connect(self):
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            dbname=self.database,
            user=self.user,
            password=self.password,
            connect_timeout=CONNECT_TIMEOUT_S,
            **self.options,
        )


def database_url() -> str | None:
    return os.environ.get(DATABASE_ENV) or None


def parse(url: str) -> Database:
    """Split ``url``; refuse one that is not a PostgreSQL URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parts = make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseError(
            f"{DATABASE_ENV} is not a database URL (expected postgresql://USER:PASSWORD@HOST:"
            "PORT/DATABASE)"
        ) from None
    where = f"{parts.host or 'localhost'}:{parts.port or 5432}, database {parts.database!r}"
    if parts.get_backend_name() == "postgres":
        raise DatabaseError(
            f"{DATABASE_ENV} starts with postgres:// ({where}), which SQLAlchemy does not "
            "read: write postgresql://"
        )
    if parts.get_backend_name() != "postgresql":
        raise DatabaseError(
            f"{DATABASE_ENV} names a {parts.get_backend_name()} database ({where}), not PostgreSQL"
        )
    if parts.get_driver_name() != "psycopg2":
        raise DatabaseError(
            f"{DATABASE_ENV} asks for the {parts.get_driver_name()} driver ({where}); "
            "dagster-postgres speaks psycopg2: use postgresql:// or postgresql+psycopg2://"
        )
    if not parts.database:
        raise DatabaseError(f"{DATABASE_ENV} names no database ({where})")
    return Database(
        host=parts.host or "localhost",
        port=parts.port or 5432,
        database=parts.database,
        user=parts.username,
        password=parts.password,
        options={k: v for k, v in parts.query.items() if isinstance(v, str)},
    )


def check_database(url: str) -> bool:
    """Connect to ``url`` as the instance will; raise ``DatabaseError`` (one line) when it
    cannot be used. Return whether the instance's tables are there already."""
    database = parse(url)
    try:
        with contextlib.closing(database.connect()) as connection:
            with connection.cursor() as cursor:
                cursor.execute("SELECT version()")
                (version,) = cursor.fetchone()
                if not str(version).startswith("PostgreSQL"):
                    raise DatabaseError(f"{database} answers, but is not PostgreSQL: {version}")
                cursor.execute(
                    "SELECT count(*) FROM unnest(%s) AS t(name) WHERE to_regclass(name) IS NOT NULL",
                    (list(INSTANCE_TABLES),),
                )
                (present,) = cursor.fetchone()
    except DatabaseError:
        raise
    except Exception as exc:  # noqa: BLE001  psycopg2 and libpq report everything this way
        raise DatabaseError(
            f"cannot use {DATABASE_ENV} ({database}): {_reason(exc, database)}"
        ) from None
    return present == len(INSTANCE_TABLES)


@contextlib.contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while the instance's tables are made, so that
    commands started at once on a new database (on any machine) make them once."""
    with contextlib.closing(parse(url).connect()) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (_CREATION_LOCK,))
            try:
                yield
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (_CREATION_LOCK,))


def _reason(exc: BaseException, database: Database) -> str:
    """libpq's message in a few words, with the password taken out should it appear."""
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        return f"the server refused the password of user {database.user!r}"
    if "no password supplied" in lowered:
        return "the server asks for a password and the URL has none"
    if "connection refused" in lowered:
        return "connection refused (is PostgreSQL running there?)"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"unknown host {database.host!r}"
    if "timeout expired" in lowered:
        return f"no answer within {CONNECT_TIMEOUT_S} s"
    if "does not exist" in lowered and "database" in lowered:
        return "the server has no such database (create it first)"
    if (
        "invalid response to ssl negotiation" in lowered
        or "expected authentication request" in lowered
        or "server closed the connection unexpectedly" in lowered
        or "received invalid response" in lowered
    ):
        return "the server there does not speak the PostgreSQL protocol"
    if database.password and len(database.password) >= 4:  # libpq never says it; be sure
        text = text.replace(database.password, "***")
    return text.split(" DETAIL:")[0][:300]
