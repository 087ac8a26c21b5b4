"""The storyboard schema and the deterministic rule-based writer.

A storyboard is a title and numbered scenes, each with a description and a duration; the
durations add up to the target length of the video.
"""

from __future__ import annotations

import math
import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_DURATION_S = 8.0
MIN_DURATION_S = 1.0
MAX_DURATION_S = 600.0
MIN_SCENE_S = 1.0
MAX_SCENES = 24
SECONDS_PER_SCENE = 4.0
_DURATION_TOLERANCE = 1e-6

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
# A sentence ends at . ! ? ; (ASCII or full-width) or 。 followed by space or end, or any CJK stop.
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？；])")
_SHOTS = {
    "en": ["wide establishing shot", "medium shot", "close-up", "tracking shot", "final wide shot"],
    "zh": ["远景建立镜头", "中景", "特写", "跟拍镜头", "结尾远景"],
}


class Scene(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scene_number: int = Field(ge=1)
    description: str = Field(min_length=1)
    duration_s: float = Field(gt=0)
    # The line the narrator speaks over this scene ("" is silence); None: no narration.
    narration: str | None = None


class Storyboard(BaseModel):
    """The ``script`` asset: validated on construction and on load."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1)
    language: str
    target_duration_s: float = Field(ge=MIN_DURATION_S, le=MAX_DURATION_S)
    scenes: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)
    writer: str = "rules"
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Storyboard:
        numbers = [scene.scene_number for scene in self.scenes]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"scenes must be numbered 1..{len(numbers)}, got {numbers}")
        total = sum(scene.duration_s for scene in self.scenes)
        if abs(total - self.target_duration_s) > 1e-3:
            raise ValueError(
                f"scene durations add up to {total:.3f} s, not the target {self.target_duration_s} s"
            )
        return self


def detect_language(text: str) -> str:
    """``zh`` when the text is mostly CJK script, else ``en`` (the rule writer's two styles)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    cjk = sum(1 for ch in letters if _CJK.match(ch))
    return "zh" if cjk / len(letters) >= 0.3 else "en"


def split_sentences(text: str) -> list[str]:
    """Split English and Chinese text into sentences, keeping their punctuation."""
    text = unicodedata.normalize("NFC", text)
    parts = []
    for line in re.split(r"[\r\n]+", text):
        parts.extend(piece.strip() for piece in _SENTENCE_END.split(line))
    return [part for part in parts if part and any(ch.isalnum() for ch in part)]


def clamp_request(
    duration_s: float | None, scenes: int | None, sentence_count: int
) -> tuple[float, int, list[str]]:
    """Target duration and scene count within sane limits, with a note for each change."""
    notes: list[str] = []
    duration = DEFAULT_DURATION_S if duration_s is None else float(duration_s)
    if math.isnan(duration) or duration < MIN_DURATION_S:
        notes.append(f"duration {duration_s} s raised to {MIN_DURATION_S:g} s")
        duration = MIN_DURATION_S
    elif duration > MAX_DURATION_S:
        notes.append(f"duration {duration_s} s lowered to {MAX_DURATION_S:g} s")
        duration = MAX_DURATION_S
    duration = round(duration, 3)
    most = max(1, min(MAX_SCENES, int(duration // MIN_SCENE_S)))
    if scenes is None:
        count = max(sentence_count, math.ceil(duration / SECONDS_PER_SCENE))
        count = max(1, min(count, most))
    else:
        count = int(scenes)
        if count < 1 or count > most:
            clamped = max(1, min(count, most))
            notes.append(
                f"{count} scenes changed to {clamped} (at least 1, at most {most} for "
                f"{duration:g} s at {MIN_SCENE_S:g} s per scene)"
            )
            count = clamped
    return duration, count, notes


def split_duration(total: float, weights: list[float], minimum: float = MIN_SCENE_S) -> list[float]:
    """Durations proportional to ``weights``, each at least ``minimum``, summing to ``total``.

    Computed in whole milliseconds (largest-remainder rounding), so the sum is exact and no
    scene falls below the minimum.
    """
    count = len(weights)
    total_ms, minimum_ms = round(total * 1000), round(minimum * 1000)
    spare_ms = total_ms - minimum_ms * count
    if spare_ms < 0:
        raise ValueError(f"{count} scenes of at least {minimum:g} s do not fit in {total:g} s")
    if sum(weights) <= 0:
        weights = [1.0] * count
    shares = [spare_ms * w / sum(weights) for w in weights]
    extra = [int(share) for share in shares]
    by_remainder = sorted(range(count), key=lambda i: shares[i] - extra[i], reverse=True)
    for index in by_remainder[: spare_ms - sum(extra)]:
        extra[index] += 1
    return [(minimum_ms + e) / 1000 for e in extra]


def _group(sentences: list[str], count: int, joiner: str) -> list[str]:
    """Join consecutive sentences into exactly ``count`` non-empty groups of similar length."""
    if len(sentences) <= count:
        return sentences
    cumulative = [0]
    for sentence in sentences:
        cumulative.append(cumulative[-1] + len(sentence))
    bounds = [0]
    for k in range(1, count):
        target = cumulative[-1] * k / count
        # Leave at least one sentence for each group still to come.
        candidates = range(bounds[-1] + 1, len(sentences) - (count - k) + 1)
        bounds.append(min(candidates, key=lambda i: abs(cumulative[i] - target)))
    bounds.append(len(sentences))
    return [joiner.join(sentences[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]


def write_storyboard(
    text: str, duration_s: float | None = None, scenes: int | None = None, narrate: bool = False
) -> Storyboard:
    """The rule-based writer: sentences become scenes; one sentence becomes several shots.
    ``narrate``: each scene's narration is its sentences, spoken once (a sentence shown in
    several shots is spoken over the first; the others are silent)."""
    language = detect_language(text)
    sentences = split_sentences(text) or [text.strip()]
    duration, count, notes = clamp_request(duration_s, scenes, len(sentences))
    if len(sentences) >= count:
        descriptions = _group(sentences, count, "" if language == "zh" else " ")
        lines = list(descriptions)
    else:
        # Fewer sentences than scenes: repeat the story as a sequence of different shots.
        shots = _SHOTS[language]
        descriptions, lines = [], []
        for index in range(count):
            sentence = sentences[min(len(sentences) - 1, index * len(sentences) // count)]
            lines.append("" if sentence in lines else sentence)
            shot = shots[min(index, len(shots) - 2)] if index < count - 1 else shots[-1]
            if count == 1:
                descriptions.append(sentence)
            else:
                sep = "，" if language == "zh" else ", "
                descriptions.append(f"{sentence.rstrip('.。!！?？;；')}{sep}{shot}")
    weights = [float(len(d)) for d in descriptions]
    durations = split_duration(duration, weights)
    return Storyboard(
        title=make_title(sentences[0], language),
        language=language,
        target_duration_s=duration,
        scenes=[
            Scene(
                scene_number=i + 1, description=d, duration_s=s, narration=line if narrate else None
            )
            for i, (d, s, line) in enumerate(zip(descriptions, durations, lines, strict=True))
        ],
        writer="rules",
        notes=notes,
    )


def make_title(sentence: str, language: str) -> str:
    """A short title from the first sentence, cut at a word boundary (or 20 CJK characters)."""
    sentence = sentence.strip().rstrip(".。!！?？;；")
    limit = 20 if language == "zh" else 60
    if len(sentence) <= limit:
        return sentence or "Untitled"
    if language == "zh":
        return sentence[:limit] + "…"
    cut = sentence[:limit].rsplit(" ", 1)[0]
    return cut + "…"
