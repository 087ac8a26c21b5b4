"""Prompt datasets: CSV, TSV, Parquet, JSONL and plain-text files of prompts -> requests.

A dataset row becomes one :class:`PromptRequest` per sample (``samples: 3`` gives samples
0, 1 and 2, i.e. three partitions). Reading never raises for bad input: a file that cannot
be read at all (binary, not UTF-8, empty, corrupt Parquet, a folder) gives a result with one
problem and no rows; a bad row (no prompt, a wrong type, a value the request models refuse)
gives a problem with its file and line and is skipped, and the good rows still go through.
A row whose partition an earlier row of the file already produced is dropped (the first
wins) and counted in ``duplicates``.

Columns (names are matched without case or surrounding spaces): ``prompt`` (required),
``id`` (the user's own identifier, kept beside the request), ``style``, ``duration``
(seconds; ``duration_s`` is accepted too), ``scenes``, ``seed``, ``samples``,
``video_model``, ``script_model`` and ``keyframe_model``. Other columns are ignored with one
warning per file.

Line numbers are the ones a person sees in an editor: the CSV header is line 1 and a quoted
prompt that spans lines counts all of them. That is why CSV and TSV are tokenised with the
``csv`` module and not ``pandas.read_csv``: pandas reports neither the line a row started on
nor, reliably, a row with too many fields (it turns the extra column into an index or
truncates the row) and it drops whitespace-only lines. The rows then go into a DataFrame
like every other format; Parquet is read by pandas (pyarrow). For Parquet, "line" is the
row number, the first row being 1.

Text files must be UTF-8 (a BOM is fine; UTF-16 with a BOM is read too). Anything else is
reported, never guessed: decoding a UTF-8 file as Latin-1 would turn its prompts, and so
their partition keys, into mojibake.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import ValidationError

from vidgen_pipeline.core.models import KEYFRAME_MODELS, looks_like_hub_id
from vidgen_pipeline.core.requests import GenerationSettings, PromptError, PromptRequest
from vidgen_pipeline.families.registry import VIDEO_MODELS

FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "txt",
}
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"  # shipped example datasets
MAX_DATASET_BYTES = 256 * 1024 * 1024
MAX_SAMPLES = 64
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes 64 bits; keep room for offsets
PROMPT = "prompt"
COLUMNS = (
    PROMPT,
    "id",
    "style",
    "duration",
    "scenes",
    "seed",
    "samples",
    "video_model",
    "script_model",
    "keyframe_model",
)
ALIASES = {"duration_s": "duration"}
_TEMP_SUFFIXES = {".tmp", ".temp", ".part", ".partial", ".crdownload", ".swp"}
_INT = re.compile(r"^[+-]?\d+(?:\.0*)?$")
_SECONDS = re.compile(r"^(.*?)\s*s(?:ec(?:onds?)?)?$", re.IGNORECASE)

Severity = Literal["error", "warning"]


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


class _Unreadable(Exception):
    """The whole file cannot be used (internal: becomes one problem)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class _Table:
    """Rows of one file: a frame of raw values plus each row's line and any row errors."""

    frame: pd.DataFrame
    lines: list[int]
    row_errors: dict[int, str] = field(default_factory=dict)  # row index -> message
    problems: list[tuple[int | None, str, Severity]] = field(default_factory=list)
    header_line: int | None = None  # where column names are, for notes about columns


# ---------------------------------------------------------------------------------------
# public API


def read_dataset(path: str | Path) -> DatasetReadResult:
    """Read one dataset file into requests; never raises for bad input (see the module doc)."""
    path = Path(path)
    result = DatasetReadResult(path=path)

    def problem(line: int | None, message: str, severity: Severity = "error") -> None:
        result.problems.append(DatasetProblem(path, line, message, severity))

    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        problem(None, f"unknown file type {path.suffix!r}; use one of {', '.join(FORMATS)}")
        return result
    try:
        data = _read_bytes(path)
        result.fingerprint = hashlib.sha256(data).hexdigest()
        table = _READERS[kind](data)
    except _Unreadable as exc:
        problem(exc.line, exc.message)
        return result

    for line, message, severity in table.problems:
        problem(line, message, severity)
    if not table.lines:
        problem(None, "no prompts in the file", "warning")
        return result
    _convert(table, result, problem)
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
# bytes -> table


def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise _Unreadable("is a folder, not a file")
        size = path.stat().st_size
        if size > MAX_DATASET_BYTES:
            raise _Unreadable(
                f"is {size / 2**20:,.0f} MiB; the limit is {MAX_DATASET_BYTES / 2**20:,.0f} MiB "
                "(split it into several files)"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise _Unreadable("does not exist") from None
    except PermissionError:
        raise _Unreadable("cannot be read (permission denied)") from None
    except OSError as exc:
        raise _Unreadable(f"cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise _Unreadable("the file is empty")
    return data


def _decode(data: bytes) -> str:
    """UTF-8 (BOM or not), or UTF-16 with a BOM; anything else is refused with its line."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise _Unreadable("starts like UTF-16 text but is not valid UTF-16") from None
    if data.startswith(b"PAR1"):
        raise _Unreadable("is a Parquet file; give it the .parquet extension")
    if b"\x00" in data:
        raise _Unreadable("looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _Unreadable(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8",
            line,
        ) from None
    if not text.strip():
        raise _Unreadable("the file is empty")
    return text


def _physical_lines(text: str) -> list[str]:
    # \n, \r\n and \r end a line, as editors count them; str.splitlines would also split on
    # form feeds, U+2028 and other characters that may sit inside a prompt.
    return re.split(r"\r\n|\r|\n", text)


def _column_name(raw: object) -> str:
    name = str(raw).strip().lower()
    return ALIASES.get(name, name)


def _read_txt(data: bytes) -> _Table:
    lines: list[int] = []
    prompts: list[str] = []
    for number, line in enumerate(_physical_lines(_decode(data)), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append(number)
            prompts.append(line)
    return _Table(pd.DataFrame({PROMPT: prompts}, dtype=object), lines)


def _read_delimited(data: bytes, delimiter: str) -> _Table:
    text = _decode(data)
    # csv's default limit (128 KiB a field) is below what a file may hold; a prompt longer
    # than MAX_PROMPT_CHARS is then refused per row with a clear message.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_DATASET_BYTES))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[list[str]] = []
    starts: list[int] = []
    previous = 0
    try:
        for fields in reader:
            start, previous = previous + 1, reader.line_num
            if any(f.strip() for f in fields):  # blank lines and lines of empty cells
                records.append(fields)
                starts.append(start)
    except csv.Error as exc:
        raise _Unreadable(f"is not valid CSV near line {reader.line_num}: {exc}") from None
    if not records:
        raise _Unreadable("the file is empty")
    header, header_line = records[0], starts[0]
    problems: list[tuple[int | None, str, Severity]] = []
    keep: list[int] = []  # header positions used, in order
    names: list[str] = []
    unnamed: list[int] = []
    for position, raw in enumerate(header):
        name = _column_name(raw)
        if not name:
            unnamed.append(position)
        elif name in names:
            problems.append(
                (header_line, f"column {name!r} appears twice; the first is used", "warning")
            )
        else:
            keep.append(position)
            names.append(name)
    if PROMPT not in names:
        shown = ", ".join(repr(h) for h in header[:6]) + (", ..." if len(header) > 6 else "")
        raise _Unreadable(
            f"has no 'prompt' column: the first line must name the columns, "
            f"one of them 'prompt' (it holds {shown})",
            header_line,
        )
    width = len(header)
    rows: list[list[str]] = []
    lines: list[int] = []
    row_errors: dict[int, str] = {}
    unnamed_data = False
    for fields, start in zip(records[1:], starts[1:], strict=True):
        index = len(rows)
        extra = fields[width:]
        if any(f.strip() for f in extra):
            row_errors[index] = (
                f"has {len(fields)} fields but the header has {width}; "
                "quote a prompt that holds the delimiter"
            )
        if len(fields) < width:
            fields = fields + [""] * (width - len(fields))
        unnamed_data = unnamed_data or any(fields[p].strip() for p in unnamed)
        rows.append([fields[p] for p in keep])
        lines.append(start)
    if rows and _ends_in_open_quote(text, starts[-1], delimiter):
        row_errors[len(rows) - 1] = (
            f"a quote opened on this line never closes, so lines {starts[-1]}-{previous} "
            "read as one field"
        )
    if unnamed_data:
        problems.append(
            (header_line, "columns without a name hold values; they are ignored", "warning")
        )
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    return _Table(frame, lines, row_errors, problems, header_line)


def _ends_in_open_quote(text: str, last_start: int, delimiter: str) -> bool:
    """True when the file's last record runs to the end inside a quote that never closed.

    csv (like a spreadsheet) then reads the rest of the file as one field; only the strict
    reader says so, and it is too strict for the whole file (``"a"b`` is fine elsewhere).
    """
    tail = "".join(io.StringIO(text, newline="").readlines()[last_start - 1 :])
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _read_csv(data: bytes) -> _Table:
    return _read_delimited(data, ",")


def _read_tsv(data: bytes) -> _Table:
    return _read_delimited(data, "\t")


def _read_jsonl(data: bytes) -> _Table:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    row_errors: dict[int, str] = {}
    for number, line in enumerate(_physical_lines(_decode(data)), start=1):
        if not line.strip():
            continue
        index = len(records)
        lines.append(number)
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append({})
            row_errors[index] = f"is not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        if not isinstance(value, dict):
            records.append({})
            row_errors[index] = f"must be a JSON object, not {type(value).__name__}"
            continue
        row: dict[str, Any] = {}
        for key, item in value.items():
            row.setdefault(_column_name(key), item)
        records.append(row)
    if records and not row_errors and not any(PROMPT in r for r in records):
        raise _Unreadable("has no 'prompt' key on any line: each line needs one", lines[0])
    frame = pd.DataFrame.from_records(records, index=range(len(records))).astype(object)
    return _Table(frame, lines, row_errors)


def _read_parquet(data: bytes) -> _Table:
    if not (data.startswith(b"PAR1") and data.endswith(b"PAR1")):
        raise _Unreadable("is not a Parquet file (or it is cut short)")
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except ImportError as exc:
        raise _Unreadable(f"cannot be read: Parquet needs pyarrow ({exc})") from None
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise _Unreadable(f"is not a readable Parquet file ({exc})") from None
    names = [_column_name(c) for c in frame.columns]
    problems: list[tuple[int | None, str, Severity]] = []
    keep = []
    for position, name in enumerate(names):
        if name in names[:position]:
            problems.append((None, f"column {name!r} appears twice; the first is used", "warning"))
        else:
            keep.append(position)
    frame = frame.iloc[:, keep].astype(object)
    frame.columns = [names[p] for p in keep]
    if PROMPT not in frame.columns:
        raise _Unreadable(
            f"has no 'prompt' column (it has {', '.join(map(repr, frame.columns[:6]))})"
        )
    return _Table(frame.reset_index(drop=True), list(range(1, len(frame) + 1)), {}, problems)


_READERS: dict[str, Callable[[bytes], _Table]] = {
    "csv": _read_csv,
    "tsv": _read_tsv,
    "jsonl": _read_jsonl,
    "txt": _read_txt,
    "parquet": _read_parquet,
}


# ---------------------------------------------------------------------------------------
# table -> requests


def _convert(table: _Table, result: DatasetReadResult, problem: Callable[..., None]) -> None:
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
        made = _row_requests(values)
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


def _row_requests(values: dict[str, Any]) -> tuple[str | None, list[PromptRequest]] | str:
    """The row's id and requests, or one message naming everything wrong with it."""
    errors: list[str] = []

    def take(name: str, convert: Callable[[Any], Any]) -> Any:
        value = values[name]
        if _missing(value):
            return None
        try:
            return convert(value)
        except ValueError as exc:
            errors.append(f"{name} {_show(value)} {exc}")
            return None

    prompt = values[PROMPT]
    if _missing(prompt):
        errors.append("no prompt")
    elif not isinstance(prompt, str):
        errors.append(f"prompt {_show(prompt)} must be text")
    row_id = take("id", _to_id)
    style = take("style", _to_style)
    duration = take("duration", _to_duration)
    scenes = take("scenes", lambda v: _to_int(v, low=1))
    seed = take("seed", lambda v: _to_int(v, low=0, high=MAX_SEED))
    samples = take("samples", lambda v: _to_int(v, low=1, high=MAX_SAMPLES))
    models = {
        "video_model": take("video_model", lambda v: _to_model(v, VIDEO_MODELS)),
        "script_model": take("script_model", _to_text),
        "keyframe_model": take("keyframe_model", lambda v: _to_model(v, KEYFRAME_MODELS)),
    }
    if errors:
        return "; ".join(errors)
    samples = samples or 1
    if seed is not None and seed + samples - 1 > MAX_SEED:
        return f"seed {seed} is too large for {samples} samples (at most {MAX_SEED})"
    try:
        requests = [
            PromptRequest(
                text=prompt,
                sample=sample,
                settings=GenerationSettings(
                    style=style,
                    duration_s=duration,
                    scenes=scenes,
                    seed=_sample_seed(seed, sample),
                    **models,
                ),
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


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
    return False


def _show(value: Any) -> str:
    text = repr(value.strip() if isinstance(value, str) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _to_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value.strip()


def _to_id(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(value))  # an integer column with gaps comes back from Parquet as float
    raise ValueError("must be text or a whole number")


def _to_model(value: Any, registry: dict) -> str:
    """A registry name, ``auto``, a hub id (org/name) or an existing local folder: a row
    naming a model that cannot exist is refused here, not by the run it would fail."""
    name = _to_text(value)
    if name in registry or name == "auto" or looks_like_hub_id(name):
        return name
    if Path(name).expanduser().exists():
        return name
    raise ValueError(
        f"is not a known model ({', '.join(['auto', *registry])}), a hub id or an existing folder"
    )


def _to_style(value: Any) -> str:
    from vidgen_pipeline.core.prompts import STYLE_PRESETS

    style = _to_text(value).lower()
    if style not in STYLE_PRESETS:
        raise ValueError(f"is not a style; known: {', '.join(STYLE_PRESETS)}")
    return style


def _to_int(value: Any, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
        raise ValueError("must be a whole number")
    if isinstance(value, str):
        text = value.strip()
        if not _INT.match(text):
            raise ValueError("is not a whole number")
        number = int(text.split(".")[0])
    elif isinstance(value, numbers.Integral):
        number = int(value)
    else:
        if not (math.isfinite(value) and float(value).is_integer()):
            raise ValueError("is not a whole number")
        number = int(value)
    if low is not None and number < low:
        raise ValueError(f"must be at least {low}")
    if high is not None and number > high:
        raise ValueError(f"must be at most {high}")
    return number


def _to_duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
        raise ValueError("must be a number of seconds")
    if isinstance(value, str):
        text = value.strip()
        match = _SECONDS.match(text)
        if match:
            text = match.group(1)
        try:
            number = float(text)
        except ValueError:
            raise ValueError("is not a number of seconds") from None
    else:
        number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be more than 0 seconds")
    return number
