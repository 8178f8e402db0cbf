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
