"""Storyboards written by a chat LLM: the instructions, and reading its answer safely.

The model is asked for JSON in the storyboard's shape. Its answer is cut out of any prose
or code fence, repaired where that is safe (trailing commas, smart quotes), validated
against the schema, and rejected with a reason otherwise; the caller retries, then falls
back to the rule-based writer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from vidgen_pipeline.core.storyboard import Scene, Storyboard

Messages = list[dict[str, str]]
ChatFn = Callable[[Messages, int], str]  # (messages, seed) -> the model's reply

SYSTEM_PROMPT = {
    "en": (
        "You are a film director writing storyboards for a text-to-video model. Answer with "
        "JSON only, no prose, in exactly this shape: "
        '{"title": str, "scenes": [{"scene_number": int, "description": str, "duration_s": number}]}. '
        "Each description is one visual shot (subject, action, setting, light, camera), "
        "concrete enough to draw."
    ),
    "zh": (
        "你是为文生视频模型编写分镜脚本的导演。只用 JSON 回答，不要任何其他文字，格式严格为："
        '{"title": str, "scenes": [{"scene_number": int, "description": str, "duration_s": number}]}。'
        "每个 description 是一个画面（主体、动作、场景、光线、镜头），具体到可以画出来。"
    ),
}


class StoryboardParseError(ValueError):
    """The model's answer is not a usable storyboard; the message says why, in one line."""


NARRATION_REQUEST = {
    "en": ' Give each scene a "narration" too: one short sentence a narrator speaks over it, '
    "in English.",
    "zh": " 每个镜头还要有一个 narration：旁白在该镜头中说的一句简短的中文。",
}


def storyboard_messages(
    text: str, language: str, duration_s: float, scenes: int, narrate: bool = False
) -> Messages:
    """Chat messages asking for a storyboard of ``scenes`` scenes lasting ``duration_s``;
    ``narrate``: with a narration line per scene, in the prompt's language."""
    system = SYSTEM_PROMPT["zh" if language == "zh" else "en"]
    if narrate:
        system += NARRATION_REQUEST["zh" if language == "zh" else "en"]
    if language == "zh":
        user = (
            f"为下面的内容写一个分镜脚本：恰好 {scenes} 个镜头，总时长 {duration_s:g} 秒"
            f"（各镜头 duration_s 之和必须等于 {duration_s:g}），用中文描述。\n\n内容：{text}"
        )
    else:
        user = (
            f"Write a storyboard for the text below: exactly {scenes} scenes lasting "
            f"{duration_s:g} seconds in all (the scenes' duration_s must add up to "
            f"{duration_s:g}), described in English.\n\nText: {text}"
        )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def with_narration(board: Storyboard, narrate: bool) -> Storyboard:
    """``board`` with a narration line on every scene when ``narrate`` (a scene the model
    gave none speaks its description; an empty line stays silence), else with none."""
    scenes = [
        scene.model_copy(
            update={
                "narration": (
                    (scene.description if scene.narration is None else scene.narration.strip())
                    if narrate
                    else None
                )
            }
        )
        for scene in board.scenes
    ]
    return board.model_copy(update={"scenes": scenes})


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"'})


def extract_json(reply: str) -> dict:
    """The JSON object in ``reply``: inside a code fence, or the outermost ``{...}``."""
    if not reply or not reply.strip():
        raise StoryboardParseError("empty answer")
    fenced = _FENCE.search(reply)
    candidate = fenced.group(1) if fenced else reply
    start, end = candidate.find("{"), candidate.rfind("}")
    if start < 0 or end <= start:
        raise StoryboardParseError("no JSON object in the answer")
    body = candidate[start : end + 1]
    for attempt in (body, _TRAILING_COMMA.sub(r"\1", body.translate(_SMART_QUOTES))):
        try:
            value = json.loads(attempt)
        except json.JSONDecodeError as exc:
            error = exc
            continue
        if not isinstance(value, dict):
            raise StoryboardParseError("the JSON is not an object")
        return value
    raise StoryboardParseError(f"invalid JSON ({error.msg} at character {error.pos})")


def parse_storyboard(
    reply: str, language: str, duration_s: float, scenes: int, writer: str
) -> Storyboard:
    """Validate the model's answer as a storyboard of ``scenes`` scenes adding up to
    ``duration_s`` seconds; raise ``StoryboardParseError`` with the reason otherwise."""
    data = extract_json(reply)
    raw_scenes = data.get("scenes")
    if not isinstance(raw_scenes, list) or not raw_scenes:
        raise StoryboardParseError("no 'scenes' list")
    if len(raw_scenes) != scenes:
        raise StoryboardParseError(f"{len(raw_scenes)} scenes, not the {scenes} asked for")
    try:
        parsed = [Scene.model_validate(scene) for scene in raw_scenes]
        board = Storyboard(
            title=str(data.get("title") or "").strip() or parsed[0].description[:60],
            language=language,
            target_duration_s=duration_s,
            scenes=parsed,
            writer=writer,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise StoryboardParseError(f"wrong shape: {where}: {first['msg']}") from None
    return board


def write_with_llm(
    chat: ChatFn,
    messages: Messages,
    parse: Callable[[str], Storyboard],
    attempts: int,
    seed: int,
) -> tuple[Storyboard | None, list[str]]:
    """Ask up to ``attempts`` times; return the first valid storyboard and every failure."""
    failures: list[str] = []
    for attempt in range(attempts):
        reply = chat(messages, seed + attempt)
        try:
            return parse(reply), failures
        except StoryboardParseError as exc:
            failures.append(f"attempt {attempt + 1}: {exc}")
    return None, failures


def translation_messages(descriptions: Sequence[str]) -> Messages:
    """Ask for an English rendering of each description, as a JSON list of strings."""
    numbered = json.dumps(list(descriptions), ensure_ascii=False)
    return [
        {
            "role": "system",
            "content": "Translate each string to natural English for an image model. Answer "
            "with a JSON list of strings only, one per input, in order.",
        },
        {"role": "user", "content": numbered},
    ]


def parse_translation(reply: str, count: int) -> list[str]:
    """The model's list of ``count`` English strings; raise ``StoryboardParseError``."""
    items = parse_string_list(reply, count, "translation")
    if any(re.search(r"[\u3400-\u9fff]", item) for item in items):
        raise StoryboardParseError("the translation still has Chinese characters")
    return items


def extension_messages(descriptions: Sequence[str], language: str, max_words: int) -> Messages:
    """Ask for each scene as one richer shot description (subject, action, setting, light,
    camera), as a video model's own prompt extension does (Wan's), in ``language``."""
    numbered = json.dumps(list(descriptions), ensure_ascii=False)
    tongue = "Chinese" if language == "zh" else "English"
    return [
        {
            "role": "system",
            "content": f"Rewrite each scene as one vivid shot description in {tongue} for a "
            "text-to-video model: the subject and its action, the setting, the light, the "
            f"camera. Keep every fact of the scene; at most {max_words} words each. Answer "
            "with a JSON list of strings only, one per input, in order.",
        },
        {"role": "user", "content": numbered},
    ]


def parse_extension(reply: str, count: int) -> list[str]:
    """The model's list of ``count`` shot descriptions; raise ``StoryboardParseError``."""
    return parse_string_list(reply, count, "shot descriptions")


def parse_string_list(reply: str, count: int, what: str) -> list[str]:
    """A JSON list of ``count`` non-empty strings out of a reply (code fences, prose and
    trailing commas allowed); raise ``StoryboardParseError`` naming ``what``."""
    fenced = _FENCE.search(reply or "")
    body = fenced.group(1) if fenced else (reply or "")
    start, end = body.find("["), body.rfind("]")
    if start < 0 or end <= start:
        raise StoryboardParseError(f"no JSON list in the {what}")
    try:
        items = json.loads(_TRAILING_COMMA.sub(r"\1", body[start : end + 1]))
    except json.JSONDecodeError as exc:
        raise StoryboardParseError(f"invalid JSON in the {what} ({exc.msg})") from None
    if (
        not isinstance(items, list)
        or len(items) != count
        or not all(isinstance(i, str) and i.strip() for i in items)
    ):
        raise StoryboardParseError(f"the {what} is not a list of {count} strings")
    return [item.strip() for item in items]
