"""Figures of a comparison: metric bars with seed error bars, and fine-tuning validation curves.

Plain ``Figure`` objects (no pyplot): no GUI backend, nothing to close, and a notebook displays them as is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from eegphase.report.write import metric_title


def metric_bars(table: pd.DataFrame, metrics: tuple[str, ...]) -> Figure:
    """One panel per metric, one bar per configuration: mean over seeds, error bar = std over seeds."""
    figure = Figure(figsize=(3.2 * len(metrics) + 1, 4.2))
    axes = figure.subplots(1, len(metrics), squeeze=False)
    positions = np.arange(len(table))
    colors = ["0.55" if base else f"C{i}" for i, base in enumerate(table["is_baseline"])]
    for ax, metric in zip(axes[0], metrics, strict=True):
        errors = table[f"{metric}_std"].fillna(0.0)
        ax.bar(positions, table[f"{metric}_mean"], yerr=errors, capsize=4, color=colors)
        ax.set_xticks(positions, table["config"], rotation=30, ha="right", fontsize=8)
        ax.set_title(metric_title(metric))
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle("mean ± std over seeds (lower is better)", fontsize=9)
    figure.tight_layout()
    return figure


def learning_curves(curves: pd.DataFrame) -> Figure:
    """Fine-tuning validation loss per epoch, one panel per task, one line (mean ± std over seeds) per config."""
    tasks = sorted(curves["task"].unique()) if len(curves) else []
    figure = Figure(figsize=(5 * max(len(tasks), 1), 4))
    axes = figure.subplots(1, max(len(tasks), 1), squeeze=False)
    if not tasks:
        axes[0][0].text(0.5, 0.5, "no fine-tuning curves logged", ha="center", va="center")
    for ax, task in zip(axes[0], tasks, strict=False):
        of_task = curves[curves["task"] == task]
        for config, group in of_task.groupby("config"):
            by_epoch = group.groupby("epoch")["val_loss"].agg(["mean", "std"]).fillna({"std": 0.0})
            ax.plot(by_epoch.index, by_epoch["mean"], marker="o", label=config)
            ax.fill_between(
                by_epoch.index,
                by_epoch["mean"] - by_epoch["std"],
                by_epoch["mean"] + by_epoch["std"],
                alpha=0.2,
            )
        ax.set_title(f"{task}: validation loss")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.tight_layout()
    return figure
