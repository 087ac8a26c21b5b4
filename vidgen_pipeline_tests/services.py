"""Real servers for the tests, started and stopped by them: a PostgreSQL cluster (``initdb``
in a temp folder, a free port on loopback) and an S3-protocol server (moto in server mode).

Without the PostgreSQL server binaries the tests that need them skip with the reason, except
under ``CI=true`` where they fail: CI installs them (``.ci/run``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vidgen_pipeline.bench.postgres import (
    Cluster,
    PostgresUnavailable,
    free_port,
    throwaway_cluster,
)

PG_USER = "vidgen"
# A password no log line or metadata value may ever contain (the tests grep for it).
PG_PASSWORD = "s3cr3t-Pw-7f1c9e"


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: these tests must run, but {reason}")
    pytest.skip(reason)


# ------------------------------------------------------------------------------ PostgreSQL


@contextlib.contextmanager
def postgres_server() -> Iterator[Cluster]:
    """A fresh PostgreSQL cluster on loopback for the tests (user PG_USER, PG_PASSWORD);
    skipped, or failed under CI=true, without the server binaries."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(throwaway_cluster(PG_USER, PG_PASSWORD, durable=False))
        except PostgresUnavailable as exc:
            _missing(str(exc))
        yield server


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
