"""Every CSV that MedPortal exports is written here, so that no cell runs as a spreadsheet formula.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets (CSV injection); such a cell gets a leading
apostrophe, which they show as text. Many values come from outside (a failed login's user
name, a DICOM header's patient ID or accession number), so every text cell is checked.
Plain numbers ("-1", "+2.5") stay as they are: they are not formulas.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """The value as a cell no spreadsheet runs: text that would start a formula is quoted with '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


_writer = csv.writer(_Echo())


def csv_line(values: Iterable[Any]) -> str:
    """One CSV line (with its line ending) of these values, each made safe by ``csv_cell``."""
    return _writer.writerow([csv_cell(value) for value in values])
