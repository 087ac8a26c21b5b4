"""Sensors and the schedule: prompts added in the Launchpad, prompt datasets dropped into
``VIDGEN_HOME/datasets``, and a nightly batch of whatever is still missing."""

import datetime
import json
import os
import warnings
import zoneinfo

from dagster import (
    AssetKey,
    DagsterInvalidDefinitionError,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    schedule,
    sensor,
)

# Dagster 1.13 has no public way for a sensor to request a backfill: RunRequest's
# for_asset_graph_subset takes these (its docstring: "intentionally left private ... Other
# constructor methods will be public"). Used in backfill_request only.
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey

from vidgen_pipeline.assets.partitioned import partitions_per_run
from vidgen_pipeline.batch import outdated_partitions, plan_registration, range_tags, run_batches
from vidgen_pipeline.core.datasets import file_stamp, find_datasets, read_dataset
from vidgen_pipeline.core.requests import PromptStore
from vidgen_pipeline.core.storage import (
    default_prompt_store_path,
    default_storage_path,
    vidgen_home,
)
from vidgen_pipeline.jobs import AddPromptConfig, add_prompt_job, generate_video_job
from vidgen_pipeline.k8s import video_run_tags
from vidgen_pipeline.partitions import PROMPTS, prompts_partitions
from vidgen_pipeline.resources import VideoGenerator

DEFAULT_CRON = "0 2 * * *"
ASSETS = ("prompt", "script", "optimized_prompts", "keyframes", "scene_clips", "final_video")


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[add_prompt_job],
    request_job=generate_video_job,
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
)
def generate_added_prompts(context: RunStatusSensorContext):
    """When `add_prompt_job` succeeds, launch `generate_video` for the partition it added."""
    op_config = context.dagster_run.run_config.get("ops", {}).get("add_prompt", {}).get("config")
    if not op_config:
        return SkipReason("the add_prompt run has no prompt config")
    key = AddPromptConfig(**op_config).to_request().partition_key
    return RunRequest(run_key=f"{context.dagster_run.run_id}:{key}", partition_key=key)


def datasets_dir():
    return vidgen_home() / "datasets"


def backfill_request(context, keys: list[str], reason: str) -> RunRequest:
    """A backfill of every asset of ``keys``: Dagster splits it into runs of
    ``VIDGEN_PARTITIONS_PER_RUN`` partitions (the assets' backfill policy)."""
    graph = context.repository_def.asset_graph
    subset = AssetGraphSubset.from_asset_partition_set(
        {AssetKeyPartitionKey(AssetKey(name), key) for name in ASSETS for key in keys}, graph
    )
    return RunRequest.for_asset_graph_subset(
        subset, tags={"vidgen/source": reason, **video_run_tags()}
    )


@sensor(
    asset_selection=list(ASSETS),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def prompt_datasets(context: SensorEvaluationContext, video_generator: VideoGenerator):
    """Turns new or changed rows of the files in `VIDGEN_HOME/datasets` (CSV, TSV, Parquet,
    JSONL, TXT) into `prompts` partitions and one backfill of their videos.

    The cursor holds each file's size and modification time, so an untouched file is not
    read again; the prompt store holds each partition's request, so a row is requested again
    only when it changed. Bad rows and unreadable files are logged and skipped; the rest goes through.
    """
    folder = datasets_dir()
    if not folder.is_dir():
        return SkipReason(f"no datasets folder at {folder}")
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    store = PromptStore(default_prompt_store_path())
    existing = set(context.instance.get_dynamic_partitions(PROMPTS))
    new, to_run, read = [], [], {}
    for path in find_datasets(folder):
        try:
            stamp = "{}:{}".format(*file_stamp(path))
        except OSError:  # renamed or deleted since the folder was listed
            continue
        if seen.get(path.name) == stamp:
            continue  # not touched since the last tick: not even read
        read[path.name] = stamp
        result = read_dataset(path, video_generator.image_dirs)
        for problem in result.problems:
            context.log.warning(str(problem))
        registration = plan_registration(result.requests, store, existing | set(new))
        new += registration.new
        to_run += [key for key in registration.to_run if key not in to_run]
        context.log.info(
            f"{path.name}: {result.rows} rows, {len(registration.new)} new partitions, "
            f"{len(registration.changed)} changed, {registration.unchanged} unchanged, "
            f"{len(result.errors)} problems"
        )
    cursor = json.dumps({**seen, **read}, sort_keys=True)
    if not to_run:
        return SensorResult(skip_reason=SkipReason("no new or changed rows"), cursor=cursor)
    return SensorResult(
        run_requests=[backfill_request(context, to_run, "dataset")],
        dynamic_partitions_requests=[prompts_partitions.build_add_request(new)] if new else [],
        cursor=cursor,
    )


def _nightly_cron() -> str:
    cron = os.environ.get("VIDGEN_NIGHTLY_CRON", DEFAULT_CRON)
    try:  # Dagster's own check of a schedule's cron string
        ScheduleDefinition(name="vidgen_cron_check", cron_schedule=cron, job_name="check")
    except DagsterInvalidDefinitionError:
        warnings.warn(
            f"VIDGEN_NIGHTLY_CRON {cron!r} is not a cron string; using {DEFAULT_CRON!r}",
            stacklevel=2,
        )
        return DEFAULT_CRON
    return cron


def _timezone() -> str:
    zone = os.environ.get("VIDGEN_TIMEZONE", "UTC")
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        warnings.warn(f"VIDGEN_TIMEZONE {zone!r} is not a time zone; using UTC", stacklevel=2)
        return "UTC"
    return zone


@schedule(
    cron_schedule=_nightly_cron(),
    target=list(ASSETS),
    default_status=DefaultScheduleStatus.RUNNING,
    execution_timezone=_timezone(),
)
def nightly_missing(context: ScheduleEvaluationContext):
    """Every night (02:00 UTC, `VIDGEN_NIGHTLY_CRON`), runs of the partitions whose final
    video is missing (failed runs, prompts added while nothing ran) or whose request changed
    since: `VIDGEN_PARTITIONS_PER_RUN` prompts per run, so each model loads once per run."""
    busy = context.instance.get_runs_count(
        RunsFilter(
            statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
        )
    )
    if busy:
        return SkipReason(f"{busy} runs are still queued or running; tomorrow then")
    store = PromptStore(default_prompt_store_path())
    todo = outdated_partitions(context.instance, store, default_storage_path())
    if not todo:
        return SkipReason("every partition has an up-to-date final video")
    ordered = list(context.instance.get_dynamic_partitions(PROMPTS))
    try:
        when = context.scheduled_execution_time
    except Exception:  # noqa: BLE001  evaluated by hand (tests, "Test schedule" in the UI)
        when = None
    night = (when or datetime.datetime.now()).strftime("%Y-%m-%d")
    return [
        # A schedule launches runs, not backfills: each run names its range of partitions.
        RunRequest(
            run_key=f"nightly-{night}-{index}",
            tags={**range_tags(batch), "vidgen/source": "nightly", **video_run_tags()},
        )
        for index, batch in enumerate(run_batches(ordered, todo, partitions_per_run()))
    ]
