"""SignalJEPA (Guetschel et al. 2024): per-channel conv tokens, a transformer context encoder, and JEPA.

Each channel is turned into ~1 Hz tokens by a wav2vec-style conv stack (the default spec downsamples
by 64: 200 samples at 100 Hz -> 2 tokens per channel); a token gets the spatial embedding of its
electrode (initialised from the electrode's 3-D position) concatenated with a sinusoidal time code.

- ``SignalJEPA.forward(x, ch_idx=None, visible=None, return_all_tokens=False)``: (B, D) mean embedding or
  tokens (B, C*T', D); ``visible`` (B, N) bool hides the other tokens from attention (the JEPA context).
- ``SignalJEPAPretrainer.loss(x, ch_idx=None, channel_mask=None)``: the whole S-JEPA objective and the
  package's one JEPA loss (spatial block masking, EMA target encoder, predictor); call
  ``update_target()`` after each optimiser step.
- ``SignalJEPAPreLocal``: the downstream variant (learned spatial filters before the local encoder).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from eegphase.models import electrodes
from eegphase.models.embedding import gather_rows
from eegphase.models.labram import resolve_ch_idx
from eegphase.models.transformer import Block, init_transformer_weights

# (out_channels, kernel, stride): 100 Hz -> ~1.5 Hz token rate; receptive field ~0.8 s.
DEFAULT_CONV_SPEC: tuple[tuple[int, int, int], ...] = ((8, 32, 8), (16, 2, 2), (32, 2, 2), (64, 2, 2))


class ConvFeatureEncoder(nn.Module):
    """The local encoder: the same 1-D conv stack on every channel, (B, C, T) -> (B, C, T', dim)."""

    def __init__(self, conv_spec: Sequence[tuple[int, int, int]] = DEFAULT_CONV_SPEC, drop: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 1
        for i, (out_ch, kernel, stride) in enumerate(conv_spec):
            layers.append(nn.Conv1d(in_ch, out_ch, kernel, stride, bias=False))
            layers.append(nn.Dropout(drop))
            if i == 0:
                layers.append(nn.GroupNorm(out_ch, out_ch))
            layers.append(nn.GELU())
            in_ch = out_ch
        self.net = nn.Sequential(*layers)
        self.out_dim = in_ch

    def output_length(self, n_times: int) -> int:
        with torch.no_grad():
            return self.net(torch.zeros(1, 1, n_times)).shape[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        h = self.net(x.reshape(b * c, 1, t))  # (B*C, dim, T')
        return h.view(b, c, h.shape[1], h.shape[2]).transpose(2, 3)


def sinusoidal(positions: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal code of real positions (..., ) -> (..., dim)."""
    freqs = torch.exp(-math.log(max_period) * torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))
    angles = positions.float().unsqueeze(-1) * freqs.to(positions.device)
    code = torch.cat([angles.sin(), angles.cos()], -1)
    return F.pad(code, (0, dim - code.shape[-1]))


class ChannelTimeEmbedding(nn.Module):
    """[learned electrode embedding (from 3-D positions) | fixed sinusoidal time code] per token."""

    def __init__(self, spat_dim: int = 30, time_dim: int = 34):
        super().__init__()
        self.time_dim = time_dim
        pos = electrodes.electrode_positions() * 100.0  # centimetres, so the code varies across the head
        init = torch.stack([sinusoidal(pos[:, i], spat_dim // 3 + 1, 100.0) for i in range(3)], 1).flatten(1)
        self.spatial = nn.Parameter(init[:, :spat_dim].clone())

    @property
    def dim(self) -> int:
        return self.spatial.shape[1] + self.time_dim

    def forward(self, ch_idx: torch.Tensor, n_tokens_per_chan: int) -> torch.Tensor:
        """ch_idx (B, C) -> (B, C * T', dim), channel-major like the tokens."""
        b, c = ch_idx.shape
        spatial = gather_rows(self.spatial, ch_idx).unsqueeze(2).expand(b, c, n_tokens_per_chan, -1)
        time = sinusoidal(torch.arange(n_tokens_per_chan, device=ch_idx.device), self.time_dim)
        time = time.to(spatial.dtype).expand(b, c, -1, -1)
        return torch.cat([spatial, time], -1).flatten(1, 2)


class SignalJEPA(nn.Module):
    """Local conv encoder + position embedding + transformer context encoder (width 64, 8 x 8 heads)."""

    def __init__(
        self,
        conv_spec: Sequence[tuple[int, int, int]] = DEFAULT_CONV_SPEC,
        depth: int = 8,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        spat_dim: int = 30,
        drop: float = 0.0,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        self.feature_encoder = ConvFeatureEncoder(conv_spec, drop)
        if not 0 < spat_dim < self.feature_encoder.out_dim:
            raise ValueError(
                f"spat_dim={spat_dim} must lie in (0, {self.feature_encoder.out_dim}) (the token width)"
            )
        self.pos_embed = ChannelTimeEmbedding(spat_dim, self.feature_encoder.out_dim - spat_dim)
        self.embed_dim = dim = self.feature_encoder.out_dim
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, True, False, drop, 0.0, r) for r in rates
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks.apply(init_transformer_weights)

    def local_tokens(
        self, x: torch.Tensor, ch_idx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(local features (B, N, D), position embedding (B, N, D)), N = C * T'."""
        b, c, _ = x.shape
        h = self.feature_encoder(x)
        pos = self.pos_embed(resolve_ch_idx(ch_idx, b, c, x.device), h.shape[2])
        return h.flatten(1, 2), pos

    def contextualise(self, tokens: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        attn_mask = None if visible is None else visible[:, None, None, :]
        for block in self.blocks:
            tokens = block(tokens, attn_mask)
        return self.norm(tokens)

    def forward(
        self,
        x: torch.Tensor,
        ch_idx: torch.Tensor | None = None,
        visible: torch.Tensor | None = None,
        return_all_tokens: bool = False,
    ) -> torch.Tensor:
        local, pos = self.local_tokens(x, ch_idx)
        tokens = self.contextualise(local + pos.to(local.dtype), visible)
        if return_all_tokens:
            return tokens
        if visible is None:
            return tokens.mean(1)
        weights = visible.unsqueeze(-1).to(tokens.dtype)
        return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1)


def spatial_block_mask(
    ch_idx: torch.Tensor, n_tokens_per_chan: int, ratio: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """S-JEPA masking: per sample, the ``ratio * C`` electrodes nearest a random one, all their tokens.

    ch_idx (B, C) -> bool (B, C * T'), True = masked (hidden from the context encoder).
    """
    b, c = ch_idx.shape
    pos = electrodes.electrode_positions(ch_idx.flatten()).view(b, c, 3).to(ch_idx.device)
    centre = torch.randint(0, c, (b,), generator=generator, device=generator.device if generator else None)
    dist = (pos - pos[torch.arange(b), centre.to(ch_idx.device)].unsqueeze(1)).norm(dim=-1)
    n_masked = max(1, round(ratio * c))
    masked_ch = dist.argsort(dim=1).argsort(dim=1) < n_masked  # (B, C)
    return masked_ch.unsqueeze(-1).expand(b, c, n_tokens_per_chan).flatten(1)


class SignalJEPAPretrainer(nn.Module):
    """S-JEPA objective: the predictor regresses the EMA target encoder's tokens at masked positions."""

    def __init__(
        self,
        encoder: SignalJEPA,
        predictor_depth: int = 4,
        predictor_heads: int = 8,
        mask_ratio: float = 0.5,
        ema_momentum: float = 0.996,
    ):
        super().__init__()
        self.encoder, self.mask_ratio, self.ema_momentum = encoder, mask_ratio, ema_momentum
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        dim = encoder.embed_dim
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.predictor = nn.ModuleList(
            Block(dim, predictor_heads, qkv_bias=True, qk_norm=False) for _ in range(predictor_depth)
        )
        self.predictor_norm = nn.LayerNorm(dim, eps=1e-6)
        self.predictor_out = nn.Linear(dim, dim)
        self.predictor.apply(init_transformer_weights)

    def loss(
        self,
        x: torch.Tensor,
        ch_idx: torch.Tensor | None = None,
        generator=None,
        channel_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Smooth L1 between the predictions and the layer-normed target tokens at the masked tokens.

        ``channel_mask`` (B, C) bool, True = real channel: tokens of zero-padded channels are no targets.
        An encoder behind a learned channel adapter (``adapt``) sees the adapter's latent channels, which
        are all real (the adapter itself ignores the padded ones).
        """
        encoder, target_encoder = self.encoder, self.target_encoder
        if hasattr(encoder, "adapt"):  # AdaptedEncoder: adapt the input, then work on the inner encoder
            with torch.no_grad():
                target_input = target_encoder.adapt(x, channel_mask)
            x = encoder.adapt(x, channel_mask)
            encoder, target_encoder, channel_mask = encoder.encoder, target_encoder.encoder, None
        else:
            target_input = x
        b, c, _ = x.shape
        ch_idx = resolve_ch_idx(ch_idx, b, c, x.device)
        with torch.no_grad():
            target_encoder.eval()
            target = F.layer_norm(
                target_encoder(target_input, ch_idx, return_all_tokens=True).float(), (encoder.embed_dim,)
            )
        local, pos = encoder.local_tokens(x, ch_idx)
        per_channel = local.shape[1] // c
        masked = spatial_block_mask(ch_idx, per_channel, self.mask_ratio, generator)
        context = encoder.contextualise(local + pos.to(local.dtype), visible=~masked)
        h = torch.where(
            masked.unsqueeze(-1), self.mask_token.to(context.dtype) + pos.to(context.dtype), context
        )
        for block in self.predictor:
            h = block(h)
        prediction = self.predictor_out(self.predictor_norm(h))
        scored = masked
        if channel_mask is not None:
            scored = masked & channel_mask.bool().repeat_interleave(per_channel, dim=1)
        # mean over the scored tokens' elements; exactly 0 when a mask hides no real channel
        error = F.smooth_l1_loss(prediction.float(), target, reduction="none").mean(-1)
        weights = scored.to(error.dtype)
        return (error * weights).sum() / weights.sum().clamp_min(1)

    @torch.no_grad()
    def update_target(self, momentum: float | None = None) -> None:
        """EMA of the context encoder into the target encoder; call after every optimiser step."""
        m = self.ema_momentum if momentum is None else momentum
        for target, online in zip(self.target_encoder.parameters(), self.encoder.parameters(), strict=True):
            target.lerp_(online.detach(), 1 - m)


class SignalJEPAPreLocal(nn.Module):
    """Downstream S-JEPA: ``n_spat_filters`` learned spatial filters, then the (pretrainable) local encoder.

    Load pretrained weights into ``feature_encoder`` (same module name as in ``SignalJEPA``).
    ``forward`` gives (B, n_outputs) when ``n_outputs`` is set, else the flattened embedding.
    """

    def __init__(
        self,
        n_chans: int = 129,
        n_times: int = 200,
        n_outputs: int | None = 1,
        n_spat_filters: int = 4,
        conv_spec: Sequence[tuple[int, int, int]] = DEFAULT_CONV_SPEC,
        drop: float = 0.0,
    ):
        super().__init__()
        self.n_chans = n_chans
        self.spatial_conv = nn.Conv1d(n_chans, n_spat_filters, kernel_size=1)
        self.feature_encoder = ConvFeatureEncoder(conv_spec, drop)
        self.embed_dim = (
            n_spat_filters * self.feature_encoder.output_length(n_times) * self.feature_encoder.out_dim
        )
        self.final_layer = nn.Linear(self.embed_dim, n_outputs) if n_outputs else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.n_chans:
            raise ValueError(f"SignalJEPAPreLocal expects {self.n_chans} channels, got {x.shape[1]}")
        return self.feature_encoder(self.spatial_conv(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.forward_features(x)
        return z if self.final_layer is None else self.final_layer(z)
