"""Jobs: make a prompt's video, and add a prompt from the UI's Launchpad."""

from dagster import (
    AssetSelection,
    Config,
    DagsterInstance,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)
from pydantic import Field

from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest
from vidgen_pipeline.k8s import video_run_tags
from vidgen_pipeline.partitions import PROMPTS
from vidgen_pipeline.resources import PromptStoreResource

generate_video_job = define_asset_job(
    "generate_video",
    selection=AssetSelection.groups("story", "media"),
    description="Materialize every asset of one prompt, from storyboard to final_video.",
    tags=video_run_tags(),  # the run's pod asks for a GPU under K8sRunLauncher (k8s.py)
)


class AddPromptConfig(Config):
    """A prompt and optional overrides, as typed into the Launchpad."""

    prompt: str = Field(description="what the video should show (any language)")
    style: str | None = Field(
        default=None, description="cinematic, documentary, anime, watercolor, none"
    )
    duration_s: float | None = Field(default=None, description="target length in seconds")
    scenes: int | None = Field(default=None, description="number of scenes")
    seed: int | None = None
    video_model: str | None = Field(
        default=None, description="auto, animatic, or a model name/path"
    )
    width: int | None = None
    height: int | None = None
    fps: float | None = Field(default=None, description="rate the clips are generated at")
    output_fps: float | None = Field(default=None, description="final video rate")
    interpolate: int | None = Field(default=None, description="1..4: optical-flow frames")
    transition: str | None = Field(default=None, description="cut or crossfade")
    transition_s: float | None = Field(default=None, description="crossfade length, seconds")
    fade_s: float | None = Field(default=None, description="fade in and out, seconds")
    crf: int | None = Field(default=None, description="x264 quality 0..51")
    bitrate: str | None = Field(default=None, description="e.g. 5000k: instead of crf")

    def to_request(self) -> PromptRequest:
        fields = self.model_dump(exclude={"prompt"}, exclude_none=True)
        return PromptRequest(text=self.prompt, settings=GenerationSettings(**fields))


def register_prompt(
    request: PromptRequest, store: PromptStoreResource, instance: DagsterInstance
) -> tuple[str, bool]:
    """Store the request and add its partition; return the key and whether it was new."""
    key = store.store().put(request)
    is_new = not instance.has_dynamic_partition(PROMPTS, key)
    if is_new:
        instance.add_dynamic_partitions(PROMPTS, [key])
    return key, is_new


@op
def add_prompt(
    context: OpExecutionContext, config: AddPromptConfig, prompt_store: PromptStoreResource
) -> str:
    """Register the prompt as a partition of `prompts`; the `generate_added_prompts` sensor
    then launches `generate_video` for it."""
    key, is_new = register_prompt(config.to_request(), prompt_store, context.instance)
    context.log.info(f"{'added' if is_new else 'updated'} partition {key}")
    context.add_output_metadata({"partition_key": key, "new": is_new})
    return key


@job(description="Add a prompt (and optional overrides) and make its video.")
def add_prompt_job():
    add_prompt()
