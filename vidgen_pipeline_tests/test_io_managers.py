"""Atomic writes survive a SIGKILL; the IO managers keep one version and stay under base."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from dagster import (
    DagsterInstance,
    PythonObjectDagsterType,
    build_input_context,
    build_output_context,
)
from PIL import Image

from vidgen_pipeline.core.clips import FinalVideo, Keyframe, SceneClip
from vidgen_pipeline.core.frame_store import read_lossless, write_lossless
from vidgen_pipeline.core.media import encode_h264, probe_video
from vidgen_pipeline.core.requests import PromptRequest, safe_path_component
from vidgen_pipeline.core.scene_cache import frame_name, write_png
from vidgen_pipeline.core.storage import atomic_write_bytes
from vidgen_pipeline.core.storyboard import Storyboard, write_storyboard
from vidgen_pipeline.io_managers import (
    RECENT_FRAMES,
    FramesIOManager,
    JsonIOManager,
    VideoIOManager,
)

READY = "READY"

# The child blocks at one point of atomic_write_bytes (a slow disk, a hung rename), says
# READY, and waits to be killed. Only the operating system layer is slowed down; the code
# under test runs unchanged.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from vidgen_pipeline.core.storage import atomic_write_bytes

    target, stage, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    data = bytes([0x4E]) * size

    def block(what):
        sys.stdout.write(f"READY {what}\\n")
        sys.stdout.flush()
        time.sleep(600)

    if stage == "mid-write":
        real_fdopen = os.fdopen

        class HalfThenHang:
            def __init__(self, handle):
                self.handle = handle
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return self.handle.__exit__(*exc)
            def write(self, chunk):
                self.handle.write(chunk[: len(chunk) // 2])
                self.handle.flush()
                os.fsync(self.handle.fileno())
                block("half written")
            def __getattr__(self, name):
                return getattr(self.handle, name)

        os.fdopen = lambda fd, *a, **k: HalfThenHang(real_fdopen(fd, *a, **k))
    elif stage == "before-fsync":
        os.fsync = lambda fd: block("before fsync")
    elif stage == "before-rename":
        os.replace = lambda src, dst: block("before rename")
    else:
        raise SystemExit(f"unknown stage {stage}")

    atomic_write_bytes(target, data)
    sys.stdout.write("FINISHED\\n")
    """
)


def run_and_kill(target: Path, stage: str, size: int) -> None:
    """Start a child writing ``size`` bytes to ``target``; SIGKILL it at ``stage``."""
    code = kill_when_ready(
        [CHILD, str(target), stage, str(size)], 60, f"child did not reach {stage}"
    )
    assert code == -signal.SIGKILL


def kill_when_ready(child_args: list[str], limit_s: int, what: str) -> int:
    """Run ``python -c *child_args``; SIGKILL it once it prints READY; its exit code."""
    child = subprocess.Popen(
        [sys.executable, "-c", *child_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(limit_s, child.kill)  # never hang the test run
    timer.start()
    try:
        line = child.stdout.readline()
        assert line.startswith(READY), f"{what}: {line!r} {child.stderr.read()}"
        os.kill(child.pid, signal.SIGKILL)
        return child.wait(timeout=30)
    finally:
        timer.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


def leftovers(folder: Path, target: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p != target)


# ---------------------------------------------------------------------------------------
# atomic_write_bytes


SIZE = 8 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage,temp_size",
    [("mid-write", SIZE // 2), ("before-fsync", SIZE), ("before-rename", SIZE)],
)
def test_killed_write_leaves_the_old_content(tmp_path, stage, temp_size):
    target = tmp_path / "clip.json"
    old = os.urandom(64 * 1024)
    atomic_write_bytes(target, old)
    assert leftovers(tmp_path, target) == []

    run_and_kill(target, stage, SIZE)

    assert target.read_bytes() == old  # the old content, exactly
    temps = leftovers(tmp_path, target)
    # The kill really happened mid-way: a temp file holds the partial new content.
    assert len(temps) == 1, temps
    temp = temps[0]
    assert temp.name.startswith(f".{target.name}.")
    assert temp.name.endswith(".tmp")
    assert temp.stat().st_size == temp_size
    assert set(temp.read_bytes()[:4096]) <= {0x4E}

    # The next write still works and publishes the whole new value.
    new = b"new value"
    atomic_write_bytes(target, new)
    assert target.read_bytes() == new


@pytest.mark.slow
def test_killed_first_write_leaves_no_target(tmp_path):
    target = tmp_path / "deep" / "folder" / "first.bin"
    run_and_kill(target, "before-rename", 1024 * 1024)
    assert not target.exists()
    names = [p.name for p in target.parent.iterdir()]
    assert len(names) == 1
    assert names[0].startswith(".first.bin.") and names[0].endswith(".tmp")


def test_temp_files_are_hidden_and_distinguishable(tmp_path):
    """Readers that list a folder (version sweeps, globbing for *.json) skip the temps."""
    target = tmp_path / "manifest.json"
    run_and_kill(target, "before-rename", 1000)
    temp = leftovers(tmp_path, target)[0]
    assert temp.name.startswith(".")
    assert temp.suffix == ".tmp"
    assert list(tmp_path.glob("*.json")) == []
    assert not temp.name.startswith("v-")


def test_failed_rename_removes_its_temp_file(tmp_path):
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"data")  # os.replace cannot replace a non-empty folder
    assert [p.name for p in tmp_path.iterdir()] == ["occupied"]
    assert (target / "keep.txt").read_text() == "keep"


def test_concurrent_reader_sees_old_or_new_never_half(tmp_path):
    target = tmp_path / "value.bin"
    a, b = b"A" * 300_000, b"B" * 300_000
    atomic_write_bytes(target, a)
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            seen.add(target.read_bytes())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(40):
            atomic_write_bytes(target, b if i % 2 == 0 else a)
    finally:
        stop.set()
        thread.join()
    assert seen <= {a, b}
    assert leftovers(tmp_path, target) == []


# ---------------------------------------------------------------------------------------
# IO managers through Dagster's contexts


_INSTANCE: DagsterInstance | None = None


def instance() -> DagsterInstance:
    """One in-memory instance for every context (each context would otherwise make one)."""
    global _INSTANCE
    if _INSTANCE is None:
        _INSTANCE = DagsterInstance.ephemeral()
    return _INSTANCE


def out_ctx(asset: str, partition: str | None = "part-000000000001"):
    return build_output_context(
        asset_key=[asset], partition_key=partition, run_id=str(uuid.uuid4()), instance=instance()
    )


def in_ctx(asset: str, partition: str | None = "part-000000000001", typ=None):
    kwargs = {"dagster_type": PythonObjectDagsterType(typ)} if typ is not None else {}
    return build_input_context(
        asset_key=[asset], partition_key=partition, instance=instance(), **kwargs
    )


def clip(scene: int, frames: int, value: int, mp4: Path | None = None) -> SceneClip:
    data = np.full((frames, 12, 16, 3), value, np.uint8)
    data[:, 0, 0] = np.arange(frames, dtype=np.uint8)[:, None]  # every frame distinct
    return SceneClip(scene, data, 24.0, {"backend": "animatic", "value": value}, mp4)


def version_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("v-"))


def under(path: Path, base: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(base))


def test_scene_clips_written_again_keep_the_current_and_the_previous_version(tmp_path):
    manager = FramesIOManager(base_path=str(tmp_path))
    manager.handle_output(out_ctx("scene_clips"), [clip(1, 3, 10), clip(2, 2, 20)])
    folder = tmp_path / "scene_clips" / "part-000000000001"
    first = version_folders(folder)
    assert len(first) == 1

    manager.handle_output(out_ctx("scene_clips"), [clip(1, 4, 30)])
    manifest = json.loads((folder / "manifest.json").read_text())
    second = manifest["version"]
    # The replaced version stays one more write (a reader of the old manifest can finish).
    assert version_folders(folder) == sorted([first[0], second])
    assert [(i["scene_number"], i["frames"]) for i in manifest["items"]] == [(1, 4)]
    manager.handle_output(out_ctx("scene_clips"), [clip(1, 4, 30)])
    third = json.loads((folder / "manifest.json").read_text())["version"]
    versions = version_folders(folder)
    assert versions == sorted([second, third])
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json", *versions])

    loaded = manager.load_input(in_ctx("scene_clips"))
    assert len(loaded) == 1
    assert loaded[0].scene_number == 1 and loaded[0].fps == 24.0
    np.testing.assert_array_equal(loaded[0].frames, clip(1, 4, 30).frames)  # lossless
    assert loaded[0].info == {"backend": "animatic", "value": 30}


def test_no_keyframes_at_all_round_trip_as_none(tmp_path):
    # A text-to-video model needs no keyframes: the asset's value is an empty list.
    manager = FramesIOManager(base_path=str(tmp_path))
    manager.handle_output(out_ctx("keyframes"), [])
    manager.handle_output(out_ctx("keyframes"), [])
    assert manager.load_input(in_ctx("keyframes")) == []
    assert len(version_folders(tmp_path / "keyframes" / "part-000000000001")) == 2


def test_keyframes_round_trip_losslessly(tmp_path):
    manager = FramesIOManager(base_path=str(tmp_path))
    pixels = np.random.default_rng(1).integers(0, 256, (18, 32, 3), dtype=np.uint8)
    items = [Keyframe(1, Image.fromarray(pixels), {"source": "cards", "seed": 3})]
    manager.handle_output(out_ctx("keyframes"), items)
    loaded = manager.load_input(in_ctx("keyframes"))
    assert loaded[0].scene_number == 1 and loaded[0].info == {"source": "cards", "seed": 3}
    np.testing.assert_array_equal(np.asarray(loaded[0].image), pixels)


def test_scene_mp4_moves_into_the_current_version(tmp_path):
    manager = FramesIOManager(base_path=str(tmp_path / "storage"))
    outputs = []
    for value in (40, 200):
        mp4 = tmp_path / f"scratch-{value}.mp4"
        item = clip(1, 6, value)
        write_lossless(item.frames, mp4, fps=24)  # the scene's own video, its frames' store
        item.mp4_path, item.mp4_lossless = mp4, True
        manager.handle_output(out_ctx("scene_clips"), [item])
        assert not mp4.exists()  # moved, not copied, nor encoded again
        outputs.append(item.mp4_path)
    folder = tmp_path / "storage" / "scene_clips" / "part-000000000001"
    version = json.loads((folder / "manifest.json").read_text())["version"]
    assert outputs[-1] == folder / version / "scene_001" / "clip.mp4"
    assert sorted(p.name for p in outputs[-1].parent.iterdir()) == ["clip.mp4"]  # no PNGs
    assert outputs[0].exists()  # the previous version stays one more write
    loaded = manager.load_input(in_ctx("scene_clips"))[0]
    assert loaded.mp4_path == outputs[-1] and loaded.mp4_lossless
    np.testing.assert_array_equal(loaded.frames, clip(1, 6, 200).frames)
    np.testing.assert_array_equal(read_lossless(loaded.mp4_path, 6), clip(1, 6, 200).frames)
    assert probe_video(loaded.mp4_path).frame_count == 6
    manager.handle_output(out_ctx("scene_clips"), [clip(1, 6, 90)])
    assert not outputs[0].exists()  # ... and then goes with its folder


def test_scene_frames_are_one_lossless_file_read_back_bit_exact(tmp_path):
    manager = FramesIOManager(base_path=str(tmp_path))
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (7, 18, 22, 3), dtype=np.uint8)  # noise: nothing to hide in
    manager.handle_output(out_ctx("scene_clips"), [SceneClip(2, frames.copy(), 12.0, {"n": 1})])
    RECENT_FRAMES.take(manager_store(tmp_path))  # read the file, not what this process holds
    loaded = manager.load_input(in_ctx("scene_clips"))[0]
    np.testing.assert_array_equal(loaded.frames, frames)
    assert (loaded.scene_number, loaded.fps, loaded.info) == (2, 12.0, {"n": 1})
    assert loaded.mp4_path == manager_store(tmp_path) and loaded.mp4_lossless
    assert sorted(p.name for p in loaded.mp4_path.parent.iterdir()) == ["clip.mp4"]


def manager_store(base: Path, scene: int = 2) -> Path:
    folder = base / "scene_clips" / "part-000000000001"
    version = json.loads((folder / "manifest.json").read_text())["version"]
    return folder / version / f"scene_{scene:03d}" / "clip.mp4"


def test_the_next_step_in_this_process_gets_the_stored_frames_without_a_decode(tmp_path):
    manager = FramesIOManager(base_path=str(tmp_path))
    frames = np.random.default_rng(8).integers(0, 256, (4, 10, 12, 3), dtype=np.uint8)
    manager.handle_output(out_ctx("scene_clips"), [SceneClip(2, frames, 12.0, {})])
    first = manager.load_input(in_ctx("scene_clips"))[0].frames
    assert np.shares_memory(first, frames) and not first.flags.writeable  # handed over
    second = manager.load_input(in_ctx("scene_clips"))[0].frames  # taken once: decoded now
    assert not np.shares_memory(second, frames)
    np.testing.assert_array_equal(second, frames)
    # A store file changed since it was written is decoded, never trusted.
    manager.handle_output(out_ctx("scene_clips"), [SceneClip(2, frames, 12.0, {})])
    other = frames[::-1].copy()
    write_lossless(other, manager_store(tmp_path), 12.0)
    np.testing.assert_array_equal(manager.load_input(in_ctx("scene_clips"))[0].frames, other)


def test_versions_written_as_png_frames_are_still_read(tmp_path):
    """A partition stored before the lossless store: ``%06d.png`` per frame and a manifest
    entry without ``store``."""
    frames = np.random.default_rng(6).integers(0, 256, (3, 10, 14, 3), dtype=np.uint8)
    folder = tmp_path / "scene_clips" / "part-000000000001"
    scene_dir = folder / "v-old" / "scene_001"
    scene_dir.mkdir(parents=True)
    for index, frame in enumerate(frames):
        write_png(scene_dir / frame_name(index), frame)
    entry = {"kind": "clip", "scene_number": 1, "fps": 8.0, "frames": 3, "info": {"old": True}}
    manifest = {"version": "v-old", "items": [entry]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    loaded = FramesIOManager(base_path=str(tmp_path)).load_input(in_ctx("scene_clips"))[0]
    np.testing.assert_array_equal(loaded.frames, frames)
    assert loaded.info == {"old": True} and loaded.mp4_path is None and not loaded.mp4_lossless


def test_frames_manager_refuses_unknown_items_and_publishes_nothing(tmp_path):
    manager = FramesIOManager(base_path=str(tmp_path))
    manager.handle_output(out_ctx("scene_clips"), [clip(1, 2, 10)])
    folder = tmp_path / "scene_clips" / "part-000000000001"
    manifest = (folder / "manifest.json").read_bytes()
    not_a_clip = Storyboard.model_validate(write_storyboard("A cat.").model_dump()).scenes[0]
    with pytest.raises(TypeError):
        manager.handle_output(out_ctx("scene_clips"), [clip(1, 2, 99), not_a_clip])
    assert (folder / "manifest.json").read_bytes() == manifest
    assert manager.load_input(in_ctx("scene_clips"))[0].info["value"] == 10


def test_frames_manager_names_the_wrong_type_it_was_given(tmp_path):
    manager = FramesIOManager(base_path=str(tmp_path))
    with pytest.raises(TypeError, match="cannot store str"):
        manager.handle_output(out_ctx("scene_clips"), ["not a clip"])


@pytest.mark.parametrize("key", ["../../etc/x", "..", "../", "/abs/olute", "a/../../b", "x" * 600])
def test_hostile_partition_key_stays_under_base(tmp_path, key):
    base = tmp_path / "storage"
    json_manager = JsonIOManager(base_path=str(base))
    frames_manager = FramesIOManager(base_path=str(base))
    request = PromptRequest(text="a fox in the snow")

    json_manager.handle_output(out_ctx("prompt", key), request)
    frames_manager.handle_output(out_ctx("scene_clips", key), [clip(1, 2, 50)])

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(under(p, base) for p in written)
    assert json_manager.path_for(out_ctx("prompt", key)).name == f"{safe_path_component(key)}.json"
    assert json_manager.load_input(in_ctx("prompt", key, PromptRequest)) == request
    assert len(frames_manager.load_input(in_ctx("scene_clips", key))) == 1


def test_hostile_partition_keys_do_not_collide(tmp_path):
    manager = JsonIOManager(base_path=str(tmp_path))
    keys = ["../../etc/x", "../etc/x", "etc/x", "etc-x"]
    for i, key in enumerate(keys):
        manager.handle_output(out_ctx("prompt", key), PromptRequest(text=f"prompt {i}"))
    for i, key in enumerate(keys):
        assert manager.load_input(in_ctx("prompt", key, PromptRequest)).text == f"prompt {i}"


def test_json_manager_round_trips_a_storyboard(tmp_path):
    manager = JsonIOManager(base_path=str(tmp_path))
    board = write_storyboard("一只熊猫在喝咖啡。A panda drinks coffee.", duration_s=9)
    manager.handle_output(out_ctx("script"), board)
    assert manager.load_input(in_ctx("script", typ=Storyboard)) == board
    path = tmp_path / "script" / "part-000000000001.json"
    assert json.loads(path.read_text(encoding="utf-8"))["scenes"]


def test_unpartitioned_asset_has_a_safe_name(tmp_path):
    manager = JsonIOManager(base_path=str(tmp_path))
    manager.handle_output(out_ctx("prompt", None), PromptRequest(text="x"))
    (path,) = (tmp_path / "prompt").iterdir()
    assert path.name == f"{safe_path_component('__unpartitioned__')}.json"
    assert manager.load_input(in_ctx("prompt", None, PromptRequest)).text == "x"


def test_load_before_materialize_says_so(tmp_path):
    manager = JsonIOManager(base_path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="materialize"):
        manager.load_input(in_ctx("prompt", typ=PromptRequest))


# ---------------------------------------------------------------------------------------
# VideoIOManager


def make_final(tmp_path: Path, name: str, frames: int) -> FinalVideo:
    path = tmp_path / name
    encode_h264([np.full((32, 48, 3), 90, np.uint8)] * frames, path, fps=24, preset="ultrafast")
    return FinalVideo(path, frames / 24, frames, 24.0, 48, 32, {"scenes": 2})


def test_video_manager_moves_the_file_and_writes_a_sidecar(tmp_path):
    base = tmp_path / "storage"
    manager = VideoIOManager(base_path=str(base))
    final = make_final(tmp_path, "final.mp4", 12)
    manager.handle_output(out_ctx("final_video"), final)
    stored = base / "final_video" / "part-000000000001.mp4"
    assert final.path == stored and stored.exists()
    assert not (tmp_path / "final.mp4").exists()
    sidecar = json.loads(stored.with_suffix(".json").read_text())
    assert sidecar["bytes"] == stored.stat().st_size
    loaded = manager.load_input(in_ctx("final_video"))
    assert loaded == FinalVideo(stored, 0.5, 12, 24.0, 48, 32, {"scenes": 2})


def test_video_manager_trusts_the_file_over_a_stale_sidecar(tmp_path):
    """Killed between the mp4 rename and the sidecar rename: the sidecar is the old one."""
    base = tmp_path / "storage"
    manager = VideoIOManager(base_path=str(base))
    manager.handle_output(out_ctx("final_video"), make_final(tmp_path, "old.mp4", 12))
    stored = base / "final_video" / "part-000000000001.mp4"
    newer = make_final(tmp_path, "new.mp4", 36)
    os.replace(newer.path, stored)  # the new mp4 landed, its sidecar did not
    loaded = manager.load_input(in_ctx("final_video"))
    assert loaded.frame_count == 36
    assert loaded.duration_s == pytest.approx(1.5)
    assert (loaded.width, loaded.height) == (48, 32)


def test_video_manager_keeps_hostile_keys_under_base(tmp_path):
    base = tmp_path / "storage"
    manager = VideoIOManager(base_path=str(base))
    manager.handle_output(out_ctx("final_video", "../../etc/x"), make_final(tmp_path, "f.mp4", 6))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 2 and all(under(p, base) for p in written)


# ---------------------------------------------------------------------------------------
# a killed FramesIOManager write


FRAMES_CHILD = textwrap.dedent(
    """
    import os, sys, time, uuid
    import numpy as np
    from dagster import build_output_context
    from vidgen_pipeline.core.clips import SceneClip
    from vidgen_pipeline.io_managers import FramesIOManager

    manager = FramesIOManager(base_path=sys.argv[1])
    context = build_output_context(
        asset_key=["scene_clips"], partition_key="part-000000000001", run_id=str(uuid.uuid4())
    )
    frames = np.full((5, 12, 16, 3), 222, np.uint8)

    def hang(src, dst):
        sys.stdout.write("READY manifest\\n")
        sys.stdout.flush()
        time.sleep(600)

    os.replace = hang  # every frame is written; the manifest is about to be published
    manager.handle_output(context, [SceneClip(1, frames, 24.0, {"value": 222})])
    """
)


@pytest.mark.slow
def test_killed_frames_write_keeps_the_previous_version(tmp_path):
    manager = FramesIOManager(base_path=str(tmp_path))
    manager.handle_output(out_ctx("scene_clips"), [clip(1, 3, 10)])
    folder = tmp_path / "scene_clips" / "part-000000000001"
    (old_version,) = version_folders(folder)

    kill_when_ready([FRAMES_CHILD, str(tmp_path)], 120, "child did not start writing")
    versions = version_folders(folder)
    assert len(versions) == 2 and old_version in versions  # the half-published one is left
    assert json.loads((folder / "manifest.json").read_text())["version"] == old_version
    loaded = manager.load_input(in_ctx("scene_clips"))
    np.testing.assert_array_equal(loaded[0].frames, clip(1, 3, 10).frames)

    # The next successful write sweeps the abandoned folder (the old one stays as previous).
    manager.handle_output(out_ctx("scene_clips"), [clip(1, 2, 77)])
    assert len(version_folders(folder)) == 2 and old_version in version_folders(folder)
    assert manager.load_input(in_ctx("scene_clips"))[0].info["value"] == 77


def test_a_scene_clips_own_audio_round_trips_through_storage_and_the_scene_cache(tmp_path):
    """The sound a model made with a clip (LTX-2) reaches final_video: the frames manager and
    the scene cache keep it beside the frames (16-bit WAV, its rate kept)."""
    from vidgen_pipeline.core.scene_cache import SceneCache

    sound = (0.5 * np.sin(np.arange(2400) / 5)).astype(np.float32)[:, None].repeat(2, axis=1)
    with_audio = clip(1, 3, 10)
    with_audio.audio, with_audio.audio_rate = sound, 24_000
    manager = FramesIOManager(base_path=str(tmp_path / "storage"))
    manager.handle_output(out_ctx("scene_clips"), [with_audio, clip(2, 2, 20)])
    first, silent = manager.load_input(in_ctx("scene_clips"))
    assert first.audio_rate == 24_000 and first.audio.shape == (2400, 2)
    np.testing.assert_allclose(first.audio, sound, atol=1 / 32767)
    assert silent.audio is None and silent.audio_rate is None
    cache = SceneCache(tmp_path / "cache", shared=None)
    cache.put("ab" * 32, with_audio)
    cached = cache.get("ab" * 32)
    assert cached.audio_rate == 24_000
    np.testing.assert_allclose(cached.audio, sound, atol=1 / 32767)
