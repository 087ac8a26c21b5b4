"""The rule-based prompt optimiser: storyboard scenes -> model-facing prompts.

Per scene: the prompt the model sees (style words appended, cut at a word boundary to what
a CLIP text encoder can take), a negative prompt, camera motion read from the text, and a
seed derived from the run's one seed so every scene is reproducible on its own.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel, ConfigDict, Field

from vidgen_pipeline.core.models import VideoPlan
from vidgen_pipeline.core.storyboard import Storyboard

# Roughly 77 CLIP tokens: ~1.3 tokens per English word, ~1 token per CJK character (worst
# case 2-3). The real tokenizer count is done where a tokenizer is loaded.
MAX_PROMPT_WORDS = 55
MAX_PROMPT_CJK_CHARS = 60

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
_CAMERA_PHRASES: list[tuple[str, dict]] = [
    (
        r"zoom(?:ing|s)? in|push(?:ing)? in|dolly in|拉近|推近|镜头推进",
        {"name": "zoom in", "zoom": 1.3},
    ),
    (
        r"zoom(?:ing|s)? out|pull(?:ing)? (?:back|out)|dolly out|拉远",
        {"name": "zoom out", "zoom": 1 / 1.3},
    ),
    (r"pan(?:ning|s)? left|向左平移|左移", {"name": "pan left", "pan_x": -0.2, "zoom": 1.0}),
    (r"pan(?:ning|s)? right|向右平移|右移", {"name": "pan right", "pan_x": 0.2, "zoom": 1.0}),
    (r"tilt(?:ing|s)? up|向上倾斜|镜头上摇", {"name": "tilt up", "pan_y": -0.2, "zoom": 1.0}),
    (r"tilt(?:ing|s)? down|向下倾斜|镜头下摇", {"name": "tilt down", "pan_y": 0.2, "zoom": 1.0}),
    (r"static|still camera|locked[- ]off|静止|固定镜头", {"name": "static", "zoom": 1.0}),
]
_SLOW_MOTION = re.compile(r"slow[- ]motion|慢动作|慢镜头", re.IGNORECASE)


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


class OptimizedPrompts(BaseModel):
    """The ``optimized_prompts`` asset."""

    model_config = ConfigDict(extra="forbid")

    style: str
    base_seed: int
    optimizer: str = "rules"
    scenes: list[ScenePrompt]
    keyframe_model: str = "cards"
    video: VideoPlan | None = None


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


def fit_prompt(text: str) -> tuple[str, bool]:
    """Cut ``text`` to what a CLIP text encoder takes, never inside a word."""
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    if cjk > len(text) / 3:
        if len(text) <= MAX_PROMPT_CJK_CHARS:
            return text, False
        cut = text[:MAX_PROMPT_CJK_CHARS]
        # Prefer ending at punctuation inside the window.
        stop = max(cut.rfind(p) for p in "，。；、,;")
        return (cut[: stop + 1] if stop > MAX_PROMPT_CJK_CHARS // 2 else cut), True
    words = text.split()
    if len(words) <= MAX_PROMPT_WORDS:
        return text, False
    return " ".join(words[:MAX_PROMPT_WORDS]).rstrip(",;:"), True


def optimize_prompts(
    storyboard: Storyboard, style: str | None = None, seed: int | None = None
) -> OptimizedPrompts:
    """Model-facing prompts for every scene of ``storyboard``."""
    style = style or DEFAULT_STYLE
    if style not in STYLE_PRESETS:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLE_PRESETS)}")
    base_seed = 0 if seed is None else int(seed)
    style_words, style_negative = STYLE_PRESETS[style]
    negative = ", ".join(p for p in (BASE_NEGATIVE, style_negative) if p)
    scenes = []
    for scene in storyboard.scenes:
        # Style words go last so a cut for length drops them before the scene's own words.
        fitted, truncated = fit_prompt(
            f"{scene.description}, {style_words}" if style_words else scene.description
        )
        if truncated and len(fit_prompt(scene.description)[0]) < len(scene.description):
            fitted, _ = fit_prompt(scene.description)
        scenes.append(
            ScenePrompt(
                scene_number=scene.scene_number,
                description=scene.description,
                duration_s=scene.duration_s,
                prompt=fitted,
                negative_prompt=negative,
                seed=scene_seed(base_seed, scene.scene_number),
                camera=read_camera(scene.description),
                truncated=truncated,
            )
        )
    return OptimizedPrompts(style=style, base_seed=base_seed, scenes=scenes)
