"""Prompts fitted to the family that reads them: CLIP's short English prompts, T5's and umT5's
whole sentences, Chinese kept for encoders that read it, translated for those that do not,
and an LLM's richer shot descriptions where the encoder reads long prompts."""

from __future__ import annotations

from vidgen_pipeline.core.models import VideoPlan
from vidgen_pipeline.core.prompts import optimize_prompts
from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest
from vidgen_pipeline.core.storyboard import write_storyboard
from vidgen_pipeline.families.registry import FAMILIES
from vidgen_pipeline.resources.prompt_readers import prompt_readers

LONG_EN = (
    "An old fisherman in a yellow raincoat pulls a net full of silver fish onto the deck of a "
    "small wooden boat while gulls circle overhead and grey waves break against the hull; "
    "behind him the harbour lights come on one by one as the rain thickens and a lighthouse "
    "beam sweeps across the water"
)
ZH = "一只熊猫在竹林里吃竹子。镜头缓缓推近。"


class Writer:
    """A script writer without an LLM (``llm=False``) or with one that answers well."""

    def __init__(self, llm: bool):
        self.llm, self.asked = llm, []

    def translate(self, descriptions, request, log=print):
        self.asked.append("translate")
        return [f"english of {d}" for d in descriptions] if self.llm else None

    def extend(self, descriptions, language, max_words, request, log=print):
        self.asked.append(("extend", language, max_words))
        return [f"shot: {d}" for d in descriptions] if self.llm else None


def plan_of(family: str, keyframes: str | None = None) -> VideoPlan:
    spec = FAMILIES[family]
    return VideoPlan(
        model=family,
        reason="test",
        backend="diffusers",
        family=family,
        pipeline=spec.pipelines[0],
        conditioning="text",
        takes_text=family != "svd",
        languages=list(spec.languages),
        text_encoder=spec.text_encoder,
        token_limit=spec.token_limit,
        prompt_style=spec.prompt_style,
        negative_prompt=spec.negative_prompt,
        device="cpu",
        width=64,
        height=64,
        fps=8,
        keyframe_weights_path=keyframes,
    )


def prompts(plan, text, writer):
    board = write_storyboard(text, duration_s=2.0, scenes=1)
    request = PromptRequest(text=text, settings=GenerationSettings())
    readers = prompt_readers(plan, board, request, writer, print)
    result = optimize_prompts(
        board,
        reader=readers.video,
        keyframe=readers.keyframe,
        negative_prompt=readers.negative_prompt,
    )
    return readers, result.scenes[0]


def test_t5_families_get_whole_sentences_and_clip_ones_short_prompts():
    _, ltx = prompts(plan_of("ltx-video"), LONG_EN, Writer(llm=False))
    _, t2v = prompts(plan_of("modelscope-t2v"), LONG_EN, Writer(llm=False))
    assert ltx.prompt.startswith(LONG_EN) and not ltx.truncated  # all 56 words, and style
    assert t2v.prompt.startswith(LONG_EN[:40])
    assert len(t2v.prompt.split()) < len(ltx.prompt.split())
    assert ltx.negative_prompt == "worst quality, inconsistent motion, blurry, jittery, distorted"
    assert t2v.negative_prompt.startswith("blurry, low quality")  # the project's own
    _, cog = prompts(plan_of("cogvideox"), LONG_EN, Writer(llm=False))
    assert cog.negative_prompt == ""


def test_chinese_stays_for_encoders_that_read_it_and_is_translated_for_the_others():
    wan_writer = Writer(llm=True)
    readers, wan = prompts(plan_of("wan"), ZH, wan_writer)
    assert wan.prompt.startswith("shot: 一只熊猫") and "translate" not in wan_writer.asked
    assert ("extend", "zh", 307) in wan_writer.asked  # Wan extends in the storyboard's language
    assert wan.negative_prompt.startswith("色调艳丽")  # Wan's own negative prompt
    assert readers.optimizer == "rules + llm shot descriptions"
    ltx_writer = Writer(llm=True)
    readers, ltx = prompts(plan_of("ltx-video"), ZH, ltx_writer)
    assert ltx.prompt.startswith("shot: english of 一只熊猫")
    assert readers.optimizer == "rules + llm translation + llm shot descriptions"
    readers, plain = prompts(plan_of("ltx-video"), ZH, Writer(llm=False))
    assert plain.prompt.startswith("一只熊猫") and readers.optimizer == "rules"
    assert readers.warnings == [
        "the prompts stay in Chinese: T5 reads English; set script_model to an LLM to translate them"
    ]


def test_a_keyframe_model_beside_a_text_reading_family_gets_its_own_clip_prompt():
    readers, scene = prompts(plan_of("wan", keyframes="/models/sdxl"), ZH, Writer(llm=True))
    assert scene.prompt.startswith("shot: 一只熊猫")
    assert scene.keyframe_prompt.startswith("english of 一只熊猫")  # CLIP reads English
    assert scene.keyframe_negative_prompt.startswith("blurry, low quality")
    # An image-to-video model reads no text: the prompt is the keyframe model's.
    readers, svd = prompts(plan_of("svd", keyframes="/models/sdxl"), ZH, Writer(llm=True))
    assert svd.prompt.startswith("english of") and svd.keyframe_prompt is None
    assert readers.keyframe is None and readers.optimizer == "rules + llm translation"
