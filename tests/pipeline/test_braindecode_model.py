"""A braindecode model that eegphase does not ship trains through the real CLI from a config file alone."""

from __future__ import annotations

import textwrap

import pytest
import torch

from cli_helpers import run_cli

from .conftest import runs

# What a researcher writes into a config folder of their own: conf/model/braindecode.yaml's recipe.
SHALLOW = textwrap.dedent(
    """
    defaults: [braindecode]
    name: shallow
    encoder: {model_class: ShallowFBCSPNet, n_filters_time: 20}
    """
)


@pytest.mark.slow  # a CLI pipeline (fine-tuning on both challenges): about a minute on 2 busy cores
def test_shallow_fbcsp_trains_through_the_baseline_from_a_users_config_file(tiny_hbn, tmp_path):
    configs = tmp_path / "configs"
    (configs / "model").mkdir(parents=True)
    (configs / "model" / "shallow.yaml").write_text(SHALLOW)

    run_cli(tmp_path, "+pipeline=baseline", "model=shallow", f"hydra.searchpath=[file://{configs}]",
            data_root=tiny_hbn)  # fmt: skip

    frame = runs(tmp_path)
    parent = frame[frame["tags.eegphase.phase"] == "pipeline"].iloc[0]
    assert parent["status"] == "FINISHED" and parent["tags.eegphase.pipeline"] == "baseline"
    for metric in ("test_nrmse_c1", "test_nrmse_c2", "test_score"):
        assert 0.0 < parent[f"metrics.{metric}"] < 10.0
    finetune = frame[frame["tags.eegphase.phase"] == "finetune"].iloc[0]
    assert finetune["params.model.name"] == "shallow"
    assert finetune["params.model.encoder._target_"] == "eegphase.models.braindecode.BraindecodeEncoder"
    # the fine-tuned checkpoints hold ShallowFBCSPNet with the file's 20 temporal filters, under a fresh head
    checkpoints = sorted((tmp_path / "outputs" / "smoke-phases").rglob("best.pt"))
    assert checkpoints
    for path in checkpoints:
        state = torch.load(path, map_location="cpu", weights_only=True)["model"]
        assert state["encoder.model.conv_time_spat.conv_time.weight"].shape[0] == 20, path
        assert not any(key.startswith("encoder.model.final_layer") for key in state), path
