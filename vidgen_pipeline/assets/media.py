"""Media assets: keyframes, scene clips and the final stitched video."""

import time
from concurrent.futures import Future, ThreadPoolExecutor

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
from vidgen_pipeline.core.finishing.assembly import iter_assemble
from vidgen_pipeline.core.finishing.plan import FinishingPlan, plan_finishing
from vidgen_pipeline.core.finishing.timing import (
    cut_frames,
    frames_needed,
    resample,
    scene_cues,
    to_rate,
    total_frames,
)
from vidgen_pipeline.core.media import (
    encode_h264,
    probe_video,
    write_webvtt,
)
from vidgen_pipeline.core.previews import (
    animated_preview,
    contact_sheet,
    markdown_image,
    poster_markdown,
)
from vidgen_pipeline.core.prompts import OptimizedPrompts
from vidgen_pipeline.core.quality import Assessor, QualityReport, assess
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


def _finishing(prompts: OptimizedPrompts) -> FinishingPlan:
    """The prompt's finishing plan (documents stored before plans existed: no conversion)."""
    if prompts.finishing is not None:
        return prompts.finishing
    durations = [scene.duration_s for scene in prompts.scenes]
    return plan_finishing(durations, prompts.video.fps, generated=False)


def _frame_counts(prompts: OptimizedPrompts) -> tuple[list[int], list[int]]:
    """Per scene: the frames to render at the clip rate, and the frames of the finished
    clip at the output rate (each its storyboard span plus any crossfade handles)."""
    plan = _finishing(prompts)
    durations = [scene.duration_s for scene in prompts.scenes]
    output = frames_needed(durations, plan.output_fps, plan.transition, plan.transition_s)
    return plan.clip_frames(durations), output


QUALITY_CHECKS = [
    ("not_blank", "Fails when frames are black or flat (mean luma, luma spread per frame)."),
    ("not_frozen", "Warns when the picture does not move (frame differences per second)."),
    ("no_flicker", "Warns when brightness jumps from frame to frame (temporal flicker score)."),
]


def _quality_specs(asset: str) -> list[AssetCheckSpec]:
    return [AssetCheckSpec(name, asset=asset, description=text) for name, text in QUALITY_CHECKS]


# check name -> (the report's verdict, the word its problem lines start with, figures)
_QUALITY_FIGURES = {
    "not_blank": (
        "is_blank",
        "blank",
        ("mean_luma", "luma_std", "min_frame_luma_std", "blank_share"),
    ),
    "not_frozen": (
        "is_frozen",
        "frozen",
        ("mean_abs_frame_diff", "still_share", "near_identical_share"),
    ),
    "no_flicker": ("flickers", "flickers", ("flicker_score",)),
}


def _quality_verdicts(reports: dict[str, QualityReport]) -> dict[str, Verdict]:
    """The three quality verdicts of one partition, from one report per clip (or video),
    each with every clip's figures."""
    verdicts = {}
    for check, (flag, word, keys) in _QUALITY_FIGURES.items():
        problems = [
            f"{name}: {line}"
            for name, report in reports.items()
            if getattr(report, flag)
            for line in report.problems()
            if line.startswith(word)
        ]
        verdicts[check] = Verdict(
            passed=not problems,
            description="; ".join(problems) or None,
            metadata={
                name: MetadataValue.json({k: report.as_metadata()[k] for k in keys})
                for name, report in reports.items()
            },
        )
    return verdicts


def _yield_quality(verdicts: dict[str, dict[str, Verdict]]):
    for name, _ in QUALITY_CHECKS:
        severity = AssetCheckSeverity.ERROR if name == "not_blank" else AssetCheckSeverity.WARN
        yield check_result(name, {key: v[name] for key, v in verdicts.items()}, severity)


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
        *_quality_specs("scene_clips"),
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
            _, planned = _frame_counts(prompts)
            clips = user_errors_are_final(
                lambda p=prompts, f=frames, d=folder, lg=log: _render_scenes(
                    p, f, video_generator, cache, d, lg
                )
            )
            results[key] = clips
            add_metadata(context, key, _clips_metadata(prompts, clips))
            counts[key], generated[key] = _clip_verdicts(clips, planned)
            quality[key] = _quality_verdicts(
                {f"scene {c.scene_number}": assess(c.frames, c.fps) for c in clips}
            )
        # The IO manager moves the scene mp4s out of the scratch folder while handling this.
        yield Output(results)
    yield check_result("frame_counts_as_planned", counts)
    yield check_result("generated_footage", generated, AssetCheckSeverity.WARN)
    yield from _yield_quality(quality)


def _render_scenes(
    prompts: OptimizedPrompts,
    keyframes: list[Keyframe],
    video_generator: VideoGenerator,
    cache: SceneCache | None,
    scratch,
    log,
) -> list[SceneClip]:
    """Render every scene and finish it (to the output rate, its mp4, the scene cache).

    Finishing runs on a worker thread while the next scene renders (OpenCV and ffmpeg
    release the GIL), so on a GPU the wall time per scene approaches the model's time.
    With ``continuity`` the next scene starts from this one's last finished frame, so it
    waits for that scene's finishing first.
    """
    plan = prompts.video
    finishing = _finishing(prompts)
    native_counts, final_counts = _frame_counts(prompts)
    by_scene = {k.scene_number: k for k in keyframes}
    revision = weights_revision(plan.weights_path) if cache is not None else ""
    futures: list[Future] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="finish-scene") as worker:
        for scene, count, final in zip(prompts.scenes, native_counts, final_counts, strict=True):
            image = by_scene[scene.scene_number].image if scene.scene_number in by_scene else None
            previous = futures[-1].result() if plan.continuity and futures else None
            if previous is not None:
                # Continuity: the next scene starts from where the last one ended.
                image = Image.fromarray(previous.frames[-1])
            where = f"scene {scene.scene_number}/{len(native_counts)}"
            key = None
            if cache is not None:
                key = scene_key(
                    plan.model_dump(mode="json"),
                    scene.model_dump(mode="json"),
                    count,
                    image,
                    revision,
                    {
                        **video_generator.output_settings(),
                        "output_fps": finishing.output_fps,
                        "interpolation": finishing.interpolation,
                        "finished_frames": final,
                    },
                )
                cached = cache.get(key)
                if cached is not None:
                    log(f"{where}: reused from the scene cache ({key[:16]})")
                    futures.append(_done(cached))
                    continue
            log(
                f"{where}: {count} frames with {plan.model} ({plan.backend}), "
                f"camera {scene.camera.name}"
            )
            clip = video_generator.render(plan, scene, image, count, log=log)
            if previous is not None:
                clip.info["conditioned_on"] = f"last frame of scene {previous.scene_number}"
            futures.append(
                worker.submit(_finish_scene, clip, finishing, final, cache, key, scratch, log)
            )
        return [future.result() for future in futures]


def _done(clip: SceneClip) -> Future:
    future: Future = Future()
    future.set_result(clip)
    return future


def _finish_scene(
    clip: SceneClip,
    finishing: FinishingPlan,
    count: int,
    cache: SceneCache | None,
    key: str | None,
    scratch,
    log,
) -> SceneClip:
    """One rendered clip at the output rate (flow-interpolated: never across a cut, as each
    scene is converted alone), encoded to its mp4, and stored in the scene cache at once (a
    crash in a later scene keeps it)."""
    started = time.perf_counter()
    native = len(clip.frames)
    if clip.fps != finishing.output_fps:
        frames = to_rate(
            clip.frames, clip.fps, finishing.output_fps, finishing.interpolation, count=count
        )
    else:
        frames = resample(clip.frames, count) if native != count else clip.frames
    info = {
        **clip.info,
        "native_fps": clip.fps,
        "native_frames": native,
        "interpolation": finishing.interpolation if clip.fps != finishing.output_fps else None,
    }
    finished = SceneClip(clip.scene_number, frames, finishing.output_fps, info)
    finished.mp4_path = scratch / f"scene_{clip.scene_number:03d}.mp4"
    encode_h264(frames, finished.mp4_path, finished.fps, preset=SCENE_PREVIEW_PRESET)
    finished.info["finishing_seconds"] = round(time.perf_counter() - started, 3)
    if cache is not None:
        finished = cache.put(key, finished)
    log(
        f"scene {clip.scene_number}: finished {native} -> {len(frames)} frames at "
        f"{finished.fps:g} fps in {finished.info['finishing_seconds']} s"
        + (" (stored in the scene cache)" if cache is not None else "")
    )
    return finished


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
            description="Has exactly the storyboard's frame count at the output rate.",
        ),
        *_quality_specs("final_video"),
    ],
)
def final_video(context: AssetExecutionContext, script, optimized_prompts, scene_clips):
    """The finished H.264 mp4 (yuv420p, +faststart: it plays in a browser): clips brought to
    the output rate by optical-flow interpolation (never across a cut), cut or crossfaded,
    faded, encoded at the set CRF or bitrate, with a WebVTT sidecar of the scenes and a
    poster, an animated preview and a contact sheet in the metadata."""
    results, plays, duration, quality = {}, {}, {}, {}
    with scratch_dir(f"final_video-{context.run.run_id[:8]}") as scratch:
        for key, log, (board, prompts, clips) in each_partition(
            context, script, optimized_prompts, scene_clips
        ):
            folder = scratch / f"p{len(results):04d}"
            folder.mkdir()
            finished = user_errors_are_final(
                lambda b=board, p=prompts, c=clips, d=folder, lg=log: _finish(b, p, c, d, lg)
            )
            video, facts, report, metadata = finished
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
            planned = total_frames([s.duration_s for s in board.scenes], video.fps)
            duration[key] = Verdict(
                passed=facts.frame_count == planned,
                metadata={
                    "frames": facts.frame_count,
                    "planned_frames": planned,
                    "duration_s": round(facts.duration_s, 4),
                    "planned_s": board.target_duration_s,
                },
            )
            quality[key] = _quality_verdicts({"video": report})
        yield Output(results)
    yield check_result("plays_in_browser", plays)
    yield check_result("duration_as_planned", duration)
    yield from _yield_quality(quality)


def _finish(script: Storyboard, prompts: OptimizedPrompts, clips: list[SceneClip], folder, log):
    durations = [scene.duration_s for scene in script.scenes]
    plan = _finishing(prompts)
    fps = plan.output_fps
    log(
        f"finishing {len(clips)} scenes: {plan.clip_fps:g} -> {fps:g} fps "
        f"({plan.interpolation or 'no'} interpolation), {plan.transition}"
        + (f" {plan.transition_s:g} s" if plan.transition != "cut" else "")
        + (f", crf {plan.crf}" if not plan.bitrate else f", {plan.bitrate}")
    )
    frames = iter_assemble(
        [clip.frames for clip in clips],
        fps,
        durations,
        transition=plan.transition,
        transition_s=plan.transition_s,
        fade_in_s=plan.fade_in_s,
        fade_out_s=plan.fade_out_s,
        scene_fps=[clip.fps for clip in clips],
        interpolation=plan.interpolation,
    )
    path = folder / "final.mp4"
    preview = _Keep(frames, keep_every=max(1, round(fps / 8)))
    count = encode_h264(preview, path, fps, crf=plan.crf, preset=plan.preset, bitrate=plan.bitrate)
    assessor = Assessor(fps)  # measures the file's frames as the probe decodes them
    facts = probe_video(path, on_frame=assessor.add)
    report = assessor.report(cuts=cut_frames(durations, fps))
    subtitles = None
    if plan.subtitles:
        subtitles = folder / "final.vtt"
        write_webvtt(subtitles, scene_cues(durations, [s.description for s in script.scenes]))
    backends = ", ".join(sorted({c.info.get("backend", "?") for c in clips}))
    video = FinalVideo(
        path=path,
        duration_s=facts.duration_s,
        frame_count=count,
        fps=fps,
        width=facts.width,
        height=facts.height,
        info={"backend": backends, "title": script.title},
        subtitles_path=subtitles,
    )
    middles = [Image.fromarray(c.frames[len(c.frames) // 2]) for c in clips]
    metadata = {
        "duration_s": round(facts.duration_s, 3),
        "planned_duration_s": script.target_duration_s,
        "frames": count,
        "fps": fps,
        "clip_fps": plan.clip_fps,
        "interpolation": plan.interpolation or "none",
        "transition": plan.transition,
        "transition_s": plan.transition_s,
        "rate_control": plan.bitrate or f"crf {plan.crf}",
        "size": f"{facts.width}x{facts.height}",
        "backend": backends,
        "title": script.title,
        "poster": MetadataValue.md(poster_markdown(preview.middle())),
        "preview": MetadataValue.md(animated_preview(np.stack(preview.kept), 8.0)),
        "scenes": MetadataValue.md(markdown_image(contact_sheet(middles), "scenes", max_width=480)),
        "quality": MetadataValue.json(report.as_metadata()),
    }
    return video, facts, report, metadata


class _Keep:
    """Passes frames through to the encoder and keeps every n-th (small) for the previews."""

    def __init__(self, frames, keep_every: int):
        self.frames, self.every, self.kept = frames, keep_every, []

    def __iter__(self):
        for index, frame in enumerate(self.frames):
            if index % self.every == 0:
                self.kept.append(np.asarray(Image.fromarray(frame).resize(_preview_size(frame))))
            yield frame

    def middle(self) -> np.ndarray:
        return self.kept[len(self.kept) // 2]


def _preview_size(frame: np.ndarray) -> tuple[int, int]:
    height, width = frame.shape[:2]
    scale = min(1.0, 320 / width)
    return max(2, round(width * scale)), max(2, round(height * scale))
