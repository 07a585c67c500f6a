"""Every command the README prints works as printed.

The README's shell blocks are read and each command either runs here or is listed (skipped, ``-rs`` shows the
reason). A full run of most commands takes minutes, so Hydra commands (``eegphase.run``, ``synth``,
``prepare``) are composed as ``--cfg job`` composes them (the same config and overrides, parsed as a shell
would split the line), a ``-m`` sweep cell by cell (the experiment's ``hydra.sweeper.params`` and the command
line's comma lists), and ``eegphase.run``'s start-up check runs on each; ``debug=smoke`` runs are also taken
through the start-up checks that read the prepared data, on the smoke data they generate. ``make`` targets and
commands needing data or runs not here are listed with the reason.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import shlex
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from eegphase.config import CONF_DIR
from eegphase.pipeline.plan import check_prepared_data, check_run_config
from eegphase.pipeline.schema import register_schemas

from .conftest import ROOT

README = ROOT / "README.md"
HYDRA_APPS = {"eegphase.run": "config", "eegphase.synth": "synth", "eegphase.prepare": "prepare"}
PLACEHOLDERS = {"<run_id>": "0123456789abcdef0123456789abcdef"}  # filled in as a user fills them in
LISTED = {  # a command's first words -> why it is not run here
    "make": "a make target: creates .venv and runs whole jobs (CI runs make test and make test-slow itself)",
    "python -m eegphase.report": "reads the tracked runs of an ablation grid (mlflow.db), which a test folder lacks",
    "python -m eegphase.export": "needs a finished fine-tuning run's id (runs:/<finetune run>/...)",
    "python -m eegphase.bench grid": "runs the smoke ablation grid twice (minutes); its cells are composed, "
    "start-up checked and data checked here as `-m experiment=ablation debug=smoke`",
    "python -m eegphase.bench learning": "six arms x three seeds on the Mumtaz EEG (tens of minutes)",
}


def _without_comment(line: str) -> str:
    """``line`` up to a ``#`` that starts a shell comment (after a blank, outside quotes)."""
    for i, char in enumerate(line):
        before = line[:i]
        if (
            char == "#"
            and (i == 0 or before[-1].isspace())
            and before.count("'") % 2 == before.count('"') % 2 == 0
        ):
            return before.rstrip()
    return line.rstrip()


def readme_commands(text: str) -> list[str]:
    """The commands of the README's ``bash`` blocks as printed: continuation lines joined, comments and shell
    variable assignments (``M=...``, substituted into the block's later lines) taken out."""
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S):
        variables: dict[str, str] = {}
        for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
            line = _without_comment(line).strip()
            if not line:
                continue
            assignment = re.fullmatch(r"([A-Za-z_]\w*)=(\S*)", line)
            if assignment:
                variables[assignment[1]] = assignment[2]
                continue
            for name, value in variables.items():
                line = line.replace(f"${name}", value)
            commands.append(line)
    return commands


COMMANDS = readme_commands(README.read_text())


def listed_reason(command: str) -> str | None:
    for start, reason in LISTED.items():
        if command == start or command.startswith(start + " "):
            return reason
    return None


def _compose(config: str, overrides: list[str]):
    return _composed(config, tuple(overrides)).copy()


@functools.cache
def _composed(config: str, overrides: tuple[str, ...]):
    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config, overrides=list(overrides), return_hydra_config=True)


def sweep_cells(config: str, overrides: list[str]) -> list[list[str]]:
    """The jobs of ``-m <overrides>``: every combination of the command line's and the sweeper's choices."""
    parser = OverridesParser.create()
    fixed, axes = [], []
    for override in parser.parse_overrides(overrides):
        if override.is_sweep_override():
            axes.append([f"{override.get_key_element()}={v}" for v in override.sweep_string_iterator()])
        else:
            fixed.append(override.input_line)
    swept = _compose(config, fixed).hydra.sweeper.params or {}
    for key, choices in swept.items():
        if not any(axis[0].split("=", 1)[0] == key for axis in axes):
            parsed = parser.parse_override(f"{key}={choices}")
            values = parsed.sweep_string_iterator() if parsed.is_sweep_override() else [str(choices)]
            axes.append([f"{key}={v}" for v in values])
    return [fixed + list(cell) for cell in itertools.product(*axes)]


def hydra_jobs(command: str) -> tuple[str, list[list[str]]]:
    """(config name, each job's overrides) of a ``python -m eegphase.<hydra app>`` command."""
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    words = shlex.split(command)
    assert words[:2] == ["python", "-m"] and words[2] in HYDRA_APPS, command
    config, args = HYDRA_APPS[words[2]], words[3:]
    multirun = any(a in ("-m", "--multirun") for a in args)
    args = [a for a in args if a not in ("-m", "--multirun")]
    return config, sweep_cells(config, args) if multirun else [args]


def test_the_readme_prints_the_commands_this_test_knows():
    assert len(COMMANDS) >= 25
    assert "python -m eegphase.run -m experiment=ablation debug=smoke" in COMMANDS
    assert "python -m eegphase.bench grid" in COMMANDS
    for command in COMMANDS:  # each is either composed here or listed with a reason
        words = shlex.split(command)
        assert listed_reason(command) or words[:3][-1] in HYDRA_APPS, f"no rule for: {command}"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command(command):
    reason = listed_reason(command)
    if reason:
        pytest.skip(f"{command}: {reason}")
    config, jobs = hydra_jobs(command)
    for overrides in jobs:
        cfg = _compose(config, overrides)
        if config == "config":
            assert check_run_config(cfg), (command, overrides)


def test_the_smoke_command_composes_through_the_real_cli(tmp_path):
    """``--cfg job`` on the command line as printed (the entry point's own argument handling included)."""
    command = "python -m eegphase.run +pipeline=full debug=smoke"
    assert command in COMMANDS
    env = {**os.environ, "EEGPHASE_CONF_DIR": str(CONF_DIR)}
    args = [sys.executable, *shlex.split(command)[1:], "--cfg", "job"]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = OmegaConf.create(proc.stdout)
    assert job.pipeline.name == "full" and job.data.root == "data/synthetic-smoke"


def _smoke_grid() -> list[list[str]]:
    command = "python -m eegphase.run -m experiment=ablation debug=smoke"
    assert command in COMMANDS
    return hydra_jobs(command)[1]


def test_the_smoke_grid_is_the_ablation_grid():
    cells = _smoke_grid()
    assert len(cells) == 15
    pipelines = {o.split("=", 1)[1] for cell in cells for o in cell if o.startswith("+pipeline=")}
    assert pipelines == {"full", "no_contrastive", "no_aux", "baseline", "full_tuh"}


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory) -> dict[str, str]:
    """The data ``debug=smoke`` generates (HBN, and TUH for full_tuh), prepared once, in a scratch folder."""
    from eegphase.data.prepare_cache import prepare_from_config

    root = tmp_path_factory.mktemp("smoke")
    paths = {
        "data.root": str(root / "synthetic-smoke"),
        "data.tuh_root": str(root / "synthetic-tuh"),
        "cache_dir": str(root / "cache-smoke"),
        "progress": "false",
    }
    cfg = _compose("config", ["+pipeline=full_tuh", "debug=smoke", *(f"{k}={v}" for k, v in paths.items())])
    modes = ["challenge1", "challenge2", "pretrain", "movies", "mixed"]
    prepare_from_config(cfg, modes=modes)
    return paths


@pytest.mark.slow  # generates and prepares the smoke data (HBN and TUH): 20-40 s on 2 cores
def test_the_smoke_grid_passes_the_start_up_data_checks(smoke_data):
    """Each of the 15 jobs of ``-m experiment=ablation debug=smoke`` passes the checks ``eegphase.run`` makes on
    the prepared data before training (every split holds two values of each target: the split moves with the
    seed, and TUH subjects in the cache took HBN subjects' places in val and test before)."""
    for cell in _smoke_grid():
        cfg = _compose("config", cell)
        for key, value in smoke_data.items():
            if OmegaConf.select(cfg, key) is not None:  # data.tuh_root: full_tuh's cells only
                OmegaConf.update(cfg, key, value)
        check_prepared_data(cfg, check_run_config(cfg))
