"""The analytic training model: schedules, validation, sensitivities, the V3 figure, the CLI."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.registry import load_node
from simulator.analytic.memory import memory_per_gpu
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.analytic.training import BREAKDOWN_KEYS, block_times, resolved
from simulator.cli import main
from simulator.explore.sensitivity import sensitivity
from simulator.explore.validate import GPU_HOURS_TOLERANCE, validation_rows
from simulator.runspec import v3_pretraining
from simulator.schedules import ChunkTimes, bubble_s, inflight_microbatches, param_copies
from workloads.layout import balanced_layer_counts, stage_layer_counts
from workloads.registry import load_model


@pytest.fixture(scope="module")
def v3_report():
    return estimate(v3_pretraining())


# --- schedules: the DualPipe README / V3 report table -------------------------------------------


@pytest.mark.golden
@pytest.mark.parametrize(("name", "schedule"), [("1F1B", "1f1b"), ("ZB1P", "zb1p"), ("DualPipe", "dualpipe")])
@pytest.mark.parametrize("pp", [2, 4, 8, 16])
def test_bubble_matches_the_published_formula(figures, name, schedule, pp):
    formula = figures["pipeline_bubbles"][name].replace("F&B", "FB").replace(")(", ")*(")
    formula = re.sub(r"(\d)([A-Z])", r"\1*\2", formula)  # 2W -> 2*W
    t = ChunkTimes(f=1.3, b=2.9, w=0.7, fb=3.6)
    published = eval(formula, {}, {"PP": pp, "F": t.f, "B": t.b, "W": t.w, "FB": t.fb})
    assert bubble_s(schedule, pp, t) == pytest.approx(published)


@pytest.mark.golden
def test_memory_multipliers_match_the_published_table(figures):
    table = figures["pipeline_bubbles"]
    for name, schedule in (("1F1B", "1f1b"), ("ZB1P", "zb1p"), ("DualPipe", "dualpipe")):
        assert f"{param_copies(schedule)}x" == table["parameter_memory"][name]
        expected = {"PP": 16, "PP+1": 17}[table["activation_memory"][name]]
        assert inflight_microbatches(schedule, 16, stage=0) == expected


def test_dualpipe_bubble_is_below_1f1b_for_the_same_layout():
    one = estimate(v3_pretraining(schedule="1f1b"))
    dual = estimate(v3_pretraining(schedule="dualpipe"))
    assert dual.breakdown["bubble"] < one.breakdown["bubble"]
    assert dual.step_time_s < one.step_time_s  # and the overlap hides EP traffic 1F1B leaves exposed
    assert dual.breakdown["exposed_ep_comm"] < one.breakdown["exposed_ep_comm"]


# --- the model's sensitivities -----------------------------------------------------------------


def test_fp8_gemms_dispatch_and_memory_beat_bf16():
    """What the FP8 recipe buys in this model: faster GEMMs, half the dispatch bytes, less memory, and a shorter
    step; its casts take part of the GEMM gain back (docs/training.md). How much all-to-all stays exposed is not
    among them: it depends on the compute it hides under and on the stage split each precision balances to."""
    from simulator.analytic.pricing import op_s
    from simulator.analytic.profile import rates_for
    from simulator.analytic.training import block_ops, block_times

    gemms, layer, dispatch = {}, {}, {}
    for precision in ("fp8", "bf16"):
        run = v3_pretraining(precision=precision)
        rates, hbm = rates_for(None, run.node.gpu), run.node.gpu.hbm_bw_bytes_per_s
        ops = block_ops(run, True)
        gemms[precision] = sum(op_s(o, rates) for o in ops if o.kind.endswith("gemm") and o.phase != "backward_weight")
        layer[precision] = sum(op_s(o, rates, 1.0, 1.0, hbm) for o in ops)
        dispatch[precision] = block_times(run, rates, (True,), False, False).dispatch_f
    assert gemms["fp8"] < 0.8 * gemms["bf16"]
    assert gemms["bf16"] - gemms["fp8"] > layer["bf16"] - layer["fp8"] > 0  # casts give part of it back
    assert dispatch["fp8"] < 0.55 * dispatch["bf16"]  # 1 byte and a scale per 128 values, not 2 bytes
    fp8 = estimate(v3_pretraining(precision="fp8"), check_memory=False)
    bf16 = estimate(v3_pretraining(precision="bf16"), check_memory=False)
    assert fp8.memory_per_gpu_bytes["total"] < bf16.memory_per_gpu_bytes["total"]
    assert fp8.step_time_s < bf16.step_time_s


@pytest.mark.parametrize("schedule", ["1f1b", "dualpipe"])
def test_halving_nic_bandwidth_raises_exposed_ep_time(schedule):
    run = v3_pretraining(schedule=schedule)
    nic = replace(run.node.nic, effective_bw_bytes_per_s=run.node.nic.effective_bw_bytes_per_s / 2)
    slow = run.with_(node=replace(run.node, nic=nic))
    assert estimate(slow).breakdown["exposed_ep_comm"] > estimate(run).breakdown["exposed_ep_comm"]


@given(st.floats(1.0, 8.0), st.sampled_from(["1f1b", "dualpipe"]), st.sampled_from([16, 32, 64, 128]))
def test_an_oversubscribed_fat_tree_is_never_faster(oversubscription, schedule, ep):
    full = v3_pretraining(topology="fat-tree-2", schedule=schedule, ep=ep)
    tapered = full.with_(oversubscription=oversubscription)
    assert estimate(tapered, check_memory=False).step_time_s >= estimate(full, check_memory=False).step_time_s


def test_oversubscription_slows_ep_only_when_the_group_leaves_the_leaf():
    # fat-tree-2, radix 64, 3:1: a leaf has 48 GPU ports (6 nodes) and 16 uplinks. EP128 spans 16 nodes:
    # most of its remote traffic leaves the leaf, more than the uplinks carry at NIC rate.
    full, tapered = (v3_pretraining(topology="fat-tree-2", ep=128, oversubscription=r) for r in (1.0, 3.0))
    assert estimate(tapered).breakdown["exposed_ep_comm"] > estimate(full).breakdown["exposed_ep_comm"]

    # EP16 (2 nodes) groups tile the 6-node leaves of 3:1 and the 4-node leaves of 1:1: no group leaves its
    # leaf, so the taper costs the all-to-all nothing. EP32 (4 nodes) groups straddle 6-node leaves: it does.
    # (The all-to-all's own time: the step's slowest rank may differ, the taper slowing the PP sends.)
    def all_to_all_s(ep: int, ratio: float) -> float:
        run = v3_pretraining(topology="fat-tree-2", ep=ep, oversubscription=ratio)
        t = block_times(run, rates_for(None, run.node.gpu), (True,), False, False)
        return t.dispatch_f + t.combine_f

    assert all_to_all_s(16, 3.0) == pytest.approx(all_to_all_s(16, 1.0), rel=1e-9)
    assert all_to_all_s(32, 3.0) > 1.5 * all_to_all_s(32, 1.0)


def test_expert_imbalance_and_node_limit_move_the_answer():
    base = estimate(v3_pretraining())
    assert estimate(v3_pretraining(expert_imbalance=1.3)).step_time_s > base.step_time_s
    # routing to any node sends more over the NICs: a longer step (the exposed share depends on the split each
    # balances to; on the same split, more of the all-to-all is exposed)
    assert estimate(v3_pretraining(node_limit=None)).step_time_s > base.step_time_s
    split = {"stage_layers": resolved(v3_pretraining()).stage_layers}
    free = estimate(v3_pretraining(node_limit=None, **split)).breakdown["exposed_ep_comm"]
    assert free > base.breakdown["exposed_ep_comm"]


# --- bookkeeping ----------------------------------------------------------------------------------


def test_report_adds_up(v3_report):
    r = v3_report
    assert set(r.breakdown) == set(BREAKDOWN_KEYS)
    assert sum(r.breakdown.values()) == pytest.approx(r.step_time_s)
    assert r.tokens_per_s == pytest.approx(r.tokens_per_step / r.step_time_s)
    assert r.gpu_hours == pytest.approx(14.8e12 / r.tokens_per_s * 2048 / 3600)
    assert r.cost_usd == pytest.approx(2.0 * r.gpu_hours)
    assert r.days == pytest.approx(14.8e12 / r.tokens_per_s / 86400)
    assert r.mfu["fp8"] == pytest.approx(r.mfu["bf16"] / 2, rel=1e-3)  # H800: fp8 peak is twice bf16
    assert sum(r.stage_layers) == 61
    assert r.memory_per_gpu_bytes["total"] <= 80e9
    assert set(r.to_dict()) >= {"step_time_s", "tokens_per_s", "mfu", "gpu_hours", "cost_usd", "days"}


def test_default_split_balances_the_head_and_mtp(v3_report):
    # the last stage carries the output head and MTP: the balancer gives it fewer layers than the middle
    assert v3_report.stage_layers[-1] < v3_report.stage_layers[len(v3_report.stage_layers) // 2]
    even = estimate(v3_pretraining(stage_layers=tuple(stage_layer_counts(61, 16))))
    assert v3_report.step_time_s <= even.step_time_s  # DualPipe: never worse than the even split
    # 1F1B runs the head's stage in turn with the others: balancing it is a clear win
    run = v3_pretraining(schedule="1f1b")
    balanced = estimate(run, check_memory=False)
    even = estimate(run.with_(stage_layers=tuple(stage_layer_counts(61, 16))), check_memory=False)
    assert balanced.step_time_s < 0.9 * even.step_time_s


@given(
    st.sampled_from(["dualpipe", "1f1b", "zb1p"]),
    st.lists(st.floats(1.0, 1.6), min_size=2, max_size=2, unique=True),
    st.sampled_from([1.0, 2.5]),
)
@settings(max_examples=12)
def test_more_expert_imbalance_is_never_faster(schedule, imbalances, oversubscription):
    # A sweep found the step getting 8% SHORTER at imbalance 1.10 than at 1.0: the old balancer fell back to
    # the even split at 1.0 and missed a better one. The searched split keeps the step monotone.
    lo, hi = sorted(imbalances)
    topology = "fat-tree-2" if oversubscription > 1 else "multi-plane"
    run = v3_pretraining(schedule=schedule, topology=topology, oversubscription=oversubscription)
    steps = [estimate(run.with_(expert_imbalance=x), check_memory=False).step_time_s for x in (lo, hi)]
    assert steps[0] <= steps[1] * (1 + 1e-9)


def test_v3_split_beats_the_even_and_layer_unit_splits(v3_report):
    run = v3_pretraining()
    rivals = [stage_layer_counts(61, 16), (4,) * 15 + (1,), (4,) * 14 + (3, 2)]
    for split in rivals:
        assert v3_report.step_time_s <= estimate(run.with_(stage_layers=tuple(split))).step_time_s
    assert sum(v3_report.stage_layers) == 61 and min(v3_report.stage_layers) >= 0


def test_a_searched_split_that_does_not_fit_falls_back_to_the_even_one(monkeypatch):
    """A searched split that needs more HBM than the GPU has (here, 9 layers forced onto stage 1: 87 GB) gives way
    to the even split when that one fits."""
    import simulator.analytic.report as report_module

    run = v3_pretraining()
    crowded = (1, 9, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 1)
    assert memory_per_gpu(run.with_(stage_layers=crowded))["total"] > 80e9
    even = tuple(stage_layer_counts(61, 16))
    monkeypatch.setattr(report_module, "resolved", lambda r, p=None: r.with_(stage_layers=crowded))
    monkeypatch.setattr(report_module, "split_candidates", lambda r, p: (crowded, even))
    report = estimate(run)
    assert report.stage_layers == list(even) and report.memory_per_gpu_bytes["total"] <= 80e9
    # the sweep's pass over batches takes the same turn
    out = report_module.estimate_batches(run, None, [run.global_batch_tokens])
    assert out["stage_split"][0] == ",".join(map(str, even)) and out["reason"][0] == ""


@given(st.integers(1, 80), st.integers(1, 16), st.floats(0, 6), st.floats(0, 6), st.booleans())
def test_balanced_counts_cover_the_layers_and_beat_the_even_split(layers, pp, first, last, paired):
    pp = min(pp, layers)
    if paired and pp % 2:
        pp = max(2, pp - 1) if layers >= 2 else 1
        paired = pp % 2 == 0
    counts = balanced_layer_counts(layers, pp, first, last, paired)
    assert sum(counts) == layers and min(counts) >= 0 and len(counts) == pp

    def worst(c):
        load = [n + (first if s == 0 else 0) + (last if s == pp - 1 else 0) for s, n in enumerate(c)]
        if paired:
            return max(load[r] + load[pp - 1 - r] for r in range(pp // 2))
        return max(load)

    assert worst(counts) <= worst(stage_layer_counts(layers, pp)) + 1e-9


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gpus": 2044}, "multiple of 8"),
        ({"ep": 48}, "ep=48"),
        ({"pp": 15, "gpus": 1920}, "even pp"),
        ({"global_batch_tokens": 4096 * 100}, "does not split"),
        ({"micro_batch": 8}, "needs >= 32"),
        ({"stage_layers": (4,) * 16}, "sum to 64"),
        ({"node": load_node("a100-ib")}, "no fp8"),
        ({"topology": "fat-tree-2", "radix": 8}, "endpoints"),
    ],
)
def test_bad_runs_are_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message) as err:
        estimate(v3_pretraining(**changes))
    assert "\n" not in str(err.value)


def test_a_run_that_does_not_fit_names_the_numbers():
    """No split can fit it (refused before the search, with the floor's parts); a given split names its own."""
    floor = r"needs at least \d+\.\d GB per GPU whatever the stage split .* has 85.5 GB \(79.6 GiB; its datasheet's 80"
    with pytest.raises(ValueError, match=floor):
        estimate(v3_pretraining(precision="bf16"))
    with pytest.raises(ValueError, match=r"needs \d+\.\d GB per GPU \(weights .* has 85.5 GB \("):
        estimate(v3_pretraining(precision="bf16", stage_layers=tuple(stage_layer_counts(61, 16))))


# --- the published figure --------------------------------------------------------------------------


@pytest.mark.golden
def test_v3_pretraining_gpu_hours_within_15_percent(figures, v3_report):
    # V3 report: 2,664K H800 GPU-hours for 14.8T tokens. The analytic model, with kernel-level sources only
    # (DeepGEMM's forward and weight-gradient tables, FlashMLA / FlashAttention-3, H200 kernel timings) and
    # nothing fitted to this figure, predicts 2,306K (-13.5%). See docs/training.md.
    published = figures["deepseek_v3"]["training"]["h800_gpu_hours_pretraining"]
    assert v3_report.gpu_hours == pytest.approx(published, rel=GPU_HOURS_TOLERANCE)
    assert v3_report.gpu_hours < published  # the miss is on the optimistic side: known, unexplained time


@pytest.mark.golden
def test_v3_as_it_ran_lands_within_10_percent(figures, v3_report):
    # The same run with the FP8 GEMMs V3 ran in 2024: DeepSeek's internal CUTLASS kernels (its training trace
    # names them), at DeepGEMM's published rates over DeepGEMM's published speedups against them. Kernel-level
    # only, nothing read from the run's rates: 2,424K (-9.0%). Slower kernels, so more than today's 2,306K.
    published = figures["deepseek_v3"]["training"]["h800_gpu_hours_pretraining"]
    as_ran = estimate(v3_pretraining(), "h800-v3-cutlass")
    assert as_ran.gpu_hours == pytest.approx(published, rel=0.10)
    assert v3_report.gpu_hours < as_ran.gpu_hours < published


def test_validate_rows_are_checked_and_honest():
    rows = validation_rows()
    assert {"figure", "published", "predicted", "rel_error", "tolerance", "ok"} <= set(rows[0])
    for r in rows:
        assert r["ok"] == (abs(r["rel_error"]) <= r["tolerance"] + 1e-12)
    misses = {r["figure"] for r in rows if not r["ok"]}
    assert "training GFLOPs/token qwen2.5-72b" in misses  # ISCA's figure: see test_workload_figures
    assert not {m for m in misses if "GPU-hours" in m and m.startswith("V3") and "(plan)" not in m}  # -9.0%
    v3 = next(r for r in rows if r["figure"] == "V3 pre-training H800 GPU-hours")
    assert abs(v3["rel_error"]) <= 0.10 and not v3["in_sample"]  # the kernels V3 ran, from kernel sources
    # the whole run (issue 26): each phase within 25%, out of sample (context extension -16%)
    assert not {m for m in misses if "(plan)" in m and m.startswith("V3")}
    runs = [r for r in rows if r.get("source")]
    in_sample = [r["figure"] for r in rows if r["in_sample"]]
    assert len(runs) >= 8 and in_sample == [
        "V3 pre-training H800 GPU-hours, kernels at the rates of V3's own trace",
        "Llama 3 405B effective training time (goodput), 16,384 H100, 54 days",  # its failure rates are the default
        *(  # SGLang's MTP runs: posed at the acceptance lengths they measured
            "SGLang decode on 2 nodes (16 H200), DP16 attention + EP16, 2 requests per rank, ISL 65,536 / OSL 4,096, "
            f"MTP {n}-token window (acceptance length {length}), no overlap scheduling"
            for n, length in ((3, 2.18), (4, 2.44))
        ),
    ]
    # Meta's research clusters fail far more often than Llama 3's production run: the rates do not carry over
    assert {"MTTF of a 1,024-GPU job on Meta's research clusters (h)"} <= misses


def test_sensitivity_ranks_inputs_and_moves_the_right_way():
    rows = sensitivity(v3_pretraining())
    swings = [r["swing"] for r in rows]
    assert swings == sorted(swings, reverse=True)
    by = {r["input"]: r for r in rows}
    assert by["compute efficiency"]["low_change"] > 0 > by["compute efficiency"]["high_change"]
    assert by["NIC bandwidth"]["low_change"] > 0 > by["NIC bandwidth"]["high_change"]
    assert by["price per GPU-hour"]["high_change"] == pytest.approx(0.2)


def test_a_dense_models_sensitivity_has_no_expert_rows():
    """No EP degree to move and no busiest expert GPU to load (it raised: expert_imbalance exceeds ep=1)."""
    rows = {r["input"] for r in sensitivity(v3_pretraining().with_(model=load_model("llama-3.1-8b"), ep=1))}
    assert rows == {"compute efficiency", "NIC bandwidth", "NVLink bandwidth", "price per GPU-hour"}


# --- CLI -------------------------------------------------------------------------------------------


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_default_json(capsys, v3_report):
    code, out, _ = run(capsys, "train", "--json")
    assert code == 0
    data = json.loads(out)
    for key in ("step_time_s", "tokens_per_s", "mfu", "gpu_hours", "cost_usd", "days", "memory_per_gpu_bytes"):
        assert key in data
    assert data["gpu_hours"] == pytest.approx(v3_report.gpu_hours)
    assert set(data["breakdown"]) == set(BREAKDOWN_KEYS)
    assert "schedule" in data["defaults"] and data["run"]["schedule"] == "dualpipe"


def test_train_options_explain_and_sensitivity(capsys):
    code, out, _ = run(capsys, "train", "--schedule", "1f1b", "--tokens", "1T", "--explain", "--sensitivity")
    assert code == 0
    assert "1f1b" in out and "gpu_hours =" in out and "NIC bandwidth" in out and "DeepGEMM" in out
    code, out, _ = run(capsys, "train", "--tokens", "1T", "--json")
    assert json.loads(out)["gpu_hours"] == pytest.approx(estimate(v3_pretraining(tokens=1e12)).gpu_hours)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ep", "48"], "ep=48"),
        (["--gpus", "1004"], "multiple of 8"),
        (["--precision", "bf16", "--tp", "1", "--zero", "1", "--recompute", "selective"], "GB per GPU"),
        (["--gpu", "nope"], "nope"),
    ],
)
def test_train_errors_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, "train", *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_validate_json(capsys):
    code, out, _ = run(capsys, "validate", "--json")
    assert code == 0
    rows = json.loads(out)
    assert any(r["figure"] == "V3 pre-training H800 GPU-hours" for r in rows)


def test_validate_reads_one_tolerance_table():
    """Every tolerance validate states is one row of simulator/data/tolerances.toml, each with its reason."""
    import tomllib

    from simulator.explore.validate import TOLERANCES_PATH, tolerance

    table = tomllib.loads(TOLERANCES_PATH.read_text())
    assert all(row["why"] and 0 <= row["rel"] < 1 for row in table.values())
    assert {r["tolerance"] for r in validation_rows()} <= {row["rel"] for row in table.values()}
    with pytest.raises(KeyError, match="no tolerance"):
        tolerance("v3_made_up_figure")


def test_schedules_are_one_table_of_records():
    """A schedule is a frozen record (bubble, in-flight micro-batches, parameter copies, direction, source);
    the tuples the CLI offers are derived from the table, and an unknown name is refused."""
    from simulator.schedules import BIDIRECTIONAL, SCHEDULES, TABLE, schedule

    assert tuple(TABLE) == SCHEDULES and BIDIRECTIONAL == ("dualpipe", "dualpipev")
    assert all(s.source for s in TABLE.values())
    assert [name for name, s in TABLE.items() if s.virtual_stages] == ["interleaved"]
    with pytest.raises(ValueError, match="unknown schedule 'gpipe'"):
        schedule("gpipe")
    t = ChunkTimes(f=1.0, b=2.0, w=1.0, fb=2.5)
    assert bubble_s("dualpipe", 16, t) == pytest.approx((16 / 2 - 1) * (2.5 + 2.0 - 3.0))  # V3 report, table 2


def test_the_step_is_the_slowest_ranks_own_step():
    """Every DualPipe rank's own step (pairs, the communication its unpaired chunks expose, bubble): the
    estimate takes the longest, not the rank with the longest overlapped pair (issue 20)."""
    from simulator.analytic.profile import rates_for
    from simulator.analytic.training import _rank_parts, rank_times, step_breakdown

    for sms in (20, 24):
        run = resolved(v3_pretraining(comm_sms=sms))
        rates = rates_for(None, run.node.gpu)
        n = np.array([run.microbatches])
        own = [float(sum(_rank_parts(run, t, n)[0].values())[0]) for t in rank_times(run, rates)]
        parts = step_breakdown(run, rates)[0]
        assert parts["compute"] + parts["exposed_ep_comm"] + parts["exposed_pp_comm"] + parts["bubble"] == (
            pytest.approx(max(own))
        )


@given(
    st.sampled_from(["deepseek-v3", "deepseek-v2-lite", "llama-3.1-8b", "mixtral-8x7b"]),
    st.sampled_from([2, 4, 8, 16]),
    st.sampled_from(["1f1b", "zb1p", "dualpipe", "dualpipev", "interleaved"]),
    st.sampled_from([0, 1, 2, 3]),
    st.sampled_from(["none", "selective"]),
    st.integers(1, 2),
    st.randoms(use_true_random=False),
)
@settings(max_examples=60, deadline=None)
def test_the_memory_floor_is_under_every_split(model, pp, schedule, zero, recompute, micro_batch, rng):
    """memory.memory_floor, which refuses a layout before its split is searched, is never above the fullest
    GPU's memory of any split (here: random ones, the even one and the searched one's candidates)."""
    from simulator.analytic.memory import memory_floor
    from simulator.runspec import build_run

    options = {"model": model, "gpus": 256, "pp": pp, "schedule": schedule, "zero_stage": zero}
    options |= {"recompute": recompute, "micro_batch": micro_batch, "tp": 1}
    if schedule == "interleaved":
        options["virtual_stages"] = 2
    try:
        run = build_run(options)
    except ValueError:
        return
    floor = memory_floor(run)
    layers = run.model.num_hidden_layers
    splits = [tuple(stage_layer_counts(layers, pp))]
    for _ in range(4):
        cuts = sorted(rng.randint(0, layers) for _ in range(pp - 1))
        splits.append(tuple(b - a for a, b in zip([0, *cuts], [*cuts, layers], strict=True)))
    for split in splits:
        try:
            held = memory_per_gpu(run.with_(stage_layers=split))
        except ValueError:  # a split the layout refuses
            continue
        assert floor["total"] <= held["total"] * (1 + 1e-12), split


def test_a_chosen_split_is_the_run_with_that_split():
    """RunSpec.with_split (the balancer's copy, checking the split alone) = with_(stage_layers=...)."""
    run = v3_pretraining()
    split = (3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 3)
    assert run.with_split(split) == run.with_(stage_layers=split)
    assert run.with_split(split).defaults == run.defaults
    with pytest.raises(ValueError, match="sum to 60"):
        run.with_split((3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 2))
    with pytest.raises(ValueError, match="pp=16 counts"):
        run.with_split((61,))
