"""The memory ladder: what to try when a CUDA out-of-memory error stops a generation.

Each rung keeps less on the GPU at once. A failure steps down one rung and retries; the last
rung's failure is raised with everything that was tried. Plain Python: the caller supplies
how to apply a rung, how to attempt the work, and what counts as out of memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

LADDER = ("gpu", "model_offload", "group_offload", "sequential_offload")


class OutOfMemoryOnLastRung(RuntimeError):
    """Every rung from the starting one ran out of memory."""


def rungs_from(start: str) -> list[str]:
    if start not in LADDER:
        return [start]  # "cpu": nothing to step down to
    return list(LADDER[LADDER.index(start) :])


def run_with_ladder(
    start: str,
    apply: Callable[[str], None],
    attempt: Callable[[str], T],
    is_oom: Callable[[BaseException], bool],
    log: Callable[[str], None],
) -> tuple[T, str, list[str]]:
    """Run ``attempt(mode)`` from rung ``start`` down; return (result, mode used, modes tried)."""
    tried: list[str] = []
    rungs = rungs_from(start)
    for index, mode in enumerate(rungs):
        if index:
            apply(mode)
        tried.append(mode)
        try:
            return attempt(mode), mode, tried
        except BaseException as exc:
            if not is_oom(exc):
                raise
            if index + 1 == len(rungs):
                raise OutOfMemoryOnLastRung(
                    f"out of memory in every memory mode tried ({', '.join(tried)}); "
                    "lower the resolution, frames or decode_chunk_size"
                ) from exc
            log(f"out of memory in memory mode {mode}; stepping down to {rungs[index + 1]}")
    raise AssertionError("unreachable")
