"""Finishing on synthetic frames with known motion: interpolation, frame-rate conversion,
transitions and assembly, H.264 rate control and WebVTT sidecars."""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest

from vidgen_pipeline.core.finishing.assembly import fit_frames, iter_assemble, output_size
from vidgen_pipeline.core.finishing.flow import interpolate
from vidgen_pipeline.core.finishing.inputs import FinishingError
from vidgen_pipeline.core.finishing.timing import (
    cut_frames,
    frames_needed,
    interpolation_factor,
    resample,
    scene_cues,
    scene_frame_counts,
    to_rate,
    total_frames,
    transition_frames,
)
from vidgen_pipeline.core.media import (
    MediaError,
    bitrate_kbps,
    encode_h264,
    probe_video,
    rate_control_args,
    read_frames,
    webvtt_text,
    write_webvtt,
)


def assemble(*args, **kwargs) -> np.ndarray:
    """The whole video at once: ``iter_assemble``'s frames, stacked."""
    return np.stack(list(iter_assemble(*args, **kwargs)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def texture(height: int, width: int, seed: int, sigma: float = 2.5) -> np.ndarray:
    """Smooth random colour texture spanning 0..255 (like a photo's detail, not pixel noise)."""
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
    return cv2.normalize(blurred, None, 0, 255, cv2.NORM_MINMAX)


def panning(count: int, dx: int, dy: int, height: int = 192, width: int = 256) -> np.ndarray:
    """A camera panning over a texture: the picture moves by (-dx, -dy) px each frame."""
    big = texture(height + abs(dy) * count + 2, width + abs(dx) * count + 2, seed=1)
    return np.stack(
        [
            big[i * abs(dy) : i * abs(dy) + height, i * abs(dx) : i * abs(dx) + width]
            for i in range(count)
        ]
    )


def moving_square(count: int, step: int, height: int = 192, width: int = 256) -> np.ndarray:
    """A textured square sliding right by ``step`` px a frame over a still textured ground:
    it hides and uncovers ground at its edges (occlusion)."""
    ground, patch = texture(height, width, seed=2), texture(64, 64, seed=3)
    frames = np.repeat(ground[None], count, axis=0)
    for i in range(count):
        x = 40 + i * step
        frames[i, 60:124, x : x + 64] = patch
    return frames


def labelled_scene(scene: int, count: int, height: int = 36, width: int = 64) -> np.ndarray:
    """Flat frames whose red channel names the scene (40, 100, 160, ...) and green channel
    counts the frame within the scene, so the assembled video says what it shows where."""
    frames = np.zeros((count, height, width, 3), np.uint8)
    frames[..., 0] = 40 + 60 * scene
    frames[..., 1] = np.arange(count, dtype=np.uint8)[:, None, None]
    frames[..., 2] = 128
    return frames


# ---------------------------------------------------------------------------------------
# interpolation


@pytest.mark.parametrize(
    "name,clip",
    [
        ("pan 4 px", panning(3, 4, 0)),
        ("pan 5,2 px", panning(3, 5, 2)),
        ("square 4 px", moving_square(3, 4)),
        ("square 6 px", moving_square(3, 6)),
        ("square 8 px", moving_square(3, 8)),
    ],
)
def test_flow_lands_closer_to_the_true_middle_frame_than_blending(name, clip):
    """Drop the middle frame, rebuild it from its neighbours, compare with the truth."""
    neighbours = clip[[0, 2]]
    flow = interpolate(neighbours, 2, "flow")
    blend = interpolate(neighbours, 2, "blend")
    flow_psnr, blend_psnr = psnr(flow[1], clip[1]), psnr(blend[1], clip[1])
    print(f"{name}: flow PSNR {flow_psnr:.2f} dB, blend PSNR {blend_psnr:.2f} dB")
    assert flow_psnr > blend_psnr + 3
    assert flow_psnr > 29
    # The neighbours themselves are kept untouched.
    assert np.array_equal(flow[0], clip[0]) and np.array_equal(flow[2], clip[2])


def test_flow_follows_motion_at_every_in_between_time():
    clip = panning(5, 2, 0)  # 2 px a frame: frames 0 and 4 are 8 px apart
    out = interpolate(clip[[0, 4]], 4, "flow")
    for index in range(1, 4):
        assert psnr(out[index], clip[index]) > 32, index


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
@pytest.mark.parametrize("method", ["flow", "blend"])
def test_output_length_and_originals_in_place(factor, method):
    clip = panning(4, 3, 1, height=48, width=64)
    out = interpolate(clip, factor, method)
    assert out.shape == ((4 - 1) * factor + 1, 48, 64, 3)
    assert out.dtype == np.uint8
    assert np.array_equal(out[::factor], clip)


def test_factor_one_and_single_frame_are_unchanged():
    clip = panning(3, 2, 0, height=32, width=48)
    assert np.array_equal(interpolate(clip, 1), clip)
    assert np.array_equal(interpolate(clip[:1], 4), clip[:1])


def test_blend_is_a_plain_cross_blend():
    dark, light = np.full((1, 8, 8, 3), 0, np.uint8), np.full((1, 8, 8, 3), 200, np.uint8)
    out = interpolate(np.concatenate([dark, light]), 4, "blend")
    assert [int(f[0, 0, 0]) for f in out] == [0, 50, 100, 150, 200]


@pytest.mark.parametrize("factor", [0, 5, 10, -1, 2.0, True, "2"])
def test_bad_interpolation_factors_are_refused(factor):
    with pytest.raises(FinishingError, match="factor"):
        interpolate(panning(2, 1, 0, height=16, width=16), factor)


def test_bad_interpolation_input_is_refused():
    with pytest.raises(FinishingError, match="method"):
        interpolate(panning(2, 1, 0, height=16, width=16), 2, "magic")
    with pytest.raises(FinishingError, match="uint8"):
        interpolate(np.zeros((2, 16, 16, 3), np.float32), 2)
    with pytest.raises(FinishingError, match="no frames"):
        interpolate(np.zeros((0, 16, 16, 3), np.uint8), 2)
    assert issubclass(FinishingError, ValueError)


@pytest.mark.parametrize(
    "native,target,factor",
    [
        (7, 24, 4),
        (8, 24, 3),
        (6, 24, 4),
        (12.1, 24, 2),
        (12, 24, 2),
        (24, 24, 1),
        (30, 24, 1),
        (1, 60, 4),
    ],
)
def test_interpolation_factor(native, target, factor):
    assert interpolation_factor(native, target) == factor


@pytest.mark.parametrize("fps", [0, -7, float("nan"), None])
def test_interpolation_factor_refuses_bad_rates(fps):
    with pytest.raises(FinishingError, match="fps"):
        interpolation_factor(fps, 24)


# ---------------------------------------------------------------------------------------
# frame-rate conversion


def test_resample_spreads_picks_evenly():
    clip = labelled_scene(0, 10)
    picks = [int(f[0, 0, 1]) for f in resample(clip, 5)]
    assert picks == [1, 3, 5, 7, 9]
    picks = [int(f[0, 0, 1]) for f in resample(clip, 20)]
    assert picks == [i // 2 for i in range(20)]
    assert resample(clip, 10) is clip
    with pytest.raises(FinishingError):
        resample(clip, 0)


def test_to_rate_interpolates_then_fills_the_count():
    clip = panning(14, 3, 0, height=32, width=48)
    out = to_rate(clip, 7, 24, method="blend")
    assert out.shape[0] == 48
    # Factor 4 then drop to 24: most frames are in-betweens, not copies of an original.
    copies = sum(any(np.array_equal(f, o) for o in clip) for f in out)
    assert copies < 20
    assert len(to_rate(clip, 7, 24, method=None, count=50)) == 50


# ---------------------------------------------------------------------------------------
# frame counts and assembly

DURATIONS = [1.3, 0.9, 2.05]  # 31.2 + 21.6 + 49.2 frames at 24 fps: rounding on one grid
FPS = 24


def test_storyboard_grid_sums_to_the_total():
    counts = scene_frame_counts(DURATIONS, FPS)
    assert counts == [31, 22, 49]
    assert total_frames(DURATIONS, FPS) == sum(counts) == round(sum(DURATIONS) * FPS) == 102
    assert cut_frames(DURATIONS, FPS) == [31, 53]


@pytest.mark.parametrize("transition_s,k", [(0.5, 12), (0.25, 6), (0.3, 7), (1 / 24, 1)])
def test_frames_needed_adds_handles_for_the_dissolves(transition_s, k):
    counts = scene_frame_counts(DURATIONS, FPS)
    needed = frames_needed(DURATIONS, FPS, "crossfade", transition_s)
    head, tail = k // 2, k - k // 2
    assert needed == [counts[0] + tail, counts[1] + head + tail, counts[2] + head]
    assert sum(needed) == sum(counts) + (len(counts) - 1) * k
    assert frames_needed(DURATIONS, FPS, "cut", transition_s) == counts  # a cut ignores it


@pytest.mark.parametrize(
    "transition,transition_s", [("cut", 0.0), ("crossfade", 0.5), ("crossfade", 0.3)]
)
def test_assembled_video_has_the_storyboard_frame_count_and_layout(transition, transition_s):
    needed = frames_needed(DURATIONS, FPS, transition, transition_s)
    scenes = [labelled_scene(i, n) for i, n in enumerate(needed)]
    video = assemble(scenes, FPS, DURATIONS, transition, transition_s)
    assert len(video) == total_frames(DURATIONS, FPS) == 102

    k = transition_frames(FPS, transition, transition_s)
    head, tail = k // 2, k - k // 2
    counts, cuts = scene_frame_counts(DURATIONS, FPS), cut_frames(DURATIONS, FPS)
    starts = [0, *cuts]
    reds = [int(f[0, 0, 0]) for f in video]
    for i, start in enumerate(starts):
        # Scene i's storyboard frame 0 (its frame ``head`` after the first) is on screen at
        # its storyboard start; alone from ``tail`` frames after it until ``head`` before
        # its end.
        own = [p for p in range(start, start + counts[i]) if reds[p] == 40 + 60 * i]
        solo_from = start + (tail if i else 0)
        solo_to = start + counts[i] - (head if i < len(starts) - 1 else 0)
        assert own == list(range(solo_from, solo_to))
        for p in own:
            assert int(video[p, 0, 0, 1]) == p - start + (head if i else 0)
    mixed = [p for p, red in enumerate(reds) if (red - 40) % 60]
    assert len(mixed) == k * (len(DURATIONS) - 1)  # exactly k dissolve frames per cut
    for cut in cuts:  # each dissolve is centred on its cut
        window = [p for p in mixed if cut - head <= p < cut + tail]
        assert window == list(range(cut - head, cut + tail))
        ramp = [reds[p] for p in window]
        assert ramp == sorted(ramp) and len(set(ramp)) == len(ramp)  # a steady dissolve


def test_crossfade_of_one_frame_is_half_and_half():
    needed = frames_needed([1, 1], 10, "crossfade", 0.1)
    assert needed == [11, 10]
    video = assemble([labelled_scene(0, 11), labelled_scene(1, 10)], 10, [1, 1], "crossfade", 0.1)
    assert len(video) == 20
    assert [int(f[0, 0, 0]) for f in video[9:12]] == [40, 70, 100]


def test_iter_assemble_streams_the_storyboard_frame_count():
    needed = frames_needed(DURATIONS, FPS, "crossfade", 0.5)
    scenes = [labelled_scene(i, n) for i, n in enumerate(needed)]
    frames = iter_assemble(scenes, FPS, DURATIONS, "crossfade", 0.5, fade_in_s=0.2)
    streamed = list(frames)
    assert len(streamed) == 102


def test_fades_reach_black():
    needed = frames_needed([1, 1], 24, "crossfade", 0.25)
    scenes = [np.full((n, 16, 16, 3), 200, np.uint8) for n in needed]
    video = assemble(scenes, 24, [1, 1], "crossfade", 0.25, fade_in_s=0.5, fade_out_s=0.25)
    levels = [int(f.max()) for f in video]
    assert len(video) == 48
    assert levels[0] == 0 and levels[-1] == 0
    assert levels[6] == 100  # halfway through the 12-frame fade in
    assert levels[:12] == sorted(levels[:12]) and levels[12:42] == [200] * 30
    assert levels[-6:] == sorted(levels[-6:], reverse=True) and levels[-7] == 200
    assert all(int(f.min()) == level for f, level in zip(video, levels, strict=True))


def test_scenes_of_other_sizes_are_fitted_to_the_first():
    first = np.full((4, 54, 96, 3), 90, np.uint8)
    square = np.full((4, 64, 64, 3), 200, np.uint8)
    video = assemble([first, square], 4, [1, 1])
    assert video.shape == (8, 54, 96, 3)
    pillarboxed = video[4]
    assert int(pillarboxed[:, :20].max()) == 0 and int(pillarboxed[:, -20:].max()) == 0
    assert int(pillarboxed[:, 22:74].min()) == 200  # 64x64 scaled to 54x54, centred
    wide = fit_frames(np.full((1, 10, 40, 3), 255, np.uint8), (20, 20))
    assert int(wide[0, :7].max()) == 0 and int(wide[0, 8:12].min()) == 255  # letterbox


def test_odd_sizes_are_made_even_or_refused():
    odd = panning(4, 1, 0, height=55, width=97)
    video = assemble([odd, odd], 4, [1, 1])
    assert video.shape[1:3] == (54, 96)
    assert np.array_equal(video[0], odd[0, :54, :96])  # cropped, not rescaled
    assert output_size([odd], (80, 40)) == (80, 40)
    for size in [(81, 40), (80, 41), (0, 40), (2.0, 4)]:
        with pytest.raises(FinishingError, match="even"):
            assemble([odd, odd], 4, [1, 1], size=size)
    with pytest.raises(FinishingError, match="too small"):
        assemble([np.zeros((4, 1, 5, 3), np.uint8)], 4, [1])


def test_scenes_at_a_native_rate_are_converted_per_scene():
    fps, durations = 24, [1.5, 2.0]
    needed = frames_needed(durations, fps, "crossfade", 0.25)
    # What a model at 8 fps renders for each scene: the same duration, at least 2 frames.
    native = [max(2, math.ceil(n * 8 / fps - 1e-9)) for n in needed]
    scenes = [panning(n, 2, 0, height=32, width=48) for n in native]
    video = assemble(
        scenes, fps, durations, "crossfade", 0.25, scene_fps=[8, 8], interpolation="blend"
    )
    assert len(video) == total_frames(durations, fps) == 84


def test_a_scene_of_the_wrong_length_is_stretched_to_its_slot():
    video = assemble([labelled_scene(0, 5), labelled_scene(1, 20)], 10, [1, 1])
    assert len(video) == 20
    assert [int(f[0, 0, 1]) for f in video[:10]] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"transition": "crossfade", "transition_s": -0.5}, "0 or more"),
        ({"transition": "cut", "transition_s": -1}, "0 or more"),
        ({"transition": "crossfade", "transition_s": 1.5}, "longer than scene 2"),
        ({"transition": "wipe"}, "not one of cut, crossfade"),
        ({"fade_in_s": -1}, "fade_in_s"),
        ({"fade_out_s": 9}, "longer than the video"),
        ({"size": (63, 36)}, "even"),
        ({"scene_fps": [8]}, "frame rates"),
        ({"scene_fps": [8, 0]}, "scene 2's fps"),
        ({"interpolation": "optical"}, "interpolation"),
    ],
)
def test_bad_assembly_input_is_refused_with_a_clear_message(kwargs, message):
    durations = [2.0, 1.0]
    scenes = [labelled_scene(i, 16) for i in range(2)]
    with pytest.raises(FinishingError, match=message):
        iter_assemble(scenes, 8, durations, **kwargs)  # refused before any frame is made


def test_bad_scenes_are_refused():
    good = labelled_scene(0, 8)
    with pytest.raises(FinishingError, match="single frame"):
        assemble([good, labelled_scene(1, 1)], 8, [1, 1])
    with pytest.raises(FinishingError, match="2 scenes but 3 durations"):
        assemble([good, good], 8, [1, 1, 1])
    with pytest.raises(FinishingError, match="scene 2 must be RGB uint8"):
        assemble([good, good[..., :2]], 8, [1, 1])
    with pytest.raises(FinishingError, match="scene 2 has no frames"):
        assemble([good, good[:0]], 8, [1, 1])
    with pytest.raises(FinishingError, match="no frame at"):
        frames_needed([1, 0.01], 8)
    with pytest.raises(FinishingError, match="above 0"):
        frames_needed([1, -2], 8)
    with pytest.raises(FinishingError, match="empty"):
        frames_needed([], 8)
    # A one-frame scene that only has to fill one frame is fine.
    assert len(assemble([good, labelled_scene(1, 1)], 8, [1, 0.125])) == 9


def test_a_single_scene_ignores_the_crossfade():
    assert frames_needed([0.5], 24, "crossfade", 2.0) == [12]


def test_scene_cues_follow_the_storyboard():
    assert scene_cues([1.5, 2], ["a", "b"]) == [(0.0, 1.5, "a"), (1.5, 3.5, "b")]
    with pytest.raises(FinishingError):
        scene_cues([1], ["a", "b"])


# ---------------------------------------------------------------------------------------
# encoding settings


def test_rate_control_arguments():
    assert rate_control_args() == ["-preset", "medium", "-crf", "18"]
    args = rate_control_args(preset="fast", bitrate="5000k")
    assert args == ["-preset", "fast", "-b:v", "5000k", "-maxrate", "7500k", "-bufsize", "10000k"]
    assert bitrate_kbps("5M") == bitrate_kbps("5000k") == 5000
    assert bitrate_kbps("2.5M") == 2500


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"crf": -1}, "crf"),
        ({"crf": 52}, "crf"),
        ({"crf": "18"}, "crf"),
        ({"crf": True}, "crf"),
        ({"crf": 18.5}, "crf"),
        ({"preset": "turbo"}, "x264 preset"),
        ({"bitrate": "5000"}, "bitrate"),
        ({"bitrate": "fast"}, "bitrate"),
        ({"bitrate": "-5k"}, "bitrate"),
        ({"bitrate": "0k"}, "bitrate"),
        ({"fps": 0}, "fps"),
    ],
)
def test_bad_encoding_settings_raise_media_error(tmp_path, kwargs, message):
    options = {"fps": 24, **kwargs}
    frames = panning(2, 1, 0, height=16, width=16)
    with pytest.raises(MediaError, match=message):
        encode_h264(frames, tmp_path / "bad.mp4", **options)
    assert not (tmp_path / "bad.mp4").exists()


def test_encode_at_a_bitrate_is_browser_ready_and_follows_the_bitrate(tmp_path):
    frames = panning(24, 6, 2, height=144, width=256)
    sizes = {}
    for bitrate in ["100k", "2000k"]:
        path = tmp_path / f"{bitrate}.mp4"
        assert encode_h264(frames, path, fps=24, preset="ultrafast", bitrate=bitrate) == 24
        facts = probe_video(path)
        assert (facts.codec, facts.pix_fmt, facts.faststart) == ("h264", "yuv420p", True)
        assert facts.frame_count == 24 and facts.duration_s == pytest.approx(1.0)
        sizes[bitrate] = path.stat().st_size
    assert sizes["2000k"] > 3 * sizes["100k"]
    decoded = np.stack(list(read_frames(tmp_path / "2000k.mp4")))
    assert psnr(decoded, frames) > 30


# ---------------------------------------------------------------------------------------
# WebVTT


def test_webvtt_document():
    text = webvtt_text([(1.5, 3725.25, "Second"), (0, 1.5, "A bear --> a <guitar> & a song")])
    assert text == (
        "WEBVTT\n\n"
        "1\n00:00:00.000 --> 00:00:01.500\nA bear --&gt; a &lt;guitar&gt; &amp; a song\n\n"
        "2\n00:00:01.500 --> 01:02:05.250\nSecond\n"
    )


def test_webvtt_text_keeps_each_cue_whole():
    text = webvtt_text([(0, 2, "line one\n\n\n  line two  \r\n\nline three")])
    assert text.endswith("00:00:00.000 --> 00:00:02.000\nline one\nline two\nline three\n")
    assert text.count("\n\n") == 1  # only between the header and the cue


@pytest.mark.parametrize("cue", [(-1, 2, "x"), (2, 2, "x"), (3, 2, "x")])
def test_webvtt_refuses_bad_times(cue):
    with pytest.raises(MediaError, match="start < end"):
        webvtt_text([cue])


def test_write_webvtt_is_atomic_and_utf8(tmp_path):
    path = tmp_path / "video.vtt"
    cues = scene_cues([2, 3], ["一只熊在公园里弹吉他。", "The bear bows."])
    assert write_webvtt(path, cues) == path
    assert path.read_text(encoding="utf-8") == webvtt_text(cues)
    assert "00:00:02.000 --> 00:00:05.000" in path.read_text(encoding="utf-8")
    with pytest.raises(MediaError):
        write_webvtt(path, [(5, 1, "backwards")])
    assert path.read_text(encoding="utf-8") == webvtt_text(cues)  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video.vtt"]


@pytest.mark.parametrize(
    "height,width", [(2, 2), (8, 8), (1, 7), (33, 1000), (17, 300), (20, 1000), (1000, 20)]
)
def test_flow_copes_with_tiny_and_thin_frames(height, width):
    clip = np.random.default_rng(0).integers(0, 256, (3, height, width, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NaN casts from a flow that could not be computed
        out = interpolate(clip, 3)
    assert out.shape == (7, height, width, 3)
    assert np.array_equal(out[::3], clip)
