"""Partition keys: stable, unique and safe as file names whatever the prompt holds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata

import pytest

from vidgen_pipeline.core.requests import (
    PromptError,
    PromptRequest,
    PromptStore,
    is_safe_key,
    normalize_prompt,
    partition_key_for,
    safe_path_component,
)

SAFE_NAME = re.compile(r"^[a-z0-9-]+$")
MAX_KEY_LEN = 80

HOSTILE_PROMPTS = {
    "chinese": "一只熊猫在巴黎的咖啡馆喝咖啡，推镜头",
    "emoji": "a cat 🐱 riding a rocket 🚀 to the moon 🌕",
    "emoji_only": "🐱🚀🌕",
    "slashes": "a/b\\c //server/share C:\\Windows\\system32",
    "dotdot": "..",
    "dotdot_x": "../x",
    "deep_traversal": "../../../../etc/passwd",
    "quotes": "she said \"hello\" and 'bye' `rm -rf /` $(reboot)",
    "nul": "a cat\x00 on a mat",
    "newlines": "first line\nsecond line\r\nthird\ttabbed",
    "long_words": "a calm lake at dawn " * 500,  # 10,000 characters
    "long_one_word": "x" * 10_000,
    "long_chinese": "熊" * 10_000,
    "uppercase": "A CAT IN A HAT",
    "dashes": "--- a - b ---",
    "mixed_scripts": "Ελληνικά кириллица 日本語のテキスト 한국어 texte français",
    "control_chars": "bell\x07 escape\x1b[31m red \x7f del",
    "math_letters": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
}


def assert_safe_name(key: str) -> None:
    assert SAFE_NAME.match(key), f"{key!r} is not a safe file name"
    assert len(key) <= MAX_KEY_LEN, f"{key!r} is {len(key)} characters long"
    assert key not in (".", "..")
    assert "/" not in key and "\\" not in key and "\x00" not in key


# ---------------------------------------------------------------------------------------
# stable


@pytest.mark.parametrize("name", sorted(HOSTILE_PROMPTS))
def test_key_is_stable_for_the_same_text(name):
    text = HOSTILE_PROMPTS[name]
    first = partition_key_for(text)
    assert partition_key_for(text) == first
    assert PromptRequest(text=text).partition_key == first
    assert partition_key_for(text, sample=3) == partition_key_for(text, sample=3)


def test_key_is_stable_across_unicode_normalization_forms():
    nfc = unicodedata.normalize("NFC", "café crème brûlée, 가나다")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    assert partition_key_for(nfc) == partition_key_for(nfd)


def test_key_is_stable_across_processes():
    """The key must not depend on Python's per-process string hash (PYTHONHASHSEED)."""
    text = "a panda drinking coffee in a cafe in Paris, 一只熊猫"
    code = (
        "import sys; from vidgen_pipeline.core.requests import partition_key_for; "
        "sys.stdout.write(partition_key_for(sys.argv[1], 2))"
    )
    keys = set()
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code, text],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        keys.add(out.stdout)
    assert keys == {partition_key_for(text, 2)}


# ---------------------------------------------------------------------------------------
# unique


def test_keys_are_unique_for_different_texts():
    texts = list(HOSTILE_PROMPTS.values()) + [
        "a cat",
        "A cat",  # same slug, different text
        "a cat.",
        "a  cat with spaces inside",
        "一只猫",  # CJK-only texts all have the fallback slug "prompt"
        "一只狗",
        "一只熊",
        "x" * 9_999,
        "x" * 10_000 + "y",  # differs only after the slug's reach
        "calm lake " * 40 + "A",
        "calm lake " * 40 + "B",
    ]
    normalized = {normalize_prompt(t) for t in texts}
    keys = {partition_key_for(t) for t in texts}
    assert len(keys) == len(normalized) == len(texts)


def test_keys_are_unique_for_different_samples():
    text = "a shark is swimming in the ocean"
    keys = [partition_key_for(text, sample=s) for s in range(20)]
    assert len(set(keys)) == 20
    assert [PromptRequest(text=text, sample=s).partition_key for s in range(20)] == keys


def test_texts_differing_only_in_ignored_characters_share_a_key():
    """NUL and surrounding whitespace are dropped before hashing: the stored text matches."""
    assert partition_key_for("  a cat \n") == partition_key_for("a cat")
    assert partition_key_for("a\x00 cat") == partition_key_for("a cat")


# ---------------------------------------------------------------------------------------
# safe as file names


@pytest.mark.parametrize("name", sorted(HOSTILE_PROMPTS))
@pytest.mark.parametrize("sample", [0, 1, 7, 999])
def test_key_is_a_safe_file_name(name, sample):
    key = partition_key_for(HOSTILE_PROMPTS[name], sample=sample)
    assert_safe_name(key)
    assert is_safe_key(key)


def test_key_keeps_a_readable_slug_for_latin_text():
    key = partition_key_for("A Panda drinking coffee, in Paris!")
    assert key.startswith("a-panda-drinking-coffee-in-paris-")


def test_safe_keys_can_be_used_as_real_files(tmp_path):
    for text in HOSTILE_PROMPTS.values():
        key = partition_key_for(text)
        path = tmp_path / f"{key}.json"
        path.write_text("{}")
        assert path.parent == tmp_path
    assert len(list(tmp_path.iterdir())) == len(
        {partition_key_for(t) for t in HOSTILE_PROMPTS.values()}
    )


# ---------------------------------------------------------------------------------------
# empty prompts


@pytest.mark.parametrize("text", ["", " ", "   \t  ", "\n\r\n", "\x00", "\x00 \x00\n", "\u3000"])
def test_empty_or_whitespace_prompt_raises_prompt_error(text):
    with pytest.raises(PromptError):
        partition_key_for(text)
    with pytest.raises(PromptError):
        normalize_prompt(text)
    # Through the model, pydantic wraps the PromptError (a ValueError) in a ValidationError.
    with pytest.raises(ValueError, match="empty"):
        PromptRequest(text=text)


def test_non_text_prompt_raises_prompt_error():
    with pytest.raises(PromptError):
        normalize_prompt(None)  # type: ignore[arg-type]


def test_prompt_error_is_a_value_error():
    assert issubclass(PromptError, ValueError)


# ---------------------------------------------------------------------------------------
# the full text is kept


def test_full_text_is_kept_in_the_request():
    text = "".join(chr(0x4E00 + i % 500) if i % 3 else " " for i in range(1, 10_001))
    assert len(text) == 10_000 and text == text.strip()
    request = PromptRequest(text=text)
    assert request.text == text
    assert len(request.partition_key) <= MAX_KEY_LEN


def test_ten_thousand_characters_round_trip_through_prompt_store(tmp_path):
    text = ("a calm lake at dawn, mist over the water; 一只白鹭飞过。 " * 200)[:10_000]
    assert len(text) == 10_000
    store = PromptStore(tmp_path / "prompts")
    request = PromptRequest(text=text, sample=2)
    key = store.put(request)
    assert key == request.partition_key
    loaded = store.get(key)
    assert loaded is not None
    assert loaded.text == text.strip()
    assert loaded == request
    files = list((tmp_path / "prompts").iterdir())
    assert [f.name for f in files] == [f"{key}.json"]


def test_prompt_store_round_trips_every_hostile_prompt(tmp_path):
    store = PromptStore(tmp_path)
    for text in HOSTILE_PROMPTS.values():
        request = PromptRequest(text=text)
        key = store.put(request)
        assert store.get(key) == request
    for path in tmp_path.rglob("*"):
        assert path.parent == tmp_path
        assert path.suffix == ".json"


def test_prompt_store_unknown_key(tmp_path):
    store = PromptStore(tmp_path)
    assert store.get("no-such-key-000000000000") is None
    # A key typed into the UI by hand is used as the prompt itself.
    assert store.request_for("a fox in the snow").text == "a fox in the snow"
    assert not any(tmp_path.iterdir())


def test_prompt_store_hostile_key_stays_inside_base(tmp_path):
    base = tmp_path / "store"
    store = PromptStore(base)
    for key in ("../x", "../../etc/passwd", "/abs/path", "..", "a/b"):
        assert store.get(key) is None
        path = store.path_for(key)
        assert os.path.commonpath([str(path), str(base)]) == str(base)
        assert path.parent == base


# ---------------------------------------------------------------------------------------
# safe_path_component


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "..",
        ".",
        "",
        "/etc/passwd",
        "a/../../b",
        "C:\\Windows",
        "x" * 600,
        "word " * 120,
        "a" * 81,
        "UPPER-case",
        "-leading-dash",
        "trailing-dash-",
        "under_score",
        "一只熊猫",
        "🐱🚀",
        "nul\x00byte",
        "new\nline",
        "lone surrogate \udc80",
    ],
)
def test_safe_path_component_maps_arbitrary_keys_to_safe_names(key):
    name = safe_path_component(key)
    assert_safe_name(name)
    assert is_safe_key(name)
    assert name != key
    assert safe_path_component(key) == name  # stable


def test_safe_path_component_distinguishes_keys_with_the_same_slug():
    keys = ["../x", "./x", "x/..", "X", "x!", "x" + "\x00"]
    names = {safe_path_component(k) for k in keys}
    assert len(names) == len(keys)


def test_safe_path_component_keeps_our_own_keys_unchanged():
    for text in HOSTILE_PROMPTS.values():
        for sample in (0, 1, 42):
            key = partition_key_for(text, sample)
            assert safe_path_component(key) == key


def test_safe_path_component_keeps_plain_safe_keys():
    for key in ("a", "abc-123", "a" * 80, "prompt-0123456789ab"):
        assert safe_path_component(key) == key
