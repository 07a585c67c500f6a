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
