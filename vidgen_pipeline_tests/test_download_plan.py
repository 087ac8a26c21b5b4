"""What a download fetches: the diffusers components in one precision, nothing else.

The listings below are the file lists of the two repos as the Hugging Face hub shows them
(huggingface.co/<repo>/tree/main, all folders expanded; README images and licences kept, as
the point is what is left out). ``model_index.json`` is each repo's own, reduced to its
components.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidgen_pipeline.core import weights
from vidgen_pipeline.core.weights import download_plan, fetch_command

SVD_XT_FILES = [
    ".gitattributes",
    "LICENSE.md",
    "README.md",
    "comparison.png",
    "feature_extractor/preprocessor_config.json",
    "image_encoder/config.json",
    "image_encoder/model.fp16.safetensors",
    "image_encoder/model.safetensors",
    "model_index.json",
    "output_tile.gif",
    "scheduler/scheduler_config.json",
    "svd_xt.safetensors",
    "svd_xt_image_decoder.safetensors",
    "unet/config.json",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
]
SVD_XT_INDEX = {
    "_class_name": "StableVideoDiffusionPipeline",
    "_diffusers_version": "0.24.0.dev0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
    "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
}
SDXL_TURBO_FILES = [
    ".gitattributes",
    "LICENSE.md",
    "README.md",
    "image_quality_one_step.png",
    "model_index.json",
    "output_tile.jpg",
    "prompt_alignment_one_step.png",
    "scheduler/scheduler_config.json",
    "sd_xl_turbo_1.0.safetensors",
    "sd_xl_turbo_1.0_fp16.safetensors",
    "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors",
    "text_encoder/model.onnx",
    "text_encoder/model.safetensors",
    "text_encoder_2/config.json",
    "text_encoder_2/model.fp16.safetensors",
    "text_encoder_2/model.onnx",
    "text_encoder_2/model.onnx_data",
    "text_encoder_2/model.safetensors",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "tokenizer_2/merges.txt",
    "tokenizer_2/special_tokens_map.json",
    "tokenizer_2/tokenizer_config.json",
    "tokenizer_2/vocab.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
    "unet/model.onnx",
    "unet/model.onnx_data",
    "vae/config.json",
    "vae/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "vae_decoder/config.json",
    "vae_decoder/model.onnx",
    "vae_encoder/config.json",
    "vae_encoder/model.onnx",
]
SDXL_TURBO_INDEX = {
    "_class_name": "StableDiffusionXLPipeline",
    "_diffusers_version": "0.24.0.dev0",
    "force_zeros_for_empty_prompt": True,
    "scheduler": ["diffusers", "EulerAncestralDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def weights_of(plan: list[str]) -> list[str]:
    return [f for f in plan if f.endswith(".safetensors")]


def test_svd_xt_fetches_the_components_in_fp16_and_no_root_checkpoints():
    plan = download_plan(SVD_XT_FILES, "diffusers", SVD_XT_INDEX, precision="fp16")
    assert weights_of(plan) == [
        "image_encoder/model.fp16.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    ]
    assert set(plan) - set(weights_of(plan)) == {
        "model_index.json",
        "feature_extractor/preprocessor_config.json",
        "image_encoder/config.json",
        "scheduler/scheduler_config.json",
        "unet/config.json",
        "vae/config.json",
    }
    full = download_plan(SVD_XT_FILES, "diffusers", SVD_XT_INDEX, precision="fp32")
    assert weights_of(full) == [
        "image_encoder/model.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ]


def test_sdxl_turbo_leaves_out_onnx_root_checkpoints_and_unindexed_folders():
    plan = download_plan(SDXL_TURBO_FILES, "diffusers", SDXL_TURBO_INDEX, precision="fp16")
    assert weights_of(plan) == [
        "text_encoder/model.fp16.safetensors",
        "text_encoder_2/model.fp16.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    ]
    assert not [f for f in plan if "onnx" in f or f.startswith(("sd_xl", "vae_"))]
    assert {f.split("/")[0] for f in plan if "/" in f} == {
        "scheduler",
        "text_encoder",
        "text_encoder_2",
        "tokenizer",
        "tokenizer_2",
        "unet",
        "vae",
    }
    assert "tokenizer_2/vocab.json" in plan and "tokenizer/merges.txt" in plan


def test_a_component_without_the_wanted_precision_takes_the_other():
    files = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]
    index = {"_class_name": "X", "unet": ["diffusers", "UNet2DConditionModel"]}
    assert weights_of(download_plan(files, "diffusers", index, "fp16")) == [
        "unet/diffusion_pytorch_model.safetensors"
    ]
    sharded = [
        "model_index.json",
        "transformer/config.json",
        "transformer/diffusion_pytorch_model.safetensors.index.json",
        "transformer/diffusion_pytorch_model-00001-of-00002.safetensors",
        "transformer/diffusion_pytorch_model-00002-of-00002.safetensors",
    ]
    index = {"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"]}
    assert download_plan(sharded, "diffusers", index, "fp16") == sharded


def test_pickle_weights_only_when_opted_in_and_only_where_no_safetensors_are():
    files = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin"]
    index = {"_class_name": "X", "unet": ["diffusers", "UNet2DConditionModel"]}
    assert weights_of(download_plan(files, "diffusers", index)) == []
    assert "unet/diffusion_pytorch_model.bin" not in download_plan(files, "diffusers", index)
    assert "unet/diffusion_pytorch_model.bin" in download_plan(
        files, "diffusers", index, allow_unsafe=True
    )


def test_llm_fetches_its_root_weights_tokenizer_and_template_only():
    files = [
        ".gitattributes",
        "LICENSE",
        "README.md",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "onnx/model.onnx",
        "original/consolidated.00.pth",
    ]
    plan = download_plan(files, "transformers")
    assert plan == [
        "config.json",
        "generation_config.json",
        "merges.txt",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "model.safetensors",
    ]


def test_allow_download_passes_the_plan_to_the_hub_client(tmp_path, monkeypatch):
    """The resolver's download asks the hub for exactly the plan's files."""
    import huggingface_hub

    asked = {}
    snapshot = tmp_path / "snapshot"

    def list_repo_files(self, repo_id, **kwargs):
        return SVD_XT_FILES

    def hf_hub_download(repo_id, filename, **kwargs):
        path = tmp_path / filename
        path.write_text(json.dumps(SVD_XT_INDEX))
        return str(path)

    def snapshot_download(repo_id, allow_patterns=None, local_files_only=False, **kwargs):
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        asked[repo_id] = allow_patterns
        raise OSError("stop here: the network is not reachable from the tests")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setenv("VIDGEN_HOME", str(tmp_path / "home"))
    with pytest.raises(weights.WeightsError, match="download failed"):
        weights.resolve_weights(
            "video",
            "svd-xt",
            "stabilityai/stable-video-diffusion-img2vid-xt",
            "svd-xt",
            allow_download=True,
            precision="fp16",
        )
    assert asked["stabilityai/stable-video-diffusion-img2vid-xt"] == download_plan(
        SVD_XT_FILES, "diffusers", SVD_XT_INDEX, "fp16"
    )
    assert not snapshot.exists()


def test_fetch_command_names_one_precision(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDGEN_HOME", str(tmp_path))
    half = fetch_command("org/svd", "svd-xt", "diffusers", "fp16", half_variant=True)
    assert "'*/*.fp16.safetensors'" in half and "--exclude" not in half
    assert half.endswith(f"--local-dir {Path(tmp_path) / 'models' / 'svd-xt'}")
    full = fetch_command("org/svd", None, "diffusers", "fp32", half_variant=True)
    assert "'*/*.safetensors'" in full and full.endswith("--exclude '*.fp16.*'")
    assert "'model_index.json'" in full and "'*.safetensors'" not in full.split("--include")[1]


MOTION_ADAPTER = "guoyww/animatediff-motion-adapter-v1-5-2"
MOTION_ADAPTER_FILES = [
    ".gitattributes",
    "README.md",
    "config.json",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.safetensors",
]


def test_the_motion_adapter_fetches_its_config_and_one_precision(
    tmp_path, monkeypatch, tiny_models
):
    """animatediff's adapter is fetched lean too: config and the wanted precision only."""
    import shutil

    import huggingface_hub

    from vidgen_pipeline.core.models import ModelChoiceError
    from vidgen_pipeline.core.requests import GenerationSettings
    from vidgen_pipeline.resources import KeyframeGenerator, VideoGenerator

    asked = {}

    def snapshot_download(repo_id, allow_patterns=None, local_files_only=False, **kwargs):
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        asked[repo_id] = allow_patterns
        raise OSError("stop here: the network is not reachable from the tests")

    monkeypatch.setattr(
        huggingface_hub.HfApi, "list_repo_files", lambda self, repo_id, **kw: MOTION_ADAPTER_FILES
    )
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setenv("VIDGEN_HOME", str(tmp_path / "home"))
    shutil.copytree(tiny_models["sd"], tmp_path / "home" / "models" / "animatediff")  # the base
    generator = VideoGenerator(width=64, height=64, fps=8.0, allow_download=True)
    with pytest.raises(ModelChoiceError, match=f"motion adapter {MOTION_ADAPTER}"):
        generator.plan(GenerationSettings(video_model="animatediff"), KeyframeGenerator())
    assert asked[MOTION_ADAPTER] == ["config.json", "diffusion_pytorch_model.safetensors"]
