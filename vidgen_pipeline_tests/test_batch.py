"""Batch runs: the dataset sensor, `vidgen add-prompts` / `vidgen backfill`, runs that cover
several prompts and load each model once, the nightly schedule, and resume after a kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from dagster import (
    DagsterRunStatus,
    RunsFilter,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from vidgen_pipeline.assets import ALL_ASSETS
from vidgen_pipeline.batch import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    range_tags,
    register_requests,
    run_batches,
)
from vidgen_pipeline.core.media import probe_video, read_frames
from vidgen_pipeline.core.requests import (
    GenerationSettings,
    PromptRequest,
    PromptStore,
    is_safe_key,
)
from vidgen_pipeline.core.storage import default_prompt_store_path
from vidgen_pipeline.definitions import defs
from vidgen_pipeline.partitions import PROMPTS
from vidgen_pipeline.resources import VideoGenerator, runtime
from vidgen_pipeline.sensors import nightly_missing, prompt_datasets
from vidgen_pipeline_tests.conftest import VIDGEN, cli_env, dataset, vidgen


def tick(instance, cursor=None, image_dirs=()):
    with build_sensor_context(
        instance=instance,
        cursor=cursor,
        repository_def=defs.get_repository_def(),
        resources={"video_generator": VideoGenerator(image_dirs=[str(d) for d in image_dirs])},
    ) as context:
        return prompt_datasets(context)


def apply(instance, result: SensorResult) -> list[str]:
    """Do what the daemon does with the sensor's partition requests; return the new keys."""
    keys = [k for request in result.dynamic_partitions_requests for k in request.partition_keys]
    if keys:
        instance.add_dynamic_partitions(PROMPTS, keys)
    return keys


def requested(result: SensorResult) -> set[str]:
    (request,) = result.run_requests
    subset = request.asset_graph_subset
    assert subset is not None, "the sensor asks for a backfill (runs of several partitions)"
    keys = {
        akpk.partition_key
        for akpk in subset.iterate_asset_partitions()
        if akpk.asset_key.to_user_string() == "final_video"
    }
    assets = {akpk.asset_key.to_user_string() for akpk in subset.iterate_asset_partitions()}
    assert assets == {a.key.to_user_string() for a in ALL_ASSETS}  # the whole graph
    return keys


# --------------------------------------------------------------------------- the sensor


def test_sensor_registers_both_vbench_files_in_one_tick_and_never_twice(instance, vidgen_home):
    folder = vidgen_home / "datasets"
    folder.mkdir()
    for name in ("vbench_all_dimension_en.txt", "vbench_all_dimension_zh.txt"):
        shutil.copy(dataset(name), folder / name)
    started = time.perf_counter()
    first = tick(instance)
    seconds = time.perf_counter() - started
    new = apply(instance, first)
    print(f"\nsensor tick over 2 x 946 VBench lines: {seconds:.1f} s, {len(new)} partitions")
    # 944 distinct English prompts and 943 distinct Chinese ones (three pairs of English
    # prompts share a translation); no English prompt equals a Chinese one.
    assert len(new) == 944 + 943 == len(set(new))
    assert all(is_safe_key(key) for key in new)
    assert requested(first) == set(new)
    assert len(instance.get_dynamic_partitions(PROMPTS)) == 1887
    # The second tick reads nothing (the cursor) and requests nothing.
    second = tick(instance, first.cursor)
    assert not second.run_requests and not second.dynamic_partitions_requests
    # Rewritten with the same rows (new mtime): read again, still nothing requested.
    for path in folder.iterdir():
        path.write_bytes(path.read_bytes())
    third = tick(instance, second.cursor)
    assert not third.run_requests and not third.dynamic_partitions_requests


def test_the_sensor_reads_images_from_the_resources_image_dirs(instance, vidgen_home, tmp_path):
    from PIL import Image

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (64, 48), (200, 40, 30)).save(pictures / "door.png")
    folder = vidgen_home / "datasets"
    folder.mkdir()
    (folder / "doors.csv").write_text(f"prompt,image\nA red door.,{pictures / 'door.png'}\n")
    assert not apply(instance, tick(instance))  # not an allowed folder: the row is skipped
    assert len(apply(instance, tick(instance, image_dirs=[pictures]))) == 1


def test_changed_row_is_requested_again_and_only_it(instance, vidgen_home):
    folder = vidgen_home / "datasets"
    folder.mkdir()
    path = folder / "shots.csv"
    path.write_text(
        "prompt,style,duration\nA mug of tea steams.,cinematic,2\nA kite over a beach.,anime,2\n"
    )
    first = tick(instance)
    keys = apply(instance, first)
    assert len(keys) == 2
    path.write_text(
        "prompt,style,duration\nA mug of tea steams.,cinematic,2\nA kite over a beach.,none,3\n"
    )
    second = tick(instance, first.cursor)
    assert not apply(instance, second)  # same prompts: no new partitions
    (changed,) = requested(second)
    assert changed == PromptRequest(text="A kite over a beach.").partition_key
    stored = PromptStore(default_prompt_store_path()).get(changed)
    assert (stored.settings.style, stored.settings.duration_s) == ("none", 3.0)


def test_bad_files_are_reported_and_the_good_rows_go_through(instance, vidgen_home):
    folder = vidgen_home / "datasets"
    folder.mkdir()
    (folder / "junk.csv").write_bytes(bytes(range(256)) * 8)
    (folder / "empty.jsonl").write_bytes(b"")
    (folder / "rows.csv").write_text(
        "prompt,seed\nA red kite.,1\n,2\nA blue kite.,not-a-number\nA green kite.,3\n"
    )
    result = tick(instance)
    keys = apply(instance, result)
    assert sorted(keys) == sorted(
        PromptRequest(text=t, settings=GenerationSettings(seed=s)).partition_key
        for t, s in (("A red kite.", 1), ("A green kite.", 3))
    )
    # Still running: the next tick with the same files is quiet, a fixed file goes through.
    (folder / "junk.csv").write_text("prompt\nA white kite.\n")
    again = tick(instance, result.cursor)
    assert len(apply(instance, again)) == 1


# ------------------------------------------------------------------- the shell commands


def test_add_prompts_then_backfill_missing_with_a_limit(tmp_path):
    home = tmp_path / "home"
    data = tmp_path / "batch.csv"
    data.write_text(
        "prompt,duration,scenes,video_model,width,height\n"
        "A paper boat on a puddle.,1,1,,128,72\n"
        "A paper boat on a puddle.,1,1,,128,72\n"
        "A snail climbs a leaf.,1,2,,128,72\n"
        "A candle flickers.,zero,1,,128,72\n"
        "A windmill turns.,1,1,,128,72\n"
        "A kettle boils.,1,1,svd-xxl,128,72\n"
    )
    added = vidgen(home, "add-prompts", str(data))
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "3"
    assert "batch.csv:5: " in added.stderr  # the bad duration, with file and line
    assert "batch.csv:7: video_model 'svd-xxl' is not a known model" in added.stderr
    assert vidgen(home, "add-prompts", str(data)).stdout.strip() == "0"

    first = vidgen(home, "backfill", "--missing", "--limit", "2", "--per-run", "2")
    assert first.returncode == 0, first.stderr
    paths = [Path(line) for line in first.stdout.split()]
    assert len(paths) == 2 and all(p.is_file() for p in paths)
    assert "2 partitions in 1 runs" in first.stderr
    rest = vidgen(home, "backfill", "--missing")
    assert rest.returncode == 0, rest.stderr
    (last,) = [Path(line) for line in rest.stdout.split()]
    assert probe_video(last).codec == "h264" and last not in paths
    done = vidgen(home, "backfill", "--missing")
    assert done.returncode == 0 and done.stdout == ""
    assert "nothing to do" in done.stderr


def test_a_bad_prompt_fails_alone_and_a_changed_row_is_made_again(tmp_path):
    home = tmp_path / "home"
    data = tmp_path / "mixed.csv"
    # A hub id passes reading (it could exist) but its weights are not here: the run fails.
    rows = "prompt,duration,video_model,width,height\n"
    rows += "A fern unrolls.,1,animatic,128,72\nA gull lands.,1,acme/no-vid,128,72\n"
    data.write_text(rows + "A bell swings.,1,animatic,128,72\n")
    assert vidgen(home, "add-prompts", str(data)).stdout.strip() == "3"
    done = vidgen(home, "backfill", "--missing", "--per-run", "3")
    assert done.returncode == 1
    assert "running its 3 partitions one by one" in done.stderr
    assert len(done.stdout.split()) == 2  # the fern and the bell
    gull = PromptRequest(text="A gull lands.").partition_key
    assert f"1 of 3 partitions failed: {gull}" in done.stderr.splitlines()[-1]
    assert "acme/no-vid" in done.stderr
    # The row fixed (and the bell's settings changed): only those two are made again.
    data.write_text(
        "prompt,duration,video_model,width,height\nA fern unrolls.,1,animatic,128,72\n"
        "A gull lands.,1,animatic,128,72\nA bell swings.,2,animatic,128,72\n"
    )
    added = vidgen(home, "add-prompts", str(data))
    assert "0 new partitions, 2 changed, 1 unchanged" in added.stderr
    again = vidgen(home, "backfill", "--missing")
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.split()) == 2 and "2 partitions in 1 runs" in again.stderr


def test_add_prompts_refuses_a_file_without_usable_rows(tmp_path):
    data = tmp_path / "nothing.csv"
    data.write_text("text\nno prompt column here\n")
    done = vidgen(tmp_path / "home", "add-prompts", str(data))
    assert done.returncode == 2 and done.stdout == ""
    assert "nothing.csv" in done.stderr and "prompt" in done.stderr


def test_run_batches_are_contiguous_and_bounded():
    ordered = list("abcdefghij")
    assert run_batches(ordered, "abcdefg", 3) == [list("abc"), list("def"), ["g"]]
    # A gap (h is done) ends a run: a run covers a range of partitions.
    assert run_batches(ordered, "fgij", 8) == [["f", "g"], ["i", "j"]]
    assert run_batches(ordered, [], 4) == []


# ---------------------------------------------- several prompts per run, models loaded once


@pytest.fixture
def tiny_models(tiny_models) -> dict[str, Path]:
    """The session's tiny SVD, SD and chat LLM (conftest): the models of a batch run."""
    return {name: tiny_models[name] for name in ("svd", "sd", "llm")}


def tiny_settings(models: dict[str, Path], **overrides) -> GenerationSettings:
    """Tiny SVD with tiny SD keyframes, 64x64 at 4 fps, 2 steps: seconds on two cores."""
    tiny = {"width": 64, "height": 64, "fps": 4.0, "frames": 4, "steps": 2, "keyframe_steps": 2}
    return GenerationSettings(
        video_model=str(models["svd"]), keyframe_model=str(models["sd"]), **tiny, **overrides
    )


def test_a_run_of_five_partitions_loads_each_model_once(instance, vidgen_home, tiny_models):
    settings = tiny_settings(tiny_models, script_model=str(tiny_models["llm"]), duration_s=1.0)
    requests = [
        PromptRequest(text=f"Shot {n}: a lantern floats on a river.", settings=settings)
        for n in range(5)
    ]
    registration = register_requests(requests, PromptStore(default_prompt_store_path()), instance)
    keys = registration.new
    assert len(keys) == 5
    ordered = list(instance.get_dynamic_partitions(PROMPTS))
    (batch,) = run_batches(ordered, keys, 8)
    runtime.LOAD_COUNTS.clear()
    result = defs.resolve_job_def("generate_video").execute_in_process(
        instance=instance,
        tags=range_tags(batch),
        raise_on_error=False,
        run_config={
            "resources": {"script_writer": {"config": {"max_new_tokens": 24, "attempts": 1}}}
        },
    )
    assert result.success
    assert dict(runtime.LOAD_COUNTS) == {str(path): 1 for path in tiny_models.values()}
    finals = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path == ["final_video"]
    ]
    assert sorted(e.partition for e in finals) == sorted(keys)
    paths = {e.partition: e.materialization.metadata["path"].value for e in finals}
    assert len(set(paths.values())) == 5
    for key, path in paths.items():
        # 4 generated frames at 4 fps, finished at 24 fps by interpolation.
        assert key in path and probe_video(Path(path)).frame_count == 24
    # One result per check for the run, with every partition's figures in it.
    counts = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "frame_counts_as_planned"
    ]
    assert len(counts) == 1 and counts[0].passed
    assert set(counts[0].metadata["by_partition"].value) == set(keys)


def test_a_rerun_reuses_keyframes_and_scenes_without_loading_the_image_model(
    instance, vidgen_home, tiny_models
):
    settings = tiny_settings(tiny_models, duration_s=2.0, scenes=2, output_fps=4.0)
    request = PromptRequest(text="A heron waits. The heron strikes.", settings=settings)
    (key,) = register_requests([request], PromptStore(default_prompt_store_path()), instance).new
    job = defs.resolve_job_def("generate_video")
    first = job.execute_in_process(instance=instance, partition_key=key)
    frames_first = list(read_frames(Path(_final(first))))
    runtime.LOAD_COUNTS.clear()
    second = job.execute_in_process(instance=instance, partition_key=key)
    # Neither model was loaded: the keyframes and the scenes came from the caches.
    assert dict(runtime.LOAD_COUNTS) == {}
    keyframes = [
        e for e in second.get_asset_materialization_events() if e.asset_key.path == ["keyframes"]
    ]
    manifest = json.loads(
        (Path(keyframes[0].materialization.metadata["path"].value) / "manifest.json").read_text()
    )
    assert [item["info"]["cache"] for item in manifest["items"]] == ["reused", "reused"]
    frames_second = list(read_frames(Path(_final(second))))
    assert all(np.array_equal(a, b) for a, b in zip(frames_first, frames_second, strict=True))


def _final(result) -> str:
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path == ["final_video"]
    ]
    return event.materialization.metadata["path"].value


# ----------------------------------------------------------------------- the schedule


def test_nightly_schedule_asks_for_the_missing_partitions_only(instance, vidgen_home):
    store = PromptStore(default_prompt_store_path())
    requests = [
        PromptRequest(text=t, settings=GenerationSettings(duration_s=1.0, width=64, height=64))
        for t in ("An owl blinks.", "A river bends.", "Snow falls on a roof.")
    ]
    keys = register_requests(requests, store, instance).new
    defs.resolve_job_def("generate_video").execute_in_process(
        instance=instance, partition_key=keys[0]
    )
    context = build_schedule_context(instance=instance, repository_def=defs.get_repository_def())
    (request,) = nightly_missing(context)  # one run: the two missing partitions are adjacent
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (keys[1], keys[2])
    assert request.partition_key is None and request.run_key.startswith("nightly-")
    # What the scheduler launches: that run, with those tags, makes both videos.
    result = defs.resolve_job_def("generate_video").execute_in_process(
        instance=instance, tags=request.tags
    )
    made = {e.partition for e in result.get_asset_materialization_events()}
    assert made == set(keys[1:])
    assert isinstance(nightly_missing(context), SkipReason)
    # A request changed since its video was made is outdated again.
    changed = requests[0].model_copy(update={"settings": GenerationSettings(duration_s=2.0)})
    register_requests([changed], store, instance)
    (request,) = nightly_missing(context)
    assert request.tags[RANGE_START_TAG] == request.tags[RANGE_END_TAG] == keys[0]


# -------------------------------------------------------------------- kill and resume


RESUME_ARGS = ["--duration", "9", "--scenes", "3", "--width", "320", "--height", "180"]
RESUME_TEXT = "A lighthouse at dusk. Waves break on the rocks. The lamp turns on."


def decoded(path: Path) -> list[np.ndarray]:
    return list(read_frames(path))


# `vidgen generate` killed (SIGKILL, its whole process group) the moment scene 2 starts
# rendering, once scene 1 is whole in the scene cache: the real CLI and run, with the kill at
# one fixed point. (Killing on a progress line raced: the progress printer polls the event
# log, and a 320x180 animatic finishes its remaining scenes within one poll.)
KILLED_IN_SCENE_TWO = """
import os, signal, sys, time
from pathlib import Path
from vidgen_pipeline.cli import main
from vidgen_pipeline.resources.video import VideoGenerator
render = VideoGenerator.render
def whole_entries(cache):  # an entry is whole once renamed from its .tmp- folder
    return [p for p in cache.glob("*/*/entry.json") if not p.parent.name.startswith(".")]
def killed_in_scene_two(self, plan, scene, *args, **kwargs):
    if scene.scene_number == 2:
        cache, deadline = Path(sys.argv[1]), time.monotonic() + 120
        while not whole_entries(cache) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(0, signal.SIGKILL)
    return render(self, plan, scene, *args, **kwargs)
VideoGenerator.render = killed_in_scene_two
sys.exit(main(sys.argv[2:]))
"""


def test_killed_in_scene_two_resumes_with_scene_one_and_the_same_video(tmp_path):
    # The reference: one uninterrupted run in another home.
    reference = vidgen(tmp_path / "reference", "generate", RESUME_TEXT, *RESUME_ARGS)
    assert reference.returncode == 0, reference.stderr
    reference_path = Path(reference.stdout.split()[-1])

    home = tmp_path / "home"
    cache = home / "cache" / "scenes"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_SCENE_TWO, str(cache), "generate", RESUME_TEXT]
        + RESUME_ARGS,
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,  # its own process group, which it kills
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    entries = [p for p in cache.glob("*/*/entry.json") if not p.parent.name.startswith(".")]
    assert len(entries) == 1  # scene 1 only
    assert not (home / "storage" / "final_video").exists()

    again = vidgen(home, "generate", RESUME_TEXT, *RESUME_ARGS)
    assert again.returncode == 0, again.stderr
    assert "had died (killed?); marked failed" in again.stderr  # its GPU slot freed
    assert "scene 1/3: reused from the scene cache" in again.stderr
    assert "scene 3/3: reused" not in again.stderr  # scene 3 was never finished
    path = Path(again.stdout.split()[-1])
    ours, theirs = decoded(path), decoded(reference_path)
    assert len(ours) == len(theirs) == 216
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    # No partial files anywhere: no temp files, no temp cache entries, no scratch left.
    leftovers = [
        p
        for p in home.rglob("*")
        if p.name.endswith(".tmp") or p.name.startswith(".tmp-") or p.parent.name == "tmp"
    ]
    assert leftovers == []
    metadata = _latest_metadata(home, "scene_clips")
    assert metadata["reused_scenes"][0] == 1 and 3 not in metadata["reused_scenes"]


def _latest_metadata(home: Path, asset: str) -> dict:
    from dagster import AssetKey, DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    try:
        with DagsterInstance.get() as instance:
            event = instance.get_latest_materialization_event(AssetKey(asset))
            return {k: v.value for k, v in event.asset_materialization.metadata.items()}
    finally:
        del os.environ["DAGSTER_HOME"]


def test_two_runs_of_one_partition_at_once_both_finish_whole(tmp_path):
    home = tmp_path / "home"
    args = ["generate", "Two clocks tick side by side.", "--duration", "2", "--scenes", "2"]
    args += ["--width", "320", "--height", "180"]
    procs = [
        subprocess.Popen(
            [*VIDGEN, *args], env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [o[1][-2000:] for o in outs]
    (path,) = {out.split()[-1] for out, _ in outs}
    facts = probe_video(Path(path.decode()))
    assert facts.frame_count == 48 and facts.codec == "h264"
    manifest = json.loads(
        next((home / "storage" / "scene_clips").glob("*/manifest.json")).read_text()
    )
    assert [item["frames"] for item in manifest["items"]] == [24, 24]
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    try:
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
            assert len(runs) == 2
    finally:
        del os.environ["DAGSTER_HOME"]


def test_scene_cache_entries_are_whole_or_replaced(tmp_path):
    from vidgen_pipeline.core.clips import SceneClip
    from vidgen_pipeline.core.scene_cache import SceneCache

    cache = SceneCache(tmp_path / "cache")
    key = "ab" * 32
    frames = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    stored = cache.put(key, SceneClip(1, frames.copy(), 8.0, {"backend": "test"}))
    assert stored.info["cache"] == "new" and stored.source_dir == cache.folder(key)
    hit = cache.get(key)
    assert np.array_equal(hit.frames, frames) and hit.info["cache"] == "reused"
    # A second writer of the same scene keeps the first whole entry.
    cache.put(key, SceneClip(1, frames.copy(), 8.0, {"backend": "test"}))
    assert [p.name for p in cache.folder(key).parent.iterdir()] == [key]
    # Damaged by hand (its frames file cut short): not a hit, and the next put replaces it.
    store = cache.folder(key) / "clip.mp4"
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])
    assert cache.get(key) is None
    cache.put(key, SceneClip(1, frames.copy(), 8.0, {"backend": "test"}))
    assert np.array_equal(cache.get(key).frames, frames)
    assert [p.name for p in cache.folder(key).parent.iterdir()] == [key]  # no temp left


def test_temp_files_of_dead_processes_are_swept_by_the_next_write(tmp_path):
    from vidgen_pipeline.core.storage import atomic_write_bytes, remove_orphan_temp_files

    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f".final.mp4.{dead.pid}-k1ll3d.tmp"  # what a SIGKILL mid-write leaves
    orphan.write_bytes(b"half")
    mine = tmp_path / f".other.json.{os.getpid()}-w0rk1n.tmp"  # a live writer's
    mine.write_bytes(b"busy")
    atomic_write_bytes(tmp_path / "final.mp4", b"whole")
    assert remove_orphan_temp_files(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "final.mp4"])
