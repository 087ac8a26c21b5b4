"""The final_video asset: the scene clips stitched, faded and encoded into one H.264 mp4."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from dagster import AssetCheckSpec, AssetExecutionContext, MetadataValue, Output, asset
from PIL import Image

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
from vidgen_pipeline.assets.quality_checks import (
    AUDIO_TRACK_SPEC,
    audio_track_verdict,
    quality_results,
    quality_specs,
    quality_verdicts,
)
from vidgen_pipeline.assets.sound_track import sound_track
from vidgen_pipeline.core.audio import MIX_RATE, fit_length, write_wav
from vidgen_pipeline.core.clips import FinalVideo, SceneClip
from vidgen_pipeline.core.finishing.assembly import iter_assemble
from vidgen_pipeline.core.finishing.plan import FinishingPlan
from vidgen_pipeline.core.finishing.timing import cut_frames, scene_cues, total_frames
from vidgen_pipeline.core.media import VideoFacts, encode_h264, probe_video, write_webvtt
from vidgen_pipeline.core.previews import (
    PreviewKeeper,
    animated_preview,
    contact_sheet,
    markdown_image,
    poster_markdown,
)
from vidgen_pipeline.core.prompts import OptimizedPrompts
from vidgen_pipeline.core.quality import CHECK_WIDTH, Assessor, QualityReport
from vidgen_pipeline.core.sound import mux_track
from vidgen_pipeline.core.storage import scratch_dir
from vidgen_pipeline.core.storyboard import Storyboard
from vidgen_pipeline.core.subtitles import burned, narration_cues
from vidgen_pipeline.partitions import prompts_partitions
from vidgen_pipeline.resources.narrator import Narrator


@asset(
    partitions_def=prompts_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=MEDIA_GROUP,
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
        AUDIO_TRACK_SPEC,
        *quality_specs("final_video"),
    ],
)
def final_video(
    context: AssetExecutionContext, script, optimized_prompts, scene_clips, narrator: Narrator
):
    """The finished H.264 mp4 (yuv420p, +faststart: it plays in a browser): clips brought to
    the output rate by optical-flow interpolation (never across a cut), cut or crossfaded,
    faded, encoded at the set CRF or bitrate, with a WebVTT sidecar of the scenes (of the
    narration, when spoken) and a poster, an animated preview and a contact sheet in the
    metadata. With narration, music or a model's own sound: one AAC track as long as the
    video, its mix as a WAV beside the mp4, and what it holds under `sound`."""
    results, plays, duration, quality, audio = {}, {}, {}, {}, {}
    with scratch_dir(f"final_video-{context.run.run_id[:8]}") as scratch:
        for key, log, (board, prompts, clips) in each_partition(
            context, script, optimized_prompts, scene_clips
        ):
            folder = scratch / f"p{len(results):04d}"
            folder.mkdir()
            video, facts, report, metadata = user_errors_are_final(
                lambda b=board, p=prompts, c=clips, d=folder, lg=log: finish_video(
                    b, p, c, d, lg, narrator
                )
            )
            results[key] = video
            add_metadata(context, key, metadata)
            plays[key] = _plays_verdict(facts)
            duration[key] = _duration_verdict(board, video, facts)
            audio[key] = audio_track_verdict(
                video.path, facts.duration_s, video.fps, video.audio_path is not None
            )
            quality[key] = quality_verdicts({"video": report})
        yield Output(results)
    yield check_result("plays_in_browser", plays)
    yield check_result("duration_as_planned", duration)
    yield check_result("one_audio_track", audio)
    yield from quality_results(quality)


def finish_video(
    script: Storyboard,
    prompts: OptimizedPrompts,
    clips: list[SceneClip],
    folder: Path,
    log,
    narrator: Narrator | None = None,
) -> tuple[FinalVideo, VideoFacts, QualityReport, dict]:
    """One prompt's final video in ``folder``: the mp4 (and its WebVTT), what the probe
    found in it, the quality report of its decoded frames, and the asset's metadata."""
    durations = [scene.duration_s for scene in script.scenes]
    plan = prompts.finishing_plan()
    narrator = narrator or Narrator()
    fps = plan.output_fps
    log(
        f"finishing {len(clips)} scenes: {plan.clip_fps:g} -> {fps:g} fps "
        f"({plan.interpolation or 'no'} interpolation), {plan.transition}"
        + (f" {plan.transition_s:g} s" if plan.transition != "cut" else "")
        + (f", crf {plan.crf}" if not plan.bitrate else f", {plan.bitrate}")
    )
    # 1. the sound track (narration, model audio, music), and the cues it times
    track, sound = sound_track(script, clips, plan.sound, narrator, folder, log)
    cues = scene_cues(durations, [s.description for s in script.scenes])
    if track is not None and plan.sound.narration:
        cues = narration_cues(track.spoken)
    frames = _assembled(plan, clips, durations)
    if plan.sound.burn_subtitles:
        frames = burned(frames, cues, fps)
    # The previews are drawn on a worker, beside the encode and the decode (PIL releases the
    # GIL), from small copies of the frames on their way to the encoder.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="previews") as worker:
        # 2. assemble and encode in one pass, keeping small frames for the previews
        path = folder / ("picture.mp4" if track is not None else "final.mp4")
        preview = PreviewKeeper(frames, keep_every=max(1, round(fps / 8)), worker=worker)
        count = encode_h264(
            preview, path, fps, crf=plan.crf, preset=plan.preset, bitrate=plan.bitrate
        )
        previews = worker.submit(_previews, clips, preview)
        # 3. the track, as long as the picture: a WAV beside the mp4, AAC inside it
        audio = None
        if track is not None:
            samples = fit_length(track.samples, round(count / fps * MIX_RATE))
            audio = write_wav(folder / "final.wav", samples)
            path = mux_track(path, audio, folder / "final.mp4")
        # 4. decode the file once: what it is, and how its frames look (at the checks' width)
        assessor = Assessor(fps)
        facts = probe_video(path, on_frame=assessor.add, sample_width=CHECK_WIDTH)
        report = assessor.report(cuts=cut_frames(durations, fps))
    # 5. the subtitles sidecar
    subtitles = None
    if plan.subtitles and cues:
        subtitles = folder / "final.vtt"
        write_webvtt(subtitles, cues)
    backends = ", ".join(sorted({c.info.get("backend", "?") for c in clips}))
    video = FinalVideo(
        path=path,
        duration_s=facts.duration_s,
        frame_count=count,
        fps=fps,
        width=facts.width,
        height=facts.height,
        info={"backend": backends, "title": script.title, "sound": sound},
        subtitles_path=subtitles,
        audio_path=audio,
    )
    metadata = _video_metadata(script, plan, video, facts, report)
    quality = metadata.pop("quality")  # last, as it always was
    metadata = {**metadata, **previews.result(), "quality": quality}
    return (
        video,
        facts,
        report,
        {**metadata, "sound": MetadataValue.json(sound or {"track": "none"})},
    )


def _assembled(plan: FinishingPlan, clips: list[SceneClip], durations: list[float]):
    return iter_assemble(
        [clip.frames for clip in clips],
        plan.output_fps,
        durations,
        transition=plan.transition,
        transition_s=plan.transition_s,
        fade_in_s=plan.fade_in_s,
        fade_out_s=plan.fade_out_s,
        scene_fps=[clip.fps for clip in clips],
        interpolation=plan.interpolation,
    )


def _previews(clips: list[SceneClip], preview: PreviewKeeper) -> dict:
    """The poster, the animated preview and the contact sheet of the scenes' middles."""
    middles = [Image.fromarray(c.frames[len(c.frames) // 2]) for c in clips]
    return {
        "poster": MetadataValue.md(poster_markdown(preview.middle())),
        "preview": MetadataValue.md(animated_preview(np.stack(preview.kept), 8.0)),
        "scenes": MetadataValue.md(markdown_image(contact_sheet(middles), "scenes", max_width=480)),
    }


def _video_metadata(
    script: Storyboard,
    plan: FinishingPlan,
    video: FinalVideo,
    facts: VideoFacts,
    report: QualityReport,
) -> dict:
    return {
        "duration_s": round(facts.duration_s, 3),
        "planned_duration_s": script.target_duration_s,
        "frames": video.frame_count,
        "fps": video.fps,
        "clip_fps": plan.clip_fps,
        "interpolation": plan.interpolation or "none",
        "transition": plan.transition,
        "transition_s": plan.transition_s,
        "rate_control": plan.bitrate or f"crf {plan.crf}",
        "size": f"{facts.width}x{facts.height}",
        "backend": video.info["backend"],
        "title": script.title,
        "quality": MetadataValue.json(report.as_metadata()),
    }


def _plays_verdict(facts: VideoFacts) -> Verdict:
    return Verdict(
        passed=facts.codec == "h264" and facts.pix_fmt == "yuv420p" and facts.faststart,
        metadata={"codec": facts.codec, "pix_fmt": facts.pix_fmt, "faststart": facts.faststart},
    )


def _duration_verdict(board: Storyboard, video: FinalVideo, facts: VideoFacts) -> Verdict:
    planned = total_frames([s.duration_s for s in board.scenes], video.fps)
    return Verdict(
        passed=facts.frame_count == planned,
        metadata={
            "frames": facts.frame_count,
            "planned_frames": planned,
            "duration_s": round(facts.duration_s, 4),
            "planned_s": board.target_duration_s,
        },
    )
