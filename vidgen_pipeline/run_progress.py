"""A run's progress on standard error, as `vidgen` prints it while it works: one line per
step event, check that did not pass and log message, read from the run's event log."""

from __future__ import annotations

import sys
import threading


def say(message: str) -> None:
    """One line on standard error, at once."""
    print(message, file=sys.stderr, flush=True)


class RunProgress(threading.Thread):
    """Reads the run's event log and prints one line per step event and log message."""

    def __init__(self, instance, run_id: str):
        super().__init__(daemon=True)
        self.instance, self.run_id = instance, run_id
        self.failure: str | None = None
        self._seen = 0
        self._done = threading.Event()
        self._step_started: dict[str, float] = {}

    def run(self) -> None:
        while not self._done.wait(0.3):
            self._drain()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)
        self._drain()

    def _drain(self) -> None:
        try:
            entries = self.instance.all_logs(self.run_id)
        except Exception:  # noqa: BLE001  the run may not exist yet; progress is best effort
            return
        for entry in entries[self._seen :]:
            self._print(entry)
        self._seen = len(entries)

    def _print(self, entry) -> None:
        step = entry.step_key or "run"
        event = entry.dagster_event
        if event is None:
            if entry.level >= 20:  # INFO and above: what the assets say about their work
                say(f"  [{step}] {entry.user_message}")
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            self._step_started[step] = entry.timestamp
            say(f"[{step}] started")
        elif kind == "STEP_SUCCESS":
            took = entry.timestamp - self._step_started.get(step, entry.timestamp)
            say(f"[{step}] done in {took:.1f} s")
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed:
                severity = data.severity.value.lower()
                note = f": {data.description}" if data.description else ""
                say(f"  [{step}] check {data.check_name} did not pass ({severity}){note}")
        elif kind == "STEP_FAILURE":
            self.failure = f"step {step}: {root_message(event.event_specific_data.error)}"
            say(f"[{step}] failed")


def root_message(error) -> str:
    """The innermost cause's message: the user's problem, not Dagster's wrapping of it."""
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return "unknown error"
    return (error.message or "").strip().splitlines()[-1] if error.message else error.cls_name
