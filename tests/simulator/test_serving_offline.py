"""The offline benchmark in the serving event model (`simulator.events.offline`, `v3sim serve --offline`):
every request queued at once at a co-located pool, run to the last token, as trtllm-bench's throughput runs."""

from __future__ import annotations

import json

import pytest

from simulator.analytic.profile import rates_for
from simulator.cli import main
from simulator.events.offline import simulate_offline
from simulator.explore.servingvalidate import offline_figure, pose, published_result
from simulator.presets import deployment

SPEC = deployment("qwen3-30b-a3b", "h100", weight_dtype="fp8", context=1024, colocated=True, output_tokens=512,
                  tp=1, ep=1, batch=64)  # fmt: skip
RATES = rates_for(None, SPEC.node.gpu)


def run(requests: int, seed: int = 0, input_len: str = "512", output_len: str = "512") -> dict:
    return simulate_offline(SPEC, RATES, requests, input_len, output_len, seed)


def test_every_output_token_is_counted_over_the_whole_run():
    for n in (1, 100):
        out = run(n)
        assert out["output_tokens_per_s_per_gpu"] * out["makespan_s"] * out["gpus"] == pytest.approx(n * 512)
        assert out["input_tokens_per_s_per_gpu"] == pytest.approx(out["output_tokens_per_s_per_gpu"])  # 512 / 512
    assert run(1)["mean_batch_per_gpu"] == pytest.approx(1.0)  # one sequence: a batch of one throughout


def test_many_requests_approach_the_steady_point_and_few_fall_short_of_it():
    """Ramp-up and drain weigh less the more requests there are: 2,048 requests (32 batches) land within 4% of
    the steady co-located point, below it; 64 (one batch) never fill the pool's batch evenly and fall short
    (measured 2026-12-07, each step taking a whole 512-token prompt beside its batch: -0.2% and -7.5%)."""
    few, many = run(64), run(2048)
    steady = many["steady_output_tokens_per_s_per_gpu"]
    assert few["steady_output_tokens_per_s_per_gpu"] == steady and many["steady_batch_per_gpu"] == 64
    assert many["output_tokens_per_s_per_gpu"] == pytest.approx(steady, rel=0.04)
    assert few["output_tokens_per_s_per_gpu"] < 0.95 * steady < many["output_tokens_per_s_per_gpu"] < steady
    assert few["mean_batch_per_gpu"] < 0.95 * 64 < many["mean_batch_per_gpu"] <= 64


def test_fixed_lengths_draw_nothing_and_drawn_ones_follow_the_seed():
    assert run(50, seed=0) == {**run(50, seed=1), "seed": 0}
    drawn = [run(50, seed, "uniform:256-512", "uniform:256-512")["makespan_s"] for seed in (0, 0, 1)]
    assert drawn[0] == drawn[1] != drawn[2]


@pytest.mark.parametrize(
    ("spec", "requests", "message"),
    [
        (deployment("qwen3-30b-a3b", "h100", weight_dtype="fp8", context=1024, tp=1, ep=1), 10, "add --colocated"),
        (SPEC, 0, "requests=0 must be from 1 to"),
        (SPEC, 2.5, "requests=2.5 must be from 1 to"),
    ],
)
def test_bad_offline_runs_are_one_line_errors(spec, requests, message):
    with pytest.raises(ValueError, match=message) as err:
        simulate_offline(spec, RATES, requests, "512", "512")
    assert "\n" not in str(err.value)


def test_a_published_offline_row_is_its_run_in_the_event_model():
    """TensorRT-LLM's overview publishes its request counts: the row is that run, priced afresh here."""
    r = published_result("trtllm-qwen3-235b-a22b-b200-8192-1024")
    spec, _ = pose(r)
    rates = rates_for(r["profile"], spec.node.gpu)  # TensorRT-LLM's own kernels (b200-trtllm)
    out = simulate_offline(spec, rates, r["requests"], "8192", "1024", harness=r["harness"])
    assert r["requests"] == 1500 and offline_figure(r["id"]) == out["output_tokens_per_s_per_gpu"]


def test_cli_serve_offline(capsys):
    args = ["serve", "--model", "qwen3-30b-a3b", "--gpu", "h100", "--weight-dtype", "fp8", "--context", "1024",
            "--colocated", "--output-tokens", "512", "--tp", "1", "--ep", "1", "--batch", "64"]  # fmt: skip
    assert main([*args, "--offline", "--requests", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["offline"]
    assert out == run(64)
    assert main([*args, "--offline", "--requests", "64"]) == 0
    text = capsys.readouterr().out
    assert "64 requests queued at once" in text and "over the whole run" in text
    for extra, message in (
        (["--rate", "2"], "--offline queues every request at once: drop --rate"),
        (["--requests", "64"], "describe the load: give --rate QPS (or --offline) too"),
    ):
        assert main([*args, *extra, *(["--offline"] if "--rate" in extra else [])]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert main([a for a in args if a != "--colocated"] + ["--offline"]) == 2
    assert "--offline runs one co-located pool: add --colocated" in capsys.readouterr().err


def test_validate_computes_the_offline_rows_in_this_process_where_no_pool_starts(monkeypatch):
    """A sandbox without process pools still gets every figure, computed here, the same as a pool's."""
    import simulator.explore.servingvalidate as sv

    def no_pool(*args, **kwargs):
        raise OSError("no semaphores here")

    ids = ["trtllm-qwen3-235b-a22b-b200-8192-1024", "trtllm-qwen3-235b-a22b-gb200-8192-1024"]
    want = {i: sv.offline_figure(i) for i in ids}
    monkeypatch.setattr(sv, "_OFFLINE", {})
    monkeypatch.setattr(sv, "ProcessPoolExecutor", no_pool)
    assert sv.offline_figures(ids) == want


def test_a_closed_loop_on_a_prefill_first_scheduler_is_posed_as_bursts():
    """AIConfigurator's aggregated SGLang rows ran aiperf closed loops of fixed-length requests; SGLang runs
    waiting prompts before decoding, so every round is a burst of the concurrency: the row is one such burst in
    the event model, its mean TPOT read. The prompts' chunks sit inside the decode span of the requests ahead of
    them, so the mean TPOT lies above the decode-only step at that batch and grows with the burst (measured
    2026-12-07 on Qwen3-32B, 2 H100: 16.5 / 30.1 / 48.5 ms at 16 / 64 / 128 in AIConfigurator's silicon sample,
    v3sim's bursts 18.1 / 29.9 / 46.0; their mean TTFT 0.84 / 2.53 / 4.36 s, v3sim's 0.63 / 1.90 / 3.57)."""
    r = published_result("aic-qwen3-32b-h100-sglang-tp2-c64")
    assert r["requests"] == 64 and r["metric"] == "tpot_ms" and "batch_per_instance" not in r
    spec, _ = pose(r)
    rates = rates_for(None, spec.node.gpu)
    tpot = {c: simulate_offline(spec, rates, c, "1024", "128")["mean_tpot_s"] * 1e3 for c in (16, 64, 128)}
    assert offline_figure(r["id"]) == pytest.approx(tpot[64])
    assert tpot[16] < tpot[64] < tpot[128]
    decode_only = 1e3 * simulate_offline(spec, rates, 1, "1024", "128")["mean_tpot_s"]
    assert decode_only < tpot[16]


def refused_reading(monkeypatch, tmp_path, text: str, message: str) -> None:
    """Reading published serving results from `text` (in place of the shipped file) raises `message`."""
    from simulator.explore import servingvalidate

    path = tmp_path / "published_serving.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(servingvalidate, "PATH", path)
    servingvalidate._read.cache_clear()
    try:
        with pytest.raises(ValueError, match=message):
            servingvalidate.published_serving()
    finally:
        servingvalidate._read.cache_clear()


def test_a_row_with_requests_and_a_batch_of_its_own_is_refused(monkeypatch, tmp_path):
    from simulator.explore import servingvalidate

    r = published_result("aic-qwen3-32b-h100-sglang-tp2-c64")
    text = servingvalidate.PATH.read_text(encoding="utf-8").replace(
        f'id = "{r["id"]}"\n', f'id = "{r["id"]}"\nbatch_per_instance = 64\n'
    )
    refused_reading(monkeypatch, tmp_path, text, "no batch of its own")


def test_a_burst_rows_ttft_is_its_runs_mean_and_needs_an_offline_run(monkeypatch, tmp_path):
    """The SGLang burst rows' twins read the same run's mean TTFT; a TTFT row without an offline run (the
    steady co-located point has no queue to wait in) is refused."""
    from simulator.explore import servingvalidate

    tpot, ttft = (published_result(f"aic-qwen3-32b-h100-sglang-tp2-c64{s}") for s in ("", "-ttft"))
    assert ttft["metric"] == "ttft_ms" and ttft["requests"] == tpot["requests"] == 64
    spec, _ = pose(ttft)
    out = simulate_offline(spec, rates_for(None, spec.node.gpu), 64, "1024", "128")
    assert offline_figure(ttft["id"]) == pytest.approx(out["mean_ttft_s"] * 1e3)
    block = next(b for b in servingvalidate.PATH.read_text(encoding="utf-8").split("[[result]]")
                 if f'id = "{ttft["id"]}"' in b)  # fmt: skip
    refused_reading(monkeypatch, tmp_path, "[[result]]" + block.replace("requests = 64\n", ""), "a TTFT is read")
