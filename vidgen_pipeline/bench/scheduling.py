"""The scheduling section: what Dagster's bookkeeping costs per prompt in a backfill, with
the instance in SQLite and in PostgreSQL.

A backfill of 100 prompts (``--prompts N``) made with the animatic at 128x72 (one scene of
1 s at 8 fps), so the work itself is small and the bookkeeping shows: the prompts are
registered as partitions, then made in runs of ``VIDGEN_PARTITIONS_PER_RUN`` (8) partitions,
in process, as ``vidgen backfill`` makes them. Once in a fresh VIDGEN_HOME with SQLite, once
with a fresh database in a throwaway PostgreSQL cluster on loopback (durable settings: fsync
and synchronous commit on, as a real server). Per prompt: wall time; time inside the steps
(STEP_START to STEP_SUCCESS in the event log: the assets, their IO and their events); and
the scheduling overhead, wall minus time inside steps: creating and planning runs, starting
resources, run events, the instance's queries. Run alone: ``python -m
vidgen_pipeline.bench.scheduling [--prompts N]``.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from vidgen_pipeline.bench.common import BenchContext, SectionResult, guard, markdown_table

DEFAULT_PROMPTS = 100
SMALL = {
    "video_model": "animatic",
    "width": 128,
    "height": 72,
    "fps": 8.0,
    "duration_s": 1.0,
    "scenes": 1,
}


def scheduling_section(ctx: BenchContext) -> SectionResult:
    prompts = int(ctx.option("prompts", DEFAULT_PROMPTS))
    data: dict[str, Any] = {"prompts": prompts, "setup": SMALL}
    for backend in ("sqlite", "postgresql"):
        ctx.log(f"scheduling: a {prompts}-prompt backfill on {backend}")
        data[backend] = guard(lambda b=backend: backfill_on(b, prompts, ctx.log))
    return SectionResult(
        "scheduling",
        "Scheduling: backfill overhead per prompt, SQLite vs PostgreSQL",
        data,
        _markdown(data),
    )


def backfill_on(backend: str, prompts: int, log=print) -> dict[str, Any]:
    """Register ``prompts`` prompts and make them as ``vidgen backfill`` does, with the
    instance on ``backend``; the figures of the module docstring."""
    import contextlib

    with contextlib.ExitStack() as stack:
        if backend == "postgresql":
            from vidgen_pipeline.bench.postgres import PostgresUnavailable, throwaway_cluster

            try:
                cluster = stack.enter_context(
                    throwaway_cluster("vidgen", secrets.token_urlsafe(16), durable=True)
                )
            except PostgresUnavailable as exc:
                return {"status": f"not available: {exc}"}
            stack.enter_context(_environ("VIDGEN_DATABASE_URL", cluster.create_database("bench")))
        else:
            stack.enter_context(_environ("VIDGEN_DATABASE_URL", None))
        return _measure(prompts, log)


def _measure(prompts: int, log) -> dict[str, Any]:
    from dagster import DagsterEventType, DagsterInstance

    from vidgen_pipeline.assets.partitioned import partitions_per_run
    from vidgen_pipeline.batch import range_tags, register_requests, run_batches
    from vidgen_pipeline.bench.common import QUIET_CONSOLE, temporary_home
    from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest, PromptStore
    from vidgen_pipeline.core.storage import default_prompt_store_path
    from vidgen_pipeline.definitions import defs
    from vidgen_pipeline.partitions import PROMPTS

    settings = GenerationSettings(**SMALL)
    requests = [
        PromptRequest(text=f"A paper boat number {n} drifts down a stream.", settings=settings)
        for n in range(prompts)
    ]
    with temporary_home("vidgen-bench-scheduling-"), DagsterInstance.get() as instance:
        storage = type(instance.run_storage).__module__.split(".")[0]
        started = time.perf_counter()
        keys = register_requests(requests, PromptStore(default_prompt_store_path()), instance).new
        register_s = time.perf_counter() - started
        ordered = list(instance.get_dynamic_partitions(PROMPTS))
        batches = run_batches(ordered, keys, partitions_per_run())
        job = defs.resolve_job_def("generate_video")
        run_ids = []
        started = time.perf_counter()
        for number, batch in enumerate(batches, 1):
            result = job.execute_in_process(
                instance=instance,
                tags=range_tags(batch),
                raise_on_error=False,
                run_config=QUIET_CONSOLE,
            )
            if not result.success:
                raise RuntimeError(f"run {result.run_id} ({batch[0]} ..) failed")
            run_ids.append(result.run_id)
            log(f"scheduling: run {number}/{len(batches)} done")
        wall = time.perf_counter() - started
        in_steps, events = 0.0, 0
        for run_id in run_ids:
            entries = instance.all_logs(run_id)
            events += len(entries)
            began: dict[str, float] = {}
            for entry in entries:
                kind = entry.dagster_event.event_type if entry.dagster_event else None
                if kind == DagsterEventType.STEP_START:
                    began[entry.step_key] = entry.timestamp
                elif kind == DagsterEventType.STEP_SUCCESS and entry.step_key in began:
                    in_steps += entry.timestamp - began.pop(entry.step_key)
    return {
        "status": "ok",
        "storage": storage,
        "runs": len(run_ids),
        "register_s": round(register_s, 3),
        "wall_s": round(wall, 2),
        "in_steps_s": round(in_steps, 2),
        "wall_per_prompt_s": round(wall / prompts, 3),
        "in_steps_per_prompt_s": round(in_steps / prompts, 3),
        "overhead_per_prompt_s": round((wall - in_steps) / prompts, 3),
        "events_per_prompt": round(events / prompts, 1),
    }


class _environ:
    """Set (or, with None, remove) one environment variable for a block."""

    def __init__(self, name: str, value: str | None):
        self.name, self.value = name, value

    def __enter__(self):
        self.saved = os.environ.get(self.name)
        if self.value is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = self.value

    def __exit__(self, *exc):
        if self.saved is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = self.saved


def _markdown(data: dict[str, Any]) -> str:
    setup = (
        f"**A {data['prompts']}-prompt backfill** (the animatic at 128x72, 1 scene of 1 s at "
        "8 fps; runs of 8 partitions in process, as `vidgen backfill` runs them; PostgreSQL: a "
        "local cluster on loopback with fsync and synchronous commit on). Overhead = wall minus "
        "time inside steps, per prompt."
    )
    rows, notes = [], []
    for backend in ("sqlite", "postgresql"):
        figures = data.get(backend, {})
        if figures.get("status") != "ok":
            notes.append(f"{backend}: {figures.get('status', 'not run')}")
            continue
        rows.append(
            [
                backend,
                figures["runs"],
                figures["register_s"],
                figures["wall_s"],
                figures["wall_per_prompt_s"],
                figures["in_steps_per_prompt_s"],
                figures["overhead_per_prompt_s"],
                figures["events_per_prompt"],
            ]
        )
    table = markdown_table(
        [
            "instance",
            "runs",
            "register (s)",
            "backfill wall (s)",
            "wall per prompt (s)",
            "in steps per prompt (s)",
            "overhead per prompt (s)",
            "events per prompt",
        ],
        rows,
    )
    both = [data.get(b, {}) for b in ("sqlite", "postgresql")]
    if all(f.get("status") == "ok" for f in both):
        lite, pg = (f["wall_per_prompt_s"] for f in both)
        notes.insert(
            0,
            f"The whole cost of the instance is the wall per prompt: {pg} s on PostgreSQL "
            f"against {lite} s on SQLite ({pg / lite:.1f}x). The overhead column leaves out "
            "the event writes made inside steps (logs, materializations, checks), which is "
            "where most of PostgreSQL's extra time goes: the same animatic work takes "
            f"{both[1]['in_steps_per_prompt_s']} s per prompt inside its steps against "
            f"{both[0]['in_steps_per_prompt_s']} s.",
        )
    return "\n\n".join([setup, table, *notes])
