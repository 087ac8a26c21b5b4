"""The rule-based storyboard writer: sentences, durations, clamping, and the VBench suite."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest

from vidgen_pipeline.core.prompts import (
    PROMPT_TOKEN_BUDGET,
    estimated_tokens,
    fit_prompt,
    optimize_prompts,
    read_camera,
)
from vidgen_pipeline.core.storyboard import (
    MAX_DURATION_S,
    MAX_SCENES,
    MIN_DURATION_S,
    MIN_SCENE_S,
    Storyboard,
    detect_language,
    split_duration,
    split_sentences,
    write_storyboard,
)
from vidgen_pipeline_tests.conftest import dataset


def total(storyboard: Storyboard) -> float:
    return sum(scene.duration_s for scene in storyboard.scenes)


# ---------------------------------------------------------------------------------------
# sentences


def test_split_sentences_english():
    text = "A cat sleeps. A dog barks! Is it raining? Yes; it is.\nA new line"
    assert split_sentences(text) == [
        "A cat sleeps.",
        "A dog barks!",
        "Is it raining?",
        "Yes;",
        "it is.",
        "A new line",
    ]


def test_split_sentences_keeps_decimals_and_inner_dots():
    assert split_sentences("Version 3.5 ships today. Visit example.com now.") == [
        "Version 3.5 ships today.",
        "Visit example.com now.",
    ]


def test_split_sentences_chinese():
    text = "一只猫在睡觉。狗在叫！下雨了吗？是的；下雨了。"
    assert split_sentences(text) == [
        "一只猫在睡觉。",
        "狗在叫！",
        "下雨了吗？",
        "是的；",
        "下雨了。",
    ]


def test_split_sentences_chinese_comma_does_not_split():
    assert split_sentences("一只熊猫在巴黎的咖啡馆喝咖啡，推镜头") == [
        "一只熊猫在巴黎的咖啡馆喝咖啡，推镜头"
    ]


def test_split_sentences_mixed_and_blank_lines():
    text = "猫在睡觉。The dog runs.  狗在叫！\r\n\r\n\n  Last one  "
    assert split_sentences(text) == ["猫在睡觉。", "The dog runs.", "狗在叫！", "Last one"]


def test_split_sentences_drops_punctuation_only_pieces():
    assert split_sentences("... !!! 。。。") == []
    assert split_sentences("Hello. ... World!") == ["Hello.", "World!"]


def test_split_sentences_keeps_every_word_in_order():
    text = "One two. Three four! Five? 六七。八九！Ten"
    joined = "".join(split_sentences(text))
    assert re.sub(r"\s", "", joined) == re.sub(r"\s", "", text)


# ---------------------------------------------------------------------------------------
# language


@pytest.mark.parametrize(
    "text,expected",
    [
        ("a cat on a mat", "en"),
        ("一只猫坐在垫子上", "zh"),
        ("一只熊猫在巴黎的咖啡馆喝咖啡，DJ", "zh"),
        ("Tokyo at night with a 东京 sign and lots of English words here", "en"),
        ("12345 !!!", "en"),
        ("", "en"),
        ("🐱🚀", "en"),
    ],
)
def test_detect_language(text, expected):
    assert detect_language(text) == expected


def test_storyboard_language_and_shot_words_follow_the_text():
    zh = write_storyboard("一只熊猫在喝咖啡", duration_s=12)
    assert zh.language == "zh"
    assert len(zh.scenes) == 3
    assert all("熊猫" in s.description for s in zh.scenes)
    assert zh.scenes[-1].description.endswith("结尾远景")
    en = write_storyboard("A panda drinks coffee.", duration_s=12)
    assert en.language == "en"
    assert en.scenes[0].description == "A panda drinks coffee, wide establishing shot"
    assert en.scenes[-1].description.endswith("final wide shot")


# ---------------------------------------------------------------------------------------
# durations


TEXTS = {
    "one_sentence": "A lighthouse on a cliff at dusk.",
    "four_sentences": "A boat leaves port. Waves grow. A storm hits! The sun returns.",
    "uneven": "Short. " + "A much longer sentence with many words in it. " * 3 + "End.",
    "chinese": "一只猫在睡觉。狗在叫！下雨了。天晴了。",
    "long": "A calm lake at dawn. " * 60,
}
TARGETS = [1.0, 1.001, 1.5, 2.999, 3.333, 7.777, 8.0, 10.01, 59.999, 100.0, 123.456, 599.999, 600.0]
COUNTS = [None, 1, 2, 3, 5, 7, 11, 13, 24]


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_durations_sum_exactly_to_the_target(name):
    text = TEXTS[name]
    for target in TARGETS:
        for count in COUNTS:
            board = write_storyboard(text, duration_s=target, scenes=count)
            assert board.target_duration_s == pytest.approx(round(target, 3), abs=1e-9)
            assert abs(total(board) - board.target_duration_s) <= 1e-6, (target, count)
            assert all(scene.duration_s > 0 for scene in board.scenes)
            # Millisecond durations; no scene meaningfully shorter than the minimum.
            for scene in board.scenes:
                assert scene.duration_s == round(scene.duration_s, 3)
                assert scene.duration_s >= MIN_SCENE_S - 0.0005 * len(board.scenes)
            assert [s.scene_number for s in board.scenes] == list(range(1, len(board.scenes) + 1))
            assert 1 <= len(board.scenes) <= min(MAX_SCENES, int(board.target_duration_s))


def test_default_duration_and_scene_count():
    board = write_storyboard("A lighthouse on a cliff at dusk.")
    assert board.target_duration_s == 8.0
    assert len(board.scenes) == 2
    assert board.notes == []
    assert board.writer == "rules"


def test_longer_scenes_get_more_time():
    text = "Go. " + "A very long sentence describing a sweeping landscape in great detail. "
    board = write_storyboard(text, duration_s=20, scenes=2)
    assert board.scenes[1].duration_s > board.scenes[0].duration_s


@pytest.mark.parametrize("count", [1, 2, 3, 4, 6, 9, 12])
def test_explicit_scene_count_is_honoured(count):
    # Sentences of equal length, more of them than scenes: they are grouped.
    text = " ".join(f"Scene {i:02d} shows a calm lake." for i in range(12))
    board = write_storyboard(text, duration_s=24, scenes=count)
    assert len(board.scenes) == count
    assert board.notes == []
    # Every sentence lands in exactly one scene, in order.
    joined = " ".join(s.description for s in board.scenes)
    assert joined == text


@pytest.mark.parametrize("count", [2, 5, 24])
def test_more_scenes_than_sentences_become_shots(count):
    board = write_storyboard("A fox runs through snow.", duration_s=30, scenes=count)
    assert len(board.scenes) == count
    assert len({s.description for s in board.scenes}) >= min(count, 5) - 1
    assert abs(total(board) - 30) <= 1e-6


# ---------------------------------------------------------------------------------------
# clamping


def test_zero_scenes_is_raised_to_one_with_a_note():
    board = write_storyboard("A cat. A dog.", duration_s=10, scenes=0)
    assert len(board.scenes) == 1
    assert len(board.notes) == 1
    assert "0 scenes changed to 1" in board.notes[0]


def test_negative_scenes_is_raised_to_one_with_a_note():
    board = write_storyboard("A cat. A dog.", duration_s=10, scenes=-3)
    assert len(board.scenes) == 1
    assert "-3 scenes changed to 1" in board.notes[0]


def test_negative_duration_is_raised_with_a_note():
    board = write_storyboard("A cat. A dog.", duration_s=-5)
    assert board.target_duration_s == MIN_DURATION_S
    assert len(board.scenes) == 1
    assert abs(total(board) - MIN_DURATION_S) <= 1e-6
    assert any("-5" in note and "raised" in note for note in board.notes)


@pytest.mark.parametrize("duration", [0, 0.0, 0.5, 0.9994])
def test_too_short_duration_is_raised_with_a_note(duration):
    board = write_storyboard("A cat.", duration_s=duration)
    assert board.target_duration_s == MIN_DURATION_S
    assert board.notes and "raised" in board.notes[0]


def test_nan_duration_is_replaced_with_a_note():
    board = write_storyboard("A cat. A dog.", duration_s=float("nan"))
    assert math.isfinite(board.target_duration_s)
    assert MIN_DURATION_S <= board.target_duration_s <= MAX_DURATION_S
    assert abs(total(board) - board.target_duration_s) <= 1e-6
    assert any("nan" in note for note in board.notes)


def test_too_long_duration_is_lowered_with_a_note():
    board = write_storyboard("A cat.", duration_s=1e9)
    assert board.target_duration_s == MAX_DURATION_S
    assert any("lowered" in note for note in board.notes)
    assert abs(total(board) - MAX_DURATION_S) <= 1e-6


def test_five_hundred_scenes_is_lowered_to_the_maximum_with_a_note():
    board = write_storyboard("A cat. A dog.", duration_s=100, scenes=500)
    assert len(board.scenes) == MAX_SCENES
    assert len(board.notes) == 1 and "500 scenes changed to 24" in board.notes[0]
    assert abs(total(board) - 100) <= 1e-6


def test_scene_count_is_limited_by_the_minimum_scene_length():
    board = write_storyboard("A cat. A dog.", duration_s=5, scenes=500)
    assert len(board.scenes) == 5
    assert "500 scenes changed to 5" in board.notes[0]
    assert all(s.duration_s >= MIN_SCENE_S - 1e-9 for s in board.scenes)


def test_no_notes_when_nothing_is_clamped():
    board = write_storyboard("A cat. A dog.", duration_s=10, scenes=3)
    assert board.notes == []
    assert len(board.scenes) == 3


def test_storyboard_schema_rejects_inconsistent_documents():
    good = write_storyboard("A cat. A dog.", duration_s=10).model_dump()
    Storyboard.model_validate(good)
    bad_sum = {**good, "target_duration_s": 11.0}
    with pytest.raises(ValueError, match="add up"):
        Storyboard.model_validate(bad_sum)
    bad_numbers = {**good, "scenes": list(reversed(good["scenes"]))}
    with pytest.raises(ValueError, match="numbered"):
        Storyboard.model_validate(bad_numbers)
    with pytest.raises(ValueError):
        Storyboard.model_validate({**good, "unexpected": 1})


def test_title_is_short_and_cut_at_a_word():
    sentence = "A " + "remarkably " * 20 + "long sentence."
    board = write_storyboard(sentence)
    assert len(board.title) <= 61
    assert board.title.endswith("…")
    assert sentence.startswith(board.title[:-1])
    assert board.title[:-1].endswith("remarkably")


# ---------------------------------------------------------------------------------------
# the VBench prompt suite


def _dataset_lines(name: str) -> list[str]:
    lines = dataset(name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()]


def within_fit_limits(prompt: str) -> bool:
    return estimated_tokens(prompt) <= PROMPT_TOKEN_BUDGET


@pytest.mark.parametrize(
    "name,language",
    [("vbench_all_dimension_en.txt", "en"), ("vbench_all_dimension_zh.txt", "zh")],
)
def test_every_vbench_prompt_gives_a_valid_storyboard_and_prompts(name, language, capsys):
    lines = _dataset_lines(name)
    assert len(lines) > 900
    recognised = Counter()
    for line in lines:
        board = write_storyboard(line)
        again = Storyboard.model_validate_json(board.model_dump_json())
        assert again == board
        assert board.language == language, line
        assert abs(total(board) - board.target_duration_s) <= 1e-6, line
        prompts = optimize_prompts(board, style="cinematic", seed=7)
        assert [p.scene_number for p in prompts.scenes] == [s.scene_number for s in board.scenes]
        for scene in prompts.scenes:
            assert scene.prompt.strip(), line
            assert within_fit_limits(scene.prompt), (line, scene.prompt)
            assert fit_prompt(scene.prompt) == (scene.prompt, False), (line, scene.prompt)
        camera = read_camera(line)
        if camera.recognised:
            recognised[camera.name] += 1
    count = sum(recognised.values())
    with capsys.disabled():
        print(
            f"\n[read_camera] {name}: {count} of {len(lines)} prompts have a recognised camera "
            f"phrase: {dict(sorted(recognised.items()))}"
        )
    assert count > 0


def test_vbench_english_camera_suffixes_map_to_their_motion():
    lines = _dataset_lines("vbench_all_dimension_en.txt")
    suffixes = {
        ", pan left": "pan left",
        ", pan right": "pan right",
        ", tilt up": "tilt up",
        ", tilt down": "tilt down",
        ", zoom in": "zoom in",
        ", zoom out": "zoom out",
        ", in super slow motion": "slow push in, slow motion",
    }
    seen = Counter()
    for line in lines:
        for suffix, expected in suffixes.items():
            if line.endswith(suffix):
                assert read_camera(line).name == expected, line
                seen[suffix] += 1
    assert set(seen) == set(suffixes), seen


def test_an_asked_for_scene_count_is_kept_with_very_uneven_sentences():
    board = write_storyboard("A" * 100 + ". B. C. D.", duration_s=10, scenes=3)
    assert len(board.scenes) == 3
    assert board.notes == []


@pytest.mark.parametrize(
    "total,weights", [(4.005, [1, 1, 1, 1e-9]), (23.5, [1.0] * 23), (7.0, [0, 0])]
)
def test_split_duration_keeps_every_scene_at_the_minimum(total, weights):
    durations = split_duration(total, weights)
    assert min(durations) >= 1.0
    assert round(sum(durations) * 1000) == round(total * 1000)


def test_infinite_duration_is_lowered_to_the_maximum():
    board = write_storyboard("a cat", duration_s=float("inf"))
    assert board.target_duration_s == 600.0
    assert "lowered" in board.notes[0]
