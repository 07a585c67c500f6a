"""LaBraM's masked EEG modelling objective: predict the tokenizer's code index of each masked patch.

Half of the patches are masked and, with symmetric masking, the inverse mask is trained as a second view
of the same batch, so every patch is a prediction target once per step. The loss is the cross-entropy on
code indices at masked positions; masked accuracy is returned for logging.

The masks come from :mod:`eegphase.models.masking` (re-exported here as ``symmetric_masks``). The cheapest
way to run both views is one forward of the batch stacked twice with ``cat([mask, ~mask])``;
``models.heads.CodePredictionHead`` then returns logits gathered at the masked rows, which
:func:`split_stacked_logits` cuts back into the two views.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from eegphase.models.masking import random_patch_mask, symmetric_patch_masks

symmetric_masks = symmetric_patch_masks
__all__ = [
    "MaskedModelingResult",
    "code_entropy",
    "masked_code_loss",
    "random_patch_mask",
    "split_stacked_logits",
    "symmetric_masked_modeling_loss",
    "symmetric_masks",
    "trivial_code_predictor",
    "trivial_code_scores",
]


@dataclass
class MaskedModelingResult:
    """``loss`` to backpropagate; ``accuracy`` (detached) over the masked positions; per-view parts."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    n_masked: int
    view_losses: tuple[torch.Tensor, ...] = ()

    def log_dict(self, prefix: str = "mem/") -> dict[str, float]:
        out = {f"{prefix}loss": float(self.loss.detach()), f"{prefix}accuracy": float(self.accuracy)}
        out.update({f"{prefix}loss_view{i}": float(v) for i, v in enumerate(self.view_losses)})
        return out


def masked_code_loss(
    logits: torch.Tensor, target_codes: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and accuracy of code predictions at masked positions.

    With ``mask`` (B, N) bool and ``target_codes`` (B, N), ``logits`` is either (B, N, K) for every patch or
    (M, K) already gathered at the masked patches in row-major order (M = mask.sum()). Without ``mask``,
    ``logits`` (M, K) and ``target_codes`` (M,) are matched row by row.
    """
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be boolean, got {mask.dtype}")
        if mask.shape != target_codes.shape:
            raise ValueError(
                f"mask {tuple(mask.shape)} and codes {tuple(target_codes.shape)} differ in shape"
            )
        if logits.dim() == 3:
            if logits.shape[:2] != mask.shape:
                raise ValueError(f"logits {tuple(logits.shape)} do not match the mask {tuple(mask.shape)}")
            logits = logits[mask]
        target_codes = target_codes[mask]
    if logits.dim() != 2 or logits.shape[0] != target_codes.shape[0] or target_codes.dim() != 1:
        raise ValueError(
            f"expected logits (M, K) for M targets, got logits {tuple(logits.shape)} and "
            f"{tuple(target_codes.shape)} targets"
        )
    if target_codes.numel() == 0:
        raise ValueError("no masked positions: the mask selects nothing to predict")
    target_codes = target_codes.long()
    logits = logits.float()
    loss = F.cross_entropy(logits, target_codes)
    # A hit: the true code's logit is the row's maximum. amax, not argmax: CPU argmax is not vectorised and
    # took more time than any other op outside the model (a tie at the top, rare in float32, counts as a hit).
    scores = logits.detach()
    accuracy = (scores.gather(1, target_codes[:, None]).squeeze(1) >= scores.amax(dim=-1)).float().mean()
    return loss, accuracy


def split_stacked_logits(
    logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut the gathered logits of a stacked batch (masks ``cat([mask, ~mask])``) into the two views.

    ``valid`` (B, N) bool: the logits were gathered only where it is True (padded channels are no targets).
    ``torch.split``, not two slices: its backward is one concatenation, where each slice's backward writes
    its gradient into a zero-filled copy of the whole (rows x n_codes) logits, summed afterwards.
    """
    n_first = int(mask.sum() if valid is None else (mask & valid).sum())
    expected = mask.numel() if valid is None else int(valid.sum())
    if logits.shape[0] != expected:
        raise ValueError(
            f"stacked logits have {logits.shape[0]} rows, expected {expected} (every patch masked once)"
        )
    first, second = logits.split([n_first, logits.shape[0] - n_first])
    return first, second


def symmetric_masked_modeling_loss(
    logits_view: torch.Tensor,
    logits_inverse_view: torch.Tensor,
    target_codes: torch.Tensor,
    mask: torch.Tensor,
    valid: torch.Tensor | None = None,
) -> MaskedModelingResult:
    """LaBraM's symmetric objective: the mean of loss(view, mask) and loss(inverse view, ~mask).

    ``logits_view`` is the model's output when the patches in ``mask`` are hidden, ``logits_inverse_view``
    when those in ``~mask`` are; each is (B, N, K) or gathered at its masked rows (see masked_code_loss).
    The two losses are averaged (LaBraM's code sums them): the loss stays a per-patch cross-entropy,
    comparable with that of predicting the code frequencies (``trivial_code_loss``), and an auxiliary
    weight next to it means what it says. Accuracy counts every masked prediction of both views.
    ``valid`` (B, N) bool: only these positions are targets (the patches of real, not zero-padded, channels).
    """
    first, second = (mask, ~mask) if valid is None else (mask & valid, ~mask & valid)
    loss_a, acc_a = masked_code_loss(logits_view, target_codes, first)
    loss_b, acc_b = masked_code_loss(logits_inverse_view, target_codes, second)
    n_a = int(first.sum())
    n_b = int(second.sum())
    accuracy = (acc_a * n_a + acc_b * n_b) / (n_a + n_b)
    return MaskedModelingResult(
        loss=(loss_a + loss_b) / 2,
        accuracy=accuracy,
        n_masked=n_a + n_b,
        view_losses=(loss_a.detach(), loss_b.detach()),
    )


@torch.no_grad()
def trivial_code_predictor(counts: torch.Tensor, smoothing: float = 0.5) -> torch.Tensor:
    """Log-probabilities (n_codes,) of the codes from their ``counts`` (n_codes,) (as ``code_counts`` returns
    them; add-``smoothing`` counts): the context-free predictor that masked modelling must beat. Scored on the
    windows the counts came from, its loss is the codes' entropy (see ``code_entropy``) up to the smoothing."""
    if counts.dim() != 1:
        raise ValueError(f"expected code counts (n_codes,), got shape {tuple(counts.shape)}")
    if bool((counts < 0).any()):
        raise ValueError("code counts must not be negative")
    counts = counts.double() + smoothing
    return (counts / counts.sum()).log().float()


def code_entropy(counts: torch.Tensor) -> float:
    """Entropy in nats of the code distribution behind ``counts`` (ln of the codebook perplexity): the loss
    of the best context-free guess on those codes, the floor masked modelling must get below to have learned
    anything from context."""
    p = counts.double()[counts > 0] / counts.sum()
    if p.numel() == 0:
        raise ValueError("code counts are all zero: no windows were encoded")
    return float(-(p * p.log()).sum())


def trivial_code_scores(log_prior: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and accuracy on ``codes`` of the trivial predictor (always the most frequent code)."""
    codes = codes.flatten().long()
    return -log_prior[codes].mean(), (codes == log_prior.argmax()).float().mean()
