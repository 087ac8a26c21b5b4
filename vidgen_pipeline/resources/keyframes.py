"""The keyframe generator resource: one conditioning image per scene."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from vidgen_pipeline.core.cards import render_card
from vidgen_pipeline.core.clips import Keyframe
from vidgen_pipeline.core.models import KEYFRAME_MODELS, VideoPlan, check_named_model
from vidgen_pipeline.core.prompts import OptimizedPrompts
from vidgen_pipeline.core.storyboard import Storyboard


class KeyframeGenerator(ConfigurableResource):
    """``cards`` draws labelled storyboard cards (no model); text-to-image models come later."""

    model: str = Field(default="cards", description="'cards' (text-to-image models come later)")

    def check(self, setting: str | None) -> str:
        return check_named_model("keyframe", setting or self.model, KEYFRAME_MODELS)

    def make(
        self,
        storyboard: Storyboard,
        prompts: OptimizedPrompts,
        plan: VideoPlan,
        setting: str | None = None,
    ) -> list[Keyframe]:
        source = self.check(setting)
        count = len(prompts.scenes)
        return [
            Keyframe(
                scene.scene_number,
                render_card(
                    scene.description,
                    scene.scene_number,
                    count,
                    storyboard.title,
                    plan.width,
                    plan.height,
                ),
                {"source": source, "seed": scene.seed},
            )
            for scene in prompts.scenes
        ]
