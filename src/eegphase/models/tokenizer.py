"""LaBraM's neural tokenizer (VQ-NSP): patches -> discrete codes, trained to predict each patch's spectrum.

A LaBraM encoder gives one vector per patch; it is L2-normalised and snapped to the nearest of
``n_codes`` unit-norm codes (cosine similarity). The codebook is updated by exponential moving averages
(no gradient), and the encoder gets the straight-through gradient. A small transformer decoder
predicts, per patch, the log Fourier amplitude (standardised per frequency over the batch) and phase, which
forces the codes to carry the patch's spectral content (see :func:`spectral_targets`).

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
    """Unit-norm codebook updated by an EMA towards each code's (normalised) cluster mean, as LaBraM does.

    Three things keep the codes in use (without them a tokenizer collapses to a handful of codes within
    ten steps): the codebook starts from spherical k-means on the first training batch; every used code
    moves by at most ``1 - decay`` towards the mean direction of its vectors, however many it got (an update
    weighted by counts lets a popular code jump to the centre of the data and absorb everything); and a code
    left unused for ``restart_after`` updates is restarted on a random vector of the current batch.
    Under torch.distributed the per-code sums are all-reduced and rank 0's choices broadcast, so every rank
    keeps the same codebook.
    """

    def __init__(
        self,
        n_codes: int = 8192,
        code_dim: int = 64,
        decay: float = 0.99,
        kmeans_iters: int = 10,
        restart_after: int | None = 5,
    ):
        super().__init__()
        self.n_codes, self.code_dim, self.decay = n_codes, code_dim, decay
        self.kmeans_iters, self.restart_after = kmeans_iters, restart_after
        self.register_buffer("weight", F.normalize(torch.randn(n_codes, code_dim), dim=-1))
        self.register_buffer("cluster_size", torch.zeros(n_codes))  # EMA of assignments per update
        self.register_buffer("unused_updates", torch.zeros(n_codes, dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))  # codes restarted so far
        self.register_buffer("initialised", torch.tensor(False))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Unit vectors (M, code_dim) -> code indices (M,) by maximum cosine similarity."""
        return (z @ self.weight.to(z.dtype).t()).argmax(dim=-1)

    @torch.no_grad()
    def init_from(self, z: torch.Tensor) -> None:
        """Spherical k-means on ``z`` (rank 0's, broadcast): every code starts inside the data."""
        z = z.float()
        self.weight.copy_(_broadcast(spherical_kmeans(z, self.n_codes, self.kmeans_iters)))
        self.cluster_size.zero_()
        self.unused_updates.zero_()
        self.initialised.fill_(True)

    @torch.no_grad()
    def update(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        """EMA step towards each used code's mean direction, then restart the codes unused for too long."""
        z = z.float()
        counts = torch.bincount(codes, minlength=self.n_codes).float()
        sums = torch.zeros_like(self.weight).index_add_(0, codes, z)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        used = counts > 0
        moved = F.normalize(self.decay * self.weight + (1 - self.decay) * F.normalize(sums, dim=-1), dim=-1)
        self.weight.copy_(torch.where(used[:, None], moved, self.weight))
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.unused_updates.add_(1).masked_fill_(used, 0)
        if self.restart_after is not None:
            self._restart_dead(z)

    def _restart_dead(self, z: torch.Tensor) -> None:
        dead = (self.unused_updates >= self.restart_after).nonzero().flatten()
        if len(dead) == 0:
            return
        picks = torch.randint(0, z.shape[0], (len(dead),), device=z.device)
        fresh = _broadcast(F.normalize(z[picks] + 0.01 * torch.randn_like(z[picks]), dim=-1))
        self.weight[dead] = fresh
        self.unused_updates[dead] = 0
        self.cluster_size[dead] = float(self.cluster_size.mean())
        self.restarts.add_(len(dead))

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


def _broadcast(tensor: torch.Tensor) -> torch.Tensor:
    """Rank 0's tensor on every rank (a no-op without torch.distributed)."""
    if dist.is_available() and dist.is_initialized():
        tensor = tensor.contiguous()
        dist.broadcast(tensor, src=0)
    return tensor


@torch.no_grad()
def spherical_kmeans(z: torch.Tensor, k: int, iters: int = 10) -> torch.Tensor:
    """``k`` unit centres of the unit vectors ``z`` (M, D) by cosine k-means; empty clusters are re-seeded.

    With fewer vectors than centres the extra centres are jittered copies of vectors.
    """
    m = z.shape[0]
    picks = torch.randperm(m, device=z.device)[:k] if m >= k else torch.randint(0, m, (k,), device=z.device)
    centres = F.normalize(z[picks] + (0.0 if m >= k else 0.01) * torch.randn_like(z[picks]), dim=-1)
    for _ in range(iters):
        assign = (z @ centres.t()).argmax(dim=-1)
        sums = torch.zeros_like(centres).index_add_(0, assign, z)
        counts = torch.bincount(assign, minlength=k)
        empty = counts == 0
        reseed = z[torch.randint(0, m, (int(empty.sum()),), device=z.device)]
        centres = F.normalize(sums, dim=-1)
        centres[empty] = F.normalize(reseed + 0.01 * torch.randn_like(reseed), dim=-1)
    return centres


def standardise(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Zero mean, unit std over the last (frequency) axis."""
    return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps)


def spectral_targets(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per patch (rows of ``patches``): log Fourier amplitude and phase of bins 1..patch_size // 2.

    The log amplitude is standardised per frequency over the batch, not over the frequencies of a patch
    (LaBraM's choice): a per-patch z-score leaves the average spectral shape as the target, which the
    decoder learns from position alone while ignoring the codes, so the codes end up carrying nothing
    (measured: the same reconstruction with the codes shuffled). Centred per frequency, what is left is
    each patch's own power and spectral shape, which only the codes can tell the decoder. The phase is
    standardised over frequency as in LaBraM.
    """
    spectrum = torch.fft.rfft(patches.float(), dim=-1)[..., 1 : patches.shape[-1] // 2 + 1]
    log_amplitude = torch.log(spectrum.abs() + 1e-6)
    rows = log_amplitude.reshape(-1, log_amplitude.shape[-1])
    amplitude = (log_amplitude - rows.mean(0)) / (rows.std(0) + 1e-6)
    return amplitude, standardise(torch.angle(spectrum))


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
        patch_norm: str = "sample",
        phase_weight: float = 1.0,
    ):
        super().__init__()
        self.patch_size, self.commitment_weight = patch_size, commitment_weight
        # 0 drops the phase target: the codes then carry each patch's spectral power and shape only
        self.phase_weight = phase_weight
        self.embed_dim = embed_dim
        self.encoder = LaBraM(
            n_chans,
            n_times,
            patch_size,
            embed_dim,
            depth,
            num_heads,
            max_time_patches=max_time_patches,
            patch_norm=patch_norm,
        )
        self.to_code = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.Tanh(), nn.Linear(embed_dim, code_dim)
        )
        # Centring each code dimension over the batch keeps the vectors from drifting into one narrow cone
        # (all patches -> one direction -> one code), which the reconstruction gradient otherwise favours.
        self.centre = nn.BatchNorm1d(code_dim, affine=False)
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
        self,
        x: torch.Tensor,
        ch_idx: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        channel_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``valid`` (B, C*P) bool: only these patches reach the codebook (others: zero vector, code 0);
        ``channel_mask``: see ``code_vectors``."""
        z = self.code_vectors(x, ch_idx, valid, channel_mask)
        if valid is None:
            quantised, codes, commitment = self.codebook(z.flatten(0, 1))
            return quantised.view_as(z), codes.view(z.shape[:2]), commitment
        picked, picked_codes, commitment = self.codebook(z[valid])
        quantised = z.new_zeros(z.shape).index_put((valid,), picked)
        codes = torch.zeros(z.shape[:2], dtype=torch.long, device=z.device).index_put((valid,), picked_codes)
        return quantised, codes, commitment

    @torch.no_grad()
    def encode(self, x: torch.Tensor, ch_idx: torch.Tensor | None = None) -> torch.Tensor:
        """Code indices (B, C*P), one per patch in LaBraM's channel-major token order.

        Always in float32, also inside a bf16 autocast region (the MEM step): bf16 rounding moves vectors
        across code boundaries, so the targets would be noisier codes than the ones counted elsewhere.
        """
        with torch.autocast(x.device.type, enabled=False):
            z = self.code_vectors(x.float(), ch_idx)
            return self.codebook.nearest(z.flatten(0, 1)).view(z.shape[:2])

    def code_vectors(
        self,
        x: torch.Tensor,
        ch_idx: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        channel_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Unit vectors (B, C*P, code_dim) that the codebook quantises (zero where ``valid`` is False).

        ``channel_mask`` (B, C) bool, True = real: the encoder's patch statistics leave the others out (as they
        do channels that are zero throughout, mask or not: ``encode`` computes the same codes without it).
        """
        tokens = self.encoder(x, ch_idx, return_all_tokens=True, channel_mask=channel_mask)
        projected = self.to_code(tokens).float()
        if valid is not None:
            return F.normalize(
                projected.new_zeros(projected.shape).index_put((valid,), self.centre(projected[valid])),
                dim=-1,
            )
        return F.normalize(self.centre(projected.flatten(0, 1)).view_as(projected), dim=-1)

    def decode(
        self, quantised: torch.Tensor, ch_idx: torch.Tensor, n_patches: int
    ) -> tuple[torch.Tensor, ...]:
        h = self.from_code(quantised.to(self.from_code.weight.dtype))
        h = h + self.decoder_pos(ch_idx, n_patches)[0]
        for block in self.decoder:
            h = block(h)
        h = self.decoder_norm(h)
        return self.amplitude_head(h), self.phase_head(h)

    def forward(
        self, x: torch.Tensor, ch_idx: torch.Tensor | None = None, channel_mask: torch.Tensor | None = None
    ) -> TokenizerOutput:
        """``channel_mask`` (B, C) bool, True = real channel: the patches of zero-padded channels are left
        out of the codebook update, the losses and the spectral standardisation."""
        b, c, _ = x.shape
        patches = self.encoder.patchify(x)  # (B, C, P, patch)
        valid = None if channel_mask is None else channel_mask.bool().repeat_interleave(patches.shape[2], 1)
        quantised, codes, commitment = self.quantise(x, ch_idx, valid, channel_mask)
        amplitude, phase = self.decode(quantised, resolve_ch_idx(ch_idx, b, c, x.device), patches.shape[2])
        patches = patches.flatten(1, 2)
        if valid is not None:
            amplitude, phase, patches = amplitude[valid], phase[valid], patches[valid]
        amplitude_target, phase_target = spectral_targets(patches)
        amplitude_loss = F.mse_loss(amplitude.float(), amplitude_target)
        phase_loss = F.mse_loss(phase.float(), phase_target)
        loss = amplitude_loss + self.phase_weight * phase_loss + self.commitment_weight * commitment
        return TokenizerOutput(loss, amplitude_loss, phase_loss, commitment, codes)
