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


TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl")


def read_text(path, help_text: str) -> str:
    """A UTF-8 data file's text (a BOM is not part of it); one clear DataError for a missing
    file, a folder, text in another encoding or a read failure."""
    from pathlib import Path

    from edgernn.errors import DataError

    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"data file {path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not a data file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it "
                        f"as UTF-8. {help_text}".rstrip()) from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


def read_records(path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """Texts and their labels from a .csv, .tsv or .jsonl file (UTF-8): one record a row or
    line, the named columns (keys). Raises DataError (from edgernn.errors) on what does not
    fit, naming the row and what to do."""
    import json
    from pathlib import Path

    from edgernn.errors import DataError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise DataError(f"{path}: text data is .csv, .tsv or .jsonl, not {suffix or 'no suffix'}")
    text = read_text(path, "")
    texts, labels = [], []
    if suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {n} is not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {n} is not a JSON object")
            texts.append(_field(record, text_column, path, f"line {n}"))
            labels.append(_field(record, label_column, path, f"line {n}"))
    else:
        import io                                   # a quoted field may hold newlines

        rows = csv.DictReader(io.StringIO(text, newline=""),
                              delimiter="\t" if suffix == ".tsv" else ",")
        missing = [c for c in (text_column, label_column) if c not in (rows.fieldnames or [])]
        if missing:
            raise DataError(f"{path} has no column {missing[0]!r}; its columns are "
                            f"{', '.join(rows.fieldnames or []) or 'none'} (--text-column, "
                            f"--label-column)")
        for n, row in enumerate(rows, start=1):
            texts.append(_field(row, text_column, path, f"record {n}"))
            labels.append(_field(row, label_column, path, f"record {n}"))
    if not texts:
        raise DataError(f"{path} holds no records")
    return texts, labels


def _field(record: dict, name: str, path, where: str) -> str:
    from edgernn.errors import DataError

    value = record.get(name)
    if value is None:
        raise DataError(f"{path}: {where} has no {name!r} (--text-column, --label-column)")
    return str(value)
