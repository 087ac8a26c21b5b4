"""The CPU section's part (b): what finishing costs on this machine.

H.264 encode rates (in process, and the same frames through the ffmpeg command line for
comparison) and optical-flow and blend interpolation rates, on synthetic frames. The media
code is imported when it measures, so a machine without OpenCV (the GPU box) still loads
the bench.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from vidgen_pipeline.bench.common import fmt, markdown_table

SIZE = (1024, 576)
LABELS = {
    "encode_fps": "H.264 encode (in process)",
    "ffmpeg_cli_fps": "H.264 encode (ffmpeg command line)",
    "interp_flow_fps": "interpolation, optical flow",
    "interp_blend_fps": "interpolation, blend",
}


def finishing_rates(frames: int = 48) -> dict[str, Any]:
    """``measure_finishing`` at 1024x576, or why it could not run here."""
    try:  # what measure_finishing needs (OpenCV, ffmpeg), checked up front
        from vidgen_pipeline.core import media  # noqa: F401
        from vidgen_pipeline.core.finishing import flow  # noqa: F401
    except ImportError as exc:
        return {"status": f"not available ({exc})"}
    width, height = SIZE
    started = time.perf_counter()
    figures = measure_finishing(width, height, frames)
    return {
        "status": "ok",
        "width": width,
        "height": height,
        "frames": frames,
        "seconds": round(time.perf_counter() - started, 2),
        "figures": figures,
    }


def measure_finishing(
    width: int = 1024,
    height: int = 576,
    frames: int = 48,
    crf: int | None = None,
    preset: str | None = None,
    fps: float = 24.0,
    repeats: int = 3,
) -> dict:
    """Frames per second of this machine's finishing on ``frames`` synthetic frames (a
    smooth random texture panning 3 px right and 1 px down a frame).

    ``encode_fps``: ``encode_h264`` to an mp4; ``ffmpeg_cli_fps``: the same frames piped as
    rawvideo into the same ffmpeg binary with the same crf, preset and flags, for comparison;
    ``interp_flow_fps`` / ``interp_blend_fps``: output frames per second of ``interpolate``
    x2 (``(frames - 1) * 2 + 1`` frames made). Each figure is the best of ``repeats`` runs.
    ``crf`` and ``preset`` default to the final encode's (``core.media``).
    """
    import imageio_ffmpeg

    from vidgen_pipeline.core.finishing.flow import interpolate
    from vidgen_pipeline.core.finishing.inputs import INTERPOLATION_METHODS
    from vidgen_pipeline.core.media import (
        DEFAULT_CRF,
        DEFAULT_PRESET,
        encode_h264,
        rate_control_args,
    )

    crf = DEFAULT_CRF if crf is None else crf
    preset = DEFAULT_PRESET if preset is None else preset
    clip = _panning_texture(width, height, frames)
    result: dict = {"width": width, "height": height, "frames": frames, "crf": crf}
    result.update(preset=preset, fps=fps, repeats=repeats)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mp4"
        seconds = _best_seconds(
            lambda: encode_h264(clip, path, fps, crf=crf, preset=preset), repeats
        )
        result["encode_fps"] = round(frames / seconds, 2)
        command = [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error"),
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"),
            *("-r", f"{fps:g}", "-i", "-"),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", *rate_control_args(crf, preset)),
            *("-fps_mode", "cfr", "-movflags", "+faststart", str(Path(folder) / "cli.mp4")),
        ]
        raw = clip.tobytes()
        seconds = _best_seconds(lambda: subprocess.run(command, input=raw, check=True), repeats)
        result["ffmpeg_cli_fps"] = round(frames / seconds, 2)
    made = (frames - 1) * 2 + 1
    for method in INTERPOLATION_METHODS:
        seconds = _best_seconds(lambda method=method: interpolate(clip, 2, method), repeats)
        result[f"interp_{method}_fps"] = round(made / seconds, 2)
    return result


def _panning_texture(width: int, height: int, count: int, seed: int = 0):
    """A smooth random texture panning 3 px right and 1 px down per frame."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    margin = 3 * count + 8
    noise = rng.integers(0, 256, (height + margin, width + margin, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(noise, (0, 0), 3)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    return np.stack([texture[i : i + height, 3 * i : 3 * i + width] for i in range(count)])


def _best_seconds(run, repeats: int) -> float:
    """The fastest of ``repeats`` wall-clock timings of ``run()`` (the least disturbed by
    other work on the machine)."""
    best = math.inf
    for _ in range(max(1, repeats)):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return best


def finishing_markdown(data: dict[str, Any]) -> str:
    """Part (b) of the CPU section's markdown."""
    head = "### (b) Encode and interpolation at 1024x576"
    if data.get("status") != "ok":
        return f"{head}\n\n{data.get('status')}"
    figures = data["figures"] or {}
    rows = [
        [LABELS.get(k, k), v if isinstance(v, int | float) else str(v)]
        for k, v in figures.items()
        if k.endswith("_fps")
    ]
    other = {k: v for k, v in figures.items() if not k.endswith("_fps")}
    text = [
        head,
        f"`vidgen_pipeline.bench.finishing.measure_finishing({data['width']}, "
        f"{data['height']}, {data['frames']})`, {fmt(data['seconds'])} s in all.",
        markdown_table(["what", "frames per second"], rows),
    ]
    if other:
        text.append("Also reported: " + ", ".join(f"{k} = {v}" for k, v in other.items()))
    return "\n\n".join(text)
