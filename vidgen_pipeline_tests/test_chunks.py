"""Scenes longer than one clip, and the frame counts a family can make (plain Python)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vidgen_pipeline.core.chunks import plan_chunks, render_chunks
from vidgen_pipeline.families.base import FrameRule

ANY = FrameRule()
WAN = FrameRule(step=4, offset=1, minimum=5)
LTX = FrameRule(step=8, offset=1, minimum=9)
COG = FrameRule(step=4, offset=1, minimum=5, maximum=49)


def test_frame_rules_raise_to_the_next_legal_count():
    assert [WAN.at_least(n) for n in (1, 5, 6, 80, 81, 82)] == [5, 5, 9, 81, 81, 85]
    assert [LTX.at_least(n) for n in (2, 9, 10, 121, 122)] == [9, 9, 17, 121, 129]
    assert [COG.at_least(n) for n in (48, 49, 50, 200)] == [49, 49, 49, 49]  # its longest
    assert [ANY.at_least(n) for n in (1, 2, 7)] == [2, 2, 7]
    assert WAN.at_most(83) == 81 and COG.at_most(60) == 49 and WAN.at_most(2) == 5
    assert WAN.describe() == "4k+1" and COG.describe() == "4k+1 up to 49"
    assert ANY.describe() == "any from 2"
    assert all(WAN.legal(n) for n in (5, 9, 81)) and not WAN.legal(80)


@pytest.mark.parametrize(
    ("frames", "per_clip", "rule", "continues"),
    [
        (6, 4, ANY, True),
        (100, 25, ANY, True),
        (7, 25, ANY, True),
        (100, 81, WAN, True),
        (30, 81, WAN, False),
        (200, 121, LTX, True),
        (3, 49, COG, False),
        (1, 4, ANY, False),
    ],
)
def test_chunks_make_exactly_the_frames_asked_in_legal_clips(frames, per_clip, rule, continues):
    chunks = plan_chunks(frames, per_clip, rule, continues)
    assert sum(c.keep for c in chunks) == frames
    assert all(rule.legal(c.frames) and c.frames <= per_clip for c in chunks)
    assert all(c.skip == (1 if continues and c.index else 0) for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_the_last_clip_makes_only_what_is_still_needed():
    # 6 frames from clips of 4 that continue: 4, then 2 more (+1 repeated, dropped) = 3.
    assert [(c.frames, c.keep) for c in plan_chunks(6, 4, ANY, True)] == [(4, 4), (3, 2)]
    # Wan: 30 frames are one clip of 33 (4k+1), three dropped at the end.
    assert [(c.frames, c.keep) for c in plan_chunks(30, 81, WAN, False)] == [(33, 30)]
    assert [(c.frames, c.skip) for c in plan_chunks(5, 25, ANY, False, first_continues=True)] == [
        (6, 1)
    ]


def reproducing_model(width=8):
    """A stand-in for an image-conditioned model: its first frame is its conditioning image
    (as SVD's and the image-to-video DiTs' are) and every later frame moves on by one."""
    calls = []

    def make(chunk, image):
        start = image if image is not None else np.zeros((4, width, 3), np.uint8)
        calls.append(chunk.frames)
        return np.stack([np.roll(start, shift, axis=1) for shift in range(chunk.frames)])

    return make, calls


def test_no_frame_repeats_at_a_chunk_join():
    make, calls = reproducing_model()
    first = np.zeros((4, 8, 3), np.uint8)
    first[:, 0] = 255
    chunks = plan_chunks(10, 4, ANY, continues=True)
    frames = render_chunks(chunks, make, first, lambda frame: frame)
    assert len(frames) == 10 and calls == [4, 4, 4]
    steps = [int(np.abs(frames[i + 1].astype(int) - frames[i]).sum()) for i in range(9)]
    # Every frame differs from the one before by the same move; a repeated frame would be 0.
    assert min(steps) > 0 and len(set(steps)) == 1
    # Kept from the first frame instead (no extra frame made), every join repeats a frame.
    naive = [replace(c, skip=0, keep=min(c.keep, c.frames)) for c in chunks]
    repeated = render_chunks(naive, make, first, lambda frame: frame)
    diffs = [int(np.abs(repeated[i + 1].astype(int) - repeated[i]).sum()) for i in range(9)]
    assert diffs.count(0) == 2


def test_a_model_that_returns_other_counts_is_caught():
    def wrong(chunk, image):
        return np.zeros((chunk.frames - 1, 2, 2, 3), np.uint8)

    with pytest.raises(RuntimeError, match="asked"):
        render_chunks(plan_chunks(4, 4, ANY, False), wrong, None, lambda f: f)
