"""What every asset shares: one run may cover several prompts (partitions).

Backfills put up to ``VIDGEN_PARTITIONS_PER_RUN`` partitions (default 8) in one run, so the
LLM, the image model and the video model load once per run instead of once per prompt. An
asset then works through ``context.partition_keys`` in turn; its inputs arrive as
``{partition_key: value}`` (a plain value when the run has one partition, see the IO
managers) and it returns the same kind of dict. Checks are per step: with several
partitions, one result per check holds each partition's figures and fails if any fails.
"""

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    BackfillPolicy,
    Backoff,
    BetaWarning,
    Failure,
    MetadataValue,
    RetryPolicy,
)

from vidgen_pipeline.core.finishing.inputs import FinishingError
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.weights import WeightsError

T = TypeVar("T")

# Backfill policies are marked beta; they are what makes a run cover several prompts, and
# the warning would print on every command.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=BetaWarning)

DEFAULT_PARTITIONS_PER_RUN = 8
STORY_GROUP = "story"  # prompt, script, optimized_prompts
MEDIA_GROUP = "media"  # keyframes, scene_clips, final_video


def partitions_per_run() -> int:
    """``VIDGEN_PARTITIONS_PER_RUN`` (read when the code location loads), at least 1."""
    raw = os.environ.get("VIDGEN_PARTITIONS_PER_RUN", str(DEFAULT_PARTITIONS_PER_RUN))
    try:
        return max(1, int(raw))
    except ValueError:
        warnings.warn(
            f"VIDGEN_PARTITIONS_PER_RUN must be a whole number, got {raw!r}; "
            f"using {DEFAULT_PARTITIONS_PER_RUN}",
            stacklevel=2,
        )
        return DEFAULT_PARTITIONS_PER_RUN


BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=partitions_per_run())
# Transient faults (a busy disk, a CUDA hiccup) get two more tries; user errors none (below).
RETRY_POLICY = RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL)


def partition_keys(context: AssetExecutionContext) -> list[str]:
    """This run's partitions, in a stable order."""
    return sorted(context.partition_keys)


def per_partition(context: AssetExecutionContext, value: Any) -> dict[str, Any]:
    """An input as ``{partition_key: value}`` whether the run has one partition or many."""
    keys = partition_keys(context)
    if isinstance(value, dict) and set(value) == set(keys) and len(keys) > 1:
        return value
    if len(keys) != 1:
        raise TypeError(f"expected one value per partition of {keys}, got {type(value).__name__}")
    return {keys[0]: value}


def each_partition(
    context: AssetExecutionContext, *inputs: Any
) -> Iterator[tuple[str, Callable[[str], None], tuple]]:
    """Yield ``(key, log, values)`` per partition: the inputs' values for that partition and
    a logger that names the partition when the run has several."""
    keys = partition_keys(context)
    columns = [per_partition(context, value) for value in inputs]
    for index, key in enumerate(keys, 1):
        log = (
            context.log.info
            if len(keys) == 1
            else _prefixed(context, f"[{index}/{len(keys)} {key}] ")
        )
        yield key, log, tuple(column[key] for column in columns)


def _prefixed(context: AssetExecutionContext, prefix: str) -> Callable[[str], None]:
    def log(message: str) -> None:
        context.log.info(prefix + message)

    return log


def add_metadata(context: AssetExecutionContext, key: str, metadata: dict) -> None:
    context.add_asset_metadata(metadata, partition_key=key)


@dataclass
class Verdict:
    """One partition's result of one check."""

    passed: bool
    metadata: dict = field(default_factory=dict)
    description: str | None = None


def check_result(
    name: str,
    verdicts: dict[str, Verdict],
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
) -> AssetCheckResult:
    """One check result for the step: the verdict itself with one partition, else every
    partition's figures (``by_partition``) and the list of those that failed."""
    if len(verdicts) == 1:
        (verdict,) = verdicts.values()
        return AssetCheckResult(
            check_name=name,
            passed=verdict.passed,
            severity=severity,
            description=verdict.description,
            metadata=verdict.metadata,
        )
    failed = [key for key, verdict in verdicts.items() if not verdict.passed]
    by_partition = {
        key: {k: _plain(v) for k, v in verdict.metadata.items()}
        for key, verdict in verdicts.items()
    }
    return AssetCheckResult(
        check_name=name,
        passed=not failed,
        severity=severity,
        description=(
            f"{len(failed)} of {len(verdicts)} partitions failed: {', '.join(failed)}"
            if failed
            else f"all {len(verdicts)} partitions passed"
        ),
        metadata={
            "partitions": len(verdicts),
            "failed_partitions": MetadataValue.json(failed),
            "by_partition": MetadataValue.json(by_partition),
        },
    )


def _plain(value: Any) -> Any:
    """A metadata value as JSON-able data (for the per-partition table)."""
    return getattr(value, "value", value)


def user_errors_are_final(fn: Callable[[], T]) -> T:
    """Run ``fn``; a bad model choice, missing weights or impossible finishing settings
    fail the step without retries
    (retrying cannot fix them), anything else may be retried by the retry policy."""
    try:
        return fn()
    except (ModelChoiceError, WeightsError, FinishingError) as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
