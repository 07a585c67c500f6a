"""EEGNeX (Chen et al. 2024), following braindecode's layout: the challenge start kit's baseline.

Two temporal convs (8 then 32 filters, kernel 64), a depthwise spatial conv over all channels (depth
multiplier 2, max-norm 1.0), then two dilated temporal convs (kernel 16, dilation 2 and 4) with pooling.
``forward_features`` gives the flattened embedding; ``forward`` applies the max-norm (0.25) linear
layer when ``n_outputs`` is set (1 = the start kit's regression baseline), else returns the embedding.
"""

from __future__ import annotations

import torch
from torch import nn


class MaxNormConv2d(nn.Conv2d):
    """Conv2d whose per-output-filter weight norm is capped (renormalised in place before each use)."""

    def __init__(self, *args, max_norm: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_norm = max_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.weight.copy_(torch.renorm(self.weight, p=2, dim=0, maxnorm=self.max_norm))
        return super().forward(x)


class MaxNormLinear(nn.Linear):
    """Linear whose per-output-row weight norm is capped, as braindecode's LinearWithConstraint."""

    def __init__(self, *args, max_norm: float = 0.25, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_norm = max_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.weight.copy_(torch.renorm(self.weight, p=2, dim=0, maxnorm=self.max_norm))
        return super().forward(x)


class EEGNeX(nn.Module):
    """EEGNeX encoder/regressor: (B, n_chans, n_times) -> (B, n_outputs) or (B, embed_dim)."""

    def __init__(
        self,
        n_chans: int = 129,
        n_times: int = 200,
        n_outputs: int | None = 1,
        depth_multiplier: int = 2,
        filter_1: int = 8,
        filter_2: int = 32,
        kernel_temporal: int = 64,
        kernel_dilated: int = 16,
        dilation_4: int = 2,
        dilation_5: int = 4,
        pool_4: int = 4,
        pool_5: int = 8,
        drop_prob: float = 0.5,
        max_norm_conv: float = 1.0,
        max_norm_linear: float = 0.25,
    ):
        super().__init__()
        self.n_chans, self.n_times = n_chans, n_times
        filter_3 = filter_2 * depth_multiplier
        self.features = nn.Sequential(
            nn.Conv2d(1, filter_1, (1, kernel_temporal), padding="same", bias=False),
            nn.BatchNorm2d(filter_1),
            nn.Conv2d(filter_1, filter_2, (1, kernel_temporal), padding="same", bias=False),
            nn.BatchNorm2d(filter_2),
            MaxNormConv2d(
                filter_2, filter_3, (n_chans, 1), groups=filter_2, bias=False, max_norm=max_norm_conv
            ),
            nn.BatchNorm2d(filter_3),
            nn.ELU(),
            nn.AvgPool2d((1, pool_4), padding=(0, 1)),
            nn.Dropout(drop_prob),
            nn.Conv2d(
                filter_3, filter_2, (1, kernel_dilated), dilation=(1, dilation_4), padding="same", bias=False
            ),
            nn.BatchNorm2d(filter_2),
            nn.Conv2d(
                filter_2, filter_1, (1, kernel_dilated), dilation=(1, dilation_5), padding="same", bias=False
            ),
            nn.BatchNorm2d(filter_1),
            nn.ELU(),
            nn.AvgPool2d((1, pool_5), padding=(0, 1)),
            nn.Dropout(drop_prob),
            nn.Flatten(),
        )
        with torch.no_grad():
            self.embed_dim = self.features(torch.zeros(1, 1, n_chans, n_times)).shape[1]
        self.final_layer = (
            MaxNormLinear(self.embed_dim, n_outputs, max_norm=max_norm_linear) if n_outputs else None
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> flattened embedding (B, embed_dim); 48 for 129 x 200 input."""
        if x.dim() != 3 or x.shape[1:] != (self.n_chans, self.n_times):
            raise ValueError(f"EEGNeX expects (batch, {self.n_chans}, {self.n_times}), got {tuple(x.shape)}")
        return self.features(x.unsqueeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.forward_features(x)
        return z if self.final_layer is None else self.final_layer(z)
