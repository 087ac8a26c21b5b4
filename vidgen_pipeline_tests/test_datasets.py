"""Prompt datasets: every format, samples, duplicates, bad rows by line, unreadable files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from vidgen_pipeline.core.datasets import (
    EXAMPLES,
    DatasetReadResult,
    dataset_fingerprint,
    file_stamp,
    find_datasets,
    read_dataset,
)
from vidgen_pipeline.core.requests import (
    PromptRequest,
    is_safe_key,
    partition_key_for,
    safe_path_component,
)
from vidgen_pipeline_tests.conftest import dataset

FULL_HEADER = "id,prompt,style,duration,scenes,seed,samples,video_model,script_model,keyframe_model"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def settings_of(result: DatasetReadResult, index: int) -> dict:
    return result.entries[index].request.settings.model_dump(exclude_none=True)


def problems_by_line(result: DatasetReadResult) -> dict[int | None, str]:
    found: dict[int | None, str] = {}
    for problem in result.problems:
        assert problem.line not in found, f"two problems on line {problem.line}"
        found[problem.line] = problem.message
    return found


def assert_unreadable(result: DatasetReadResult, *words: str) -> None:
    assert result.entries == [] and result.requests == []
    assert len(result.problems) == 1, result.problems
    problem = result.problems[0]
    assert problem.severity == "error" and problem.file == result.path
    for word in words:
        assert word in problem.message, problem.message


# ---------------------------------------------------------------------------------------
# each format, with the optional columns


def test_csv_with_every_column(tmp_path):
    path = write(
        tmp_path / "shop.csv",
        f"{FULL_HEADER}\n"
        'p1,"A red kettle on a stove, steam rising.",anime,5.5,3,42,1,animatic,rules,sdxl-turbo\n'
        "p2,A blue bicycle by a canal,,,,,,,,\n",
    )
    result = read_dataset(path)
    assert result.problems == []
    assert result.rows == 2 and result.duplicates == 0
    first, second = result.entries
    assert (first.line, first.id, second.line, second.id) == (2, "p1", 3, "p2")
    assert first.request.text == "A red kettle on a stove, steam rising."
    assert settings_of(result, 0) == {
        "style": "anime",
        "duration_s": 5.5,
        "scenes": 3,
        "seed": 42,
        "video_model": "animatic",
        "script_model": "rules",
        "keyframe_model": "sdxl-turbo",
    }
    assert settings_of(result, 1) == {}
    assert result.requests == [e.request for e in result.entries]
    assert first.partition_key == partition_key_for(first.request.text)
    assert result.fingerprint == dataset_fingerprint(path)


def test_tsv_keeps_commas_and_quotes_inside_prompts(tmp_path):
    path = write(
        tmp_path / "list.tsv",
        "Prompt\t Seed \tDuration_s\n"  # names match without case or spaces; duration_s alias
        'A lamp, a chair, and a "vintage" radio\t7\t3\n'
        "A calm lake\t\t\n",
    )
    result = read_dataset(path)
    assert result.problems == []
    assert [e.request.text for e in result.entries] == [
        'A lamp, a chair, and a "vintage" radio',
        "A calm lake",
    ]
    assert settings_of(result, 0) == {"seed": 7, "duration_s": 3.0}
    assert [e.line for e in result.entries] == [2, 3]


def test_jsonl_with_native_and_text_values(tmp_path):
    lines = [
        {"prompt": "A paper boat on a puddle", "id": 17, "seed": 3, "duration": 4, "samples": 2},
        {"prompt": "Neon signs in the rain", "scenes": "2", "style": "Documentary"},
        {"prompt": "一只熊猫在竹林里吃竹子", "seed": None, "video_model": "modelscope-t2v"},
    ]
    text = (
        json.dumps(lines[0])
        + "\n\n"
        + "\n".join(json.dumps(x, ensure_ascii=False) for x in lines[1:])
    )
    result = read_dataset(write(tmp_path / "batch.jsonl", text + "\n"))
    assert result.problems == []
    assert result.rows == 3
    assert [(e.line, e.id, e.request.sample) for e in result.entries] == [
        (1, "17", 0),
        (1, "17", 1),
        (3, None, 0),
        (4, None, 0),
    ]
    assert settings_of(result, 0) == {"seed": 3, "duration_s": 4.0}
    assert settings_of(result, 2) == {"scenes": 2, "style": "documentary"}
    assert settings_of(result, 3) == {"video_model": "modelscope-t2v"}
    assert result.entries[3].request.text == "一只熊猫在竹林里吃竹子"
    # .ndjson is the same format
    ndjson = write(tmp_path / "batch.ndjson", text)
    assert read_dataset(ndjson).partition_keys == result.partition_keys


def test_parquet_with_gaps_in_number_columns(tmp_path):
    frame = pd.DataFrame(
        {
            "prompt": ["A drone shot over terraced rice fields", "A chef plating dessert", None],
            "id": [1, None, 3],  # ints with a gap come back as floats
            "seed": [5, None, 1],
            "duration": [6.0, 2.5, None],
            "samples": [2, 1, 1],
            "style": ["watercolor", None, None],
        }
    )
    path = tmp_path / "suite.parquet"
    frame.to_parquet(path)
    result = read_dataset(path)
    assert [(e.line, e.id, e.request.sample) for e in result.entries] == [
        (1, "1", 0),
        (1, "1", 1),
        (2, None, 0),
    ]
    assert settings_of(result, 0) == {"seed": 5, "duration_s": 6.0, "style": "watercolor"}
    assert settings_of(result, 1) == {"seed": 6, "duration_s": 6.0, "style": "watercolor"}
    assert settings_of(result, 2) == {"duration_s": 2.5}
    # the third row has no prompt: reported by row number
    assert problems_by_line(result) == {3: "no prompt"}
    assert str(result.problems[0]) == "suite.parquet row 3: no prompt"


def test_txt_one_prompt_per_line(tmp_path):
    path = write(
        tmp_path / "prompts.txt",
        "# a comment\r\n"
        "prompt\r\n"  # no header in a text file: this is a prompt
        "\r\n"
        "   \r\n"
        "  A heron lands on a misty river, prompt, seed=4  \r\n"
        "  # an indented comment\r\n"
        "A tram crosses a snowy square",  # no newline at the end
    )
    result = read_dataset(path)
    assert result.problems == []
    assert result.rows == 3
    assert [(e.line, e.request.text) for e in result.entries] == [
        (2, "prompt"),
        (5, "A heron lands on a misty river, prompt, seed=4"),
        (7, "A tram crosses a snowy square"),
    ]


# ---------------------------------------------------------------------------------------
# samples and duplicates


def test_samples_expand_into_distinct_partitions_with_distinct_seeds(tmp_path):
    path = write(
        tmp_path / "s.csv",
        "prompt,samples,seed\nA fox in snow,3,10\nA cat on a mat,2,\nA dog,1,5\n",
    )
    result = read_dataset(path)
    assert result.problems == []
    got = [(e.line, e.request.sample, e.request.settings.seed) for e in result.entries]
    assert got == [(2, 0, 10), (2, 1, 11), (2, 2, 12), (3, 0, None), (3, 1, 1), (4, 0, 5)]
    keys = result.partition_keys
    assert len(set(keys)) == 6
    assert keys[1] == partition_key_for("A fox in snow", 1)
    assert keys[1].endswith("-s1") and keys[2].endswith("-s2")


def test_duplicates_map_to_one_partition_and_the_first_row_wins(tmp_path):
    path = write(
        tmp_path / "d.csv",
        "id,prompt,seed,samples\n"
        "a,A lighthouse at night,1,\n"
        "b,  A lighthouse at night  ,1,\n"  # same text once trimmed
        "c,Cafe\u0301 terrace,,\n"  # decomposed é ...
        "d,Caf\u00e9 terrace,,\n"  # ... and composed é: the same prompt
        "e,A lighthouse at night,9,2\n",  # sample 0 repeats with another seed; sample 1 new
    )
    result = read_dataset(path)
    assert [(e.id, e.request.sample) for e in result.entries] == [("a", 0), ("c", 0), ("e", 1)]
    assert result.rows == 5 and result.duplicates == 3
    keys = result.partition_keys
    assert keys[0] == PromptRequest(text="A lighthouse at night").partition_key
    assert len(set(keys)) == len(keys)
    assert result.entries[0].request.settings.seed == 1  # the first row's settings are kept
    # identical repeats are silent; a repeat with other settings is a warning
    assert [(p.line, p.severity) for p in result.problems] == [(6, "warning")]
    assert "line 2" in result.problems[0].message


# ---------------------------------------------------------------------------------------
# bad rows: reported by the line a person sees, good rows still go through


def test_bad_csv_rows_are_reported_by_line_and_good_rows_go_through(tmp_path):
    path = write(
        tmp_path / "mixed.csv",
        "prompt,duration,scenes,seed,samples,style\n"  # 1
        '"A long prompt\nthat spans\nthree lines",4,2,1,1,cinematic\n'  # 2-4
        ",4,2,1,1,\n"  # 5 no prompt
        "A valid one,,,,,\n"  # 6
        "\n"  # 7 blank
        "Seed is text,,,abc,,\n"  # 8
        "Negative duration,-3,,,,\n"  # 9
        "Too many samples,,,,65,\n"  # 10
        "No scenes,,0,,,\n"  # 11
        "Unknown style,,,,,noir\n"  # 12
        "Fraction of a scene,,2.5,,,\n"  # 13
        "Unquoted, comma,4,2,1,1,anime,extra\n"  # 14
        "Trailing empty cells are fine,,,,,,,\n"  # 15
        "Two errors,zero,,-1,,\n"  # 16
        "Another valid one,5s,3.0,+7,2,Anime\n",  # 17
    )
    result = read_dataset(path)
    assert result.rows == 13
    assert sorted({e.line for e in result.entries}) == [2, 6, 15, 17]
    assert result.entries[0].request.text == "A long prompt\nthat spans\nthree lines"
    assert settings_of(result, -1) == {
        "duration_s": 5.0,
        "scenes": 3,
        "seed": 8,  # sample 1 of seed 7
        "style": "anime",
    }
    problems = problems_by_line(result)
    assert sorted(problems) == [5, 8, 9, 10, 11, 12, 13, 14, 16]
    assert problems[5] == "no prompt"
    assert problems[8] == "seed 'abc' is not a whole number"
    assert problems[9] == "duration '-3' must be more than 0 seconds"
    assert problems[10] == "samples '65' must be at most 64"
    assert problems[11] == "scenes '0' must be at least 1"
    assert "style 'noir' is not a style" in problems[12] and "cinematic" in problems[12]
    assert problems[13] == "scenes '2.5' is not a whole number"
    assert "has 8 fields but the header has 6" in problems[14]
    assert "duration 'zero'" in problems[16] and "seed '-1' must be at least 0" in problems[16]
    assert all(p.severity == "error" and p.file == path for p in result.problems)
    assert str(result.problems[0]) == "mixed.csv:5: no prompt"


def test_bad_jsonl_lines_are_reported_by_line(tmp_path):
    path = write(
        tmp_path / "bad.jsonl",
        '{"prompt": "A good line"}\n'  # 1
        "\n"  # 2
        '{"prompt": "broken",\n'  # 3
        '["a", "list"]\n'  # 4
        '{"prompt": 42}\n'  # 5
        '{"prompt": "x", "samples": true}\n'  # 6
        '{"prompt": "y", "seed": 1.5, "id": [1]}\n'  # 7
        '{"id": "no-prompt"}\n'  # 8
        '{"prompt": "\\u0000  "}\n'  # 9: empty once NULs and spaces go
        '{"prompt": "Another good line", "duration": 2}\n',  # 10
    )
    result = read_dataset(path)
    assert [e.line for e in result.entries] == [1, 10]
    assert result.rows == 9
    problems = problems_by_line(result)
    assert sorted(problems) == [3, 4, 5, 6, 7, 8, 9]
    assert problems[3].startswith("is not valid JSON")
    assert problems[4] == "must be a JSON object, not list"
    assert problems[5] == "prompt 42 must be text"
    assert problems[6] == "samples True must be a whole number"
    assert "id [1] must be text or a whole number" in problems[7]
    assert "seed 1.5 is not a whole number" in problems[7]
    assert problems[8] == "no prompt"
    assert problems[9] == "text: the prompt is empty"  # refused by PromptRequest itself


def test_a_quote_that_never_closes_is_reported_on_its_line(tmp_path):
    path = write(
        tmp_path / "open.csv",
        'prompt,seed\nA fine row,1\n"An open quote,2\nswallowing,3\nthe rest,4\n',
    )
    result = read_dataset(path)
    assert [e.line for e in result.entries] == [2]
    problems = problems_by_line(result)
    assert list(problems) == [3] and "never closes" in problems[3]


def test_prompt_over_the_length_limit_is_a_row_error(tmp_path):
    long = "word " * 30_000  # 150,000 characters: above the csv module's default field limit
    path = write(tmp_path / "long.csv", f"prompt\nshort one\n{long}\n")
    result = read_dataset(path)
    assert [e.line for e in result.entries] == [2]
    assert "limit is 100,000" in problems_by_line(result)[3]


def test_missing_prompt_column_is_one_problem(tmp_path):
    csv_file = write(tmp_path / "noprompt.csv", "text,seed\nA fox,1\nA cat,2\n")
    result = read_dataset(csv_file)
    assert_unreadable(result, "no 'prompt' column", "'text'")
    assert result.problems[0].line == 1

    parquet = tmp_path / "noprompt.parquet"
    pd.DataFrame({"caption": ["A fox"]}).to_parquet(parquet)
    assert_unreadable(read_dataset(parquet), "no 'prompt' column", "'caption'")

    jsonl = write(tmp_path / "noprompt.jsonl", '{"text": "A fox"}\n{"text": "A cat"}\n')
    assert_unreadable(read_dataset(jsonl), "no 'prompt' key")


def test_unknown_columns_are_one_warning_not_an_error_per_row(tmp_path):
    path = write(
        tmp_path / "extra.csv",
        "prompt,notes,seed,price\nA fox,nice,1,3.99\nA cat,,2,\nA dog,x,3,1\n",
    )
    result = read_dataset(path)
    assert len(result.entries) == 3 and result.errors == []
    assert len(result.problems) == 1
    warning = result.problems[0]
    assert (warning.line, warning.severity) == (1, "warning")
    assert "'notes', 'price'" in warning.message


def test_header_only_file_is_a_warning(tmp_path):
    result = read_dataset(write(tmp_path / "empty_rows.csv", "prompt,seed\n\n"))
    assert result.entries == [] and result.rows == 0
    assert [(p.severity, p.message) for p in result.problems] == [
        ("warning", "no prompts in the file")
    ]


# ---------------------------------------------------------------------------------------
# unreadable files: one problem, no rows, no exception


def test_binary_file_is_one_problem(tmp_path):
    path = tmp_path / "junk.csv"
    path.write_bytes(bytes(range(256)) * 8)
    assert_unreadable(read_dataset(path), "binary")


def test_latin1_file_is_refused_not_guessed(tmp_path):
    path = write(tmp_path / "latin.csv", "prompt\nA calm lake\nA café in Paris\n", "latin-1")
    result = read_dataset(path)
    assert_unreadable(result, "not UTF-8", "0xe9", "line 3")
    assert result.problems[0].line == 3


def test_utf8_bom_and_utf16_are_read(tmp_path):
    bom = write(tmp_path / "excel.csv", "\ufeffprompt,seed\nA café,1\n")
    result = read_dataset(bom)
    assert result.problems == [] and result.requests[0].text == "A café"
    utf16 = write(tmp_path / "notepad.txt", "\ufeffA café\n一只猫\n", "utf-16-le")
    result = read_dataset(utf16)
    assert result.problems == [] and [r.text for r in result.requests] == ["A café", "一只猫"]


@pytest.mark.parametrize("content", [b"", b"  \n\r\n\t", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("name", ["empty.csv", "empty.txt", "empty.jsonl", "empty.tsv"])
def test_empty_file_is_one_problem(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert_unreadable(read_dataset(path), "empty")


def test_corrupt_parquet_is_one_problem(tmp_path):
    good = tmp_path / "good.parquet"
    pd.DataFrame({"prompt": [f"A prompt number {i}" for i in range(50)]}).to_parquet(good)
    data = good.read_bytes()
    cut = write(tmp_path / "cut.parquet", "")
    cut.write_bytes(data[: len(data) // 2])
    assert_unreadable(read_dataset(cut), "Parquet")
    middle = bytearray(data)
    middle[8:-12] = b"\xff" * (len(data) - 20)  # both magic markers intact, the rest junk
    mangled = tmp_path / "mangled.parquet"
    mangled.write_bytes(bytes(middle))
    assert_unreadable(read_dataset(mangled), "Parquet")
    text = write(tmp_path / "text.parquet", "prompt\nA fox\n")
    assert_unreadable(read_dataset(text), "not a Parquet file")
    # and a real Parquet file with the wrong extension
    renamed = tmp_path / "renamed.csv"
    renamed.write_bytes(data)
    assert_unreadable(read_dataset(renamed), ".parquet")


def test_folder_missing_file_and_unknown_type_are_one_problem(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    assert_unreadable(read_dataset(tmp_path / "folder.csv"), "folder")
    assert_unreadable(read_dataset(tmp_path / "absent.csv"), "does not exist")
    assert_unreadable(read_dataset(write(tmp_path / "book.xlsx", "x")), "unknown file type")


# ---------------------------------------------------------------------------------------
# finding files, fingerprints


def test_find_datasets_lists_only_dataset_files_sorted(tmp_path):
    names = [
        "b.csv",
        "A.TSV",
        "c.jsonl",
        "d.ndjson",
        "e.parquet",
        "f.txt",
        ".hidden.csv",
        "g.csv.tmp",
        "h.csv~",
        "~$i.csv",
        "j.part",
        "k.xlsx",
        "notes.md",
    ]
    for name in names:
        (tmp_path / name).write_text("prompt\nx\n")
    (tmp_path / "sub.csv").mkdir()
    (tmp_path / "sub.csv" / "inner.csv").write_text("prompt\nx\n")
    found = [p.name for p in find_datasets(tmp_path)]
    assert found == ["A.TSV", "b.csv", "c.jsonl", "d.ndjson", "e.parquet", "f.txt"]
    assert find_datasets(tmp_path / "absent") == []


def test_fingerprint_tells_new_and_changed_files(tmp_path):
    one = write(tmp_path / "one.csv", "prompt\nA fox\n")
    two = write(tmp_path / "two.csv", "prompt\nA fox\n")
    assert dataset_fingerprint(one) == dataset_fingerprint(two)
    before, stamp = dataset_fingerprint(one), file_stamp(one)
    write(one, "prompt\nA fox\nA cat\n")
    os.utime(one, ns=(stamp[1] + 10**9, stamp[1] + 10**9))
    assert dataset_fingerprint(one) != before
    assert file_stamp(one) != stamp
    assert read_dataset(one).fingerprint == dataset_fingerprint(one)
    assert len(before) == 64 and int(before, 16) >= 0


# ---------------------------------------------------------------------------------------
# real suites and the shipped examples


def assert_keys_unique_and_safe(result: DatasetReadResult) -> None:
    keys = result.partition_keys
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert is_safe_key(key), key
        assert safe_path_component(key) == key


@pytest.mark.parametrize(
    ("name", "unique"),
    [("vbench_all_dimension_en.txt", 944), ("vbench_all_dimension_zh.txt", 943)],
)
def test_vbench_suites(name, unique):
    path = dataset(name)
    started = time.perf_counter()
    result = read_dataset(path)
    elapsed = time.perf_counter() - started
    assert result.problems == []
    assert result.rows == 946
    # EN: two prompts appear twice; ZH: three translations coincide ("一个人在弹吉他" ...)
    assert len(result.entries) == unique and result.duplicates == 946 - unique
    assert_keys_unique_and_safe(result)
    assert [e.line for e in result.entries] == sorted(e.line for e in result.entries)
    assert elapsed < 2.0, f"{elapsed:.2f} s for 946 prompts"


def test_thousand_row_csv_with_every_column_parses_quickly(tmp_path):
    rows = [
        f'r{i},"Product shot {i}: a bottle, a glass, ice",cinematic,{i % 9 + 1},2,{i},1,svd-xt,rules,sd15'
        for i in range(1000)
    ]
    path = write(tmp_path / "big.csv", FULL_HEADER + "\n" + "\n".join(rows) + "\n")
    started = time.perf_counter()
    result = read_dataset(path)
    elapsed = time.perf_counter() - started
    assert result.problems == [] and len(result.entries) == 1000
    assert elapsed < 2.0, f"{elapsed:.2f} s for 1,000 rows"


@pytest.mark.parametrize("name", ["products.csv", "prompts.txt"])
def test_shipped_examples_read_cleanly(name):
    path = EXAMPLES / name
    assert path in find_datasets(EXAMPLES)
    result = read_dataset(path)
    assert result.problems == []
    assert result.entries and result.duplicates == 0
    assert_keys_unique_and_safe(result)


def test_example_products_use_every_optional_column():
    result = read_dataset(EXAMPLES / "products.csv")
    assert result.rows == 6
    assert any(e.request.sample == 2 for e in result.entries)  # a row with samples: 3
    assert any(not e.request.text.isascii() for e in result.entries)  # the Chinese prompt
    assert all(e.id for e in result.entries)
    used = set()
    for entry in result.entries:
        used |= set(entry.request.settings.model_dump(exclude_none=True))
    assert {"style", "duration_s", "scenes", "seed"} <= used
