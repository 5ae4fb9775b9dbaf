"""Serving: time per output token, throughput, KV capacity and cost per token of one deployment.

The numbers are `v3sim serve`'s: the page builds the same ServeSpec (`presets.deployment`, with the CLI's
defaults for everything it does not ask), so the page and the command line agree; it only formats and plots.
The deployment search below is `v3sim serve-search`'s, for the same model, GPU and request mix.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard import search, state
from dashboard.fmt import duration, signed_percent
from dashboard.fmt import label as words
from hwmodels.registry import catalog
from simulator import limits
from simulator.analytic.serving import PHASES, serve
from simulator.explore.servingvalidate import published_result
from simulator.presets import deployment, node_for
from simulator.servespec import ATTENTION_DTYPES, OVERLAP_MODES, SERVING_FP8_RECIPES, WINDOW_KV_MODES
from workloads.dtypes import ACTIVATION_DTYPES, WEIGHT_DTYPES
from workloads.engines import engine_names
from workloads.registry import load_model, model_slugs

SWEEP_POINTS = 8  # batch sizes in the sweep, doubling from 1, plus the KV capacity
# DeepSeek's published production averages for V3/R1 on H800 nodes (open-infra-index, "Day 6: DeepSeek-V3/R1
# Inference System Overview", 2025), as `v3sim validate` reads them (simulator/data/published_serving.toml):
# day averages over real load, not a steady full batch.
PUBLISHED_MODEL, PUBLISHED_GPU = "deepseek-v3", "h800"
_DAY6_PREFILL = published_result("deepseek-day6-prefill-node")
PUBLISHED_OUTPUT_PER_NODE = float(published_result("deepseek-day6-decode-node")["published"])  # tokens/s, decode
PUBLISHED_PER_USER = float(published_result("deepseek-day6-decode-user")["published"])  # the middle of 20-22
PUBLISHED_INPUT_PER_NODE = float(_DAY6_PREFILL["published"])  # tokens/s, prefill, cache hits included
PUBLISHED_CACHE_HIT = float(_DAY6_PREFILL["cache_hit"])  # share of input tokens from the on-disk KV cache
PARTS = {  # serve()'s breakdown keys as words
    "dense_layers": "dense layers",
    "moe_layers": "MoE layers",
    "exposed_comm": "exposed all-to-all",
    "head": "output head",
    "exposed_cache_load": "exposed prefix-cache load",
    "exposed_weight_offload": "exposed weight offload",
}


def per_unit(gpus_per_node: int, scaleup_domain_gpus: int) -> str:
    """What "per node" means on this node: "node" for 8 GPUs, "NVL72 rack (72 GPUs)" for a rack-scale domain."""
    if gpus_per_node == 8:
        return "node"
    if scaleup_domain_gpus == gpus_per_node:
        return f"NVL{gpus_per_node} rack ({gpus_per_node} GPUs)"
    return f"node ({gpus_per_node} GPUs)"


def findings(out: dict[str, Any], unit: str) -> str:
    """The page's answer in sentences: TPOT and throughput beside DeepSeek's published figures (V3 on H800;
    signed differences), and what bounds and dominates the step."""
    published = (out["model"], out["gpu"]) == (PUBLISHED_MODEL, PUBLISHED_GPU)
    said = []
    if "tpot_s" in out:
        user = out["output_tokens_per_s_per_sequence"]
        node = out["output_tokens_per_s_per_node"]
        text = (
            f"{out['model']} on {out['gpu']} decodes at a **{out['tpot_s'] * 1e3:.1f} ms** TPOT ({user:.1f} tokens/s "
            f"per user) and **{out['output_tokens_per_s_per_gpu']:,.0f}** output tokens/s per GPU, "
            f"{node:,.0f} per {unit}"
        )
        if published:
            text += (
                f" (DeepSeek published {PUBLISHED_OUTPUT_PER_NODE / 1e3:.1f}K per H800 node: "
                f"{signed_percent(node / PUBLISHED_OUTPUT_PER_NODE - 1)}; 20-22 tokens/s per user: "
                f"{signed_percent(user / PUBLISHED_PER_USER - 1)} from 21)"
            )
        said.append(text)
    if "input_tokens_per_s_per_node" in out:
        node = out["input_tokens_per_s_per_node"]
        text = f"prefill takes {node:,.0f} input tokens/s per {unit}"
        if published:
            hits = PUBLISHED_CACHE_HIT
            text += (
                f" (published {PUBLISHED_INPUT_PER_NODE / 1e3:.1f}K with {hits:.1%} cache hits: "
                f"{signed_percent(node / PUBLISHED_INPUT_PER_NODE - 1)})"
            )
        said.append(text)
    answer = "; ".join(said) + "."
    if published:
        answer += " DeepSeek's figures are day averages over real load; these are steady full batches."
    else:
        answer += " DeepSeek published figures for V3 on H800 only."
    phase = next(p for p in ("colocated", "decode", "prefill") if p in out["breakdown"])
    parts = out["breakdown"][phase]
    top = max(parts, key=parts.__getitem__)
    step = out["prefill_step_s"] if phase == "prefill" else out["decode_step_s"]
    bound = f" is {out['decode_bound']}-bound," if "decode_bound" in out and phase == "decode" else ""
    if phase == "colocated":
        phase = f"co-located (decode and {out['prefill_chunk_tokens_per_gpu']:,.0f} prompt tokens per GPU)"
    top_words = PARTS.get(top, words(top))
    return answer + f" The {phase} step{bound} dominated by {top_words} ({duration(parts[top])} of {duration(step)})."


@st.cache_data(show_spinner=False)
def serve_numbers(
    model: str,
    gpu: str,
    phase: str,
    batch: int | None,
    context: int,
    mtp_acceptance: float | None,
    cache_hit: float,
    output_tokens: int | None,
    tpot_ms: float | None = None,
    ttft_ms: float | None = None,
    step: tuple[tuple[str, Any], ...] = (),
    batch_per_instance: int | None = None,
    colocated: bool = False,
) -> dict[str, Any]:
    """`v3sim serve --json` for these options and the page's step options (`step`: ServeSpec fields as
    (name, value) pairs, hashable for the cache); `colocated`: one pool, prefill chunks on the decode steps
    (`serve --colocated`); a ValueError names a bad combination."""
    spec = deployment(
        model,
        gpu,
        batch=batch,
        context=context,
        mtp_acceptance=mtp_acceptance,
        cache_hit=cache_hit,
        output_tokens=output_tokens,
        tpot_ms=tpot_ms,
        ttft_ms=ttft_ms,
        batch_per_instance=batch_per_instance,
        colocated=colocated,
        **dict(step),
    )
    return serve(spec, None, phase)


def sweep_batches(capacity: int) -> list[int]:
    """1, 2, 4, ... below the KV capacity, then the capacity itself."""
    doubling = [2**k for k in range(SWEEP_POINTS) if 2**k < capacity]
    return [*doubling, capacity]


@st.cache_data(show_spinner=False)
def batch_sweep(
    model: str,
    gpu: str,
    context: int,
    mtp_acceptance: float | None,
    capacity: int,
    step: tuple[tuple[str, Any], ...] = (),
) -> pd.DataFrame:
    """Decode TPOT and output tokens/s per GPU at each batch of `sweep_batches(capacity)`, with the page's
    step options."""
    rows = []
    for b in sweep_batches(capacity):
        out = serve_numbers(model, gpu, "decode", b, context, mtp_acceptance, 0.0, None, step=step)
        rows.append(
            {
                "batch_per_gpu": b,
                "tpot_s": out["tpot_s"],
                "output_tokens_per_s_per_gpu": out["output_tokens_per_s_per_gpu"],
            }
        )
    return pd.DataFrame(rows)


def metrics(out: dict[str, Any], unit: str = "node") -> list[tuple[str, str]]:
    """(label, value) of the key numbers `serve` returned for the phase shown; `unit` is what a node is."""
    shown = []
    if "tpot_s" in out:
        shown += [
            ("TPOT", f"{out['tpot_s'] * 1e3:.1f} ms"),
            ("Output tokens/s per GPU", f"{out['output_tokens_per_s_per_gpu']:,.0f}"),
            (f"Output tokens/s per {unit}", f"{out['output_tokens_per_s_per_node']:,.0f}"),
            ("$ per M output tokens", f"${out['usd_per_million_output_tokens']:.3f}"),
        ]
    if "input_tokens_per_s_per_gpu" in out:
        shown += [
            ("Input tokens/s per GPU", f"{out['input_tokens_per_s_per_gpu']:,.0f}"),
            *(
                []
                if out.get("colocated")
                else [("$ per M input tokens", f"${out['usd_per_million_input_tokens']:.3f}")]
            ),
            ("TTFT", f"{out['ttft_s'] * 1e3:,.0f} ms"),
        ]
    if "kv_transfer" in out:
        shown.append(("KV transfer per request", f"{out['kv_transfer']['s_per_request'] * 1e3:.1f} ms"))
    if "batch_per_gpu" in out:
        shown.append(("Sequences per GPU", f"{out['batch_per_gpu']:,}"))
    shown.append(("KV capacity (sequences per GPU)", f"{out['max_concurrent_sequences_per_gpu']:,}"))
    return shown


def _value(name: str, value: Any) -> str:
    """One of serve()'s values for people: seconds as a duration, GB to 3 decimals, counts with commas."""
    if value is None:
        return "-"
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if name.endswith("_s") or name.startswith("s_per_"):
            return duration(value)
        if "gb" in name.split("_"):
            return f"{value:,.3f}"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, list | tuple):
        return "; ".join(map(str, value)) or "-"
    return str(value)


NAMES = {"s_per_request": "Time per request", "gb_per_request": "GB per request"}


def _name(name: str) -> str:
    """A serve() key in words, its unit left to the formatted value: "cache_gb_per_s_per_gpu" -> "Cache GB/s
    per GPU", "tpot_s" -> "TPOT", "usd_per_million_output_tokens" -> "$ per million output tokens"."""
    if name in NAMES:
        return NAMES[name]
    text = f" {words(name[:-2] if name.endswith('_s') else name)} "
    for old, new in ((" gb ", " GB "), (" per s ", "/s "), (" USD ", " $ "), (" GPU hour ", " GPU-hour ")):
        text = text.replace(old, new)
    return text.strip()


def _rows(prefix: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for name, value in values.items():
        if isinstance(value, dict):
            rows += _rows(f"{prefix}{_name(name)}: ", value)
        else:
            rows.append((f"{prefix}{_name(name)}", _value(name, value)))
    return rows


def numbers_table(out: dict[str, Any], unit: str = "node") -> pd.DataFrame:
    """serve()'s numbers, one per row, in words and formatted (the CSV keeps serve()'s names and SI values)."""
    shown = {k: v for k, v in out.items() if k != "breakdown"}
    rows = _rows("", shown)
    for phase, parts in out["breakdown"].items():
        rows += [(f"Step, {phase}: {PARTS.get(p, words(p))}", duration(s)) for p, s in parts.items()]
    frame = pd.DataFrame(rows, columns=["Quantity", "Value"])
    frame["Quantity"] = frame["Quantity"].str.replace("tokens/s per node", f"tokens/s per {unit}", regex=False)
    return frame


def raw_table(out: dict[str, Any]) -> pd.DataFrame:
    """serve()'s numbers as the CLI's --json names them (the CSV): `breakdown/<phase>/<part>_s` flattened."""
    rows = [{"quantity": k, "value": v} for k, v in out.items() if k != "breakdown"]
    for phase, parts in out["breakdown"].items():
        rows += [{"quantity": f"breakdown/{phase}/{part}_s", "value": s} for part, s in parts.items()]
    return pd.DataFrame({"quantity": [r["quantity"] for r in rows], "value": [str(r["value"]) for r in rows]})


def breakdown_chart(out: dict[str, Any]) -> go.Figure:
    """Milliseconds of each part of a step, per phase (decode: one token step; prefill: one forward)."""
    frame = pd.DataFrame(
        [
            {"phase": phase, "part": PARTS.get(part, words(part)), "ms": s * 1e3}
            for phase, parts in out["breakdown"].items()
            for part, s in parts.items()
        ]
    )
    fig = px.bar(
        frame,
        x="ms",
        y="part",
        color="phase",
        facet_col="phase",
        orientation="h",
        title="Step breakdown",
        labels={"ms": "Time in the step (ms)", "part": "", "phase": "Phase"},
    )
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1].capitalize()))  # "Phase=decode" -> "Decode"
    fig.update_xaxes(matches=None, title="Time in the step (ms)")
    return fig.update_layout(showlegend=False)


def sweep_chart(frame: pd.DataFrame) -> go.Figure:
    """Output tokens/s per GPU (bars) and TPOT (line) against decode batch per GPU."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = frame["batch_per_gpu"].astype(str)
    fig.add_bar(x=x, y=frame["output_tokens_per_s_per_gpu"], name="Output tokens/s per GPU")
    fig.add_scatter(x=x, y=frame["tpot_s"] * 1e3, name="TPOT (ms)", mode="lines+markers", secondary_y=True)
    fig.update_layout(
        title="Decode: throughput and TPOT against batch", xaxis={"title": "Batch per GPU", "type": "category"}
    )
    fig.update_yaxes(title_text="Output tokens/s per GPU", secondary_y=False)
    fig.update_yaxes(title_text="TPOT (ms)", secondary_y=True)
    return fig


def sweep_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The batch sweep as shown: words for headers, TPOT in ms."""
    return pd.DataFrame(
        {
            "Batch per GPU": frame["batch_per_gpu"],
            "TPOT (ms)": (frame["tpot_s"] * 1e3).round(1),
            "Output tokens/s per GPU": frame["output_tokens_per_s_per_gpu"].round(0),
        }
    )


st.title("Serving")
answer = st.empty()  # the page's answer, filled once the deployment is priced
st.caption("Numbers from `v3sim serve` with its defaults for parallelism, dtypes and prices (DeepSeek-V3 report 3.4).")
left, mid, right = st.columns(3)
with left:
    model = state.selectbox("Model", model_slugs(), key="model", default="deepseek-v3")
    gpu = state.selectbox("GPU", catalog("gpus"), key="gpu", default="h800")
    phase = state.selectbox("Phase", PHASES, key="phase", default="both")
    overlap = state.selectbox("Compute/communication overlap", OVERLAP_MODES, key="overlap", default="auto")
    engine = state.selectbox(
        "Serving engine", engine_names(), key="engine", default="none",
        help="The kernels it fuses (MLA's down projections as one GEMM, the norms into the TP all-reduces) and runs "
        "beside the main stream (the shared experts in decode): trtllm, sglang, vllm as each ships them; none: "
        "every kernel of the operation list apart",
    )  # fmt: skip
    expert_imbalance = state.number(
        "Expert imbalance (busiest / mean)", key="imbalance", default=1.0, min_value=1.0, max_value=64.0, step=0.05
    )
    expert_tp = state.number(
        "Expert TP (GPUs per expert)",
        key="expert_tp",
        default=1,
        min_value=1,
        max_value=8,
        step=1,
        help="Each expert split over this many GPUs of a node (must divide the node and the EP size)",
    )
    weight_dtype = state.selectbox(
        "Weights", ("auto", *WEIGHT_DTYPES), key="weight_dtype", default="auto",
        help="auto: fp8 where the GPU has fp8, else bf16; fp4 is NVFP4 (Blackwell: b200, gb200)",
    )  # fmt: skip
    dense_weight_dtype = state.selectbox(
        "Weights outside the MoE blocks", ("same", *WEIGHT_DTYPES), key="dense_weight_dtype", default="same",
        help="Attention and the dense layers' MLPs where the checkpoint keeps them wider than its experts: "
        "NVIDIA's FP4 DeepSeek-R1 fp8, GPT-OSS's MXFP4 bf16; same: the Weights above",
    )  # fmt: skip
    fp8_recipe = state.selectbox(
        "FP8 scaling of the checkpoint", SERVING_FP8_RECIPES, key="fp8_recipe", default="block",
        help="block: 1x128 / 128x128 block scales (DeepSeek's and Qwen3's FP8 checkpoints); tensor: one scale per "
        "tensor (NVIDIA ModelOpt's, e.g. Llama 3.3 70B FP8). It picks the GEMM kernels where the engine's are timed "
        "by shape (trtllm)",
    )  # fmt: skip
    activation_dtype = state.selectbox(
        "GEMM activations", ("auto", *ACTIVATION_DTYPES), key="activation_dtype", default="auto",
        help="auto: the weights' own (W8A8, W4A4); fp8 under fp4 weights (W4A8: MXFP8 x MXFP4, the FP8 rate); "
        "bf16: weight-only kernels (W4A16, W8A16)",
    )  # fmt: skip
    attention_dtype = state.selectbox(
        "Prefill attention dtype",
        ATTENTION_DTYPES,
        key="attention_dtype",
        default="bf16",
        help="fp8: FlashAttention-3's fp8 forward (needs fp8 tensor cores)",
    )
    window_kv = state.selectbox(
        "KV of sliding-window layers",
        WINDOW_KV_MODES,
        key="window_kv",
        default="window",
        disabled=not load_model(model).sliding_window,
        help="window: the pool keeps a windowed layer's last tokens (vLLM, SGLang); full: every layer whole, as an "
        "engine with one KV pool holds it. Only models with sliding-window layers (GPT-OSS)",
    )
    offload = state.checkbox(
        "Offload prefill weights to host memory",
        key="offload",
        default=False,
        help="Weights that do not fit beside a forward's KV stream over PCIe each forward",
    )
    colocated = state.checkbox(
        "Prefill and decode on the same GPUs", key="colocated", default=False,
        help="One pool: each decode step carries a chunk of prompt tokens through the same weights (needs the "
        "output tokens per request; `v3sim serve --colocated`); the search below then ranks co-located pools",
    )  # fmt: skip
with mid:
    batch = state.number(
        "Batch per GPU (0 = KV capacity)", key="batch", default=0, min_value=0, max_value=limits.MAX_SEQUENCES, step=1
    )
    batch_per_instance = state.number(
        "Batch per instance (0 = per GPU)",
        key="batch_per_instance",
        default=0,
        min_value=0,
        max_value=limits.MAX_SEQUENCES,
        step=1,
        help="Sequences on one instance (the EP group, or the TP group when larger): 1 with TP 8 is one stream",
    )
    context = state.number(
        "Context (tokens)", key="context", default=4096, min_value=1, max_value=limits.MAX_SEQ_TOKENS, step=1024
    )
    output = state.number(
        "Output tokens per request (0 = not set)",
        key="output",
        default=0,
        min_value=0,
        max_value=limits.MAX_SEQ_TOKENS,
        step=128,
    )
with right:
    has_mtp = bool(load_model(model).num_nextn_predict_layers)
    mtp = state.number(
        "MTP acceptance (0 = off)",
        key="mtp",
        default=0.0,
        min_value=0.0,
        max_value=1.0,
        step=0.05,
        disabled=not has_mtp,
        help="Only models with a multi-token-prediction module (DeepSeek-V3: 0.85-0.9)",
    )
    mtp_tokens = state.number(
        "MTP draft tokens per step",
        key="mtp_tokens",
        default=1,
        min_value=1,
        max_value=8,
        step=1,
        disabled=not has_mtp,
        help="Each accepted only after the ones before it (with an MTP acceptance above 0)",
    )
    cache_hit = state.number("Prefix-cache hit", key="cache_hit", default=0.0, min_value=0.0, max_value=0.99, step=0.05)
    tpot_ms = state.number(
        "TPOT target (ms, 0 = none)",
        key="tpot",
        default=0.0,
        min_value=0.0,
        max_value=10_000.0,
        step=5.0,
        help="The largest decode batch that meets it (leave the batch at 0)",
    )
    ttft_ms = state.number(
        "TTFT target (ms, 0 = none)",
        key="ttft",
        default=0.0,
        min_value=0.0,
        max_value=600_000.0,
        step=100.0,
        help="Picks the prefill tokens per forward with the most throughput that meets it",
    )

mtp_acceptance = float(mtp) if has_mtp and mtp > 0 else None
step = (  # how a step runs: the same for the numbers, the batch sweep and the search
    ("overlap", str(overlap)),
    ("engine", str(engine)),
    ("mtp_tokens", int(mtp_tokens)),
    ("expert_imbalance", float(expert_imbalance)),
    ("expert_tp", int(expert_tp)),
    ("offload_weights", bool(offload)),
    ("attention_dtype", str(attention_dtype)),
    ("window_kv", str(window_kv)),
    ("weight_dtype", None if weight_dtype == "auto" else str(weight_dtype)),
    ("activation_dtype", None if activation_dtype == "auto" else str(activation_dtype)),
    ("dense_weight_dtype", None if dense_weight_dtype == "same" else str(dense_weight_dtype)),
    ("fp8_recipe", str(fp8_recipe)),
)
try:
    out = serve_numbers(
        model,
        gpu,
        phase,
        int(batch) or None,
        int(context),
        mtp_acceptance,
        float(cache_hit),
        int(output) or None,
        float(tpot_ms) or None,
        float(ttft_ms) or None,
        step,
        int(batch_per_instance) or None,
        bool(colocated),
    )
    sweep = None
    if "tpot_s" in out and not colocated:
        capacity = out["max_concurrent_sequences_per_gpu"]
        sweep = batch_sweep(model, gpu, int(context), mtp_acceptance, capacity, step)
except ValueError as exc:
    state.fail(exc)

unit = per_unit(out["gpus_per_node"], node_for(gpu).scaleup_domain_gpus)
answer.markdown(state.plain(findings(out, unit)).replace("\\*\\*", "**"))
shown = metrics(out, unit)
for row in range(0, len(shown), 4):
    for col, (label, value) in zip(st.columns(4), shown[row : row + 4], strict=False):
        col.metric(label, value)
LIMITS = {
    "kv": "the KV cache is full", "tpot": "the TPOT target binds", "batch": "the batch is given",
    "ttft": "the TTFT target binds",
}  # fmt: skip
limit = ""
if "decode_bound" in out:
    limit = f" Decode batch: {LIMITS[out['decode_limit']]}; the step is {out['decode_bound']}-bound."
elif out.get("colocated"):
    limit = (
        f" One pool: {out['prefill_chunk_tokens_per_gpu']:,.0f} prompt tokens ride a decode step on average, "
        f"{out['prompt_piece_tokens_per_gpu']:,.0f} in a step that carries a piece of a prompt (decode alone "
        f"{duration(out['decode_only_step_s'])} a step); batch: {LIMITS[out['decode_limit']]}."
    )
st.caption(
    f"{out['model']} on {out['node']}: attention tp{out['tp']}, decode ep{out['ep']}+{out['redundant']}, prefill "
    f"ep{out['prefill_ep']}+{out['prefill_redundant']}; {out['weights_gb_per_gpu']:.1f} GB weights and "
    f"{out['kv_gb_per_sequence']:.3f} GB KV per sequence per GPU.{limit}"
)
st.plotly_chart(breakdown_chart(out), width="stretch")
if sweep is not None:
    st.plotly_chart(sweep_chart(sweep), width="stretch")
st.dataframe(numbers_table(out, unit), hide_index=True, width="stretch")
state.csv_download(raw_table(out), "serving")
if sweep is not None:
    st.dataframe(sweep_table(sweep), hide_index=True, width="stretch")
    state.csv_download(sweep, "serving-batch-sweep", label="Download batch sweep CSV")

search.show(model, gpu, int(context), float(cache_hit), int(output) or None, step, bool(colocated), unit)
