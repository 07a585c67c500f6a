"""The wheel as a user installs it: built from the sources, installed into a fresh venv (no editable link to
src/), its console scripts run from a folder outside the repository, composing the configs the wheel ships."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = (
    "eegphase-run",
    "eegphase-prepare",
    "eegphase-synth",
    "eegphase-report",
    "eegphase-export",
    "eegphase-bench",
)


def _run(cmd: list, cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A venv holding only the eegphase wheel; its dependencies (torch included) come from this interpreter's
    site-packages through a .pth file, so nothing is downloaded. Returns (venv, environment for its scripts)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy, so that the build leaves no build/ or egg-info in the working tree
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EEGPHASE_CONF_DIR", "VIRTUAL_ENV")}
    env["PYTHONUNBUFFERED"] = "1"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", source], tmp, env)
    (wheel,) = (tmp / "dist").glob("eegphase-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, env)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env)
                .stdout.strip())  # fmt: skip
    # a plain path line: the editable install's own .pth over there is not processed, so src/ stays out
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], tmp, env)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env


@pytest.mark.slow
def test_wheel_ships_configs_and_console_scripts(installed, tmp_path):
    venv, env = installed
    bin_dir = venv / "bin"
    assert all((bin_dir / name).is_file() for name in SCRIPTS)
    imported = _run([bin_dir / "python", "-c", "import eegphase; print(eegphase.__file__)"], tmp_path, env)
    package = Path(imported.stdout.strip()).parent
    assert package.is_relative_to(venv) and not package.is_relative_to(ROOT)
    assert (package / "conf" / "config.yaml").is_file()
    assert (package / "conf" / "debug" / "smoke.yaml").is_file()

    job = _run([bin_dir / "eegphase-run", "--cfg", "job", "+pipeline=full", "debug=smoke"], tmp_path, env)
    cfg = yaml.safe_load(job.stdout)
    assert cfg["pipeline"]["name"] == "full"
    assert cfg["data"]["root"] == "data/synthetic-smoke"  # debug=smoke, composed from the wheel's conf/debug
    assert cfg["phases"]["finetune"]["max_batches_per_epoch"] == 3
    assert set(cfg["phases"]) == {"pretrain", "contrastive", "finetune"}

    hydra_cfg = yaml.safe_load(
        _run([bin_dir / "eegphase-run", "--cfg", "hydra", "+pipeline=full"], tmp_path, env).stdout
    )
    sources = {s["provider"]: s["path"] for s in hydra_cfg["hydra"]["runtime"]["config_sources"]}
    assert Path(sources["main"]) == package / "conf"  # the wheel's configs, not the repository's

    prepare_help = _run([bin_dir / "eegphase-prepare", "--help"], tmp_path, env).stdout
    assert "prepare is powered by Hydra" in prepare_help and "hbn_tuh" in prepare_help  # the data group
    assert "--tracking-uri" in _run([bin_dir / "eegphase-report", "--help"], tmp_path, env).stdout
    export = _run([bin_dir / "eegphase-export"], tmp_path, env, check=False)
    assert export.returncode == 2 and "missing option(s)" in export.stderr


@pytest.mark.slow
def test_installed_wheel_runs_a_smoke_pipeline_outside_the_repository(installed, tmp_path):
    venv, env = installed
    proc = _run(
        [venv / "bin" / "eegphase-run", "+pipeline=baseline", "debug=smoke", "progress=false",
         "hydra/job_logging=disabled"],
        tmp_path, env,
    )  # fmt: skip
    assert "pipeline baseline seed 0:" in proc.stdout and "test_nrmse_c1=" in proc.stdout
    assert (tmp_path / "data" / "synthetic-smoke" / ".complete").is_file()  # generated by the smoke config
    assert (tmp_path / "mlflow.db").is_file() and any((tmp_path / "cache-smoke").iterdir())
