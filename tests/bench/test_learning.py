"""``python -m eegphase.bench learning``: the labelled subset fine-tuning reads, the bench's choices and summaries
(quick, no training), and end-to-end runs on 6 real Mumtaz subjects (slow)."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from scipy import stats

from eegphase.bench import learning
from eegphase.data.datasets import WindowDataset, subject_splits
from eegphase.data.splits import SplitConfig, labelled_subjects
from eegphase.phases import finetune
from eegphase.phases.common import PhaseContext
from eegphase.pipeline.fingerprint import phase_fingerprint
from eegphase.pipeline.plan import check_run_config

SUBJECTS = ("HS1", "HS2", "HS3", "MDDS1", "MDDS2", "MDDS5")
FOLDER = ["data=folder", "data.root=unused", "data.subjects_file=unused.csv"]
LABELS = [r"data.label_pattern='(?P<label>EC|EO)\.edf$'"]


def t_interval(diffs: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(diffs)
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def _subject_windows(n_per_class: int = 6, windows_per_subject: int = 3) -> pd.DataFrame:
    """A windows table whose label is per subject: subjects a0.. of class 0, b0.. of class 1."""
    rows = [
        {"subject": f"{name}{i}", "key": f"{name}{i}-rec", "start": 0, "stop": 10, "label": float(cls)}
        for cls, name in enumerate("ab")
        for i in range(n_per_class)
        for _ in range(windows_per_subject)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labelled_subjects_are_nested_and_class_balanced_where_the_label_is_per_subject(seed):
    windows = _subject_windows()
    drawn = [labelled_subjects(windows, "label", k, seed, classes=True) for k in range(1, 13)]
    for k, chosen in enumerate(drawn, start=1):
        assert len(chosen) == len(set(chosen)) == k
        assert chosen == drawn[-1][:k]  # nested: the 2 are among the 4
        per_class = [sum(s.startswith(c) for s in chosen) for c in "ab"]
        assert abs(per_class[0] - per_class[1]) <= 1, (k, chosen)
    assert labelled_subjects(windows, "label", None, seed, classes=True) == sorted(
        windows["subject"].unique()
    )
    with pytest.raises(ValueError, match="labelled_subjects=13.*12 subject"):
        labelled_subjects(windows, "label", 13, seed, classes=True)


def test_labelled_subjects_move_with_the_seed_and_need_no_classes():
    windows = _subject_windows()
    orders = {tuple(labelled_subjects(windows, "label", 12, seed, classes=True)) for seed in range(6)}
    assert len(orders) == 6
    # a label per recording (both classes in every subject) or a regression target: the drawn order, nested
    per_recording = windows.assign(label=np.arange(len(windows)) % 2)
    four = labelled_subjects(per_recording, "label", 4, 3, classes=True)
    assert four[:2] == labelled_subjects(per_recording, "label", 2, 3, classes=True)
    assert labelled_subjects(windows, "label", 4, 3, classes=False) == four


def _compose(*overrides: str):
    return learning.compose(list(overrides))


def _ctx(tmp_path: Path, *overrides: str) -> PhaseContext:
    cfg = _compose("+pipeline=baseline", *FOLDER, *LABELS, "tasks=subject_column", "tasks.column=label",
                   "tasks.kind=classification", "model=labram_tiny", *overrides)  # fmt: skip
    check_run_config(cfg)
    return PhaseContext(cfg=cfg, name="finetune", seed=int(cfg.seed), work_dir=tmp_path, init_from=None,
                        device=torch.device("cpu"))  # fmt: skip


def _fake_data(monkeypatch, tmp_path: Path) -> None:
    """finetune.build_task's data: a train split of 12 subjects (per-subject classes), val and test of 2."""
    tables = {"train": _subject_windows(), "val": _subject_windows(1), "test": _subject_windows(1)}
    tables["val"]["subject"] += "-val"
    tables["val"]["key"] += "-val"
    tables["test"]["subject"] += "-test"
    tables["test"]["key"] += "-test"
    keys = pd.concat(tables.values())[
        "key"
    ].unique()  # the manifest a dataset reads shapes from; no EEG is read
    pd.DataFrame({"key": keys, "n_times": 10, "n_channels": 19}).to_parquet(tmp_path / "recordings.parquet")
    pd.DataFrame({"subject": []}).to_parquet(tmp_path / "subjects.parquet")

    def dataset(ctx, mode, split, targets, crop_s):
        data = WindowDataset(tmp_path, tables[split], targets)
        ctx.log_dataset(data, mode, split)
        return data

    monkeypatch.setattr(finetune, "dataset", dataset)
    monkeypatch.setattr(finetune, "load_windows", lambda cache, mode: tables["train"])


@pytest.mark.parametrize("count", [2, 5, None])
def test_only_the_labelled_subjects_reach_fine_tuning(monkeypatch, tmp_path, count):
    _fake_data(monkeypatch, tmp_path)
    ctx = _ctx(tmp_path, f"phases.finetune.labelled_subjects={'null' if count is None else count}")
    logged = []
    ctx.log_dataset = lambda data, mode, split: logged.append((split, sorted(set(data.windows["subject"]))))
    task = ctx.phase_cfg.tasks.subject_column
    setup = finetune.build_task(ctx, "subject_column", task)
    train = setup.splits["train"].windows
    expected = labelled_subjects(_subject_windows(), "label", count, ctx.seed, classes=True)
    assert sorted(set(train["subject"])) == sorted(expected)
    assert len(setup.y_train) == len(train) == 3 * len(expected)  # the trivial predictor and class weights
    assert setup.metrics["label_labelled_subjects"] == len(expected)
    assert set(setup.splits["val"].windows["subject"]) == {"a0-val", "b0-val"}  # val and test stay whole
    assert len(setup.splits["test"].windows) == 6
    assert dict(logged)["train"] == sorted(expected)  # the training table logged is the one that trains
    written = setup.directory / finetune.LABELLED_FILE
    assert (json.loads(written.read_text()) == expected) if count is not None else not written.exists()


def test_too_many_labelled_subjects_or_none_stop_by_name(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="labelled_subjects=0"):
        _ctx(tmp_path, "phases.finetune.labelled_subjects=0")
    _fake_data(monkeypatch, tmp_path)
    ctx = _ctx(tmp_path, "phases.finetune.labelled_subjects=13")
    with pytest.raises(ValueError, match="labelled_subjects=13"):
        finetune.build_task(ctx, "subject_column", ctx.phase_cfg.tasks.subject_column)


def test_the_labelled_count_and_the_probe_enter_the_finetune_fingerprint_only():
    def fingerprints(*overrides: str) -> dict[str, str]:
        cfg = _compose("+pipeline=full", *overrides)
        return {phase: phase_fingerprint(cfg, phase, 0, None, "data") for phase in ("pretrain", "contrastive",
                                                                                     "finetune")}  # fmt: skip

    base = fingerprints()
    for overrides in (["phases.finetune.labelled_subjects=2"], learning.PROBE):
        other = fingerprints(*overrides)
        assert other["finetune"] != base["finetune"]
        assert {p: other[p] for p in ("pretrain", "contrastive")} == {
            p: base[p] for p in ("pretrain", "contrastive")
        }


@pytest.mark.parametrize(
    ("overrides", "labelled", "expected"),
    [
        ((*LABELS, "tasks=subject_column", "tasks.column=mdd", "tasks.kind=classification"), [2, None],
         ["contrastive=same_label"]),
        # the task's target is the label same-label pairs read: with K < all they would leak it
        ((*LABELS, "tasks=recording_label"), [2, None], ["contrastive=same_recording"]),
        ((*LABELS, "tasks=recording_label"), [None], ["contrastive=same_label"]),
        (("tasks=subject_column", "tasks.column=age"), [2], ["contrastive=same_recording"]),
        ((*LABELS, "tasks=recording_label", "contrastive=none"), [2], ["contrastive=none"]),  # the user's wins
    ],
)  # fmt: skip
def test_the_full_arm_pairs_what_the_data_supports(overrides, labelled, expected):
    cfg = _compose("+pipeline=full", *FOLDER, *overrides)
    own = [o for o in overrides if o.startswith("contrastive")]
    chosen, why = learning.full_contrastive(cfg, own, learning.task_of(cfg), labelled)
    assert chosen == expected and why


def test_movie_data_keeps_its_movie_pairs_and_several_tasks_need_a_choice():
    cfg = _compose("+pipeline=full")  # hbn: movie windows, tasks challenge1 and challenge2
    with pytest.raises(ValueError, match="--task"):
        learning.task_of(cfg)
    task = learning.task_of(cfg, "challenge2")
    assert (task.short, task.kind, task.metrics()["window"]) == ("c2", "regression", "test_nrmse_c2")
    assert learning.full_contrastive(cfg, [], task, [2])[0] == []


def test_parse_labelled():
    assert learning.parse_labelled("2, 4,all") == [2, 4, None]
    for bad in ("0", "2,2", "", "two"):
        with pytest.raises(ValueError):
            learning.parse_labelled(bad)


def _collected(task: learning.Task, table: dict, gate: dict, labelled: int = 2) -> learning.Collected:
    """Runs of every arm at K = ``labelled`` and all, seeds 0-2: ``table[arm][seed]`` the window score."""
    values = {}
    for arm, by_seed in table.items():
        for seed, score in by_seed.items():
            for k, n in ((str(labelled), labelled), ("all", 12)):
                row = {level: score for level in task.levels}
                values[(arm, k, seed)] = {**row, "reference": 0.9, "trivial": 1.0, "test_subjects": 4.0,
                                          "labelled_subjects": float(n)}  # fmt: skip
    pretrain = {seed: {f"pre{seed}"} for seed in gate}
    return learning.Collected(values, pretrain, {}, gate)


def test_gains_are_signed_so_that_positive_means_pretraining_helped_and_the_gate_is_reported(tmp_path):
    regression = learning.Task("challenge2", "c2", "regression", "externalizing")
    table = {  # NRMSE: lower is better
        "baseline": {0: 1.00, 1: 0.95, 2: 0.90},
        "no_contrastive": {0: 0.90, 1: 0.90, 2: 0.80},
        "full": {0: 1.10, 1: 1.00, 2: 0.95},
        "probe_pretrained": {0: 0.95, 1: 0.97, 2: 0.96},
        "probe_random": {0: 1.00, 1: 1.00, 2: 1.02},
        "probe_full": {0: 1.02, 1: 1.00, 2: 1.00},
    }
    entropy = 5.0
    gate = {0: {"val/mem": 4.0, "val/mem_code_entropy": entropy},  # 20% below: passes
            1: {"val/mem": 4.8, "val/mem_code_entropy": entropy},  # 4% below: fails
            2: {"val/mem": 4.4, "val/mem_code_entropy": entropy}}  # 12% below: passes  # fmt: skip
    out, errors = learning.summarise(_collected(regression, table, gate), regression, [2, None], [0, 1, 2],
                                     list(learning.ARMS))  # fmt: skip
    assert errors == []
    for k in ("2", "all"):
        mean, low, high = t_interval([0.10, 0.05, 0.10])
        assert out[f"labelled_{k}.no_contrastive_gain_over_baseline.mean"] == pytest.approx(mean)
        assert out[f"labelled_{k}.no_contrastive_gain_over_baseline.ci_low"] == pytest.approx(low)
        assert out[f"labelled_{k}.no_contrastive_gain_over_baseline.ci_high"] == pytest.approx(high)
        assert out[f"labelled_{k}.no_contrastive_gain_over_baseline.n"] == 3
        assert out[f"labelled_{k}.full_gain_over_baseline.mean"] == pytest.approx(
            statistics.fmean([-0.10, -0.05, -0.05])
        )
        assert out[f"labelled_{k}.probe_gain.mean"] == pytest.approx(statistics.fmean([0.05, 0.03, 0.06]))
        assert out[f"labelled_{k}.probe_gain_subject.mean"] == out[f"labelled_{k}.probe_gain.mean"]
        assert out[f"labelled_{k}.probe_full_gain.mean"] == pytest.approx(
            statistics.fmean([-0.02, 0.0, 0.02])
        )
        assert f"labelled_{k}.probe_gain_recording.mean" not in out  # regression: window and subject
        assert out[f"labelled_{k}.probe_gain.gate_failed_seeds"] == "1"
        assert out[f"labelled_{k}.probe_gain_gated.n"] == 2
        assert out[f"labelled_{k}.probe_gain_gated.mean"] == pytest.approx(statistics.fmean([0.05, 0.06]))
        assert out[f"labelled_{k}.baseline.mean.window"] == pytest.approx(0.95)
        assert out[f"labelled_{k}.baseline_gain_over_reference.mean"] == pytest.approx(0.9 - 0.95)
    assert out["gate.seed0.gap"] == pytest.approx(0.2) and out["gate.seed0.passed"] is True
    assert out["gate.seed1.passed"] is False and out["gate.failed_seeds"] == "1"
    assert out["gate.seed1.pretrain_runs"] == 1
    plot = learning.plot_curve({**out, "seeds": "0,1,2"}, regression, [2, None], list(learning.ARMS),
                               tmp_path / "curve.png")  # fmt: skip
    assert plot.stat().st_size > 1000

    # classification: higher is better, the same numbers read the other way round
    classification = learning.Task("label", "label", "classification", "label")
    out, _ = learning.summarise(_collected(classification, table, gate), classification, [2], [0, 1, 2],
                                list(learning.ARMS))  # fmt: skip
    assert out["labelled_2.no_contrastive_gain_over_baseline.mean"] == pytest.approx(-0.25 / 3)
    assert out["labelled_2.probe_gain_recording.n"] == 3


def test_what_the_bench_cannot_read_is_an_error():
    task = learning.Task("label", "label", "classification", "label")
    table = {arm: {0: 0.7, 1: 0.6} for arm in learning.ARMS}
    collected = _collected(
        task, table, {0: {"val/mem": 4.0}, 1: {"val/mem": 4.0, "val/mem_code_entropy": 5.0}}
    )
    del collected.values[("full", "2", 1)]
    collected.values[("baseline", "2", 0)]["labelled_subjects"] = 3.0
    del collected.values[("probe_random", "all", 1)]["recording"]
    collected.pretrain_runs[1].add("another")
    out, errors = learning.summarise(collected, task, [2, None], [0, 1], list(learning.ARMS))
    text = "\n".join(errors)
    assert "seed 0: the pretraining run pre0 logged no val/mem_code_entropy" in text
    assert "seed 1: its pretrained arms read 2 pretraining runs" in text
    assert "labelled 2: no finished full run for seed 1" in text
    assert "labelled 2: the baseline run of seed 0 fine-tuned on 3 subjects' labels" in text
    assert "labelled all: the probe_random run of seed 1 has no recording" in text
    assert len(errors) == 5
    assert math.isnan(out["gate.seed0.gap"]) and out["gate.failed_seeds"] == "0"


def _mumtaz_subset(tmp_path: Path, mumtaz_mdd: Path) -> list[str]:
    """6 real subjects (3 healthy, 3 MDD), EC and EO each, and their data overrides."""
    edf = tmp_path / "edf"
    edf.mkdir()
    for subject in SUBJECTS:
        for condition in ("EC", "EO"):
            shutil.copy(mumtaz_mdd / "edf" / f"{subject}{condition}.edf", edf)
    participants = tmp_path / "participants.csv"
    rows = [line for line in (mumtaz_mdd / "participants.csv").read_text().splitlines()[1:]
            if line.split(",")[0] in SUBJECTS]  # fmt: skip
    participants.write_text("subject,mdd\n" + "\n".join(rows) + "\n")
    return ["data=folder", f"data.root={edf}", f"data.subjects_file={participants}",
            r"data.subject_pattern='(?P<subject>(H|MDD)S\d+)(EC|EO)'", *LABELS,
            "split.fractions=[0.34,0.33,0.33]"]  # fmt: skip


@pytest.mark.slow
def test_bench_runs_every_arm_at_every_count_and_agrees_with_mlflow(tmp_path, mumtaz_mdd):
    work = tmp_path / "work"
    argv = ["--tiny", "--seeds", "0,1", "--labelled", "1,all", "--workdir", str(work), "--out-dir", str(tmp_path),
            *_mumtaz_subset(tmp_path, mumtaz_mdd), "tasks=recording_label"]  # fmt: skip
    results = learning.main(argv)
    written = json.loads((tmp_path / "bench-learning.json").read_text())
    assert written["errors"] == "" and written["task"] == "label" and written["wall_seconds"] > 0
    assert written["full_contrastive"] == "contrastive=same_recording"  # same_label would read every label
    unmeasured = {k for k, v in results.items() if isinstance(v, float) and not math.isfinite(v)}
    assert {k: v for k, v in written.items() if k not in unmeasured} == pytest.approx(
        {k: v for k, v in results.items() if k in written and k not in unmeasured}
    )
    for k in ("1", "all"):
        for name in (
            "no_contrastive_gain_over_baseline",
            "full_gain_over_baseline",
            "probe_gain",
            "probe_full_gain",
        ):
            for suffix in ("", "_recording"):
                assert written[f"labelled_{k}.{name}{suffix}.n"] == 2
                assert all(
                    math.isfinite(written[f"labelled_{k}.{name}{suffix}.{f}"]) for f in ("mean", "ci_low")
                )
    for seed in (0, 1):  # one pretraining and one contrastive run per seed, read by every K and arm
        assert written[f"gate.seed{seed}.pretrain_runs"] == written[f"gate.seed{seed}.contrastive_runs"] == 1
        assert math.isfinite(written[f"gate.seed{seed}.gap"])
    assert (tmp_path / "bench-learning-curve.png").stat().st_size > 1000
    assert (work / "learning-curve.png").exists()

    agrees_with_mlflow(written, work, tmp_path)


def agrees_with_mlflow(written: dict, work: Path, scratch: Path) -> None:
    """The bench's figures against its MLflow store, the subjects drawn against the cache."""
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("eegphase").experiment_id
    runs = client.search_runs([experiment], "tags.`eegphase.phase` = 'pipeline'")
    assert len(runs) == 6 * 2 * 2 and all(r.info.status == "FINISHED" for r in runs)
    query = "tags.`eegphase.phase` = 'pretrain' and tags.`eegphase.reused` = 'false'"
    assert len(client.search_runs([experiment], query)) == 2  # once per seed, for every K and arm
    windows = pd.read_parquet(work / "cache" / "windows-pretrain.parquet")
    windows = windows[windows["label"].notna()]
    drawn = {}  # seed -> the subjects drawn at K = 1, per arm
    for run in runs:
        arm = learning.arm_of(run.data.tags["eegphase.pipeline"], run.data.params)
        count, seed = run.data.params[learning.LABELLED_KEY], int(run.data.params["seed"])
        k = "all" if count == "None" else count
        assert (
            written[f"labelled_{k}.{arm}.seed{seed}.window"]
            == run.data.metrics["test_balanced_accuracy_label"]
        )
        query = f"tags.`mlflow.parentRunId` = '{run.info.run_id}' and tags.`eegphase.phase` = 'finetune'"
        finetune = client.search_runs([experiment], query)[0]
        rows = {
            d.dataset.name: json.loads(d.dataset.profile)["num_rows"] for d in finetune.inputs.dataset_inputs
        }
        splits = subject_splits(work / "cache", SplitConfig(seed=seed, fractions=(0.34, 0.33, 0.33)))
        train = set(splits.loc[splits["split"] == "train", "subject"])
        chosen = sorted(train)
        if count == "1":  # the one subject drawn: its labels, and only its, reached fine-tuning
            local = client.download_artifacts(finetune.info.run_id, "labelled/label", str(scratch / arm / k))
            chosen = json.loads((Path(local) / "labelled_subjects.json").read_text())
            assert len(chosen) == 1 and set(chosen) < train  # nested in the training subjects (K = all)
            drawn.setdefault(seed, set()).add(tuple(chosen))
        assert finetune.data.metrics["label_labelled_subjects"] == len(chosen)
        assert rows["pretrain-train"] == windows["subject"].isin(chosen).sum()  # the table fine-tuning read
        trained = "label/train/loss" in finetune.data.metrics
        assert trained != arm.startswith("probe")  # a probe takes no end-to-end step; its readout is refitted
        assert "val_balanced_accuracy_label_refit_head" in finetune.data.metrics
        if arm.startswith("probe"):  # a linear probe: the refitted layer, whatever it scores
            assert written[f"labelled_{k}.{arm}.seed{seed}.refit_kept"] == 1.0
    assert all(len(subjects) == 1 for subjects in drawn.values())  # every arm of a seed drew the same subject
