"""LaBraM's neural tokenizer (VQ-NSP): patches -> discrete codes, trained to predict each patch's spectrum.

A LaBraM encoder gives one vector per patch; it is L2-normalised and snapped to the nearest of
``n_codes`` unit-norm codes (cosine similarity). The codebook is updated by exponential moving averages
(no gradient), and the encoder gets the straight-through gradient. A small transformer decoder
predicts, per patch, the Fourier amplitude and phase (each standardised over frequency), which forces
the codes to carry the patch's spectral content.

API: ``encode(x, ch_idx=None) -> codes (B, C*P)`` (targets for masked modelling);
``forward(x, ch_idx=None) -> TokenizerOutput`` with ``loss`` to minimise during tokenizer training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from eegphase.models import electrodes
from eegphase.models.labram import LaBraM, SpatioTemporalEmbedding, resolve_ch_idx
from eegphase.models.transformer import Block, init_transformer_weights


class EMACodebook(nn.Module):
    """Unit-norm codebook updated by EMA of the assigned (normalised) encoder outputs.

    Initialised from the first training batch (random encoder outputs), so few codes start dead.
    Under torch.distributed the per-code sums are all-reduced, so every rank keeps the same codebook.
    """

    def __init__(self, n_codes: int = 8192, code_dim: int = 64, decay: float = 0.99):
        super().__init__()
        self.n_codes, self.code_dim, self.decay = n_codes, code_dim, decay
        self.register_buffer("weight", F.normalize(torch.randn(n_codes, code_dim), dim=-1))
        self.register_buffer("embed_sum", self.weight.clone())
        self.register_buffer("cluster_size", torch.zeros(n_codes))
        self.register_buffer("initialised", torch.tensor(False))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Unit vectors (M, code_dim) -> code indices (M,) by maximum cosine similarity."""
        return (z @ self.weight.to(z.dtype).t()).argmax(dim=-1)

    @torch.no_grad()
    def init_from(self, z: torch.Tensor) -> None:
        picks = torch.randint(0, z.shape[0], (self.n_codes,), device=z.device)
        fresh = F.normalize(z[picks].float() + 0.01 * torch.randn_like(z[picks].float()), dim=-1)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(fresh, src=0)
        self.weight.copy_(fresh)
        self.embed_sum.copy_(fresh)
        self.initialised.fill_(True)

    @torch.no_grad()
    def update(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        """EMA step: per-code sums of the assigned vectors; unit-normalising makes counts unnecessary."""
        z = z.float()
        counts = torch.bincount(codes, minlength=self.n_codes).float()
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, z)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        self.weight.copy_(F.normalize(self.embed_sum, dim=-1))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (M, code_dim) unit vectors -> (straight-through quantised z, codes (M,), commitment loss)."""
        if self.training and not bool(self.initialised):
            self.init_from(z.detach())
        codes = self.nearest(z.detach())
        quantised = self.weight[codes].to(z.dtype)
        commitment = F.mse_loss(z.float(), quantised.float())
        if self.training:
            self.update(z.detach(), codes)
        return z + (quantised - z).detach(), codes, commitment


def standardise(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Zero mean, unit std over the last (frequency) axis."""
    return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps)


def spectral_targets(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised Fourier amplitude and phase of each patch, first patch_size // 2 bins (as LaBraM)."""
    spectrum = torch.fft.fft(patches.float(), dim=-1)[..., : patches.shape[-1] // 2]
    return standardise(spectrum.abs()), standardise(torch.angle(spectrum))


@dataclass
class TokenizerOutput:
    loss: torch.Tensor
    amplitude_loss: torch.Tensor
    phase_loss: torch.Tensor
    commitment_loss: torch.Tensor
    codes: torch.Tensor  # (B, C*P)


class NeuralTokenizer(nn.Module):
    """VQ-NSP tokenizer: LaBraM encoder -> EMA codebook -> transformer decoder -> amplitude + phase."""

    def __init__(
        self,
        n_chans: int = 129,
        n_times: int = 200,
        patch_size: int = 100,
        embed_dim: int = 200,
        depth: int = 12,
        num_heads: int = 10,
        decoder_depth: int = 3,
        code_dim: int = 64,
        n_codes: int = 8192,
        decay: float = 0.99,
        commitment_weight: float = 1.0,
        max_time_patches: int = 16,
    ):
        super().__init__()
        self.patch_size, self.commitment_weight = patch_size, commitment_weight
        self.embed_dim = embed_dim
        self.encoder = LaBraM(
            n_chans, n_times, patch_size, embed_dim, depth, num_heads, max_time_patches=max_time_patches
        )
        self.to_code = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.Tanh(), nn.Linear(embed_dim, code_dim)
        )
        self.codebook = EMACodebook(n_codes, code_dim, decay)
        self.from_code = nn.Linear(code_dim, embed_dim)
        self.decoder_pos = SpatioTemporalEmbedding(embed_dim, electrodes.n_electrodes(), max_time_patches)
        self.decoder = nn.ModuleList(
            Block(embed_dim, num_heads, init_values=0.1) for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        n_bins = patch_size // 2
        self.amplitude_head = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.Tanh(), nn.Linear(embed_dim, n_bins)
        )
        self.phase_head = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.Tanh(), nn.Linear(embed_dim, n_bins)
        )
        for module in (self.to_code, self.from_code, self.decoder, self.amplitude_head, self.phase_head):
            module.apply(init_transformer_weights)

    def quantise(
        self, x: torch.Tensor, ch_idx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens = self.encoder(x, ch_idx, return_all_tokens=True)  # (B, N, D)
        z = F.normalize(self.to_code(tokens).float(), dim=-1)
        quantised, codes, commitment = self.codebook(z.flatten(0, 1))
        return quantised.view_as(z), codes.view(z.shape[:2]), commitment

    @torch.no_grad()
    def encode(self, x: torch.Tensor, ch_idx: torch.Tensor | None = None) -> torch.Tensor:
        """Code indices (B, C*P), one per patch in LaBraM's channel-major token order."""
        tokens = self.encoder(x, ch_idx, return_all_tokens=True)
        z = F.normalize(self.to_code(tokens).float(), dim=-1)
        return self.codebook.nearest(z.flatten(0, 1)).view(z.shape[:2])

    def decode(
        self, quantised: torch.Tensor, ch_idx: torch.Tensor, n_patches: int
    ) -> tuple[torch.Tensor, ...]:
        h = self.from_code(quantised.to(self.from_code.weight.dtype))
        h = h + self.decoder_pos(ch_idx, n_patches)[0]
        for block in self.decoder:
            h = block(h)
        h = self.decoder_norm(h)
        return self.amplitude_head(h), self.phase_head(h)

    def forward(self, x: torch.Tensor, ch_idx: torch.Tensor | None = None) -> TokenizerOutput:
        b, c, _ = x.shape
        patches = self.encoder.patchify(x)  # (B, C, P, patch)
        quantised, codes, commitment = self.quantise(x, ch_idx)
        amplitude, phase = self.decode(quantised, resolve_ch_idx(ch_idx, b, c, x.device), patches.shape[2])
        amplitude_target, phase_target = spectral_targets(patches.flatten(1, 2))
        amplitude_loss = F.mse_loss(amplitude.float(), amplitude_target)
        phase_loss = F.mse_loss(phase.float(), phase_target)
        loss = amplitude_loss + phase_loss + self.commitment_weight * commitment
        return TokenizerOutput(loss, amplitude_loss, phase_loss, commitment, codes)
