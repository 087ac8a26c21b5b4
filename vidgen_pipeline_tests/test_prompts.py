"""The rule-based prompt optimiser: styles, seeds, camera phrases and prompt fitting."""

from __future__ import annotations

import pytest

from vidgen_pipeline.core.prompts import (
    BASE_NEGATIVE,
    DEFAULT_STYLE,
    PROMPT_TOKEN_BUDGET,
    STYLE_PRESETS,
    CameraMotion,
    estimated_tokens,
    fit_prompt,
    optimize_prompts,
    read_camera,
    scene_seed,
)
from vidgen_pipeline.core.storyboard import Storyboard, write_storyboard

STORY = "A boat leaves port. Waves grow. A storm hits! The sun returns."


@pytest.fixture(scope="module")
def board() -> Storyboard:
    return write_storyboard(STORY, duration_s=16, scenes=4)


# ---------------------------------------------------------------------------------------
# styles


@pytest.mark.parametrize("style", sorted(STYLE_PRESETS))
def test_style_preset_words_are_appended(board, style):
    words, negative = STYLE_PRESETS[style]
    result = optimize_prompts(board, style=style, seed=1)
    assert result.style == style
    for scene, source in zip(result.scenes, board.scenes, strict=True):
        assert scene.prompt.startswith(source.description)
        if words:
            assert scene.prompt == f"{source.description}, {words}"
        else:
            assert scene.prompt == source.description
        assert scene.negative_prompt.startswith(BASE_NEGATIVE)
        if negative:
            assert scene.negative_prompt.endswith(negative)
        else:
            assert scene.negative_prompt == BASE_NEGATIVE
        assert scene.truncated is False


def test_default_style_is_used_when_none_is_given(board):
    assert optimize_prompts(board).style == DEFAULT_STYLE
    assert optimize_prompts(board, style="").style == DEFAULT_STYLE
    assert optimize_prompts(board).scenes == optimize_prompts(board, style=DEFAULT_STYLE).scenes


@pytest.mark.parametrize("style", ["vaporwave", "Cinematic", " cinematic", "anime "])
def test_unknown_style_raises_value_error_listing_known_styles(board, style):
    with pytest.raises(ValueError) as info:
        optimize_prompts(board, style=style)
    message = str(info.value)
    assert repr(style) in message
    for known in STYLE_PRESETS:
        assert known in message


# ---------------------------------------------------------------------------------------
# seeds


def test_seeds_are_deterministic_from_one_seed(board):
    first = optimize_prompts(board, seed=1234)
    second = optimize_prompts(board, seed=1234)
    assert first.base_seed == 1234
    assert [s.seed for s in first.scenes] == [s.seed for s in second.scenes]
    assert [s.seed for s in first.scenes] == [scene_seed(1234, n) for n in range(1, 5)]


def test_seeds_are_distinct_across_scenes():
    big = write_storyboard("A fox runs through snow.", duration_s=48, scenes=24)
    for base in (0, 1, 42, 2**31 - 1, -7):
        seeds = [s.seed for s in optimize_prompts(big, seed=base).scenes]
        assert len(seeds) == 24
        assert len(set(seeds)) == 24, base
        assert all(0 <= s < 2**31 for s in seeds)


def test_seeds_change_with_the_base_seed(board):
    a = [s.seed for s in optimize_prompts(board, seed=1).scenes]
    b = [s.seed for s in optimize_prompts(board, seed=2).scenes]
    assert not set(a) & set(b)


def test_a_scene_seed_depends_only_on_base_seed_and_scene_number():
    """Re-running one scene (or editing another scene's text) keeps its seed."""
    one = optimize_prompts(write_storyboard("A cat. A dog. A bird.", duration_s=9), seed=5)
    other = optimize_prompts(write_storyboard("Rain. Snow. Sun. Fog.", duration_s=12), seed=5)
    assert [s.seed for s in one.scenes] == [s.seed for s in other.scenes[:3]]


def test_missing_seed_means_zero(board):
    assert optimize_prompts(board).base_seed == 0
    assert [s.seed for s in optimize_prompts(board).scenes] == [
        s.seed for s in optimize_prompts(board, seed=0).scenes
    ]


# ---------------------------------------------------------------------------------------
# camera


@pytest.mark.parametrize(
    "text,name,fields",
    [
        ("a river, pan left", "pan left", {"pan_x": -0.2, "pan_y": 0.0, "zoom": 1.0}),
        ("the camera pans right slowly", "pan right", {"pan_x": 0.2, "zoom": 1.0}),
        ("a shark, zoom in", "zoom in", {"zoom": 1.3}),
        ("Zooming out over a city", "zoom out", {"zoom": pytest.approx(1 / 1.3)}),
        ("tilt up to the sky", "tilt up", {"pan_y": -0.2}),
        ("tilt down to the road", "tilt down", {"pan_y": 0.2}),
        ("a static shot of a vase", "static", {"zoom": 1.0}),
        ("镜头推近，一只猫", "zoom in", {"zoom": 1.3}),
        ("镜头拉远", "zoom out", {"zoom": pytest.approx(1 / 1.3)}),
        ("向左平移的街景", "pan left", {"pan_x": -0.2}),
        ("固定镜头下的花瓶", "static", {"zoom": 1.0}),
    ],
)
def test_camera_phrases_map_to_motion(text, name, fields):
    camera = read_camera(text)
    assert camera.recognised is True
    assert camera.name == name
    assert camera.speed == 1.0
    for key, value in fields.items():
        assert getattr(camera, key) == value, key


def test_slow_motion_sets_speed():
    camera = read_camera("waves on sand, in super slow motion")
    assert camera.recognised is True
    assert camera.speed == 0.5
    assert camera.name == "slow push in, slow motion"
    assert camera.zoom == CameraMotion().zoom  # the default push in, slowed


def test_slow_motion_combines_with_a_named_move():
    camera = read_camera("pan left in slow motion")
    assert camera.name == "pan left, slow motion"
    assert camera.pan_x == -0.2 and camera.speed == 0.5
    assert read_camera("慢动作，镜头推近").name == "zoom in, slow motion"


@pytest.mark.parametrize("text", ["A dog, ecstatic, runs", "a Japan leftover", "zoomingly inward"])
def test_camera_words_inside_other_words_are_not_camera_moves(text):
    assert read_camera(text).recognised is False


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("春天的美丽海滨，推镜头", "zoom in"),
        ("春天的美丽海滨，拉镜头", "zoom out"),
        ("上海外滩，向左移镜头", "pan left"),
        ("上海外滩，向上移镜头", "tilt up"),
        ("上海外滩，向下移镜头", "tilt down"),
        ("沙漠中的绿洲的静态视图", "static"),
        ("In a still frame, a stop sign", "static"),
        ("上海外滩，慢速播放", "slow push in, slow motion"),
    ],
)
def test_vbench_camera_phrases_in_both_languages(text, name):
    camera = read_camera(text)
    assert camera.recognised and camera.name == name


def test_no_camera_phrase_gives_the_unrecognised_default():
    camera = read_camera("a cat sleeps on a warm windowsill")
    assert camera == CameraMotion()
    assert camera.recognised is False


def test_optimize_prompts_reads_the_camera_of_each_scene():
    board = Storyboard(
        title="t",
        language="en",
        target_duration_s=6,
        scenes=[
            {"scene_number": 1, "description": "a road, pan left", "duration_s": 2},
            {"scene_number": 2, "description": "a tower, zoom in", "duration_s": 2},
            {"scene_number": 3, "description": "a lake at dawn", "duration_s": 2},
        ],
    )
    names = [s.camera.name for s in optimize_prompts(board).scenes]
    assert names == ["pan left", "zoom in", "slow push in"]


# ---------------------------------------------------------------------------------------
# fitting prompts


def test_short_prompt_is_unchanged():
    assert fit_prompt("a cat on a mat") == ("a cat on a mat", False)
    text = "一只猫" * 20
    assert fit_prompt(text) == (text, False)


def _whole_words_only(fitted: str, text: str) -> bool:
    """The cut falls between units: what follows in ``text`` is a separator or a CJK char."""
    assert text.startswith(fitted)
    rest = text[len(fitted) :]
    return not rest or not (fitted[-1].isalnum() and rest[0].isascii() and rest[0].isalnum())


@pytest.mark.parametrize("count", [60, 80, 300])
def test_long_english_prompt_is_cut_at_a_word_and_marked(count):
    words = [f"{'supercalifragilistic'[: 3 + i % 15]}{i}" for i in range(count)]
    text = " ".join(words)
    fitted, truncated = fit_prompt(text)
    assert truncated is True
    assert estimated_tokens(fitted) <= PROMPT_TOKEN_BUDGET
    assert fitted.split() == words[: len(fitted.split())]  # every word whole
    assert len(fitted.split()) >= 30  # and the budget is used, not wasted
    assert _whole_words_only(fitted, text)


def test_cut_drops_trailing_separator_punctuation():
    text = " ".join(["word,"] * 100)
    fitted, truncated = fit_prompt(text)
    assert truncated and not fitted.endswith(",")


def test_mixed_chinese_and_english_is_never_cut_inside_a_word():
    text = "一只熊" * 12 + " playing guitar in the park at sunset with friends" * 5
    fitted, truncated = fit_prompt(text)
    assert truncated
    assert _whole_words_only(fitted, text)
    assert estimated_tokens(fitted) <= PROMPT_TOKEN_BUDGET


def test_long_chinese_prompt_is_cut_at_punctuation_and_marked():
    text = "一只熊在公园里弹吉他，" * 10
    fitted, truncated = fit_prompt(text)
    assert truncated is True
    assert estimated_tokens(fitted) <= PROMPT_TOKEN_BUDGET
    assert text.startswith(fitted)
    assert text[len(fitted)] == "，"  # the cut is at a comma (which is then dropped)


def test_long_chinese_prompt_without_punctuation_is_cut_to_the_budget():
    assert fit_prompt("熊" * 200) == ("熊" * PROMPT_TOKEN_BUDGET, True)


def test_optimized_long_scene_is_truncated_and_drops_style_first():
    description = " ".join(f"w{i}" for i in range(120))
    board = Storyboard(
        title="t",
        language="en",
        target_duration_s=2,
        scenes=[{"scene_number": 1, "description": description, "duration_s": 2}],
    )
    scene = optimize_prompts(board, style="anime").scenes[0]
    assert scene.truncated is True
    assert description.startswith(scene.prompt)
    assert "anime" not in scene.prompt


def test_style_words_are_cut_whole_when_the_scene_fits():
    description = " ".join(f"w{i}" for i in range(45))
    board = Storyboard(
        title="t",
        language="en",
        target_duration_s=2,
        scenes=[{"scene_number": 1, "description": description, "duration_s": 2}],
    )
    scene = optimize_prompts(board, style="cinematic").scenes[0]
    full = f"{description}, {STYLE_PRESETS['cinematic'][0]}"
    assert scene.truncated is True
    assert scene.prompt.startswith(description + ", cinematic")
    assert _whole_words_only(scene.prompt, full)
