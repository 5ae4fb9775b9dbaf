"""A co-located pool's steady step when prompts arrive in pieces (`simulator.analytic.colocated.steady_step`): a
prompt runs whole (or in the step budget's pieces) in one step of so many, not as a sliver of every step, and under
attention DP a step waits for whichever unit carries a piece (TensorRT-LLM's "ADP Balance Strategy" blog)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from simulator.analytic.colocated import chunk_for, mixed_step, prompt_piece, steady_step
from simulator.analytic.profile import rates_for
from simulator.presets import deployment


@pytest.fixture(scope="module")
def tp8():
    s = deployment("deepseek-v3", "h200", tp=8, ep=8, redundant=0, prefill_ep=8, context=2048, output_tokens=1024,
                   colocated=True)  # fmt: skip
    return s, rates_for(None, s.node.gpu)


def test_a_prompt_runs_whole_or_in_the_budgets_pieces(tp8):
    s, _ = tp8
    assert prompt_piece(s, 2.0) == pytest.approx(1024 / 8)  # a 1,024-token prompt over the TP8 group's GPUs
    assert prompt_piece(replace(s, prefill_tokens=32), 2.0) == 32  # the step budget cuts it
    assert prompt_piece(s, 500.0) == 500.0  # a busy pool takes prompt tokens in every step
    dp = replace(s, tp=1)
    assert prompt_piece(dp, 2.0) == 1024  # attention DP: a prompt on one GPU


def test_whole_prompts_amortize_what_a_sliver_every_step_pays(tp8):
    """R1 on 8 H200 (TP8 group, one unit), 2 sequences per GPU: 2 prompt tokens a step on average. One step in
    64 carrying a whole prompt costs less on average than a 2-token sliver in every step, which wakes experts
    and runs a prefill attention kernel each time; decode alone is the floor."""
    s, rates = tp8
    chunk = chunk_for(s, 2.0)
    steady, sliver, alone = (steady_step(s, rates, 2.0, chunk), mixed_step(s, rates, 2.0, chunk),
                             mixed_step(s, rates, 2.0, 0.0))  # fmt: skip
    assert alone.step_s < steady.step_s < sliver.step_s
    piece = mixed_step(s, rates, 2.0, prompt_piece(s, chunk))
    share = chunk / prompt_piece(s, chunk)  # one unit: the steps that carry a piece
    assert steady.step_s == pytest.approx(alone.step_s + share * (piece.step_s - alone.step_s))
    assert steady.prompt_tokens == chunk and steady.output_tokens == sliver.output_tokens


def test_under_attention_dp_a_step_waits_for_any_unit_carrying_a_piece(tp8):
    """Eight attention-DP units, each carrying a whole prompt in one step of 1 / f: a step carries one on any
    unit in 1 - (1 - f)^8 of the steps."""
    s, rates = tp8
    dp = replace(s, tp=1)
    chunk = chunk_for(dp, 2.0)
    f = chunk / prompt_piece(dp, chunk)
    steady, alone = steady_step(dp, rates, 2.0, chunk), mixed_step(dp, rates, 2.0, 0.0)
    piece = mixed_step(dp, rates, 2.0, prompt_piece(dp, chunk))
    share = 1 - (1 - f) ** 8
    assert share > 7 * f  # nearly eight times the one unit's share
    assert steady.step_s == pytest.approx(alone.step_s + share * (piece.step_s - alone.step_s))


def test_a_busy_pool_carries_prompt_tokens_every_step(tp8):
    s, rates = tp8
    assert steady_step(s, rates, 64.0, 600.0).step_s == mixed_step(s, rates, 64.0, 600.0).step_s
    assert steady_step(s, rates, 4.0, 0.0).step_s == mixed_step(s, rates, 4.0, 0.0).step_s
