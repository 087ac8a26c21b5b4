"""The rule-based prompt optimiser: storyboard scenes -> model-facing prompts.

Per scene: the prompt the model sees (style words appended, cut at a word boundary to what
a CLIP text encoder can take), a negative prompt, camera motion read from the text, and a
seed derived from the run's one seed so every scene is reproducible on its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from vidgen_pipeline.core.finishing.plan import FinishingPlan, plan_finishing
from vidgen_pipeline.core.models import VideoPlan
from vidgen_pipeline.core.storyboard import Storyboard

# CLIP text encoders take 77 tokens. Without a tokenizer the optimiser estimates (see
# fit_prompt); the real count is done where a tokenizer is loaded.

STYLE_PRESETS: dict[str, tuple[str, str]] = {
    # name: (words appended to the prompt, extra negative words)
    "cinematic": ("cinematic lighting, 35mm film, shallow depth of field, high detail", "cartoon"),
    "documentary": (
        "documentary footage, natural light, handheld camera, realistic",
        "cartoon, cgi",
    ),
    "anime": ("anime style, cel shading, vibrant colours, clean line art", "photo, realistic"),
    "watercolor": ("watercolor painting, soft washes, paper texture", "photo, realistic"),
    "none": ("", ""),
}
DEFAULT_STYLE = "cinematic"
BASE_NEGATIVE = "blurry, low quality, distorted, watermark, text, jpeg artifacts, deformed"


class CameraMotion(BaseModel):
    """Camera movement for a scene, as read from its text (or still)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "slow push in"
    pan_x: float = Field(default=0.0, description="fraction of the width moved, + is right")
    pan_y: float = Field(default=0.0, description="fraction of the height moved, + is down")
    zoom: float = Field(default=1.12, description="end zoom over start zoom (>1 zooms in)")
    speed: float = Field(default=1.0, description="motion multiplier (slow motion < 1)")
    recognised: bool = False


# Phrases as VBench and people write them; the first match wins.
# English words are matched whole (\b), so "ecstatic" is not "static" nor "Japan left" a pan.
_CAMERA_PHRASES: list[tuple[str, dict]] = [
    (
        r"\b(?:zoom(?:ing|s)? in|push(?:ing|es)? in|dolly in)\b|拉近|推近|镜头推进|推镜头",
        {"name": "zoom in", "zoom": 1.3},
    ),
    (
        r"\b(?:zoom(?:ing|s)? out|pull(?:ing|s)? (?:back|out)|dolly out)\b|拉远|拉镜头",
        {"name": "zoom out", "zoom": 1 / 1.3},
    ),
    (
        r"\bpan(?:ning|s)? left\b|向左平移|向左移|左移镜头",
        {"name": "pan left", "pan_x": -0.2, "zoom": 1.0},
    ),
    (
        r"\bpan(?:ning|s)? right\b|向右平移|向右移|右移镜头",
        {"name": "pan right", "pan_x": 0.2, "zoom": 1.0},
    ),
    (
        r"\btilt(?:ing|s)? up\b|向上倾斜|镜头上摇|向上移镜头",
        {"name": "tilt up", "pan_y": -0.2, "zoom": 1.0},
    ),
    (
        r"\btilt(?:ing|s)? down\b|向下倾斜|镜头下摇|向下移镜头",
        {"name": "tilt down", "pan_y": 0.2, "zoom": 1.0},
    ),
    (
        r"\b(?:static|still (?:camera|frame)|locked[- ]off)\b|静止|固定镜头|静态",
        {"name": "static", "zoom": 1.0},
    ),
]
_SLOW_MOTION = re.compile(r"\bslow[- ]motion\b|慢动作|慢镜头|慢速播放", re.IGNORECASE)


class ScenePrompt(BaseModel):
    """One scene's instructions for the keyframe and video models."""

    model_config = ConfigDict(extra="forbid")

    scene_number: int
    description: str
    duration_s: float
    prompt: str
    negative_prompt: str
    seed: int
    camera: CameraMotion
    truncated: bool = False
    # For a keyframe model whose text encoder differs from the video model's (CLIP's 77
    # tokens beside a T5 family's sentences); None: the keyframe model reads ``prompt``.
    keyframe_prompt: str | None = None
    keyframe_negative_prompt: str | None = None


class OptimizedPrompts(BaseModel):
    """The ``optimized_prompts`` asset."""

    model_config = ConfigDict(extra="forbid")

    style: str
    base_seed: int
    optimizer: str = "rules"
    scenes: list[ScenePrompt]
    video: VideoPlan | None = None
    finishing: FinishingPlan | None = None  # how final_video stitches the clips

    def finishing_plan(self) -> FinishingPlan:
        """The prompt's finishing plan; documents stored before plans existed get cuts at
        the clips' own rate (no conversion)."""
        if self.finishing is not None:
            return self.finishing
        durations = [scene.duration_s for scene in self.scenes]
        return plan_finishing(durations, self.video.fps, generated=False)


def read_camera(text: str) -> CameraMotion:
    """Camera motion named in ``text`` (English or Chinese), else a gentle push in."""
    fields: dict = {}
    for pattern, values in _CAMERA_PHRASES:
        if re.search(pattern, text, re.IGNORECASE):
            fields = {**values, "recognised": True}
            break
    if _SLOW_MOTION.search(text):
        fields = {**fields, "speed": 0.5, "recognised": True}
        fields.setdefault("name", "slow push in")
        fields["name"] = f"{fields['name']}, slow motion"
    return CameraMotion(**fields)


def scene_seed(base_seed: int, scene_number: int) -> int:
    """A per-scene seed that depends only on the base seed and the scene's number."""
    digest = hashlib.sha256(f"{base_seed}:{scene_number}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")
_CJK_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Budget in CLIP-token units: a CJK character ~1 token, an English word ~1.3.
PROMPT_TOKEN_BUDGET = 72


def _token_cost(token: str) -> float:
    return 1.0 if _CJK_CHAR.fullmatch(token) else 1.3 + 0.3 * (len(token) // 8)


def estimated_tokens(text: str) -> float:
    """A CLIP-token estimate of ``text`` (what ``fit_prompt`` keeps under its budget)."""
    return sum(_token_cost(m.group()) for m in _TOKEN.finditer(text))


def fit_prompt(text: str, budget: float = PROMPT_TOKEN_BUDGET) -> tuple[str, bool]:
    """Cut ``text`` to what a CLIP text encoder takes, never inside a word.

    Words (runs of non-space, non-CJK characters) and single CJK characters are the units;
    the cut falls after the last unit that fits, preferring a punctuation mark near the end.
    """
    used = 0.0
    end = 0
    last_stop = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        used += _token_cost(token)
        if used > budget:
            break
        end = match.end()
        if token[-1] in "，。；、,;.":
            last_stop = end
    else:
        return text, False
    cut = end if last_stop < end * 0.7 else last_stop
    return text[:cut].rstrip(" ,;:，；、"), True


def fit_to_tokenizer(text: str, count_tokens: Callable[[str], int], limit: int) -> tuple[str, bool]:
    """Cut ``text`` at a word (or CJK character) so a real tokenizer counts at most ``limit``."""
    if count_tokens(text) <= limit:
        return text, False
    ends = [m.end() for m in _TOKEN.finditer(text)]
    low, high = 0, len(ends) - 1  # the longest prefix of whole units that fits
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(text[: ends[middle]]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[: ends[low]].rstrip(" ,;:，；、"), True


@dataclass(frozen=True)
class PromptReader:
    """A text encoder that reads the prompts: what it reads per scene (``texts``: a
    translation or a longer shot description; None: the scenes' own descriptions), its token
    limit, its tokenizer's count when one is at hand (else an estimate), and the prompt style:
    ``clip`` (short, style words dropped first when long) or ``sentences`` (the whole
    description, up to the limit)."""

    token_limit: int = 77
    count_tokens: Callable[[str], int] | None = None
    style: str = "clip"
    texts: Sequence[str] | None = None

    def fit(self, text: str) -> tuple[str, bool]:
        if self.count_tokens is None:
            # The estimate leaves room for the tokenizer's start and end tokens.
            return fit_prompt(text, self.token_limit - 5)
        return fit_to_tokenizer(text, self.count_tokens, self.token_limit)

    def prompt(self, index: int, description: str, style_words: str) -> tuple[str, bool]:
        """Scene ``index``'s prompt: its text plus the style words, cut to the limit (style
        words go last, so a cut for length drops them before the scene's own words)."""
        base = self.texts[index] if self.texts else description
        fitted, truncated = self.fit(f"{base}, {style_words}" if style_words else base)
        if truncated and self.fit(base)[1]:
            fitted, _ = self.fit(base)
        return fitted, truncated


def optimize_prompts(
    storyboard: Storyboard,
    style: str | None = None,
    seed: int | None = None,
    reader: PromptReader | None = None,
    keyframe: PromptReader | None = None,
    negative_prompt: str | None = None,
) -> OptimizedPrompts:
    """Model-facing prompts for every scene of ``storyboard``.

    ``reader``: the text encoder of the video model (or, for a model without text input, of
    the keyframe model: the one ``prompt`` is for); ``keyframe``: a keyframe model's CLIP
    encoder reading other prompts than the video model (``keyframe_prompt``);
    ``negative_prompt``: the video model family's own ("": none); None: the project's base
    list plus the style's.
    """
    style = style or DEFAULT_STYLE
    if style not in STYLE_PRESETS:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLE_PRESETS)}")
    reader = reader or PromptReader()
    base_seed = 0 if seed is None else int(seed)
    style_words, style_negative = STYLE_PRESETS[style]
    base_negative = ", ".join(p for p in (BASE_NEGATIVE, style_negative) if p)
    negative = base_negative if negative_prompt is None else negative_prompt
    scenes = []
    for index, scene in enumerate(storyboard.scenes):
        prompt, truncated = reader.prompt(index, scene.description, style_words)
        texts = reader.texts[index] if reader.texts else ""
        scenes.append(
            ScenePrompt(
                scene_number=scene.scene_number,
                description=scene.description,
                duration_s=scene.duration_s,
                prompt=prompt,
                negative_prompt=negative,
                seed=scene_seed(base_seed, scene.scene_number),
                camera=read_camera(f"{scene.description} {texts}".strip()),
                truncated=truncated,
                keyframe_prompt=(
                    keyframe.prompt(index, scene.description, style_words)[0] if keyframe else None
                ),
                keyframe_negative_prompt=base_negative if keyframe else None,
            )
        )
    return OptimizedPrompts(style=style, base_seed=base_seed, scenes=scenes)
