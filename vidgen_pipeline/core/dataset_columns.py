"""The columns of a prompt dataset, and how each cell becomes a value.

``prompt`` (required), ``id`` (the user's own identifier, kept beside the request) and
``samples`` (takes per prompt) are the dataset's own; every other column is a per-prompt
setting whose ``Column`` (on its ``GenerationSettings`` field) names it and its reader here
(``CELLS``; by default the reader of the field's type). Names are matched without case or
surrounding spaces; a setting's aliases read as its name.

A reader takes a cell as a file gives it (text from CSV and TSV, numbers, booleans and lists
from JSONL and Parquet) and returns the value or raises ``ValueError`` with what is wrong
("must be at least 1"); the row's message puts the column and the cell before it.
"""

from __future__ import annotations

import math
import numbers
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from vidgen_pipeline.core.models import KEYFRAME_MODELS, looks_like_hub_id
from vidgen_pipeline.core.requests import GenerationSettings, settings_fields, value_type
from vidgen_pipeline.families.registry import VIDEO_MODELS

MAX_SAMPLES = 64
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes 64 bits; keep room for offsets
PROMPT = "prompt"
LIST_SEPARATOR = ";"  # between the items of a list setting in a text cell
_INT = re.compile(r"^[+-]?\d+(?:\.0*)?$")
_SECONDS = re.compile(r"^(.*?)\s*s(?:ec(?:onds?)?)?$", re.IGNORECASE)
_YES, _NO = {"1", "true", "yes", "y", "on"}, {"0", "false", "no", "n", "off"}


def missing(value: Any) -> bool:
    """An empty cell: nothing, NaN, or only white space."""
    if value is None:
        return True
    pd = sys.modules.get("pandas")  # NA and NaT come only from a table pandas read
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
    return False


def show(value: Any) -> str:
    """A cell as a problem line quotes it (cut at 40 characters)."""
    text = repr(value.strip() if isinstance(value, str) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _to_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value.strip()


def read_id(value: Any) -> str:
    """The ``id`` column: text, or a whole number written as text."""
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


def _to_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
        raise ValueError("must be a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise ValueError("is not a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _YES | _NO:
        return value.strip().lower() in _YES
    raise ValueError("must be yes or no (true/false, 1/0)")


def _to_list(value: Any) -> list[str]:
    """A list of text: a list (JSONL, Parquet) or text with items split by ``;``."""
    items = value.split(LIST_SEPARATOR) if isinstance(value, str) else value
    if not isinstance(items, list | tuple) and not hasattr(items, "tolist"):
        raise ValueError(f"must be a list, or text with items separated by {LIST_SEPARATOR!r}")
    items = list(items.tolist() if hasattr(items, "tolist") else items)
    if not all(isinstance(item, str) for item in items):
        raise ValueError("must be a list of text")
    return [item.strip() for item in items if item.strip()]


def _to_path(value: Any) -> str:
    """An existing file or folder (``~`` expanded), checked when the row is read."""
    path = Path(_to_text(value)).expanduser()
    if not path.exists():
        raise ValueError("is not an existing file")
    return str(path)


# Readers by name (a Column's ``cell``), and by a field's type when it names none.
CELLS: dict[str, Callable[[Any], Any]] = {
    "text": _to_text,
    "int": _to_int,
    "count": lambda value: _to_int(value, low=1),
    "seed": lambda value: _to_int(value, low=0, high=MAX_SEED),
    "samples": lambda value: _to_int(value, low=1, high=MAX_SAMPLES),
    "number": _to_number,
    "seconds": _to_duration,
    "bool": _to_bool,
    "list": _to_list,
    "path": _to_path,
    "style": _to_style,
    "video_model": lambda value: _to_model(value, VIDEO_MODELS),
    "keyframe_model": lambda value: _to_model(value, KEYFRAME_MODELS),
}
_BY_TYPE = {str: "text", int: "int", float: "number", bool: "bool"}


def setting_columns(
    model: type[BaseModel] = GenerationSettings,
) -> list[tuple[str, str, Callable[[Any], Any]]]:
    """``(column, field, reader)`` for each setting of ``model`` that a dataset may hold, in
    the model's order."""
    found = []
    for name, info, setting in settings_fields(model):
        if setting.column is not None:
            kind, repeatable = value_type(info)
            cell = setting.column.cell or ("list" if repeatable else _BY_TYPE.get(kind, "text"))
            found.append((setting.column.name, name, CELLS[cell]))
    return found


def columns(model: type[BaseModel] = GenerationSettings) -> tuple[str, ...]:
    """Every column a dataset of ``model``'s settings may have."""
    return (PROMPT, "id", *(column for column, _, _ in setting_columns(model)), "samples")


def aliases(model: type[BaseModel] = GenerationSettings) -> dict[str, str]:
    """Other names of the setting columns -> their names (``duration_s`` -> ``duration``)."""
    return {
        alias: setting.column.name
        for _, _, setting in settings_fields(model)
        if setting.column is not None
        for alias in setting.column.aliases
    }


def read_cell(column: str, value: Any, reader: Callable[[Any], Any], errors: list[str]) -> Any:
    """``reader(value)``; ``None`` for an empty cell, or (with a line in ``errors``, like
    ``scenes '0' must be at least 1``) for one the reader refuses."""
    if missing(value):
        return None
    try:
        return reader(value)
    except ValueError as exc:
        errors.append(f"{column} {show(value)} {exc}")
        return None


def read_settings(
    values: dict[str, Any], errors: list[str], model: type[BaseModel] = GenerationSettings
) -> dict[str, Any]:
    """The settings in one row (``{column: cell}``) as ``{field: value}``, empty cells left
    out; what cannot be read goes into ``errors``."""
    settings = {}
    for column, field, reader in setting_columns(model):
        value = read_cell(column, values.get(column), reader, errors)
        if value is not None:
            settings[field] = value
    return settings
