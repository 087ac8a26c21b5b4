"""Adding a prompt from the UI's Launchpad: add_prompt_job, then the sensor's run."""

from __future__ import annotations

from dagster import DagsterRunStatus, build_run_status_sensor_context

from vidgen_pipeline.core.media import probe_video
from vidgen_pipeline.core.requests import partition_key_for
from vidgen_pipeline.definitions import defs
from vidgen_pipeline.resources import PromptStoreResource
from vidgen_pipeline.sensors import generate_added_prompts

TEXT = "Lanterns float over a dark lake. 灯笼缓缓升起。"


def launchpad_config(**extra) -> dict:
    config = {"prompt": TEXT, "duration_s": 2.0, "width": 96, "height": 64, "fps": 6.0, **extra}
    return {"ops": {"add_prompt": {"config": config}}}


def test_launchpad_job_registers_the_prompt_and_the_sensor_makes_its_video(instance):
    add = defs.resolve_job_def("add_prompt_job").execute_in_process(
        instance=instance, run_config=launchpad_config(style="anime")
    )
    assert add.success
    key = partition_key_for(TEXT)
    assert add.output_for_node("add_prompt") == key
    assert instance.get_dynamic_partitions("prompts") == [key]
    stored = PromptStoreResource().store().get(key)
    assert stored.text == TEXT and stored.settings.style == "anime"

    run = instance.get_run_by_id(add.run_id)
    context = build_run_status_sensor_context(
        sensor_name=generate_added_prompts.name,
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=add.get_run_success_event(),
    )
    request = generate_added_prompts(context)
    assert request.partition_key == key

    # What the daemon does with the request: run generate_video for that partition.
    made = defs.resolve_job_def(generate_added_prompts.job_name).execute_in_process(
        instance=instance, partition_key=request.partition_key
    )
    assert made.success
    final = [
        e for e in made.get_asset_materialization_events() if e.asset_key.path == ["final_video"]
    ]
    facts = probe_video(final[0].materialization.metadata["path"].value)
    assert (facts.width, facts.height, facts.frame_count) == (96, 64, 12)
    assert instance.get_run_by_id(made.run_id).status == DagsterRunStatus.SUCCESS


def test_launchpad_refuses_an_empty_prompt_and_registers_nothing(instance):
    result = defs.resolve_job_def("add_prompt_job").execute_in_process(
        instance=instance, run_config=launchpad_config(prompt="  \n "), raise_on_error=False
    )
    assert not result.success
    assert "the prompt is empty" in str(result.all_events)
    assert instance.get_dynamic_partitions("prompts") == []
