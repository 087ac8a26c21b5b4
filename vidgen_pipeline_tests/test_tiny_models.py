"""The tiny offline model folders: hub-like layout, safetensors only, load and run on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidgen_pipeline.testing import registry, tiny_unet_models, tokenizers

# Tiny models are all thread-sync overhead: one torch thread is several times faster (conftest).
pytestmark = pytest.mark.usefixtures("one_thread")

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


# --------------------------------------------------------------------------------------------
# The DiT video families (vidgen_pipeline.testing.registry), built once per session
# --------------------------------------------------------------------------------------------

VIDEO = registry.TINY_VIDEO_MODELS
UNET_VIDEO = ("svd", "modelscope-t2v", "animatediff")  # loaded and rendered above
DIT = [name for name in VIDEO if name not in UNET_VIDEO]
LOADS = [(name, cls) for name in DIT for cls in VIDEO[name].pipelines]

EN = "A red fox trots through fresh snow at dawn."
ZH = "一只红色的狐狸在黎明时分穿过新雪。"
# Pinned: these ids change only if the committed tokenizer files change.
PINNED_IDS = {
    "t5": (
        [11, 201, 30, 100, 54, 3, 599, 608, 218, 58, 98, 208, 79, 96, 294, 6, 10, 269, 8, 1],
        [3, 106, 248, 51, 147, 17, 514, 9, 1],
    ),
    "gemma3": (
        [2, 284, 858, 308, 792, 906, 778, 806, 975, 895, 854, 800, 792, 322, 786, 312, 780, 934, 839, 802, 305, 327, 318, 270],
        [2, 892, 660, 843, 914, 434, 770, 538, 537, 393, 943, 530, 752, 337],
    ),
    "qwen2": (
        [32, 923, 678, 1485, 579, 944, 1629, 820, 380, 1008, 13],
        [486, 955, 1017, 765, 1241, 263],
    ),
    "byt5": (  # UTF-8 bytes + 3, then </s>
        [b + 3 for b in EN.encode()] + [1],
        [b + 3 for b in ZH.encode()] + [1],
    ),
}  # fmt: skip
TOKENIZER_KIND = {
    **{name: "t5" for name in DIT if name.startswith(("wan", "ltx-video", "cogvideox"))},
    "hunyuanvideo-1.5-t2v": "qwen2",
    "hunyuanvideo-1.5-i2v": "qwen2",
    "ltx-2": "gemma3",
}


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory):
    """``tiny_video(name, class_name)`` -> (folder, pipeline): each folder built once, each
    pipeline loaded once, on first use."""
    import diffusers

    root = tmp_path_factory.mktemp("tiny_video")
    folders, pipes = {}, {}

    def get(name: str, class_name: str | None = None):
        class_name = class_name or VIDEO[name].pipelines[0]
        if name not in folders:
            folders[name] = VIDEO[name].build(root / name)
        if (name, class_name) not in pipes:
            first = class_name == VIDEO[name].pipelines[0]
            loader = diffusers.DiffusionPipeline if first else getattr(diffusers, class_name)
            pipe = loader.from_pretrained(folders[name], use_safetensors=True)
            pipe.set_progress_bar_config(disable=True)
            pipes[name, class_name] = pipe
        return folders[name], pipes[name, class_name]

    return get


def render(name: str, class_name: str, pipe, seed: int = 0):
    spec = VIDEO[name]
    args = dict(spec.call)
    if class_name in spec.image_pipelines:
        args.update(
            image=Image.new("RGB", (spec.width, spec.height), (200, 40, 30)), **spec.image_call
        )
    return pipe(**args, generator=torch.Generator("cpu").manual_seed(seed))


@pytest.mark.parametrize("name, class_name", LOADS)
def test_dit_folder_loads_as_its_class(tiny_video, name, class_name):
    import json

    folder, pipe = tiny_video(name, class_name)
    assert type(pipe).__name__ == class_name
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == VIDEO[name].pipelines[0]
    assert list(folder.rglob("*.safetensors"))
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    # Tokenizers saved under their fast class names: transformers 4.x loads those from
    # tokenizer.json; its slow classes would want files a locally trained tokenizer lacks.
    assert index["tokenizer"][1].endswith("Fast")


@pytest.mark.parametrize("name, class_name", LOADS)
def test_dit_renders_its_frames(tiny_video, name, class_name):
    spec = VIDEO[name]
    _, pipe = tiny_video(name, class_name)
    frames = np.asarray(render(name, class_name, pipe).frames)
    assert frames.shape == (1, spec.frames, spec.height, spec.width, 3)
    assert np.isfinite(frames).all() and frames.min() >= 0.0 and frames.max() <= 1.0


@pytest.mark.parametrize("name", DIT)
def test_dit_is_deterministic_by_seed(tiny_video, name):
    class_name = VIDEO[name].pipelines[0]
    _, pipe = tiny_video(name, class_name)
    first, again, other = (
        np.asarray(render(name, class_name, pipe, seed).frames) for seed in (0, 0, 1)
    )
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", DIT)
def test_dit_tokenizer_ids_are_pinned(tiny_video, name):
    _, pipe = tiny_video(name)
    en, zh = PINNED_IDS[TOKENIZER_KIND[name]]
    assert pipe.tokenizer(EN).input_ids == en
    assert pipe.tokenizer(ZH).input_ids == zh
    assert pipe.tokenizer.decode(zh, skip_special_tokens=True) == ZH
    if name.startswith("hunyuanvideo"):  # the glyph encoder's ByT5
        assert (pipe.tokenizer_2(EN).input_ids, pipe.tokenizer_2(ZH).input_ids) == PINNED_IDS[
            "byt5"
        ]


def test_committed_dit_tokenizers():
    from transformers import ByT5Tokenizer

    assert [
        len(t) for t in (tokenizers.load_t5_tokenizer(), tokenizers.load_gemma3_tokenizer())
    ] == [
        tokenizers.T5_VOCAB_SIZE,
        tokenizers.GEMMA_VOCAB_SIZE,
    ]
    for kind, load in (
        ("t5", tokenizers.load_t5_tokenizer),
        ("gemma3", tokenizers.load_gemma3_tokenizer),
        ("qwen2", tokenizers.load_qwen2_tokenizer),
        ("byt5", ByT5Tokenizer),
    ):
        tok = load()
        assert (tok(EN).input_ids, tok(ZH).input_ids) == PINNED_IDS[kind], kind
    gemma = tokenizers.load_gemma3_tokenizer()
    assert gemma.padding_side == "left"  # LTX-2 pads prompts on the left
    assert (gemma.pad_token_id, gemma.eos_token_id, gemma.bos_token_id) == (0, 1, 2)
    t5 = tokenizers.load_t5_tokenizer()
    assert (t5.pad_token_id, t5.eos_token_id, t5.unk_token_id) == (0, 1, 2)


def test_wan22_a14b_has_two_transformers_and_a_boundary(tiny_video):
    import json

    for name, ratio in (("wan2.2-t2v-a14b", 0.875), ("wan2.2-i2v-a14b", 0.9)):
        folder, pipe = tiny_video(name)
        assert json.loads((folder / "model_index.json").read_text())["boundary_ratio"] == ratio
        one, two = pipe.transformer.state_dict(), pipe.transformer_2.state_dict()
        assert one.keys() == two.keys()
        assert any(not torch.equal(one[k], two[k]) for k in one)


def test_wan22_ti2v_5b_is_one_folder_for_text_and_image(tiny_video):
    _, text = tiny_video("wan2.2-ti2v-5b", "WanPipeline")
    _, image = tiny_video("wan2.2-ti2v-5b", "WanImageToVideoPipeline")
    assert text.config.expand_timesteps and image.config.expand_timesteps
    assert (image.image_encoder, image.image_processor, image.transformer_2) == (None, None, None)
    assert text.vae.config.z_dim == 48 and text.vae_scale_factor_spatial == 16


def test_ltx2_makes_stereo_audio_at_the_vocoder_rate(tiny_video):
    _, pipe = tiny_video("ltx-2")
    out = render("ltx-2", "LTX2Pipeline", pipe)
    assert isinstance(out.audio, torch.Tensor) and out.audio.dtype == torch.float32
    # 9 frames at 24 fps: round(0.375 s x 25) = 9 latent audio frames, 33 mel frames, 240 each
    assert out.audio.shape == (1, 2, 33 * 240)
    assert pipe.vocoder.config.output_sampling_rate == 24000
    assert out.audio.abs().max() <= 1.0


# --------------------------------------------------------------------------------------------
# Real layouts: fp16 variants, hub-cache snapshots
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sd_precisions(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd_precisions")
    return {p: tiny_unet_models.save_tiny_sd(root / p, precision=p) for p in ("fp16", "both")}


def weight_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.safetensors"))


def test_fp16_only_layout_holds_only_fp16_weights(sd_precisions):
    from diffusers import DiffusionPipeline

    folder = sd_precisions["fp16"]
    assert weight_files(folder) == [
        "text_encoder/model.fp16.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    ]
    pipe = DiffusionPipeline.from_pretrained(
        folder, variant="fp16", dtype=torch.float16, use_safetensors=True
    )
    assert pipe.unet.dtype == pipe.text_encoder.dtype == torch.float16
    with pytest.raises(OSError):  # as with such hub repos: the variant must be asked for
        DiffusionPipeline.from_pretrained(folder, use_safetensors=True)


def test_both_precisions_layout(sd_precisions):
    from diffusers import DiffusionPipeline

    folder = sd_precisions["both"]
    names = weight_files(folder)
    assert len(names) == 6
    assert {n.replace(".fp16", "") for n in names} == {n for n in names if ".fp16" not in n}
    assert (
        DiffusionPipeline.from_pretrained(folder, use_safetensors=True).unet.dtype == torch.float32
    )


def test_hub_cache_snapshot_is_found_offline(sd_precisions, tmp_path):
    from diffusers import DiffusionPipeline
    from huggingface_hub import hf_hub_download, snapshot_download

    from vidgen_pipeline.testing.layout import save_hub_snapshot

    cache = tmp_path / "hub"
    snapshot = save_hub_snapshot(sd_precisions["both"], cache, "tiny-org/tiny-sd15")
    repo = cache / "models--tiny-org--tiny-sd15"
    assert (repo / "refs" / "main").read_text() == snapshot.name
    assert (snapshot / "unet" / "config.json").is_symlink()
    assert (snapshot / "unet" / "config.json").resolve().parent == (repo / "blobs").resolve()

    found = snapshot_download("tiny-org/tiny-sd15", cache_dir=cache, local_files_only=True)
    assert Path(found) == snapshot
    index = hf_hub_download(
        "tiny-org/tiny-sd15", "model_index.json", cache_dir=cache, local_files_only=True
    )
    assert Path(index) == snapshot / "model_index.json"
    pipe = DiffusionPipeline.from_pretrained(
        "tiny-org/tiny-sd15",
        cache_dir=cache,
        local_files_only=True,
        variant="fp16",
        dtype=torch.float16,
    )
    assert type(pipe).__name__ == "StableDiffusionPipeline" and pipe.unet.dtype == torch.float16


def test_hub_cache_single_file_and_llm(tiny_video, tmp_path):
    from huggingface_hub import hf_hub_download
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vidgen_pipeline.testing.layout import save_hub_snapshot
    from vidgen_pipeline.testing.tiny_llm import save_tiny_chat_llm

    cache = tmp_path / "hub"
    svd, _ = tiny_video("svd")
    unet = tiny_unet_models.save_tiny_replacement_unet(svd, tmp_path / "unet.safetensors")
    save_hub_snapshot(unet, cache, "tiny-org/tiny-unet", filename="tiny_unet.safetensors")
    found = hf_hub_download(
        "tiny-org/tiny-unet", "tiny_unet.safetensors", cache_dir=cache, local_files_only=True
    )
    assert Path(found).read_bytes() == unet.read_bytes()

    llm = save_tiny_chat_llm(tmp_path / "llm")
    save_hub_snapshot(llm, cache, "tiny-org/tiny-chat")
    tok = AutoTokenizer.from_pretrained(
        "tiny-org/tiny-chat", cache_dir=cache, local_files_only=True
    )
    model = AutoModelForCausalLM.from_pretrained(
        "tiny-org/tiny-chat", cache_dir=cache, local_files_only=True
    )
    assert tok(EN).input_ids == PINNED_IDS["qwen2"][0]
    assert model.config.model_type == "qwen2"


def test_package_data_ships_every_committed_tokenizer_file():
    import tomllib
    from fnmatch import fnmatch

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["vidgen_pipeline"]
    package = Path(registry.__file__).parents[1]
    files = [
        p.relative_to(package).as_posix()
        for p in tokenizers.TOKENIZER_FILES.rglob("*")
        if p.is_file()
    ]
    assert len(files) >= 11  # clip 4, chat_llm 3, t5 2, gemma3 2
    assert [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)] == []
