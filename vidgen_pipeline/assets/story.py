"""Text assets: the request, its storyboard, and the model-facing prompts."""

from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    asset,
)

from vidgen_pipeline.assets.partitioned import (
    BACKFILL_POLICY,
    STORY_GROUP,
    Verdict,
    add_metadata,
    check_result,
    each_partition,
    partition_keys,
    user_errors_are_final,
)
from vidgen_pipeline.assets.sound_track import narrated
from vidgen_pipeline.core.prompts import OptimizedPrompts, optimize_prompts
from vidgen_pipeline.core.requests import PromptRequest
from vidgen_pipeline.core.storyboard import Storyboard, detect_language
from vidgen_pipeline.partitions import prompts_partitions
from vidgen_pipeline.resources import (
    Finishing,
    KeyframeGenerator,
    Narrator,
    PromptStoreResource,
    ScriptWriter,
    VideoGenerator,
)
from vidgen_pipeline.resources.prompt_readers import prompt_readers


def _table(headers: list[str], rows: list[list]) -> MetadataValue:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))


@asset(
    partitions_def=prompts_partitions,
    backfill_policy=BACKFILL_POLICY,
    group_name=STORY_GROUP,
    kinds={"python", "json"},
    io_manager_key="json_io_manager",
)
def prompt(context: AssetExecutionContext, prompt_store: PromptStoreResource) -> Output[dict]:
    """The request of this partition: the whole prompt text and its per-prompt settings.

    Read from the prompt store, where `vidgen generate`, `vidgen add-prompts`, the
    `add_prompt` job and the dataset sensor put it. A partition added by hand in the UI uses
    its key as the prompt text.
    """
    store = prompt_store.store()
    requests = {}
    for key in partition_keys(context):
        request = store.request_for(key)
        requests[key] = request
        add_metadata(
            context,
            key,
            {
                "text": MetadataValue.text(
                    request.text[:500] + ("…" if len(request.text) > 500 else "")
                ),
                "characters": len(request.text),
                "language": detect_language(request.text),
                "sample": request.sample,
                "settings": MetadataValue.json(request.settings.model_dump(exclude_none=True)),
            },
        )
    return Output(requests)


@asset(
    partitions_def=prompts_partitions,
    group_name=STORY_GROUP,
    kinds={"python", "json"},
    io_manager_key="json_io_manager",
    backfill_policy=BACKFILL_POLICY,
    # A chat LLM (up to 15 GB in bf16) must not share the card with another run's video model.
    pool="gpu",
    check_specs=[
        AssetCheckSpec("matches_schema", asset="script"),
        AssetCheckSpec(
            "written_by_requested_writer",
            asset="script",
            description="Warns when the LLM's output was unusable and the rules wrote the script.",
        ),
    ],
)
def script(context: AssetExecutionContext, prompt, script_writer: ScriptWriter, narrator: Narrator):
    """The storyboard: a title and numbered scenes whose durations add up to the target.

    Written by a local chat LLM when `script_model` names one, else (or when its answer is
    unusable after a few tries) by the deterministic rule-based writer. With narration, each
    scene carries its line and lasts at least as long as the line is spoken.
    """
    boards, schema, writer = {}, {}, {}
    for key, log, (request,) in each_partition(context, prompt):
        storyboard = user_errors_are_final(lambda r=request, lg=log: script_writer.write(r, lg))
        storyboard, voice = user_errors_are_final(
            lambda b=storyboard, r=request, lg=log: narrated(b, r.settings, narrator, lg)
        )
        for note in storyboard.notes:
            context.log.warning(note)
        boards[key] = storyboard
        add_metadata(
            context,
            key,
            {
                "title": storyboard.title,
                "writer": storyboard.writer,
                "language": storyboard.language,
                "scenes": len(storyboard.scenes),
                "target_duration_s": storyboard.target_duration_s,
                "notes": MetadataValue.json(storyboard.notes),
                "voice": f"{voice.kind}: {voice.identity}" if voice else "none",
                "storyboard": _table(
                    ["#", "seconds", "description", "narration"],
                    [
                        [s.scene_number, s.duration_s, s.description[:160], s.narration or ""]
                        for s in storyboard.scenes
                    ],
                ),
            },
        )
        schema[key] = _schema_check(storyboard)
        asked = request.settings.script_model or script_writer.model
        fell_back = storyboard.writer.startswith("rules (")
        writer[key] = Verdict(
            passed=not fell_back,
            description=storyboard.writer if fell_back else f"written by {storyboard.writer}",
            metadata={"asked_for": asked, "writer": storyboard.writer},
        )
    yield Output(boards)
    yield check_result("matches_schema", schema)
    yield check_result("written_by_requested_writer", writer, AssetCheckSeverity.WARN)


def _schema_check(storyboard: Storyboard) -> Verdict:
    """Re-validate the document as it is serialised (what downstream steps will read)."""
    try:
        Storyboard.model_validate_json(storyboard.model_dump_json())
    except ValueError as exc:
        return Verdict(passed=False, metadata={"error": str(exc)[:1000]})
    total = sum(s.duration_s for s in storyboard.scenes)
    return Verdict(
        passed=True,
        metadata={"scenes": len(storyboard.scenes), "total_duration_s": round(total, 3)},
    )


@asset(
    partitions_def=prompts_partitions,
    group_name=STORY_GROUP,
    kinds={"python", "json"},
    io_manager_key="json_io_manager",
    backfill_policy=BACKFILL_POLICY,
    pool="gpu",  # the LLM translates prompts for English-only text encoders
)
def optimized_prompts(
    context: AssetExecutionContext,
    prompt,
    script,
    script_writer: ScriptWriter,
    keyframe_generator: KeyframeGenerator,
    video_generator: VideoGenerator,
    finishing: Finishing,
) -> Output[dict]:
    """Per scene: the model-facing prompt, negative prompt, camera motion and seed, plus the
    resolved video model and its settings (which model, and why it was picked)."""
    results = {}
    for key, log, (request, board) in each_partition(context, prompt, script):
        result, token_limit = user_errors_are_final(
            lambda r=request, b=board, lg=log: _optimize(
                context,
                r,
                b,
                script_writer,
                keyframe_generator,
                video_generator,
                finishing,
                lg,
            )
        )
        results[key] = result
        add_metadata(context, key, _optimized_metadata(result, token_limit))
    return Output(results)


def _optimize(
    context: AssetExecutionContext,
    request: PromptRequest,
    script: Storyboard,
    script_writer: ScriptWriter,
    keyframe_generator: KeyframeGenerator,
    video_generator: VideoGenerator,
    finishing: Finishing,
    log,
) -> tuple[OptimizedPrompts, str]:
    settings = request.settings
    plan = video_generator.plan(settings, keyframe_generator)
    log(f"video model: {plan.model} ({plan.reason}); keyframes: {plan.keyframe_model}")
    for note in plan.notes:
        context.log.warning(note)
    readers = prompt_readers(plan, script, request, script_writer, log)
    for warning in readers.warnings:
        context.log.warning(warning)
    result = optimize_prompts(
        script,
        style=settings.style,
        seed=settings.seed,
        reader=readers.video,
        keyframe=readers.keyframe,
        negative_prompt=readers.negative_prompt,
    ).model_copy(update={"video": plan, "optimizer": readers.optimizer})
    result.finishing = finishing.plan(
        settings, [s.duration_s for s in script.scenes], plan.fps, plan.backend != "animatic"
    )
    for note in result.finishing.notes:
        context.log.warning(note)
    return result, readers.token_limit


def _optimized_metadata(result: OptimizedPrompts, token_limit: str) -> dict:
    plan = result.video
    return {
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
        "token_limit": token_limit,
        "base_seed": result.base_seed,
        "finishing": MetadataValue.json(result.finishing.model_dump() if result.finishing else {}),
        "prompts": _table(
            ["#", "seed", "camera", "prompt"],
            [[s.scene_number, s.seed, s.camera.name, s.prompt[:200]] for s in result.scenes],
        ),
    }
