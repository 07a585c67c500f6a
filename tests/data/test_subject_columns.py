"""A user's subject table: headers in any case reach the known names, every other column reaches the windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eegphase.data.readers.subjects import canonical_column, find_column, shape_subject_table
from eegphase.data.recording import SubjectTableError
from eegphase.data.windows import class_codes


def _table(**columns) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


def test_headers_map_to_known_names_ignoring_case():
    raw = _table(
        SUBJECT=["P1", "P2"], Age=["31", "44"], Gender=["male", "F"], Score=["1.5", "2"], Site=["a", "b"]
    )
    table = shape_subject_table(raw, Path("subjects.csv"), id_column="subject")
    assert table["subject"].tolist() == ["P1", "P2"]
    assert table["age"].tolist() == [31.0, 44.0]
    assert table["sex"].tolist() == ["M", "F"]
    assert table["Score"].tolist() == [1.5, 2.0]  # other columns keep their header; numbers become floats
    assert table["Site"].tolist() == ["a", "b"]
    assert "Age" not in table and "Gender" not in table
    sex = shape_subject_table(_table(subject=["P1"], SEX=["f"]), Path("s.csv"), id_column="subject")
    assert sex["sex"].tolist() == ["F"]


def test_a_missing_id_column_names_the_columns_there_are():
    with pytest.raises(SubjectTableError, match=r"'participant'.*columns: \['id', 'Age'\]"):
        shape_subject_table(_table(id=["P1"], Age=["3"]), Path("s.csv"), id_column="participant")


def test_task_columns_are_found_as_the_table_names_them():
    assert canonical_column("Age") == "age" and canonical_column("Gender") == "sex"
    assert canonical_column("Group Label") == "Group Label"
    columns = ["subject", "age", "sex", "Score", "label"]
    assert find_column("AGE", columns) == "age"
    assert find_column("gender", columns) == "sex"
    assert find_column("score", columns) == "Score"
    assert find_column("missing", columns) is None


def test_text_values_become_class_codes_in_name_order():
    codes, names = class_codes(pd.Series(["task", "rest", None, "rest "]))
    assert names == ["rest", "task"]
    assert codes.tolist()[:2] == [1.0, 0.0] and np.isnan(codes.iloc[2]) and codes.iloc[3] == 0.0
