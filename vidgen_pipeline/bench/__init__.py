"""The benchmark harness: ``python -m vidgen_pipeline.bench`` (``make bench``).

Sections (``bench.sections.SECTIONS``): ``cpu`` (pipeline overhead with tiny models, encode
and interpolation rates, partition registration), ``batch`` (registering a prompt suite,
backfill overhead per prompt) and ``gpu`` (the speed recipes on Wan 2.1 1.3B and LTX-Video:
full size on CUDA, ``--tiny`` on the CPU). Each writes JSON and its own part of
``docs/benchmarks.md``; the runner is ``bench.harness``, what the sections share is
``bench.common``.
"""

from vidgen_pipeline.bench.common import BenchContext, SectionResult, replace_section
from vidgen_pipeline.bench.harness import run
from vidgen_pipeline.bench.sections import SECTIONS, register_section

__all__ = [
    "SECTIONS",
    "BenchContext",
    "SectionResult",
    "register_section",
    "replace_section",
    "run",
]
