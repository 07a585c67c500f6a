"""The shared transformer block against the textbook formulas it fuses (float64, so only rounding differs)."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from eegphase.models import transformer
from eegphase.models.transformer import Attention, Block, QKNorm


def textbook_attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """One qkv GEMM, q and k each LayerNormed with their own affine (LaBraM's qk-norm), SDPA, projection."""
    b, n, d = x.shape
    q, k, v = attn.qkv(x).view(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    if attn.qk_norm is not None:
        weight, bias = attn.qk_norm.weight.view(2, -1), attn.qk_norm.bias.view(2, -1)
        q = F.layer_norm(q, (attn.head_dim,), weight[0], bias[0], attn.qk_norm.eps)
        k = F.layer_norm(k, (attn.head_dim,), weight[1], bias[1], attn.qk_norm.eps)
    out = F.scaled_dot_product_attention(q, k, v)
    return attn.proj(out.transpose(1, 2).reshape(b, n, d))


@pytest.mark.parametrize("qk_norm", [True, False])
@pytest.mark.parametrize("qkv_bias", [True, False])
def test_attention_matches_the_textbook(qk_norm, qkv_bias):
    torch.manual_seed(0)
    attn = Attention(48, 4, qkv_bias=qkv_bias, qk_norm=qk_norm).double()
    if qk_norm:  # distinct q and k affines, so that swapping them would show
        with torch.no_grad():
            attn.qk_norm.weight.uniform_(0.5, 1.5)
            attn.qk_norm.bias.normal_()
    x = torch.randn(3, 11, 48, dtype=torch.double, requires_grad=True)
    params = [x, *attn.parameters()]
    expected = textbook_attention(attn, x)
    got = attn(x)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for a, b in zip(
        torch.autograd.grad(expected.square().sum(), params),
        torch.autograd.grad(got.square().sum(), params),
        strict=True,
    ):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("drop_path", [0.0, 0.2])
def test_block_layer_scale_is_the_residual_of_the_scaled_update(drop_path):
    """x + gamma_1 * attn(norm1(x)), then + gamma_2 * mlp(norm2(.)); stochastic depth off in eval mode."""
    torch.manual_seed(0)
    block = Block(48, 4, init_values=0.1, drop_path=drop_path).double().eval()
    with torch.no_grad():
        block.gamma_1.uniform_(-1, 1)
        block.gamma_2.uniform_(-1, 1)
    x = torch.randn(2, 7, 48, dtype=torch.double)
    middle = x + block.gamma_1 * textbook_attention(block.attn, block.norm1(x))
    expected = middle + block.gamma_2 * block.mlp(block.norm2(middle))
    torch.testing.assert_close(block(x), expected, rtol=1e-12, atol=1e-12)


def test_qk_norm_of_bf16_rows_is_the_float32_norm_rounded_once():
    """Under bf16 autocast on CPU the norm casts around the float32 kernel (faster on head-dim rows than the
    bf16 one): its output is the float32 LayerNorm of the bf16 input rounded once, and its input gradient the
    float32 one rounded once, as the bf16 kernel gives them."""
    torch.manual_seed(0)
    norm = QKNorm(20)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    weight, bias = norm.weight.view(2, -1), norm.bias.view(2, -1)
    q = torch.randn(2, 7, 3, 20).bfloat16().requires_grad_()
    k = torch.randn(2, 7, 3, 20).bfloat16().requires_grad_()
    grad = torch.randn(2, 7, 3, 20).bfloat16()  # as SDPA's backward hands it over
    with torch.autocast("cpu", torch.bfloat16):
        got = norm(q, k)
    for i, (x, out) in enumerate(zip((q, k), got, strict=True)):
        x32 = x.detach().float().requires_grad_()
        expected = F.layer_norm(x32, (20,), weight[i], bias[i], norm.eps)
        assert out.dtype == torch.bfloat16
        assert torch.equal(out, expected.bfloat16())
        (expected_grad,) = torch.autograd.grad(expected, x32, grad.float())
        (got_grad,) = torch.autograd.grad(out, x, grad)
        # the float32 gradient, rounded to bf16 once (a relative error of at most 2^-9 per element)
        torch.testing.assert_close(got_grad.float(), expected_grad, rtol=2**-8, atol=1e-6)


class AttentionKernelDtypes(TorchDispatchMode):
    """Records the dtype of q at every fused-attention kernel call (forward and backward) beneath it."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, torch.dtype]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name.startswith("_scaled_dot_product"):
            query = args[1] if name.endswith("_backward") else args[0]  # backward: (grad_out, q, k, v, ...)
            self.calls.append((name, query.dtype))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("amx", [False, True])
def test_cpu_bf16_attention_runs_the_float32_kernel_unless_amx(monkeypatch, amx):
    """Under bf16 autocast on a CPU without AMX the flash kernel gets float32 q, k, v, forward and backward,
    although autocast lists attention among its bf16 ops; with AMX it keeps bf16. The block's output stays
    bf16, and equals the textbook's in float32 from the same bf16 projections, rounded once."""
    monkeypatch.setattr(transformer, "_CPU_HAS_AMX", amx)
    torch.manual_seed(0)
    attn = Attention(40, 2, qk_norm=True)
    with torch.no_grad():
        attn.qk_norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 9, 40, requires_grad=True)
    recorder = AttentionKernelDtypes()
    with recorder:
        with torch.autocast("cpu", torch.bfloat16):
            out = attn(x)
        out.float().square().sum().backward()
    kernel_dtype = torch.bfloat16 if amx else torch.float32
    assert [name.endswith("_backward") for name, _ in recorder.calls] == [False, True]
    assert {dtype for _, dtype in recorder.calls} == {kernel_dtype}
    assert out.dtype == torch.bfloat16 and x.grad is not None and torch.isfinite(x.grad).all()
    if not amx:
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
            b, n, d = x.shape
            q, k, v = (F.linear(x, w).view(b, n, 2, 20).transpose(1, 2) for w in attn.qkv.weight.split(d))
            weight, bias = attn.qk_norm.weight.view(2, -1), attn.qk_norm.bias.view(2, -1)
            q = F.layer_norm(q.float(), (20,), weight[0], bias[0], attn.qk_norm.eps)
            k = F.layer_norm(k.float(), (20,), weight[1], bias[1], attn.qk_norm.eps)
            with torch.autocast("cpu", enabled=False):
                heads = F.scaled_dot_product_attention(q, k, v.float()).to(torch.bfloat16)
            expected = attn.proj(heads.transpose(1, 2).reshape(b, n, d))
        assert torch.equal(out, expected)


@pytest.mark.parametrize("mask_kind", ["bool", "additive"])
def test_masked_cpu_bf16_attention_matches_the_float32_textbook(mask_kind):
    """Masks pass through the float32 route: a boolean one as it is, an additive one (bf16 here, as a user's
    mask under autocast might be) cast to the kernel's dtype."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8) for _ in range(3))
    keep = torch.rand(2, 1, 7, 7) > 0.3
    keep[..., 0] = True  # every query sees at least one key
    mask = keep if mask_kind == "bool" else torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))
    low = [t.bfloat16() for t in (q, k, v)]
    got = transformer.attention(*low, attn_mask=mask if mask_kind == "bool" else mask.bfloat16())
    expected = F.scaled_dot_product_attention(*(t.float() for t in low), attn_mask=mask)
    assert got.dtype == torch.bfloat16
    # the float32 result rounded once: within bf16's half-ulp (2^-9 relative) of it
    torch.testing.assert_close(got.float(), expected, rtol=2**-8, atol=1e-6)
