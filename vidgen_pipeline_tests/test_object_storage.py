"""VIDGEN_STORAGE on an object store: a real S3-protocol server (moto, server mode) started
here. Everything a second machine needs is there (values, prompt requests, the scene cache);
a write killed half-way leaves the previous value whole, and of two writers of one
partition the last whole write wins; an unreachable store is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from dagster import build_input_context, build_output_context
from PIL import Image

from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.media import encode_h264, probe_video
from vidgen_pipeline.core.scene_cache import KeyframeCache, SceneCache
from vidgen_pipeline.core.storage import atomic_write_bytes, storage_path
from vidgen_pipeline.io_managers import FramesIOManager, VideoIOManager
from vidgen_pipeline_tests.conftest import VIDGEN, cli_env
from vidgen_pipeline_tests.services import s3_server

BUCKET = "vidgen-test"
PARTITION = "part-000000000001"
SMALL = ["--video-model", "animatic", "--width", "128", "--height", "72", "--fps", "8"]


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture
def store(s3, monkeypatch) -> str:
    """A fresh prefix of the bucket, and this process set up to reach it."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"


def keys_under(s3, prefix: str) -> list[str]:
    """Every object key under the s3:// URL ``prefix``, relative to it."""
    root = prefix.removeprefix(f"s3://{BUCKET}/")
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=root)
    return sorted(o["Key"][len(root) + 1 :] for page in pages for o in page.get("Contents", []))


def vidgen(home: Path, s3, storage: str, *args: str) -> subprocess.CompletedProcess:
    env = {**cli_env(home), **s3.env, "VIDGEN_STORAGE": storage}
    return subprocess.run([*VIDGEN, *args], env=env, capture_output=True, text=True, timeout=600)


def out_ctx(asset: str):
    return build_output_context(
        asset_key=[asset], partition_key=PARTITION, run_id=str(uuid.uuid4())
    )


def in_ctx(asset: str):
    return build_input_context(asset_key=[asset], partition_key=PARTITION)


def clip(frames: int, value: int) -> SceneClip:
    data = np.full((frames, 12, 16, 3), value, np.uint8)
    data[:, 0, 0] = np.arange(frames, dtype=np.uint8)[:, None]
    return SceneClip(1, data, 24.0, {"value": value})


# ------------------------------------------------------------------------- two machines


@pytest.mark.slow
def test_a_video_made_on_one_machine_is_reused_from_the_store_by_another(s3, store, tmp_path):
    text = "A lantern floats over a dark lake. It drifts toward the far shore."
    args = ["generate", text, *SMALL, "--duration", "2", "--scenes", "2"]
    first = vidgen(tmp_path / "machine-a", s3, store, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    url = first.stdout.split()[-1]
    assert url.startswith(f"{store}/final_video/") and url.endswith(".mp4")
    key = url.rsplit("/", 1)[1].removesuffix(".mp4")
    stored = keys_under(s3, store)
    for expected in (
        f"prompts/{key}.json",  # the prompt store
        f"prompt/{key}.json",
        f"script/{key}.json",
        f"optimized_prompts/{key}.json",
        f"keyframes/{key}/manifest.json",
        f"scene_clips/{key}/manifest.json",
        f"final_video/{key}.mp4",
        f"final_video/{key}.json",
    ):
        assert expected in stored, expected
    assert sum(k.startswith("cache/scenes/") and k.endswith("/current.json") for k in stored) == 2
    # Nothing of the IO managers' values stays on machine A's disk.
    assert not (tmp_path / "machine-a" / "storage").exists()

    # Machine B has nothing of its own: its scenes come from the shared cache.
    second = vidgen(tmp_path / "machine-b", s3, store, *args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "scene 1/2: reused from the scene cache" in second.stderr
    assert "scene 2/2: reused from the scene cache" in second.stderr
    video = tmp_path / "final.mp4"
    s3.client().download_file(BUCKET, url.removeprefix(f"s3://{BUCKET}/"), str(video))
    facts = probe_video(video)
    assert facts.codec == "h264" and (facts.width, facts.height) == (128, 72)


def test_video_manager_loads_a_stored_video_as_a_local_file(s3, store, tmp_path, vidgen_home):
    from vidgen_pipeline.core.clips import FinalVideo

    mp4 = tmp_path / "made.mp4"
    encode_h264(np.zeros((8, 72, 128, 3), np.uint8), mp4, fps=8, preset="ultrafast")
    manager = VideoIOManager(base_path=store)
    video = FinalVideo(path=mp4, duration_s=1.0, frame_count=8, fps=8.0, width=128, height=72)
    manager.handle_output(out_ctx("final_video"), video)
    assert f"final_video/{PARTITION}.mp4" in keys_under(s3, store)
    loaded = manager.load_input(in_ctx("final_video"))
    assert loaded.path.is_file() and loaded.path.is_relative_to(vidgen_home)
    assert probe_video(loaded.path).frame_count == 8 and loaded.frame_count == 8


def test_keyframes_cached_by_one_machine_are_found_by_another(store, tmp_path):
    shared = storage_path(store) / "cache" / "keyframes"
    pixels = np.random.default_rng(3).integers(0, 256, (18, 32, 3), dtype=np.uint8)
    KeyframeCache(tmp_path / "a", shared=shared).put("ab" * 32, Image.fromarray(pixels), {"s": 1})
    image, info = KeyframeCache(tmp_path / "b", shared=shared).get("ab" * 32)
    np.testing.assert_array_equal(np.asarray(image), pixels)
    assert info == {"s": 1} and (tmp_path / "b" / "ab").is_dir()  # now a local copy too


def test_a_scene_whose_upload_stopped_half_way_is_not_found(store, tmp_path):
    shared = storage_path(store) / "cache" / "scenes"
    key = "cd" * 32
    SceneCache(tmp_path / "a", shared=shared).put(key, clip(3, 40))
    pointer = shared / key[:2] / key / "current.json"
    version = json.loads(pointer.read_bytes())["version"]
    # Another key uploaded but for its pointer (the writer died): no entry for anyone.
    half = "ef" * 32
    for item in (shared / key[:2] / key / version).iterdir():
        (shared / half[:2] / half / version / item.name).write_bytes(item.read_bytes())
    assert SceneCache(tmp_path / "b", shared=shared).get(half) is None
    reused = SceneCache(tmp_path / "b", shared=shared).get(key)
    np.testing.assert_array_equal(reused.frames, clip(3, 40).frames)


# ------------------------------------------------------------------ killed and racing writes


WRITE_CHILD = textwrap.dedent(
    """
    import sys, time
    import s3fs.core
    from upath import UPath
    from vidgen_pipeline.core.storage import atomic_write_bytes

    url, size = sys.argv[1], int(sys.argv[2])
    real = s3fs.core.S3File._upload_chunk

    def first_part_then_hang(self, final=False):
        done = real(self, final=final)
        if self.parts:  # one part of a multipart upload is on the server
            sys.stdout.write("READY\\n")
            sys.stdout.flush()
            time.sleep(600)
        return done

    s3fs.core.S3File._upload_chunk = first_part_then_hang
    # 5 MiB parts (the least S3 takes), so 12 MiB is a multipart upload like a long video's
    atomic_write_bytes(UPath(url, default_block_size=5 * 2**20), bytes([0x4E]) * size)
    """
)


def start_child(code: str, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def wait_ready(child: subprocess.Popen, what: str) -> None:
    line = child.stdout.readline()
    assert line.startswith("READY"), f"{what}: {line!r} {child.stderr.read()[-2000:]}"


def test_an_upload_killed_half_way_leaves_the_previous_object(s3, store):
    target = storage_path(store) / "final_video" / "big.mp4"
    atomic_write_bytes(target, b"old video")
    child = start_child(WRITE_CHILD, str(target), str(12 * 2**20), env=s3.env)
    try:
        wait_ready(child, "the upload did not start")
        key = str(target).removeprefix(f"s3://{BUCKET}/")
        uploads = s3.client().list_multipart_uploads(Bucket=BUCKET, Prefix=key)
        (upload,) = uploads["Uploads"]  # half of it is on the server...
        parts = s3.client().list_parts(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"])
        assert len(parts["Parts"]) >= 1
        child.kill()
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    # ...and no reader sees it: the object is the old one, whole.
    assert s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"old video"
    assert storage_path(str(target)).read_bytes() == b"old video"
    atomic_write_bytes(target, b"new video")  # the next whole write wins
    assert storage_path(str(target)).read_bytes() == b"new video"


FRAMES_CHILD = textwrap.dedent(
    """
    import sys, time, uuid
    from pathlib import Path
    import numpy as np
    from dagster import build_output_context
    import vidgen_pipeline.io_managers as io
    from vidgen_pipeline.core.clips import SceneClip

    base, value, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    real, written = io.write_lossless, []

    def write_then_wait(frames, path, fps):
        real(frames, path, fps)
        written.append(path)
        if len(written) == 2:  # scene 1 is up, scene 2 waits for a go (or a kill)
            sys.stdout.write("READY\\n")
            sys.stdout.flush()
            while not go.exists():
                time.sleep(0.05)

    io.write_lossless = write_then_wait
    frames = np.full((5, 12, 16, 3), value, np.uint8)
    frames[:, 0, 0] = np.arange(5, dtype=np.uint8)[:, None]
    context = build_output_context(
        asset_key=["scene_clips"], partition_key="part-000000000001", run_id=str(uuid.uuid4())
    )
    scenes = [SceneClip(n, frames, 24.0, {"value": value}) for n in (1, 2)]
    io.FramesIOManager(base_path=base).handle_output(context, scenes)
    sys.stdout.write("FINISHED\\n")
    """
)


def test_a_frames_write_killed_half_way_keeps_the_previous_version(s3, store, tmp_path):
    manager = FramesIOManager(base_path=store)
    manager.handle_output(out_ctx("scene_clips"), [clip(3, 10)])
    child = start_child(FRAMES_CHILD, store, "99", str(tmp_path / "never"), env=s3.env)
    try:
        wait_ready(child, "the frames write did not start")
        child.kill()
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    loaded = manager.load_input(in_ctx("scene_clips"))
    np.testing.assert_array_equal(loaded[0].frames, clip(3, 10).frames)  # the old, whole
    folder = f"scene_clips/{PARTITION}/"
    versions = {k.split("/")[2] for k in keys_under(s3, store) if k.startswith(folder + "v-")}
    assert len(versions) == 2  # the killed writer's half a version is still there...
    manager.handle_output(out_ctx("scene_clips"), [clip(2, 77)])
    after = {k.split("/")[2] for k in keys_under(s3, store) if k.startswith(folder + "v-")}
    assert len(after) == 2 and not (after - versions - {_current(store)})  # ...and swept now
    assert manager.load_input(in_ctx("scene_clips"))[0].info["value"] == 77


def _current(store: str) -> str:
    return json.loads(
        (storage_path(store) / "scene_clips" / PARTITION / "manifest.json").read_bytes()
    )["version"]


def test_of_two_writers_of_one_partition_the_last_whole_write_wins(s3, store, tmp_path):
    manager = FramesIOManager(base_path=store)
    go = tmp_path / "go"
    slow = start_child(FRAMES_CHILD, store, "200", str(go), env=s3.env)
    try:
        wait_ready(slow, "the slow writer did not start")
        # Meanwhile another writer (another machine) writes the same partition whole...
        manager.handle_output(out_ctx("scene_clips"), [clip(3, 10)])
        assert manager.load_input(in_ctx("scene_clips"))[0].info["value"] == 10
        go.touch()  # ...and the slow one, whose frames were not swept meanwhile, finishes.
        out, err = slow.communicate(timeout=120)
        assert slow.returncode == 0 and "FINISHED" in out, err[-2000:]
    finally:
        if slow.poll() is None:
            slow.kill()
    loaded = manager.load_input(in_ctx("scene_clips"))
    assert loaded[0].info["value"] == 200 and len(loaded[0].frames) == 5
    expected = np.full((5, 12, 16, 3), 200, np.uint8)
    expected[:, 0, 0] = np.arange(5, dtype=np.uint8)[:, None]
    np.testing.assert_array_equal(loaded[0].frames, expected)  # whole, never a mix


# -------------------------------------------------------------------------- unreachable


@pytest.mark.parametrize("fault", ["connection refused", "no such bucket"])
def test_an_unreachable_object_store_is_one_line(s3, tmp_path, fault):
    from vidgen_pipeline_tests.services import free_port

    env = {**cli_env(tmp_path / "home"), **s3.env}
    if fault == "connection refused":
        env["AWS_ENDPOINT_URL_S3"] = endpoint = f"http://127.0.0.1:{free_port()}"
        env["VIDGEN_STORAGE"] = f"s3://{BUCKET}/videos"
    else:
        endpoint = s3.endpoint
        env["VIDGEN_STORAGE"] = "s3://no-such-bucket-here/videos"
    started = time.monotonic()
    done = subprocess.run([*VIDGEN, "backfill"], env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("vidgen: cannot use the object store of VIDGEN_STORAGE=")
    assert env["VIDGEN_STORAGE"] in lines[0] and endpoint in lines[0]
    assert s3.env["AWS_SECRET_ACCESS_KEY"] not in done.stderr
    assert not (tmp_path / "home" / "dagster" / "dagster.yaml").exists()  # nothing ran
    print(f"\n{fault}: {lines[0]} ({seconds:.1f} s)")
