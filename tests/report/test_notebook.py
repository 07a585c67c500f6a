"""The comparison notebook runs top to bottom against a real store and shows the report's table."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

from eegphase.report.build import ReportOptions, build_report

from .conftest import Store

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "compare_pipelines.ipynb"


def test_notebook_executes_and_draws_the_same_table(pipeline_store: Store, tmp_path: Path, monkeypatch):
    table_csv = tmp_path / "notebook_table.csv"
    monkeypatch.setenv("EEGPHASE_TRACKING_URI", pipeline_store.uri)
    monkeypatch.setenv("EEGPHASE_EXPERIMENT", pipeline_store.experiment)
    monkeypatch.setenv("EEGPHASE_NOTEBOOK_CSV", str(table_csv))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # "python3" is the kernel of this interpreter (jupyter_client runs a spec's "python" as sys.executable).
    NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": tmp_path}}
    ).execute()

    options = ReportOptions(
        pipeline_store.uri, pipeline_store.experiment, out=tmp_path / "report", log_to_mlflow=False
    )
    expected = build_report(options).table
    pd.testing.assert_frame_equal(pd.read_csv(table_csv), pd.read_csv(options.out_dir / "comparison.csv"))

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    markdown = "".join(out.get("data", {}).get("text/markdown", "") for out in outputs)
    full_score = expected.set_index("config").loc["full", "test_score_mean"]
    assert "| full | 0 1 2 | " in markdown and f"{full_score:.4f}" in markdown
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 2
