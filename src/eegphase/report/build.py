"""Build a comparison report from MLflow: tables and figures on disk, the same files logged to a ``report`` run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from eegphase.report.collect import DEFAULT_METRICS, finetune_curves, load_runs
from eegphase.report.compare import comparison_table
from eegphase.report.plots import learning_curves, metric_bars
from eegphase.report.write import report_markdown
from eegphase.tracking.mlflow_tracker import TAG_PHASE, Tracker, ui_link

TAG_REPORT = "eegphase.report"


@dataclass
class ReportOptions:
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "eegphase"
    name: str | None = None  # default: the experiment name
    out: Path | None = None  # default: experiments/<name>
    baseline: str = "baseline"
    metrics: tuple[str, ...] = DEFAULT_METRICS
    log_to_mlflow: bool = True

    @property
    def report_name(self) -> str:
        return self.name or self.experiment

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out is not None else Path("experiments") / self.report_name


@dataclass
class Report:
    table: pd.DataFrame  # one row per configuration
    runs: pd.DataFrame  # one row per (configuration, seed)
    files: dict[str, Path] = field(default_factory=dict)  # {"markdown", "csv", "runs_csv", "bars", "curves"}
    report_run_id: str | None = None
    ui_link: str = ""  # the experiment's pipeline runs on the MLflow UI, best test score first


def build_report(options: ReportOptions) -> Report:
    """Read the runs, compute the comparison, write ``comparison.{md,csv}``, ``runs.csv`` and two PNGs."""
    runs = load_runs(options.tracking_uri, options.experiment, options.metrics)
    table = comparison_table(runs, options.metrics, options.baseline)
    curves = finetune_curves(options.tracking_uri, runs)
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "csv": out / "comparison.csv",
        "runs_csv": out / "runs.csv",
        "bars": out / "metrics.png",
        "curves": out / "finetune_val_loss.png",
        "markdown": out / "comparison.md",
    }
    table.to_csv(files["csv"], index=False)
    runs.to_csv(files["runs_csv"], index=False)
    for key, figure in (("bars", metric_bars(table, options.metrics)), ("curves", learning_curves(curves))):
        figure.savefig(files[key], dpi=120)
    source = f"MLflow experiment `{options.experiment}` at `{options.tracking_uri}`"
    markdown = report_markdown(
        f"Pipeline comparison: {options.report_name}",
        table,
        options.metrics,
        options.baseline,
        source,
        [files["bars"].name, files["curves"].name],
    )
    files["markdown"].write_text(markdown)
    report = Report(table=table, runs=runs, files=files)
    if options.log_to_mlflow:
        report.report_run_id = log_report_run(options, report)
    return report


def log_report_run(options: ReportOptions, report: Report) -> str:
    """A run tagged ``eegphase.phase=report`` in the same experiment, holding the report's files (the CSVs
    hold plain numbers, which the UI's artifact view shows as a table)."""
    tracker = Tracker(options.tracking_uri, options.experiment)
    report.ui_link = ui_link(options.tracking_uri, tracker.experiment_id)
    tags = {TAG_PHASE: "report", TAG_REPORT: options.report_name}
    with tracker.run(f"report-{options.report_name}", tags) as run_id:
        tracker.log_params(
            run_id,
            {
                "baseline": options.baseline,
                "metrics": ",".join(options.metrics),
                "n_configs": len(report.table),
                "n_runs": len(report.runs),
                "runs": ",".join(report.runs["run_id"]),
            },
        )
        for path in report.files.values():
            tracker.log_artifact(run_id, path)
    return run_id
