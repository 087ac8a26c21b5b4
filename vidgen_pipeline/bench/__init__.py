"""The benchmark harness: ``python -m vidgen_pipeline.bench`` (``make bench``).

Sections (``SECTIONS``): ``cpu`` (pipeline overhead with tiny models, encode and
interpolation rates, partition registration) and ``gpu`` (SVD-XT speed recipes: full size on
CUDA, ``--tiny`` on the CPU). Each writes JSON and its own part of ``docs/benchmarks.md``.
"""

from vidgen_pipeline.bench.harness import (
    SECTIONS,
    BenchContext,
    SectionResult,
    register_section,
    replace_section,
    run,
)

__all__ = [
    "SECTIONS",
    "BenchContext",
    "SectionResult",
    "register_section",
    "replace_section",
    "run",
]
