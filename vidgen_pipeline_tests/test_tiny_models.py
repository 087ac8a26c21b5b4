"""The tiny offline model folders: hub-like layout, safetensors only, load and run on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vidgen_pipeline.testing import tiny_unet_models, tokenizers

# name -> (pipeline class, call arguments, expected shape with output_type="np")
CASES = {
    "svd": (
        "StableVideoDiffusionPipeline",
        lambda: {
            "image": Image.new("RGB", (64, 64), (200, 40, 30)),
            "height": 64,
            "width": 64,
            "num_frames": 4,
            "num_inference_steps": 2,
            "decode_chunk_size": 2,
        },
        (1, 4, 64, 64, 3),
    ),
    "sd": (
        "StableDiffusionPipeline",
        lambda: {
            "prompt": "a red fox in fresh snow",
            "height": 64,
            "width": 64,
            "num_inference_steps": 2,
        },
        (1, 64, 64, 3),
    ),
    "t2v": (
        "TextToVideoSDPipeline",
        lambda: {
            "prompt": "一只红色的狐狸在雪中",
            "height": 64,
            "width": 64,
            "num_frames": 4,
            "num_inference_steps": 2,
        },
        (1, 4, 64, 64, 3),
    ),
    "animatediff": (
        "AnimateDiffPipeline",
        lambda: {
            "prompt": "a lighthouse on a cliff, waves",
            "height": 64,
            "width": 64,
            "num_frames": 4,
            "num_inference_steps": 2,
        },
        (1, 4, 64, 64, 3),
    ),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return tiny_unet_models.save_all(tmp_path_factory.mktemp("tiny_models"))


def test_save_all_layout(folders):
    assert set(folders) == set(CASES)
    for name, folder in folders.items():
        assert folder.name == name
        assert (folder / "model_index.json").is_file()
        assert list(folder.rglob("*.safetensors")), name
        assert not list(folder.rglob("*.bin")), name
        assert not list(folder.rglob("*.pt")), name


@pytest.mark.parametrize("name", list(CASES))
def test_load_and_run(folders, name):
    from diffusers import DiffusionPipeline

    class_name, call_args, shape = CASES[name]
    pipe = DiffusionPipeline.from_pretrained(folders[name], use_safetensors=True)
    assert type(pipe).__name__ == class_name
    pipe.set_progress_bar_config(disable=True)
    out = pipe(**call_args(), output_type="np", generator=torch.Generator("cpu").manual_seed(0))
    result = out.images if name == "sd" else out.frames
    result = np.asarray(result)
    assert result.shape == shape
    assert np.isfinite(result).all()


def test_animatediff_round_trip_keeps_motion_unet(folders):
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folders["animatediff"], use_safetensors=True)
    assert type(pipe.unet).__name__ == "UNetMotionModel"
    assert type(pipe.motion_adapter).__name__ == "MotionAdapter"


def test_builds_are_deterministic(tmp_path):
    a = tiny_unet_models.save_tiny_sd(tmp_path / "a")
    b = tiny_unet_models.save_tiny_sd(tmp_path / "b")
    for file in sorted(a.rglob("*.safetensors")):
        twin = b / file.relative_to(a)
        assert file.read_bytes() == twin.read_bytes(), file


def test_committed_tokenizer():
    tok = tokenizers.load_clip_tokenizer()
    assert tokenizers.tokenizer_dir("clip").is_dir()
    assert len(tok) == tokenizers.CLIP_VOCAB_SIZE == 1000
    assert tok.model_max_length == 77
    assert (tok.bos_token, tok.eos_token) == ("<|startoftext|>", "<|endoftext|>")
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (998, 999, 999)
    assert tok.convert_ids_to_tokens([0, 256, 320]) == ["!", "!</w>", "a</w>"]
    # Pinned: these ids change only if the committed files change.
    assert tok("A red fox trots through fresh snow at dawn.").input_ids == [
        998, 320, 519, 323, 676, 343, 959, 713, 813, 869, 629, 710, 342, 546, 856, 269, 999,
    ]  # fmt: skip
    ids = tok("一只红色的狐狸", padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77 and ids[0] == 998 and ids[-1] == 999
    assert tok.decode(ids, skip_special_tokens=True) == "一只红色的狐狸"


def test_text_encoders_match_tokenizer(folders):
    import json

    for name in ("sd", "t2v", "animatediff"):
        config = json.loads((folders[name] / "text_encoder" / "config.json").read_text())
        assert config["vocab_size"] == 1000
        assert config["max_position_embeddings"] == 77
        assert (config["bos_token_id"], config["eos_token_id"]) == (998, 999)
