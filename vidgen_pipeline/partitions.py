"""One partition per prompt request."""

from dagster import DynamicPartitionsDefinition

PROMPTS = "prompts"
prompts_partitions = DynamicPartitionsDefinition(name=PROMPTS)
