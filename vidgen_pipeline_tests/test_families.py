"""Every video family through one contract, and each family's tiny random-weight model
(saved like a hub repo) through planning, rendering and the whole graph on the CPU."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import diffusers
import numpy as np
import pytest
from PIL import Image

from vidgen_pipeline.core.images import store_image
from vidgen_pipeline.core.media import probe_video
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.prompts import optimize_prompts
from vidgen_pipeline.core.requests import GenerationSettings, PromptRequest
from vidgen_pipeline.core.storyboard import write_storyboard
from vidgen_pipeline.definitions import defs
from vidgen_pipeline.families.base import ClipRequest, FrameRule
from vidgen_pipeline.families.registry import FAMILIES, VIDEO_MODELS, family_for
from vidgen_pipeline.jobs import register_prompt
from vidgen_pipeline.resources import (
    KeyframeGenerator,
    PromptStoreResource,
    VideoGenerator,
    runtime,
)
from vidgen_pipeline.testing.registry import TINY_VIDEO_MODELS

# The tiny builders of the new families, by the registry entry each stands for.
TINY = {
    "wan2.1-t2v": "wan2.1-t2v-1.3b",
    "wan2.1-i2v": "wan2.1-i2v-14b-480p",
    "wan2.2-ti2v-5b": "wan2.2-ti2v-5b",
    "wan2.2-t2v-a14b": "wan2.2-t2v-a14b",
    "wan2.2-i2v-a14b": "wan2.2-i2v-a14b",
    "ltx-video": "ltx-video",
    "cogvideox-t2v": "cogvideox-2b",
    "cogvideox-i2v": "cogvideox-5b-i2v",
    "hunyuanvideo-1.5-t2v": "hunyuanvideo-1.5-480p",
    "hunyuanvideo-1.5-i2v": "hunyuanvideo-1.5-480p-i2v",
    "ltx-2": "ltx-2",
}
FPS = 8.0


@pytest.fixture
def tiny(tiny_models):
    """The session's tiny models (conftest), built on first use: ``tiny["wan2.1-t2v"]``."""
    return tiny_models


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch, one_thread):
    """No network and an empty Hugging Face cache of this test's own (the library reads its
    cache folder once, at import: patch it where it is read)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    runtime.release_all()
    yield
    runtime.release_all()


def size_of(name: str) -> dict:
    model = TINY_VIDEO_MODELS[name]
    return {"width": model.width, "height": model.height, "fps": FPS, "steps": 2}


def settings_for(tiny, name: str, **extra) -> GenerationSettings:
    image_only = VIDEO_MODELS[TINY[name]].inputs.image == "required"
    keyframes = str(tiny["sd"]) if image_only else None
    return GenerationSettings(video_model=str(tiny[name]), keyframe_model=keyframes, **extra)


def plan_for(tiny, name: str, **extra):
    generator = VideoGenerator(**size_of(name))
    return generator, generator.plan(settings_for(tiny, name, **extra), KeyframeGenerator())


def scene(text="A fox trots through snow.", seed=5):
    board = write_storyboard(text, duration_s=2.0)
    return optimize_prompts(board, seed=seed).scenes[0]


def start_image(name: str, value=90) -> Image.Image:
    model = TINY_VIDEO_MODELS[name]
    pixels = np.random.default_rng(value).integers(0, 256, (model.height, model.width, 3))
    return Image.fromarray(pixels.astype(np.uint8))


# ------------------------------------------------------------------------- the contract


def test_every_registry_entry_names_a_class_its_family_drives():
    for entry in VIDEO_MODELS.values():
        if entry.family == "animatic":
            continue
        pipeline = "AnimateDiffPipeline" if entry.motion_adapter else entry.pipeline
        family = entry.family_module
        assert pipeline in family.pipelines and family_for(pipeline) is family, entry.name
        assert hasattr(diffusers, pipeline), entry.name
        native = entry.output
        assert family.frame_rule.legal(native.frames), entry.name
        assert native.width % family.size_multiple == native.height % family.size_multiple == 0


@pytest.mark.parametrize("name", list(TINY))
def test_every_argument_a_family_passes_is_accepted_by_its_pipeline(tiny, name):
    _, plan = plan_for(tiny, name)
    family = FAMILIES[plan.family]
    starts = [None] if plan.image_input == "none" else [start_image(name)]
    if plan.image_input == "optional":
        starts.insert(0, None)
    for image in starts:
        clip = ClipRequest(frames=plan.frames_per_clip, seed=1, image=image)
        arguments = family.call_arguments(plan, scene(), clip)
        runs = plan.image_pipeline if image is not None else plan.text_pipeline
        accepted = inspect.signature(getattr(diffusers, runs).__call__).parameters
        assert set(arguments) <= set(accepted), (runs, set(arguments) - set(accepted))
        assert ("image" in arguments) == (image is not None)


@pytest.mark.parametrize("name", list(TINY))
def test_plans_follow_the_family_rules(tiny, name):
    generator, plan = plan_for(tiny, name)
    entry = VIDEO_MODELS[TINY[name]]
    assert plan.family == entry.family and plan.pipeline == entry.pipeline
    assert plan.conditioning == entry.inputs.kind
    rule = FrameRule(**plan.frame_rule)
    assert rule.legal(plan.frames_per_clip)
    assert plan.width % plan.size_multiple == plan.height % plan.size_multiple == 0
    odd = plan.size_multiple + plan.size_multiple // 2
    asked = VideoGenerator(**{**size_of(name), "width": odd})
    if plan.pipeline == "HunyuanVideo15ImageToVideoPipeline":
        # It sizes its output itself (a bucket of its target size): the plan takes that size.
        fitted = asked.plan(settings_for(tiny, name), KeyframeGenerator())
        assert fitted.width % plan.size_multiple == 0 and fitted.width != odd
        assert any(note.startswith(f"size {odd}x") for note in fitted.notes)
        return
    with pytest.raises(ModelChoiceError, match=f"width {odd} is not a multiple of"):
        asked.plan(settings_for(tiny, name), KeyframeGenerator())


def test_a_frame_count_the_family_cannot_make_is_raised_with_a_note(tiny):
    _, plan = plan_for(tiny, "wan2.1-t2v", frames=10)
    assert plan.frames_per_clip == 13
    assert "frames 10 -> 13: this model makes 4k+1 frames per clip" in plan.notes
    _, ltx = plan_for(tiny, "ltx-video", frames=10)
    assert ltx.frames_per_clip == 17


# ------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("name", list(TINY))
def test_each_family_renders_exactly_the_frames_asked_and_the_seed_decides(tiny, name):
    generator, plan = plan_for(tiny, name)
    image = start_image(name) if plan.image_input == "required" else None
    first = generator.render(plan, scene(seed=5), image, 11, log=lambda _m: None)
    again = generator.render(plan, scene(seed=5), image, 11, log=lambda _m: None)
    other = generator.render(plan, scene(seed=6), image, 11, log=lambda _m: None)
    model = TINY_VIDEO_MODELS[name]
    assert first.frames.shape == (11, model.height, model.width, 3)
    assert np.array_equal(first.frames, again.frames)
    assert not np.array_equal(first.frames, other.frames)
    assert first.info["family"] == plan.family and first.info["generated"] is True
    assert all(FrameRule(**plan.frame_rule).legal(n) for n in first.info["clip_frames"])


@pytest.mark.parametrize("name", [n for n in TINY if VIDEO_MODELS[TINY[n]].inputs.image != "none"])
def test_image_capable_families_continue_from_an_image(tiny, name):
    generator, plan = plan_for(tiny, name)
    start = start_image(name, 7)
    clip = generator.render(plan, scene(), start, 9, log=lambda _m: None)
    other = generator.render(plan, scene(), start_image(name, 8), 9, log=lambda _m: None)
    assert not np.array_equal(clip.frames, other.frames)  # the image conditions the clip
    follow = generator.render(
        plan, scene(), Image.fromarray(clip.frames[-1]), 9, log=lambda _m: None, continuing=True
    )
    # Continuity: one frame more is made and the first (the given frame again) dropped.
    assert follow.frames.shape == clip.frames.shape
    assert follow.info["clip_frames"][0] == FrameRule(**plan.frame_rule).at_least(10)


def test_a_long_dit_scene_continues_through_the_image_pipeline(tiny, monkeypatch):
    """LTX-Video from text, in two clips: the second starts from the first's last frame, so
    it runs as the image pipeline on the same weights, and no frame repeats at the join."""
    generator = VideoGenerator(**size_of("ltx-video"), frames=9)
    plan = generator.plan(settings_for(tiny, "ltx-video"), KeyframeGenerator())
    asked = []
    real = runtime.pipeline_as

    def pipeline_as(pipe, name):
        asked.append(name)
        return real(pipe, name)

    monkeypatch.setattr(runtime, "pipeline_as", pipeline_as)
    clip = generator.render(plan, scene(), None, 15, log=lambda _m: None)
    assert clip.frames.shape[0] == 15 and clip.info["chunks"] == 2
    assert asked == [plan.text_pipeline, plan.image_pipeline]
    assert plan.text_pipeline != plan.image_pipeline
    steps = np.abs(np.diff(clip.frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert steps.min() > 0  # the join's frame is not the previous one again


def test_a_wan_a14b_folder_without_its_second_transformer_is_one_line(tiny, tmp_path):
    broken = tmp_path / "a14b"
    shutil.copytree(tiny["wan2.2-t2v-a14b"], broken)
    shutil.rmtree(broken / "transformer_2")
    index = json.loads((broken / "model_index.json").read_text())
    index["transformer_2"] = [None, None]
    (broken / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelChoiceError, match="without transformer_2"):
        VideoGenerator(**size_of("wan2.1-t2v")).plan(
            GenerationSettings(video_model=str(broken)), KeyframeGenerator()
        )


def test_a_folder_of_an_unknown_class_lists_the_families(tiny, tmp_path):
    with pytest.raises(ModelChoiceError) as caught:
        VideoGenerator().plan(GenerationSettings(video_model=str(tiny["sd"])), KeyframeGenerator())
    line = str(caught.value)
    assert "a StableDiffusionPipeline is not a video model driven here" in line
    assert "wan (WanPipeline, WanImageToVideoPipeline)" in line and "\n" not in line


# ------------------------------------------------------------------------- the graph


def materialize(instance, request):
    key, _ = register_prompt(request, PromptStoreResource(), instance)
    result = defs.resolve_job_def("generate_video").execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False
    )
    return key, result


def metadata(result, asset):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return {k: v.value for k, v in event.materialization.metadata.items()}


# One model per family through the whole graph (the others render above); the image tests
# below take the image-to-video ones through it.
@pytest.mark.parametrize(
    "name", ["wan2.1-t2v", "wan2.2-t2v-a14b", "cogvideox-t2v", "hunyuanvideo-1.5-t2v"]
)
def test_each_family_makes_a_checked_video_through_the_graph(instance, tiny, name):
    settings = settings_for(tiny, name, duration_s=2.0, scenes=2, seed=3, **size_of(name))
    request = PromptRequest(text="A red kite over hills. It dives to the sea.", settings=settings)
    _, result = materialize(instance, request)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert all(checks.values()), checks
    assert checks["generated_footage"] and checks["duration_as_planned"]
    scenes = metadata(result, "scene_clips")["scenes"]
    assert [s["native_frames"] for s in scenes] == [8, 8]  # 1 s each at 8 fps
    assert {s["family"] for s in scenes} == {VIDEO_MODELS[TINY[name]].family}
    facts = probe_video(Path(metadata(result, "final_video")["path"]))
    assert facts.frame_count == 48 and facts.fps == 24.0  # flow-interpolated to 24 fps


@pytest.mark.parametrize("name", ["ltx-video", "wan2.1-i2v", "cogvideox-i2v"])
def test_the_users_image_starts_the_first_scene(instance, tiny, tmp_path, name):
    path = tmp_path / "start.png"
    start_image(name, 3).resize((200, 150)).save(path)
    settings = settings_for(
        tiny, name, image=store_image(path), duration_s=2.0, scenes=2, **size_of(name)
    )
    request = PromptRequest(text="A red kite over hills. It dives to the sea.", settings=settings)
    _, result = materialize(instance, request)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    keyframes = metadata(result, "keyframes")
    assert keyframes["count"] == (1 if VIDEO_MODELS[TINY[name]].inputs.image == "optional" else 2)
    assert keyframes["user_image"] == settings.image
    assert keyframes["fitted"].startswith("200x150 scaled by")  # noted where the UI shows it
    prompts = metadata(result, "optimized_prompts")
    assert prompts["video_model"] == str(tiny[name])


# ------------------------------------------------------------------ older families, auto


def test_animatediff_on_an_sd_base_gets_the_adapters_scheduler(tmp_path, vidgen_home, tiny):
    """The registry's animatediff is SD 1.5 plus the v1.5-2 motion adapter: DDIM with linear
    betas as the adapter was trained (SD 1.5 ships PNDM with scaled-linear betas)."""
    from vidgen_pipeline.testing.layout import save_hub_snapshot

    animatediff = tiny["animatediff"]
    shutil.copytree(tiny["sd"], vidgen_home / "models" / "animatediff")  # the base
    save_hub_snapshot(
        animatediff / "motion_adapter",
        tmp_path / "hf_home" / "hub",
        VIDEO_MODELS["animatediff"].motion_adapter,
    )
    generator = VideoGenerator(width=64, height=64, fps=8.0, frames=4, steps=2)
    plan = generator.plan(GenerationSettings(video_model="animatediff"), KeyframeGenerator())
    assert plan.pipeline == "AnimateDiffPipeline" and plan.motion_adapter_path
    clip = generator.render(plan, scene(), None, 4, log=lambda _m: None)
    pipe, _ = generator.load(plan)
    config = pipe.scheduler.config
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert config.beta_schedule == "linear" and config.timestep_spacing == "linspace"
    assert clip.info["prepared"] == [
        "DDIM scheduler with linear betas (the motion adapter's setup)"
    ]
    # A folder saved as an AnimateDiffPipeline keeps its own scheduler.
    own = generator.plan(GenerationSettings(video_model=str(animatediff)), KeyframeGenerator())
    assert own.motion_adapter_path is None
    assert "prepared" not in generator.render(own, scene(), None, 4, log=lambda _m: None).info


def test_auto_picks_the_first_model_whose_weights_are_here_and_fit():
    from vidgen_pipeline.resources.video_planning import pick_auto

    everything = {name: "Hugging Face cache" for name in ("wan2.2-ti2v-5b", "ltx-video", "svd-xt")}
    assert pick_auto(everything, 80.0)[0] == "wan2.2-ti2v-5b"
    name, reason = pick_auto(everything, 20.0)  # the 5B needs ~24 GB
    assert name == "ltx-video"
    assert "ltx-video, the first of wan2.2-ti2v-5b, ltx-video" in reason and "20 GB free" in reason
    assert pick_auto({"svd-xt": "VIDGEN_HOME/models"}, 40.0)[0] == "svd-xt"
    name, reason = pick_auto({"svd-xt": "VIDGEN_HOME/models"}, 8.0)
    assert name is None
    assert "wan2.2-ti2v-5b: no weights" in reason and "svd-xt: needs ~16 GB, 8 GB free" in reason


def test_vidgen_models_lists_every_entry_and_whether_its_weights_are_here(
    vidgen_home, tiny, capsys
):
    from vidgen_pipeline.cli import main

    shutil.copytree(tiny["ltx-video"], vidgen_home / "models" / "ltx-video")
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "name",
        "family",
        "takes",
        "native",
        "output",
        "VRAM",
        "reads",
        "sound",
        "weights",
    ]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(VIDEO_MODELS)
    assert "text+image" in rows["ltx-video"] and "~16 GB" in rows["ltx-video"]
    assert rows["ltx-video"].endswith(f"VIDGEN_HOME/models: {vidgen_home / 'models' / 'ltx-video'}")
    assert rows["wan2.2-ti2v-5b"].split()[-1] == "absent" and "zh, en" in rows["wan2.2-ti2v-5b"]
    assert "121 x 1280x704 at 24 fps" in rows["wan2.2-ti2v-5b"]


@pytest.mark.parametrize("name", ["cogvideox-t2v", "hunyuanvideo-1.5-t2v"])
def test_vidgen_generate_through_the_other_dit_families(tiny, tmp_path, name):
    import subprocess

    from vidgen_pipeline_tests.conftest import VIDGEN, cli_env

    size = size_of(name)
    env = {**cli_env(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = ["--video-model", str(tiny[name]), "--duration", "1", "--seed", "4", "--steps", "2"]
    args += ["--width", str(size["width"]), "--height", str(size["height"]), "--fps", "8"]
    done = subprocess.run(
        [*VIDGEN, "generate", "A red kite over hills.", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert f"loaded {VIDEO_MODELS[TINY[name]].pipeline}" in done.stderr
    facts = probe_video(Path(done.stdout.strip().splitlines()[-1]))
    assert (facts.width, facts.height, facts.frame_count) == (size["width"], size["height"], 24)


def test_vidgen_generate_makes_a_wan_video_from_a_chinese_prompt(tiny, tmp_path):
    """Wan's umT5 reads Chinese: the storyboard's own words reach it (no translation)."""
    import subprocess

    from vidgen_pipeline_tests.conftest import VIDGEN, cli_env

    home = tmp_path / "home"
    env = {**cli_env(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = ["--video-model", str(tiny["wan2.1-t2v"]), "--frames", "10", "--duration", "2"]
    size = ["--width", "32", "--height", "32", "--fps", "8", "--steps", "2", "--seed", "4"]
    done = subprocess.run(
        [*VIDGEN, "generate", "一只熊猫在竹林里吃竹子。熊猫抬头看镜头。", *args, *size],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "frames 10 -> 13: this model makes 4k+1 frames per clip" in done.stderr
    assert "loaded WanPipeline" in done.stderr and "prompts stay in Chinese" not in done.stderr
    facts = probe_video(Path(done.stdout.strip().splitlines()[-1]))
    assert (facts.width, facts.height, facts.frame_count) == (32, 32, 48)
