"""Check the MLflow UI in a real headless browser: the runs list shows the pipeline runs with their test score.

    python scripts/check_mlflow_ui.py [--workdir DIR] [--chromium PATH]

Builds a small real store (pipeline runs and their fine-tuning runs logged through eegphase's Tracker with the
tags ``python -m eegphase.run`` gives them and made-up test scores; nothing is trained), serves it with
``python -m eegphase.tracking.server ui`` on 127.0.0.1 and a free port, opens the link eegphase prints for an
experiment (its pipelines view) in ``chromium --headless --dump-dom``, and reads the runs table out of the
rendered page: every pipeline run, best test score first, with its scores; no phase run. Exit status 0 when
the table is right, 1 when not, 2 when no chromium was found (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from eegphase.tracking.mlflow_tracker import TAG_PHASE, TAG_PIPELINE, TAG_REUSED, Tracker, ui_link

INSTALL_HINT = "install it with `apt-get install chromium` (Debian/Ubuntu), or name it with --chromium"
SCORE = "metrics.`test_score`"
COLUMNS = {"name": "attributes.`Run Name`", "pipeline": f"tags.`{TAG_PIPELINE}`", "score": SCORE}


@dataclass(frozen=True)
class PipelineRow:
    name: str
    pipeline: str
    score: float  # test_score; test_nrmse_c1 and _c2 are logged 0.01 above and below it


# Made-up scores with short decimal forms (the UI prints a metric as Python's repr would), logged in an order
# that is neither the best-first order nor its reverse.
PIPELINES = (
    PipelineRow("full-seed0", "full", 0.9934),
    PipelineRow("baseline-seed0", "baseline", 0.9712),
    PipelineRow("trivial-seed0", "trivial", 1.0262),
    PipelineRow("baseline-seed1", "baseline", 0.9655),
)


def find_chromium(explicit: str | None = None) -> str | None:
    """``explicit``, else $EEGPHASE_CHROMIUM, else the first of chromium / chromium-browser / google-chrome."""
    for candidate in (
        explicit,
        os.environ.get("EEGPHASE_CHROMIUM"),
        "chromium",
        "chromium-browser",
        "google-chrome",
    ):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def build_store(folder: Path) -> tuple[str, str]:
    """A SQLite store in ``folder`` holding :data:`PIPELINES`, each with a fine-tuning run that also has the
    scores (the pipelines view must list the pipeline runs only); returns (tracking URI, experiment id)."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracker = Tracker(uri, "eegphase", artifact_location=(folder / "mlartifacts").as_uri())
    for row in PIPELINES:
        scores = {
            "test_score": row.score,
            "test_nrmse_c1": row.score + 0.01,
            "test_nrmse_c2": row.score - 0.01,
        }
        tags = {TAG_PHASE: "pipeline", TAG_PIPELINE: row.pipeline}
        with tracker.run(row.name, tags) as parent:
            tracker.log_params(
                parent, {"seed": row.name.rsplit("seed", 1)[1], "pipeline": {"name": row.pipeline}}
            )
            phase_tags = {TAG_PHASE: "finetune", TAG_PIPELINE: row.pipeline, TAG_REUSED: "false"}
            with tracker.run("finetune", phase_tags, parent) as child:
                tracker.log_metrics(child, scores)
            tracker.log_metrics(parent, scores)
    return uri, tracker.experiment_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def ui_server(uri: str, artifacts: Path, port: int, log: Path, timeout: float = 180.0) -> Iterator[str]:
    """``python -m eegphase.tracking.server ui`` on 127.0.0.1:``port`` until the block ends; yields its URL."""
    command = [sys.executable, "-m", "eegphase.tracking.server", "ui", "--backend-store-uri", uri,
               "--default-artifact-root", artifacts.as_uri(), "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        # its own process group: the server's worker processes are stopped with it
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the UI server exited ({server.returncode}):\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the UI server did not answer on {url} in {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def rendered_page(chromium: str, url: str, profile: Path, budget_ms: int = 30000) -> str:
    """The DOM of ``url`` after its scripts ran: headless chromium with virtual time, so that the React app's
    requests and renders finish before the DOM is dumped (a fresh profile: no saved view of an earlier visit)."""
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", "--window-size=1800,1000", f"--virtual-time-budget={budget_ms}",
               "--dump-dom", url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or "<html" not in done.stdout:
        raise RuntimeError(f"{chromium} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


class RunsTable(HTMLParser):
    """The rows of the UI's runs table (ag-grid): run id -> {column id: text}, in display order."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.order: dict[str, int] = {}
        self._depth = 0  # open <div>s: rows and cells are divs, which always close
        self._row: tuple[str, int] | None = None
        self._cell: tuple[str, int] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "div":
            return
        self._depth += 1
        found = dict(attrs)
        if found.get("role") == "row" and found.get("row-id"):
            self._row = (found["row-id"], self._depth)
            self.rows.setdefault(found["row-id"], {})  # a row comes twice: pinned columns, then the rest
            self.order[found["row-id"]] = int(found.get("row-index") or 0)
        elif self._row is not None and found.get("role") == "gridcell" and found.get("col-id"):
            self._cell = (found["col-id"], self._depth)
            self.rows[self._row[0]][found["col-id"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag != "div":
            return
        if self._cell is not None and self._cell[1] == self._depth:
            self._cell = None
        if self._row is not None and self._row[1] == self._depth:
            self._row = None
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell is not None:
            self.rows[self._row[0]][self._cell[0]] += data

    def in_order(self) -> list[dict[str, str]]:
        return [self.rows[run] for run in sorted(self.rows, key=self.order.get)]


def table_rows(dom: str) -> list[dict[str, str]]:
    parser = RunsTable()
    parser.feed(dom)
    return parser.in_order()


def run_name(row: dict[str, str]) -> str:
    """The run name a row shows (its cell also holds the hidden value of the run's colour swatch)."""
    return re.sub(r"^#[0-9a-fA-F]{6}", "", row.get(COLUMNS["name"], "").strip())


def problems(rows: list[dict[str, str]]) -> list[str]:
    """What is wrong with the runs table (empty when it lists :data:`PIPELINES` best first, with scores)."""
    expected = sorted(PIPELINES, key=lambda row: row.score)
    names = [run_name(row) for row in rows]
    found = []
    if names != [row.name for row in expected]:
        found.append(
            f"runs listed {names}, expected the pipeline runs best first: {[r.name for r in expected]}"
        )
    for shown, want in zip(rows, expected, strict=False):
        for metric, value in (("test_score", want.score), ("test_nrmse_c1", want.score + 0.01)):
            text = shown.get(f"metrics.`{metric}`", "").strip()
            try:
                ok = math.isclose(float(text), value, abs_tol=1e-9)
            except ValueError:
                ok = False
            if not ok:
                found.append(f"{want.name}: {metric} shows {text!r}, expected {value}")
        if shown.get(COLUMNS["pipeline"], "").strip() != want.pipeline:
            found.append(f"{want.name}: pipeline shows {shown.get(COLUMNS['pipeline'])!r}")
    return found


def check_ui(workdir: Path, chromium: str) -> tuple[list[dict[str, str]], list[str], str]:
    """Build the store, serve it, render the pipelines view: (table rows, problems, the URL opened)."""
    uri, experiment_id = build_store(workdir)
    with ui_server(uri, workdir / "mlartifacts", free_port(), workdir / "server.log") as base:
        url = ui_link(base, experiment_id)
        dom = rendered_page(chromium, url, workdir / "chromium-profile")
    (workdir / "page.html").write_text(dom)
    rows = table_rows(dom)
    return rows, problems(rows), url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the store and page here (default: a temp dir)"
    )
    parser.add_argument("--chromium", default=None, help="the browser to run (default: chromium on PATH)")
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print(f"no chromium found: {INSTALL_HINT}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlflow-ui-")))
        workdir.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        rows, found, url = check_ui(workdir, chromium)
        print(f"opened {url} in {chromium} ({time.monotonic() - start:.0f} s in all)")
        for row in rows:
            cells = {"pipeline": row.get(COLUMNS["pipeline"], ""), "test_score": row.get(SCORE, "")}
            print(f"  {run_name(row)}: " + ", ".join(f"{k} {v.strip()}" for k, v in cells.items()))
        for problem in found:
            print(f"PROBLEM: {problem}", file=sys.stderr)
        print(
            "the runs list shows the pipeline runs with their test score" if not found else "UI check failed"
        )
        return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
