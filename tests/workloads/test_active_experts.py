"""A decode step's few tokens reach only some of a GPU's experts, and a grouped GEMM reads only those experts'
weights: it tiles each expert's own rows (DeepGEMM's masked layout: `masked_m`, the actual token count per group),
so an empty expert issues no tiles and loads nothing (`workloads.gemms.active_share`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.gemms import active_share, serving_moe_gemms
from workloads.registry import load_model
from workloads.servingops import serving_layer_ops


def test_the_share_is_one_minus_the_chance_that_no_token_picks_a_slot():
    assert active_share(1, 8, 256) == pytest.approx(8 / 256)  # one token: its 8 experts
    assert active_share(16, 8, 256) == pytest.approx(1 - (1 - 8 / 256) ** 16)  # ~40%
    assert active_share(4096, 8, 256) == pytest.approx(1.0)  # a training micro-batch reaches every expert
    assert active_share(3, 8, 8) == 1.0  # every slot picked by every token


@settings(max_examples=200, deadline=None)
@given(st.floats(0.5, 1e5), st.integers(1, 16), st.integers(16, 1024))
def test_the_share_is_a_share_that_grows_with_the_tokens(tokens, picks, slots):
    share = active_share(tokens, picks, slots)
    assert 0 < share <= 1
    assert active_share(2 * tokens, picks, slots) >= share


def test_decode_reads_only_the_active_experts_weights_and_keeps_every_flop():
    v3 = load_model("deepseek-v3")
    h, i = v3.hidden_size, v3.moe_intermediate_size
    # 8 H200 at EP8, 2 sequences per GPU: 16 tokens over 256 experts, 32 on each GPU
    small = {g.name: g for g in serving_moe_gemms(v3, 2, 8, 0)}
    share = active_share(16, 8, 256)
    assert small["experts.gate_up"].active == pytest.approx(share)
    ops = {op.name: op for op in serving_layer_ops(v3, True, 2, 2, 4096, "decode", ep=8, weight_dtype="fp8")}
    gate_up = ops["experts.gate_up"]
    assert gate_up.active == pytest.approx(share)
    weights = 32 * 2 * i * h * 1  # every local expert's gate and up weights, fp8
    activations = gate_up.hbm_bytes - share * weights
    assert activations == pytest.approx(2 * 8 * (h * 1 + 2 * i * 2))  # the 16 pairs' inputs (fp8), outputs (bf16)
    assert gate_up.flops == pytest.approx(2 * 2 * 8 * h * 2 * i)  # every pair still computed
    big = {g.name: g for g in serving_moe_gemms(v3, 256, 8, 0)}
    assert big["experts.gate_up"].active == pytest.approx(1.0, abs=1e-6)  # 2,048 tokens reach every expert
