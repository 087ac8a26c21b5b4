"""Where prompt requests are kept, keyed by partition."""

from __future__ import annotations

from dagster import ConfigurableResource

from vidgen_pipeline.core.requests import PromptStore
from vidgen_pipeline.core.storage import default_prompt_store_path


class PromptStoreResource(ConfigurableResource):
    """Prompt requests as JSON files under ``base_path`` (default ``VIDGEN_HOME/prompts``)."""

    base_path: str = ""

    def store(self) -> PromptStore:
        return PromptStore(self.base_path or default_prompt_store_path())
