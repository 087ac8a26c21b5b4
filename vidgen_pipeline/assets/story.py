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
    runtime,
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
    check_specs=[
        AssetCheckSpec("matches_schema", asset="script"),
        AssetCheckSpec(
            "written_by_requested_writer",
            asset="script",
            description="Warns when the LLM's output was unusable and the rules wrote the script.",
        ),
    ],
)
def script(context: AssetExecutionContext, prompt: PromptRequest, script_writer: ScriptWriter):
    """The storyboard: a title and numbered scenes whose durations add up to the target.

    Written by a local chat LLM when `script_model` names one, else (or when its answer is
    unusable after a few tries) by the deterministic rule-based writer.
    """
    storyboard = script_writer.write(prompt, log=context.log.info)
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
    asked = prompt.settings.script_model or script_writer.model
    fell_back = storyboard.writer.startswith("rules (")
    yield AssetCheckResult(
        check_name="written_by_requested_writer",
        passed=not fell_back,
        severity=AssetCheckSeverity.WARN,
        description=storyboard.writer if fell_back else f"written by {storyboard.writer}",
        metadata={"asked_for": asked, "writer": storyboard.writer},
    )


def _schema_check(storyboard: Storyboard) -> AssetCheckResult:
    """Re-validate the document as it is serialised (what downstream steps will read)."""
    try:
        Storyboard.model_validate_json(storyboard.model_dump_json())
    except ValueError as exc:
        return AssetCheckResult(
            check_name="matches_schema",
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            metadata={"error": str(exc)[:1000]},
        )
    total = sum(s.duration_s for s in storyboard.scenes)
    return AssetCheckResult(
        check_name="matches_schema",
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
    script_writer: ScriptWriter,
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
    # The text encoder that reads the prompts: the video model's (text-to-video) or the
    # keyframe model's (image-to-video, animatic with a text-to-image model).
    encoder = plan.weights_path if plan.conditioning == "text" else plan.keyframe_weights_path
    english = None
    if encoder and script.language == "zh":
        english = script_writer.translate(
            [s.description for s in script.scenes], prompt, context.log.info
        )
        if english is None:
            context.log.warning(
                "the prompts stay in Chinese: CLIP text encoders read English; set script_model "
                "to an LLM to translate them"
            )
    count_tokens, limit = runtime.token_counter(encoder)
    result = optimize_prompts(
        script,
        style=settings.style,
        seed=settings.seed,
        english=english,
        count_tokens=count_tokens,
        token_limit=limit,
    ).model_copy(update={"video": plan})
    if english:
        result.optimizer = "rules + llm translation"
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
            "optimizer": result.optimizer,
            "token_limit": f"{limit} ({'tokenizer' if count_tokens else 'estimate'})",
            "base_seed": result.base_seed,
            "prompts": _table(
                ["#", "seed", "camera", "prompt"],
                [[s.scene_number, s.seed, s.camera.name, s.prompt[:200]] for s in result.scenes],
            ),
        },
    )
