"""The ``animatic`` clip backend: pan and zoom over a keyframe (a "Ken Burns" move).

No model is involved; the clip's metadata says ``backend: animatic`` so nobody mistakes it
for generated footage.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from vidgen_pipeline.core.prompts import CameraMotion


def _smoothstep(t: float) -> float:
    return t * t * (3 - 2 * t)


def animate_keyframe(
    keyframe: Image.Image, camera: CameraMotion, frame_count: int, width: int, height: int
) -> np.ndarray:
    """``frame_count`` RGB frames (T, H, W, 3) moving the camera over ``keyframe``.

    Zoom goes from 1 to ``camera.zoom`` (or the reverse when it is below 1); a pan shifts
    the view by ``pan_x``/``pan_y`` of the frame, with enough zoom that no border shows.
    """
    if frame_count < 1:
        raise ValueError(f"a clip needs at least one frame, not {frame_count}")
    source = np.asarray(keyframe.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
    pan_x, pan_y = camera.pan_x * camera.speed, camera.pan_y * camera.speed
    zoom_end = 1 + (camera.zoom - 1) * camera.speed if camera.zoom >= 1 else camera.zoom
    # A pan needs a zoom that keeps the moved window inside the image.
    cover = 1 + max(abs(pan_x), abs(pan_y)) + 1e-3
    frames = np.empty((frame_count, height, width, 3), dtype=np.uint8)
    for index in range(frame_count):
        t = _smoothstep(index / max(1, frame_count - 1))
        if zoom_end >= 1:
            zoom = 1 + (zoom_end - 1) * t
        else:
            zoom = (1 / zoom_end) + (1 - 1 / zoom_end) * t
        zoom *= cover
        # Centre of the view moves from -pan/2 to +pan/2 of the frame.
        cx = width / 2 + (t - 0.5) * pan_x * width
        cy = height / 2 + (t - 0.5) * pan_y * height
        matrix = np.array(
            [[zoom, 0, width / 2 - zoom * cx], [0, zoom, height / 2 - zoom * cy]],
            dtype=np.float64,
        )
        cv2.warpAffine(  # straight into the clip: no frame made and copied
            source,
            matrix,
            (width, height),
            dst=frames[index],
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
    return frames
