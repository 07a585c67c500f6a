"""Weight-decay groups, layer-wise lr decay by block index, and timm's schedule honouring the lr scales."""

from __future__ import annotations

import pytest
import torch
from tiny_run import TinyNet

from eegphase.engine.optim import (
    OptimizerConfig,
    ScheduleConfig,
    block_layer_ids,
    build_optimizer,
    build_scheduler,
)


def test_block_rule_puts_embedding_first_and_head_last():
    ids = block_layer_ids(TinyNet(depth=3))
    assert ids["embed.weight"] == 0
    assert ids["blocks.0.0.weight"] == 1 and ids["blocks.2.0.bias"] == 3
    assert ids["norm.weight"] == ids["head.weight"] == 4


def test_layer_decay_scales_and_weight_decay_groups():
    model = TinyNet(depth=2)
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-3, weight_decay=0.1, layer_decay=0.5))
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())

    def group(name):
        return by_param[id(named[name])]

    assert group("embed.weight")["lr_scale"] == pytest.approx(0.125)
    assert group("blocks.1.0.weight")["lr_scale"] == pytest.approx(0.5)
    assert group("head.weight")["lr_scale"] == 1.0
    assert group("embed.weight")["weight_decay"] == 0.1 and group("embed.bias")["weight_decay"] == 0.0
    assert group("norm.weight")["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(named)

    schedule = ScheduleConfig(warmup_epochs=1, warmup_lr_init=0.0, min_lr=0.0)
    scheduler = build_scheduler(optimizer, schedule, updates_per_epoch=4, epochs=3)
    scheduler.step_update(2)  # half way through warmup
    assert group("head.weight")["lr"] == pytest.approx(5e-4)
    assert group("embed.weight")["lr"] == pytest.approx(5e-4 * 0.125)
    scheduler.step_update(12)  # end of the cosine
    assert group("head.weight")["lr"] == pytest.approx(0.0, abs=1e-12)


def test_layer_decay_needs_blocks():
    with pytest.raises(ValueError, match="Sequential has none"):
        build_optimizer(torch.nn.Sequential(torch.nn.Linear(2, 2)), OptimizerConfig(layer_decay=0.7))


def test_frozen_parameters_stay_in_the_optimizer_for_later_unfreezing():
    model = TinyNet()
    model.embed.requires_grad_(False)
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-2))
    x = torch.randn(4, 8)

    def step():
        optimizer.zero_grad(set_to_none=True)
        model(x).pow(2).mean().backward()
        optimizer.step()

    before = model.embed.weight.detach().clone()
    step()
    assert torch.equal(before, model.embed.weight)
    model.embed.requires_grad_(True)
    step()
    assert not torch.equal(before, model.embed.weight)


def test_a_labram_pooling_trains_at_the_heads_rate_and_the_tokens_at_layer_zero():
    """named_parameters() lists the encoder's own parameters (cls/mask tokens, electrode pooling) before its
    blocks; the pooling acts after them and must get the head's rate (it got 0.65 ** (depth + 1))."""
    from eegphase.models.predictor import build_predictor

    cfg = {"name": "labram_tiny", "encoder": {"_target_": "eegphase.models.labram.LaBraM", "embed_dim": 16,
           "depth": 2, "num_heads": 2, "pooling": "electrode", "n_chans": 4}}  # fmt: skip
    model = build_predictor(cfg)
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-3, layer_decay=0.5))
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    scale = {name: by_param[id(param)]["lr_scale"] for name, param in named.items()}
    assert scale["encoder.pool_weights"] == 1.0 == scale["encoder.norm.weight"]
    assert scale["encoder.cls_token"] == scale["encoder.mask_token"] == pytest.approx(0.5**3)
    assert scale["encoder.patch_embed.conv1.linear.weight"] == pytest.approx(0.5**3)
    assert scale["encoder.blocks.1.mlp.fc1.weight"] == pytest.approx(0.5)
