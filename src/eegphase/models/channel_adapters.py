"""Channel adapters: bring a recording with any montage onto the fixed 129-channel HydroCel layout.

- ``ZeroPadChannelMap``: put the C_in channels at their HydroCel indices, zeros elsewhere, plus a
  (B, 129) bool mask of which channels are real. 10-20 names go to the nearest HydroCel electrode.
- ``PerceiverChannelAdapter``: cross-attention from ``n_latent`` learned queries onto per-channel tokens
  (signal projection + 3-D position code): any C_in -> (B, n_latent, T).
- ``AdaptedEncoder``: an encoder behind a learned adapter (``model.channel_adapter=perceiver``); with
  ``zero_pad`` the datasets already place every recording on the layout and the encoder is used bare.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from eegphase.models import electrodes
from eegphase.models.signal_jepa import sinusoidal
from eegphase.models.transformer import attention, init_transformer_weights


def hydrocel_indices(names: Sequence[str]) -> torch.Tensor:
    """HydroCel-129 index of each name; non-HydroCel names go to the nearest HydroCel electrode in 3-D."""
    idx = electrodes.electrode_index(names)
    outside = idx >= electrodes.N_HYDROCEL
    if outside.any():
        hydrocel_pos = electrodes.electrode_positions(torch.arange(electrodes.N_HYDROCEL))
        dist = torch.cdist(electrodes.electrode_positions(idx[outside]), hydrocel_pos)
        idx[outside] = dist.argmin(dim=1)
    if len(set(idx.tolist())) != len(idx):
        dupes = [n for n, i in zip(names, idx.tolist(), strict=True) if idx.tolist().count(i) > 1]
        raise ValueError(f"channels {dupes} map onto the same HydroCel electrode")
    return idx


class ZeroPadChannelMap(nn.Module):
    """(B, C_in, T) + target indices (C_in,) -> ((B, n_out, T) zero-padded, channel mask (B, n_out) bool)."""

    def __init__(self, n_out: int = electrodes.N_HYDROCEL):
        super().__init__()
        self.n_out = n_out

    def forward(self, x: torch.Tensor, target_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, t = x.shape
        target_idx = target_idx.to(x.device, torch.long)
        if target_idx.shape != (c,):
            raise ValueError(f"target_idx must have shape ({c},), got {tuple(target_idx.shape)}")
        if int(target_idx.min()) < 0 or int(target_idx.max()) >= self.n_out:
            raise ValueError(f"target_idx values must lie in [0, {self.n_out}), got {target_idx.tolist()}")
        out = x.new_zeros(b, self.n_out, t).index_copy_(1, target_idx, x)
        mask = torch.zeros(b, self.n_out, dtype=torch.bool, device=x.device)
        mask[:, target_idx] = True
        return out, mask


class PerceiverChannelAdapter(nn.Module):
    """Cross-attention from ``n_latent`` learned latent channels onto any set of input channels.

    ``forward(x (B, C_in, T), ch_idx (C_in,) or (B, C_in), channel_mask (B, C_in) bool | None)``
    -> (B, n_latent, T), a virtual montage any fixed-channel encoder can take.
    """

    def __init__(self, n_times: int = 200, n_latent: int = 129, dim: int = 128, num_heads: int = 4):
        super().__init__()
        self.num_heads = num_heads
        self.signal_proj = nn.Linear(n_times, dim)
        self.pos_proj = nn.Linear(3 * 16, dim)
        self.latents = nn.Parameter(torch.randn(n_latent, dim) * 0.02)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.to_signal = nn.Linear(dim, n_times)
        self.apply(init_transformer_weights)
        pos = electrodes.electrode_positions() * 100.0
        self.register_buffer(
            "position_code", torch.cat([sinusoidal(pos[:, i], 16, 100.0) for i in range(3)], -1)
        )

    def forward(
        self, x: torch.Tensor, ch_idx: torch.Tensor, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, c, _ = x.shape
        ch_idx = ch_idx.to(x.device, torch.long).expand(b, c)
        tokens = self.signal_proj(x) + self.pos_proj(self.position_code[ch_idx].to(x.dtype))
        k, v = self.kv(self.norm_kv(tokens)).chunk(2, dim=-1)
        q = self.q(self.latents).expand(b, -1, -1)
        heads = lambda t: t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # noqa: E731
        attn_mask = None if channel_mask is None else channel_mask[:, None, None, :]
        h = attention(heads(q), heads(k), heads(v), attn_mask=attn_mask)
        latent = self.latents + self.out(h.transpose(1, 2).flatten(2))
        latent = latent + self.mlp(self.norm_mlp(latent))
        return self.to_signal(latent)


class AdaptedEncoder(nn.Module):
    """``encoder(adapter(x))`` for x (B, C, T) on the HydroCel layout; the encoder sees the adapter's latent
    channels. ``channel_mask`` (B, C) bool (True = real channel) keeps the adapter off zero-padded channels.
    """

    def __init__(self, adapter: nn.Module, encoder: nn.Module, n_chans: int = electrodes.N_HYDROCEL):
        super().__init__()
        self.adapter = adapter
        self.encoder = encoder
        self.embed_dim = encoder.embed_dim
        self.register_buffer("ch_idx", torch.arange(n_chans), persistent=False)

    @property
    def mask_token(self) -> nn.Parameter | None:
        """The encoder's mask token, so that phases that never mask can freeze it as usual."""
        return getattr(self.encoder, "mask_token", None)

    def adapt(self, x: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.adapter(x, self.ch_idx[: x.shape[1]], channel_mask)

    def forward(self, x: torch.Tensor, *args, channel_mask: torch.Tensor | None = None, **kwargs):
        return self.encoder(self.adapt(x, channel_mask), *args, **kwargs)


def adapter_kwargs(encoder: nn.Module, channel_mask: torch.Tensor | None) -> dict:
    """An encoder behind a learned channel adapter takes the channel mask; a bare one has no use for it."""
    return {"channel_mask": channel_mask} if isinstance(encoder, AdaptedEncoder) else {}
