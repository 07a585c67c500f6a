"""The shared transformer block against the textbook formulas it fuses (float64, so only rounding differs)."""

import pytest
import torch
import torch.nn.functional as F

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
