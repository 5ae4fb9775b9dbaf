"""Published serving results beside what `v3sim serve` predicts for the same deployment (`v3sim validate`).

Each result in simulator/data/published_serving.toml names the deployment as published (model, GPU, weights'
dtype, prompt and output lengths, batch, parallelism, MTP, cache hits) and one measured figure. v3sim poses
it with `presets.deployment` (what a row leaves out takes v3sim's defaults, said in the row's note) and prices
it with `analytic.serving.serve`; nothing of these results is read by the serving model (`in_sample` says
where one was). The decode context is the prompt and half the output: the mean length a decode step attends.
A co-located result (`colocated = true`: prefill chunks on the decode GPUs, `simulator.analytic.colocated`)
is posed as `serve --colocated`: its context the whole request (prompt and output: the KV reserved),
`output_tokens` the output, which set each step's prompt chunk; its steps read each cache at the prompt and
half the output (`colocated.decoding_context`). A result of an offline benchmark that publishes its request
count (`requests = N`: every request queued at once, output tokens over the whole run, as trtllm-bench
reports) is priced as that run in the event model (`simulator.events.offline`), ramp-up and drain included:
once a process, the slowest rows of `validate` (about a second each). So is a closed-loop benchmark whose every
round is a burst (`requests` = its concurrency, its mean TPOT read: a prefill-first scheduler, SGLang's, runs a
round's prompts before its decoding, so fixed-length requests all finish on one step and the next round's
arrive together); its mean TTFT too, a second row. A result that names a `profile` (a shipped
one: the kernels its framework runs, as `h200-trtllm` prices TensorRT-LLM's MoE GEMMs on Hopper) is priced
from it.
"""

from __future__ import annotations

import os
import tomllib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from hwmodels.profile import shipped_profiles
from simulator.analytic.serving import serve
from simulator.names import HARNESSES
from simulator.presets import deployment
from simulator.servespec import WINDOW_KV_MODES
from workloads.engines import engine_names

PATH = Path(__file__).parents[1] / "data" / "published_serving.toml"
MTP_ACCEPTANCE = 0.85  # V3's second-token acceptance (V3 report 5.4.3: 85-90%) where a result used MTP
# metric -> (the phase that sets it, how to read it from serve()'s answer)
METRICS: dict[str, tuple[str, Any]] = {
    "output_tokens_per_s_per_gpu": ("decode", lambda o: o["output_tokens_per_s_per_gpu"]),
    "output_tokens_per_s_per_node": ("decode", lambda o: o["output_tokens_per_s_per_node"]),
    "output_tokens_per_s_per_user": ("decode", lambda o: o["output_tokens_per_s_per_sequence"]),
    "tpot_ms": ("decode", lambda o: o["tpot_s"] * 1e3),
    "ttft_ms": ("decode", lambda o: o["ttft_s"] * 1e3),  # an offline run's only (`OFFLINE_METRICS`)
    "input_tokens_per_s_per_gpu": ("prefill", lambda o: o["input_tokens_per_s_per_gpu"]),
    "input_tokens_per_s_per_node": ("prefill", lambda o: o["input_tokens_per_s_per_node"]),
}
# what an offline run (`requests`) reports, by metric: `simulator.events.offline.simulate_offline`'s answer
OFFLINE_METRICS: dict[str, Any] = {
    "output_tokens_per_s_per_gpu": lambda o: o["output_tokens_per_s_per_gpu"],
    "tpot_ms": lambda o: o["mean_tpot_s"] * 1e3,
    "ttft_ms": lambda o: o["mean_ttft_s"] * 1e3,
}
LAYOUT = ("tp", "ep", "redundant", "prefill_ep", "prefill_redundant")
REQUIRED = ("id", "figure", "metric", "published", "model", "gpu", "input_len", "source", "quote", "in_sample")


def chain_acceptance(drafts: int, accept_length: float) -> float:
    """The one acceptance rate per draft whose chain emits `accept_length` tokens a step on average, the target's
    own token included (1 + a + ... + a^drafts: a draft counts only if every one before it was accepted), as
    SGLang reports an "average acceptance length": a published mean, not a rate per depth."""
    if accept_length >= drafts + 1:
        return 1.0
    roots = np.polynomial.polynomial.polyroots([1.0 - accept_length] + [1.0] * drafts)
    return float(next(r.real for r in roots if abs(r.imag) < 1e-9 and 0 < r.real < 1))


def _mtp_chain_ok(r: dict[str, Any]) -> bool:
    n, length = r["mtp_tokens"], r.get("mtp_accept_length")
    return (
        r.get("mtp") is True
        and isinstance(n, int)
        and 1 <= n <= 8
        and isinstance(length, (int, float))
        and 1 < length <= n + 1
    )


def published_serving() -> list[dict[str, Any]]:
    """The published serving results, each checked to name a known metric, its source and its set-up (read
    once a process: the Serving page asks on every rerun)."""
    return [dict(r) for r in _read()]


@lru_cache(maxsize=1)
def _read() -> tuple[dict[str, Any], ...]:
    results = tomllib.loads(PATH.read_text(encoding="utf-8"))["result"]
    profiles = shipped_profiles()
    for r in results:
        missing = [k for k in REQUIRED if k not in r]
        if missing or r["metric"] not in METRICS or not isinstance(r["in_sample"], bool):
            raise ValueError(f"{PATH.name}: result {r.get('id')!r} needs {', '.join(missing) or 'a known metric'}")
        offline = r.get("colocated") and "output_len" in r and r["metric"] in OFFLINE_METRICS
        if "requests" in r and not (offline and isinstance(r["requests"], int) and "batch_per_instance" not in r):
            metrics = ", ".join(OFFLINE_METRICS)
            raise ValueError(f"{PATH.name}: result {r['id']!r}: requests (an offline run) needs a co-located pool, "
                             f"output_len, a metric of {metrics}, and no batch of its own")  # fmt: skip
        if r["metric"] == "ttft_ms" and "requests" not in r:
            raise ValueError(f"{PATH.name}: result {r['id']!r}: a TTFT is read from an offline run (requests)")
        if "harness" in r and (r["harness"] not in HARNESSES or "requests" not in r):
            raise ValueError(f"{PATH.name}: result {r['id']!r}: harness must be one of {', '.join(HARNESSES)}, on "
                             "an offline run (requests)")  # fmt: skip
        if "mtp_tokens" in r and not _mtp_chain_ok(r):
            raise ValueError(f"{PATH.name}: result {r['id']!r}: mtp_tokens (an integer from 1 to 8) needs mtp = true "
                             "and mtp_accept_length, over 1 and at most mtp_tokens + 1")  # fmt: skip
        if "engine" in r and r["engine"] not in engine_names():
            raise ValueError(f"{PATH.name}: result {r['id']!r}: engine must be one of {', '.join(engine_names())}")
        if "profile" in r and r["profile"] not in profiles:
            raise ValueError(f"{PATH.name}: result {r['id']!r}: profile must be a shipped profile, one of "
                             f"{', '.join(profiles)}")  # fmt: skip
    return tuple(results)


def serving_options(r: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The `presets.deployment` arguments a published result describes (each a `v3sim serve` flag:
    explore/reproduce.py), and the phase its metric is read from."""
    phase = METRICS[r["metric"]][0]
    output = int(r.get("output_len", 0))
    context = int(r["input_len"]) + (output // 2 if phase == "decode" else 0)
    options: dict[str, Any] = {"model": r["model"], "gpu": r["gpu"]}
    if "weight_dtype" in r:
        options["weight_dtype"] = r["weight_dtype"]
    options |= {k: r[k] for k in LAYOUT if k in r}
    if r.get("colocated"):
        context = int(r["input_len"]) + output
        options |= {"colocated": True, "output_tokens": output}
    options["context"] = max(context, 2)
    if r.get("cache_hit"):
        options["cache_hit"] = float(r["cache_hit"])
    for key in ("kv_dtype", "attention_dtype", "activation_dtype", "dense_weight_dtype", "fp8_recipe"):
        if key in r:
            options[key] = r[key]
    if phase == "decode" and "batch_per_gpu" in r:
        options["batch"] = r["batch_per_gpu"]
    if phase == "decode" and "batch_per_instance" in r:
        options["batch_per_instance"] = r["batch_per_instance"]
    if r.get("mtp") is True:
        options["mtp_acceptance"] = MTP_ACCEPTANCE
        if "mtp_tokens" in r:
            options["mtp_tokens"] = r["mtp_tokens"]
            options["mtp_acceptance"] = chain_acceptance(r["mtp_tokens"], r["mtp_accept_length"])
    if r.get("window_kv") in WINDOW_KV_MODES:
        options["window_kv"] = r["window_kv"]
    if r.get("overlap") in ("two-batch", "single-batch", "none"):
        options["overlap"] = r["overlap"]
    if r.get("attn_tp_scattered") is True:
        options["attn_tp_scattered"] = True
    if "expert_tp" in r:
        options["expert_tp"] = r["expert_tp"]
    if "prefill_tokens" in r:  # an offline run's step budget per GPU (its scheduler's max_num_tokens)
        options["prefill_tokens"] = r["prefill_tokens"]
    if r.get("chunked_prefill") is False:  # a prompt enters a step whole
        options["chunked_prefill"] = False
    if "engine" in r:  # the serving engine that ran it: the kernels it fuses (workloads/data/engines.toml)
        options["engine"] = r["engine"]
    return options, phase


def pose(r: dict[str, Any]):
    """The ServeSpec a published result describes, and the phase its metric is read from."""
    options, phase = serving_options(r)
    return deployment(**options), phase


def serving_rows(tolerance: float) -> list[dict[str, Any]]:
    """One row per published serving result: v3sim's figure for the same deployment, the signed error."""
    offline_figures([r["id"] for r in published_serving() if "requests" in r])  # on every core, first
    return [serving_row(r, tolerance) for r in published_serving()]


def serving_row(r: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """One published serving result's row: v3sim's figure for its deployment, the signed error."""
    from simulator.explore.validate import figure_row, ranked

    spec, phase = pose(r)
    metric = METRICS[r["metric"]][1]
    predicted = offline_figure(r["id"]) if "requests" in r else float(metric(serve(spec, r.get("profile"), phase)))
    note = "; ".join(x for x in (r.get("notes", ""), "in sample" if r["in_sample"] else "out of sample") if x)
    row = figure_row(r["figure"], float(r["published"]), predicted, tolerance, note, r["in_sample"], r["source"])
    return row | {"id": r["id"]} | ranked("serving", spec.node.gpu, spec.model, r["metric"])


_OFFLINE: dict[str, float] = {}  # offline figures by result id, once a process (validate, its tests, `make docs`)


def offline_figures(result_ids: list[str]) -> dict[str, float]:
    """`offline_figure` of each result, those not yet known run on every core (a second or so each); where no
    process can be started (a sandbox without process pools), here, one after another."""
    missing = [i for i in result_ids if i not in _OFFLINE]
    processes = min(os.cpu_count() or 1, len(missing))
    if processes > 1:
        try:
            with ProcessPoolExecutor(processes) as pool:
                _OFFLINE.update(zip(missing, pool.map(offline_figure, missing), strict=True))
        except (OSError, BrokenProcessPool):
            pass  # the figures are computed below, in this process
    return {i: offline_figure(i) for i in result_ids}


def offline_figure(result_id: str) -> float:
    """A published offline run's figure (`requests` queued at once; its metric as `OFFLINE_METRICS` reads it) in
    the event model."""
    if result_id in _OFFLINE:
        return _OFFLINE[result_id]
    from simulator.analytic.profile import rates_for
    from simulator.events.offline import simulate_offline

    r = published_result(result_id)
    spec, _ = pose(r)
    out = simulate_offline(spec, rates_for(r.get("profile"), spec.node.gpu), r["requests"], str(r["input_len"]),
                           str(r["output_len"]), harness=r.get("harness"))  # fmt: skip
    _OFFLINE[result_id] = float(OFFLINE_METRICS[r["metric"]](out))
    return _OFFLINE[result_id]


def published_result(result_id: str) -> dict[str, Any]:
    """One published serving result by its id (the Serving page sets DeepSeek's day-6 figures beside its own)."""
    for r in published_serving():
        if r["id"] == result_id:
            return r
    raise KeyError(f"{PATH.name} has no result {result_id!r}")
