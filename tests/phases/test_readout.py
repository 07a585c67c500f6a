"""readout=refit: the last head layer refitted in closed form, kept only when it beats the trained one."""

import numpy as np
import torch
from torch import nn

from eegphase.models.heads import ClassificationHead, RegressionHead
from eegphase.models.predictor import Predictor
from eegphase.phases.readout import head_inputs, refit_readout


def _batches(x: np.ndarray, y: np.ndarray, size: int = 64) -> list[dict[str, torch.Tensor]]:
    return [
        {"x": torch.as_tensor(x[i : i + size]), "y": torch.as_tensor(y[i : i + size, None])}
        for i in range(0, len(x), size)
    ]


def _model(head: nn.Module, n_in: int = 12, width: int = 8) -> Predictor:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(n_in, width), nn.Tanh())
    encoder.embed_dim = width
    model = Predictor(encoder, head)
    nn.init.zeros_(model.head.net[-1].weight)  # the trained head at the trivial predictor
    nn.init.zeros_(model.head.net[-1].bias)
    return model


def _features(model: Predictor, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.encoder(torch.as_tensor(x)).numpy()


def test_regression_refit_reads_out_what_the_features_carry_and_the_model_predicts_with_it():
    rng = np.random.default_rng(0)
    model = _model(RegressionHead(8))
    x = rng.standard_normal((900, 3, 4)).astype(np.float32)
    w = rng.standard_normal(8)
    y = (_features(model, x) @ w + 0.05 * rng.standard_normal(900)).astype(np.float32)
    model.train()
    model.head(model.encoder(torch.as_tensor(x[:600])))  # running statistics of the head's standardiser
    readout = refit_readout(
        model,
        "regression",
        "t",
        _batches(x[:600], y[:600]),
        _batches(x[600:750], y[600:750]),
        1,
        torch.device("cpu"),
    )
    scores, kept = readout.scores, readout.kept
    assert kept and scores["readout_refit_kept_t"] == 1.0
    assert scores["val_nrmse_t_trained_head"] > 0.99  # zero weights: the mean
    assert scores["val_nrmse_t_refit_head"] < 0.2
    model.eval()
    with torch.no_grad():
        held_out = model(torch.as_tensor(x[750:])).squeeze(-1).numpy()
    rmse = np.sqrt(np.mean((held_out - y[750:]) ** 2)) / y[750:].std()
    assert rmse < 0.2  # the model itself now predicts with the refitted layer
    with torch.no_grad():
        val_pred = model(torch.as_tensor(x[600:750])).numpy()
    # the validation outputs handed back (scoring reuses them) are the refitted model's, to float32 rounding
    np.testing.assert_allclose(readout.val_outputs, val_pred, rtol=1e-4, atol=1e-5)


def test_classification_refit_is_kept_only_when_it_scores_better_on_validation():
    rng = np.random.default_rng(1)
    model = _model(ClassificationHead(8, 2))
    x = rng.standard_normal((800, 3, 4)).astype(np.float32)
    y = (_features(model, x)[:, 0] > np.median(_features(model, x)[:, 0])).astype(np.float32)
    model.train()
    model.head(model.encoder(torch.as_tensor(x[:600])))
    train, val = _batches(x[:600], y[:600]), _batches(x[600:], y[600:])
    readout = refit_readout(model, "classification", "c", train, val, 2, torch.device("cpu"))
    scores, kept = readout.scores, readout.kept
    assert kept and scores["val_balanced_accuracy_c_refit_head"] > 0.9
    assert scores["val_balanced_accuracy_c_trained_head"] == 0.5  # equal logits: one class
    weights = model.head.net[-1].weight.detach().clone()
    # now the layer is the refitted one: a second refit cannot beat it, so it is left as it is
    readout = refit_readout(model, "classification", "c", train, val, 2, torch.device("cpu"))
    assert not readout.kept and readout.scores["readout_refit_kept_c"] == 0.0
    with torch.no_grad():
        kept_outputs = model(torch.as_tensor(x[600:])).numpy()
    np.testing.assert_allclose(readout.val_outputs, kept_outputs, rtol=1e-4, atol=1e-5)  # the trained layer's

    assert torch.equal(model.head.net[-1].weight, weights)


def test_a_probe_keeps_the_refit_even_where_the_layer_it_replaces_scores_better():
    """``always`` (fine-tuning with no epoch: nothing trained competes): the refit is the probe, kept as it is
    even where the layer in place scores better on validation (here: least squares on the validation windows)."""
    rng = np.random.default_rng(2)
    model = _model(RegressionHead(8))
    x = rng.standard_normal((700, 3, 4)).astype(np.float32)
    y = (_features(model, x) @ rng.standard_normal(8) + rng.standard_normal(700)).astype(np.float32)
    model.train()
    model.head(model.encoder(torch.as_tensor(x[:500])))
    train, val = _batches(x[:500], y[:500]), _batches(x[500:], y[500:])
    features, _ = head_inputs(model, val, torch.device("cpu"))
    design = np.c_[features, np.ones(len(features))]
    oracle = np.linalg.lstsq(design, y[500:], rcond=None)[0]  # the best linear layer on validation itself
    with torch.no_grad():
        model.head.net[-1].weight.copy_(torch.as_tensor(oracle[None, :-1]))
        model.head.net[-1].bias.fill_(float(oracle[-1]))
    chosen = refit_readout(model, "regression", "t", train, val, 1, torch.device("cpu"))
    assert not chosen.kept  # selecting: the layer in place scores better on validation
    probe = refit_readout(model, "regression", "t", train, val, 1, torch.device("cpu"), always=True)
    assert probe.kept and probe.scores["readout_refit_kept_t"] == 1.0
    assert probe.scores["val_nrmse_t_refit_head"] > probe.scores["val_nrmse_t_trained_head"]
    with torch.no_grad():
        outputs = model(torch.as_tensor(x[500:])).numpy()
    np.testing.assert_allclose(probe.val_outputs, outputs, rtol=1e-4, atol=1e-5)  # the model holds the refit
