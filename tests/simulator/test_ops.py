"""The operation list (`workloads.ops`): its counts add up to the model's, and every model prices it."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.profile import KernelFit
from simulator.analytic.profile import KernelRates
from simulator.analytic.training import block_times
from simulator.cli import main
from simulator.runspec import v3_pretraining
from workloads.comm import ep_bytes_per_token_per_layer
from workloads.elementwise import layer_elementwise_bytes
from workloads.flops import attended_keys, forward_flops_per_token
from workloads.layout import ParallelLayout
from workloads.ops import Op, ep_ops, layer_ops, total, training_model_ops
from workloads.registry import load_model
from workloads.servingops import serving_model_ops

PRESETS = ["deepseek-v3", "deepseek-v2", "llama-3.1-405b", "llama-3.1-8b", "qwen2.5-72b", "mixtral-8x7b"]


def _sum(groups, field="flops"):
    return sum(g.count * total(list(g.ops), field) for g in groups)


@pytest.mark.parametrize("slug", PRESETS)
@pytest.mark.parametrize("seq_len", [1024, 4096])
def test_forward_flops_of_the_list_are_the_models(slug, seq_len):
    spec = load_model(slug)
    ep = 8 if spec.is_moe else 1
    groups = training_model_ops(spec, "forward", 4096, seq_len, ParallelLayout(ep=ep, dp=ep))
    assert _sum(groups) / 4096 == pytest.approx(forward_flops_per_token(spec, seq_len, "exact"), rel=1e-12)


@pytest.mark.parametrize("slug", PRESETS)
def test_backward_is_twice_the_gemms_and_2_5x_attention(slug):
    spec = load_model(slug)
    layout = ParallelLayout()
    fwd = training_model_ops(spec, "forward", 512, 2048, layout)
    bwd = training_model_ops(spec, "backward", 512, 2048, layout)

    def by_kind(groups, kinds):
        return sum(g.count * total([o for o in g.ops if o.kind in kinds]) for g in groups)

    gemm = ("gemm", "grouped_gemm")
    assert by_kind(bwd, gemm) == pytest.approx(2 * by_kind(fwd, gemm), rel=1e-12)
    assert by_kind(bwd, ("attention",)) == pytest.approx(2.5 * by_kind(fwd, ("attention",)), rel=1e-12)
    assert {o.phase for g in bwd for o in g.ops} == {"backward_input", "backward_weight"}


@pytest.mark.parametrize("slug", PRESETS)
@pytest.mark.parametrize("fp8", [False, True])
def test_elementwise_ops_are_the_layers_bytes(slug, fp8):
    spec = load_model(slug)
    for moe in {False, spec.is_moe}:
        ops = layer_ops(spec, moe, 100, 64.5, ("forward",), precision="fp8" if fp8 else "bf16")
        elementwise = [o for o in ops if o.kind == "elementwise"]
        assert total(elementwise, "hbm_bytes") == pytest.approx(100 * layer_elementwise_bytes(spec, moe, fp8))
        assert len({o.name for o in elementwise}) == len(elementwise)  # one row per kernel


def test_ep_ops_carry_the_comm_modules_bytes():
    spec = load_model("deepseek-v3")
    layout = ParallelLayout(ep=64, dp=64)
    fwd = ep_bytes_per_token_per_layer(spec, layout, 4, "fp8", "bf16")
    bwd = ep_bytes_per_token_per_layer(spec, layout, 4, "bf16", "bf16")
    ops = {(o.kind, o.phase): o for o in ep_ops(spec, layout, 10, node_limit=4, precision="fp8")}
    assert ops[("dispatch", "forward")].ib_bytes == pytest.approx(10 * fwd["dispatch_ib"])
    assert ops[("combine", "forward")].nvlink_bytes == pytest.approx(10 * fwd["combine_nvlink"])
    assert ops[("dispatch", "backward_input")].ib_bytes == pytest.approx(10 * bwd["combine_ib"])
    assert ops[("dispatch", "forward")].precision == "fp8" and ops[("dispatch", "backward_input")].precision == "bf16"
    assert all(o.stream == "comm" for o in ops.values())
    assert ep_ops(load_model("llama-3.1-8b"), layout, 10) == []


def test_op_refuses_unknown_kind_and_phase_and_link_ops_have_no_profile_class():
    with pytest.raises(ValueError, match="kind"):
        Op("x", "matmul", "forward", "attn", "attn_proj", "bf16")
    with pytest.raises(ValueError, match="phase"):
        Op("x", "gemm", "sideways", "attn", "attn_proj", "bf16")
    with pytest.raises(ValueError, match="links"):
        _ = Op("dispatch", "dispatch", "forward", "mlp", "ep_all_to_all", "fp8").profile_class


@settings(max_examples=30, deadline=None)
@given(tp=st.sampled_from([1, 2, 4, 8]), tokens=st.integers(1, 4096))
def test_serving_tp_split_keeps_the_work(tp, tokens):
    """Splitting attention and a dense MLP over tp GPUs: each GPU does 1/tp of the tp group's work."""
    spec = load_model("llama-3.1-70b")
    one = serving_model_ops(spec, "decode", tokens * tp, 4096.0, tp=1)
    split = serving_model_ops(spec, "decode", tokens, 4096.0, tp=tp)
    compute = ("gemm", "grouped_gemm", "attention")

    def flops(groups):
        return sum(g.count * total([o for o in g.ops if o.kind in compute]) for g in groups)

    assert flops(split) * tp == pytest.approx(flops(one), rel=1e-9)


def _flat_rates(flop_per_s: float) -> KernelRates:
    """Every compute class at one FLOP rate, memory as good as free (1e40 B/s), no overhead."""
    fit = KernelFit(flop_per_s, math.inf)
    classes = [f"{k}_{d}" for k in ("gemm", "grouped_gemm", "attention_fwd", "attention_bwd") for d in ("bf16", "fp8")]
    fits = {c: fit for c in classes} | {"memory": KernelFit(math.inf, 1e40)}
    return KernelRates("flat", "sol", "none", "h800", fits)  # kind sol: element-wise at the HBM datasheet


def test_the_training_model_prices_every_flop_of_the_list_and_nothing_else():
    """At one flat rate, a stage's forward compute is exactly its ops' forward FLOPs over that rate plus its
    element-wise kernels' bytes over the HBM datasheet: every op of the list priced once, nothing else."""
    run = v3_pretraining(schedule="1f1b", comm_sms=0, recompute="none")
    rate = 1e15
    blocks = (False, True, True)
    t = block_times(run, _flat_rates(rate), blocks, first=False, last=False)
    tokens = run.micro_batch * run.seq_len / run.tp
    ctx = attended_keys(run.seq_len)
    hbm = run.node.gpu.hbm_bw_bytes_per_s
    fwd = [o for moe in blocks for o in layer_ops(run.model, moe, tokens, ctx, ("forward",), run.layout.ep, "fp8")]
    elementwise = sum(o.hbm_bytes / hbm for o in fwd if o.kind == "elementwise")
    assert t.f == pytest.approx(total(fwd) / rate + elementwise, rel=1e-12)
    wgrad = sum(
        total(layer_ops(run.model, moe, tokens, ctx, ("backward_weight",), run.layout.ep, "fp8")) for moe in blocks
    )
    assert t.w == pytest.approx(wgrad / rate, rel=1e-12)


def test_cli_ops_lists_a_dense_and_a_moe_layer_whose_flops_are_the_models(capsys):
    assert main(["ops", "deepseek-v3", "--phase", "forward", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    spec = load_model("deepseek-v3")
    layers = {r["layer"]: r["count"] for r in out["ops"]}
    assert layers == {"dense": 3, "moe": 58 + 1, "head": 1}  # the MTP block is a MoE layer
    names = {(r["layer"], r["name"]) for r in out["ops"]}
    for name in ("q_a_proj", "attention", "input_norm", "o_proj"):
        assert ("dense", name) in names and ("moe", name) in names
    assert {("dense", "mlp.gate_up"), ("moe", "experts.gate_up"), ("moe", "dispatch"), ("moe", "combine")} <= names
    assert out["flops_per_token"] == pytest.approx(forward_flops_per_token(spec, 4096), rel=1e-12)
    per_op = sum(r["count"] * r["flops"] for r in out["ops"])
    assert per_op == pytest.approx(out["flops"], rel=1e-12)


@pytest.mark.parametrize("phase", ["backward", "prefill", "decode"])
def test_cli_ops_answers_every_phase(capsys, phase):
    assert main(["ops", "deepseek-v3", "--phase", phase, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ops"] and all(r["phase"] in (phase, "backward_input", "backward_weight") for r in out["ops"])
    assert main(["ops", "llama-3.1-8b", "--phase", phase]) == 0
    assert "total:" in capsys.readouterr().out


def test_cli_ops_bad_ep_is_one_line(capsys):
    assert main(["ops", "deepseek-v3", "--ep", "48"]) == 2
    err = capsys.readouterr().err
    assert "does not divide 256" in err and err.count("\n") == 1


def test_cli_ops_lists_a_moe_layer_as_its_dispatcher_runs_it(capsys):
    """Megatron's alltoall dispatcher: bf16 copies, each cast on arrival, sorted by local expert and back; the
    FLOPs are the model's whatever moves the tokens."""
    ops = {}
    for dispatcher in ("deepep-fp8", "alltoall"):
        assert main(["ops", "qwen3-30b-a3b", "--ep", "8", "--ep-dispatcher", dispatcher, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["setup"]["ep_dispatcher"] == dispatcher
        ops[dispatcher] = out | {"by_name": {r["name"]: r for r in out["ops"] if r["layer"] == "moe"}}
    deepep, nccl = ops["deepep-fp8"]["by_name"], ops["alltoall"]["by_name"]
    assert "sort_chunks" in nccl and "sort_chunks" not in deepep
    assert nccl["cast.expert_input"]["hbm_bytes"] == 8 * deepep["cast.expert_input"]["hbm_bytes"]  # top-8 copies
    assert nccl["dispatch"]["precision"] == "bf16" and deepep["dispatch"]["precision"] == "fp8"
    assert ops["alltoall"]["flops"] == pytest.approx(ops["deepep-fp8"]["flops"], rel=1e-12)


def test_cli_ops_refuses_a_dispatcher_on_a_serving_phase(capsys):
    assert main(["ops", "deepseek-v3", "--phase", "decode", "--ep-dispatcher", "alltoall"]) == 2
    err = capsys.readouterr().err
    assert "--ep-dispatcher" in err and err.count("\n") == 1
