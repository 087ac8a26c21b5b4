"""Jobs: make a prompt's video, and add a prompt from the UI's Launchpad."""

from pathlib import Path
from typing import ClassVar, Literal, get_origin

from dagster import (
    AssetSelection,
    Config,
    DagsterInstance,
    Failure,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)
from pydantic import Field, create_model

from vidgen_pipeline.core.images import drop_folder, with_stored_image
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.music import with_stored_music
from vidgen_pipeline.core.requests import (
    GenerationSettings,
    PromptRequest,
    settings_fields,
    value_type,
)
from vidgen_pipeline.k8s import video_run_tags
from vidgen_pipeline.partitions import PROMPTS
from vidgen_pipeline.resources import PromptStoreResource, VideoGenerator

generate_video_job = define_asset_job(
    "generate_video",
    selection=AssetSelection.groups("story", "media"),
    description="Materialize every asset of one prompt, from storyboard to final_video.",
    tags=video_run_tags(),  # the run's pod asks for a GPU under K8sRunLauncher (k8s.py)
)


class _AddPrompt(Config):
    settings_model: ClassVar[type[GenerationSettings]] = GenerationSettings
    prompt: str = Field(description="what the video should show (any language)")

    def to_request(self) -> PromptRequest:
        fields = self.model_dump(exclude={"prompt"}, exclude_none=True)
        return PromptRequest(text=self.prompt, settings=self.settings_model(**fields))


def launchpad_config(
    model: type[GenerationSettings] = GenerationSettings, name: str = "AddPromptConfig"
) -> type[Config]:
    """The Launchpad config of ``add_prompt``: the prompt, and each setting of ``model`` that
    says ``launchpad=True``, optional, with its description. A ``Literal`` setting is typed
    as text here (its values are checked when the request is made)."""
    fields = {}
    for field_name, info, setting in settings_fields(model):
        if setting.launchpad:
            kind, repeatable = value_type(info)
            kind = str if get_origin(kind) is Literal else kind
            kind = list[kind] if repeatable else kind
            fields[field_name] = (kind | None, Field(default=None, description=info.description))
    config = create_model(
        name,
        __base__=_AddPrompt,
        __doc__="A prompt and optional overrides, as typed into the Launchpad.",
        **fields,
    )
    config.settings_model = model
    return config


AddPromptConfig = launchpad_config()


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
    context: OpExecutionContext,
    config: AddPromptConfig,
    prompt_store: PromptStoreResource,
    video_generator: VideoGenerator,
) -> str:
    """Register the prompt as a partition of `prompts`; the `generate_added_prompts` sensor
    then launches `generate_video` for it. An image is read only from VIDGEN_HOME/inputs
    (relative paths start there) or a folder in `video_generator.image_dirs`; music only
    from VIDGEN_HOME/inputs."""
    roots = [drop_folder(), *(Path(d) for d in video_generator.image_dirs)]
    try:
        request = with_stored_image(config.to_request(), roots, relative_to=drop_folder())
        request = with_stored_music(request, [drop_folder()], relative_to=drop_folder())
    except ModelChoiceError as exc:
        raise Failure(str(exc), allow_retries=False) from None
    key, is_new = register_prompt(request, prompt_store, context.instance)
    context.log.info(f"{'added' if is_new else 'updated'} partition {key}")
    context.add_output_metadata({"partition_key": key, "new": is_new})
    return key


@job(description="Add a prompt (and optional overrides) and make its video.")
def add_prompt_job():
    add_prompt()
