"""The scene_clips asset: per scene, the finished clip (stored lossless) and its own mp4."""

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
    MEDIA_GROUP,
    RETRY_POLICY,
    Verdict,
    add_metadata,
    check_result,
    each_partition,
    user_errors_are_final,
)
from vidgen_pipeline.assets.quality_checks import quality_results, quality_specs, quality_verdicts
from vidgen_pipeline.assets.scene_schedule import render_scenes
from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.prompts import OptimizedPrompts
from vidgen_pipeline.core.quality import assess, sampled
from vidgen_pipeline.core.storage import scratch_dir
from vidgen_pipeline.partitions import prompts_partitions
from vidgen_pipeline.resources import VideoGenerator


@asset(
    partitions_def=prompts_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=MEDIA_GROUP,
    kinds={"python", "mp4"},
    io_manager_key="frames_io_manager",
    pool="gpu",
    check_specs=[
        AssetCheckSpec("frame_counts_as_planned", asset="scene_clips"),
        AssetCheckSpec(
            "generated_footage",
            asset="scene_clips",
            description="Warns when a clip was not made by a video model (animatic or fallback).",
        ),
        *quality_specs("scene_clips"),
    ],
)
def scene_clips(
    context: AssetExecutionContext,
    optimized_prompts,
    keyframes,
    video_generator: VideoGenerator,
):
    """Per scene, the finished clip (stored lossless) and its own mp4: the video model's
    frames brought to the output rate by optical-flow interpolation, with the crossfade
    handles the final video needs (see `optimized_prompts`' `finishing`).

    Finished scenes are kept in the scene cache under a key of everything that determines
    them: a re-run, or a restart after a crash, reuses them (``cache: reused`` in the
    scene's metadata) and makes only the scenes that changed or never finished.
    """
    cache = video_generator.cache()
    if cache is not None:
        cache.remove_stale_temp()
    results, counts, generated, quality = {}, {}, {}, {}
    with scratch_dir(f"scene_clips-{context.run.run_id[:8]}") as scratch:
        for key, log, (prompts, frames) in each_partition(context, optimized_prompts, keyframes):
            folder = scratch / f"p{len(results):04d}"
            folder.mkdir()
            planned = _planned_frames(prompts)
            clips = user_errors_are_final(
                lambda p=prompts, f=frames, d=folder, lg=log: render_scenes(
                    p, f, video_generator, cache, d, lg
                )
            )
            results[key] = clips
            add_metadata(context, key, _clips_metadata(prompts, clips))
            counts[key], generated[key] = _clip_verdicts(clips, planned)
            quality[key] = quality_verdicts(
                {f"scene {c.scene_number}": assess(sampled(c.frames), c.fps) for c in clips}
            )
        # The IO manager moves the scene mp4s out of the scratch folder while handling this.
        yield Output(results)
    yield check_result("frame_counts_as_planned", counts)
    yield check_result("generated_footage", generated, AssetCheckSeverity.WARN)
    yield from quality_results(quality)


def _planned_frames(prompts: OptimizedPrompts) -> list[int]:
    """Each finished clip's frames at the output rate (span plus crossfade handles)."""
    return prompts.finishing_plan().output_frames([s.duration_s for s in prompts.scenes])


def _clips_metadata(prompts: OptimizedPrompts, clips: list[SceneClip]) -> dict:
    plan = prompts.video
    reused = [c.scene_number for c in clips if c.info.get("cache") == "reused"]
    return {
        "backend": ", ".join(sorted({c.info["backend"] for c in clips})),
        "video_model": plan.model,
        "video_model_reason": plan.reason,
        "pipeline": plan.pipeline,
        "frames": sum(len(c.frames) for c in clips),
        "fps": plan.fps,
        "reused_scenes": MetadataValue.json(reused),
        "scenes": MetadataValue.json(
            [{"scene": c.scene_number, "frames": len(c.frames), **c.info} for c in clips]
        ),
    }


def _clip_verdicts(clips: list[SceneClip], planned: list[int]) -> tuple[Verdict, Verdict]:
    actual = [len(c.frames) for c in clips]
    counts = Verdict(
        passed=actual == planned and all(n >= 1 for n in actual),
        metadata={"planned": MetadataValue.json(planned), "actual": MetadataValue.json(actual)},
    )
    backends = ", ".join(sorted({c.info["backend"] for c in clips}))
    not_generated = [c.scene_number for c in clips if not c.info.get("generated")]
    generated = Verdict(
        passed=not not_generated,
        description=(
            f"scenes {not_generated} are {backends} clips, not generated footage"
            if not_generated
            else "every scene was made by a video model"
        ),
        metadata={"backend": backends, "not_generated_scenes": MetadataValue.json(not_generated)},
    )
    return counts, generated
