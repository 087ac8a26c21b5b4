"""Resources that own models: script writer, keyframe generator, video generator, narrator.

They load on first use (PEP 562), so that ``resources.placement`` and ``resources.speedups``
import without Dagster: the GPU bench runs them on a device machine that has none.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vidgen_pipeline.resources.finishing import Finishing
    from vidgen_pipeline.resources.keyframes import KeyframeGenerator
    from vidgen_pipeline.resources.narrator import Narrator
    from vidgen_pipeline.resources.prompt_store import PromptStoreResource
    from vidgen_pipeline.resources.script_writer import ScriptWriter
    from vidgen_pipeline.resources.video import VideoGenerator

_MODULES = {
    "Finishing": "finishing",
    "KeyframeGenerator": "keyframes",
    "Narrator": "narrator",
    "PromptStoreResource": "prompt_store",
    "ScriptWriter": "script_writer",
    "VideoGenerator": "video",
}
__all__ = [
    "Finishing",
    "KeyframeGenerator",
    "Narrator",
    "PromptStoreResource",
    "ScriptWriter",
    "VideoGenerator",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
