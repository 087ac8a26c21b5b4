"""Who reads a prompt's scene prompts, and in which language and length.

The video model's text encoder (CLIP: 77 tokens of English; T5: a few hundred tokens of
English; umT5 and Qwen2.5-VL: long prompts in Chinese or English) and, where scenes start from
a text-to-image keyframe, that model's CLIP encoder. A Chinese storyboard is translated by
the LLM for encoders that read English only; with an LLM writer, families that read long
prompts get a richer shot description per scene (as Wan's own prompt extension does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vidgen_pipeline.core.models import VideoPlan
from vidgen_pipeline.core.prompts import PromptReader
from vidgen_pipeline.core.requests import PromptRequest
from vidgen_pipeline.core.storyboard import Storyboard
from vidgen_pipeline.resources import runtime


@dataclass
class Readers:
    """The readers of one prompt's scene prompts, and what was done for them."""

    video: PromptReader
    keyframe: PromptReader | None = None
    negative_prompt: str | None = None
    optimizer: str = "rules"
    warnings: list[str] = field(default_factory=list)
    token_limit: str = ""


def prompt_readers(
    plan: VideoPlan, script: Storyboard, request: PromptRequest, script_writer, log
) -> Readers:
    """The ``PromptReader`` of the model that reads ``prompt`` and, beside a text-reading
    video model, of the keyframe model (``keyframe_prompt``)."""
    descriptions = [s.description for s in script.scenes]
    texts = _Texts(descriptions, script.language, request, script_writer, log)
    keyframe_folder = plan.keyframe_weights_path
    if not (plan.backend == "diffusers" and plan.takes_text):
        # The prompt is for the keyframe model (image-to-video models read no text).
        reader = _clip_reader(keyframe_folder, texts.english() if keyframe_folder else None)
        readers = Readers(reader)
        _warn_chinese(readers, texts, keyframe_folder, "CLIP text encoders read English")
        return _labelled(readers, texts, reader, keyframe_folder)
    reads_chinese = "zh" in plan.languages
    count, _limit = runtime.token_counter(plan.weights_path)
    video_texts = None if reads_chinese else texts.english()
    if plan.prompt_style == "sentences":
        video_texts = texts.extended(video_texts, reads_chinese, plan.token_limit) or video_texts
    reader = PromptReader(plan.token_limit, count, plan.prompt_style, video_texts)
    keyframe = _clip_reader(keyframe_folder, texts.english()) if keyframe_folder else None
    readers = Readers(reader, keyframe, plan.negative_prompt)
    if not reads_chinese:
        _warn_chinese(readers, texts, True, f"{plan.text_encoder} reads English")
    return _labelled(readers, texts, reader, plan.weights_path)


def _clip_reader(folder: str | None, texts) -> PromptReader:
    count, limit = runtime.token_counter(folder)
    return PromptReader(limit, count, "clip", texts)


def _warn_chinese(readers: Readers, texts, read: bool | str | None, why: str) -> None:
    """Say so when a Chinese storyboard reaches an encoder (``read``) that reads English."""
    if read and texts.language == "zh" and texts.english() is None:
        readers.warnings.append(
            f"the prompts stay in Chinese: {why}; set script_model to an LLM to translate them"
        )


def _labelled(readers: Readers, texts, reader: PromptReader, folder) -> Readers:
    done = [
        what
        for what, made in (("translation", texts.translated), ("shot descriptions", texts.expanded))
        if made
    ]
    readers.optimizer = " + ".join(["rules", *(f"llm {d}" for d in done)])
    counted = "tokenizer" if reader.count_tokens else "estimate"
    readers.token_limit = f"{reader.token_limit} ({counted})"
    return readers


class _Texts:
    """The scenes' descriptions, their English translation and their longer shot
    descriptions, each asked of the LLM at most once."""

    def __init__(self, descriptions, language, request, script_writer, log):
        self.descriptions, self.language = descriptions, language
        self.request, self.writer, self.log = request, script_writer, log
        self._english: list[str] | None | bool = False
        self.translated = self.expanded = False

    def english(self) -> list[str] | None:
        """English versions (None: the storyboard is English, or no usable translation)."""
        if self.language != "zh":
            return None
        if self._english is False:
            self._english = self.writer.translate(self.descriptions, self.request, self.log)
            self.translated = self._english is not None
        return self._english

    def extended(self, base, reads_chinese: bool, token_limit: int) -> list[str] | None:
        language = "zh" if reads_chinese and self.language == "zh" else "en"
        source = base or self.descriptions
        words = max(20, int(token_limit * 0.6))
        longer = self.writer.extend(source, language, words, self.request, self.log)
        self.expanded = longer is not None
        return longer
