"""``python -m eegphase.bench learning <data overrides>``: does pretraining help on the user's own EEG?

Runs, through the user-dataset route (real ``python -m eegphase.run -m`` subprocesses on one cache prepared
first, a fresh MLflow sqlite store in the work folder), the supervised ``baseline`` and the pretrained
pipelines (``no_contrastive``; ``full`` with ``contrastive=same_label`` when conf/contrastive/same_label.yaml
exists) over several seeds. Each seed moves the subject split too (``split.seed=${seed}``,
``seed_all_phases=true``), so the seeds are replicates of the whole experiment; every pipeline gets the same
fine-tuning budget (``BUDGET``, end-to-end epochs only: no head-only epochs for the pretrained encoders).

``bench-learning.json`` (flat, like every bench) holds per pipeline and seed the test balanced accuracy per
window and per recording, the band-power reference's and the trivial predictor's, and the number of test
subjects; then means over seeds and the seed-paired differences (t interval, ``eegphase.report.compare``):
each pipeline minus the baseline, and the baseline minus the reference.

Pretraining reads the ``train`` (and ``val``) split of the same subject split as fine-tuning
(``eegphase.data.splits``: one split over every subject of the cache, for every mode), so it sees every
recording of the training subjects and none of the test subjects'.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eegphase.bench import write_results
from eegphase.config import CONF_DIR
from eegphase.report.compare import paired_difference, spread
from eegphase.tracking.queries import RunQueries

# The same for every pipeline; pretraining and fine-tuning sized for a 20-subject dataset on 2 CPU cores.
BUDGET = [
    "model=labram_tiny",
    "phases.pretrain.tokenizer_epochs=3",
    "phases.pretrain.epochs=4",
    "phases.pretrain.max_batches_per_epoch=10",
    "phases.pretrain.max_eval_batches=2",
    "phases.contrastive.epochs=2",
    "phases.contrastive.batch_size=4",  # pairs of distinct recordings: a 4-subject val split has 8
    "phases.contrastive.max_batches_per_epoch=5",
    "phases.contrastive.max_eval_batches=2",
    "phases.finetune.epochs=5",
    "phases.finetune.freeze_epochs=0",
    "phases.finetune.max_batches_per_epoch=10",
    "phases.finetune.max_eval_batches=2",
]
TINY_BUDGET = [  # --tiny: a check that everything runs, not a measurement
    "model=labram_tiny",
    "phases.pretrain.tokenizer_epochs=1",
    "phases.pretrain.epochs=1",
    "phases.pretrain.n_codes=64",
    "phases.pretrain.max_batches_per_epoch=2",
    "phases.pretrain.max_eval_batches=1",
    "phases.contrastive.epochs=1",
    "phases.contrastive.batch_size=2",
    "phases.contrastive.max_batches_per_epoch=2",
    "phases.contrastive.max_eval_batches=1",
    "phases.finetune.epochs=1",
    "phases.finetune.freeze_epochs=0",
    "phases.finetune.max_batches_per_epoch=2",
    "phases.finetune.max_eval_batches=1",
    "phases.finetune.reference_max_windows=300",
]
SEEDING = ["seed_all_phases=true", "split.seed=${seed}"]
# 20 subjects: 12 train, 4 val (8 recordings: same-label contrastive batches of 4 pairs), 4 test (8 recordings)
SPLIT = ["split.fractions=[0.6,0.2,0.2]"]  # a data override after it wins
PREPARE_KEYS = ("data", "preprocess", "windows", "n_jobs")  # overrides python -m eegphase.prepare knows
TASK = "label"
METRICS = {  # JSON name -> logged metric
    "window": f"test_balanced_accuracy_{TASK}",
    "recording": f"test_balanced_accuracy_{TASK}_recording",
    "reference": f"test_balanced_accuracy_{TASK}_reference",
    "trivial": f"test_balanced_accuracy_{TASK}_trivial",
    "test_subjects": f"test_subjects_{TASK}",
}
BASELINE = "baseline"
SAME_LABEL = Path("contrastive") / "same_label.yaml"


def pipelines(conf_dir: Path = CONF_DIR) -> tuple[dict[str, list[str]], str | None]:
    """The pipelines to run ({name: extra overrides}) and why ``full`` is skipped (None when it runs)."""
    runs = {BASELINE: [], "no_contrastive": []}
    if (conf_dir / SAME_LABEL).is_file():
        runs["full"] = ["contrastive=same_label"]
        return runs, None
    return runs, f"{conf_dir / SAME_LABEL} does not exist (no same-label contrastive objective to run)"


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _run(cmd: list[str], work: Path, what: str) -> float:
    """Run ``cmd`` in the current folder (relative data paths keep working); its output goes to work/<what>.log."""
    env = {**os.environ, "EEGPHASE_CONF_DIR": str(CONF_DIR), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    (work / f"{what}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return seconds


def collect(tracking_uri: str, experiment: str = "eegphase") -> dict[str, dict[int, dict[str, float]]]:
    """{pipeline: {seed: {json name: value}}} of the FINISHED pipeline runs (the newest run per seed)."""
    table: dict[str, dict[int, dict[str, float]]] = {}
    for run in sorted(
        RunQueries(tracking_uri).finished_pipeline_runs(experiment), key=lambda r: r.start_time
    ):
        values = {name: float(run.metrics.get(metric, math.nan)) for name, metric in METRICS.items()}
        table.setdefault(run.pipeline, {})[int(run.params["seed"])] = values
    return table


def _difference(prefix: str, config: dict[int, float], reference: dict[int, float]) -> dict[str, float]:
    diff = paired_difference(config, reference)
    return {f"{prefix}.{field}": getattr(diff, field) for field in ("n", "mean", "std", "ci_low", "ci_high")}


def summarise(table: dict[str, dict[int, dict[str, float]]]) -> dict[str, float | int]:
    """Per-run values, means over seeds and the seed-paired differences, as flat keys."""
    out: dict[str, float | int] = {}
    for pipeline, by_seed in sorted(table.items()):
        for seed, values in sorted(by_seed.items()):
            out.update({f"{pipeline}.seed{seed}.{name}": value for name, value in values.items()})
        for name in METRICS:
            summary = spread(v[name] for v in by_seed.values())
            out[f"{pipeline}.mean.{name}"] = summary.mean
            out[f"{pipeline}.std.{name}"] = summary.std
        out[f"{pipeline}.seeds"] = len(by_seed)

    def series(pipeline: str, name: str) -> dict[int, float]:
        return {seed: v[name] for seed, v in table.get(pipeline, {}).items()}

    out.update(_difference("baseline_minus_reference_window", series(BASELINE, "window"),
                           series(BASELINE, "reference")))  # fmt: skip
    for pipeline in sorted(set(table) - {BASELINE}):
        for level in ("window", "recording"):
            out.update(_difference(f"{pipeline}_minus_baseline_{level}", series(pipeline, level),
                                   series(BASELINE, level)))  # fmt: skip
    # the headline: the pretrained pipelines against the baseline, per window
    for pipeline in sorted(set(table) - {BASELINE}):
        for field in ("n", "mean", "std", "ci_low", "ci_high"):
            out[f"pretrained_minus_baseline_window.{pipeline}.{field}"] = out[
                f"{pipeline}_minus_baseline_window.{field}"
            ]
    return out


def _fmt(value: float) -> str:
    return f"{value:+.3f}" if isinstance(value, float) and math.isfinite(value) else "   n/a"


def print_table(results: dict, names: list[str]) -> None:
    print(f"{'pipeline':<16}{'seeds':>6}{'window':>9}{'record.':>9}{'refer.':>9}{'trivial':>9}{'subj.':>7}")
    for name in names:
        if f"{name}.seeds" not in results:
            print(f"{name:<16}  (no finished runs)")
            continue
        means = [results[f"{name}.mean.{m}"] for m in ("window", "recording", "reference", "trivial")]
        print(f"{name:<16}{results[f'{name}.seeds']:>6}" + "".join(f"{m:>9.3f}" for m in means)
              + f"{results[f'{name}.mean.test_subjects']:>7.1f}")  # fmt: skip
    print("paired differences over seeds (mean [95% t interval]):")
    keys = ["baseline_minus_reference_window"] + [
        f"{n}_minus_baseline_{level}" for n in names if n != BASELINE for level in ("window", "recording")
    ]
    for key in keys:
        if f"{key}.mean" in results:
            print(f"  {key:<40}{_fmt(results[f'{key}.mean'])}  [{_fmt(results[f'{key}.ci_low'])}, "
                  f"{_fmt(results[f'{key}.ci_high'])}]  n={results[f'{key}.n']}")  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m eegphase.bench learning",
        description="baseline vs pretrained pipelines on your own data; other arguments are Hydra overrides "
        "for python -m eegphase.run (data=folder data.root=... tasks=recording_label ...)",
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (at least 3; 2 with --tiny)")
    parser.add_argument("--workdir", type=Path, default=None, help="work folder (default: a new temp folder)")
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="folder for bench-learning.json")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny budgets: checks that it runs, measures nothing"
    )
    args, overrides = parser.parse_known_args(argv)
    unknown = [o for o in overrides if o.startswith("-")]
    if unknown:
        parser.error(f"unknown option(s) {unknown}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if len(seeds) < (2 if args.tiny else 3):
        parser.error(f"--seeds: need at least {2 if args.tiny else 3} seeds, got {seeds}")
    budget = TINY_BUDGET if args.tiny else BUDGET
    work = Path(args.workdir or tempfile.mkdtemp(prefix="eegphase-learning-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cache, store = work / "cache", work / "mlflow.db"
    for stale in (store, work / "mlartifacts", work / "phases", work / "multirun"):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    tracking_uri = f"sqlite:///{store}"
    common = ["progress=false", "hydra/job_logging=disabled", f"cache_dir={cache}", f"work_dir={work / 'phases'}",
              f"tracking.uri={tracking_uri}", "tracking.log_models=false"]  # fmt: skip
    started = time.perf_counter()
    prepare_overrides = [o for o in overrides if _key(o).split(".")[0] in PREPARE_KEYS]
    seconds = {"prepare": _run([sys.executable, "-m", "eegphase.prepare", *prepare_overrides,
                                f"cache_dir={cache}", "progress=false"], work, "prepare")}  # fmt: skip
    runs, skipped = pipelines()
    groups: dict[tuple[str, ...], list[str]] = {}  # pipelines that share their overrides share one multirun
    for name, extra in runs.items():
        groups.setdefault(tuple(extra), []).append(name)
    for extra, names in groups.items():
        label = "+".join(names)
        sweep = [f"+pipeline={','.join(names)}", f"seed={','.join(map(str, seeds))}",
                 f"hydra.sweep.dir={work / 'multirun' / label}"]  # fmt: skip
        cmd = [sys.executable, "-m", "eegphase.run", "-m", *sweep, *SEEDING, *SPLIT, *budget, *common,
               *overrides, *extra]  # fmt: skip
        seconds[label] = _run(cmd, work, f"run-{label}")
    wall = time.perf_counter() - started
    table = collect(tracking_uri)
    results: dict = {
        "pipelines": ",".join(runs),
        "full_skipped": skipped or "",
        "full_contrastive": "same_label" if "full" in runs else "",
        "seeds": ",".join(map(str, seeds)),
        "seeding": " ".join(SEEDING + SPLIT),
        "budget": " ".join(budget),
        "overrides": " ".join(overrides),
        "tracking_uri": tracking_uri,
        "wall_seconds": wall,
        **{f"wall_seconds.{k}": v for k, v in seconds.items()},
        **summarise(table),
    }
    missing = [f"{n} seed {s}" for n in runs for s in seeds if s not in table.get(n, {})]
    results["missing_runs"] = ", ".join(missing)
    print(f"learning bench: {', '.join(runs)} x seeds {seeds} in {wall:.0f} s (work folder {work})")
    if skipped:
        print(f"full skipped: {skipped}")
    print_table(results, list(runs))
    print(f"wrote {write_results('learning', results, args.out_dir)}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
