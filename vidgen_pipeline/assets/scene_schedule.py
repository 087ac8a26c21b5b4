"""Rendering a prompt's scenes: scene N is finished on a worker thread while N+1 renders.

Finishing a scene (to the output rate, its lossless mp4, the scene cache) is OpenCV and
ffmpeg work that releases the GIL, so on a GPU the wall time per scene approaches the
model's time. Each frame is encoded once here, losslessly (``core.frame_store``): that file is
the scene's own video and its frames' store in the cache and in storage alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from vidgen_pipeline.core.clip_audio import describe, fit_to_frames
from vidgen_pipeline.core.clips import Keyframe, SceneClip
from vidgen_pipeline.core.finishing.plan import FinishingPlan
from vidgen_pipeline.core.finishing.timing import resample, to_rate
from vidgen_pipeline.core.frame_store import write_lossless
from vidgen_pipeline.core.prompts import OptimizedPrompts
from vidgen_pipeline.core.scene_cache import SceneCache, scene_key, weights_revision
from vidgen_pipeline.resources import VideoGenerator


def render_scenes(
    prompts: OptimizedPrompts,
    keyframes: list[Keyframe],
    video_generator: VideoGenerator,
    cache: SceneCache | None,
    scratch: Path,
    log: Callable[[str], None],
) -> list[SceneClip]:
    """Render every scene and finish it (to the output rate, its lossless mp4, the scene
    cache).

    Finishing runs on a worker thread while the next scene renders. With ``continuity``
    the next scene starts from this one's last finished frame, so it waits for that scene's
    finishing first. A scene found in ``cache`` is neither rendered nor finished again.
    """
    plan = prompts.video
    finishing = prompts.finishing_plan()
    durations = [scene.duration_s for scene in prompts.scenes]
    native_counts, final_counts = (
        finishing.clip_frames(durations),
        finishing.output_frames(durations),
    )
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
            clip = video_generator.render(
                plan, scene, image, count, log=log, continuing=previous is not None
            )
            if previous is not None:
                clip.info["conditioned_on"] = f"last frame of scene {previous.scene_number}"
            futures.append(
                worker.submit(finish_scene, clip, finishing, final, cache, key, scratch, log)
            )
        return [future.result() for future in futures]


def _done(clip: SceneClip) -> Future:
    future: Future = Future()
    future.set_result(clip)
    return future


def finish_scene(
    clip: SceneClip,
    finishing: FinishingPlan,
    count: int,
    cache: SceneCache | None,
    key: str | None,
    scratch: Path,
    log: Callable[[str], None],
) -> SceneClip:
    """One rendered clip at the output rate (flow-interpolated: never across a cut, as each
    scene is converted alone), stored in its lossless mp4 (the scene's video and its frames'
    store), and kept in the scene cache at once (a crash in a later scene keeps it)."""
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
    if clip.audio is not None:  # the model's sound, as long as the finished frames
        finished.audio = fit_to_frames(clip.audio, count, finishing.output_fps, clip.audio_rate)
        finished.audio_rate = clip.audio_rate
        finished.info["audio"] = describe(finished.audio, clip.audio_rate)
    finished.mp4_path = scratch / f"scene_{clip.scene_number:03d}.mp4"
    write_lossless(frames, finished.mp4_path, finished.fps)
    finished.mp4_lossless = True
    finished.info["finishing_seconds"] = round(time.perf_counter() - started, 3)
    if cache is not None:
        finished = cache.put(key, finished)
    log(
        f"scene {clip.scene_number}: finished {native} -> {len(frames)} frames at "
        f"{finished.fps:g} fps in {finished.info['finishing_seconds']} s"
        + (" (stored in the scene cache)" if cache is not None else "")
    )
    return finished
