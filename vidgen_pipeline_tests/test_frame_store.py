"""The lossless store of a finished scene's frames (one H.264 RGB file per scene) and the
scene cache on it: every pixel back exactly, damage found, entries made before it (PNG
frames) still read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.frame_store import (
    FrameStoreError,
    read_lossless,
    write_lossless,
)
from vidgen_pipeline.core.media import encode_h264, probe_video
from vidgen_pipeline.core.scene_cache import ENTRY, SceneCache, frame_name, write_png


def noise(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), np.uint8)


@pytest.mark.parametrize("shape", [(1, 8, 8), (5, 7, 9), (9, 36, 64)])
def test_frames_come_back_bit_exact_at_any_size(tmp_path, shape):
    frames = noise(*shape)
    path = tmp_path / "clip.mp4"
    assert write_lossless(iter(frames), path, 24.0) == shape[0]
    np.testing.assert_array_equal(read_lossless(path, shape[0]), frames)
    np.testing.assert_array_equal(read_lossless(path), frames)
    # It is the scene's own video too: an mp4 that decodes, at the clip's rate.
    facts = probe_video(path)
    assert (facts.codec, facts.frame_count, facts.fps) == ("h264", shape[0], 24.0)


def test_a_cut_off_or_lossy_file_is_refused(tmp_path):
    frames = noise(6, 16, 16)
    path = tmp_path / "clip.mp4"
    write_lossless(frames, path, 8.0)
    with pytest.raises(FrameStoreError, match="holds 6 frames, expected 7"):
        read_lossless(path, 7)
    lossy = tmp_path / "lossy.mp4"
    encode_h264(frames, lossy, 8.0, preset="ultrafast")  # yuv420p: not the frames exactly
    with pytest.raises(FrameStoreError, match="not a lossless RGB store"):
        read_lossless(lossy, 6)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(FrameStoreError):
        read_lossless(path, 6)


def test_bad_frames_are_refused_before_a_file_is_left(tmp_path):
    with pytest.raises(FrameStoreError, match="no frames"):
        write_lossless([], tmp_path / "none.mp4", 8.0)
    with pytest.raises(FrameStoreError, match="uint8"):
        write_lossless([np.zeros((4, 4, 3), np.float32)], tmp_path / "float.mp4", 8.0)
    with pytest.raises(FrameStoreError, match="the first was"):
        write_lossless(
            [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 6, 3), np.uint8)],
            tmp_path / "two.mp4",
            8.0,
        )


def test_a_cache_entry_is_one_lossless_file_and_its_mp4_moves_in(tmp_path):
    cache = SceneCache(tmp_path / "cache", shared=None)
    frames = noise(4, 12, 20, seed=3)
    scratch = tmp_path / "scene_001.mp4"
    write_lossless(frames, scratch, 12.0)
    clip = SceneClip(1, frames.copy(), 12.0, {"backend": "test"}, scratch, mp4_lossless=True)
    stored = cache.put("cd" * 32, clip)
    folder = cache.folder("cd" * 32)
    assert not scratch.exists()  # moved in: the frames were encoded once
    assert sorted(p.name for p in folder.iterdir()) == ["clip.mp4", ENTRY]
    assert stored.mp4_path == folder / "clip.mp4" and stored.mp4_lossless
    hit = cache.get("cd" * 32)
    np.testing.assert_array_equal(hit.frames, frames)
    assert hit.mp4_lossless and hit.source_dir == folder and hit.info["cache"] == "reused"


def test_a_cache_entry_made_before_the_lossless_store_is_still_a_hit(tmp_path):
    cache = SceneCache(tmp_path / "cache", shared=None)
    key = "ef" * 32
    frames = noise(3, 10, 14, seed=4)
    folder = cache.folder(key)
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        write_png(folder / frame_name(index), frame)
    encode_h264(frames, folder / "clip.mp4", 8.0, preset="ultrafast")  # the old viewing mp4
    entry = {"scene_number": 2, "fps": 8.0, "frames": 3, "info": {"backend": "test"}}
    (folder / ENTRY).write_text(json.dumps(entry))
    hit = cache.get(key)
    np.testing.assert_array_equal(hit.frames, frames)
    # Its mp4 is a lossy viewing copy, so storage must write the frames, not link it.
    assert hit.scene_number == 2 and hit.mp4_path == folder / "clip.mp4"
    assert not hit.mp4_lossless
