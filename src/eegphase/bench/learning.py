"""``python -m eegphase.bench learning [--labelled 2,4,all] <data overrides>``: does pretraining help on the
user's own EEG, and does it help more when labels are scarce?

Runs, through the user-dataset route (one cache prepared first, then one ``python -m eegphase.run -m`` subprocess
over every arm, seed and K, a fresh MLflow sqlite store in the work folder), for each seed and each labelled count
K (``phases.finetune.labelled_subjects``: K training subjects drawn by the seed, class-balanced where the label is
per subject, nested so that the 2 are among the 4; ``all``: every one) six arms: the supervised ``baseline``,
``no_contrastive`` and ``full``, and three frozen probes that fine-tune no epoch (``phases.finetune.epochs=0``: the
encoder as it came, read out by the closed-form readout refit alone, kept whatever its validation score: a linear
probe, see ``phases.readout``): ``probe_pretrained`` (the ``no_contrastive`` pretrained encoder), ``probe_full``
(after the contrastive phase too) and ``probe_random`` (the same architecture untrained). Every arm fine-tunes with
no head-only epochs and ``readout=refit`` (``FINETUNE``). Only the K subjects' labels reach fine-tuning, the
readout refit, the band-power reference and the trivial predictor; the validation and test subjects stay whole. The
key enters the finetune fingerprint only, so pretraining and the contrastive phase read every training subject
unlabelled (``aux_task=none`` unless the user says otherwise), train once per seed and are reused for every K and
arm; one process runs every job, so the training code's hash in the fingerprints cannot change between them
(``gate.seed<s>.pretrain_runs`` counts the pretraining runs a seed's arms read: one).

Each seed moves the subject split too (``split.seed=${seed}``, ``seed_all_phases=true``), so the seeds are
replicates of the whole experiment; every pipeline gets the same fine-tuning budget (``BUDGET``). The ``full``
arm's contrastive objective: the user's ``contrastive=`` when given, else the data's movie pairs where it has
movie windows, else ``same_label`` for a classification task on data with recording labels (unless the task's
target is that label and some K < all: same-label pairs would read every training subject's label), else
``same_recording`` (``full_contrastive`` and ``full_contrastive_why`` in the JSON).

The figures are those of one fine-tuning task (``--task``; the only one by default), of any kind: balanced
accuracy per window, recording and subject (classification) or NRMSE per window and subject (regression).
``bench-learning.json`` (flat, like every bench) holds per K (``labelled_<K>``: ``all`` or the count) each arm's
figures per seed (``labelled_<K>.<arm>.seed<s>.<figure>``) and their means, and the seed-paired differences
(t interval, ``eegphase.report.compare``) ``<pipeline>_gain_over_baseline``, ``probe_gain`` (probe_pretrained
over probe_random) and ``probe_full_gain`` with ``.mean``, ``.ci_low``, ``.ci_high``, ``.n``, per window and
per recording / subject under ``<name>_<level>``, signed so that positive means pretraining helped (balanced
accuracy up, NRMSE down); ``baseline_gain_over_reference`` beside them.

The gate (``gate.*``): per seed, how far the pretraining run's last ``val/mem`` lies below the validation codes'
entropy ``val/mem_code_entropy`` (the loss of the best context-free guess): ``1 - val/mem / entropy``. A
pretrained arm counts only where that is at least ``GATE`` (0.10). A seed that fails is reported beside the
figures (``<name>.gate_failed_seeds``), not dropped; ``<name>_gated`` repeats the window figure over the
passing seeds only. A metric the bench cannot read (a missing run, score or gate metric, a run that read
another number of subjects' labels, more than one pretraining run per seed) is an error: the JSON is written
with ``errors``, then the bench raises. A plot of the curve (the window metric against K per arm, with the
reference and the trivial predictor) goes to the work folder (``learning-curve.png``) and beside the JSON
(``bench-learning-curve.png``).
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
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from eegphase.bench import write_results
from eegphase.config import CONF_DIR
from eegphase.objectives.pairs import MOVIE_PAIR_MODES
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
    "phases.finetune.max_batches_per_epoch=2",
    "phases.finetune.max_eval_batches=1",
    "phases.finetune.reference_max_windows=300",
    "phases.finetune.readout_max_windows=300",
]
SEEDING = ["seed_all_phases=true", "split.seed=${seed}"]
# 20 subjects: 12 train, 4 val (8 recordings: same-label contrastive batches of 4 pairs), 4 test (8 recordings)
SPLIT = ["split.fractions=[0.6,0.2,0.2]"]  # a data override after it wins
# pretraining reads no label (an auxiliary p_factor head would); an override wins
UNLABELLED = ["aux_task=none"]
PREPARE_KEYS = ("data", "preprocess", "windows", "n_jobs")  # overrides python -m eegphase.prepare knows
LABELLED_KEY = "phases.finetune.labelled_subjects"
EPOCHS_KEY = "phases.finetune.epochs"  # swept over the budget's epochs and 0 (the probes)
PROBE = [f"{EPOCHS_KEY}=0"]  # no end-to-end epoch: the encoder as it came, read out by the refit alone
# every arm: no head-only epochs, the closed-form readout refit (the probes' only training)
FINETUNE = ["phases.finetune.freeze_epochs=0", "phases.finetune.readout=refit"]
BASELINE = "baseline"
PIPELINES = (BASELINE, "no_contrastive", "full")
# a pipeline run with PROBE -> its arm (probe_full: the contrastive encoder, probed)
PROBES = {"no_contrastive": "probe_pretrained", BASELINE: "probe_random", "full": "probe_full"}
ARMS = (*PIPELINES, "probe_pretrained", "probe_random", "probe_full")
PRETRAINED = ("no_contrastive", "full", "probe_pretrained", "probe_full")  # arms whose encoder was pretrained
GATE = 0.10  # val/mem at least this share below the codes' entropy
GATE_METRICS = ("val/mem", "val/mem_code_entropy")


@dataclass(frozen=True)
class Task:
    """The fine-tuning task the figures are about, and the names of its logged metrics."""

    key: str  # phases.finetune.tasks.<key>
    short: str  # its name in metrics
    kind: str  # regression | classification
    target: str  # the windows-table column it predicts

    @property
    def higher_is_better(self) -> bool:
        return self.kind == "classification"

    @property
    def levels(self) -> tuple[str, ...]:
        return ("window", "recording", "subject") if self.higher_is_better else ("window", "subject")

    def metrics(self) -> dict[str, str]:
        """JSON name -> the pipeline run's metric."""
        score = (
            f"test_balanced_accuracy_{self.short}" if self.higher_is_better else f"test_nrmse_{self.short}"
        )
        names = {level: score if level == "window" else f"{score}_{level}" for level in self.levels}
        return {**names, "reference": f"{score}_reference", "trivial": f"{score}_trivial",
                "test_subjects": f"test_subjects_{self.short}"}  # fmt: skip


def compose(overrides: list[str]) -> DictConfig:
    """The run config ``python -m eegphase.run`` composes from ``overrides`` (no data is read)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from eegphase.pipeline.schema import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def task_of(cfg: DictConfig, choice: str | None = None) -> Task:
    """The task named ``choice`` (the only task when None) of the run config's fine-tuning."""
    from eegphase.phases.finetune import task_names

    tasks = dict(cfg.phases.finetune.tasks)
    if choice is None and len(tasks) != 1:
        raise ValueError(f"fine-tuning has tasks {sorted(tasks)}: choose the one to report with --task")
    key = choice if choice is not None else next(iter(tasks))
    if key not in tasks:
        raise ValueError(f"--task {key}: fine-tuning has tasks {sorted(tasks)}")
    task = tasks[key]
    return Task(key, task_names(key, task)[1], str(task.kind), str(task.target))


def parse_labelled(text: str) -> list[int | None]:
    """``2,4,all`` -> [2, 4, None] (None: every training subject); each at least 1, none twice."""
    counts: list[int | None] = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        count = None if item == "all" else int(item)
        if count is not None and count < 1:
            raise ValueError(f"--labelled: {item} is not a subject count (1 or more, or all)")
        if count in counts:
            raise ValueError(f"--labelled: {item} given twice")
        counts.append(count)
    if not counts:
        raise ValueError("--labelled: give at least one count (e.g. 2,4,all)")
    return counts


def label_of(count: int | None) -> str:
    return "all" if count is None else str(count)


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def full_contrastive(cfg: DictConfig, overrides: list[str], task: Task, labelled: list[int | None]):
    """(overrides of the ``full`` arm's contrastive objective, why): the user's ``contrastive=`` wins; else the
    data's movie pairs, same-label pairs or same-recording pairs, whichever the data supports without reading
    the labels that only K subjects may give."""
    own = [o for o in overrides if _key(o).split(".")[0] == "contrastive"]
    if own:
        return own, f"the user's {' '.join(own)}"
    modes = [str(m) for m in (cfg.data.get("modes") or [])]
    default = str(cfg.contrastive.pair_mode)
    if "movies" in modes and default in MOVIE_PAIR_MODES:
        return [], f"the configured movie pairs (contrastive.pair_mode={default}): the data has movie windows"
    labels = bool(cfg.data.get("label_pattern"))
    reads_task_labels = task.target == "label" and any(k is not None for k in labelled)
    if task.kind == "classification" and labels and not reads_task_labels:
        return ["contrastive=same_label"], "same_label: a classification task on data with recording labels"
    why = (
        "same_recording: same-label pairs would read the task's label of every training subject, not only the "
        "K labelled ones'"
        if task.kind == "classification" and labels
        else "same_recording: the data has no movie windows and no recording labels to pair on"
    )
    return ["contrastive=same_recording"], why


def arm_of(pipeline: str, params: dict[str, str]) -> str:
    """The arm a pipeline run belongs to: its pipeline, or a probe when it fine-tuned no epoch."""
    if params.get("phases.finetune.epochs") == "0":
        return PROBES.get(pipeline, f"probe_{pipeline}")
    return pipeline


@dataclass
class Collected:
    """What the bench's MLflow store holds, as plain values."""

    # (arm, K label, seed) -> {JSON name: value}; a metric the run lacks is absent
    values: dict[tuple[str, str, int], dict[str, float]]
    pretrain_runs: dict[int, set[str]]  # seed -> the pretraining runs its pretrained arms read (expect one)
    contrastive_runs: dict[int, set[str]]  # seed -> the contrastive runs of its full arms
    gate: dict[int, dict[str, float]]  # seed -> GATE_METRICS of its pretraining run (those it logged)


def collect(tracking_uri: str, task: Task, experiment: str = "eegphase") -> Collected:
    """The FINISHED pipeline runs (the newest per arm, K and seed), their fine-tuning's labelled-subject count,
    the phase runs their pretrained arms read and those runs' gate metrics."""
    queries = RunQueries(tracking_uri)
    names = task.metrics()
    out = Collected({}, {}, {}, {})
    for run in sorted(queries.finished_pipeline_runs(experiment), key=lambda r: r.start_time):
        arm = arm_of(run.pipeline, run.params)
        count = run.params.get(LABELLED_KEY, "None")
        seed = int(run.params["seed"])
        values = {name: float(run.metrics[metric]) for name, metric in names.items() if metric in run.metrics}
        finetune = queries.phase_run_id(run.run_id, "finetune")
        tuned = queries.run_metrics(finetune) if finetune else {}
        # how many subjects' labels it read; whether the readout refit replaced the trained layer (a probe: always)
        for name, metric in (("labelled_subjects", f"{task.short}_labelled_subjects"),
                             ("refit_kept", f"readout_refit_kept_{task.short}")):  # fmt: skip
            if metric in tuned:
                values[name] = float(tuned[metric])
        out.values[(arm, "all" if count in ("None", "null") else count, seed)] = values
        if arm in PRETRAINED:
            pretrain = queries.phase_run_id(run.run_id, "pretrain")
            if pretrain is not None:
                out.pretrain_runs.setdefault(seed, set()).add(pretrain)
        if arm in ("full", "probe_full"):
            contrastive = queries.phase_run_id(run.run_id, "contrastive")
            if contrastive is not None:
                out.contrastive_runs.setdefault(seed, set()).add(contrastive)
    for seed, runs in out.pretrain_runs.items():
        metrics = queries.run_metrics(sorted(runs)[0])
        out.gate[seed] = {name: float(metrics[name]) for name in GATE_METRICS if name in metrics}
    return out


def gate_results(collected: Collected, seeds: list[int]) -> tuple[dict, set[int], list[str]]:
    """The gate's figures per seed (flat keys), the seeds that pass and what could not be read."""
    out: dict = {"gate.threshold": GATE}
    passed, errors = set(), []
    for seed in seeds:
        runs = collected.pretrain_runs.get(seed, set())
        out[f"gate.seed{seed}.pretrain_runs"] = len(runs)
        out[f"gate.seed{seed}.contrastive_runs"] = len(collected.contrastive_runs.get(seed, set()))
        if len(runs) > 1:
            errors.append(f"seed {seed}: its pretrained arms read {len(runs)} pretraining runs, not one")
        if not runs:
            errors.append(f"seed {seed}: no pretraining run found")
            continue
        metrics = collected.gate.get(seed, {})
        missing = [name for name in GATE_METRICS if name not in metrics]
        if missing:
            errors.append(
                f"seed {seed}: the pretraining run {sorted(runs)[0]} logged no {', '.join(missing)}"
            )
            out[f"gate.seed{seed}.gap"], out[f"gate.seed{seed}.passed"] = math.nan, False
            continue
        mem, entropy = metrics["val/mem"], metrics["val/mem_code_entropy"]
        gap = 1.0 - mem / entropy if entropy > 0 else math.nan
        out.update({f"gate.seed{seed}.val_mem": mem, f"gate.seed{seed}.val_mem_code_entropy": entropy,
                    f"gate.seed{seed}.gap": gap, f"gate.seed{seed}.passed": bool(gap >= GATE)})  # fmt: skip
        if gap >= GATE:
            passed.add(seed)
    out["gate.passed_seeds"] = ",".join(str(s) for s in seeds if s in passed)
    out["gate.failed_seeds"] = ",".join(str(s) for s in seeds if s not in passed)
    return out, passed, errors


def comparisons(arms: list[str]) -> list[tuple[str, str, str]]:
    """(name, arm, the arm it is compared with) of each gain the bench reports."""
    pairs = [(f"{p}_gain_over_baseline", p, BASELINE) for p in ("no_contrastive", "full") if p in arms]
    if {"probe_pretrained", "probe_random"} <= set(arms):
        pairs.append(("probe_gain", "probe_pretrained", "probe_random"))
    if {"probe_full", "probe_random"} <= set(arms):
        pairs.append(("probe_full_gain", "probe_full", "probe_random"))
    return pairs


def _gain(
    prefix: str,
    task: Task,
    collected: Collected,
    k: str,
    seeds: list[int],
    arm: str,
    reference: str,
    name: str,
    reference_name: str | None = None,
) -> dict[str, float]:
    """``arm``'s seed-paired gain over ``reference`` in figure ``name``, signed so that positive is better."""

    def series(which: str, figure: str) -> dict[int, float]:
        return {s: collected.values.get((which, k, s), {}).get(figure, math.nan) for s in seeds}

    own, other = series(arm, name), series(reference, reference_name or name)
    diff = paired_difference(own, other) if task.higher_is_better else paired_difference(other, own)
    return {f"{prefix}.{field}": getattr(diff, field) for field in ("n", "mean", "std", "ci_low", "ci_high")}


def summarise(
    collected: Collected, task: Task, labelled: list[int | None], seeds: list[int], arms: list[str]
) -> tuple[dict, list[str]]:
    """Per K: each arm's figures per seed and means, the signed gains with t intervals, the gate beside them;
    and what could not be read (a missing run; a metric some runs logged and others did not)."""
    out, passed, errors = gate_results(collected, seeds)
    names = [*task.metrics(), "refit_kept"]
    present = {name for values in collected.values.values() for name in values}
    required = {"window", "test_subjects", "labelled_subjects"} | (present & set(names))
    for count in labelled:
        k = label_of(count)
        for arm in arms:
            for seed in seeds:
                values = collected.values.get((arm, k, seed))
                if values is None:
                    errors.append(f"labelled {k}: no finished {arm} run for seed {seed}")
                    continue
                lacking = sorted(required - set(values))
                if lacking:
                    errors.append(f"labelled {k}: the {arm} run of seed {seed} has no {', '.join(lacking)}")
                if count is not None and values.get("labelled_subjects", count) != count:
                    errors.append(f"labelled {k}: the {arm} run of seed {seed} fine-tuned on "
                                  f"{values['labelled_subjects']:.0f} subjects' labels")  # fmt: skip
                for name, value in values.items():
                    out[f"labelled_{k}.{arm}.seed{seed}.{name}"] = value
            for name in sorted(required):
                summary = spread(collected.values.get((arm, k, s), {}).get(name, math.nan) for s in seeds)
                out[f"labelled_{k}.{arm}.mean.{name}"] = summary.mean
                out[f"labelled_{k}.{arm}.std.{name}"] = summary.std

        for name, arm, reference in comparisons(arms):
            for level in task.levels:
                if level in required:
                    suffix = "" if level == "window" else f"_{level}"
                    out.update(
                        _gain(
                            f"labelled_{k}.{name}{suffix}", task, collected, k, seeds, arm, reference, level
                        )
                    )
            out[f"labelled_{k}.{name}.gate_failed_seeds"] = ",".join(str(s) for s in seeds if s not in passed)
            gated = [s for s in seeds if s in passed]
            out.update(
                _gain(f"labelled_{k}.{name}_gated", task, collected, k, gated, arm, reference, "window")
            )
        if "reference" in required:
            prefix = f"labelled_{k}.baseline_gain_over_reference"
            out.update(_gain(prefix, task, collected, k, seeds, BASELINE, BASELINE, "window", "reference"))
    return out, errors


def plot_curve(results: dict, task: Task, labelled: list[int | None], arms: list[str], path: Path) -> Path:
    """The window metric's mean over seeds against K, one line per arm, the reference and trivial beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label_of(c) for c in labelled]
    x = list(range(len(labels)))
    figure, ax = plt.subplots(figsize=(6, 4))
    for arm in arms:
        y = [results.get(f"labelled_{k}.{arm}.mean.window", math.nan) for k in labels]
        ax.plot(x, y, marker="o", label=arm, linestyle="--" if arm.startswith("probe") else "-")
    for name, style in (("reference", ":"), ("trivial", "-.")):
        y = [results.get(f"labelled_{k}.{BASELINE}.mean.{name}", math.nan) for k in labels]
        ax.plot(
            x, y, color="grey", linestyle=style, label=f"{name} (band power)" if name == "reference" else name
        )
    shown = []
    for k in labels:
        n = results.get(f"labelled_{k}.{BASELINE}.mean.labelled_subjects", math.nan)
        shown.append(f"{k} ({n:.0f})" if k == "all" and math.isfinite(n) else k)
    ax.set_xticks(x, shown)
    ax.set_xlabel("labelled training subjects")
    metric = "balanced accuracy (higher is better)" if task.higher_is_better else "NRMSE (lower is better)"
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"{task.short}: per window, mean over seeds {results.get('seeds', '')}")
    ax.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


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


def _fmt(value) -> str:
    return f"{value:+.3f}" if isinstance(value, float) and math.isfinite(value) else "   n/a"


def print_table(results: dict, task: Task, labelled: list[int | None], arms: list[str]) -> None:
    metric = "balanced accuracy" if task.higher_is_better else "NRMSE"
    print(f"task {task.short} ({task.kind}): test {metric} per window, mean over seeds")
    print(f"{'labelled':<10}" + "".join(f"{a:>18}" for a in arms) + f"{'reference':>11}{'trivial':>9}")
    for k in map(label_of, labelled):
        row = [results.get(f"labelled_{k}.{a}.mean.window", math.nan) for a in arms]
        row += [results.get(f"labelled_{k}.{BASELINE}.mean.{n}", math.nan) for n in ("reference", "trivial")]
        print(f"{k:<10}" + "".join(f"{v:>18.3f}" for v in row[:-2]) + f"{row[-2]:>11.3f}{row[-1]:>9.3f}")
    print(f"gains (positive: pretraining helped), mean [95% t interval]; gate {GATE:.2f}: "
          f"failed seeds {results.get('gate.failed_seeds') or 'none'}")  # fmt: skip
    for k in map(label_of, labelled):
        for name, _, _ in comparisons(arms):
            key = f"labelled_{k}.{name}"
            if f"{key}.mean" in results:
                print(f"  {k:<5}{name:<36}{_fmt(results[f'{key}.mean'])}  [{_fmt(results[f'{key}.ci_low'])}, "
                      f"{_fmt(results[f'{key}.ci_high'])}]  n={results[f'{key}.n']}")  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m eegphase.bench learning",
        description="baseline vs pretrained pipelines and frozen probes on your own data, at several labelled "
        "counts; other arguments are Hydra overrides for python -m eegphase.run (data=folder data.root=... "
        "tasks=recording_label ...)",
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (at least 3; 2 with --tiny)")
    parser.add_argument(
        "--labelled", default="all", help="labelled training subjects per run, e.g. 2,4,all (all: every one)"
    )
    parser.add_argument("--task", default=None, help="the fine-tuning task to report (default: the only one)")
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
    try:
        labelled = parse_labelled(args.labelled)
    except ValueError as exc:
        parser.error(str(exc))
    budget = TINY_BUDGET if args.tiny else BUDGET
    own_contrastive = [o for o in overrides if _key(o).split(".")[0] == "contrastive"]
    epochs = [o.split("=", 1)[1] for o in [*budget, *overrides] if _key(o) == EPOCHS_KEY][-1]
    overrides = [o for o in overrides if _key(o) != EPOCHS_KEY]  # swept with 0 (the probes) below
    settings = [*SEEDING, *SPLIT, *(o for o in budget if _key(o) != EPOCHS_KEY), *UNLABELLED]
    cfg = compose(["+pipeline=full", f"seed={seeds[0]}", *settings, *overrides, *FINETUNE])
    task = task_of(cfg, args.task)
    contrastive, why = full_contrastive(cfg, own_contrastive, task, labelled)

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
    # every arm, seed and K in one multirun: one process, one code version (a phase fingerprint hashes the
    # training code), so each seed's pretraining is trained by its first pretrained job and reused by the rest
    counts = ",".join("null" if c is None else str(c) for c in labelled)
    sweep = [f"+pipeline={','.join(PIPELINES)}", f"{EPOCHS_KEY}={epochs},0", f"seed={','.join(map(str, seeds))}",
             f"{LABELLED_KEY}={counts}", f"hydra.sweep.dir={work / 'multirun'}"]  # fmt: skip
    cmd = [sys.executable, "-m", "eegphase.run", "-m", *sweep, *settings, *common, *overrides, *contrastive,
           *FINETUNE]  # fmt: skip
    seconds["run"] = _run(cmd, work, "run")
    wall = time.perf_counter() - started
    arms = list(ARMS)
    summary, errors = summarise(collect(tracking_uri, task), task, labelled, seeds, arms)
    results: dict = {
        "task": task.short,
        "task_kind": task.kind,
        "arms": ",".join(arms),
        "labelled": ",".join(map(label_of, labelled)),
        "full_contrastive": " ".join(contrastive) or "the configured contrastive",
        "full_contrastive_why": why,
        "seeds": ",".join(map(str, seeds)),
        "seeding": " ".join(SEEDING + SPLIT),
        "budget": " ".join(budget),
        "probe": " ".join(PROBE),
        "finetune": " ".join(FINETUNE),
        "epochs": epochs,
        "overrides": " ".join(overrides),
        "tracking_uri": tracking_uri,
        "wall_seconds": wall,
        **{f"wall_seconds.{k}": v for k, v in seconds.items()},
        **summary,
        "errors": "; ".join(errors),
    }
    curve = plot_curve(results, task, labelled, arms, work / "learning-curve.png")
    results["plot"] = str(Path(args.out_dir) / "bench-learning-curve.png")
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(curve, results["plot"])
    print(f"learning bench: {len(arms)} arms x labelled {results['labelled']} x seeds {seeds} in {wall:.0f} s "
          f"(work folder {work}); full arm: {results['full_contrastive']} ({why})")  # fmt: skip
    print_table(results, task, labelled, arms)
    print(f"wrote {write_results('learning', results, args.out_dir)} and {results['plot']}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    if errors:
        raise RuntimeError("learning bench: figures it could not read:\n  " + "\n  ".join(errors))
    return results


if __name__ == "__main__":
    main()
