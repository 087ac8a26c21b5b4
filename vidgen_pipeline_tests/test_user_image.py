"""The user's own image: checked, stored by digest, fitted, and the first scene's start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidgen_pipeline.core import images
from vidgen_pipeline.core.images import check_image, fit_image, store_image, stored_image
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.resources import KeyframeGenerator, VideoGenerator


def photo(path, size=(320, 200), colour=(200, 40, 30)):
    Image.new("RGB", size, colour).save(path)
    return path


def test_missing_undecodable_and_oversized_images_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(ModelChoiceError, match="no such file"):
        check_image(str(tmp_path / "absent.png"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ModelChoiceError, match="does not decode as an image"):
        check_image(str(broken))
    truncated = tmp_path / "truncated.jpg"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "whole.jpg", quality=95)
    truncated.write_bytes((tmp_path / "whole.jpg").read_bytes()[:200])
    with pytest.raises(ModelChoiceError, match="does not decode"):
        check_image(str(truncated))
    monkeypatch.setattr(images, "MAX_MEGAPIXELS", 0.05)  # 50,000 pixels
    with pytest.raises(ModelChoiceError, match=r"320x200 is over the limit of 0.05 megapixels"):
        check_image(str(photo(tmp_path / "big.png")))


def test_paths_from_the_ui_are_read_only_under_the_allowed_folders(tmp_path):
    allowed = tmp_path / "inputs"
    allowed.mkdir()
    inside = photo(allowed / "fox.png")
    outside = photo(tmp_path / "secret.png")
    assert check_image(str(inside), [allowed]) == inside.resolve()
    with pytest.raises(ModelChoiceError, match="only files under the allowed folders"):
        check_image(str(outside), [allowed])
    with pytest.raises(ModelChoiceError, match="only files under the allowed folders"):
        check_image(str(allowed / ".." / "secret.png"), [allowed])
    link = allowed / "link.png"
    link.symlink_to(outside)  # a link inside that points outside is outside
    with pytest.raises(ModelChoiceError, match="only files under the allowed folders"):
        check_image(str(link), [allowed])
    assert check_image(str(outside)) == outside.resolve()  # the CLI reads what its user names


def test_images_are_stored_by_digest_and_read_back_only_as_references(tmp_path):
    base = str(tmp_path / "storage")
    first = store_image(photo(tmp_path / "a.png"), base=base)
    again = store_image(photo(tmp_path / "b.png"), base=base)  # the same pixels and bytes
    other = store_image(photo(tmp_path / "c.png", colour=(0, 90, 10)), base=base)
    assert first == again != other and first.startswith("inputs/") and first.endswith(".png")
    assert stored_image(first, base).getpixel((5, 5)) == (200, 40, 30)
    with pytest.raises(ModelChoiceError, match="not a registered input"):
        stored_image(str(tmp_path / "a.png"), base)
    with pytest.raises(ModelChoiceError, match="not a registered input"):
        stored_image("inputs/../../etc/passwd", base)


def test_fitting_scales_to_cover_and_crops_the_centre():
    wide = Image.new("RGB", (400, 100))
    wide.paste((255, 255, 255), (150, 0, 250, 100))  # a white band in the middle
    fitted, note = fit_image(wide, 64, 64)
    assert fitted.size == (64, 64)
    assert note == "400x100 scaled by 0.64 to cover 64x64, centre crop of 192 px of width"
    assert np.asarray(fitted)[32, 32].tolist() == [255, 255, 255]
    same, none = fit_image(fitted, 64, 64)
    assert same is fitted and none is None


@pytest.fixture
def stored(vidgen_home, tmp_path):
    return store_image(photo(tmp_path / "start.png"))


def test_a_text_only_model_given_an_image_names_the_image_capable_ones(stored, tiny_models):
    settings = GenerationSettings(video_model=str(tiny_models["t2v"]), image=stored)
    with pytest.raises(ModelChoiceError) as caught:
        VideoGenerator(width=64, height=64).plan(settings, KeyframeGenerator())
    line = str(caught.value)
    assert "makes video from text only and cannot start from an image" in line
    assert "svd-xt" in line and "wan2.2-ti2v-5b" in line and "ltx-video" in line
    assert "modelscope-t2v" not in line.split("image-capable models:")[1]


def test_an_unregistered_path_is_refused_at_plan_time(vidgen_home, tmp_path):
    settings = GenerationSettings(image=str(photo(tmp_path / "raw.png")))
    with pytest.raises(ModelChoiceError, match="not a registered input"):
        VideoGenerator(model="animatic").plan(settings, KeyframeGenerator())


def test_the_animatic_starts_from_the_users_image(stored):
    generator = VideoGenerator(model="animatic", width=128, height=72)
    plan = generator.plan(GenerationSettings(image=stored), KeyframeGenerator())
    assert plan.image_path == stored and plan.keyframe_model == "cards"
    from vidgen_pipeline.core.prompts import optimize_prompts
    from vidgen_pipeline.core.storyboard import write_storyboard

    board = write_storyboard("A red wall. A blue sky.", duration_s=2.0, scenes=2)
    prompts = optimize_prompts(board).model_copy(update={"video": plan})
    first, second = KeyframeGenerator().make(board, prompts)
    assert first.info["source"] == "user image" and first.info["image"] == stored
    assert first.info["fitted"].startswith("320x200 scaled by 0.4 to cover 128x72")
    assert first.image.size == (128, 72) and first.image.getpixel((64, 36)) == (200, 40, 30)
    assert second.info["source"] == "cards"


def test_another_image_is_another_scene_cache_key(stored, tmp_path):
    from vidgen_pipeline.core.scene_cache import scene_key
    from vidgen_pipeline.core.storyboard import write_storyboard

    other = store_image(photo(tmp_path / "other.png", colour=(20, 40, 200)))
    generator = VideoGenerator(model="animatic", width=128, height=72)
    scene = write_storyboard("A red wall.", duration_s=1.0).scenes[0].model_dump(mode="json")

    def key(image):
        plan = generator.plan(GenerationSettings(image=image), KeyframeGenerator())
        start, _size = fit_image(stored_image(image), 128, 72)
        return scene_key(plan.model_dump(mode="json"), scene, 8, start, "r", {})

    assert key(stored) == key(stored) != key(other)


# ------------------------------------------------------- where an image may come from


def test_the_cli_starts_ltx_video_from_the_users_image(tmp_path, tiny_models):
    import subprocess

    from vidgen_pipeline.core.media import probe_video
    from vidgen_pipeline_tests.conftest import VIDGEN, cli_env

    ltx = tiny_models["ltx-video"]
    home = tmp_path / "home"
    env = {**cli_env(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    common = ["--width", "64", "--height", "64", "--fps", "8", "--steps", "2", "--duration", "1"]
    done = subprocess.run(
        [
            *VIDGEN,
            "generate",
            "A kite.",
            "--video-model",
            str(ltx),
            "--image",
            str(photo(tmp_path / "kite.png")),
            *common,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert probe_video(Path(done.stdout.strip().splitlines()[-1])).frame_count == 24
    assert list((home / "storage" / "inputs").iterdir())  # stored by digest
    for args, reason in (
        (["--image", str(tmp_path / "nope.png")], "no such file"),
        (
            ["--image", str(photo(tmp_path / "x.png")), "--video-model", "animatediff"],
            "cannot start from an image",
        ),
    ):
        bad = subprocess.run(
            [*VIDGEN, "generate", "A kite.", *args, *common],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert bad.returncode == 2 and reason in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_the_launchpad_reads_images_only_from_the_inputs_folder(instance, vidgen_home, tmp_path):
    from vidgen_pipeline.definitions import defs
    from vidgen_pipeline.resources import PromptStoreResource

    def add(image: str):
        config = {"prompt": "A red door.", "image": image, "width": 64, "height": 64}
        return defs.resolve_job_def("add_prompt_job").execute_in_process(
            instance=instance,
            run_config={"ops": {"add_prompt": {"config": config}}},
            raise_on_error=False,
        )

    secret = photo(tmp_path / "secret.png")
    refused = add(str(secret))
    assert not refused.success
    (failure,) = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "only files under the allowed folders" in failure.event_specific_data.error.message
    (vidgen_home / "inputs").mkdir()
    photo(vidgen_home / "inputs" / "door.png")
    added = add("door.png")  # relative to VIDGEN_HOME/inputs
    assert added.success
    stored = PromptStoreResource().store().get(added.output_for_node("add_prompt"))
    assert images.is_reference(stored.settings.image)


def test_a_dataset_reads_images_beside_it_and_refuses_others(vidgen_home, tmp_path):
    from vidgen_pipeline.core.datasets import read_dataset

    folder = tmp_path / "shots"
    folder.mkdir()
    photo(folder / "door.png")
    photo(tmp_path / "outside.png")
    (folder / "shots.csv").write_text(
        "prompt,image\nA red door.,door.png\nA blue door.,../outside.png\nA wall.,\n"
    )
    result = read_dataset(folder / "shots.csv")
    assert [r.request.text for r in result.entries] == ["A red door.", "A wall."]
    assert images.is_reference(result.entries[0].request.settings.image)
    assert result.entries[1].request.settings.image is None
    (problem,) = result.errors
    assert problem.line == 3 and "only files under the allowed folders" in problem.message
    # A folder the video_generator resource lists is allowed too (the sensor passes it).
    listed = read_dataset(folder / "shots.csv", image_dirs=[tmp_path])
    assert [r.request.text for r in listed.entries] == ["A red door.", "A blue door.", "A wall."]
    assert not listed.errors
