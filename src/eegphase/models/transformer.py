"""The pre-norm transformer block shared by LaBraM, its tokenizer, SignalJEPA and the Perceiver adapter.

Written for throughput on CPU/GPU under bf16 autocast: one fused qkv GEMM, LaBraM's qk-norm as two LayerNorms
with their affine fused in, ``F.scaled_dot_product_attention`` (in float32 on CPUs where that is the faster
kernel: ``attention``), timm's ``Mlp``, and layer scale fused into the residual add.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn

REDUCED_PRECISION = (torch.bfloat16, torch.float16)
# AMX tiles run reduced-precision GEMMs (the flash kernel's inner loops) several times faster than float32:
# there the bf16 kernel keeps its inputs. Unmeasured here (no AMX machine in the session that chose this rule).
_CPU_HAS_AMX = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def attention_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype attention on tensors like ``x`` runs in: float32 for bf16/fp16 on a CPU without AMX, else
    ``x``'s own. Why: there PyTorch's reduced-precision flash kernel is slower than its float32 one, forward and
    backward (1.0-2.1x at this project's shapes on AVX512-BF16 cores: LaBraM-base's 81 vs 46 ms per block),
    while its results are no more exact (it accumulates in float32 too)."""
    if x.device.type == "cpu" and x.dtype in REDUCED_PRECISION and not _CPU_HAS_AMX:
        return torch.float32
    return x.dtype


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` run in ``attention_dtype(v)``; the output in ``v``'s dtype."""
    dtype, run_in = v.dtype, attention_dtype(v)
    if attn_mask is not None and attn_mask.is_floating_point():  # an additive mask: in the kernel's dtype
        attn_mask = attn_mask.to(run_in)
    # CPU autocast lists attention among its bf16 ops: it would cast the float32 inputs straight back
    with torch.autocast(v.device.type, enabled=False) if run_in != dtype else contextlib.nullcontext():
        out = F.scaled_dot_product_attention(
            q.to(run_in), k.to(run_in), v.to(run_in), attn_mask=attn_mask, dropout_p=dropout_p
        )
    return out.to(dtype)


class QKNorm(nn.Module):
    """LayerNorm of q and k over the head dim, separate affine params (stored stacked, q's first).

    Each is one ``F.layer_norm`` with its affine fused in, so no separate scale-and-shift pass runs forward
    or backward.
    """

    def __init__(self, head_dim: int, eps: float = 1e-6):
        super().__init__()
        self.head_dim, self.eps = head_dim, eps
        self.weight = nn.Parameter(torch.ones(2, 1, 1, 1, head_dim))
        self.bias = nn.Parameter(torch.zeros(2, 1, 1, 1, head_dim))

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, out_dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k: (..., head_dim) -> the same, each normalised with its own affine, in ``out_dtype`` (default
        q's: attention that runs in float32 takes the float32 norm without a round trip through bf16)."""
        weight, bias, shape = self.weight.view(2, -1), self.bias.view(2, -1), (self.head_dim,)
        dtype = out_dtype or q.dtype
        if q.device.type == "cpu" and q.dtype in REDUCED_PRECISION:
            # CPU LayerNorm on bf16 rows as short as a head (20 in LaBraM) is slower, forward and backward,
            # than casting to float32 and back around the float32 kernel (which rounds once, as the bf16 one does).
            q, k = q.float(), k.float()
        return (
            F.layer_norm(q, shape, weight[0], bias[0], self.eps).to(dtype),
            F.layer_norm(k, shape, weight[1], bias[1], self.eps).to(dtype),
        )


class Attention(nn.Module):
    """Multi-head self-attention with optional qk-norm.

    ``qkv_bias``: True, a bias for each of q, k and v; ``"qv"``, for q and v only (``q_bias``, ``v_bias``), as
    LaBraM and BEiT have it: the key's bias is held at zero, which matters under qk-norm (it is not shift-free
    over the head dim there).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool | str = False,
        qk_norm: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        if qkv_bias not in (True, False, "qv"):
            raise ValueError(f"qkv_bias must be True, False or 'qv', got {qkv_bias!r}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias is True)
        separate = qkv_bias == "qv"
        self.q_bias = nn.Parameter(torch.zeros(dim)) if separate else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if separate else None
        self.qk_norm = QKNorm(self.head_dim) if qk_norm else None
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, N, D); attn_mask: optional bool (B, 1, N, N) or (B, 1, 1, N), True = may attend."""
        b, n, d = x.shape
        heads = (b, n, self.num_heads, self.head_dim)
        biases = self._biases(d)
        if self.qk_norm is None:
            bias = (
                None
                if biases[0] is None
                else torch.cat([t if t is not None else biases[0].new_zeros(d) for t in biases])
            )
            q, k, v = F.linear(x, self.qkv.weight, bias).view(b, n, 3, *heads[2:]).unbind(2)
        else:
            # q, k and v as three GEMMs on the slices of the qkv weight: each comes out contiguous, so the
            # LayerNorms need no copy in or out (forward and backward), as they would on views of one output.
            q, k, v = (
                F.linear(x, w, bias).view(heads)
                for w, bias in zip(self.qkv.weight.split(d), biases, strict=True)
            )
            q, k = self.qk_norm(q, k, attention_dtype(v))
        out = attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=attn_mask,
            dropout_p=self.attn_drop if self.training else 0.0,
        )
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, d)))

    def _biases(self, d: int) -> tuple[torch.Tensor | None, ...]:
        """The (q, k, v) biases; None for none (the key's is None under ``qkv_bias="qv"``)."""
        if self.q_bias is not None:
            return self.q_bias, None, self.v_bias
        return (None,) * 3 if self.qkv.bias is None else tuple(self.qkv.bias.split(d))


class Block(nn.Module):
    """Pre-norm transformer block with optional layer scale (``init_values``) and stochastic depth."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool | str = False,
        qk_norm: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        init_values: float | None = None,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_norm, attn_drop, drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if init_values:
            self.gamma_1 = nn.Parameter(torch.full((dim,), float(init_values)))
            self.gamma_2 = nn.Parameter(torch.full((dim,), float(init_values)))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        m_in = self._residual(x, self.attn(self.norm1(x), attn_mask), self.gamma_1)
        return self._residual(m_in, self.mlp(self.norm2(m_in)), self.gamma_2)

    def _residual(self, x: torch.Tensor, update: torch.Tensor, gamma: torch.Tensor | None) -> torch.Tensor:
        """x + drop_path(gamma * update); without stochastic depth, layer scale and residual add are one
        ``addcmul`` (one pass over the activations instead of two, forward and backward)."""
        if gamma is None:
            return x + self.drop_path(update)
        if isinstance(self.drop_path, nn.Identity):
            return torch.addcmul(x, gamma, update)
        return x + self.drop_path(gamma * update)


def init_transformer_weights(module: nn.Module) -> None:
    """BEiT/LaBraM init: truncated-normal Linear weights (std 0.02), zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def rescale_residual_projections(blocks: nn.ModuleList) -> None:
    """Shrink each block's output projections by sqrt(2 * layer) (BEiT's fix for deep pre-norm stacks)."""
    with torch.no_grad():
        for layer_id, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_((2.0 * layer_id) ** 0.5)
            block.mlp.fc2.weight.div_((2.0 * layer_id) ** 0.5)
