"""The CPU section: what the pipeline costs around its models, on any machine.

(a) Per-stage seconds of the ``generate_video`` job with tiny random-weight SVD and SD models
    (the test fixtures), run in-process in a temporary VIDGEN_HOME; stage times come from the
    run's event log. Orchestration overhead = run wall time - time inside model calls (the
    scenes' ``seconds`` in ``scene_clips`` metadata + the keyframes' ``seconds``).
(b) Encode and interpolation frames per second at 1024x576 (``bench.finishing``), where
    OpenCV and ffmpeg are installed.
(c) Partition registration rate: ``register_prompt`` for 200 synthetic prompts into a fresh
    Dagster instance (SQLite, as ``dagster dev`` here uses).
(d) The CPU side against one encode (``bench.cpu_ratio``): ``scene_clips`` + ``final_video``
    of an 8-second 1024x576 animatic over one ``encode_h264`` of as many frames.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

from vidgen_pipeline.bench.common import (
    QUIET_CONSOLE,
    TINY_RUN,
    BenchContext,
    SectionResult,
    fmt,
    guard,
    markdown_table,
    temporary_home,
)
from vidgen_pipeline.bench.cpu_ratio import finishing_ratio, ratio_markdown
from vidgen_pipeline.bench.finishing import finishing_markdown, finishing_rates

PIPELINE_PROMPT = "A red kite over green hills. The kite dives toward the camera."
STAGES = ("prompt", "script", "optimized_prompts", "keyframes", "scene_clips", "final_video")
LOADED = re.compile(r"loaded \w+ from .* in ([0-9.]+) s")


def cpu_section(ctx: BenchContext) -> SectionResult:
    data: dict[str, Any] = {}
    parts: list[str] = []

    ctx.log("cpu: (a) pipeline stages with tiny models")
    data["pipeline"] = guard(lambda: pipeline_overhead(ctx.option("pipeline_runs", 2), ctx.log))
    parts.append(_pipeline_markdown(data["pipeline"]))
    ctx.checkpoint(_result(data, parts, complete=False))

    ctx.log("cpu: (b) encode and interpolation at 1024x576")
    data["finishing"] = guard(lambda: finishing_rates(ctx.option("finishing_frames", 48)))
    parts.append(finishing_markdown(data["finishing"]))
    ctx.checkpoint(_result(data, parts, complete=False))

    ctx.log("cpu: (c) partition registration")
    data["partitions"] = guard(lambda: partition_rate(ctx.option("prompts", 200)))
    parts.append(_partitions_markdown(data["partitions"]))
    ctx.checkpoint(_result(data, parts, complete=False))

    ctx.log("cpu: (d) the CPU side against one encode")
    data["ratio"] = guard(
        lambda: finishing_ratio(
            ctx.option("ratio_duration_s", 8.0),
            ctx.option("ratio_width", 1024),
            ctx.option("ratio_height", 576),
            ctx.option("ratio_repeats", 2),
        )
    )
    parts.append(ratio_markdown(data["ratio"]))
    return _result(data, parts)


def _result(data: dict, parts: list[str], complete: bool = True) -> SectionResult:
    return SectionResult(
        "cpu",
        "CPU: pipeline overhead, finishing, partitions, the CPU side against one encode",
        data,
        "\n\n".join(parts),
        complete,
    )


# ------------------------------------------------------------------------ (a) the pipeline


def _tiny_fixtures():
    """The tiny model builders the tests use (``vidgen_pipeline.testing``)."""
    from vidgen_pipeline.testing.tiny_unet_models import save_tiny_sd, save_tiny_svd

    return save_tiny_sd, save_tiny_svd


def pipeline_overhead(runs: int = 2, log=print) -> dict[str, Any]:
    try:
        save_tiny_sd, save_tiny_svd = _tiny_fixtures()
    except ImportError as exc:
        return {
            "status": f"not available: the tiny model fixtures do not import ({exc}); "
            "run from the repository root"
        }
    from dagster import DagsterInstance

    from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest
    from vidgen_pipeline.definitions import defs
    from vidgen_pipeline.jobs import register_prompt
    from vidgen_pipeline.resources import PromptStoreResource

    results = []
    with temporary_home("vidgen-bench-pipeline-") as home:
        started = time.perf_counter()
        svd = save_tiny_svd(home.parent / "tiny" / "svd")
        sd = save_tiny_sd(home.parent / "tiny" / "sd")
        build_s = time.perf_counter() - started
        job = defs.resolve_job_def("generate_video")
        with DagsterInstance.get() as instance:
            for index in range(runs):
                # Another text each run: another partition, so nothing is reused.
                text = f"{PIPELINE_PROMPT} Take {index + 1}."
                settings = GenerationSettings(
                    **TINY_RUN,
                    video_model=str(svd),
                    keyframe_model=str(sd),
                    duration_s=3.0,
                    scenes=2,
                    seed=7 + index,
                )
                key, _ = register_prompt(
                    PromptRequest(text=text, settings=settings), PromptStoreResource(), instance
                )
                started = time.perf_counter()
                result = job.execute_in_process(
                    instance=instance,
                    partition_key=key,
                    raise_on_error=False,
                    run_config=QUIET_CONSOLE,  # the event log keeps everything
                )
                wall = time.perf_counter() - started
                run = _run_figures(instance, result, key, home, wall)
                log(
                    f"cpu: run {index + 1}: {run['wall_s']:.2f} s, overhead {run['overhead_s']:.2f} s"
                )
                results.append(run)
    return {
        "status": "ok",
        "setup": "tiny random-weight SVD (video) and SD (keyframes), 2 scenes of 1.5 s at 4 fps, "
        "64x64, 2 steps each; rule-based script; in-process executor",
        "fixtures_build_s": round(build_s, 3),
        "runs": results,
    }


def _run_figures(instance, result, key: str, home: Path, wall: float) -> dict[str, Any]:
    from dagster import DagsterEventType

    starts: dict[str, float] = {}
    stages: dict[str, float] = {}
    run_start = run_end = None
    loads: list[float] = []
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None:
            match = LOADED.search(entry.user_message or "")
            if match:
                loads.append(float(match.group(1)))
            continue
        kind = event.event_type
        if kind == DagsterEventType.RUN_START:
            run_start = entry.timestamp
        elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
            run_end = entry.timestamp
        elif kind == DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            if event.step_key in starts:
                stages[event.step_key] = round(entry.timestamp - starts[event.step_key], 3)
    scenes = _metadata(result, "scene_clips").get("scenes", [])
    scene_s = sum(float(s.get("seconds", 0)) for s in scenes)
    keyframe_s = _keyframe_seconds(home, key)
    model_s = scene_s + keyframe_s
    run_s = run_end - run_start if run_start and run_end else None
    in_steps = sum(stages.values())
    return {
        "success": bool(result.success),
        "wall_s": round(wall, 3),
        "run_s": round(run_s, 3) if run_s is not None else None,
        "stages_s": stages,
        "scene_model_s": round(scene_s, 3),
        "keyframe_model_s": round(keyframe_s, 3),
        "model_calls_s": round(model_s, 3),
        "model_loads_s": round(sum(loads), 3),
        "overhead_s": round(wall - model_s, 3),
        # The overhead, split: inside steps but outside model calls (loading, IO managers,
        # scene encodes, metadata), between steps (Dagster), and around the run.
        "in_steps_outside_models_s": round(in_steps - model_s, 3),
        "between_steps_s": round(run_s - in_steps, 3) if run_s is not None else None,
        "around_run_s": round(wall - run_s, 3) if run_s is not None else None,
        "overhead_share": round((wall - model_s) / wall, 3) if wall else None,
    }


def _metadata(result, asset: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == [asset]:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    return {}


def _keyframe_seconds(home: Path, key: str) -> float:
    """The keyframes' own ``seconds``, from the manifest the frames IO manager wrote."""
    total = 0.0
    for manifest in (home / "storage").glob(f"**/keyframes/{key}/manifest.json"):
        for item in json.loads(manifest.read_text()).get("items", []):
            total += float(item.get("info", {}).get("seconds", 0) or 0)
    if total == 0.0:
        for manifest in (home / "storage").glob("**/keyframes/**/manifest.json"):
            if key in str(manifest):
                for item in json.loads(manifest.read_text()).get("items", []):
                    total += float(item.get("info", {}).get("seconds", 0) or 0)
    return total


def _pipeline_markdown(data: dict[str, Any]) -> str:
    head = "### (a) Pipeline stages and orchestration overhead (tiny models)"
    if data.get("status") != "ok":
        return f"{head}\n\n{data.get('status')}"
    runs = data["runs"]
    header = ["stage", *[f"run {i + 1} (s)" for i in range(len(runs))]]
    rows = [[stage, *[r["stages_s"].get(stage) for r in runs]] for stage in STAGES]
    others = sorted({s for r in runs for s in r["stages_s"]} - set(STAGES))
    rows += [[stage, *[r["stages_s"].get(stage) for r in runs]] for stage in others]
    rows += [
        ["**run wall time** (execute_in_process)", *[r["wall_s"] for r in runs]],
        ["run start -> end in the event log", *[r["run_s"] for r in runs]],
        ["inside model calls: scenes", *[r["scene_model_s"] for r in runs]],
        ["inside model calls: keyframes", *[r["keyframe_model_s"] for r in runs]],
        ["model loading (in the overhead)", *[r["model_loads_s"] for r in runs]],
        ["**overhead** = wall - model calls", *[r["overhead_s"] for r in runs]],
        ["... in steps, outside model calls", *[r["in_steps_outside_models_s"] for r in runs]],
        ["... between steps (Dagster)", *[r["between_steps_s"] for r in runs]],
        ["... around the run (start-up, teardown)", *[r["around_run_s"] for r in runs]],
        ["overhead share of wall time", *[r["overhead_share"] for r in runs]],
        ["run succeeded", *[r["success"] for r in runs]],
    ]
    return "\n\n".join(
        [
            head,
            f"{data['setup']}. Fixtures built in {fmt(data['fixtures_build_s'])} s (not counted). "
            "Run 1 pays first-use costs in this process (imports, Dagster's storage).",
            markdown_table(header, rows),
        ]
    )


# ---------------------------------------------------------------------- (c) partitions


def partition_rate(count: int = 200) -> dict[str, Any]:
    from dagster import DagsterInstance

    from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest
    from vidgen_pipeline.jobs import register_prompt
    from vidgen_pipeline.partitions import PROMPTS
    from vidgen_pipeline.resources import PromptStoreResource

    requests = [
        PromptRequest(
            text=f"Synthetic prompt {i}: a paper boat drifts down stream number {i} at dawn.",
            settings=GenerationSettings(seed=i),
        )
        for i in range(count)
    ]
    with temporary_home("vidgen-bench-partitions-"), DagsterInstance.get() as instance:
        store = PromptStoreResource()
        each: list[float] = []
        started = time.perf_counter()
        for request in requests:
            t0 = time.perf_counter()
            register_prompt(request, store, instance)
            each.append(time.perf_counter() - t0)
        total = time.perf_counter() - started
        registered = len(instance.get_dynamic_partitions(PROMPTS))
    each.sort()
    return {
        "status": "ok",
        "prompts": count,
        "registered": registered,
        "seconds": round(total, 3),
        "per_second": round(count / total, 1) if total else None,
        "ms_p50": round(statistics.median(each) * 1000, 2),
        "ms_p95": round(each[int(0.95 * (len(each) - 1))] * 1000, 2),
        "ms_max": round(each[-1] * 1000, 2),
    }


def _partitions_markdown(data: dict[str, Any]) -> str:
    head = "### (c) Partition registration"
    if data.get("status") != "ok":
        return f"{head}\n\n{data.get('status')}"
    rows = [
        ["prompts registered (new dynamic partitions)", data["registered"]],
        ["total seconds", data["seconds"]],
        ["**prompts per second**", data["per_second"]],
        ["ms per prompt, median", data["ms_p50"]],
        ["ms per prompt, 95th percentile", data["ms_p95"]],
        ["ms per prompt, max", data["ms_max"]],
    ]
    return "\n\n".join(
        [
            head,
            f"`register_prompt` (prompt file + `add_dynamic_partitions`) for {data['prompts']} "
            "synthetic prompts, one at a time, into a fresh SQLite Dagster instance.",
            markdown_table(["what", "value"], rows),
        ]
    )
