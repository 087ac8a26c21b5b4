"""vidgen_pipeline: text prompts to multi-scene videos, as Dagster assets."""

__version__ = "0.1.0"
