"""Text assets: the request, its storyboard, and the model-facing prompts."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    asset,
)

from vidgen_pipeline.core.prompts import OptimizedPrompts, optimize_prompts
from vidgen_pipeline.core.requests import PromptRequest
from vidgen_pipeline.core.storyboard import Storyboard, detect_language
from vidgen_pipeline.partitions import prompts_partitions
from vidgen_pipeline.resources import (
    KeyframeGenerator,
    PromptStoreResource,
    ScriptWriter,
    VideoGenerator,
)

GROUP = "story"


def _table(headers: list[str], rows: list[list]) -> MetadataValue:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))


@asset(
    partitions_def=prompts_partitions,
    group_name=GROUP,
    kinds={"python", "json"},
    io_manager_key="json_io_manager",
)
def prompt(
    context: AssetExecutionContext, prompt_store: PromptStoreResource
) -> Output[PromptRequest]:
    """The request of this partition: the whole prompt text and its per-prompt settings.

    Read from the prompt store, where `vidgen generate`, the `add_prompt` job and dataset
    sensors put it. A partition added by hand in the UI uses its key as the prompt text.
    """
    request = prompt_store.store().request_for(context.partition_key)
    settings = request.settings.model_dump(exclude_none=True)
    return Output(
        request,
        metadata={
            "text": MetadataValue.text(
                request.text[:500] + ("…" if len(request.text) > 500 else "")
            ),
            "characters": len(request.text),
            "language": detect_language(request.text),
            "settings": MetadataValue.json(settings),
        },
    )


@asset(
    partitions_def=prompts_partitions,
    group_name=GROUP,
    kinds={"python", "json"},
    io_manager_key="json_io_manager",
    check_specs=[AssetCheckSpec("matches_schema", asset="script")],
)
def script(context: AssetExecutionContext, prompt: PromptRequest, script_writer: ScriptWriter):
    """The storyboard: a title and numbered scenes whose durations add up to the target."""
    storyboard = script_writer.write(prompt)
    for note in storyboard.notes:
        context.log.warning(note)
    yield Output(
        storyboard,
        metadata={
            "title": storyboard.title,
            "writer": storyboard.writer,
            "language": storyboard.language,
            "scenes": len(storyboard.scenes),
            "target_duration_s": storyboard.target_duration_s,
            "notes": MetadataValue.json(storyboard.notes),
            "storyboard": _table(
                ["#", "seconds", "description"],
                [[s.scene_number, s.duration_s, s.description[:160]] for s in storyboard.scenes],
            ),
        },
    )
    yield _schema_check(storyboard)


def _schema_check(storyboard: Storyboard) -> AssetCheckResult:
    """Re-validate the document as it is serialised (what downstream steps will read)."""
    try:
        Storyboard.model_validate_json(storyboard.model_dump_json())
    except ValueError as exc:
        return AssetCheckResult(
            passed=False, severity=AssetCheckSeverity.ERROR, metadata={"error": str(exc)[:1000]}
        )
    total = sum(s.duration_s for s in storyboard.scenes)
    return AssetCheckResult(
        passed=True,
        metadata={"scenes": len(storyboard.scenes), "total_duration_s": round(total, 3)},
    )


@asset(
    partitions_def=prompts_partitions,
    group_name=GROUP,
    kinds={"python", "json"},
    io_manager_key="json_io_manager",
)
def optimized_prompts(
    context: AssetExecutionContext,
    prompt: PromptRequest,
    script: Storyboard,
    keyframe_generator: KeyframeGenerator,
    video_generator: VideoGenerator,
) -> Output[OptimizedPrompts]:
    """Per scene: the model-facing prompt, negative prompt, camera motion and seed, plus the
    resolved video model and its settings (which model, and why it was picked)."""
    settings = prompt.settings
    plan = video_generator.plan(settings, keyframe_generator)
    context.log.info(f"video model: {plan.model} ({plan.reason}); keyframes: {plan.keyframe_model}")
    for note in plan.notes:
        context.log.warning(note)
    result = optimize_prompts(script, style=settings.style, seed=settings.seed).model_copy(
        update={"video": plan}
    )
    return Output(
        result,
        metadata={
            "video_model": plan.model,
            "video_model_reason": plan.reason,
            "backend": plan.backend,
            "pipeline": plan.pipeline,
            "weights": plan.weights_path or "none",
            "keyframe_model": plan.keyframe_model,
            "device": plan.device,
            "dtype": plan.dtype,
            "memory_mode": plan.memory_mode,
            "size": f"{plan.width}x{plan.height}",
            "fps": plan.fps,
            "style": result.style,
            "base_seed": result.base_seed,
            "prompts": _table(
                ["#", "seed", "camera", "prompt"],
                [[s.scene_number, s.seed, s.camera.name, s.prompt[:200]] for s in result.scenes],
            ),
        },
    )
