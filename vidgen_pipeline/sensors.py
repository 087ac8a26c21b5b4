"""Sensors: turn prompts added in the Launchpad into video runs."""

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunStatusSensorContext,
    SkipReason,
    run_status_sensor,
)

from vidgen_pipeline.jobs import AddPromptConfig, add_prompt_job, generate_video_job


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
