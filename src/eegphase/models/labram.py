"""LaBraM (Jiang et al., ICLR 2024): a transformer over 1 s single-channel EEG patches.

Input (B, C, T) is cut into P = T / patch_size patches per channel; tokens are ordered channel-major
(token c * P + p is channel c, patch p). Each token = temporal-conv patch embedding + spatial embedding
of its electrode (an index into :mod:`eegphase.models.electrodes`) + temporal embedding of its patch.

The patch embedding normalises each window as a whole (LaBraM's TemporalConv: statistics per sample over all
of its patches, zero-padded channels left out), so relative amplitude across channels and time reaches the
transformer; ``patch_norm="patch"`` is this project's earlier per-patch normalisation.

API used by the objectives:
- ``forward(x, ch_idx=None, mask=None, return_all_tokens=False, views=1, channel_mask=None)``: pooled embedding
  (B, D), or the normalised patch tokens (B, C*P, D) when ``return_all_tokens``; ``views`` > 1 runs that many
  stacked copies of ``x`` (one ``mask`` row each) at the cost of one patch embedding.
- ``mask`` (B, C*P) bool, True = masked: those patch embeddings are replaced by a learned mask token
  before the transformer (masked EEG modelling); feed the tokens to ``heads.CodePredictionHead``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from eegphase.models import electrodes
from eegphase.models.embedding import gather_rows
from eegphase.models.transformer import Block, init_transformer_weights, rescale_residual_projections

PATCH_NORMS = ("sample", "patch")


class ChannelsLastGroupNorm(nn.Module):
    """GroupNorm for channels-last (S, R, T, C) activations: statistics per sample ``S`` and group, over its
    ``R`` rows (patches), their ``T`` steps and the group's channels; the conv stack never transposes.

    ``row_weights`` (S, R), 1 = counted, 0 = left out of the statistics (the patches of zero-padded channels);
    every row is normalised with its sample's statistics either way.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5):
        super().__init__()
        self.num_groups, self.eps = num_groups, eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor, row_weights: torch.Tensor | None = None) -> torch.Tensor:
        s, r, t, c = x.shape
        grouped = x.view(s, r, t, self.num_groups, c // self.num_groups).float()
        if row_weights is None:
            var, mean = torch.var_mean(grouped, dim=(1, 2, 4), keepdim=True, unbiased=False)
        else:
            w = row_weights.float().view(s, r, 1, 1, 1)
            count = w.sum(1, keepdim=True) * (t * (c // self.num_groups))
            mean = (grouped * w).sum(dim=(1, 2, 4), keepdim=True) / count
            var = ((grouped - mean).square() * w).sum(dim=(1, 2, 4), keepdim=True) / count
        normed = ((grouped - mean) * torch.rsqrt(var + self.eps)).view(s, r, t, c).to(x.dtype)
        return torch.addcmul(self.bias.to(x.dtype), normed, self.weight.to(x.dtype))


class UnfoldConv1d(nn.Module):
    """A 1-D convolution on channels-last (..., T, C_in) input as one unfold + one GEMM.

    Same maths and FLOPs as ``nn.Conv1d`` (weight kept as (out, in * kernel)), but a single large
    GEMM instead of a convolution over millions of tiny (1 x 100) signals.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.linear = nn.Linear(in_channels * kernel_size, out_channels)

    def output_length(self, length: int) -> int:
        return (length + 2 * self.padding - self.kernel_size) // self.stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, self.padding, self.padding))  # pad the time axis of (..., T, C)
        windows = x.unfold(-2, self.kernel_size, self.stride)  # (..., T_out, C_in, kernel)
        return self.linear(windows.flatten(-2))


def real_channels(patches: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, P, n) patches -> (B, C) bool, True = a channel the patch statistics count.

    A channel that is zero throughout the window is padding (``ZeroPadChannelMap``, the datasets' HydroCel
    layout): read from the input, so that every phase (fine-tuning, the readout, the exported model, the
    tokenizer's targets: none of them is handed the mask) computes the function pretraining computes.
    ``channel_mask`` (B, C), when given, can only leave more out. A window with no such channel counts all.
    """
    real = patches.flatten(2).ne(0).any(-1)
    if channel_mask is not None:
        real = real & channel_mask.to(real.device, torch.bool)
    return real | ~real.any(1, keepdim=True)


class TemporalConvPatchEmbed(nn.Module):
    """LaBraM's temporal conv: Conv 1->8 (k15, s8, p7) + GroupNorm(4) + GELU, then two (k3) conv blocks.

    ``norm="sample"`` (LaBraM's ``TemporalConv``, which convolves (B, 1, C*P, patch) images): each GroupNorm
    takes its statistics per sample over all of its patches (channels x patches x time), the zero-padded
    channels left out (:func:`real_channels`), so the relative amplitude of channels and patches (band power,
    topography: what EEG targets rest on) reaches the transformer. ``"patch"``: statistics per patch (this
    project's embedding before, kept so that its checkpoints compute what they were trained to): every patch's
    own amplitude is normalised away.

    The (T_out * 8) features are projected to ``embed_dim`` when they differ (104 -> 200 for
    100-sample patches; the paper's 200-sample patches give exactly 200 and need no projection).

    ``spectrum``: add a linear map of the patch's log amplitude spectrum (Hann-tapered FFT) to the embedding,
    as BIOT tokenises EEG. Why: the conv features are normalised (per sample, or per patch with
    ``norm="patch"``), so the absolute band power of a window reaches the transformer only through what the
    convs learn, and with ``norm="patch"`` not even its relative power across channels; a LaBraM trained from
    scratch (per-patch norm) on the synthetic challenge data in a few hundred steps then stayed at the mean
    (response time: validation r 0.0 without, 0.45 with, after 300 steps). What reaches the features before any
    training (an untrained ``labram_tiny`` (mean pooling), frozen, logistic regression on Mumtaz eyes closed vs
    open, 1200 windows of 20 subjects, 5 folds by subject, 3 seeds): balanced accuracy 0.548 per patch, 0.605
    per sample, 0.661 / 0.665 with the spectrum.
    """

    def __init__(
        self,
        patch_size: int,
        embed_dim: int,
        conv_channels: int = 8,
        groups: int = 4,
        spectrum: bool = False,
        norm: str = "sample",
    ):
        super().__init__()
        if norm not in PATCH_NORMS:
            raise ValueError(f"patch_norm must be one of {PATCH_NORMS}, got {norm!r}")
        self.patch_size, self.norm = patch_size, norm
        self.conv1 = UnfoldConv1d(1, conv_channels, kernel_size=15, stride=8, padding=7)
        self.norm1 = ChannelsLastGroupNorm(groups, conv_channels)
        self.conv2 = UnfoldConv1d(conv_channels, conv_channels, kernel_size=3, stride=1, padding=1)
        self.norm2 = ChannelsLastGroupNorm(groups, conv_channels)
        self.conv3 = UnfoldConv1d(conv_channels, conv_channels, kernel_size=3, stride=1, padding=1)
        self.norm3 = ChannelsLastGroupNorm(groups, conv_channels)
        n_features = self.conv1.output_length(patch_size) * conv_channels
        self.proj = nn.Linear(n_features, embed_dim) if n_features != embed_dim else nn.Identity()
        self.spectrum = nn.Linear(patch_size // 2 + 1, embed_dim) if spectrum else None
        if spectrum:
            self.register_buffer("taper", torch.hann_window(patch_size), persistent=False)

    def forward(self, patches: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        """patches (B, C, P, patch_size) -> (B, C, P, embed_dim); ``channel_mask`` (B, C) bool, True = real."""
        b, c, p, _ = patches.shape
        if self.norm == "sample":
            x = patches.reshape(b, c * p, self.patch_size, 1)
            weights = real_channels(patches, channel_mask).repeat_interleave(p, 1)  # (B, C*P)
        else:  # one "sample" per patch
            x, weights = patches.reshape(b * c * p, 1, self.patch_size, 1), None
        x = F.gelu(self.norm1(self.conv1(x), weights))
        x = F.gelu(self.norm2(self.conv2(x), weights))
        x = F.gelu(self.norm3(self.conv3(x), weights))
        embedded = self.proj(x.flatten(-2)).view(b, c, p, -1)
        if self.spectrum is None:
            return embedded
        return embedded + self.spectrum(log_amplitude(patches, self.taper).to(embedded.dtype))


def log_amplitude(patches: torch.Tensor, taper: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """(..., n) -> (..., n // 2 + 1) log amplitude spectrum of each tapered patch, in float32 (FFTs under
    bf16 lose the small bands); ``floor`` keeps zero (padded) channels finite."""
    spectrum = torch.fft.rfft(patches.float() * taper, dim=-1)
    return torch.log(spectrum.abs() + floor)


class SpatioTemporalEmbedding(nn.Module):
    """Learned electrode (spatial) and patch-position (temporal) embeddings; index 0 of each is the cls's."""

    def __init__(self, dim: int, n_electrodes: int, max_time_patches: int):
        super().__init__()
        self.max_time_patches = max_time_patches
        self.spatial = nn.Parameter(torch.zeros(n_electrodes + 1, dim))
        self.temporal = nn.Parameter(torch.zeros(max_time_patches + 1, dim))
        trunc_normal_(self.spatial, std=0.02)
        trunc_normal_(self.temporal, std=0.02)

    def forward(self, ch_idx: torch.Tensor, n_patches: int) -> tuple[torch.Tensor, torch.Tensor]:
        """ch_idx (B, C) -> (patch addend (B, C*P, D), cls addend (1, 1, D))."""
        if n_patches > self.max_time_patches:
            raise ValueError(
                f"{n_patches} patches per channel exceed max_time_patches={self.max_time_patches}"
            )
        if not torch.compiler.is_compiling() and int(ch_idx.max()) >= self.spatial.shape[0] - 1:
            raise ValueError(f"ch_idx holds {int(ch_idx.max())}, the table has {self.spatial.shape[0] - 1}")
        spatial = gather_rows(self.spatial, ch_idx + 1)  # (B, C, D)
        temporal = self.temporal[1 : n_patches + 1]  # (P, D)
        patch = (spatial.unsqueeze(2) + temporal).flatten(1, 2)
        return patch, (self.spatial[0] + self.temporal[0]).view(1, 1, -1)


def resolve_ch_idx(
    ch_idx: torch.Tensor | None, batch: int, n_chans: int, device: torch.device
) -> torch.Tensor:
    """(C,) or (B, C) electrode indices -> (B, C); None means the HydroCel order arange(C)."""
    if ch_idx is None:
        ch_idx = torch.arange(n_chans, device=device)
    ch_idx = ch_idx.to(device=device, dtype=torch.long)
    if ch_idx.shape[-1] != n_chans:
        raise ValueError(f"ch_idx has {ch_idx.shape[-1]} entries but the input has {n_chans} channels")
    return ch_idx.expand(batch, n_chans)


POOLINGS = ("mean", "cls", "electrode")
FINAL_NORMS = ("tokens", "pooled")


class LaBraM(nn.Module):
    """LaBraM encoder. Sizes: see ``registry.LABRAM_SIZES`` (base 200/12/10 ~5.8M params).

    ``pooling``: ``mean`` of the patch tokens (the paper's), the ``cls`` token, or ``electrode``: each channel's
    tokens averaged over time, then summed over channels with a learned weight per electrode and feature. Why
    ``electrode``: targets that rest on where in the montage a band's power changes (frontal theta up, central
    beta down) are contrasts between channels, which a plain mean erases; a linear model on per-channel band
    power reads them. On the synthetic challenge-2 data after 150 steps, a ridge readout of the model's
    features scored validation NRMSE 0.931 with it (test 0.939).

    ``final_norm``: the last LayerNorm on every token before pooling (``tokens``, BEiT's pretraining model), or
    on the pooled embedding (``pooled``: LaBraM's fine-tuning model with mean pooling, braindecode's
    ``fc_norm``); tokens returned with ``return_all_tokens`` are normalised one by one either way.
    ``qkv_bias``: ``"qv"`` for query and value biases only (LaBraM/BEiT; the key's stays zero), True for all
    three. ``patch_norm``, ``conv_channels`` (8; the paper's large and huge: 16, 32): see
    :class:`TemporalConvPatchEmbed`. With ``pooling="mean"``, ``final_norm="pooled"``,
    ``qkv_bias="qv"``, ``patch_norm="sample"``, no patch spectrum and 200-sample patches this is the function of
    ``braindecode.models.Labram`` (:mod:`eegphase.models.labram_braindecode` moves the weights across).
    """

    # parameters acting after the blocks (the electrode pooling): see engine.optim.head_side_parameter_names
    head_parameter_names = ("pool_weights",)

    def __init__(
        self,
        n_chans: int = 129,
        n_times: int = 200,
        patch_size: int = 100,
        embed_dim: int = 200,
        depth: int = 12,
        num_heads: int = 10,
        mlp_ratio: float = 4.0,
        qkv_bias: bool | str = False,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        init_values: float | None = 0.1,
        max_time_patches: int = 16,
        n_electrodes: int | None = None,
        pooling: str = "mean",
        patch_spectrum: bool = False,
        patch_norm: str = "sample",
        final_norm: str = "tokens",
        conv_channels: int = 8,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if final_norm not in FINAL_NORMS:
            raise ValueError(f"final_norm must be one of {FINAL_NORMS}, got {final_norm!r}")
        self.n_chans, self.n_times, self.patch_size = n_chans, n_times, patch_size
        self.embed_dim, self.pooling, self.final_norm = embed_dim, pooling, final_norm
        self.patch_embed = TemporalConvPatchEmbed(
            patch_size, embed_dim, conv_channels, spectrum=patch_spectrum, norm=patch_norm
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = SpatioTemporalEmbedding(
            embed_dim, n_electrodes or electrodes.n_electrodes(), max_time_patches
        )
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, True, drop_rate, attn_drop_rate, r, init_values)
            for r in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        # pooling="electrode": a weight per electrode and feature; 1/n_chans makes the start a plain mean, and
        # keeps AdamW's steps (about lr each) large next to the weights, so spatial contrasts are learned in
        # the few hundred steps a fine-tuning run has. Declared head-side (head_parameter_names): the head's lr
        # under layer decay, and trained with the head when the encoder is frozen.
        self.pool_weights = (
            nn.Parameter(torch.full((n_electrodes or electrodes.n_electrodes(), embed_dim), 1.0 / n_chans))
            if pooling == "electrode"
            else None
        )
        self.apply(init_transformer_weights)
        trunc_normal_(self.cls_token, std=0.02)
        trunc_normal_(self.mask_token, std=0.02)
        rescale_residual_projections(self.blocks)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, P, patch_size); T must be a multiple of the patch size."""
        b, c, t = x.shape
        if t % self.patch_size:
            raise ValueError(f"n_times={t} is not a multiple of patch_size={self.patch_size}")
        return x.view(b, c, t // self.patch_size, self.patch_size)

    def encode(
        self,
        x: torch.Tensor,
        ch_idx: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        views: int = 1,
        channel_mask: torch.Tensor | None = None,
        normalise: bool = True,
    ) -> torch.Tensor:
        """All tokens (views * B, 1 + C*P, D), the cls token first, after the final norm unless ``normalise``
        is False. ``channel_mask`` (B, C) bool, True = real: see :func:`real_channels`.

        ``views``: the input stands for ``views`` stacked copies of itself (``x.repeat(views, 1, 1)``), each
        with its own rows of ``mask``, as masked modelling's symmetric views are. The patches are embedded
        once and the embeddings repeated: the same tokens and gradients as embedding the copies, at a
        ``views``-th of the patch embedding's cost.
        """
        if x.dim() != 3:
            raise ValueError(f"expected input (batch, channels, times), got shape {tuple(x.shape)}")
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        c = x.shape[1]
        patches = self.patchify(x)
        tokens = self.patch_embed(patches, channel_mask).flatten(1, 2)  # (B, C*P, D)
        if views > 1:  # repeat copies even for 1: only when there are views to share
            tokens = tokens.repeat(views, 1, 1)  # (views * B, C*P, D)
        b = tokens.shape[0]
        if mask is not None:
            if mask.shape != tokens.shape[:2]:
                raise ValueError(f"mask shape {tuple(mask.shape)} != tokens {tuple(tokens.shape[:2])}")
            tokens = torch.where(mask.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens)
        ch_idx = resolve_ch_idx(ch_idx, x.shape[0], c, x.device).repeat(views, 1)
        patch_pos, cls_pos = self.pos_embed(ch_idx, patches.shape[2])
        tokens = torch.cat(
            [(self.cls_token + cls_pos).expand(b, -1, -1).to(tokens.dtype), tokens + patch_pos], 1
        )
        tokens = self.pos_drop(tokens)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens) if normalise else tokens

    def forward(
        self,
        x: torch.Tensor,
        ch_idx: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        return_all_tokens: bool = False,
        views: int = 1,
        channel_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Embedding (B, D) (see ``pooling``), or patch tokens (B, C*P, D); ``views``, ``channel_mask``: see
        ``encode``."""
        pooled_norm = self.final_norm == "pooled" and not return_all_tokens
        tokens = self.encode(x, ch_idx, mask, views, channel_mask, normalise=not pooled_norm)
        if return_all_tokens:
            return tokens[:, 1:]
        if self.pooling == "cls":
            pooled = tokens[:, 0]
        elif self.pooling == "mean":
            pooled = tokens[:, 1:].mean(1)
        else:
            c = x.shape[1]
            per_channel = tokens[:, 1:].unflatten(1, (c, -1)).mean(2)  # (B, C, D): each channel over time
            weights = gather_rows(
                self.pool_weights, resolve_ch_idx(ch_idx, x.shape[0], c, x.device).repeat(views, 1)
            )
            pooled = (per_channel * weights.to(per_channel.dtype)).sum(1)
        return self.norm(pooled) if pooled_norm else pooled
