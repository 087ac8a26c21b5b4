"""The harness: sections, the machine and versions, and writing JSON and markdown.

Each section is a function ``(BenchContext) -> SectionResult`` in ``SECTIONS``; its markdown
goes into ``docs/benchmarks.md`` between ``<!-- bench:KEY -->`` and ``<!-- /bench:KEY -->``
(nothing else in the file changes), its data into the JSON file under ``sections.KEY``.
Add a section by adding a function to ``SECTIONS`` (``register_section``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MARKDOWN = Path("docs/benchmarks.md")
PEAK_TFLOPS = 989.0  # H200 (and H100 SXM) dense bf16/fp16 tensor-core peak, TFLOP/s

MARKDOWN_HEADER = """# Benchmarks

Written by the harness: `make bench` (or `python -m vidgen_pipeline.bench --section all`).
Each section below is replaced on its own by the next run of that section; text outside the
`<!-- bench:... -->` markers is kept. See `vidgen_pipeline/bench/` for what is measured.
"""


@dataclass
class SectionResult:
    """What a section measured: ``data`` for the JSON file, ``markdown`` for the docs.

    ``key`` names the markers in the markdown file (``gpu-tiny`` for the GPU section run
    with tiny models, so a CPU run never overwrites real GPU figures)."""

    key: str
    title: str
    data: dict[str, Any]
    markdown: str
    complete: bool = True


@dataclass
class BenchContext:
    """What a section is told: size, options, where to log, and how to save partial work."""

    tiny: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = print
    checkpoint: Callable[[SectionResult], None] = lambda result: None

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name)
        return default if value is None else value


Section = Callable[[BenchContext], SectionResult]


def _cpu_section(ctx: BenchContext) -> SectionResult:
    from vidgen_pipeline.bench.cpu import cpu_section

    return cpu_section(ctx)


def _gpu_section(ctx: BenchContext) -> SectionResult:
    from vidgen_pipeline.bench.gpu import gpu_section

    return gpu_section(ctx)


def _batch_section(ctx: BenchContext) -> SectionResult:
    from vidgen_pipeline.bench.batch import batch_section

    return batch_section(ctx)


SECTIONS: dict[str, Section] = {"cpu": _cpu_section, "batch": _batch_section, "gpu": _gpu_section}


def register_section(name: str, function: Section) -> None:
    """Add (or replace) a section; ``--section NAME`` then runs it, ``all`` includes it."""
    SECTIONS[name] = function


# ------------------------------------------------------------------------ machine, versions


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": _ram_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "gpu": "none",
    }
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_memory_gb"] = round(props.total_memory / 2**30, 1)
            info["gpu_count"] = torch.cuda.device_count()
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def versions() -> dict[str, str | None]:
    from importlib import metadata

    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "diffusers", "dagster", "transformers", "xformers", "triton"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    try:
        import torch

        found["cuda"] = torch.version.cuda
        found["cudnn"] = (
            str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
        )
    except ImportError:
        pass
    return found


def machine_line(machine: dict[str, Any]) -> str:
    cores = machine.get("cores")
    usable = machine.get("cores_usable")
    core_text = f"{cores} cores" + (f" ({usable} usable)" if usable and usable != cores else "")
    gpu = machine.get("gpu", "none")
    if machine.get("gpu_memory_gb"):
        gpu += f", {machine['gpu_memory_gb']} GiB"
    load = machine.get("load_average")
    load_text = f"; load average at start {load[0]}" if load else ""
    return (
        f"{machine.get('cpu')}, {core_text}, {machine.get('ram_gb')} GiB RAM; GPU: {gpu}; "
        f"{machine.get('os')}{load_text}"
    )


def versions_line(found: dict[str, str | None]) -> str:
    return ", ".join(f"{k} {v}" for k, v in found.items() if v)


# ----------------------------------------------------------------------------- markdown


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return fmt(value)
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, plainly written."""
    if value is None:
        return "-"
    if value != value:  # NaN
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10 ** (digits + 3) or magnitude < 1e-3:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - int(_floor_log10(magnitude)))
    return f"{value:.{decimals}f}"


def _floor_log10(x: float) -> int:
    import math

    return math.floor(math.log10(x))


def replace_section(path: Path, key: str, body: str) -> None:
    """Put ``body`` between this section's markers in ``path``; keep everything else."""
    start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else MARKDOWN_HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    _atomic_write(path, text)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def section_markdown(
    result: SectionResult, machine: dict, found: dict, command: str, seconds: float | None
) -> str:
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    status = "" if result.complete else " (partial: the run stopped before the end)"
    return "\n".join(
        [
            f"## {result.title}",
            "",
            f"- Run: {when}{took}{status}",
            f"- Command: `{command}`",
            f"- Machine: {machine_line(machine)}",
            f"- Versions: {versions_line(found)}",
            "",
            result.markdown.strip(),
        ]
    )


# ---------------------------------------------------------------------------------- run


def default_json_path() -> Path:
    from vidgen_pipeline.core.recipes import _home

    return _home() / "bench" / "benchmarks.json"


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
            _atomic_write(json_path, json.dumps(document, indent=2, default=str) + "\n")
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
