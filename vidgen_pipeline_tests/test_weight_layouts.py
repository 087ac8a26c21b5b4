"""Weights laid out as real downloads leave them: fp16-only folders, both precisions, hub-cache
snapshots, VIDGEN_HOME/models/<name>, for a video pipeline (SVD), a keyframe model (SD) and
the storyboard LLM, through `vidgen generate` and through the loader."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vidgen_pipeline.core.media import probe_video
from vidgen_pipeline.core.weights import resolve_weights
from vidgen_pipeline.resources import KeyframeGenerator, runtime
from vidgen_pipeline.testing.layout import save_hub_snapshot
from vidgen_pipeline.testing.tiny_llm import save_tiny_chat_llm
from vidgen_pipeline.testing.tiny_unet_models import save_tiny_sd, save_tiny_svd
from vidgen_pipeline_tests.conftest import VIDGEN, cli_env

SVD_XT = "stabilityai/stable-video-diffusion-img2vid-xt"
SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
QWEN = "Qwen/Qwen2.5-1.5B-Instruct"
SMALL = ["--width", "64", "--height", "64", "--fps", "4", "--frames", "4", "--steps", "2"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    return {
        "svd_fp16": save_tiny_svd(root / "svd_fp16", precision="fp16"),
        "svd_both": save_tiny_svd(root / "svd_both", precision="both"),
        "sd_fp16": save_tiny_sd(root / "sd_fp16", precision="fp16"),
        "sd_both": save_tiny_sd(root / "sd_both", precision="both"),
        "llm": save_tiny_chat_llm(root / "llm"),
    }


def generate(tmp_path, home: Path, *models: str, hub_cache: Path | None = None):
    env = {**cli_env(home), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    env["OMP_NUM_THREADS"] = "1"  # tiny models: thread hand-offs cost more than they gain
    if hub_cache is not None:
        env["HF_HUB_CACHE"] = str(hub_cache)
    done = subprocess.run(
        [*VIDGEN, "generate", "A kite over hills.", *models, *SMALL, "--duration", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert probe_video(Path(done.stdout.strip().splitlines()[-1])).frame_count == 48
    return done.stderr


def loaded(stderr: str, cls: str) -> str:
    (line,) = [line for line in stderr.splitlines() if f"loaded {cls} from" in line]
    return line


def test_local_folders_in_fp16_only_and_in_both_precisions(tmp_path, built):
    half = generate(
        tmp_path,
        tmp_path / "half",
        "--video-model",
        str(built["svd_fp16"]),
        "--keyframe-model",
        str(built["sd_fp16"]),
    )
    # fp16-only folders load as that variant (they used to fail in scene_clips).
    assert "(local folder, fp16 files) in fp32" in loaded(half, "StableVideoDiffusionPipeline")
    assert "(local folder, fp16 files) in fp32" in loaded(half, "StableDiffusionPipeline")
    both = generate(
        tmp_path,
        tmp_path / "both",
        "--video-model",
        str(built["svd_both"]),
        "--keyframe-model",
        str(built["sd_both"]),
    )
    # On the CPU everything runs in fp32: the full-precision files are the ones read.
    assert "full-precision files" in loaded(both, "StableVideoDiffusionPipeline")
    assert "full-precision files" in loaded(both, "StableDiffusionPipeline")


def test_registry_names_in_the_hub_cache(tmp_path, built):
    cache = tmp_path / "hub"
    save_hub_snapshot(built["svd_fp16"], cache, SVD_XT)  # svd-xt as an fp16-only snapshot
    save_hub_snapshot(built["sd_both"], cache, SD15)
    save_hub_snapshot(built["llm"], cache, QWEN)
    stderr = generate(
        tmp_path,
        tmp_path / "home",
        "--video-model",
        "svd-xt",
        "--keyframe-model",
        "sd15",
        "--script-model",
        "qwen2.5-1.5b",
        hub_cache=cache,
    )
    svd = loaded(stderr, "StableVideoDiffusionPipeline")
    assert f"models--{SVD_XT.replace('/', '--')}/snapshots/" in svd
    assert "(Hugging Face cache, fp16 files)" in svd
    assert "(Hugging Face cache, full-precision files)" in loaded(stderr, "StableDiffusionPipeline")
    assert "models--Qwen--Qwen2.5-1.5B-Instruct/snapshots/" in loaded(stderr, "Qwen2ForCausalLM")


def test_registry_names_in_vidgen_home_models(tmp_path, built):
    home = tmp_path / "home"
    shutil.copytree(built["svd_both"], home / "models" / "svd-xt")
    shutil.copytree(built["sd_fp16"], home / "models" / "sd15")
    shutil.copytree(built["llm"], home / "models" / "qwen2.5-1.5b")  # was refused: no index
    stderr = generate(
        tmp_path,
        home,
        "--video-model",
        "svd-xt",
        "--keyframe-model",
        "sd15",
        "--script-model",
        "qwen2.5-1.5b",
    )
    assert "(VIDGEN_HOME/models, full-precision files)" in loaded(
        stderr, "StableVideoDiffusionPipeline"
    )
    assert "(VIDGEN_HOME/models, fp16 files)" in loaded(stderr, "StableDiffusionPipeline")
    assert str(home / "models" / "qwen2.5-1.5b") in loaded(stderr, "Qwen2ForCausalLM")


def test_a_half_precision_load_reads_the_fp16_files_when_both_are_there(built, monkeypatch):
    """What a GPU load does (bf16 or fp16): half the bytes read; fp32 reads the fp32 files."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights = resolve_weights("keyframe", str(built["sd_both"]), None, None)
    assert weights.variant_for("bf16") == weights.variant_for("fp16") == "fp16"
    assert weights.variant_for("fp32") is None
    full = load_file(str(built["sd_both"] / "unet" / "diffusion_pytorch_model.safetensors"))
    half = load_file(str(built["sd_both"] / "unet" / "diffusion_pytorch_model.fp16.safetensors"))
    key = "conv_in.weight"
    assert not torch.equal(full[key].half().float(), full[key])  # the two files differ
    settings = KeyframeGenerator()
    runtime.release_all()
    pipe = runtime.load_pipeline(
        weights, "fp32", "cpu", settings, variant=weights.variant_for("fp32")
    )
    assert torch.equal(pipe.unet.state_dict()[key], full[key])
    pipe = runtime.load_pipeline(
        weights, "bf16", "cpu", settings, variant=weights.variant_for("bf16")
    )
    assert pipe.unet.dtype == torch.bfloat16
    assert torch.equal(pipe.unet.state_dict()[key], half[key].to(torch.bfloat16))
    runtime.release_all()
    only = resolve_weights("video", str(built["svd_fp16"]), None, None)
    assert only.variant_for("fp32") == "fp16"  # nothing else to read


def test_an_llm_saved_as_the_fp16_variant_loads_from_its_fp16_file(built, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "llm_fp16"
    shutil.copytree(built["llm"], folder)
    model = AutoModelForCausalLM.from_pretrained(str(built["llm"]))
    (folder / "model.safetensors").unlink()
    model.half().save_pretrained(str(folder), variant="fp16")  # model.fp16.safetensors only
    assert not (folder / "model.safetensors").exists()
    weights = resolve_weights("script", str(folder), None, None, layout="transformers")
    assert weights.variant_for("fp32") == "fp16"
    runtime.release_all()
    _tokenizer, loaded = runtime.load_chat_model(weights, "cpu", "fp32", False, log=lambda _m: None)
    stored = load_file(str(folder / "model.fp16.safetensors"))
    key = "model.embed_tokens.weight"
    assert torch.equal(loaded.state_dict()[key], stored[key].float())
    runtime.release_all()
