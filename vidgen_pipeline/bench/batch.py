"""The batch section: registering a prompt suite, and what a backfill costs per prompt.

(a) Registration: the VBench English suite (946 lines, read from ``../shared/datasets`` when
the checkout has it, else 946 synthetic prompts) read as a dataset and registered as
``prompts`` partitions in one call (``register_requests``), in a fresh instance.
(b) Backfill overhead: 5 prompts with tiny random-weight SVD and SD, once as one run of 5
partitions (the backfill policy) and once as 5 single-partition runs. Per prompt: wall time
minus time inside model calls (scene and keyframe ``seconds``), and the model loads counted
by ``runtime.LOAD_COUNTS``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vidgen_pipeline.bench.common import (
    QUIET_CONSOLE,
    TINY_RUN,
    BenchContext,
    SectionResult,
    guard,
    markdown_table,
    temporary_home,
)
from vidgen_pipeline.bench.cpu import _tiny_fixtures

PROMPT_COUNT = 5
VBENCH = "vbench_all_dimension_en.txt"


def batch_section(ctx: BenchContext) -> SectionResult:
    data: dict[str, Any] = {}
    ctx.log("batch: (a) registering a 946-prompt suite")
    data["registration"] = guard(registration)
    ctx.log("batch: (b) a backfill of 5 prompts: one run vs five")
    data["backfill"] = guard(lambda: backfill_overhead(ctx.log))
    parts = [_registration_markdown(data["registration"]), _backfill_markdown(data["backfill"])]
    return SectionResult(
        "batch", "Batch: registration and backfill overhead", data, "\n\n".join(parts)
    )


def _suite(tmp: Path) -> tuple[Path, str]:
    import vidgen_pipeline

    shared = Path(vidgen_pipeline.__file__).resolve().parents[2] / "shared" / "datasets" / VBENCH
    if shared.is_file():
        return shared, f"VBench `{VBENCH}`"
    path = tmp / "synthetic.txt"
    path.write_text("".join(f"A paper boat number {n} drifts down a stream.\n" for n in range(946)))
    return path, "946 synthetic prompts (VBench file absent)"


def registration() -> dict[str, Any]:
    from dagster import DagsterInstance

    from vidgen_pipeline.batch import register_requests
    from vidgen_pipeline.core.datasets import read_dataset
    from vidgen_pipeline.core.requests import PromptStore
    from vidgen_pipeline.core.storage import default_prompt_store_path

    with temporary_home("vidgen-bench-batch-") as home:
        path, source = _suite(home.parent)
        started = time.perf_counter()
        result = read_dataset(path)
        read_s = time.perf_counter() - started
        with DagsterInstance.get() as instance:
            store = PromptStore(default_prompt_store_path())
            started = time.perf_counter()
            first = register_requests(result.requests, store, instance)
            register_s = time.perf_counter() - started
            started = time.perf_counter()
            again = register_requests(result.requests, store, instance)
            again_s = time.perf_counter() - started
    return {
        "status": "ok",
        "source": source,
        "lines": result.rows,
        "partitions": len(first.new),
        "read_s": round(read_s, 3),
        "register_s": round(register_s, 3),
        "per_second": round(len(first.new) / register_s, 1) if register_s else None,
        "second_pass_s": round(again_s, 3),
        "second_pass_new": len(again.new),
    }


def backfill_overhead(log=print) -> dict[str, Any]:
    try:
        save_tiny_sd, save_tiny_svd = _tiny_fixtures()
    except ImportError as exc:
        return {"status": f"not available: the tiny model fixtures do not import ({exc})"}
    from dagster import DagsterInstance

    from vidgen_pipeline.batch import range_tags, register_requests, run_batches
    from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest, PromptStore
    from vidgen_pipeline.core.storage import default_prompt_store_path
    from vidgen_pipeline.definitions import defs
    from vidgen_pipeline.partitions import PROMPTS
    from vidgen_pipeline.resources import runtime

    modes = {}
    with temporary_home("vidgen-bench-backfill-") as home:
        svd = save_tiny_svd(home.parent / "tiny" / "svd")
        sd = save_tiny_sd(home.parent / "tiny" / "sd")
        job = defs.resolve_job_def("generate_video")
        with DagsterInstance.get() as instance:
            store = PromptStore(default_prompt_store_path())
            for mode in ("one run of 5", "5 runs of 1"):
                settings = GenerationSettings(
                    **TINY_RUN,
                    video_model=str(svd),
                    keyframe_model=str(sd),
                    duration_s=2.0,
                    scenes=2,
                    output_fps=4.0,
                )
                requests = [
                    PromptRequest(text=f"{mode}: lantern {n} floats downstream.", settings=settings)
                    for n in range(PROMPT_COUNT)
                ]
                keys = register_requests(requests, store, instance).new
                ordered = list(instance.get_dynamic_partitions(PROMPTS))
                batches = run_batches(ordered, keys, PROMPT_COUNT if mode.startswith("one") else 1)
                runtime.LOAD_COUNTS.clear()
                model_s = 0.0
                started = time.perf_counter()
                for batch in batches:
                    result = job.execute_in_process(
                        instance=instance,
                        tags=range_tags(batch),
                        raise_on_error=False,
                        run_config=QUIET_CONSOLE,
                    )
                    if not result.success:
                        raise RuntimeError(f"{mode}: run {result.run_id} failed")
                    model_s += _model_seconds(result)
                wall = time.perf_counter() - started
                loads = sum(runtime.LOAD_COUNTS.values())
                modes[mode] = {
                    "runs": len(batches),
                    "wall_s": round(wall, 3),
                    "model_calls_s": round(model_s, 3),
                    "model_loads": loads,
                    "overhead_per_prompt_s": round((wall - model_s) / PROMPT_COUNT, 3),
                }
                log(f"batch: {mode}: {wall:.1f} s, {loads} model loads")
    return {
        "status": "ok",
        "setup": f"{PROMPT_COUNT} prompts, tiny random-weight SVD + SD keyframes, 2 scenes of 1 s at "
        "4 fps, 64x64, 2 steps; in-process executor (as `vidgen backfill` runs them)",
        "modes": modes,
    }


def _model_seconds(result) -> float:
    """Seconds inside model calls: each scene's render and each keyframe, from metadata."""
    total = 0.0
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == ["scene_clips"]:
            for scene in event.materialization.metadata["scenes"].value:
                if scene.get("cache") != "reused":
                    total += float(scene.get("seconds", 0))
    for path in _keyframe_manifests(result):
        import json

        for item in json.loads(Path(path).read_text()).get("items", []):
            total += float(item.get("info", {}).get("seconds", 0) or 0)
    return total


def _keyframe_manifests(result) -> list[str]:
    paths = []
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == ["keyframes"]:
            paths.append(str(Path(event.materialization.metadata["path"].value) / "manifest.json"))
    return paths


def _registration_markdown(data: dict[str, Any]) -> str:
    if data.get("status") != "ok":
        return f"**Registration**: {data.get('status')}"
    rows = [
        ["source", data["source"]],
        ["lines read / partitions", f"{data['lines']} / {data['partitions']}"],
        ["read the file (s)", data["read_s"]],
        ["register the partitions, one call (s)", data["register_s"]],
        ["partitions per second", data["per_second"]],
        [
            "the same file again: new partitions / seconds",
            f"{data['second_pass_new']} / {data['second_pass_s']}",
        ],
    ]
    return (
        "**Registering a prompt suite** (`read_dataset` + `register_requests`, as `vidgen "
        "add-prompts` and the dataset sensor do)\n\n" + markdown_table(["", ""], rows)
    )


def _backfill_markdown(data: dict[str, Any]) -> str:
    if data.get("status") != "ok":
        return f"**Backfill overhead**: {data.get('status')}"
    rows = [
        [
            mode,
            m["runs"],
            m["wall_s"],
            m["model_calls_s"],
            m["model_loads"],
            m["overhead_per_prompt_s"],
        ]
        for mode, m in data["modes"].items()
    ]
    return (
        f"**Backfill overhead per prompt** ({data['setup']}; overhead = wall minus time inside "
        "model calls, per prompt)\n\n"
        + markdown_table(
            [
                "",
                "runs",
                "wall (s)",
                "in model calls (s)",
                "model loads",
                "overhead per prompt (s)",
            ],
            rows,
        )
    )
