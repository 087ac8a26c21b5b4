"""The sections of the bench, by name: ``--section NAME`` runs one, ``all`` runs them in this
order. A section is a function ``(BenchContext) -> SectionResult``; it imports
``bench.common`` for what sections share, never this registry or the runner."""

from vidgen_pipeline.bench.batch import batch_section
from vidgen_pipeline.bench.common import Section
from vidgen_pipeline.bench.cpu import cpu_section
from vidgen_pipeline.bench.gpu import gpu_section
from vidgen_pipeline.bench.scheduling import scheduling_section

SECTIONS: dict[str, Section] = {
    "cpu": cpu_section,
    "batch": batch_section,
    "scheduling": scheduling_section,
    "gpu": gpu_section,
}


def register_section(name: str, function: Section) -> None:
    """Add (or replace) a section; ``--section NAME`` then runs it, ``all`` includes it."""
    SECTIONS[name] = function
