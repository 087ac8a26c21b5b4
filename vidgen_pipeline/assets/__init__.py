"""The asset graph: prompt -> script -> optimized_prompts -> keyframes -> scene_clips -> final_video."""

from vidgen_pipeline.assets.final_video import final_video
from vidgen_pipeline.assets.keyframes import keyframes
from vidgen_pipeline.assets.scene_clips import scene_clips
from vidgen_pipeline.assets.story import optimized_prompts, prompt, script

ALL_ASSETS = [prompt, script, optimized_prompts, keyframes, scene_clips, final_video]

__all__ = ["ALL_ASSETS"]
