"""bench-<name>.json is strict JSON: figures that could not be measured are null, not a bare NaN."""

from __future__ import annotations

import json
import math

from eegphase.bench import write_results


def test_unmeasured_figures_are_null_and_the_file_is_strict_json(tmp_path):
    path = write_results(
        "x", {"ratio": 1.5, "missing": math.nan, "inf": math.inf, "n": 3, "name": "a", "nested": {}}, tmp_path
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text

    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    assert json.loads(text, parse_constant=refuse) == {
        "ratio": 1.5,
        "missing": None,
        "inf": None,
        "n": 3,
        "name": "a",
    }


def test_a_folder_that_does_not_exist_yet_is_created(tmp_path):
    path = write_results("train", {"ratio": 1.0}, tmp_path / "runs" / "today")
    assert path == tmp_path / "runs" / "today" / "bench-train.json"
    assert json.loads(path.read_text()) == {"ratio": 1.0}
