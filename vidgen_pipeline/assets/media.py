"""Media assets: keyframes, scene clips and the final stitched video."""

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    asset,
)
from PIL import Image

from vidgen_pipeline.core.clips import FinalVideo, Keyframe, SceneClip
from vidgen_pipeline.core.media import (
    MediaError,
    encode_h264,
    frames_for_span,
    probe_video,
)
from vidgen_pipeline.core.previews import contact_sheet, markdown_image
from vidgen_pipeline.core.prompts import OptimizedPrompts
from vidgen_pipeline.core.storage import scratch_dir
from vidgen_pipeline.core.storyboard import Storyboard
from vidgen_pipeline.partitions import prompts_partitions
from vidgen_pipeline.resources import KeyframeGenerator, VideoGenerator

GROUP = "media"
SCENE_PREVIEW_PRESET = "veryfast"  # per-scene mp4s are for viewing; the final encode is careful


@asset(
    partitions_def=prompts_partitions,
    group_name=GROUP,
    kinds={"python", "png"},
    io_manager_key="frames_io_manager",
    pool="gpu",
)
def keyframes(
    context: AssetExecutionContext,
    script: Storyboard,
    optimized_prompts: OptimizedPrompts,
    keyframe_generator: KeyframeGenerator,
) -> Output[list[Keyframe]]:
    """Per scene, the image an image-to-video model starts from (and the animatic pans over).

    Made by a text-to-image model; without one, labelled storyboard cards that say so. A
    text-to-video model needs none (the asset is then empty).
    """
    plan = optimized_prompts.video
    images = keyframe_generator.make(script, optimized_prompts, log=context.log.info)
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
    return Output(images, metadata=metadata)


def _frame_counts(prompts: OptimizedPrompts, fps: float) -> list[int]:
    counts, start = [], 0.0
    for scene in prompts.scenes:
        counts.append(frames_for_span(start, start + scene.duration_s, fps))
        start += scene.duration_s
    return counts


@asset(
    partitions_def=prompts_partitions,
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
    optimized_prompts: OptimizedPrompts,
    keyframes: list[Keyframe],
    video_generator: VideoGenerator,
):
    """Per scene, the video model's frames (stored lossless) and the scene's own mp4."""
    plan = optimized_prompts.video
    by_scene = {k.scene_number: k for k in keyframes}
    planned = _frame_counts(optimized_prompts, plan.fps)
    clips: list[SceneClip] = []
    with scratch_dir(f"scene_clips-{context.run.run_id[:8]}") as scratch:
        for scene, count in zip(optimized_prompts.scenes, planned, strict=True):
            context.log.info(
                f"scene {scene.scene_number}/{len(planned)}: {count} frames with {plan.model} "
                f"({plan.backend}), camera {scene.camera.name}"
            )
            image = by_scene[scene.scene_number].image if scene.scene_number in by_scene else None
            if plan.continuity and clips:
                # Continuity: the next scene starts from where the last one ended.
                image = Image.fromarray(clips[-1].frames[-1])
            clip = video_generator.render(plan, scene, image, count, log=context.log.info)
            if plan.continuity and len(clips):
                clip.info["conditioned_on"] = f"last frame of scene {clips[-1].scene_number}"
            clip.mp4_path = scratch / f"scene_{scene.scene_number:03d}.mp4"
            encode_h264(clip.frames, clip.mp4_path, clip.fps, preset=SCENE_PREVIEW_PRESET)
            clips.append(clip)
        backends = sorted({c.info["backend"] for c in clips})
        # The IO manager moves the scene mp4s out of the scratch folder while handling this.
        yield Output(
            clips,
            metadata={
                "backend": ", ".join(backends),
                "video_model": plan.model,
                "video_model_reason": plan.reason,
                "pipeline": plan.pipeline,
                "frames": sum(len(c.frames) for c in clips),
                "fps": plan.fps,
                "scenes": MetadataValue.json(
                    [{"scene": c.scene_number, "frames": len(c.frames), **c.info} for c in clips]
                ),
            },
        )
    actual = [len(c.frames) for c in clips]
    yield AssetCheckResult(
        check_name="frame_counts_as_planned",
        passed=actual == planned and all(n >= 1 for n in actual),
        metadata={"planned": MetadataValue.json(planned), "actual": MetadataValue.json(actual)},
    )
    not_generated = [c.scene_number for c in clips if not c.info.get("generated")]
    yield AssetCheckResult(
        check_name="generated_footage",
        passed=not not_generated,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"scenes {not_generated} are {', '.join(backends)} clips, not generated footage"
            if not_generated
            else "every scene was made by a video model"
        ),
        metadata={
            "backend": ", ".join(backends),
            "not_generated_scenes": MetadataValue.json(not_generated),
        },
    )


@asset(
    partitions_def=prompts_partitions,
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
def final_video(
    context: AssetExecutionContext,
    script: Storyboard,
    scene_clips: list[SceneClip],
):
    """The stitched H.264 mp4 (yuv420p, +faststart: it plays in a browser), with a poster."""
    fps = scene_clips[0].fps
    if any(c.fps != fps for c in scene_clips):
        raise MediaError("scene clips have different frame rates; this version cannot mix them")
    with scratch_dir(f"final_video-{context.run.run_id[:8]}") as scratch:
        tmp_path = scratch / "final.mp4"
        context.log.info(
            f"encoding {sum(len(c.frames) for c in scene_clips)} frames at {fps:g} fps"
        )
        count = encode_h264((f for c in scene_clips for f in c.frames), tmp_path, fps)
        facts = probe_video(tmp_path)
        middle = scene_clips[0].frames[len(scene_clips[0].frames) // 2]
        backends = sorted({c.info.get("backend", "?") for c in scene_clips})
        video = FinalVideo(
            path=tmp_path,
            duration_s=facts.duration_s,
            frame_count=count,
            fps=fps,
            width=facts.width,
            height=facts.height,
            info={"backend": ", ".join(backends), "title": script.title},
        )
        yield Output(
            video,
            metadata={
                "duration_s": round(facts.duration_s, 3),
                "planned_duration_s": script.target_duration_s,
                "frames": count,
                "fps": fps,
                "size": f"{facts.width}x{facts.height}",
                "backend": ", ".join(backends),
                "title": script.title,
                "poster": MetadataValue.md(
                    markdown_image(Image.fromarray(np.asarray(middle)), "poster")
                ),
            },
        )
    yield AssetCheckResult(
        check_name="plays_in_browser",
        passed=facts.codec == "h264" and facts.pix_fmt == "yuv420p" and facts.faststart,
        metadata={"codec": facts.codec, "pix_fmt": facts.pix_fmt, "faststart": facts.faststart},
    )
    one_frame = 1.0 / fps
    gap = abs(facts.duration_s - script.target_duration_s)
    yield AssetCheckResult(
        check_name="duration_as_planned",
        passed=gap <= one_frame + 1e-9,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "duration_s": round(facts.duration_s, 4),
            "planned_s": script.target_duration_s,
            "tolerance_s": round(one_frame, 4),
        },
    )
