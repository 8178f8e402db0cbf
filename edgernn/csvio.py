"""Comma-separated text, read one way everywhere: training files, `edgernn run`'s frames and the
device apps' line streams all parse a line with :func:`fields` (the standard ``csv`` rules, so
a quoted field may hold a comma, and a byte-order mark is not part of the first name).

Imports the standard library and numpy only: the device side reads CSV too.
"""

from __future__ import annotations

import csv

import numpy as np

BOM = "\ufeff"


def fields(line: str) -> list[str]:
    """The fields of one CSV line, quotes removed and surrounding spaces stripped."""
    line = line.lstrip(BOM).rstrip("\r\n")
    if not line.strip():
        return []
    return [f.strip() for f in next(csv.reader([line], skipinitialspace=True))]


def numbers(line: str) -> np.ndarray:
    """One line of comma-separated numbers as float64; ValueError when a field is not one."""
    values = fields(line)
    if not values:
        raise ValueError("an empty line")
    return np.array([float(v) for v in values])


def is_header(line: str) -> bool:
    """A header row names its columns: not one of its fields is a number (a row with a typo
    in one number is a bad data row, not a header)."""
    for field in fields(line):
        try:
            float(field)
            return False
        except ValueError:
            pass
    return True
