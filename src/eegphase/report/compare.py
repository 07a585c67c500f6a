"""Per-configuration statistics over seeds, and the seed-paired difference to the baseline.

Every statistic is a column of its own holding a plain number (n, mean, std, interval bounds), so that a
spreadsheet or ``pandas`` sorts by it; only ``write.py`` turns them into text for people.

Seeds are paired because a seed fixes the fine-tuning initialisation and data order in both pipelines, so
the per-seed difference removes that shared noise; its 95% interval is a Student t interval (n - 1 degrees
of freedom), undefined for a single pair.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from eegphase.report.collect import DEFAULT_METRICS, SUBJECTS_PREFIX, choice_columns


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (ddof=1) and the mean's t confidence interval over ``n`` finite values
    (std and interval NaN for one value)."""

    n: int
    mean: float
    std: float
    ci_low: float = math.nan
    ci_high: float = math.nan


@dataclass(frozen=True)
class PairedDifference:
    """Mean, std and t confidence interval of per-seed differences (config - baseline) over ``n`` seeds."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def spread(values, level: float = 0.95) -> Spread:
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return Spread(0, math.nan, math.nan)
    mean = float(finite.mean())
    if finite.size == 1:
        return Spread(1, mean, math.nan)
    std = float(finite.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, df=finite.size - 1)) * std / math.sqrt(finite.size)
    return Spread(int(finite.size), mean, std, mean - half, mean + half)


def paired_difference(
    config: Mapping[int, float], baseline: Mapping[int, float], level: float = 0.95
) -> PairedDifference:
    """Differences over the seeds both have (finite values only); the interval is NaN for n < 2."""
    seeds = sorted(s for s in config.keys() & baseline.keys() if math.isfinite(config[s] - baseline[s]))
    diffs = np.asarray([config[s] - baseline[s] for s in seeds], dtype=float)
    n = int(diffs.size)
    if n == 0:
        return PairedDifference(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(diffs.mean())
    if n == 1:
        return PairedDifference(1, mean, math.nan, math.nan, math.nan)
    std = float(diffs.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, df=n - 1)) * std / math.sqrt(n)
    return PairedDifference(n, mean, std, mean - half, mean + half)


def baseline_for(
    configs: pd.DataFrame, baseline_configs: pd.DataFrame, keys: list[str]
) -> dict[str, str | None]:
    """Each config's baseline config: the one agreeing on the parameters that vary among baseline configs
    (e.g. the same model); None when there is no such single baseline."""
    differing = [k for k in keys if baseline_configs[k].nunique(dropna=False) > 1]
    matches: dict[str, str | None] = {}
    for row in configs.to_dict("records"):
        mask = np.ones(len(baseline_configs), dtype=bool)
        for key in differing:
            mask &= (baseline_configs[key] == row[key]).to_numpy()
        found = baseline_configs.loc[mask, "config"].tolist()
        matches[row["config"]] = found[0] if len(found) == 1 else None
    return matches


def comparison_table(
    runs: pd.DataFrame,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    baseline: str = "baseline",
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per configuration (the baseline first): seeds, test subjects per task, then for every metric
    its n/mean/std/CI over seeds (``<metric>_{n,mean,std,ci_low,ci_high}``) and the paired difference to the
    baseline (``<metric>_diff_{n,mean,std,ci_low,ci_high}``)."""
    missing = [m for m in metrics if m not in runs.columns]
    if missing:
        raise KeyError(f"metric column(s) {missing} not in the runs table (columns: {list(runs.columns)})")
    keys = choice_columns(runs, metrics)
    configs = runs.drop_duplicates("config")[["config", "pipeline", *keys]].reset_index(drop=True)
    baseline_configs = configs[configs["pipeline"] == baseline]
    matches = baseline_for(configs, baseline_configs, keys) if len(baseline_configs) else {}
    per_seed = {
        config: {m: dict(zip(group["seed"], group[m], strict=True)) for m in metrics}
        for config, group in runs.groupby("config", sort=False)
    }
    rows = []
    for row in configs.to_dict("records"):
        config = row["config"]
        group = runs[runs["config"] == config]
        reference = matches.get(config)
        is_baseline = row["pipeline"] == baseline
        out = {
            **row,
            "is_baseline": is_baseline,
            "baseline_config": reference,
            "n_seeds": len(group),
            "seeds": " ".join(str(s) for s in sorted(group["seed"])),
            # the fewest test subjects any seed's score of the task rests on
            **{c: group[c].min() for c in runs.columns if c.startswith(SUBJECTS_PREFIX) and c not in metrics},
        }
        for metric in metrics:
            summary = spread(group[metric], level)
            out.update({f"{metric}_{field}": getattr(summary, field) for field in Spread.__annotations__})
            if is_baseline or reference is None:
                diff = PairedDifference(0, math.nan, math.nan, math.nan, math.nan)
            else:
                diff = paired_difference(per_seed[config][metric], per_seed[reference][metric], level)
            out.update(
                {f"{metric}_diff_{field}": getattr(diff, field) for field in PairedDifference.__annotations__}
            )
        rows.append(out)
    table = pd.DataFrame(rows)
    order = table["is_baseline"].map({True: 0, False: 1})
    return (
        table.assign(_order=order)
        .sort_values(["_order", "config"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )
