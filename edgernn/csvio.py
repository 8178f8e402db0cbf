"""Comma-separated text, read one way everywhere: training files, `edgernn run`'s frames and the
device apps' line streams all parse a line with :func:`fields` (the standard ``csv`` rules, so
a quoted field may hold a comma, and a byte-order mark is not part of the first name).

Imports the standard library and numpy only: the device side reads CSV too.
"""

from __future__ import annotations

import csv

import numpy as np

from edgernn.limits import MAX_FIELD

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


def records(text: str) -> list[str]:
    """Lines of a JSONL or TSV file: split on newlines (\\n, \\r\\n) only. ``str.splitlines``
    also splits on U+2028, U+0085 and other separators that valid JSON strings and texts may
    hold raw."""
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


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
    fit, naming the row and what to do: duplicate columns, an empty label, a field over
    MAX_FIELD characters, an unclosed quote. Labels lose surrounding whitespace (``pos `` is
    ``pos``), with a warning that says how many did."""
    import json
    from pathlib import Path

    from edgernn.errors import ConfigError, DataError

    if text_column == label_column:
        raise ConfigError(f"--text-column and --label-column both name {text_column!r}: a "
                          f"classifier that reads its own label learns nothing; name the "
                          f"column that holds the texts and the one that holds the labels")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise DataError(f"{path}: text data is .csv, .tsv or .jsonl, not {suffix or 'no suffix'}")
    text = read_text(path, "")
    texts, labels = [], []
    if suffix == ".jsonl":
        for n, line in enumerate(records(text), start=1):
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

        csv.field_size_limit(MAX_FIELD)
        tab = suffix == ".tsv"
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tab else ",")
        try:
            header = next(reader, None) or []
            columns = _columns(header, (text_column, label_column), path)
            for n, row in enumerate(reader, start=1):
                if not row:
                    continue
                where = f"record {n} (ending on line {reader.line_num})"
                got = [row[columns[c]] if columns[c] < len(row) else None
                       for c in (text_column, label_column)]
                if got[1] is None and got[0] is not None and ("\n" in got[0] or "\t" in got[0]):
                    raise DataError(f"{path}: {where} opens a quote (\") that does not close "
                                    f"where its field ends, so the lines after it were read as "
                                    f"part of its text; write the quote twice (\"\") or "
                                    f"remove it")
                texts.append(_field(dict(zip((text_column, label_column), got)), text_column,
                                    path, where))
                labels.append(_field(dict(zip((text_column, label_column), got)), label_column,
                                     path, where))
        except csv.Error as exc:
            raise DataError(f"{path}: line {reader.line_num} cannot be read ({exc}); a field "
                            f"holds at most {MAX_FIELD:,} characters") from None
    if not texts:
        raise DataError(f"{path} holds no records")
    return texts, _labels(labels, path)


def _columns(header: list[str], wanted: tuple, path) -> dict:
    """Where each wanted column is in ``header``; DataError for one missing or named twice."""
    from edgernn.errors import DataError

    names = [h.strip() for h in header]
    for name in set(names):
        at = [i + 1 for i, h in enumerate(names) if h == name]
        if len(at) > 1:
            raise DataError(f"{path} has {len(at)} columns named {name!r} (columns "
                            f"{', '.join(map(str, at))}); rename all but one, so that it is "
                            f"clear which one to read")
    missing = [c for c in wanted if c not in names]
    if missing:
        raise DataError(f"{path} has no column {missing[0]!r}; its columns are "
                        f"{', '.join(names) or 'none'} (--text-column, --label-column)")
    return {c: names.index(c) for c in wanted}


def _labels(labels: list[str], path) -> list[str]:
    """Labels without surrounding whitespace (said once); DataError for an empty one."""
    import warnings

    from edgernn.errors import DataError, DataWarning

    out = [label.strip() for label in labels]
    for n, (label, raw) in enumerate(zip(out, labels), start=1):
        if not label:
            raise DataError(f"{path}: record {n} has an empty label ({raw!r}); give every "
                            f"record its class, or remove the records that have none")
    changed = [(b, a) for a, b in zip(out, labels) if a != b]
    if changed:
        raw, clean = changed[0]
        warnings.warn(f"{path}: {len(changed)} label(s) had spaces around them, as {raw!r}; they "
                      f"were stripped ({raw!r} is read as {clean!r})", DataWarning, stacklevel=3)
    return out


def _field(record: dict, name: str, path, where: str) -> str:
    from edgernn.errors import DataError

    value = record.get(name)
    if value is None:
        raise DataError(f"{path}: {where} has no {name!r} (--text-column, --label-column)")
    return str(value)
