"""``python -m eegphase.tracking.server ui|server [mlflow options]``: MLflow's UI and tracking server.

MLflow 3.17's server code names ``sqlalchemy.Engine`` and ``sqlalchemy.ColumnElement`` (SQLAlchemy 2 spellings)
when it starts; this project pins SQLAlchemy 1.4 for Optuna 2.10 (see docs/scale-out.md), where those classes
live one module down. This entry point adds the two aliases, then hands over to MLflow's own CLI unchanged.
"""

from __future__ import annotations

import os
import sys


def _alias_sqlalchemy_2_names() -> None:
    import sqlalchemy
    import sqlalchemy.engine
    import sqlalchemy.sql.expression

    if not hasattr(sqlalchemy, "Engine"):
        sqlalchemy.Engine = sqlalchemy.engine.Engine
    if not hasattr(sqlalchemy, "ColumnElement"):
        sqlalchemy.ColumnElement = sqlalchemy.sql.expression.ColumnElement


def main(argv: list[str] | None = None) -> int:
    _alias_sqlalchemy_2_names()
    # MLflow's background job workers are separate processes that would not get the aliases; they serve
    # features this project does not use.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    from mlflow.cli import cli

    return cli.main(
        args=list(sys.argv[1:] if argv is None else argv), prog_name="mlflow", standalone_mode=True
    )


if __name__ == "__main__":
    sys.exit(main())
