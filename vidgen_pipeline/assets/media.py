"""Media assets: keyframes, scene clips and the final stitched video."""

import numpy as np
from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    asset,
)
from PIL import Image

from vidgen_pipeline.assets.partitioned import (
    BACKFILL_POLICY,
    RETRY_POLICY,
    Verdict,
    add_metadata,
    check_result,
    each_partition,
    user_errors_are_final,
)
from vidgen_pipeline.core.clips import FinalVideo, Keyframe, SceneClip
from vidgen_pipeline.core.media import (
    MediaError,
    encode_h264,
    frames_for_span,
    probe_video,
)
from vidgen_pipeline.core.previews import contact_sheet, markdown_image
from vidgen_pipeline.core.prompts import OptimizedPrompts
from vidgen_pipeline.core.scene_cache import SceneCache, scene_key, weights_revision
from vidgen_pipeline.core.storage import scratch_dir
from vidgen_pipeline.core.storyboard import Storyboard
from vidgen_pipeline.partitions import prompts_partitions
from vidgen_pipeline.resources import KeyframeGenerator, VideoGenerator

GROUP = "media"
SCENE_PREVIEW_PRESET = "veryfast"  # per-scene mp4s are for viewing; the final encode is careful


@asset(
    partitions_def=prompts_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=GROUP,
    kinds={"python", "png"},
    io_manager_key="frames_io_manager",
    pool="gpu",
)
def keyframes(
    context: AssetExecutionContext,
    script,
    optimized_prompts,
    keyframe_generator: KeyframeGenerator,
) -> Output[dict]:
    """Per scene, the image an image-to-video model starts from (and the animatic pans over).

    Made by a text-to-image model; without one, labelled storyboard cards that say so. A
    text-to-video model needs none (the asset is then empty). The model loads once per run,
    whatever the number of prompts in it.
    """
    results = {}
    try:
        for key, log, (board, prompts) in each_partition(context, script, optimized_prompts):
            plan = prompts.video
            images = user_errors_are_final(
                lambda b=board, p=prompts, lg=log: keyframe_generator.make(b, p, log=lg)
            )
            results[key] = images
            metadata = {
                "source": plan.keyframe_model,
                "count": len(images),
                "size": f"{plan.width}x{plan.height}",
            }
            if images:
                sheet = contact_sheet([k.image for k in images])
                metadata["contact_sheet"] = MetadataValue.md(
                    markdown_image(sheet, "keyframes", max_width=480)
                )
            add_metadata(context, key, metadata)
    finally:
        keyframe_generator.release()  # the video model needs the memory next
    return Output(results)


def _frame_counts(prompts: OptimizedPrompts, fps: float) -> list[int]:
    counts, start = [], 0.0
    for scene in prompts.scenes:
        counts.append(frames_for_span(start, start + scene.duration_s, fps))
        start += scene.duration_s
    return counts


@asset(
    partitions_def=prompts_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=GROUP,
    kinds={"python", "png", "mp4"},
    io_manager_key="frames_io_manager",
    pool="gpu",
    check_specs=[
        AssetCheckSpec("frame_counts_as_planned", asset="scene_clips"),
        AssetCheckSpec(
            "generated_footage",
            asset="scene_clips",
            description="Warns when a clip was not made by a video model (animatic or fallback).",
        ),
    ],
)
def scene_clips(
    context: AssetExecutionContext,
    optimized_prompts,
    keyframes,
    video_generator: VideoGenerator,
):
    """Per scene, the video model's frames (stored lossless) and the scene's own mp4.

    Finished scenes are kept in the scene cache under a key of everything that determines
    them: a re-run, or a restart after a crash, reuses them (``cache: reused`` in the
    scene's metadata) and makes only the scenes that changed or never finished.
    """
    cache = video_generator.cache()
    if cache is not None:
        cache.remove_stale_temp()
    results, counts, generated = {}, {}, {}
    with scratch_dir(f"scene_clips-{context.run.run_id[:8]}") as scratch:
        for key, log, (prompts, frames) in each_partition(context, optimized_prompts, keyframes):
            folder = scratch / f"p{len(results):04d}"
            folder.mkdir()
            planned = _frame_counts(prompts, prompts.video.fps)
            clips = user_errors_are_final(
                lambda p=prompts, f=frames, n=planned, d=folder, lg=log: _render_scenes(
                    p, f, n, video_generator, cache, d, lg
                )
            )
            results[key] = clips
            add_metadata(context, key, _clips_metadata(prompts, clips))
            counts[key], generated[key] = _clip_verdicts(clips, planned)
        # The IO manager moves the scene mp4s out of the scratch folder while handling this.
        yield Output(results)
    yield check_result("frame_counts_as_planned", counts)
    yield check_result("generated_footage", generated, AssetCheckSeverity.WARN)


def _render_scenes(
    prompts: OptimizedPrompts,
    keyframes: list[Keyframe],
    planned: list[int],
    video_generator: VideoGenerator,
    cache: SceneCache | None,
    scratch,
    log,
) -> list[SceneClip]:
    plan = prompts.video
    by_scene = {k.scene_number: k for k in keyframes}
    revision = weights_revision(plan.weights_path) if cache is not None else ""
    clips: list[SceneClip] = []
    for scene, count in zip(prompts.scenes, planned, strict=True):
        image = by_scene[scene.scene_number].image if scene.scene_number in by_scene else None
        if plan.continuity and clips:
            # Continuity: the next scene starts from where the last one ended.
            image = Image.fromarray(clips[-1].frames[-1])
        where = f"scene {scene.scene_number}/{len(planned)}"
        key = None
        if cache is not None:
            key = scene_key(
                plan.model_dump(mode="json"),
                scene.model_dump(mode="json"),
                count,
                image,
                revision,
                video_generator.output_settings(),
            )
            cached = cache.get(key)
            if cached is not None:
                log(f"{where}: reused from the scene cache ({key[:16]})")
                clips.append(cached)
                continue
        log(
            f"{where}: {count} frames with {plan.model} ({plan.backend}), "
            f"camera {scene.camera.name}"
        )
        clip = video_generator.render(plan, scene, image, count, log=log)
        if plan.continuity and clips:
            clip.info["conditioned_on"] = f"last frame of scene {clips[-1].scene_number}"
        clip.mp4_path = scratch / f"scene_{scene.scene_number:03d}.mp4"
        encode_h264(clip.frames, clip.mp4_path, clip.fps, preset=SCENE_PREVIEW_PRESET)
        if cache is not None:
            clip = cache.put(key, clip)  # kept at once: a crash in the next scene keeps it
        clips.append(clip)
    return clips


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


@asset(
    partitions_def=prompts_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=GROUP,
    kinds={"python", "mp4"},
    io_manager_key="video_io_manager",
    check_specs=[
        AssetCheckSpec(
            "plays_in_browser",
            asset="final_video",
            description="Decodes; H.264, yuv420p, moov before mdat (+faststart).",
        ),
        AssetCheckSpec(
            "duration_as_planned",
            asset="final_video",
            description="Lasts the storyboard's duration within one frame.",
        ),
    ],
)
def final_video(context: AssetExecutionContext, script, scene_clips):
    """The stitched H.264 mp4 (yuv420p, +faststart: it plays in a browser), with a poster."""
    results, plays, duration = {}, {}, {}
    with scratch_dir(f"final_video-{context.run.run_id[:8]}") as scratch:
        for key, log, (board, clips) in each_partition(context, script, scene_clips):
            video, facts, metadata = _stitch(
                board, clips, scratch / f"p{len(results):04d}.mp4", log
            )
            results[key] = video
            add_metadata(context, key, metadata)
            plays[key] = Verdict(
                passed=facts.codec == "h264" and facts.pix_fmt == "yuv420p" and facts.faststart,
                metadata={
                    "codec": facts.codec,
                    "pix_fmt": facts.pix_fmt,
                    "faststart": facts.faststart,
                },
            )
            one_frame = 1.0 / video.fps
            gap = abs(facts.duration_s - board.target_duration_s)
            duration[key] = Verdict(
                passed=gap <= one_frame + 1e-9,
                metadata={
                    "duration_s": round(facts.duration_s, 4),
                    "planned_s": board.target_duration_s,
                    "tolerance_s": round(one_frame, 4),
                },
            )
        yield Output(results)
    yield check_result("plays_in_browser", plays)
    yield check_result("duration_as_planned", duration)


def _stitch(script: Storyboard, scene_clips: list[SceneClip], tmp_path, log):
    fps = scene_clips[0].fps
    if any(c.fps != fps for c in scene_clips):
        raise MediaError("scene clips have different frame rates; this version cannot mix them")
    log(f"encoding {sum(len(c.frames) for c in scene_clips)} frames at {fps:g} fps")
    count = encode_h264((f for c in scene_clips for f in c.frames), tmp_path, fps)
    facts = probe_video(tmp_path)
    middle = scene_clips[0].frames[len(scene_clips[0].frames) // 2]
    backends = ", ".join(sorted({c.info.get("backend", "?") for c in scene_clips}))
    video = FinalVideo(
        path=tmp_path,
        duration_s=facts.duration_s,
        frame_count=count,
        fps=fps,
        width=facts.width,
        height=facts.height,
        info={"backend": backends, "title": script.title},
    )
    metadata = {
        "duration_s": round(facts.duration_s, 3),
        "planned_duration_s": script.target_duration_s,
        "frames": count,
        "fps": fps,
        "size": f"{facts.width}x{facts.height}",
        "backend": backends,
        "title": script.title,
        "poster": MetadataValue.md(markdown_image(Image.fromarray(np.asarray(middle)), "poster")),
    }
    return video, facts, metadata
