"""Storyboard cards: the keyframe of a scene when no text-to-image model is configured.

Text renders in any script: the font is Noto Sans CJK (Latin, Greek, Cyrillic, Chinese,
Japanese, Korean), shipped by the ``noto-cjk-sans-otc`` package. PIL's default font has no
CJK glyphs.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import unicodedata

from noto_cjk_sans_otc import FONT_PATH
from PIL import Image, ImageDraw, ImageFont

CARD_LABEL = "storyboard card · not generated footage"


@functools.lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size=size, index=0)


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def wrap_text(text: str, face: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Wrap at spaces for Latin text and between any two characters of CJK text."""
    tokens: list[str] = []
    word = ""
    for ch in text:
        if _is_wide(ch):
            if word:
                tokens.append(word)
                word = ""
            tokens.append(ch)
        elif ch.isspace():
            if word:
                tokens.append(word)
                word = ""
            tokens.append(" ")
        else:
            word += ch
    if word:
        tokens.append(word)
    lines: list[str] = []
    line = ""
    for token in tokens:
        candidate = line + token
        if face.getlength(candidate) <= max_width or not line.strip():
            line = candidate
        else:
            lines.append(line.rstrip())
            line = "" if token == " " else token
    if line.strip():
        lines.append(line.rstrip())
    return lines


def drawable(text: str) -> str:
    """Drop pictographs (emoji) the font has no glyph for, instead of drawing empty boxes."""
    return "".join(
        ch
        for ch in text
        if not (ord(ch) >= 0x1F000 or unicodedata.category(ch) in ("So", "Cs", "Co"))
    ).strip()


def _palette(seed_text: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    hue = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:2], "big") / 65535
    top = colorsys.hsv_to_rgb(hue, 0.55, 0.42)
    bottom = colorsys.hsv_to_rgb((hue + 0.08) % 1.0, 0.65, 0.16)
    return tuple(int(c * 255) for c in top), tuple(int(c * 255) for c in bottom)  # type: ignore[return-value]


def render_card(
    description: str,
    scene_number: int,
    scene_count: int,
    title: str,
    width: int,
    height: int,
) -> Image.Image:
    """A labelled card: title, "Scene n / N", the scene's description, and what it is."""
    top, bottom = _palette(f"{title}:{scene_number}")
    title, description = drawable(title), drawable(description) or "…"
    ramp = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), ramp
    )
    draw = ImageDraw.Draw(image)
    unit = max(8, min(width, height) // 18)
    margin = unit * 2
    small, body = font(max(8, unit * 3 // 4)), font(max(10, unit * 5 // 4))
    draw.text((margin, margin), f"{title[:80]}", font=small, fill=(235, 235, 235))
    draw.text(
        (margin, margin + unit * 1.4),
        f"Scene {scene_number} / {scene_count}",
        font=font(unit),
        fill=(255, 255, 255),
    )
    lines = wrap_text(description, body, width - 2 * margin)
    line_height = int(body.size * 1.35)
    room = max(1, (height - margin * 2 - unit * 5) // line_height)
    if len(lines) > room:
        lines = lines[:room]
        lines[-1] = lines[-1].rstrip() + "…"
    y = margin + unit * 3.4
    for line in lines:
        draw.text((margin, y), line, font=body, fill=(250, 250, 250))
        y += line_height
    draw.text((margin, height - margin), CARD_LABEL, font=small, fill=(200, 200, 200), anchor="ls")
    return image
