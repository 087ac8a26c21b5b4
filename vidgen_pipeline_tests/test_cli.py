"""`vidgen generate` as a user runs it: a real subprocess, a real instance, a real mp4."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef

from vidgen_pipeline.core.frame_store import read_lossless
from vidgen_pipeline.core.media import probe_video
from vidgen_pipeline_tests.conftest import VIDGEN, cli_env, vidgen

SMALL_ARGS = ["--width", "128", "--height", "72", "--fps", "8"]


def test_generate_prints_the_mp4_path_last_and_records_the_run_in_the_instance(tmp_path):
    home = tmp_path / "home"
    done = vidgen(
        home,
        "generate",
        "A kite rises over a beach. The camera zooms in.",
        "--duration",
        "3",
        "--scenes",
        "2",
        "--seed",
        "5",
        *SMALL_ARGS,
    )
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_absolute() and path.is_file()
    facts = probe_video(path)
    assert (facts.codec, facts.pix_fmt, facts.faststart) == ("h264", "yuv420p", True)
    assert facts.frame_count == 24 and (facts.width, facts.height) == (128, 72)
    # Progress per step on stderr, and the model choice with its reason.
    for step in [
        "prompt",
        "script",
        "optimized_prompts",
        "keyframes",
        "scene_clips",
        "final_video",
    ]:
        assert f"[{step}] done in" in done.stderr
    assert "video model: animatic (auto:" in done.stderr
    assert "Traceback" not in done.stderr
    # The same instance the UI reads: one successful generate_video run, one partition.
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
        runs = instance.get_runs()
        assert [(r.job_name, r.status) for r in runs] == [
            ("generate_video", DagsterRunStatus.SUCCESS)
        ]
        assert instance.get_dynamic_partitions("prompts") == [path.stem]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["   "], "the prompt is empty"),
        (["a cat", "--video-model", "svd-xt"], "video model 'svd-xt'"),
        (
            ["a cat", "--video-model", "nope"],
            "known: svd-xt, svd, modelscope-t2v, animatediff, animatic",
        ),
        (["a cat", "--device", "cuda"], "no CUDA GPU"),
        (["a cat", "--width", "641"], "width 641 is not a multiple of 2"),
        (["a cat", "--steps", "0"], "--steps: must be at least 1"),
        (["a cat", "--style", "goth"], "unknown style 'goth'"),
        (["a cat", "--keyframe-model", "sdxl-turbo"], "keyframe model 'sdxl-turbo'"),
        (["a cat", "--script-model", "qwen"], "script model 'qwen'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_registers_nothing(tmp_path, args, message):
    home = tmp_path / "home"
    done = vidgen(home, "generate", *args, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (home / "prompts").exists() or not any((home / "prompts").iterdir())


def test_killed_run_leaves_the_last_good_video_intact_and_no_partial_files(tmp_path):
    home = tmp_path / "home"
    text = "A train crosses a long bridge at night."
    first = vidgen(home, "generate", text, "--duration", "2", *SMALL_ARGS)
    assert first.returncode == 0, first.stderr
    path = Path(first.stdout.strip().splitlines()[-1])
    good = path.read_bytes()
    # Same prompt, a long run at full size: killed while it renders or encodes.
    proc = subprocess.Popen(
        [*VIDGEN, "generate", text, "--duration", "120", "--width", "640", "--height", "360"],
        env=cli_env(home),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        if "[scene_clips] scene 2/" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert path.read_bytes() == good
    assert probe_video(path).frame_count == 16
    storage = home / "storage"
    assert [p for p in storage.rglob("*.tmp")] == []
    # The frames manifest still names a complete version folder.
    clips = next((storage / "scene_clips").iterdir())
    manifest = json.loads((clips / "manifest.json").read_text())
    folder = clips / manifest["version"]
    for item in manifest["items"]:
        scene = folder / f"scene_{item['scene_number']:03d}"
        assert len(read_lossless(scene / "clip.mp4")) == item["frames"]
    # And the partition can be made again after the crash.
    again = vidgen(home, "generate", text, "--duration", "2", *SMALL_ARGS)
    assert again.returncode == 0, again.stderr
    assert probe_video(path).frame_count == 16
