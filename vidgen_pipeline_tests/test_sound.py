"""Sound: narration (espeak-ng, a tiny random-weight VITS through the real loader), a music bed
ducked under it, a model's own audio, one AAC track as long as the video, and the one-line
refusals (a music file that is not audio, a pickle-only or broken voice folder, no voice)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vidgen_pipeline_tests.conftest import VIDGEN, checks, cli_env, metadata, run_prompt

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (.ci/run installs it)"
)

_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)")


def tone(path: Path, frequency: float, seconds: float) -> Path:
    """A stereo sine as ``path`` (its format from the suffix), made by ffmpeg."""
    from vidgen_pipeline.core.audio import ffmpeg_exe

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i"]
        + [f"sine=frequency={frequency}:duration={seconds}", "-ac", "2", str(path)],
        check=True,
    )
    return path


def cues(vtt: Path) -> list[tuple[float, float, str]]:
    found = []
    for m in _CUE.finditer(vtt.read_text(encoding="utf-8")):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in m.groups()[:8])
        found.append(
            (h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000, m[9])
        )
    return found


def band_level(samples: np.ndarray, rate: int, start: float, end: float, hz: float) -> float:
    """The level (dB) of the ``hz`` component of ``samples`` between ``start`` and ``end`` s."""
    window = samples[round(start * rate) : round(end * rate)].mean(axis=1)
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
    freqs = np.fft.rfftfreq(len(window), 1 / rate)
    band = spectrum[(freqs > hz - 5) & (freqs < hz + 5)]
    return 20 * np.log10(band.max() + 1e-9)


def speech_band_db(samples: np.ndarray, rate: int, start: float, end: float) -> float:
    """The mean power (dB) between 200 Hz and 4 kHz (the voice, not the 55 Hz bed)."""
    window = samples[round(start * rate) : round(end * rate)].mean(axis=1)
    power = np.abs(np.fft.rfft(window * np.hanning(len(window)))) ** 2 / len(window)
    freqs = np.fft.rfftfreq(len(window), 1 / rate)
    return 10 * np.log10(power[(freqs > 200) & (freqs < 4000)].mean() + 1e-12)


def test_narration_over_a_ducked_music_bed_is_one_aac_track(instance, vidgen_home):
    """One sentence over two shots: scene 1 speaks it, scene 2 is silent; a 55 Hz bed (below
    espeak's voice) is ducked while the line is spoken; subtitles are burned in."""
    from vidgen_pipeline.core.audio import read_wav
    from vidgen_pipeline.core.media import probe_video
    from vidgen_pipeline.core.music import is_music_reference, store_music
    from vidgen_pipeline.core.sound import probe_audio

    music = store_music(tone(vidgen_home / "inputs" / "bed.mp3", 55, 2.0))
    assert is_music_reference(music)
    key, result = run_prompt(
        instance,
        "A red fox runs across the snow.",
        scenes=2,
        narration=True,
        music=music,
        burn_subtitles=True,
    )
    assert result.success
    assert checks(result)["one_audio_track"] and checks(result)["plays_in_browser"]
    video = metadata(result, "final_video")
    board = result.output_for_node("script")[key]
    assert [s.narration for s in board.scenes] == ["A red fox runs across the snow.", ""]
    assert any("lengthened" in note for note in board.notes)  # 3 s could not hold the line
    # 1. one AAC track, as long as the video within one frame
    mp4 = Path(video["path"])
    picture, sound = probe_video(mp4), probe_audio(mp4)
    assert picture.codec == "h264" and picture.pix_fmt == "yuv420p" and picture.faststart
    assert sound.codecs == ["aac"]
    assert abs(sound.duration_s - picture.duration_s) <= 1 / picture.fps
    # 2. the speech is where its scene is: its cue inside scene 1, louder than scene 2
    (spoken,) = cues(mp4.with_suffix(".vtt"))
    scene_1 = board.scenes[0].duration_s
    assert 0 < spoken[0] < spoken[1] <= scene_1 and spoken[2] == board.scenes[0].narration
    mix, rate = read_wav(mp4.with_suffix(".wav"))
    assert len(mix) == round(picture.duration_s * rate)
    # scene 2: past the compressor's release, before the bed's fade-out (a tenth of the video)
    gap = (scene_1 + 0.6, picture.duration_s * 0.9 - 0.05)
    assert speech_band_db(mix, rate, *spoken[:2]) > speech_band_db(mix, rate, *gap) + 20
    # 3. the bed is ducked under the speech
    middle = (spoken[0] + spoken[1]) / 2
    under = band_level(mix, rate, middle - 0.25, middle + 0.25, 55)
    alone = band_level(mix, rate, gap[1] - 0.5, gap[1], 55)  # the bed alone, at full level
    assert under < alone - 6
    assert video["sound"]["levels"]["duck_db"] < -6
    assert video["sound"]["voice"].startswith("espeak") and video["sound"]["music"] == music


def test_chinese_narration_speaks_with_espeak_cmn(vidgen_home):
    from vidgen_pipeline.assets.sound_track import narrated
    from vidgen_pipeline.core.requests import GenerationSettings
    from vidgen_pipeline.core.storyboard import write_storyboard
    from vidgen_pipeline.resources.narrator import Narrator

    board = write_storyboard("一只红狐狸在雪地里奔跑。它停在结冰的湖边。", 2.0, narrate=True)
    assert board.language == "zh" and board.scenes[0].narration == "一只红狐狸在雪地里奔跑。"
    timed, voice = narrated(board, GenerationSettings(narration=True), Narrator(), print)
    assert voice.kind == "espeak" and voice.name == "cmn"
    samples, rate = Narrator().speak(voice, board.scenes[0].narration)
    assert len(samples) / rate > 0.8 and np.abs(samples).max() > 0.05  # real speech
    assert timed.scenes[0].duration_s >= len(samples) / rate + 0.6
    assert abs(sum(s.duration_s for s in timed.scenes) - timed.target_duration_s) < 1e-6


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory) -> Path:
    from vidgen_pipeline.testing.tiny_vits import save_tiny_vits

    return save_tiny_vits(tmp_path_factory.mktemp("voices") / "mms-tts-tiny")


def test_a_tiny_vits_voice_loads_through_the_narrator(tiny_vits, vidgen_home, one_thread):
    from vidgen_pipeline.resources.narrator import Narrator

    folder = tiny_vits
    narrator = Narrator(voice_model=str(folder))
    voice = narrator.voice(None, "en")
    assert voice.kind == "model" and voice.identity.startswith("vits:")
    short, rate = narrator.speak(voice, "A fox.")
    long, _ = narrator.speak(voice, "A red fox runs across the snow to the lake.")
    assert rate == 16_000 and 0 < len(short) < len(long)
    again, _ = narrator.speak(voice, "A fox.")
    assert np.array_equal(short, again)
    assert len(list((vidgen_home / "cache" / "speech").glob("*.wav"))) == 2
    assert narrator.speak(voice, "  ")[0].size == 0  # an empty line is silence


def test_a_scene_clips_own_audio_reaches_the_track(tmp_path, vidgen_home):
    """A model's sound (here a 880 Hz sine on scene 1, as LTX-2 would return it at 24 kHz) is
    resampled, placed at its scene and fitted to its length in the AAC track, over a music
    bed (no narration: nothing ducks it)."""
    from vidgen_pipeline.assets.final_video import finish_video
    from vidgen_pipeline.assets.quality_checks import audio_track_verdict
    from vidgen_pipeline.core.audio import read_wav
    from vidgen_pipeline.core.clips import SceneClip
    from vidgen_pipeline.core.finishing.plan import plan_finishing
    from vidgen_pipeline.core.music import store_music
    from vidgen_pipeline.core.prompts import optimize_prompts
    from vidgen_pipeline.core.sound import SoundPlan, probe_audio
    from vidgen_pipeline.core.storyboard import write_storyboard

    board = write_storyboard("A bell rings. The square is quiet.", 2.0)
    prompts = optimize_prompts(board)
    prompts.finishing = plan_finishing([s.duration_s for s in board.scenes], 8.0, False)
    music = store_music(tone(tmp_path / "bed.flac", 220, 0.5))  # looped to the video's length
    prompts.finishing.sound = SoundPlan(music=music)
    rng = np.random.default_rng(0)
    clips = []
    for scene in board.scenes:
        frames = rng.integers(0, 255, (round(scene.duration_s * 8), 64, 96, 3), np.uint8)
        clips.append(SceneClip(scene.scene_number, frames, 8.0))
    t = np.arange(round(board.scenes[0].duration_s * 24_000)) / 24_000
    clips[0].audio = (0.5 * np.sin(2 * np.pi * 880 * t)).astype(np.float32)[:, None]
    clips[0].audio_rate = 24_000
    video, facts, _, meta = finish_video(board, prompts, clips, tmp_path, print)
    assert probe_audio(video.path).codecs == ["aac"]
    assert audio_track_verdict(video.path, facts.duration_s, video.fps, True).passed
    sound = meta["sound"].value
    assert sound["model_audio"] == {"1": True, "2": False} and sound["music"] == music
    assert "duck_db" not in sound["levels"] and sound["levels"]["music_lufs"] < -20
    mix, rate = read_wav(video.audio_path)
    first = board.scenes[0].duration_s
    assert (
        band_level(mix, rate, 0.2, first - 0.2, 880)
        > band_level(mix, rate, first + 0.2, facts.duration_s - 0.1, 880) + 30
    )
    # the bed plays in both scenes (looped: the file is a quarter of the video)
    for window in ((0.3, first - 0.2), (first + 0.2, facts.duration_s - 0.3)):
        assert band_level(mix, rate, *window, 220) > 20


def test_music_that_is_not_audio_is_one_line(tmp_path, vidgen_home):
    from vidgen_pipeline.core.datasets import read_dataset
    from vidgen_pipeline.core.models import ModelChoiceError
    from vidgen_pipeline.core.music import store_music

    fake = tmp_path / "song.mp3"
    fake.write_text("not music at all\n")
    with pytest.raises(ModelChoiceError) as error:
        store_music(fake)
    assert "not audio ffmpeg can read" in str(error.value) and "\n" not in str(error.value)
    # A dataset's music column: stored by digest beside a good row, refused in one line
    tone(tmp_path / "bed.wav", 220, 1.0)
    (tmp_path / "rows.csv").write_text("prompt,music\nA fox.,bed.wav\nA lake.,song.mp3\n")
    result = read_dataset(tmp_path / "rows.csv")
    (entry,) = result.entries
    assert re.fullmatch(r"inputs/[0-9a-f]{64}\.wav", entry.request.settings.music)
    (problem,) = result.errors
    assert problem.line == 3 and "not audio" in problem.message


def test_a_pickle_only_or_broken_voice_folder_is_one_line(tmp_path):
    from vidgen_pipeline.core.models import ModelChoiceError
    from vidgen_pipeline.resources.narrator import Narrator

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text('{"model_type": "vits"}')
    (pickled / "tokenizer_config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    for folder, words in ((pickled, "only pickle weights"), (broken, "not valid JSON")):
        with pytest.raises(ModelChoiceError) as error:
            Narrator().voice(str(folder), "en")
        assert words in str(error.value) and "\n" not in str(error.value)


def test_narration_without_any_voice_says_how_to_get_one(tmp_path):
    """The CLI refuses before any work: no model set, no espeak-ng on the PATH."""
    bare = tmp_path / "bin"
    bare.mkdir()
    done = subprocess.run(
        [*VIDGEN, "generate", "A fox.", "--narration"],
        env={**cli_env(tmp_path / "home"), "PATH": str(bare)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    line = done.stderr.strip().splitlines()[-1]
    assert "install espeak-ng" in line and "--voice-model" in line


def test_scenes_follow_the_speech_within_the_600_s_limit():
    from vidgen_pipeline.core.narration import speech_fitted, timed_to_speech
    from vidgen_pipeline.core.storyboard import MAX_DURATION_S, write_storyboard

    board = write_storyboard("A fox runs. A lake freezes.", 4.0, narrate=True)
    timed = timed_to_speech(board, [3.0, 0.0])  # a long line, and a silent scene
    assert [s.duration_s for s in timed.scenes] == [3.6, board.scenes[1].duration_s]
    assert timed.target_duration_s == round(3.6 + board.scenes[1].duration_s, 3)
    assert "scene 1 lengthened" in timed.notes[-1]
    capped = timed_to_speech(board, [500.0, 400.0])  # a narration far too long
    assert sum(s.duration_s for s in capped.scenes) == pytest.approx(MAX_DURATION_S)
    assert capped.target_duration_s == MAX_DURATION_S and "600 s limit" in capped.notes[-1]
    factor, note = speech_fitted(500.0, capped.scenes[0].duration_s)
    assert factor > 1 and "sped up" in note
    assert timed_to_speech(board, [0.1, 0.1]) is board  # lines that fit change nothing


def test_the_llm_is_asked_for_narration_and_its_missing_lines_are_filled():
    from vidgen_pipeline.core.script_llm import (
        parse_storyboard,
        storyboard_messages,
        with_narration,
    )

    system = storyboard_messages("一只狐狸。", "zh", 4.0, 2, narrate=True)[0]["content"]
    assert "narration" in system and "中文" in system
    assert "narration" not in storyboard_messages("A fox.", "en", 4.0, 2)[0]["content"]
    reply = (
        '{"title": "Fox", "scenes": [{"scene_number": 1, "description": "A fox in snow.", '
        '"duration_s": 2, "narration": "The fox waits."}, {"scene_number": 2, "description": '
        '"A frozen lake.", "duration_s": 2}]}'
    )
    board = parse_storyboard(reply, "en", 4.0, 2, writer="llm:test")
    lines = [s.narration for s in with_narration(board, True).scenes]
    assert lines == ["The fox waits.", "A frozen lake."]
    assert [s.narration for s in with_narration(board, False).scenes] == [None, None]


def test_burned_subtitles_draw_the_line_only_while_it_is_spoken():
    from vidgen_pipeline.core.subtitles import burned

    frames = [np.zeros((72, 128, 3), np.uint8) for _ in range(16)]  # 2 s at 8 fps
    out = list(burned(frames, [(0.5, 1.0, "狐狸在雪地里")], 8.0))
    lit = [int((frame[36:] > 128).sum()) for frame in out]
    assert all(lit[i] > 20 for i in range(4, 8))  # white glyphs in the lower half
    assert all(lit[i] == 0 for i in (*range(4), *range(8, 16)))
    assert not out[5][:24].any()  # nothing drawn at the top


def test_the_launchpad_reads_music_only_from_the_inputs_folder(instance, vidgen_home, tmp_path):
    from vidgen_pipeline.core.music import is_music_reference
    from vidgen_pipeline.definitions import defs
    from vidgen_pipeline.resources import PromptStoreResource

    def add(music: str):
        config = {"prompt": "A red door.", "music": music, "narration": True}
        return defs.resolve_job_def("add_prompt_job").execute_in_process(
            instance=instance,
            run_config={"ops": {"add_prompt": {"config": config}}},
            raise_on_error=False,
        )

    refused = add(str(tone(tmp_path / "private.wav", 220, 1.0)))
    assert not refused.success
    (failure,) = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "only files under the allowed folders" in failure.event_specific_data.error.message
    tone(vidgen_home / "inputs" / "bed.ogg", 220, 1.0)
    added = add("bed.ogg")  # relative to VIDGEN_HOME/inputs
    assert added.success
    stored = PromptStoreResource().store().get(added.output_for_node("add_prompt"))
    assert is_music_reference(stored.settings.music) and stored.settings.narration is True


def test_a_tiny_vits_narration_is_spoken_in_its_scene(tiny_vits, tmp_path, vidgen_home, one_thread):
    """The voice model a prompt names speaks its lines into the final track, scene by scene."""
    from vidgen_pipeline.assets.final_video import finish_video
    from vidgen_pipeline.assets.sound_track import narrated
    from vidgen_pipeline.core.audio import read_wav
    from vidgen_pipeline.core.clips import SceneClip
    from vidgen_pipeline.core.finishing.plan import plan_finishing
    from vidgen_pipeline.core.prompts import optimize_prompts
    from vidgen_pipeline.core.requests import GenerationSettings
    from vidgen_pipeline.core.sound import SoundPlan, probe_audio
    from vidgen_pipeline.core.storyboard import write_storyboard
    from vidgen_pipeline.resources.narrator import Narrator

    settings = GenerationSettings(narration=True, voice_model=str(tiny_vits))
    board = write_storyboard("A bell rings over the square.", 3.0, 2, narrate=True)
    board, voice = narrated(board, settings, Narrator(), print)
    assert voice.kind == "model" and [bool(s.narration) for s in board.scenes] == [True, False]
    prompts = optimize_prompts(board)
    prompts.finishing = plan_finishing([s.duration_s for s in board.scenes], 8.0, False)
    prompts.finishing.sound = SoundPlan(narration=True, voice_model=str(tiny_vits))
    rng = np.random.default_rng(0)
    clips = [
        SceneClip(s.scene_number, rng.integers(0, 255, (8, 64, 96, 3), np.uint8), 8.0)
        for s in board.scenes
    ]
    video, facts, _, meta = finish_video(board, prompts, clips, tmp_path, print)
    assert probe_audio(video.path).codecs == ["aac"]
    assert meta["sound"].value["voice_model"] == str(tiny_vits)
    mix, rate = read_wav(video.audio_path)
    first = board.scenes[0].duration_s
    assert (
        speech_band_db(mix, rate, 0.2, first - 0.4)
        > speech_band_db(mix, rate, first + 0.1, facts.duration_s) + 20
    )
