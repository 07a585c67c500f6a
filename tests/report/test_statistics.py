"""Statistics and configuration grouping on known numbers (no MLflow needed)."""

from __future__ import annotations

import math

import pytest

from eegphase.report.collect import runs_frame
from eegphase.report.compare import comparison_table, paired_difference, spread
from eegphase.report.write import markdown_table
from eegphase.tracking.queries import PipelineRun

T_975_DF2 = 4.302653  # Student t, 97.5% quantile, 2 degrees of freedom (from a t table)
METRICS = ("test_score",)


def test_spread_is_mean_and_sample_std_of_finite_values():
    result = spread([1.0, 2.0, 4.0, math.nan])
    mean = 7 / 3
    std = math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 2)
    assert result.n == 3
    assert result.mean == pytest.approx(mean)
    assert result.std == pytest.approx(std)
    single = spread([1.5])
    assert (single.n, single.mean) == (1, 1.5) and math.isnan(single.std)


def test_paired_difference_pairs_by_seed_with_a_t_interval():
    config = {0: 1.0, 1: 1.5, 2: 0.8}
    baseline = {0: 0.9, 1: 1.2, 2: 1.0, 3: 5.0}  # seed 3 has no partner and must be left out
    diffs = [0.1, 0.3, -0.2]
    mean = sum(diffs) / 3
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    half = T_975_DF2 * std / math.sqrt(3)
    result = paired_difference(config, baseline)
    assert result.n == 3
    assert result.mean == pytest.approx(mean)
    assert result.std == pytest.approx(std)
    assert result.ci_low == pytest.approx(mean - half, abs=1e-6)
    assert result.ci_high == pytest.approx(mean + half, abs=1e-6)


def test_paired_difference_with_one_seed_has_no_interval():
    result = paired_difference({4: 1.25}, {4: 1.0, 5: 2.0})
    assert (result.n, result.mean) == (1, pytest.approx(0.25))
    assert math.isnan(result.std) and math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert paired_difference({1: 1.0}, {2: 1.0}).n == 0


def _run(run_id: str, pipeline: str, seed: int, model: str, score: float, start: int) -> PipelineRun:
    params = {
        "seed": str(seed),
        "phases.finetune.seed": str(seed),
        "tracking.uri": f"sqlite:///{run_id}.db",  # where a run was tracked is no configuration choice
        "model.name": model,
        "pipeline.name": pipeline,
    }
    return PipelineRun(run_id, f"{pipeline}-seed{seed}", pipeline, start, params, {"test_score": score})


def test_configs_differ_by_varying_params_and_pair_with_the_matching_baseline():
    runs = [
        _run("b-l0", "baseline", 0, "labram", 1.0, 1),
        _run("b-l1", "baseline", 1, "labram", 1.2, 2),
        _run("b-e0", "baseline", 0, "eegnex", 2.0, 3),
        _run("b-e1", "baseline", 1, "eegnex", 2.4, 4),
        _run("f-l0", "full", 0, "labram", 0.9, 5),
        _run("f-l1", "full", 1, "labram", 1.0, 6),
        _run("f-e0-old", "full", 0, "eegnex", 9.0, 7),
        _run("f-e0", "full", 0, "eegnex", 1.5, 8),  # newer than f-e0-old: it wins
    ]
    frame = runs_frame(runs, METRICS)
    assert set(frame["config"]) == {
        "baseline [model.name=labram]",
        "baseline [model.name=eegnex]",
        "full [model.name=labram]",
        "full [model.name=eegnex]",
    }
    assert "f-e0-old" not in set(frame["run_id"])
    table = comparison_table(frame, METRICS).set_index("config")
    assert list(table.index[:2]) == ["baseline [model.name=eegnex]", "baseline [model.name=labram]"]
    eegnex = table.loc["full [model.name=eegnex]"]
    assert eegnex["baseline_config"] == "baseline [model.name=eegnex]"
    assert eegnex["test_score_diff_n"] == 1
    assert eegnex["test_score_diff_mean"] == pytest.approx(1.5 - 2.0)
    labram = table.loc["full [model.name=labram]"]
    assert labram["test_score_diff_mean"] == pytest.approx(((0.9 - 1.0) + (1.0 - 1.2)) / 2)
    assert labram["test_score_mean"] == pytest.approx(0.95)
    assert math.isnan(table.loc["baseline [model.name=labram]", "test_score_diff_mean"])


def test_a_split_seed_that_follows_the_seed_is_a_replicate_not_a_configuration():
    """experiment=ablation logs split.seed=${seed}: its three seeds are one configuration with an interval."""
    runs = []
    for i, seed in enumerate((0, 1, 2)):
        for pipeline, score in (("baseline", 1.0 + seed / 10), ("full", 0.9 + seed / 10)):
            run = _run(f"{pipeline}{seed}", pipeline, seed, "labram", score, 2 * i + (pipeline == "full"))
            run.params["split.seed"] = str(seed)
            runs.append(run)
    table = comparison_table(runs_frame(runs, METRICS), METRICS).set_index("config")
    assert set(table.index) == {"baseline", "full"}
    assert table.loc["full", "test_score_diff_n"] == 3
    assert table.loc["full", "test_score_diff_mean"] == pytest.approx(-0.1)
    for run in runs:  # a split seed swept on its own (one training seed) stays a configuration
        run.params["split.seed"] = str(7 if run.run_id.endswith("2") else 3)
    assert "full [split.seed=7]" in set(runs_frame(runs, METRICS)["config"])


def test_markdown_says_na_for_a_single_seed():
    runs = [_run("b0", "baseline", 0, "labram", 1.0, 1), _run("f0", "full", 0, "labram", 0.75, 2)]
    text = markdown_table(comparison_table(runs_frame(runs, METRICS), METRICS), METRICS)
    full_line = next(line for line in text.splitlines() if line.startswith("| full"))
    assert "-0.2500 ± n/a CI n/a (n=1)" in full_line
    assert "0.7500 ± n/a" in full_line


def test_missing_seed_param_is_named():
    run = PipelineRun("abc", "odd", "full", 1, {"model.name": "labram"}, {})
    with pytest.raises(ValueError, match="abc.*'seed'"):
        runs_frame([run], METRICS)


def test_markdown_says_plainly_whether_the_interval_includes_zero():
    from eegphase.report.write import verdict_text

    mixed = [
        _run("b0", "baseline", 0, "labram", 1.0, 1),
        _run("b1", "baseline", 1, "labram", 1.0, 2),
        _run("f0", "full", 0, "labram", 0.9, 3),
        _run("f1", "full", 1, "labram", 1.05, 4),
    ]
    text = markdown_table(comparison_table(runs_frame(mixed, METRICS), METRICS), METRICS)
    assert "interval includes 0, no evidence of a difference" in text
    assert verdict_text(-0.3, -0.1, 3) == ": lower than baseline"
    assert verdict_text(0.1, 0.3, 3) == ": higher than baseline"
    assert verdict_text(float("nan"), float("nan"), 1) == ""


def test_markdown_names_how_many_test_subjects_each_config_rests_on():
    counted = PipelineRun("f0", "full-seed0", "full", 1, {"seed": "0"}, {"test_score": 1.0,
                          "test_subjects_c1": 14.0, "test_subjects_c2": 13.0})  # fmt: skip
    older = PipelineRun("b0", "baseline-seed0", "baseline", 2, {"seed": "0"}, {"test_score": 1.1})
    text = markdown_table(comparison_table(runs_frame([counted, older], METRICS), METRICS), METRICS)
    assert text.splitlines()[0].startswith("| Config | Seeds | Test subjects |")
    assert "| full | 0 | c1 14, c2 13 |" in text
    assert "| baseline | 0 | n/a |" in text
