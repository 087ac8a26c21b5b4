"""Finishing: how scene clips become the final video, one job a module.

- ``plan``: the finishing plan of one prompt (rates, transition, fades, encode settings),
  decided in ``optimized_prompts`` so ``scene_clips`` renders what ``final_video`` needs.
- ``timing``: the storyboard's frame grid (frames per scene, crossfade handles, cuts),
  interpolation factors, resampling a clip to a frame count or a rate.
- ``flow``: optical-flow interpolation (frames in between two frames).
- ``assembly``: sizes, cuts and crossfades, fades: the finished frames, one at a time.
- ``inputs``: what all of them accept (``FinishingError`` and the checks of frames, rates
  and lengths).

All of it is pure numpy/OpenCV on RGB uint8 arrays ``(T, H, W, 3)``: no Dagster, no disk.
"""
