"""``python -m eegphase.report``: compare the pipelines of an MLflow experiment (tables, figures, a report run).

python -m eegphase.report --experiment eegphase --baseline baseline
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eegphase.report.build import ReportOptions, build_report
from eegphase.report.collect import DEFAULT_METRICS
from eegphase.report.write import markdown_table
from eegphase.tracking.mlflow_tracker import TrackingError


def parse_args(argv: list[str] | None = None) -> ReportOptions:
    parser = argparse.ArgumentParser(prog="python -m eegphase.report", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow tracking URI")
    parser.add_argument(
        "--experiment", default="eegphase", help="MLflow experiment holding the pipeline runs"
    )
    parser.add_argument("--name", default=None, help="report name (default: the experiment name)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: experiments/<name>)")
    parser.add_argument("--baseline", default="baseline", help="pipeline name the others are compared to")
    parser.add_argument(
        "--metrics", nargs="+", default=list(DEFAULT_METRICS), help="parent-run metrics to compare"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="write the files only, log no report run")
    args = parser.parse_args(argv)
    return ReportOptions(
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        name=args.name,
        out=args.out,
        baseline=args.baseline,
        metrics=tuple(args.metrics),
        log_to_mlflow=not args.no_mlflow,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        report = build_report(options)
    except (TrackingError, ValueError, KeyError) as exc:
        print(f"eegphase.report: {exc}", file=sys.stderr)
        return 2
    print(markdown_table(report.table, options.metrics))
    print(f"wrote {', '.join(str(p) for p in report.files.values())}")
    if report.report_run_id:
        print(f"MLflow report run {report.report_run_id}")
        print(f"the pipeline runs in the MLflow UI, best test score first: {report.ui_link}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
