"""The host's launch time as a floor under each phase's compute (`simulator.analytic.host`).

Source: DeepSeek-V3's published training trace (github.com/deepseek-ai/profile-data, train.json), its CPU events
reduced span by span in hwmodels/data/host/deepseek-v3-train.toml: 4.26 ms of host time per layer forward and
6.55 ms backward (measured 2026-12-05 with `v3sim compare-trace train.json`). Nothing here is fitted to a step
time: the per-op cost is that trace's time spread over the ops v3sim lists for the same layer.
"""

from __future__ import annotations

import itertools
import json
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.host import DATA_DIR, load_host_trace
from simulator.analytic.host import captured, host_s, host_s_per_op, launched
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.analytic.training import all_stage_times, block_ops
from simulator.cli import main
from simulator.explore.hosttrace import host_per_layer, host_spans
from simulator.names import CUDA_GRAPH_SCOPES
from simulator.runspec import build_run, v3_pretraining
from workloads.ops import TRAINING_PHASES, layer_ops
from workloads.registry import load_model

# Qwen3-30B-A3B on one 8-GPU B200 node, one 4,096-token micro-batch (Megatron-Bridge's recipe shape): small layers
QWEN = {"model": "qwen3-30b-a3b", "gpu": "b200", "gpus": 8, "pp": 1, "ep": 8, "schedule": "1f1b",
        "seq_len": 4096, "micro_batch": 1, "global_batch_tokens": 2097152}  # fmt: skip


def test_the_host_table_is_the_traces_spans_per_layer():
    raw = tomllib.loads((DATA_DIR / "deepseek-v3-train.toml").read_text())
    host = load_host_trace()
    for phase, per_layer in (("forward", host.forward_s_per_layer), ("backward", host.backward_s_per_layer)):
        spans = [s for s in raw["span"].values() if s["phase"] == phase]
        assert per_layer == pytest.approx(sum(s["host_s"] for s in spans) / raw["layers"])
    assert host.forward_s_per_layer == pytest.approx(4.26e-3, rel=0.01)  # measured in the trace
    assert host.backward_s_per_layer == pytest.approx(6.55e-3, rel=0.01)
    waits = [name for name, s in raw["span"].items() if s["waits"]]
    assert waits == ["dispatch(F)"]  # the host polling DeepEP for the token counts: its activity only


def test_each_op_costs_the_trace_spread_over_v3s_launched_ops():
    """V3's layer, as the trace ran it, costs the host exactly the trace's seconds: in sample by construction."""
    host = load_host_trace()
    spec = load_model(host.model)
    ops = layer_ops(spec, True, host.tokens, host.tokens, TRAINING_PHASES, host.ep, host.precision)
    forward, backward = launched(ops, host.recompute, True)
    priced = host_s(forward, backward, "none")
    assert sum(s for (_, fwd), s in priced.items() if fwd) == pytest.approx(host.forward_s_per_layer)
    assert sum(s for (_, fwd), s in priced.items() if not fwd) == pytest.approx(host.backward_s_per_layer)
    per_f, per_b = host_s_per_op()
    assert 100e-6 < per_f < 250e-6 and 100e-6 < per_b < 250e-6  # ~145-158 us: Python, autograd and the launch
    assert host.launches_per_layer > len(forward) + len(backward)  # each v3sim op launches several kernels


def test_graphs_capture_what_their_scope_names():
    ops = block_ops(build_run(QWEN), True)
    attn = [o for o in ops if o.part == "attn"]
    router = [o for o in ops if o.name in ("gate", "router_topk")]
    assert attn and {o.name for o in router} == {"gate", "router_topk"}
    assert not any(captured(o, "none") for o in ops)
    assert all(captured(o, "full") for o in ops)
    assert all(captured(o, "attn") for o in attn) and not any(captured(o, "attn") for o in router)
    assert all(captured(o, "router") for o in router) and not any(captured(o, "router") for o in attn)
    assert all(captured(o, "attn+router") for o in attn + router)


def test_v3_on_h800_is_gpu_bound_the_floor_leaves_it_alone():
    run = v3_pretraining()
    rates = rates_for(None, run.node.gpu)
    assert all(t.host_wait == 0 for t in all_stage_times(run, rates))
    assert estimate(run).step_time_s == estimate(run.with_(cuda_graphs="full")).step_time_s


def test_a_small_moe_layer_waits_for_its_launches():
    """Qwen3-30B-A3B's 4,096-token micro-batch takes the B200 ~0.9 ms of forward compute and all-to-all per layer;
    its eager launches take the host ~3.3 ms: the phase lasts the host's time, and CUDA graphs give it back."""
    run = build_run(QWEN)
    rates = rates_for(None, run.node.gpu)
    (t,) = all_stage_times(run, rates)
    layers = run.model.num_hidden_layers
    forward, backward = launched(block_ops(run, True), run.recompute, False)
    host = host_s(forward, backward, "none")
    host_f = layers * sum(s for (_, fwd), s in host.items() if fwd)
    assert t.host_wait > 0.5 * (t.f + t.b)  # mostly waiting
    # the head (last stage) adds its own launches; the layers' alone already outlast the GPU
    assert t.f + t.ep_f >= host_f
    graphed = build_run({**QWEN, "cuda_graphs": "full"})
    (g,) = all_stage_times(graphed, rates)
    assert g.host_wait == 0 and g.f + g.b < t.f + t.b
    steps = {scope: estimate(build_run({**QWEN, "cuda_graphs": scope})).step_time_s for scope in CUDA_GRAPH_SCOPES}
    assert steps["none"] > steps["router"] > steps["attn+router"] > steps["full"]
    assert steps["none"] > steps["attn"] > steps["attn+router"]


def test_an_overlapped_pair_lasts_the_launches_of_both_its_chunks():
    """EP overlap runs a forward and a backward chunk on two streams, but one host thread launches both: where
    the host is the limit (Qwen3-30B-A3B eager on a B200), the pair lasts the host's forward and backward
    launches together and overlapping buys nothing; with the launches in CUDA graphs it hides the all-to-all."""
    rates = rates_for(None, build_run(QWEN).node.gpu)
    run = build_run({**QWEN, "ep_comm": "overlapped"})
    (t,) = all_stage_times(run, rates)
    assert t.host_f + t.host_b > 1.2 * t.pair_slots_s()  # the GPU's side of the pair is the shorter
    assert t.overlapped_pair_s() == t.host_f + t.host_b
    report = estimate(run)
    assert report.pair_host_wait_s == pytest.approx(t.host_f + t.host_b - t.pair_slots_s())
    assert report.chunk_s["F&B"] == pytest.approx(t.host_f + t.host_b)
    assert report.step_time_s == pytest.approx(estimate(build_run(QWEN)).step_time_s, rel=0.01)  # in turn
    graphed = {**QWEN, "cuda_graphs": "full"}
    (g,) = all_stage_times(build_run({**graphed, "ep_comm": "overlapped"}), rates)
    assert g.host_f == g.host_b == 0 and g.overlapped_pair_s() == g.pair_slots_s()
    in_turn, overlapped = (
        estimate(build_run({**graphed, "ep_comm": m})).step_time_s for m in ("exposed", "overlapped")
    )
    assert overlapped < 0.8 * in_turn


@settings(max_examples=12, deadline=None)
@given(
    model=st.sampled_from(["qwen3-30b-a3b", "deepseek-v2-lite", "llama-3.1-8b"]),
    micro_batch=st.sampled_from([1, 2, 4]),
    recompute=st.sampled_from(["none", "selective", "full"]),
)
def test_capturing_more_is_never_slower(model, micro_batch, recompute):
    ep = 1 if model == "llama-3.1-8b" else 8
    base = {**QWEN, "model": model, "ep": ep, "micro_batch": micro_batch, "recompute": recompute,
            "global_batch_tokens": 4096 * micro_batch * 64}  # fmt: skip
    steps = {s: estimate(build_run({**base, "cuda_graphs": s}), check_memory=False).step_time_s
             for s in CUDA_GRAPH_SCOPES}  # fmt: skip
    order = ("none", "router", "attn+router", "full")
    assert all(steps[a] >= steps[b] for a, b in itertools.pairwise(order))
    assert steps["none"] >= steps["attn"] >= steps["attn+router"]


@pytest.mark.parametrize("network", ["analytic", "flow"])
@pytest.mark.parametrize("ep_comm", ["exposed", "overlapped"])
def test_the_event_model_waits_as_the_analytic_one(network, ep_comm):
    from simulator.events.simulate import simulate

    run = build_run({**QWEN, "ep_comm": ep_comm})
    sim = simulate(run, "published", network=network)
    assert sim.step_time_s == pytest.approx(estimate(run).step_time_s, rel=0.03)


def _trace(tmp_path, spans):
    """A profiler trace of annotated spans, each with CPU activity over `busy` of it and `launches` launches."""
    events, ts = [], 0.0
    for name, dur, busy, launches in spans:
        events.append({"ph": "X", "cat": "user_annotation", "name": name, "ts": ts, "dur": dur})
        events.append({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": ts, "dur": busy * dur})
        for i in range(launches):
            events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": ts + i, "dur": 1})
        events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaEventQuery", "ts": ts, "dur": dur})  # polls
        ts += dur
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"traceEvents": events}))
    return path


def test_a_span_is_host_time_unless_the_host_waited_in_it(tmp_path):
    path = _trace(
        tmp_path,
        [("attn(F)", 3000, 0.7, 60), ("dispatch(F)", 20000, 0.01, 3), ("attn(B)", 5000, 0.9, 90),
         ("mlp(W)", 300, 0.3, 12), ("ProfilerStep#1", 100, 1.0, 0)],
    )  # fmt: skip
    spans = host_spans(path)
    assert set(spans) == {"attn(F)", "dispatch(F)", "attn(B)", "mlp(W)"}  # phase-named spans only
    assert spans["attn(F)"]["host_s"] == pytest.approx(3000e-6) and spans["attn(F)"]["launches"] == 60
    assert spans["dispatch(F)"]["host_s"] == pytest.approx(200e-6) and spans["dispatch(F)"]["waits"] == 1
    assert spans["mlp(W)"]["phase"] == "backward"
    per_layer = host_per_layer(spans, layers=1)
    assert per_layer == pytest.approx({"forward": 3200e-6, "backward": 5300e-6})
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"traceEvents": [{"ph": "X", "cat": "kernel", "name": "k", "ts": 0, "dur": 1}]}))
    with pytest.raises(ValueError, match="no annotated spans"):
        host_spans(empty)


def test_train_notes_the_wait_and_takes_graphs(capsys, tmp_path):
    flags = ["--model", "qwen3-30b-a3b", "--gpu", "b200", "--gpus", "8", "--pp", "1", "--ep", "8", "--schedule",
             "1f1b", "--global-batch-tokens", "2097152", "--goodput", "off"]  # fmt: skip
    assert main(["train", *flags]) == 0
    assert "waiting for the host to launch kernels one by one (CUDA graphs: none" in capsys.readouterr().out
    assert main(["train", *flags, "--ep-comm", "overlapped"]) == 0
    assert "of each overlapped F&B pair's" in capsys.readouterr().out
    assert main(["train", "--json", *flags, "--cuda-graphs", "full"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run"]["cuda_graphs"] == "full" and not any("host" in n for n in out.get("notes", []))
    spec = tmp_path / "run.toml"
    spec.write_text('cuda_graphs = "sometimes"\n')
    assert main(["train", "--spec", str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda_graphs='sometimes'; use one of none, router, attn, attn+router, full" in err[0]


def test_a_malformed_host_table_is_one_line(tmp_path, monkeypatch):
    import hwmodels.host as host

    monkeypatch.setattr(host, "DATA_DIR", tmp_path)
    good = (DATA_DIR / "deepseek-v3-train.toml").read_text()
    for bad, match in (
        (good.replace("layers = 4", "layers = 0"), "layers must be a positive integer"),
        (good.replace('phase = "forward"', 'phase = "sideways"', 1), "needs phase forward/backward"),
        (good.replace("launches = 248", 'launches = "many"'), "needs phase forward/backward, host_s and launches"),
        (good.replace("host_s = 0.012646", "host_s = -1.0"), "host_s and launches >= 0"),
    ):
        (tmp_path / "bad.toml").write_text(bad)
        host.load_host_trace.cache_clear()
        with pytest.raises(ValueError, match=match):
            host.load_host_trace("bad")
    host.load_host_trace.cache_clear()
    with pytest.raises(ValueError, match="no host-time table 'absent'"):
        host.load_host_trace("absent")
    host.load_host_trace.cache_clear()
