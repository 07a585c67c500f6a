"""Pretraining on HBN + TUH (`+pipeline=full_tuh`): draws at windows.mixed_ratio in a real run, the channel
adapter chosen by config in every phase, and the ablation grid's fifth row."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from cli_helpers import run_cli
from eegphase.config import CONF_DIR
from eegphase.data.synthetic import generate_tuh
from eegphase.data.windows import WindowConfig
from eegphase.pipeline.plan import check_run_config
from eegphase.pipeline.schema import register_schemas

from .conftest import runs

PRETRAIN_BATCHES, BATCH = 8, 32  # debug=smoke's batch size: 256 draws in the one MEM epoch


def _compose(*overrides: str):
    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_ablation_sweeps_five_pipelines_and_full_tuh_sweeps_its_ratio():
    cfg = _compose("experiment=ablation")
    pipelines = str(cfg.hydra.sweeper.params["+pipeline"]).split(",")
    assert pipelines == ["full", "no_contrastive", "no_aux", "baseline", "full_tuh"]
    for name in pipelines:
        assert check_run_config(_compose("experiment=ablation", f"+pipeline={name}"))
    # each seed of the grid draws its own split and retrains every phase; the documented switch undoes both
    study = _compose("experiment=ablation", "+pipeline=full", "seed=2")
    assert study.split.seed == 2 and study.seed_all_phases
    cheap = _compose(
        "experiment=ablation", "+pipeline=full", "seed=2", "seed_all_phases=false", "split.seed=0"
    )
    assert cheap.split.seed == 0 and not cheap.seed_all_phases
    cfg = _compose("+pipeline=full_tuh")
    assert cfg.data.name == "hbn_tuh" and cfg.phases.pretrain.mode == "mixed" and "tuh" in cfg.data.generate
    assert WindowConfig.from_mapping(cfg.windows).mixed_ratio == {"hbn": 0.7, "tuh": 0.3}
    for share in (0.3, 0.5):  # what each job of `-m ... windows.mixed_ratio.tuh=0.3,0.5` gets
        cfg = _compose("+pipeline=full_tuh", f"windows.mixed_ratio.tuh={share}")
        assert WindowConfig.from_mapping(cfg.windows).mixed_ratio == pytest.approx(
            {"hbn": 1 - share, "tuh": share}
        )


@pytest.fixture(scope="module")
def tiny_tuh(tmp_path_factory) -> Path:
    return generate_tuh(
        tmp_path_factory.mktemp("tuh") / "tuh", n_subjects=5, duration_scale=0.3, progress=False
    )


def _pretrain_share(workdir: Path, pipeline_run: str) -> float:
    frame = runs(workdir)
    row = frame[
        (frame["tags.mlflow.parentRunId"] == pipeline_run) & (frame["tags.eegphase.phase"] == "pretrain")
    ]
    return float(row["metrics.train_epoch/share_tuh"].iloc[0])


def _latest_pipeline(workdir: Path) -> str:
    frame = runs(workdir)
    return frame[frame["tags.eegphase.phase"] == "pipeline"]["run_id"].iloc[0]


@pytest.mark.slow  # minutes of end-to-end work: make test-slow (CI runs it)
def test_full_tuh_draws_at_the_ratio_and_builds_the_configured_adapter_in_every_phase(
    tiny_hbn, tiny_tuh, tmp_path
):
    common = [
        "+pipeline=full_tuh",
        f"data.tuh_root={tiny_tuh}",
        f"phases.pretrain.max_batches_per_epoch={PRETRAIN_BATCHES}",
    ]
    n = PRETRAIN_BATCHES * BATCH
    shares = {}
    for tuh, adapter in ((0.3, "perceiver"), (0.7, "zero_pad")):
        run_cli(
            tmp_path,
            *common,
            f"windows.mixed_ratio.tuh={tuh}",
            f"model.channel_adapter={adapter}",
            data_root=tiny_hbn,
        )
        shares[tuh] = _pretrain_share(tmp_path, _latest_pipeline(tmp_path))
        assert abs(shares[tuh] - tuh) < 4 * (tuh * (1 - tuh) / n) ** 0.5, shares
        if adapter == "perceiver":  # every phase's checkpoint holds the adapter in front of its encoder
            checkpoints = sorted((tmp_path / "outputs" / "smoke-phases").rglob("best.pt"))
            phases_with_adapter = {
                path.relative_to(tmp_path / "outputs" / "smoke-phases").parts[0].split("-")[0]
                for path in checkpoints
                if any(
                    ".adapter.latents" in key
                    for key in torch.load(path, map_location="cpu", weights_only=True)["model"]
                )
            }
            assert phases_with_adapter == {"pretrain", "contrastive", "finetune"}, checkpoints
    print("measured TUH share of the pretraining draws:", shares)
