"""``python -m eegphase.bench learning``: its summaries, and an end-to-end run on 6 real Mumtaz subjects."""

from __future__ import annotations

import json
import math
import shutil
import statistics

import pytest
from mlflow.tracking import MlflowClient
from scipy import stats

from eegphase.bench import learning
from eegphase.config import CONF_DIR

SUBJECTS = ("HS1", "HS2", "HS3", "MDDS1", "MDDS2", "MDDS5")


def t_interval(diffs: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(diffs)
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def test_summarise_pairs_seeds_and_takes_t_intervals():
    def row(window, recording, reference):
        return {"window": window, "recording": recording, "reference": reference, "trivial": 0.5,
                "test_subjects": 4.0}  # fmt: skip

    table = {
        "baseline": {0: row(0.70, 0.75, 0.80), 1: row(0.60, 0.50, 0.62), 2: row(0.65, 0.75, 0.71)},
        "no_contrastive": {0: row(0.72, 0.75, 0.80), 1: row(0.55, 0.50, 0.62), 2: row(0.70, 1.0, 0.71)},
    }
    out = learning.summarise(table)
    assert out["baseline.seed1.window"] == 0.60 and out["no_contrastive.seeds"] == 3
    assert out["baseline.mean.window"] == pytest.approx(0.65)
    mean, low, high = t_interval([0.02, -0.05, 0.05])
    assert out["no_contrastive_minus_baseline_window.mean"] == pytest.approx(mean)
    assert out["no_contrastive_minus_baseline_window.ci_low"] == pytest.approx(low)
    assert out["no_contrastive_minus_baseline_window.ci_high"] == pytest.approx(high)
    assert out["pretrained_minus_baseline_window.no_contrastive.mean"] == pytest.approx(mean)
    assert out["no_contrastive_minus_baseline_recording.mean"] == pytest.approx(0.25 / 3)
    mean, low, high = t_interval([-0.10, -0.02, -0.06])
    assert out["baseline_minus_reference_window.mean"] == pytest.approx(mean)
    assert out["baseline_minus_reference_window.ci_low"] == pytest.approx(low)
    assert out["baseline_minus_reference_window.n"] == 3


def test_full_runs_only_with_the_same_label_objective(tmp_path):
    runs, why = learning.pipelines(tmp_path)
    assert list(runs) == ["baseline", "no_contrastive"] and "same_label.yaml" in why
    (tmp_path / "contrastive").mkdir()
    (tmp_path / "contrastive" / "same_label.yaml").write_text("enabled: true\n")
    runs, why = learning.pipelines(tmp_path)
    assert runs["full"] == ["contrastive=same_label"] and why is None


@pytest.mark.slow
def test_bench_runs_end_to_end_and_agrees_with_mlflow(tmp_path, mumtaz_mdd):
    edf = tmp_path / "edf"
    edf.mkdir()
    for subject in SUBJECTS:
        for condition in ("EC", "EO"):
            shutil.copy(mumtaz_mdd / "edf" / f"{subject}{condition}.edf", edf)
    participants = tmp_path / "participants.csv"
    rows = [line for line in (mumtaz_mdd / "participants.csv").read_text().splitlines()[1:]
            if line.split(",")[0] in SUBJECTS]  # fmt: skip
    participants.write_text("subject,mdd\n" + "\n".join(rows) + "\n")
    work = tmp_path / "work"
    results = learning.main(
        [
            "--tiny",
            "--seeds",
            "0,1",
            "--workdir",
            str(work),
            "--out-dir",
            str(tmp_path),
            "data=folder",
            f"data.root={edf}",
            f"data.subjects_file={participants}",
            r"data.subject_pattern='(?P<subject>(H|MDD)S\d+)(EC|EO)'",
            r"data.label_pattern='(?P<label>EC|EO)\.edf$'",
            "tasks=recording_label",
            "split.fractions=[0.34,0.33,0.33]",
        ]  # fmt: skip
    )
    written = json.loads((tmp_path / "bench-learning.json").read_text())
    # the JSON holds every figure, an unmeasured one (NaN) as null
    unmeasured = {k for k, v in results.items() if isinstance(v, float) and not math.isfinite(v)}
    assert {k for k, v in written.items() if v is None} >= unmeasured
    assert {k: v for k, v in written.items() if k not in unmeasured} == pytest.approx(
        {k: v for k, v in results.items() if k in written and k not in unmeasured}
    )
    expected = ["baseline", "no_contrastive"]
    if (CONF_DIR / "contrastive" / "same_label.yaml").is_file():
        expected.append("full")
        assert written["full_skipped"] == ""
    else:
        assert "same_label.yaml" in written["full_skipped"]
    assert written["pipelines"] == ",".join(expected)
    assert written["missing_runs"] == "" and written["seeds"] == "0,1"
    assert "phases.finetune.freeze_epochs=0" in written["budget"] and written["wall_seconds"] > 0

    # every number against the pipeline runs in the bench's own MLflow store
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("eegphase").experiment_id
    runs = client.search_runs([experiment], "tags.`eegphase.phase` = 'pipeline'")
    logged = {(r.data.tags["eegphase.pipeline"], int(r.data.params["seed"])): r for r in runs}
    assert sorted(logged) == sorted((p, s) for p in expected for s in (0, 1))
    for (pipeline, seed), run in logged.items():
        assert run.info.status == "FINISHED"
        assert run.data.params["split.seed"] == str(seed) and run.data.params["seed_all_phases"] == "True"
        for name, metric in learning.METRICS.items():
            assert written[f"{pipeline}.seed{seed}.{name}"] == run.data.metrics[metric], (
                pipeline,
                seed,
                name,
            )
        assert written[f"{pipeline}.seed{seed}.test_subjects"] == 2
        assert 0.0 <= written[f"{pipeline}.seed{seed}.window"] <= 1.0
    # the two seeds hold out different subjects (the split moves with the seed)
    assert written["baseline.seed0.reference"] != written["baseline.seed1.reference"]

    def metric(pipeline, seed, name):
        return logged[(pipeline, seed)].data.metrics[learning.METRICS[name]]

    for pipeline in expected[1:]:
        for level in ("window", "recording"):
            diffs = [metric(pipeline, s, level) - metric("baseline", s, level) for s in (0, 1)]
            key = f"{pipeline}_minus_baseline_{level}"
            assert written[f"{key}.n"] == 2
            assert written[f"{key}.mean"] == pytest.approx(statistics.fmean(diffs))
            if diffs[0] != diffs[1]:
                _, low, high = t_interval(diffs)
                assert (written[f"{key}.ci_low"], written[f"{key}.ci_high"]) == pytest.approx((low, high))
        assert (
            written[f"pretrained_minus_baseline_window.{pipeline}.mean"]
            == written[f"{pipeline}_minus_baseline_window.mean"]
        )
    diffs = [metric("baseline", s, "window") - metric("baseline", s, "reference") for s in (0, 1)]
    assert written["baseline_minus_reference_window.mean"] == pytest.approx(statistics.fmean(diffs))
    assert written["baseline.mean.window"] == pytest.approx(
        statistics.fmean(metric("baseline", s, "window") for s in (0, 1))
    )
