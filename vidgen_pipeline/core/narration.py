"""Scene timing that follows the narration: a scene lasts at least as long as its spoken line
plus a breath, the video as a whole at most ``MAX_DURATION_S``.

A line starts ``LEAD_S`` after its scene's cut and leaves ``TAIL_S`` before the next, so the
words never run over a cut. Where the limit does not leave room, the durations are scaled to
fit and the mix speeds the lines that still do not fit up (``speech_fitted``), with a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vidgen_pipeline.core.storyboard import MAX_DURATION_S, MIN_SCENE_S, Storyboard

LEAD_S = 0.2
TAIL_S = 0.4
MAX_SPEEDUP = 2.0  # beyond that a line is cut rather than sped into gibberish


def timed_to_speech(board: Storyboard, speech_s: Sequence[float]) -> Storyboard:
    """``board`` with each scene at least ``speech + LEAD_S + TAIL_S`` long (whole
    milliseconds), the total within ``MAX_DURATION_S``; a note says what changed."""
    if len(speech_s) != len(board.scenes):
        raise ValueError(f"{len(speech_s)} spoken lines for {len(board.scenes)} scenes")
    before = [scene.duration_s for scene in board.scenes]
    after = [
        max(d, math.ceil((s + LEAD_S + TAIL_S) * 1000) / 1000) if s > 0 else d
        for d, s in zip(before, speech_s, strict=True)
    ]
    notes = []
    longer = [i + 1 for i, (a, b) in enumerate(zip(after, before, strict=True)) if a > b]
    if longer:
        which = ("scene " if len(longer) == 1 else "scenes ") + ", ".join(map(str, longer))
        notes.append(
            f"narration: {which} lengthened to fit the spoken line; "
            f"{sum(before):g} s -> {sum(after):g} s"
        )
    if sum(after) > MAX_DURATION_S:
        after = _scaled_to(after, MAX_DURATION_S)
        notes.append(
            f"narration: the lines need more than the {MAX_DURATION_S:g} s limit; scenes "
            f"scaled to {MAX_DURATION_S:g} s, lines that still do not fit are sped up"
        )
    if not notes:
        return board
    scenes = [
        scene.model_copy(update={"duration_s": d})
        for scene, d in zip(board.scenes, after, strict=True)
    ]
    return board.model_copy(
        update={
            "scenes": scenes,
            "target_duration_s": round(sum(after), 3),
            "notes": [*board.notes, *notes],
        }
    )


def _scaled_to(durations: list[float], total: float) -> list[float]:
    """``durations`` scaled to add up to ``total`` exactly (ms), none under ``MIN_SCENE_S``."""
    scale = total / sum(durations)
    scaled = [max(MIN_SCENE_S, math.floor(d * scale * 1000) / 1000) for d in durations]
    spare_ms = round(total * 1000) - round(sum(scaled) * 1000)
    longest = max(range(len(scaled)), key=lambda i: scaled[i])
    scaled[longest] = round(scaled[longest] + spare_ms / 1000, 3)
    return scaled


def speech_room(duration_s: float) -> float:
    """How long a line may be in a scene of ``duration_s`` seconds."""
    return max(0.1, duration_s - LEAD_S - TAIL_S)


def speech_fitted(speech_s: float, duration_s: float) -> tuple[float, str | None]:
    """The tempo factor that fits a line into its scene (1: fits) and a note when not 1."""
    room = speech_room(duration_s)
    if speech_s <= room:
        return 1.0, None
    factor = speech_s / room
    if factor <= MAX_SPEEDUP:
        return factor, f"line of {speech_s:.2f} s sped up {factor:.2f}x into {room:.2f} s"
    return MAX_SPEEDUP, f"line of {speech_s:.2f} s sped up {MAX_SPEEDUP:g}x and cut at {room:.2f} s"
