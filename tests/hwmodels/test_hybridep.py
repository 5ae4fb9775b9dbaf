"""HybridEP's kernels by ranks and SMs (hwmodels/data/kernels/hybridep.toml): the table against the figures it was
read from, its change of byte count checked on drawn routings, and what it does to a run's all-to-all (issue 20:
"price every operation from kernel-level sources")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.collectives import TwoLevelNet, all_gather
from hwmodels.kernels import hybridep_kernels, hybridep_tables
from hwmodels.registry import load_gpu
from simulator.analytic.epcomm import ep_kernel_floor_s, ep_link_s, ep_setup_s, hybridep_kernel
from simulator.analytic.report import estimate
from simulator.events.simulate import simulate
from simulator.runspec import build_run
from workloads.ops import ep_ops

# Megatron-Bridge's Qwen3-30B-A3B A/B on 16 H100 (skills/nemo-mbridge-perf-moe-comm-overlap/SKILL.md @ 067f987df),
# EP overlap off: HybridEP across two nodes, exposed
H100_AB = {"model": "qwen3-30b-a3b", "gpu": "h100", "gpus": 16, "tp": 1, "pp": 1, "ep": 16, "schedule": "1f1b",
           "precision": "bf16", "seq_len": 4096, "micro_batch": 1, "global_batch_tokens": 4194304,
           "recompute": "none", "cuda_graphs": "router", "ep_dispatcher": "hybridep"}  # fmt: skip
B200_EP8 = {"model": "qwen3-30b-a3b", "gpu": "b200", "gpus": 8, "pp": 1, "ep": 8, "schedule": "1f1b",
            "precision": "fp8", "seq_len": 4096, "micro_batch": 4, "global_batch_tokens": 2097152,
            "ep_dispatcher": "hybridep"}  # fmt: skip


def forward_ops(run):
    tokens = run.micro_batch * run.seq_len
    return ep_ops(run.model, run.layout, tokens, ("forward",), run.node_limit, run.precision, run.ep_dispatcher)


def test_the_table_reads_the_published_torch_api_rates():
    """DeepEP docs/README_Hybrid-EP.md @ 41cad944, Torch API columns, scaled to v3sim's byte count: H100 16 ranks
    (two nodes) on 8 SMs, bf16 dispatch 57.74 GB/s of which half is the sender's own node; B200 8 ranks 16 SMs
    combine 530.86 GB/s of which 1/8 is the receiver's own tokens; GB200 36 ranks 32 SMs dispatch 479.02."""
    tables = hybridep_tables()
    assert tables["h100"]["dispatch"].rate(16, 8) == pytest.approx(57.74e9 * (1 - 8 / 16))
    assert tables["h100"]["combine"].rate(64, 4) == pytest.approx(41.00e9 * (1 - 8 / 64))
    assert tables["b200"]["combine"].rate(8, 16) == pytest.approx(530.86e9 * (1 - 1 / 8))
    assert tables["gb200"]["dispatch"].rate(36, 32) == pytest.approx(479.02e9 * (1 - 1 / 36))
    # 16 SMs measured slower than 8 at 16 ranks (54.47): more SMs are never slower, the rate is held at 8's
    assert tables["h100"]["dispatch"].rate(16, 16) == tables["h100"]["dispatch"].rate(16, 8)
    assert tables["gb200"]["dispatch"].rate(72, 32) == tables["gb200"]["dispatch"].rate(36, 32)  # held past 36


def test_gpus_take_their_die_table_and_others_none():
    assert hybridep_kernels(load_gpu("h800")) is hybridep_tables()["h100"]
    assert hybridep_kernels(load_gpu("h200")) is hybridep_tables()["h100"]
    assert hybridep_kernels(load_gpu("gb200")) is hybridep_tables()["gb200"]  # its own, not the B200's
    assert hybridep_kernels(load_gpu("a100")) is None and hybridep_kernels(load_gpu("mi300x")) is None


@pytest.mark.parametrize("ranks", [16, 32, 64])
def test_the_byte_count_changes_as_the_benchmark_counts(ranks):
    """The benchmark's routing (4,096 tokens, top-8 of 8 experts per rank, each token's experts drawn without
    replacement) drawn here: its InfiniBand count (nodes reached, the sender's own included) against the remote
    nodes only, and a receiver's tokens (its own included) against those from other GPUs of an NVLink domain of
    that many ranks, come out at the factors the table scales by."""
    rng = np.random.default_rng(ranks)
    tokens, k, per_node = 4096, 8, 8
    experts = 8 * ranks
    picks = np.argsort(rng.random((tokens, experts)), axis=1)[:, :k]  # k distinct experts a token
    nodes = picks // (experts // (ranks // per_node))
    reached = np.array([len(set(row)) for row in nodes])
    remote = np.array([len(set(row) - {0}) for row in nodes])  # the sender sits on node 0
    assert remote.sum() / reached.sum() == pytest.approx(1 - per_node / ranks, rel=0.02)
    gpus = picks // 8
    received = np.array([len(set(row)) for row in gpus])  # copies, one per GPU reached
    others = np.array([len(set(row) - {0}) for row in gpus])  # the sender is GPU 0
    assert others.sum() / received.sum() == pytest.approx(1 - 1 / ranks, rel=0.02)


@settings(max_examples=200, deadline=None)
@given(
    gpu=st.sampled_from(sorted(hybridep_tables())),
    kind=st.sampled_from(("dispatch", "combine")),
    ranks=st.integers(2, 128),
    sms=st.integers(1, 131),
    more=st.integers(1, 40),
)
def test_more_sms_are_never_slower(gpu, kind, ranks, sms, more):
    kernel = hybridep_tables()[gpu][kind]
    assert kernel.rate(ranks, sms + more) >= kernel.rate(ranks, sms) > 0


def test_hybridep_across_h100_nodes_is_slower_than_its_links():
    """Across two H100 nodes HybridEP's torch API moves ~29 GB/s of remote bytes, a ConnectX-7 40: the table,
    not the NIC, sets the time of every dispatch and combine."""
    run = build_run(H100_AB)
    assert run.layout.ep_nodes == 2
    for op in forward_ops(run):
        kernel = hybridep_kernel(run, op.kind)
        assert kernel is not None and kernel.domain == "ib"
        nic = op.ib_bytes / run.node.scaleout_achieved_bw_bytes_per_s_per_gpu
        assert ep_link_s(run, op) == ep_kernel_floor_s(run, op) == pytest.approx(op.ib_bytes / kernel.rate(16, 20))
        assert 1.3 < ep_link_s(run, op) / nic < 1.45


def test_the_h100_profile_shows_about_the_time_the_table_gives():
    """Megatron-Bridge's profile of that run (rank 0, overlap off): 9.079 ms of communication ran beside GEMMs or
    attention, 0.11% of the communication time, so 7.9-8.7 s of HybridEP a 24.7 s step (0.105-0.115%). v3sim's
    exposed all-to-all, from the kernel table and the routing maps' all-gather: within 20% of that (7.4 s; by its links
    alone it was 5.2 s)."""
    report = estimate(build_run(H100_AB))
    exposed = report.breakdown["exposed_ep_comm"]
    assert 0.8 * 9.079e-3 / 0.00115 < exposed < 1.2 * 9.079e-3 / 0.00105


def test_inside_one_h100_node_the_links_price_it():
    """The H100 table was timed across nodes only: EP8 inside one node takes no table and its links alone."""
    run = build_run({**H100_AB, "gpus": 8, "ep": 8, "global_batch_tokens": 2097152})
    for op in forward_ops(run):
        assert hybridep_kernel(run, op.kind) is None and ep_kernel_floor_s(run, op) == 0


def test_on_blackwell_the_kernel_sets_the_time_and_both_models_agree():
    """A B200 node: HybridEP's ~470 GB/s of NVLink copies under NVLink 5's 720: the kernel is the limit; the event
    model prices the same floor."""
    run = build_run(B200_EP8)
    for op in forward_ops(run):
        assert ep_link_s(run, op) > op.nvlink_bytes / run.node.scaleup_achieved_bw_bytes_per_s
    assert simulate(run).step_time_s == pytest.approx(estimate(run).step_time_s, rel=0.05)


def test_each_forward_dispatch_first_gathers_the_routing_maps():
    """HybridEP's metadata preprocessing gathers every EP rank's routing map (one byte per token and expert; NCCL's
    all-gather across nodes) before each forward dispatch; the backward reuses its handle, the combine needs none.
    Qwen3-30B-A3B on 16 H100: 16 maps of 4,096 x 128 bytes, tens of microseconds a layer; DeepEP pays its own
    measured call cost instead."""
    run = build_run(H100_AB)
    phases = ("forward", "backward_input")
    ops = ep_ops(run.model, run.layout, 4096, phases, run.node_limit, run.precision, run.ep_dispatcher)
    setup = {(op.kind, op.phase): ep_setup_s(run, op) for op in ops}
    gathered = all_gather(16, 4096 * 128 * 16, TwoLevelNet.of_node(run.node)).time_s
    assert setup.pop(("dispatch", "forward")) == pytest.approx(gathered) and 20e-6 < gathered < 0.5e-3
    assert set(setup.values()) == {0.0}
    deepep = build_run({**H100_AB, "ep_dispatcher": "deepep"})
    assert ep_setup_s(deepep, ops[0]) == pytest.approx(25.6e-6)  # DeepEP's H100 dispatch call (deepep.toml)
