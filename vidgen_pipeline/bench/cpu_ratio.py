"""The CPU section's part (d): does the CPU side keep up with a fast model?

An animatic (no model: pan and zoom over storyboard cards) is generated through the real
assets in a temporary VIDGEN_HOME and a real Dagster instance, as part (a) runs; the
``scene_clips`` and ``final_video`` steps are timed from the run's event log (step start to
step success). In the same process, one ``encode_h264`` of the same frames (the finished
video's, decoded into memory first), with the final encode's CRF and preset, is timed right
after each run, so that both see the same load on a shared machine. The ratio
(``scene_clips`` + ``final_video``) / that encode says how much the pipeline's own frame work
(rendering the animatic, finishing, storing, checking, previews, the final encode) costs
beyond the one encode a video must have; of ``repeats`` such pairs the best is reported,
with every pair's figures.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

from vidgen_pipeline.bench.common import QUIET_CONSOLE, fmt, markdown_table, temporary_home

RATIO_PROMPT = "A lighthouse stands on a cliff. Waves roll in at dusk. The camera pans left."
OUTPUT_FPS = 24.0
STEPS = ("scene_clips", "final_video")


def finishing_ratio(
    duration_s: float = 8.0, width: int = 1024, height: int = 576, repeats: int = 2
) -> dict[str, Any]:
    """``(scene_clips + final_video) / encode``, the best of ``repeats`` of each, and the
    figures it comes from (per-step seconds of every run, frames, the encode's settings)."""
    from dagster import DagsterInstance

    from vidgen_pipeline.core.media import DEFAULT_CRF, DEFAULT_PRESET
    from vidgen_pipeline.definitions import defs

    runs = []
    with temporary_home("vidgen-bench-ratio-"), DagsterInstance.get() as instance:
        job = defs.resolve_job_def("generate_video")
        for index in range(max(1, repeats)):
            run = _timed_run(job, instance, index, duration_s, width, height)
            video = run.pop("video")
            runs.append(run)
            if not run["success"] or video is None:
                return {"status": "failed: a run of the animatic failed", "runs": runs}
            run["encode_s"] = round(_encode_seconds(video), 3)
            run["ratio"] = round(run["steps_s"] / run["encode_s"], 2)
    best = min(runs, key=lambda run: run["ratio"])
    return {
        "status": "ok",
        "duration_s": duration_s,
        "width": width,
        "height": height,
        "frames": best["frames"],
        "crf": DEFAULT_CRF,
        "preset": DEFAULT_PRESET,
        "runs": runs,
        "steps_s": best["steps_s"],
        "encode_s": best["encode_s"],
        "ratio": best["ratio"],
    }


def _timed_run(job, instance, index: int, duration_s: float, width: int, height: int) -> dict:
    """One animatic generation (another partition each time: nothing is reused); the two
    finishing steps' seconds from the event log."""
    from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest
    from vidgen_pipeline.jobs import register_prompt
    from vidgen_pipeline.resources import PromptStoreResource

    settings = GenerationSettings(
        video_model="animatic",
        width=width,
        height=height,
        fps=OUTPUT_FPS,
        duration_s=duration_s,
        seed=11 + index,
    )
    request = PromptRequest(text=f"{RATIO_PROMPT} Take {index + 1}.", settings=settings)
    key, _ = register_prompt(request, PromptStoreResource(), instance)
    result = job.execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False, run_config=QUIET_CONSOLE
    )
    stages = _step_seconds(instance, result.run_id)
    frames, video = 0, None
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == ["final_video"]:
            frames = int(event.materialization.metadata["frames"].value)
            video = Path(event.materialization.metadata["path"].value)
    return {
        "success": bool(result.success),
        "video": video,
        "frames": frames,
        "stages_s": {name: stages.get(name) for name in STEPS},
        "steps_s": round(sum(stages.get(name, math.inf) for name in STEPS), 3),
    }


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    from dagster import DagsterEventType

    starts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS and event.step_key in starts:
            seconds[event.step_key] = round(entry.timestamp - starts[event.step_key], 3)
    return seconds


def _encode_seconds(video: Path) -> float:
    """Seconds of one ``encode_h264``, with the final encode's defaults, of the frames of
    ``video`` (decoded into memory first: only the encode is timed)."""
    import numpy as np

    from vidgen_pipeline.core.media import encode_h264, read_frames

    clip = np.stack([frame.copy() for frame in read_frames(video)])
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        encode_h264(clip, Path(folder) / "one.mp4", OUTPUT_FPS)
        return time.perf_counter() - began


def ratio_markdown(data: dict[str, Any]) -> str:
    """Part (d) of the CPU section's markdown."""
    head = "### (d) The CPU side against one encode"
    if data.get("status") != "ok":
        return f"{head}\n\n{data.get('status')}"
    rows = []
    for number, run in enumerate(data["runs"], 1):
        rows += [[f"run {number}: {name} (s)", run["stages_s"].get(name)] for name in STEPS]
        rows += [
            [f"run {number}: one encode of its frames, right after (s)", run["encode_s"]],
            [f"run {number}: ratio", run["ratio"]],
        ]
    rows += [
        ["**scene_clips + final_video**, best pair (s)", data["steps_s"]],
        [
            f"one `encode_h264` of its frames (best pair), crf {data['crf']} {data['preset']} (s)",
            data["encode_s"],
        ],
        ["**ratio**", data["ratio"]],
    ]
    return "\n\n".join(
        [
            head,
            f"`finishing_ratio({data['duration_s']:g}, {data['width']}, {data['height']}, "
            f"{len(data['runs'])})`: an animatic of {data['frames']} frames at "
            f"{data['width']}x{data['height']}, {fmt(OUTPUT_FPS)} fps, through the real assets "
            "(step times from the event log), each run against one encode of its own frames "
            "timed right after it in the same process; the best pair is in bold.",
            markdown_table(["what", "value"], rows),
        ]
    )
