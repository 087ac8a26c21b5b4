"""The runner: ``run`` the sections of the registry (``bench.sections``) and write each one's
markdown into ``docs/benchmarks.md`` between ``<!-- bench:KEY -->`` and
``<!-- /bench:KEY -->`` (nothing else in the file changes) and its data into the JSON file
under ``sections.KEY``.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidgen_pipeline.bench.common import (
    BenchContext,
    SectionResult,
    cuda_available,
    machine_info,
    replace_section,
    section_markdown,
    versions,
    vidgen_home,
    write_text_atomically,
)
from vidgen_pipeline.bench.sections import SECTIONS, register_section

DEFAULT_MARKDOWN = Path("docs/benchmarks.md")

__all__ = [
    "DEFAULT_MARKDOWN",
    "SECTIONS",
    "BenchContext",
    "SectionResult",
    "copy_section",
    "cuda_available",
    "plan_sections",
    "register_section",
    "replace_section",
    "run",
]


def default_json_path() -> Path:
    """Where the figures go unless ``--json`` says: ``VIDGEN_HOME/bench/benchmarks.json``."""
    return vidgen_home() / "bench" / "benchmarks.json"


def copy_section(source: Path, dest: Path, key: str) -> bool:
    """Copy section ``key`` from markdown file ``source`` into ``dest`` (the GPU figures a
    device machine wrote into its own copy); False when ``source`` has no such section."""
    start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    text = Path(source).read_text(encoding="utf-8")
    match = re.search(re.escape(start) + r"\n(.*?)\n" + re.escape(end), text, re.DOTALL)
    if match is None:
        return False
    replace_section(Path(dest), key, match.group(1))
    return True


def command_line(argv: list[str]) -> str:
    return shlex.join(["python", "-m", "vidgen_pipeline.bench", *argv])


def plan_sections(section: str, tiny: bool) -> list[tuple[str, bool]]:
    """(section, tiny) pairs to run: ``all`` is every section; the GPU one goes tiny (on the
    CPU) when no CUDA GPU is visible."""
    names = list(SECTIONS) if section == "all" else [section]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section {unknown[0]!r}; known: {', '.join(SECTIONS)}, all")
    planned = []
    for name in names:
        small = tiny
        if name == "gpu" and not tiny and not cuda_available():
            small = True
        planned.append((name, small))
    return planned


def run(
    section: str = "all",
    tiny: bool = False,
    out: Path | None = DEFAULT_MARKDOWN,
    json_path: Path | None = None,
    argv: list[str] | None = None,
    options: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the sections; write markdown into ``out`` and JSON into ``json_path`` after each
    one (and whenever a section saves partial results). Returns the JSON document."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    json_path = Path(json_path) if json_path else default_json_path()
    command = command_line(argv if argv is not None else sys.argv[1:])
    machine, found = machine_info(), versions()
    document: dict[str, Any] = {}
    if json_path.exists():
        try:
            document = json.loads(json_path.read_text(encoding="utf-8"))
        except ValueError:
            document = {}
    document.setdefault("sections", {})
    started_all = time.perf_counter()

    for name, small in plan_sections(section, tiny):
        if name == "gpu" and small and not tiny:
            log("gpu section: no CUDA GPU visible, so it runs with --tiny on the CPU")
        started = time.perf_counter()

        def save(result: SectionResult, started=started) -> None:
            seconds = time.perf_counter() - started
            document["sections"][result.key] = {
                "title": result.title,
                "command": command,
                "machine": machine,
                "versions": found,
                "seconds": round(seconds, 2),
                "complete": result.complete,
                "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                **result.data,
            }
            document.update(command=command, machine=machine, versions=found)
            write_text_atomically(json_path, json.dumps(document, indent=2, default=str) + "\n")
            if out is not None:
                replace_section(
                    Path(out),
                    result.key,
                    section_markdown(result, machine, found, command, seconds),
                )

        ctx = BenchContext(tiny=small, options=dict(options or {}), log=log, checkpoint=save)
        log(f"section {name}{' (tiny)' if small else ''} ...")
        result = SECTIONS[name](ctx)
        save(result)
        log(f"section {name} done in {time.perf_counter() - started:.1f} s -> {result.key}")
    log(
        f"bench done in {time.perf_counter() - started_all:.1f} s; JSON {json_path}"
        + (f", markdown {out}" if out is not None else "")
    )
    return document
