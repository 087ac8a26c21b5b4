"""The storyboard writer resource."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from vidgen_pipeline.core.models import SCRIPT_MODELS, check_named_model
from vidgen_pipeline.core.requests import PromptRequest
from vidgen_pipeline.core.storyboard import Storyboard, write_storyboard


class ScriptWriter(ConfigurableResource):
    """Writes the storyboard of a prompt. ``rules`` is the deterministic writer."""

    model: str = Field(default="rules", description="'rules' (LLM writers come later)")

    def write(self, request: PromptRequest) -> Storyboard:
        check_named_model("script", request.settings.script_model or self.model, SCRIPT_MODELS)
        return write_storyboard(
            request.text, duration_s=request.settings.duration_s, scenes=request.settings.scenes
        )
