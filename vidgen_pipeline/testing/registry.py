"""The tiny video builders by name, with the pipeline classes that load each and a render call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidgen_pipeline.testing import (
    tiny_cogvideox,
    tiny_hunyuan15,
    tiny_ltx,
    tiny_ltx2,
    tiny_unet_models,
    tiny_wan,
)


@dataclass(frozen=True)
class TinyModel:
    """A tiny video builder and how to render what it saves.

    ``pipelines``: the classes that load the folder, the one ``model_index.json`` names first.
    ``call``: ``__call__`` arguments that render ``frames`` frames at ``height`` x ``width``
    (add ``generator``; classes in ``image_pipelines`` also take ``image=`` a PIL image of that
    size, plus ``image_call``).
    """

    build: Callable[..., Path]
    pipelines: tuple[str, ...]
    call: dict
    frames: int
    height: int
    width: int
    image_pipelines: frozenset[str] = frozenset()
    image_call: dict = field(default_factory=dict)


def _dit_call(size: int, frames: int, **extra) -> dict:
    return {
        "prompt": "a red fox trots through fresh snow",
        "height": size,
        "width": size,
        "num_frames": frames,
        "num_inference_steps": 2,
        "output_type": "np",
        **extra,
    }


_WAN = {"max_sequence_length": 16}
_WAN_I2V = frozenset({"WanImageToVideoPipeline"})

TINY_VIDEO_MODELS: dict[str, TinyModel] = {
    "svd": TinyModel(
        tiny_unet_models.save_tiny_svd,
        ("StableVideoDiffusionPipeline",),
        {
            "height": 64,
            "width": 64,
            "num_frames": 4,
            "num_inference_steps": 2,
            "decode_chunk_size": 2,
            "output_type": "np",
        },
        4,
        64,
        64,
        image_pipelines=frozenset({"StableVideoDiffusionPipeline"}),
    ),
    "modelscope-t2v": TinyModel(
        tiny_unet_models.save_tiny_modelscope_t2v,
        ("TextToVideoSDPipeline",),
        _dit_call(64, 4),
        4,
        64,
        64,
    ),
    "animatediff": TinyModel(
        tiny_unet_models.save_tiny_animatediff,
        ("AnimateDiffPipeline",),
        _dit_call(64, 4),
        4,
        64,
        64,
    ),
    "wan2.1-t2v": TinyModel(
        tiny_wan.save_tiny_wan21_t2v, ("WanPipeline",), _dit_call(32, 9, **_WAN), 9, 32, 32
    ),
    "wan2.1-i2v": TinyModel(
        tiny_wan.save_tiny_wan21_i2v,
        ("WanImageToVideoPipeline",),
        _dit_call(32, 9, **_WAN),
        9,
        32,
        32,
        image_pipelines=_WAN_I2V,
    ),
    "wan2.2-ti2v-5b": TinyModel(
        tiny_wan.save_tiny_wan22_ti2v_5b,
        ("WanPipeline", "WanImageToVideoPipeline"),
        _dit_call(32, 9, **_WAN),
        9,
        32,
        32,
        image_pipelines=_WAN_I2V,
    ),
    "wan2.2-t2v-a14b": TinyModel(
        tiny_wan.save_tiny_wan22_t2v_a14b, ("WanPipeline",), _dit_call(32, 9, **_WAN), 9, 32, 32
    ),
    "wan2.2-i2v-a14b": TinyModel(
        tiny_wan.save_tiny_wan22_i2v_a14b,
        ("WanImageToVideoPipeline",),
        _dit_call(32, 9, **_WAN),
        9,
        32,
        32,
        image_pipelines=_WAN_I2V,
    ),
    "ltx-video": TinyModel(
        tiny_ltx.save_tiny_ltx_video,
        ("LTXPipeline", "LTXImageToVideoPipeline"),
        _dit_call(64, 9, max_sequence_length=16),
        9,
        64,
        64,
        image_pipelines=frozenset({"LTXImageToVideoPipeline"}),
    ),
    "cogvideox-t2v": TinyModel(
        tiny_cogvideox.save_tiny_cogvideox_t2v, ("CogVideoXPipeline",), _dit_call(32, 9), 9, 32, 32
    ),
    "cogvideox-i2v": TinyModel(
        tiny_cogvideox.save_tiny_cogvideox_i2v,
        ("CogVideoXImageToVideoPipeline",),
        _dit_call(32, 9),
        9,
        32,
        32,
        image_pipelines=frozenset({"CogVideoXImageToVideoPipeline"}),
    ),
    "hunyuanvideo-1.5-t2v": TinyModel(
        tiny_hunyuan15.save_tiny_hunyuan15_t2v,
        ("HunyuanVideo15Pipeline",),
        _dit_call(32, 9),
        9,
        32,
        32,
    ),
    "hunyuanvideo-1.5-i2v": TinyModel(
        tiny_hunyuan15.save_tiny_hunyuan15_i2v,
        ("HunyuanVideo15ImageToVideoPipeline",),
        # no height/width in its __call__: the size comes from the image and target_size
        {k: v for k, v in _dit_call(32, 9).items() if k not in ("height", "width")},
        9,
        32,
        32,
        image_pipelines=frozenset({"HunyuanVideo15ImageToVideoPipeline"}),
    ),
    "ltx-2": TinyModel(
        tiny_ltx2.save_tiny_ltx2,
        ("LTX2Pipeline", "LTX2ImageToVideoPipeline"),
        _dit_call(64, 9, frame_rate=24.0),
        9,
        64,
        64,
        image_pipelines=frozenset({"LTX2ImageToVideoPipeline"}),
        image_call={"image_crf": 0},  # the default re-encodes the image as H.264 (needs PyAV)
    ),
}


def save_all_video(root: Path, names=None) -> dict[str, Path]:
    """Build the tiny video models ``names`` (default: all) under ``root/<name>``."""
    root = Path(root)
    return {name: TINY_VIDEO_MODELS[name].build(root / name) for name in names or TINY_VIDEO_MODELS}
