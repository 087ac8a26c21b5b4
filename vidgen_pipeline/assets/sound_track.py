"""The sound of a prompt, for the ``script`` and ``final_video`` assets: the narration that
times the scenes, and the track mixed from narration, model audio and music."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from vidgen_pipeline.core.clips import SceneClip
from vidgen_pipeline.core.music import stored_music
from vidgen_pipeline.core.narration import timed_to_speech
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.sound import SceneSound, SoundPlan, SoundTrack, mix_track
from vidgen_pipeline.core.storyboard import Storyboard
from vidgen_pipeline.resources.narrator import Narrator, Voice


def narrated(
    board: Storyboard, settings: GenerationSettings, narrator: Narrator, log
) -> tuple[Storyboard, Voice | None]:
    """``board`` timed to its spoken lines when narration is on (each line spoken now, and
    cached for ``final_video``), and the voice that spoke them."""
    if not settings.narration:
        return board, None
    voice = narrator.voice(settings.voice_model, board.language)
    seconds = []
    for scene in board.scenes:
        samples, rate = narrator.speak(voice, scene.narration or "")
        seconds.append(len(samples) / rate)
    log(f"narration by {voice.kind} {voice.identity}: " + ", ".join(f"{s:.2f} s" for s in seconds))
    return timed_to_speech(board, seconds), voice


def sound_track(
    script: Storyboard,
    clips: Sequence[SceneClip],
    plan: SoundPlan,
    narrator: Narrator,
    folder: Path,
    log,
) -> tuple[SoundTrack | None, dict]:
    """The mixed track of one prompt (None when it has no sound at all) and its provenance
    (voice, music and its digest, levels, model audio per scene, the sound's key)."""
    with_audio = [c.scene_number for c in clips if c.audio is not None]
    if not (plan.narration or plan.music or with_audio):
        return None, {}
    voice = narrator.voice(plan.voice_model, script.language) if plan.narration else None
    scenes, start = [], 0.0
    for scene, clip in zip(script.scenes, clips, strict=True):
        speech, rate = (None, 0)
        if voice is not None:
            speech, rate = narrator.speak(voice, scene.narration or "")
        scenes.append(
            SceneSound(
                start_s=start,
                duration_s=scene.duration_s,
                line=scene.narration or "",
                speech=speech,
                speech_rate=rate or 16_000,
                model_audio=clip.audio,
                model_rate=clip.audio_rate,
            )
        )
        start += scene.duration_s
    music = stored_music(plan.music) if plan.music else None
    track = mix_track(scenes, start, music, folder)
    for note in track.notes:
        log(f"sound: {note}")
    info = {
        "voice": f"{voice.kind}: {voice.identity}" if voice else "none",
        "voice_model": voice.name if voice and voice.kind == "model" else None,
        "music": plan.music or "none",
        "levels": track.levels,
        "model_audio": {str(c.scene_number): c.audio is not None for c in clips},
        "notes": track.notes,
    }
    info["key"] = _sound_key(scenes, voice, plan, clips)
    return track, info


def _sound_key(scenes: Sequence[SceneSound], voice, plan: SoundPlan, clips) -> str:
    """What the track depends on: the lines and their timing, the voice, the music's digest
    (its reference), the model audio's samples."""
    digest = hashlib.sha256()
    digest.update(f"{voice.identity if voice else ''}\x1f{plan.music or ''}".encode())
    for scene in scenes:
        digest.update(f"\x1e{scene.start_s:.3f}:{scene.duration_s:.3f}:{scene.line}".encode())
    for clip in clips:
        if clip.audio is not None:
            digest.update(f"{clip.audio_rate}".encode() + clip.audio.tobytes())
    return digest.hexdigest()[:16]
