"""VIDGEN_GPUS: the gpu pool sized by it, and a device of its own for each run (simulated
devices on the CPU: the leases, the waiting and the tags are real, the models run on the
CPU). Two runs at once on two devices, a third waiting; a run killed holding a device frees
it for the next command."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from vidgen_pipeline import gpus
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline_tests.conftest import VIDGEN, cli_env

SMALL = ["--video-model", "animatic", "--width", "64", "--height", "36", "--fps", "4"]
SMALL += ["--duration", "1", "--scenes", "1"]
HOLDS = re.compile(r"GPU (\S+) is this process's")


@pytest.mark.parametrize(
    ("setting", "visible", "expected"),
    [
        ("2", None, ["0", "1"]),
        ("cuda:1,cuda:3", None, ["1", "3"]),
        ("0,1", "5,7,9", ["5", "7"]),  # torch's numbering after CUDA_VISIBLE_DEVICES
        ("", "GPU-aa,GPU-bb", ["GPU-aa", "GPU-bb"]),  # unset: every visible device
        ("0", None, []),
    ],
)
def test_vidgen_gpus_names_devices_as_cuda_visible_devices_does(
    monkeypatch, setting, visible, expected
):
    monkeypatch.setenv("VIDGEN_GPUS", setting)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert gpus.configured_devices() == expected
    assert gpus.pool_slots() == max(1, len(expected))


@pytest.mark.parametrize("setting", ["two", "0,0", "cuda:x"])
def test_a_wrong_vidgen_gpus_says_what_it_takes(monkeypatch, setting):
    monkeypatch.setenv("VIDGEN_GPUS", setting)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(ModelChoiceError, match="VIDGEN_GPUS"):
        gpus.configured_devices()


def test_the_gpu_pool_and_run_queue_follow_vidgen_gpus(tmp_path, monkeypatch):
    from vidgen_pipeline.instance import prepare_home

    monkeypatch.setenv("VIDGEN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("VIDGEN_GPUS", "3")
    prepare_home()
    monkeypatch.setenv("DAGSTER_HOME", os.environ["DAGSTER_HOME"])
    with DagsterInstance.get() as instance:
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 3
        assert concurrency.run_queue_config.max_concurrent_runs == 3
    monkeypatch.setenv("VIDGEN_GPUS", "1")
    prepare_home()  # the file is vidgen's: it follows the environment
    with DagsterInstance.get() as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


class Watched:
    """A `vidgen` command whose standard error is read as it comes."""

    def __init__(self, args: list[str], env: dict):
        self.proc = subprocess.Popen(
            [*VIDGEN, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    pytest.fail(f"no {pattern!r} in: {''.join(self.lines)[-3000:]}")
                self._changed.wait(timeout=min(left, 1))

    def signal(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        out = self.proc.stdout.read()
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return self.proc.returncode, out, "".join(self.lines)


@pytest.mark.slow
def test_two_runs_on_two_devices_a_third_waits_and_a_killed_one_frees_its_device(tmp_path):
    home = tmp_path / "home"
    env = {**cli_env(home), "VIDGEN_GPUS": "2"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    runs = {}
    try:
        # A and B take one device each, then hold still (before their runs touch the instance).
        a = runs["a"] = Watched(["generate", "A kite over a beach.", *SMALL], env)
        b = runs["b"] = Watched(["generate", "A boat on a lake.", *SMALL], env)
        device_a, device_b = a.wait_for(HOLDS.pattern)[1], b.wait_for(HOLDS.pattern)[1]
        assert {device_a, device_b} == {"0", "1"}
        a.signal(signal.SIGSTOP)
        b.signal(signal.SIGSTOP)

        # C finds both taken and waits, naming the holders.
        c = runs["c"] = Watched(["generate", "A fox in the snow.", *SMALL], env)
        waiting = c.wait_for(r"waiting for a GPU: (.*)")[1]
        assert f"pid {a.proc.pid}" in waiting and f"pid {b.proc.pid}" in waiting
        assert not any(HOLDS.search(line) for line in c.lines)

        # A goes on into its run and is killed in the middle of it, holding its device.
        a.signal(signal.SIGCONT)
        a.wait_for(r"\[scene_clips\] started")
        a.signal(signal.SIGKILL)
        a.proc.wait(timeout=30)
        assert c.wait_for(HOLDS.pattern)[1] == device_a  # freed at once: C has it now

        # B and C run at the same time, each on its own device.
        b.signal(signal.SIGCONT)
        results = {name: runs[name].finish() for name in ("b", "c")}
    finally:
        for watched in runs.values():
            if watched.proc.poll() is None:
                watched.signal(signal.SIGKILL)
                watched.proc.wait()
    for name, (code, _, err) in results.items():
        assert code == 0, f"{name}: {err[-3000:]}"
    # The next command to start a run (B or C) marked A's run failed and freed its pool slot.
    assert any("had died (killed?); marked failed" in err for _, _, err in results.values())

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    try:
        with DagsterInstance.get() as instance:
            records = {r.dagster_run.tags.get("vidgen/pid"): r for r in instance.get_run_records()}
    finally:
        del os.environ["DAGSTER_HOME"]
    run_a, run_b, run_c = (records[str(runs[n].proc.pid)] for n in ("a", "b", "c"))
    assert run_a.dagster_run.status == DagsterRunStatus.FAILURE
    assert run_a.dagster_run.tags["vidgen/gpu"] == device_a
    assert run_b.dagster_run.status == run_c.dagster_run.status == DagsterRunStatus.SUCCESS
    assert run_b.dagster_run.tags["vidgen/gpu"] == device_b
    assert run_c.dagster_run.tags["vidgen/gpu"] == device_a
    # B's and C's runs overlapped in time.
    assert run_b.start_time < run_c.end_time and run_c.start_time < run_b.end_time


def test_without_vidgen_gpus_nothing_is_leased(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDGEN_HOME", str(tmp_path))
    monkeypatch.delenv("VIDGEN_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # one device: nothing to share
    assert gpus.hold_device() is None and gpus.held_device() is None
    assert not (Path(tmp_path) / "gpus").exists()
