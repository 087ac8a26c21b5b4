"""Resources that own models: script writer, keyframe generator, video generator."""

from vidgen_pipeline.resources.finishing import Finishing
from vidgen_pipeline.resources.keyframes import KeyframeGenerator
from vidgen_pipeline.resources.prompt_store import PromptStoreResource
from vidgen_pipeline.resources.script_writer import ScriptWriter
from vidgen_pipeline.resources.video import VideoGenerator

__all__ = [
    "Finishing",
    "KeyframeGenerator",
    "PromptStoreResource",
    "ScriptWriter",
    "VideoGenerator",
]
