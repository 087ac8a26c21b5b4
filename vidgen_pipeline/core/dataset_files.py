"""Dataset files -> tables of raw cells: CSV, TSV, Parquet, JSONL and plain text.

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
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vidgen_pipeline.core.dataset_columns import PROMPT, aliases

if TYPE_CHECKING:  # pandas is imported where a table is read (it costs ~0.5 s)
    import pandas as pd

FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "txt",
}
MAX_DATASET_BYTES = 256 * 1024 * 1024
ALIASES = aliases()

Severity = Literal["error", "warning"]


class Unreadable(Exception):
    """The whole file cannot be used (becomes one problem of the file)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class Table:
    """Rows of one file: a frame of raw values plus each row's line and any row errors."""

    frame: pd.DataFrame
    lines: list[int]
    row_errors: dict[int, str] = field(default_factory=dict)  # row index -> message
    problems: list[tuple[int | None, str, Severity]] = field(default_factory=list)
    header_line: int | None = None  # where column names are, for notes about columns


def parse_table(data: bytes, kind: str) -> Table:
    """The table the bytes of a ``kind`` file (a ``FORMATS`` value) hold; raises
    ``Unreadable`` when the file as a whole cannot be used."""
    return _READERS[kind](data)


def read_bytes(path: Path) -> bytes:
    """The whole file, refused (``Unreadable``) when it is a folder, missing, too large or
    empty."""
    try:
        if path.is_dir():
            raise Unreadable("is a folder, not a file")
        size = path.stat().st_size
        if size > MAX_DATASET_BYTES:
            raise Unreadable(
                f"is {size / 2**20:,.0f} MiB; the limit is {MAX_DATASET_BYTES / 2**20:,.0f} MiB "
                "(split it into several files)"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise Unreadable("does not exist") from None
    except PermissionError:
        raise Unreadable("cannot be read (permission denied)") from None
    except OSError as exc:
        raise Unreadable(f"cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise Unreadable("the file is empty")
    return data


def _decode(data: bytes) -> str:
    """UTF-8 (BOM or not), or UTF-16 with a BOM; anything else is refused with its line."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise Unreadable("starts like UTF-16 text but is not valid UTF-16") from None
    if data.startswith(b"PAR1"):
        raise Unreadable("is a Parquet file; give it the .parquet extension")
    if b"\x00" in data:
        raise Unreadable("looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise Unreadable(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8",
            line,
        ) from None
    if not text.strip():
        raise Unreadable("the file is empty")
    return text


def _physical_lines(text: str) -> list[str]:
    # \n, \r\n and \r end a line, as editors count them; str.splitlines would also split on
    # form feeds, U+2028 and other characters that may sit inside a prompt.
    return re.split(r"\r\n|\r|\n", text)


def _column_name(raw: object) -> str:
    name = str(raw).strip().lower()
    return ALIASES.get(name, name)


def _read_txt(data: bytes) -> Table:
    import pandas as pd

    lines: list[int] = []
    prompts: list[str] = []
    for number, line in enumerate(_physical_lines(_decode(data)), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append(number)
            prompts.append(line)
    return Table(pd.DataFrame({PROMPT: prompts}, dtype=object), lines)


def _read_delimited(data: bytes, delimiter: str) -> Table:
    import pandas as pd

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
        raise Unreadable(f"is not valid CSV near line {reader.line_num}: {exc}") from None
    if not records:
        raise Unreadable("the file is empty")
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
        raise Unreadable(
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
    return Table(frame, lines, row_errors, problems, header_line)


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


def _read_csv(data: bytes) -> Table:
    return _read_delimited(data, ",")


def _read_tsv(data: bytes) -> Table:
    return _read_delimited(data, "\t")


def _read_jsonl(data: bytes) -> Table:
    import pandas as pd

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
        raise Unreadable("has no 'prompt' key on any line: each line needs one", lines[0])
    frame = pd.DataFrame.from_records(records, index=range(len(records))).astype(object)
    return Table(frame, lines, row_errors)


def _read_parquet(data: bytes) -> Table:
    import pandas as pd

    if not (data.startswith(b"PAR1") and data.endswith(b"PAR1")):
        raise Unreadable("is not a Parquet file (or it is cut short)")
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except ImportError as exc:
        raise Unreadable(f"cannot be read: Parquet needs pyarrow ({exc})") from None
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise Unreadable(f"is not a readable Parquet file ({exc})") from None
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
        raise Unreadable(
            f"has no 'prompt' column (it has {', '.join(map(repr, frame.columns[:6]))})"
        )
    return Table(frame.reset_index(drop=True), list(range(1, len(frame) + 1)), {}, problems)


_READERS: dict[str, Callable[[bytes], Table]] = {
    "csv": _read_csv,
    "tsv": _read_tsv,
    "jsonl": _read_jsonl,
    "txt": _read_txt,
    "parquet": _read_parquet,
}
