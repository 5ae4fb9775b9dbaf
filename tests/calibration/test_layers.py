"""The PyTorch layers: shapes and parameter counts at full size (meta), numerics at reduced size (CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from calibration.layers import MLA, MTP, Block, Gate, KVCache, MoE, attention_for, expert_load, reduced
from workloads.params import attention_proj_params, layer_params, mtp_module_params
from workloads.registry import load_model, model_slugs

SLUGS = model_slugs()
F64 = torch.float64


def block_kinds(spec):
    """The FFN kinds (moe flags) a model's layers have."""
    return [moe for moe, n in ((False, spec.num_dense_layers), (True, spec.num_moe_layers)) if n]


def randn(*shape, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=F64).requires_grad_(requires_grad)


def stored_elems(module: nn.Module) -> int:
    """Parameters, plus the gate's balancing bias, which workloads.params counts as a parameter."""
    bias = sum(b.numel() for name, b in module.named_buffers() if name.endswith("e_score_correction_bias"))
    return sum(p.numel() for p in module.parameters()) + bias


@pytest.mark.parametrize("slug", SLUGS)
def test_reduced_keeps_the_architecture_kind(slug):
    spec = load_model(slug)
    small = reduced(spec)
    kind = lambda s: (  # noqa: E731
        s.attention,
        s.is_moe,
        s.q_lora_rank > 0,
        s.n_group > 1,
        s.router_bias,
        s.scoring_func,
        s.shared_intermediate_size > 0,
        s.kv_heads < s.num_attention_heads,
        s.attention_bias,
        s.qk_norm,
        s.num_dense_layers > 0,
        s.num_nextn_predict_layers > 0,
    )
    assert kind(small) == kind(spec)
    assert small.hidden_size == 64


@pytest.mark.parametrize("slug", SLUGS)
def test_full_size_parameters_equal_workloads_counts(slug):
    spec = load_model(slug)
    attn = attention_for(spec, device="meta")
    projections = {name: stored_elems(m) for name, m in attn.named_children() if isinstance(m, nn.Linear)}
    assert projections == attention_proj_params(spec)  # the norms inside attention count as norms
    for moe in block_kinds(spec):
        block = Block(spec, moe, device="meta")
        assert stored_elems(block) == sum(layer_params(spec, moe, active=False).values())
    if spec.num_nextn_predict_layers:
        assert stored_elems(MTP(spec, device="meta")) == mtp_module_params(spec)


@pytest.mark.parametrize("slug", SLUGS)
def test_block_forward_backward_is_finite_with_gradients_everywhere(slug):
    spec = reduced(load_model(slug))
    torch.manual_seed(0)
    for moe in block_kinds(spec):
        block = Block(spec, moe, dtype=F64)
        x = randn(2, 32, spec.hidden_size, requires_grad=True)
        out = block(x)
        out.square().mean().backward()
        assert out.shape == x.shape and out.isfinite().all()
        assert x.grad.isfinite().all() and x.grad.abs().sum() > 0
        for name, p in block.named_parameters():
            assert p.grad is not None, name  # 64 tokens x top-k reach every reduced expert
            assert p.grad.isfinite().all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("slug", ["deepseek-v3", "deepseek-v2-lite"])
def test_mla_absorbed_path_equals_naive_path(slug):
    spec = reduced(load_model(slug))
    torch.manual_seed(0)
    mla = MLA(spec, dtype=F64)
    x = randn(2, 9, spec.hidden_size)
    torch.testing.assert_close(mla(x, absorb=True), mla(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("slug", ["deepseek-v3", "deepseek-v2-lite"])
@pytest.mark.parametrize("absorb", [False, True])
def test_mla_decode_over_the_latent_cache_equals_the_full_sequence(slug, absorb):
    spec = reduced(load_model(slug))
    torch.manual_seed(0)
    mla = MLA(spec, dtype=F64)
    x = randn(2, 8, spec.hidden_size)
    cache = KVCache()
    steps = [mla(x[:, :5], cache, absorb)] + [mla(x[:, i : i + 1], cache, absorb) for i in range(5, 8)]
    torch.testing.assert_close(torch.cat(steps, dim=1), mla(x), rtol=1e-10, atol=1e-12)
    assert set(cache.tensors) == {"latent", "k_rope"}
    assert cache.tensors["latent"].shape == (2, 8, spec.kv_lora_rank)


@pytest.mark.parametrize("slug", ["llama-3.1-8b", "qwen2.5-72b", "qwen3-30b-a3b"])
def test_gqa_decode_over_the_kv_cache_equals_the_full_sequence(slug):
    spec = reduced(load_model(slug))
    torch.manual_seed(0)
    attn = attention_for(spec, dtype=F64)
    x = randn(2, 7, spec.hidden_size)
    cache = KVCache()
    steps = [attn(x[:, :4], cache)] + [attn(x[:, i : i + 1], cache) for i in range(4, 7)]
    torch.testing.assert_close(torch.cat(steps, dim=1), attn(x), rtol=1e-10, atol=1e-12)
    assert cache.tensors["k"].shape == (2, 7, spec.kv_heads, spec.qk_head_dim)


@pytest.mark.parametrize("slug", ["deepseek-v3", "deepseek-v2", "mixtral-8x7b"])
def test_moe_dispatch_equals_the_dense_sum_over_chosen_experts(slug):
    spec = reduced(load_model(slug))
    torch.manual_seed(0)
    moe = MoE(spec, dtype=F64)
    x = randn(3, 5, spec.hidden_size)
    weights, indices = moe.gate(x.reshape(-1, spec.hidden_size))
    flat = x.reshape(-1, spec.hidden_size)
    want = torch.stack(
        [
            sum(weights[t, j] * moe.experts[int(indices[t, j])](flat[t]) for j in range(spec.num_experts_per_tok))
            for t in range(len(flat))
        ]
    )
    if moe.shared_experts is not None:
        want = want + moe.shared_experts(flat)
    torch.testing.assert_close(moe(x), want.view(x.shape), rtol=1e-10, atol=1e-12)


def test_gate_limits_groups_normalizes_and_keeps_bias_out_of_the_weights():
    spec = reduced(load_model("deepseek-v3"))
    torch.manual_seed(0)
    gate = Gate(spec, dtype=F64)
    x = randn(64, spec.hidden_size)
    weights, indices = gate(x)
    group_size = spec.n_routed_experts // spec.n_group
    assert all(len(set((row // group_size).tolist())) <= spec.topk_group for row in indices)
    torch.testing.assert_close(weights.sum(-1), torch.ones(64, dtype=F64))
    gate.e_score_correction_bias[5] = 10.0  # every token now picks expert 5 ...
    biased_weights, biased = gate(x)
    assert (biased == 5).any(-1).all()
    scores = torch.sigmoid(x @ gate.weight.T).gather(-1, biased)  # ... weighted by its unbiased score
    torch.testing.assert_close(biased_weights, scores / scores.sum(-1, keepdim=True))


def test_bias_update_moves_a_skewed_load_toward_balance():
    spec = reduced(load_model("deepseek-v3"))
    torch.manual_seed(0)
    gate = Gate(spec)
    gen = torch.Generator().manual_seed(1)
    favoured = gate.weight.detach()[:3].sum(0)
    skew = 2.0 * favoured / favoured.norm()  # tokens lean toward experts 0-2

    def load(tokens: int) -> torch.Tensor:
        with torch.no_grad():
            hidden = torch.randn(tokens, spec.hidden_size, generator=gen) + skew
            return expert_load(gate(hidden)[1], spec.n_routed_experts).float()

    def variation() -> float:
        counts = load(4096)
        return float(counts.std() / counts.mean())

    before = variation()
    for _ in range(100):
        gate.update_bias(load(512), rate=0.01)
    after = variation()
    assert before > 0.5
    assert after < 0.25 * before


def test_mtp_forward_backward_reaches_its_layers_and_the_shared_head():
    spec = reduced(load_model("deepseek-v3"))
    torch.manual_seed(0)
    mtp = MTP(spec, dtype=F64)
    head = nn.Linear(spec.hidden_size, spec.vocab_size, bias=False, dtype=F64)
    hidden = randn(2, 32, spec.hidden_size, requires_grad=True)
    logits, out = mtp(hidden, randn(2, 32, spec.hidden_size, seed=1), head)
    assert logits.shape == (2, 32, spec.vocab_size) and out.shape == hidden.shape
    (logits.logsumexp(-1).mean() + out.square().mean()).backward()
    named = [*mtp.named_parameters(), ("head.weight", head.weight), ("hidden", hidden)]
    for name, p in named:
        assert p.grad is not None and p.grad.isfinite().all() and p.grad.abs().sum() > 0, name


def test_bad_inputs_raise_one_line_value_errors():
    v3, llama = load_model("deepseek-v3"), load_model("llama-3.1-8b")
    with pytest.raises(ValueError, match="num_heads"):
        reduced(v3, hidden_size=66, num_heads=4)
    with pytest.raises(ValueError, match="MLA needs"):
        MLA(llama, device="meta")
    with pytest.raises(ValueError, match="dense"):
        Block(llama, moe=True, device="meta")
    gate = Gate(reduced(load_model("mixtral-8x7b")))
    with pytest.raises(ValueError, match="e_score_correction_bias"):
        gate.update_bias(torch.zeros(8), rate=0.01)
