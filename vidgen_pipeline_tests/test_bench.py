"""The benchmark harness: the GPU section with --tiny writes its table into its own part of
a markdown file (other sections and hand-written text stay) and JSON with the figures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vidgen_pipeline.bench import harness
from vidgen_pipeline.bench.cpu import partition_rate

HAND_TEXT = "# Benchmarks\n\nHand-written notes that must survive.\n"
OTHER = "<!-- bench:cpu -->\nCPU figures from an earlier run\n<!-- /bench:cpu -->"


@pytest.fixture
def quiet_log():
    lines: list[str] = []
    return lines.append


def test_gpu_section_with_tiny_models_writes_its_table_and_keeps_the_rest(tmp_path, quiet_log):
    out = tmp_path / "benchmarks.md"
    out.write_text(f"{HAND_TEXT}\n{OTHER}\n\nText after the sections.\n")
    json_path = tmp_path / "bench.json"
    argv = ["--section", "gpu", "--tiny", "--recipes", "default,fast", "--steps", "2"]
    options = {"recipes": ["default", "fast"], "steps": 2, "clip": False}
    for _ in range(2):  # a second run replaces the section, it does not add another
        harness.run("gpu", True, out, json_path, argv=argv, options=options, log=quiet_log)

    text = out.read_text()
    assert text.startswith(HAND_TEXT) and OTHER in text and "Text after the sections." in text
    assert (
        text.count("<!-- bench:gpu-tiny -->") == 1 and text.count("<!-- /bench:gpu-tiny -->") == 1
    )
    block = text.split("<!-- bench:gpu-tiny -->")[1].split("<!-- /bench:gpu-tiny -->")[0]
    assert "| recipe | s/step | x default (step) |" in block
    assert "| **default** |" in block and "| **fast** |" in block
    assert f"Command: `python -m vidgen_pipeline.bench {' '.join(argv)}`" in block
    for label in (
        "Machine: ",
        "GPU: none",
        "Versions: python ",
        "torch ",
        "diffusers ",
        "dagster ",
    ):
        assert label in block
    assert "<!-- bench:gpu -->" not in text  # tiny figures never take the real GPU section's place

    document = json.loads(json_path.read_text())
    assert {"command", "machine", "versions", "sections"} <= set(document)
    section = document["sections"]["gpu-tiny"]
    assert section["complete"] and section["size"] == "tiny" and section["device"] == "cpu"
    assert {"cpu", "cores", "ram_gb", "gpu"} <= set(section["machine"])
    assert {"python", "torch", "diffusers", "dagster"} <= set(section["versions"])
    assert section["flops_per_step"] > 0
    assert [s["chunk"] for s in section["decode_sweep"]] == [1, 2, 4]
    default, fast = section["recipes"]["default"], section["recipes"]["fast"]
    for figures in (default, fast):
        assert {
            "step_s",
            "clip_s_est",
            "decode_s",
            "warmup_s",
            "peak_memory_mb",
            "peak_memory_kind",
            "tflops",
            "peak_share",
            "speedup_step",
            "latent_max_abs_diff",
            "frames_max_abs_diff",
            "psnr_db",
            "notes",
        } <= set(figures)
        assert figures["step_s"] > 0 and figures["finite"]
    assert default["speedup_step"] == 1.0 and default["frames_max_abs_diff"] == 0.0
    assert fast["decode_chunk"] == 25 and fast["frames_compared_at_decode_chunk"] == 4
    assert fast["within_tolerance"] is True
    assert fast["tolerance"] == {"max_abs": 1e-4}


def test_sections_are_a_registry_and_all_runs_gpu_tiny_without_cuda(
    tmp_path, monkeypatch, quiet_log
):
    def batch(ctx):
        return harness.SectionResult("batch", "Batch", {"items": 3}, "| a |\n| --- |\n| 1 |")

    monkeypatch.setitem(harness.SECTIONS, "batch", batch)
    out = tmp_path / "b.md"
    harness.run(
        "batch", False, out, tmp_path / "b.json", argv=["--section", "batch"], log=quiet_log
    )
    assert "<!-- bench:batch -->\n## Batch" in out.read_text()
    assert json.loads((tmp_path / "b.json").read_text())["sections"]["batch"]["items"] == 3

    monkeypatch.setattr(harness, "cuda_available", lambda: False)
    planned = dict(harness.plan_sections("all", tiny=False))
    assert planned["cpu"] is False and planned["gpu"] is True and "batch" in planned
    monkeypatch.setattr(harness, "cuda_available", lambda: True)
    assert dict(harness.plan_sections("gpu", tiny=False)) == {"gpu": False}


def test_copy_from_takes_one_section_of_another_file(tmp_path):
    source, dest = tmp_path / "device.md", tmp_path / "docs.md"
    harness.replace_section(source, "gpu", "H200 figures")
    dest.write_text(f"{HAND_TEXT}\n{OTHER}\n")
    done = subprocess.run(
        [sys.executable, "-m", "vidgen_pipeline.bench", "--section", "gpu"]
        + ["--copy-from", str(source), "--out", str(dest)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text = dest.read_text()
    assert "<!-- bench:gpu -->\nH200 figures\n<!-- /bench:gpu -->" in text and OTHER in text


def test_partition_registration_rate():
    figures = partition_rate(5)
    assert figures["status"] == "ok" and figures["registered"] == 5
    assert figures["per_second"] > 0 and figures["ms_p50"] <= figures["ms_max"]
