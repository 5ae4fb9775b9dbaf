"""Hardware co-design what-ifs (`simulator.explore.codesign`): the unchanged hardware is `estimate` exactly, each
multiplier moves the model where it should (more FLOP/s is not proportionally faster; more NIC bandwidth never
exposes more all-to-all), a run that no longer fits is a row, and bad multipliers are one-line errors."""

from __future__ import annotations

import math

import pytest

from hwmodels.cost import topology_metrics
from hwmodels.registry import load_switch
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.analytic.training import BREAKDOWN_KEYS
from simulator.explore.codesign import (
    KNOB_MULTIPLIERS,
    KNOBS,
    HardwareWhatIf,
    apply_whatif,
    evaluate,
    knob_table,
    ranked_knobs,
    topology_table,
)
from simulator.runspec import build_run, v3_pretraining

RUN = v3_pretraining()
BASE = evaluate(RUN)


def test_unchanged_hardware_is_the_estimate_exactly():
    report = estimate(RUN)
    assert BASE["fits"] and BASE["reason"] == ""
    assert BASE["step_time_s"] == report.step_time_s
    assert BASE["gpu_hours"] == report.gpu_hours
    assert BASE["cost_usd"] == report.cost_usd
    assert BASE["memory_per_gpu_bytes"] == report.memory_per_gpu_bytes["total"]
    assert all(BASE[f"{k}_s"] == report.breakdown[k] for k in BREAKDOWN_KEYS)
    assert apply_whatif(RUN, HardwareWhatIf()) is RUN


def test_double_flops_is_faster_but_not_twice_as_fast():
    whatif = HardwareWhatIf(compute_x=2.0)
    changed = apply_whatif(RUN, whatif)
    gpu, base_gpu = changed.node.gpu, RUN.node.gpu
    assert gpu.peak_fp8_flop_per_s == 2 * base_gpu.peak_fp8_flop_per_s
    assert gpu.peak_bf16_flop_per_s == 2 * base_gpu.peak_bf16_flop_per_s
    assert gpu.hbm_bw_bytes_per_s == base_gpu.hbm_bw_bytes_per_s
    # the achieved kernel rates follow the peaks (the profile applied as fractions of the new GPU's peaks)
    new, old = rates_for(None, gpu).fits["gemm_fp8"], rates_for(None, base_gpu).fits["gemm_fp8"]
    assert new.flop_per_s == pytest.approx(2 * old.flop_per_s, rel=1e-12)
    assert new.bytes_per_s == pytest.approx(old.bytes_per_s, rel=1e-12)
    row = evaluate(RUN, whatif)
    assert BASE["step_time_s"] / 2 < row["step_time_s"] < BASE["step_time_s"]
    assert row["compute_s"] < BASE["compute_s"]
    # what does not scale with FLOP/s: the all-to-all is now less hidden, not faster
    assert row["exposed_ep_comm_s"] >= BASE["exposed_ep_comm_s"]


@pytest.mark.parametrize("knob", ["compute_x", "hbm_bw_x", "scaleup_bw_x", "nic_bw_x"])
def test_more_of_a_rate_never_slows_the_step(knob):
    twice = evaluate(RUN, HardwareWhatIf(**{knob: 2.0}))
    half = evaluate(RUN, HardwareWhatIf(**{knob: 0.5}))
    assert twice["step_time_s"] <= BASE["step_time_s"] <= half["step_time_s"]


def test_more_nic_bandwidth_lowers_or_keeps_the_exposed_all_to_all():
    exposed = [evaluate(RUN, HardwareWhatIf(nic_bw_x=k))["exposed_ep_comm_s"] for k in (0.5, 1.0, 2.0, 4.0)]
    assert exposed == sorted(exposed, reverse=True)
    assert exposed[2] < exposed[1]
    # past 2x the NVLink forwarding leg limits the dispatch: more NVLink bandwidth then helps again
    both = evaluate(RUN, HardwareWhatIf(nic_bw_x=4.0, scaleup_bw_x=2.0))
    assert both["exposed_ep_comm_s"] < exposed[3]


def test_half_the_hbm_does_not_fit_and_is_a_row():
    row = evaluate(RUN, HardwareWhatIf(hbm_capacity_x=0.5))
    assert row["fits"] is False
    assert math.isnan(row["step_time_s"]) and math.isnan(row["gpu_hours"])
    assert row["hbm_bytes"] == RUN.node.gpu.hbm_bytes / 2 == 81559 * 2**20 / 2  # the H800's memory.total
    assert row["memory_per_gpu_bytes"] > row["hbm_bytes"]
    assert row["hbm_needed_x"] == pytest.approx(row["memory_per_gpu_bytes"] / RUN.node.gpu.hbm_bytes)
    assert 0.5 < row["hbm_needed_x"] <= 1.0
    assert "GB per GPU" in row["reason"] and "\n" not in row["reason"]
    assert evaluate(RUN, HardwareWhatIf(hbm_capacity_x=2.0))["step_time_s"] == BASE["step_time_s"]


def test_a_larger_nvlink_domain_keeps_more_of_the_all_to_all_on_nvlink():
    row = evaluate(RUN, HardwareWhatIf(scaleup_size_x=2.0))
    changed = apply_whatif(RUN, HardwareWhatIf(scaleup_size_x=2.0))
    assert changed.node.gpus_per_node == 16 and changed.node.nics_per_node == 16
    assert changed.node.scaleout_achieved_bw_bytes_per_s_per_gpu == RUN.node.scaleout_achieved_bw_bytes_per_s_per_gpu
    assert changed.layout.ep_nodes == 4 and RUN.layout.ep_nodes == 8
    assert row["gpus_per_domain"] == 16
    assert row["exposed_ep_comm_s"] < BASE["exposed_ep_comm_s"]
    assert row["step_time_s"] < BASE["step_time_s"]


def test_a_domain_that_does_not_divide_the_gpus_is_a_row():
    row = evaluate(RUN, HardwareWhatIf(scaleup_size_x=9.0))  # 72 GPUs per domain: 2,048 is not a multiple
    assert row["fits"] is False and "72" in row["reason"] and math.isnan(row["step_time_s"])
    fits = evaluate(build_run({"gpus": 2304}), HardwareWhatIf(scaleup_size_x=9.0))  # 32 racks of 72
    assert fits["gpus_per_domain"] == 72


def test_topology_changes_time_and_network_cost():
    two = evaluate(RUN, HardwareWhatIf(topology="fat-tree-2"))
    three = evaluate(RUN, HardwareWhatIf(topology="fat-tree-3"))
    spec = RUN.with_(topology="fat-tree-3").topology_spec
    assert three["network_cost_usd"] == topology_metrics(spec, load_switch("ib-ndr-64"))["cost_usd"]
    assert three["network_usd_per_gpu"] == three["network_cost_usd"] / 2048
    assert three["network_usd_per_gpu"] > two["network_usd_per_gpu"]
    tapered = evaluate(RUN, HardwareWhatIf(topology="fat-tree-2", oversubscription=2.0))
    assert tapered["step_time_s"] > two["step_time_s"] and tapered["network_cost_usd"] < two["network_cost_usd"]
    rows = topology_table(RUN)
    assert {r["kind"] for r in rows} >= {"fat-tree-2", "multi-plane", "fat-tree-3"}
    assert next(r for r in rows if r["kind"] == "multi-plane")["step_time_s"] == BASE["step_time_s"]


def test_knob_table_one_knob_at_a_time():
    table = knob_table(RUN)
    assert len(table) == len(KNOBS) * len(KNOB_MULTIPLIERS)
    assert all(r["step_time_s"] == BASE["step_time_s"] and r["change"] == 0 for r in table if r["multiplier"] == 1)
    for r in table:
        others = [k for k in KNOBS if k != r["knob"]]
        assert all(r[k] == 1.0 for k in others) and r[r["knob"]] == r["multiplier"]
    ranked = ranked_knobs(table)
    assert ranked[0]["knob"] == "compute_x"  # V3 on H800: FLOP/s buys most, then NIC bandwidth
    assert ranked[0]["change"] < ranked[1]["change"] < 0
    half_hbm = next(r for r in table if r["knob"] == "hbm_capacity_x" and r["multiplier"] == 0.5)
    assert not half_hbm["fits"] and math.isnan(half_hbm["change"])


def test_knob_table_from_a_what_if_base():
    base = HardwareWhatIf(compute_x=2.0)
    table = knob_table(RUN, base, (1.0, 2.0))
    flops = [r for r in table if r["knob"] == "compute_x"]
    assert flops[0]["step_time_s"] == evaluate(RUN, base)["step_time_s"]
    assert flops[1]["compute_x"] == 4.0
    beyond = knob_table(RUN, HardwareWhatIf(nic_bw_x=80.0), (2.0,))
    row = next(r for r in beyond if r["knob"] == "nic_bw_x")
    assert not row["fits"] and "at most 100" in row["reason"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"compute_x": float("nan")}, "compute_x=nan must be a finite number"),
        ({"nic_bw_x": float("inf")}, "nic_bw_x=inf must be a finite number"),
        ({"hbm_capacity_x": 0}, "hbm_capacity_x=0 must be above 0"),
        ({"hbm_bw_x": -2.0}, "hbm_bw_x=-2 must be above 0"),
        ({"scaleup_bw_x": 101}, "at most 100"),
        ({"scaleup_size_x": True}, "scaleup_size_x=True must be a finite number"),
        ({"compute_x": "2"}, "compute_x='2' must be a finite number"),
        ({"topology": "torus"}, "topology='torus'; use one of"),
        ({"oversubscription": 0.5}, "oversubscription=0.5 must be from 1"),
        ({"oversubscription": float("nan")}, "oversubscription=nan must be a finite number"),
    ],
)
def test_bad_what_ifs_are_one_line_errors(changes, words):
    with pytest.raises(ValueError) as info:
        HardwareWhatIf(**changes)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_domain_multiplier_off_whole_gpus_is_the_callers_error():
    with pytest.raises(ValueError, match=r"gives 10\.4 GPUs per NVLink domain"):
        evaluate(RUN, HardwareWhatIf(scaleup_size_x=1.3))
    with pytest.raises(ValueError, match="by name"):
        evaluate(RUN, profile=rates_for(None, RUN.node.gpu))  # type: ignore[arg-type]


def test_other_models_answer_at_the_engine_defaults():
    dense = build_run({"model": "llama-3.1-8b", "node": "h800-ib", "gpus": 2048})
    row = evaluate(dense, HardwareWhatIf(nic_bw_x=2.0))
    assert row["fits"] and row["step_time_s"] <= evaluate(dense)["step_time_s"]
    big = build_run({"model": "llama-3.1-70b", "node": "h800-ib", "gpus": 2048})
    short = evaluate(big)
    assert not short["fits"] and short["hbm_needed_x"] > 1
    more = evaluate(big, HardwareWhatIf(hbm_capacity_x=math.ceil(short["hbm_needed_x"] * 10) / 10))
    assert more["fits"] and more["step_time_s"] > 0
