"""The code location: every asset, job, sensor and resource, for `dagster dev` and the CLI."""

from dagster import Definitions, in_process_executor

from vidgen_pipeline.assets import ALL_ASSETS
from vidgen_pipeline.io_managers import FramesIOManager, JsonIOManager, VideoIOManager
from vidgen_pipeline.jobs import add_prompt_job, generate_video_job
from vidgen_pipeline.resources import (
    Finishing,
    KeyframeGenerator,
    Narrator,
    PromptStoreResource,
    ScriptWriter,
    VideoGenerator,
)
from vidgen_pipeline.sensors import generate_added_prompts, nightly_missing, prompt_datasets


def make_resources(**overrides) -> dict:
    """The default resource set; tests and the CLI override single entries."""
    resources = {
        "prompt_store": PromptStoreResource(),
        "script_writer": ScriptWriter(),
        "keyframe_generator": KeyframeGenerator(),
        "video_generator": VideoGenerator(),
        "finishing": Finishing(),
        "narrator": Narrator(),
        "json_io_manager": JsonIOManager(),
        "frames_io_manager": FramesIOManager(),
        "video_io_manager": VideoIOManager(),
    }
    resources.update(overrides)
    return resources


defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[generate_video_job, add_prompt_job],
    sensors=[generate_added_prompts, prompt_datasets],
    schedules=[nightly_missing],
    resources=make_resources(),
    # A run is one process: each model loads once per run, CUDA starts once on the run's own
    # device (gpus.py), and under K8sRunLauncher the run's pod is where the GPU work is.
    executor=in_process_executor,
)
