"""How a per-prompt setting says where it can be given: a CLI flag, the Launchpad's config, a
dataset column (``GenerationSettings`` in ``core/requests.py`` puts one on each field)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FINISHING_GROUP = "finishing (frame rate, transitions, encoding)"
SOUND_GROUP = "sound (narration, music, subtitles)"


@dataclass(frozen=True)
class Flag:
    """How ``vidgen generate`` asks for a setting (``cli.py`` builds the option from it).

    ``parse``: ``positive_int``, ``positive_float`` or ``non_negative_float`` (a bounded
    number, refused by the parser in one line); ``None`` parses the field's own type. The
    field's type also decides the option's kind: ``bool`` a flag, ``list[...]`` a repeatable
    option, ``Literal[...]`` a choice (unless ``choices`` is given).
    """

    name: str
    metavar: str | None = None
    help: str | None = None
    parse: str | None = None
    choices: Sequence | None = None
    group: str | None = None  # an argument group's title; None: the command's own options


@dataclass(frozen=True)
class Column:
    """How a prompt dataset holds a setting: the column's name, other names it may have, and
    ``cell``, the reader of its values in ``core/dataset_cells.py`` (``None``: the reader of
    the field's type: text, whole number, number, yes/no or a list)."""

    name: str
    aliases: tuple[str, ...] = ()
    cell: str | None = None


@dataclass(frozen=True)
class Setting:
    """Where a per-prompt setting can be given besides Python: on the command line, in the
    Launchpad's ``add_prompt`` config (with the field's description) and as a dataset
    column. One of these on a field of ``GenerationSettings`` is all a new setting needs."""

    flag: Flag | None = None
    launchpad: bool = False
    column: Column | None = None
