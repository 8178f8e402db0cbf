"""CSV is read one way everywhere (edgernn/csvio.py): quoted fields, BOMs and spaces."""

import numpy as np
import pytest

from edgernn import csvio
from edgernn.errors import DataError
from edgernn.tasks.forecast import read_csv


def test_fields_follow_the_csv_rules():
    assert csvio.fields('\ufeff"temp, inside", humidity ,"co2"\r\n') == [
        "temp, inside", "humidity", "co2"]
    assert csvio.fields("   \n") == []
    np.testing.assert_array_equal(csvio.numbers(' 1.5, "2", -3e2'), [1.5, 2.0, -300.0])
    with pytest.raises(ValueError):
        csvio.numbers("1,,2")
    assert csvio.is_header('"a, b",c') and not csvio.is_header("x,1")


def test_a_training_file_with_quoted_names_and_a_bom(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text('\ufeff"temp, inside",humidity\n1,2\n3,4\n', encoding="utf-8")
    series, names = read_csv(path)
    assert names == ["temp, inside", "humidity"]
    np.testing.assert_array_equal(series, [[1, 2], [3, 4]])
    path.write_text('a,b\n1,2\n3,x\n', encoding="utf-8")
    with pytest.raises(DataError, match="data row 2"):
        read_csv(path)


# ---------------------------------------------------------------- text records (issue 27)

from edgernn.csvio import read_records  # noqa: E402
from edgernn.limits import MAX_FIELD  # noqa: E402
from edgernn.errors import ConfigError, DataWarning  # noqa: E402


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_column_named_twice_is_refused(tmp_path):
    path = _write(tmp_path, "r.csv", "text,label,text\nhello,pos,other\n")
    with pytest.raises(DataError, match=r"2 columns named 'text' \(columns 1, 3\)"):
        read_records(path, "text", "label")


def test_the_same_column_as_text_and_label_is_a_usage_error(tmp_path):
    path = _write(tmp_path, "r.csv", "text,label\nhello,pos\n")
    with pytest.raises(ConfigError, match="both name 'label'"):
        read_records(path, "label", "label")


def test_an_empty_label_is_refused_with_its_record(tmp_path):
    for name, text in (("r.csv", "text,label\nhello,pos\nworld,\n"),
                       ("r.tsv", "text\tlabel\nhello\tpos\nworld\t  \n"),
                       ("r.jsonl", '{"text": "hello", "label": "pos"}\n'
                                   '{"text": "world", "label": ""}\n')):
        with pytest.raises(DataError, match="record 2 has an empty label"):
            read_records(_write(tmp_path, name, text), "text", "label")


def test_labels_lose_their_spaces_and_say_so(tmp_path):
    path = _write(tmp_path, "r.csv", "text,label\na,pos\nb,pos \nc, neg\n")
    with pytest.warns(DataWarning, match=r"2 label\(s\) had spaces around them"):
        _, labels = read_records(path, "text", "label")
    assert labels == ["pos", "pos", "neg"]


def test_a_large_field_is_read_up_to_the_documented_limit(tmp_path):
    big = "word " * 200_000                                    # 1 MB, over csv's own 128 KiB
    texts, _ = read_records(_write(tmp_path, "r.csv", f"text,label\n\"{big}\",pos\n"), "text",
                            "label")
    assert texts == [big]
    huge = "x" * (MAX_FIELD + 1)
    with pytest.raises(DataError, match=f"holds at most {MAX_FIELD:,} characters"):
        read_records(_write(tmp_path, "h.csv", f"text,label\n{huge},pos\n"), "text", "label")


def test_line_separators_inside_strings_are_text(tmp_path):
    """U+2028 and U+0085 are valid raw inside a JSON string and a TSV field: records split on
    \\n and \\r\\n only."""
    odd = "one\u2028two\u0085three\u2029four"
    path = _write(tmp_path, "r.jsonl", '{"text": "%s", "label": "pos"}\r\n'
                                       '{"text": "b", "label": "neg"}\n' % odd)
    assert read_records(path, "text", "label") == ([odd, "b"], ["pos", "neg"])
    path = _write(tmp_path, "r.tsv", f"text\tlabel\n{odd}\tpos\n")
    assert read_records(path, "text", "label") == ([odd], ["pos"])
    from edgernn.tasks.seq2seq import read_pairs

    pairs = _write(tmp_path, "p.tsv", "".join(f"{odd}{i}\tout{i}\n" for i in range(12)))
    got = read_pairs(pairs)
    assert got.sources[0] == f"{odd}0" and len(got) == 12


def test_an_unclosed_quote_is_named_not_blamed_on_the_label(tmp_path):
    path = _write(tmp_path, "r.tsv", 'text\tlabel\ngood\tpos\n"half a quote\tneg\nmore\tpos\n')
    with pytest.raises(DataError, match=r"record 2 .* opens a quote"):
        read_records(path, "text", "label")


def test_a_bom_is_not_part_of_the_first_line_anywhere(tmp_path, monkeypatch):
    import io

    from edgernn.cli import run as run_cli_module

    path = tmp_path / "in.txt"
    path.write_bytes("\ufeffseven hundred\nten\n".encode())
    seen = []
    run_cli_module._text_lines(None, str(path), lambda t: seen.append(t) or {})
    monkeypatch.setattr("sys.stdin", io.StringIO("\ufeffseven hundred\n"))
    run_cli_module._text_lines(None, "-", lambda t: seen.append(t) or {})
    assert seen == ["seven hundred", "ten", "seven hundred"]
    records = _write(tmp_path, "r.csv", "\ufefftext,label\na,pos\n")
    assert read_records(records, "text", "label") == (["a"], ["pos"])
