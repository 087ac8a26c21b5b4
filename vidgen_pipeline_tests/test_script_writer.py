"""Storyboards by a local chat LLM: parsing, repair, retries, fallback, translation, and a
tiny random-weight Qwen2 through the real transformers loading path."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.prompts import PromptReader, optimize_prompts
from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest
from vidgen_pipeline.core.script_llm import (
    StoryboardParseError,
    extract_json,
    parse_storyboard,
    parse_translation,
)
from vidgen_pipeline.core.storyboard import write_storyboard
from vidgen_pipeline.definitions import defs
from vidgen_pipeline.jobs import register_prompt
from vidgen_pipeline.resources import PromptStoreResource, ScriptWriter
from vidgen_pipeline.testing.tiny_llm import save_tiny_chat_llm
from vidgen_pipeline.testing.tiny_unet_models import save_tiny_sd
from vidgen_pipeline_tests.conftest import VIDGEN, cli_env

GOOD = {
    "title": "Harbour at dawn",
    "scenes": [
        {"scene_number": 1, "description": "Fishing boats leave a misty harbour", "duration_s": 3},
        {
            "scene_number": 2,
            "description": "Gulls circle over the nets, camera pans left",
            "duration_s": 3,
        },
    ],
}


def reply(data=GOOD, fence=False, trailing_comma=False, prose=True) -> str:
    text = json.dumps(data, ensure_ascii=False, indent=1)
    if trailing_comma:
        text = text.replace("\n ]", ",\n ]")
    if fence:
        text = f"```json\n{text}\n```"
    return f"Sure! Here is the storyboard:\n{text}\nEnjoy." if prose else text


class ScriptedWriter(ScriptWriter):
    """The resource with its model swapped for prepared answers, one per call."""

    answers: ClassVar[list[str]] = []
    calls: ClassVar[list] = []

    def chat_model(self, name, log=print):
        answers = iter(self.__class__.answers)
        self.__class__.calls = []

        def chat(messages, seed):
            self.__class__.calls.append((messages, seed))
            return next(answers)

        return chat


def scripted(*answers: str) -> type[ScriptedWriter]:
    class Writer(ScriptedWriter):
        pass

    Writer.answers = list(answers)
    return Writer


REQUEST = PromptRequest(
    text="Boats leave the harbour. Gulls circle.",
    settings=GenerationSettings(script_model="some-llm", duration_s=6, scenes=2, seed=4),
)


# -------------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    "answer",
    [
        reply(),
        reply(fence=True),
        reply(trailing_comma=True),
        reply(prose=False).replace('"title"', "“title”"),
    ],
)
def test_valid_fenced_and_trailing_comma_answers_parse(answer):
    board = parse_storyboard(answer, "en", 6.0, 2, writer="llm:x")
    assert [s.duration_s for s in board.scenes] == [3, 3]
    assert board.title == "Harbour at dawn" and board.writer == "llm:x"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty answer"),
        ("I cannot help with that.", "no JSON object"),
        ('{"title": "x", "scenes": [', "no JSON object"),
        ('{"title": "x", "scenes": [}', "invalid JSON"),
        (reply({"title": "x", "shots": GOOD["scenes"]}), "no 'scenes' list"),
        (reply({**GOOD, "scenes": GOOD["scenes"][:1]}), "1 scenes, not the 2 asked for"),
        (
            reply({**GOOD, "scenes": [{**GOOD["scenes"][0], "duration_s": 5}, GOOD["scenes"][1]]}),
            "add up to 8.000 s",
        ),
        (reply({**GOOD, "scenes": [{"scene_number": 1}, GOOD["scenes"][1]]}), "wrong shape"),
        ("[1, 2, 3]", "no JSON object"),
    ],
)
def test_unusable_answers_are_refused_with_a_reason(answer, reason):
    with pytest.raises(StoryboardParseError, match=reason):
        parse_storyboard(answer, "en", 6.0, 2, writer="llm:x")


def test_extract_json_prefers_the_fenced_block():
    assert extract_json('{"a": 1} and ```json\n{"b": 2}\n```') == {"b": 2}


# ------------------------------------------------------------------- retries and fallback


def test_second_try_is_used_after_a_broken_first_answer():
    writer = scripted("not json at all", reply(fence=True))()
    board = writer.write(REQUEST, log=lambda m: None)
    assert board.writer == "llm:some-llm"
    assert [seed for _, seed in writer.calls] == [4, 5]  # a new seed per try
    assert any("attempt 1: no JSON object" in note for note in board.notes)


def test_three_unusable_answers_fall_back_to_the_rules_and_say_why():
    logs: list[str] = []
    writer = scripted("", "{oops", reply({**GOOD, "scenes": GOOD["scenes"][:1]}))()
    board = writer.write(REQUEST, log=logs.append)
    assert board.writer == "rules (llm output invalid: 1 scenes, not the 2 asked for)"
    assert board.scenes == write_storyboard(REQUEST.text, 6, 2).scenes
    assert len(writer.calls) == 3
    assert any("falling back to the rule-based writer" in line for line in logs)


def test_the_prompt_asks_for_the_language_scene_count_and_duration():
    writer = scripted(reply())()
    writer.write(REQUEST, log=lambda m: None)
    messages = writer.calls[0][0]
    assert "exactly 2 scenes lasting 6 seconds" in messages[1]["content"]
    chinese = REQUEST.model_copy(update={"text": "渔船驶出港口。海鸥盘旋。"})
    writer = scripted(reply())()
    writer.write(chinese, log=lambda m: None)
    assert "恰好 2 个镜头" in writer.calls[0][0][1]["content"]


def test_translation_is_validated():
    assert parse_translation('```json\n["a harbour", "gulls"]\n```', 2) == ["a harbour", "gulls"]
    for bad in ('["只有中文", "gulls"]', '["one"]', "no list", '["", "x"]'):
        with pytest.raises(StoryboardParseError):
            parse_translation(bad, 2)


def test_rules_handle_languages_the_writer_does_not_know():
    for text in ["Лодки выходят из гавани. Чайки кружат.", "القوارب تغادر الميناء", "🚤🌊"]:
        board = write_storyboard(text)
        assert board.scenes and abs(sum(s.duration_s for s in board.scenes) - 8.0) < 1e-6


def test_chatglm3_needs_trust_remote_code():
    with pytest.raises(ModelChoiceError, match="trust_remote_code"):
        ScriptWriter().check("chatglm3-6b")


def test_unknown_script_model_lists_the_known_ones():
    with pytest.raises(ModelChoiceError, match="known: rules, qwen2.5-1.5b"):
        ScriptWriter().check("gpt-9")


def test_prompts_fit_the_real_tokenizer_of_the_model(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(save_tiny_sd(tmp_path / "sd") / "tokenizer"))
    count = lambda text: len(tokenizer(text)["input_ids"])  # noqa: E731
    long = " ".join(["a lighthouse on a cliff above a stormy grey sea"] * 12)
    board = write_storyboard(long, duration_s=2, scenes=1)
    prompts = optimize_prompts(board, reader=PromptReader(77, count))
    scene = prompts.scenes[0]
    assert scene.truncated and count(scene.prompt) <= 77
    assert long.startswith(scene.prompt)
    assert count(scene.prompt + " lighthouse") > 77 or len(scene.prompt) > len(long) * 0.2


# --------------------------------------------------------------- a real (tiny) chat model


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory) -> Path:
    return save_tiny_chat_llm(tmp_path_factory.mktemp("llm") / "qwen-tiny")


def test_tiny_llm_gibberish_falls_back_and_is_flagged_in_the_graph(instance, tiny_llm):
    request = PromptRequest(
        text="Boats leave the harbour. Gulls circle.",
        settings=GenerationSettings(
            script_model=str(tiny_llm), duration_s=2.0, width=64, height=64, fps=4.0
        ),
    )
    key, _ = register_prompt(request, PromptStoreResource(), instance)
    result = defs.resolve_job_def("generate_video").execute_in_process(
        instance=instance,
        partition_key=key,
        raise_on_error=False,
        run_config={
            "resources": {
                "script_writer": {"config": {"max_new_tokens": 48, "attempts": 2, "device": "cpu"}}
            }
        },
    )
    assert result.success
    check = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "written_by_requested_writer"
    ]
    assert check[0].passed is False and check[0].severity.value == "WARN"
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path == ["script"]
    ]
    writer = event.materialization.metadata["writer"].value
    assert writer.startswith("rules (llm output invalid: ")
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("loaded Qwen2ForCausalLM" in m for m in messages)


def test_script_model_option_through_the_cli(tmp_path, tiny_llm):
    home = tmp_path / "home"
    done = subprocess.run(
        [
            *VIDGEN,
            "generate",
            "渔船驶出港口。海鸥盘旋。",
            "--script-model",
            str(tiny_llm),
            "--width",
            "64",
            "--height",
            "64",
            "--fps",
            "4",
            "--duration",
            "2",
        ],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "falling back to the rule-based writer" in done.stderr
    assert "check written_by_requested_writer did not pass (warn)" in done.stderr


def test_an_llm_out_of_memory_falls_back_to_the_rules_and_frees_it(tiny_llm, monkeypatch):
    import torch
    import transformers

    from vidgen_pipeline.resources import ScriptWriter, runtime

    def too_big(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 12.00 GiB")

    # The model loads for real; writing with it then runs out of memory, as on a busy card.
    monkeypatch.setattr(transformers.Qwen2ForCausalLM, "generate", too_big)
    writer = ScriptWriter(model=str(tiny_llm), device="cpu", max_new_tokens=8)
    request = PromptRequest(text="Boats leave the harbour. Gulls circle.")
    logs: list[str] = []
    board = writer.write(request, logs.append)
    assert (
        board.writer == "rules (llm out of memory: CUDA out of memory. Tried to allocate 12.00 GiB)"
    )
    assert board.scenes and runtime.loaded_count() == 0  # freed for the next model
    assert any("ran out of memory" in line for line in logs)
    assert writer.translate(["一只猫"], request, logs.append) is None
    assert runtime.loaded_count() == 0 and "LLM translation skipped" in logs[-1]


def test_the_llm_steps_are_in_the_gpu_pool():
    """A chat LLM (up to 15 GB) must not share the card with another run's video model."""
    pools = {
        key.to_user_string(): defs.get_assets_def(key).op.pool
        for key in defs.resolve_all_asset_keys()
    }
    assert pools["script"] == pools["optimized_prompts"] == "gpu"
    assert pools["keyframes"] == pools["scene_clips"] == "gpu"
    assert pools["prompt"] is None and pools["final_video"] is None
