"""Prompt datasets: CSV, TSV, Parquet, JSONL and plain-text files of prompts -> requests.

A dataset row becomes one :class:`PromptRequest` per sample (``samples: 3`` gives samples
0, 1 and 2, i.e. three partitions). Reading never raises for bad input: a file that cannot
be read at all (binary, not UTF-8, empty, corrupt Parquet, a folder) gives a result with one
problem and no rows; a bad row (no prompt, a wrong type, a value the request models refuse)
gives a problem with its file and line and is skipped, and the good rows still go through.
A row whose partition an earlier row of the file already produced is dropped (the first
wins) and counted in ``duplicates``.

Columns (``core/dataset_columns.py``; names are matched without case or surrounding
spaces): ``prompt`` (required), ``id`` (the user's own identifier, kept beside the request),
``samples``, and the per-prompt settings that say they may be a column: today ``video_model``,
``keyframe_model``, ``script_model``, ``seed``, ``scenes``, ``duration`` (seconds;
``duration_s`` is accepted too) and ``style``. Other columns are ignored with one warning
per file. How each file format is read, and why lines are counted as they are, is in
``core/dataset_files.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidgen_pipeline.core.dataset_columns import (
    CELLS,
    MAX_SAMPLES,
    MAX_SEED,
    PROMPT,
    columns,
    missing,
    read_cell,
    read_id,
    read_settings,
    show,
)
from vidgen_pipeline.core.dataset_files import (
    FORMATS,
    Severity,
    Table,
    Unreadable,
    parse_table,
    read_bytes,
)
from vidgen_pipeline.core.images import drop_folder, store_image
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.music import store_music
from vidgen_pipeline.core.requests import GenerationSettings, PromptError, PromptRequest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"  # shipped example datasets
COLUMNS = columns()
_TEMP_SUFFIXES = {".tmp", ".temp", ".part", ".partial", ".crdownload", ".swp"}

__all__ = [
    "COLUMNS",
    "EXAMPLES",
    "FORMATS",
    "MAX_SAMPLES",
    "MAX_SEED",
    "DatasetProblem",
    "DatasetReadResult",
    "DatasetRow",
    "dataset_fingerprint",
    "file_stamp",
    "find_datasets",
    "read_dataset",
]


@dataclass(frozen=True)
class DatasetProblem:
    """Something wrong with a dataset file or one of its rows.

    ``line``: the line in the file (CSV header = 1), the row number for Parquet, or ``None``
    for the file as a whole. ``severity``: "error" when a row or the file was skipped,
    "warning" when everything usable was still used (unknown columns, duplicate settings).
    """

    file: Path
    line: int | None
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file.name}: {self.message}"
        if FORMATS.get(self.file.suffix.lower()) == "parquet":
            return f"{self.file.name} row {self.line}: {self.message}"
        return f"{self.file.name}:{self.line}: {self.message}"


@dataclass(frozen=True)
class DatasetRow:
    """One request from a dataset: the line it came from and the user's ``id`` for it."""

    line: int
    id: str | None
    request: PromptRequest

    @property
    def partition_key(self) -> str:
        return self.request.partition_key


@dataclass
class DatasetReadResult:
    """What :func:`read_dataset` found in one file.

    ``rows``: data rows in the file (blank and comment lines not counted; bad rows counted).
    ``duplicates``: prompt x sample requests dropped because an earlier row of the file had
    already produced their partition (for one-sample rows: the repeated rows).
    ``fingerprint``: sha256 of the bytes that were parsed (``None`` if none could be read).
    """

    path: Path
    entries: list[DatasetRow] = field(default_factory=list)
    problems: list[DatasetProblem] = field(default_factory=list)
    rows: int = 0
    duplicates: int = 0
    fingerprint: str | None = None

    @property
    def requests(self) -> list[PromptRequest]:
        return [entry.request for entry in self.entries]

    @property
    def partition_keys(self) -> list[str]:
        return [entry.partition_key for entry in self.entries]

    @property
    def errors(self) -> list[DatasetProblem]:
        return [p for p in self.problems if p.severity == "error"]


# ---------------------------------------------------------------------------------------
# public API


def read_dataset(path: str | Path, image_dirs: Sequence[str | Path] = ()) -> DatasetReadResult:
    """Read one dataset file into requests; never raises for bad input (see the module doc).
    An ``image`` column is read from under the file's folder, VIDGEN_HOME/inputs or one of
    ``image_dirs`` (the ``video_generator`` resource's)."""
    path = Path(path)
    result = DatasetReadResult(path=path)

    def problem(line: int | None, message: str, severity: Severity = "error") -> None:
        result.problems.append(DatasetProblem(path, line, message, severity))

    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        problem(None, f"unknown file type {path.suffix!r}; use one of {', '.join(FORMATS)}")
        return result
    try:
        data = read_bytes(path)
        result.fingerprint = hashlib.sha256(data).hexdigest()
        table = parse_table(data, kind)
    except Unreadable as exc:
        problem(exc.line, exc.message)
        return result

    for line, message, severity in table.problems:
        problem(line, message, severity)
    if not table.lines:
        problem(None, "no prompts in the file", "warning")
        return result
    roots = [path.parent, drop_folder(), *(Path(d) for d in image_dirs)]
    _convert(table, result, problem, roots)
    return result


def find_datasets(folder: str | Path) -> list[Path]:
    """The dataset files directly in ``folder``, sorted by name.

    Hidden files, editor and download leftovers (``*.tmp``, ``*.part``, ``name~``, Excel's
    ``~$name``) and files of other types are left out; so are subfolders. A missing folder
    gives an empty list. Write a dataset as ``name.csv.tmp`` and rename it when complete,
    and no reader sees half a file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        name = path.name
        if name.startswith((".", "~")) or name.endswith("~"):
            continue
        suffix = path.suffix.lower()
        if suffix in _TEMP_SUFFIXES or suffix not in FORMATS:
            continue
        if path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.name)


def dataset_fingerprint(path: str | Path) -> str:
    """The sha256 of the file's bytes (hex): equal fingerprints mean the same content.

    Cheap first check for a sensor: compare :func:`file_stamp` and hash only when it moved.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_stamp(path: str | Path) -> tuple[int, int]:
    """``(size, mtime_ns)``: changes whenever the file is rewritten (and sometimes not else)."""
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


# ---------------------------------------------------------------------------------------
# table -> requests


def _convert(
    table: Table, result: DatasetReadResult, problem: Callable[..., None], roots: list[Path]
) -> None:
    frame = table.frame
    unknown = [c for c in frame.columns if c not in COLUMNS]
    if unknown:
        problem(
            table.header_line,
            f"ignored unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; known: {', '.join(COLUMNS)}",
            "warning",
        )
    count = len(table.lines)
    result.rows = count
    columns = {
        name: frame[name].tolist() if name in frame.columns else [None] * count for name in COLUMNS
    }
    seen: dict[str, tuple[int, GenerationSettings]] = {}
    for index in range(count):
        line = table.lines[index]
        if index in table.row_errors:
            problem(line, table.row_errors[index])
            continue
        values = {name: columns[name][index] for name in COLUMNS}
        made = _row_requests(values, result.path.parent, roots)
        if isinstance(made, str):
            problem(line, made)
            continue
        row_id, requests = made
        repeated_settings_of = None
        for request in requests:
            key = request.partition_key
            if key in seen:
                result.duplicates += 1
                first_line, first_settings = seen[key]
                if first_settings != request.settings:
                    repeated_settings_of = first_line
                continue
            seen[key] = (line, request.settings)
            result.entries.append(DatasetRow(line, row_id, request))
        if repeated_settings_of is not None:
            problem(
                line,
                f"repeats the prompt of line {repeated_settings_of} with other settings; "
                f"line {repeated_settings_of}'s settings are used",
                "warning",
            )


def _row_requests(
    values: dict[str, Any], folder: Path, roots: list[Path]
) -> tuple[str | None, list[PromptRequest]] | str:
    """The row's id and requests, or one message naming everything wrong with it. An
    ``image`` is read relative to the dataset's ``folder``, and only from under ``roots``;
    it is stored by digest (``core/images.py``)."""
    errors: list[str] = []
    prompt = values[PROMPT]
    if missing(prompt):
        errors.append("no prompt")
    elif not isinstance(prompt, str):
        errors.append(f"prompt {show(prompt)} must be text")
    row_id = read_cell("id", values["id"], read_id, errors)
    settings = read_settings(values, errors)
    samples = read_cell("samples", values["samples"], CELLS["samples"], errors)
    if errors:
        return "; ".join(errors)
    samples = samples or 1
    if settings.get("image"):
        try:
            settings["image"] = store_image(folder / settings["image"], roots)
        except ModelChoiceError as exc:
            return str(exc)
    if settings.get("music"):
        try:
            settings["music"] = store_music(folder / settings["music"], [folder, drop_folder()])
        except ModelChoiceError as exc:
            return str(exc)
    seed = settings.pop("seed", None)
    if seed is not None and seed + samples - 1 > MAX_SEED:
        return f"seed {seed} is too large for {samples} samples (at most {MAX_SEED})"
    try:
        requests = [
            PromptRequest(
                text=prompt,
                sample=sample,
                settings=GenerationSettings(**settings, seed=_sample_seed(seed, sample)),
            )
            for sample in range(samples)
        ]
    except ValidationError as exc:
        return "; ".join(_describe(error) for error in exc.errors())
    except PromptError as exc:
        return str(exc)
    return row_id, requests


def _sample_seed(seed: int | None, sample: int) -> int | None:
    """Sample 0 keeps the row's seed; sample i gets seed + i, so samples differ.

    The pipeline derives every scene's seed from ``settings.seed`` (None reads as 0) and
    not from the sample number, so without this the samples of a row would be identical.
    """
    if sample == 0:
        return seed
    return (seed or 0) + sample


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
