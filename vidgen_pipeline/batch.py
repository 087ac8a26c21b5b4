"""Batches: prompt datasets to partitions, and backfills that load each model once per run.

Used by the dataset sensor, the nightly schedule and the ``vidgen add-prompts`` /
``vidgen backfill`` commands, so the UI and the shell do the same thing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from upath import UPath

from vidgen_pipeline.core.requests import PromptRequest, PromptStore, safe_path_component
from vidgen_pipeline.core.storage import process_alive
from vidgen_pipeline.partitions import PROMPTS

FINAL_ASSET = AssetKey("final_video")
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PID_TAG = "vidgen/pid"
HOST_TAG = "vidgen/host"


@dataclass
class Registration:
    """What registering a batch of requests changed."""

    new: list[str] = field(default_factory=list)  # partitions that did not exist
    changed: list[str] = field(default_factory=list)  # existing, with other settings now
    unchanged: int = 0

    @property
    def to_run(self) -> list[str]:
        return self.new + self.changed


def plan_registration(
    requests: Iterable[PromptRequest], store: PromptStore, existing: set[str]
) -> Registration:
    """Write new and changed requests to ``store``; say which partitions are new or changed.

    The store is the memory of what each partition holds: a request identical to the stored
    one (a dataset read again, a sensor tick over an unchanged file) is ``unchanged`` and is
    never requested twice. Adding the new partitions to the instance is the caller's move
    (the sensor returns them to Dagster; the shell adds them itself).
    """
    result = Registration()
    seen: set[str] = set()
    for request in requests:
        key = request.partition_key
        if key in seen:
            continue
        seen.add(key)
        stored = store.get(key)
        if stored == request and key in existing:
            result.unchanged += 1
            continue
        if stored != request:
            store.put(request)
        (result.changed if key in existing else result.new).append(key)
    return result


def register_requests(
    requests: Iterable[PromptRequest], store: PromptStore, instance: DagsterInstance
) -> Registration:
    """``plan_registration``, then add the new partitions to the instance in one call."""
    existing = set(instance.get_dynamic_partitions(PROMPTS))
    result = plan_registration(requests, store, existing)
    if result.new:
        instance.add_dynamic_partitions(PROMPTS, result.new)
    return result


def missing_partitions(instance: DagsterInstance, keys: Sequence[str] | None = None) -> list[str]:
    """Partitions (in the instance's order) whose final video was never materialized."""
    keys = list(instance.get_dynamic_partitions(PROMPTS)) if keys is None else list(keys)
    done = instance.get_materialized_partitions(FINAL_ASSET)
    return [key for key in keys if key not in done]


def changed_partitions(keys: Sequence[str], store: PromptStore, storage: str) -> list[str]:
    """Partitions whose request (in the prompt store) differs from the one their last
    ``prompt`` materialization used: a dataset row whose settings changed since."""
    base = UPath(storage) / "prompt"
    changed = []
    for key in keys:
        stored = store.get(key)
        path = base / f"{safe_path_component(key)}.json"
        try:
            used = PromptRequest.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            continue  # never made (then it is missing), or unreadable: not known to differ
        if stored is not None and stored != used:
            changed.append(key)
    return changed


def outdated_partitions(
    instance: DagsterInstance, store: PromptStore, storage: str, keys: Sequence[str] | None = None
) -> list[str]:
    """Partitions (in the instance's order) with no final video, or whose request changed
    since their video was made."""
    keys = list(instance.get_dynamic_partitions(PROMPTS)) if keys is None else list(keys)
    missing = set(missing_partitions(instance, keys))
    done = [key for key in keys if key not in missing]
    stale = set(changed_partitions(done, store, storage))
    return [key for key in keys if key in missing or key in stale]


def run_batches(ordered: Sequence[str], targets: Iterable[str], per_run: int) -> list[list[str]]:
    """Split ``targets`` into runs of at most ``per_run`` partitions that are contiguous in
    ``ordered`` (a run covers a range of partitions, as Dagster's backfills do)."""
    wanted = set(targets)
    batches: list[list[str]] = []
    current: list[str] = []
    for key in ordered:
        if key in wanted and len(current) < per_run:
            current.append(key)
            continue
        if current:
            batches.append(current)
            current = []
        if key in wanted:
            current.append(key)
    if current:
        batches.append(current)
    return batches


def run_retrying_alone(
    batches: Sequence[list[str]],
    run: Callable[[list[str]], str | None],
    say: Callable[[str], None],
) -> list[str]:
    """Run each batch with ``run`` (it returns why the run failed, or ``None``); a failed
    run of several partitions is run again one partition at a time, so one bad prompt (an
    unknown model, say) fails alone. Returns the partitions that failed on their own;
    ``say`` gets a line per run and per failure."""
    failed: list[str] = []
    queue = [(batch, f"run {n}/{len(batches)}") for n, batch in enumerate(batches, 1)]
    while queue:
        batch, label = queue.pop(0)
        say(f"{label}: {len(batch)} partitions ({batch[0]} .. {batch[-1]})")
        failure = run(batch)
        if failure is None:
            continue
        if len(batch) > 1:
            # One bad prompt fails its whole run: make the others one at a time.
            say(f"vidgen: {failure}; running its {len(batch)} partitions one by one")
            queue = [([key], f"  {key}") for key in batch] + queue
        else:
            say(f"vidgen: {batch[0]}: {failure}")
            failed.append(batch[0])
    return failed


def range_tags(batch: Sequence[str]) -> dict[str, str]:
    return {RANGE_START_TAG: batch[0], RANGE_END_TAG: batch[-1]}


def process_tags() -> dict[str, str]:
    """Tags that let a later command tell whether this process (a shell run) still lives."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def reap_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark as failed the shell runs whose process died (SIGKILL, power loss) and free the
    GPU slots they held; return their ids. Without this such a run stays STARTED and its
    ``gpu`` pool slot blocks every later run."""
    host = socket.gethostname()
    reaped = []
    records = instance.get_runs(
        RunsFilter(
            statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING],
            tags={HOST_TAG: host},
        )
    )
    for run in records:
        try:
            pid = int(run.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if process_alive(pid):
            continue
        instance.report_run_failed(run, f"its process ({pid}) is gone; marked failed by vidgen")
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped
