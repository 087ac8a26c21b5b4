"""What every bench section shares, importing none of them: the result and context types,
machine facts and versions, report writing (markdown tables, section blocks, JSON), and a
temporary VIDGEN_HOME.

Only the standard library at import time: the GPU box that runs the bench has neither
Dagster nor this project's other dependencies.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import platform
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PEAK_TFLOPS = 989.0  # H200 (and H100 SXM) dense bf16/fp16 tensor-core peak, TFLOP/s
# Tiny random-weight models at the smallest size that still runs every stage.
TINY_RUN = {"width": 64, "height": 64, "fps": 4.0, "frames": 4, "steps": 2, "keyframe_steps": 2}
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

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


def guard(measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A part that fails is reported as such; the other parts still run."""
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001  a benchmark reports, it does not stop
        return {"status": f"failed: {type(exc).__name__}: {exc}"}


def vidgen_home() -> Path:
    """VIDGEN_HOME, read here without ``core.storage`` (it needs ``universal-pathlib``,
    which a bare GPU box running only the bench lacks)."""
    return Path(os.environ.get("VIDGEN_HOME", ".vidgen")).expanduser().resolve()


@contextlib.contextmanager
def temporary_home(prefix: str) -> Iterator[Path]:
    """A fresh VIDGEN_HOME (and Dagster home) with no network for the hub; the environment
    is restored afterwards."""
    names = ("VIDGEN_HOME", "DAGSTER_HOME", "VIDGEN_STORAGE", "HF_HUB_OFFLINE", "HF_HOME")
    saved = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        home = Path(tmp) / "home"
        os.environ["VIDGEN_HOME"] = str(home)
        os.environ.pop("DAGSTER_HOME", None)
        os.environ.pop("VIDGEN_STORAGE", None)
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_HOME"] = str(Path(tmp) / "hf_home")
        try:
            from vidgen_pipeline.instance import prepare_home

            prepare_home()
            yield home
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


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
    write_text_atomically(path, text)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` beside it first, then rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def section_markdown(
    result: SectionResult, machine: dict, found: dict, command: str, seconds: float | None
) -> str:
    """A section's block: its title, when and how it ran, on what, and its own markdown."""
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
