"""The comparison as text: a Markdown table for people, CSV files for programs."""

from __future__ import annotations

import math

import pandas as pd

from eegphase.report.collect import SUBJECTS_PREFIX

METRIC_TITLES = {"test_nrmse_c1": "C1 NRMSE", "test_nrmse_c2": "C2 NRMSE", "test_score": "Score"}


def metric_title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric)


def _number(value: float, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def mean_std_text(mean: float, std: float, n: int) -> str:
    """``1.2345 ± 0.0100``; with one seed the spread is ``n/a``."""
    if n == 0:
        return "n/a"
    return f"{_number(mean)} ± {_number(std)}"


def difference_text(row: pd.Series, metric: str) -> str:
    """``+0.0120 ± 0.0300 [-0.0500, +0.0700] (n=3)``; the baseline itself reads ``baseline``."""
    if row["is_baseline"]:
        return "baseline"
    n = int(row[f"{metric}_diff_n"])
    if n == 0:
        return "n/a (no paired baseline seed)"
    mean, std = row[f"{metric}_diff_mean"], row[f"{metric}_diff_std"]
    low, high = row[f"{metric}_diff_ci_low"], row[f"{metric}_diff_ci_high"]
    interval = "CI n/a" if n < 2 else f"[{_number(low, True)}, {_number(high, True)}]"
    return f"{_number(mean, True)} ± {_number(std)} {interval} (n={n}){verdict_text(low, high, n)}"


def verdict_text(low: float, high: float, n: int) -> str:
    """What the interval says, in words: a difference whose interval holds 0 is not evidence of anything."""
    if n < 2 or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    if low <= 0.0 <= high:
        return ": interval includes 0, no evidence of a difference"
    return ": lower than baseline" if high < 0 else ": higher than baseline"


def subjects_text(row: pd.Series) -> str:
    """``c1 14, c2 13``: the test subjects of each task (``n/a`` where none was logged)."""
    counts = [
        (str(key).removeprefix(SUBJECTS_PREFIX), value)
        for key, value in row.items()
        if str(key).startswith(SUBJECTS_PREFIX) and isinstance(value, float | int) and math.isfinite(value)
    ]
    return ", ".join(f"{task} {int(n)}" for task, n in sorted(counts)) or "n/a"


def markdown_table(table: pd.DataFrame, metrics: tuple[str, ...]) -> str:
    """A GitHub Markdown table: per config, mean ± std of each metric and the paired difference to baseline."""
    header = ["Config", "Seeds", "Test subjects"]
    header += [metric_title(m) for m in metrics]
    header += [f"Δ {metric_title(m)} vs baseline" for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [str(row["config"]), str(row["seeds"]), subjects_text(row)]
        cells += [mean_std_text(row[f"{m}_mean"], row[f"{m}_std"], int(row[f"{m}_n"])) for m in metrics]
        cells += [difference_text(row, m) for m in metrics]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def report_markdown(
    title: str, table: pd.DataFrame, metrics: tuple[str, ...], baseline: str, source: str, figures: list[str]
) -> str:
    """The whole report page: what was compared, the table, how to read it, and the figures."""
    parts = [
        f"# {title}",
        "",
        f"Source: {source}. Only FINISHED pipeline runs count; for a repeated (config, seed) the newest run is used.",
        "",
        markdown_table(table, metrics),
        f"Values: mean ± std over seeds (lower is better). Δ: per-seed difference config − `{baseline}` over the "
        "seeds both have, mean ± std, 95% paired t interval (n/a with one seed).",
    ]
    if not table["is_baseline"].any():
        parts += ["", f"**No FINISHED runs of the baseline pipeline `{baseline}`: no differences computed.**"]
    parts += [""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(parts) + "\n"
