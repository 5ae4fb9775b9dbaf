"""Each published run or result of `v3sim validate` as the command line that prices it: `v3sim train ...` for a
training run (simulator/data/published_runs.toml), `v3sim serve ...` for a serving result (published_serving.toml),
so that a reader can take any row's deployment further (`v3sim validate --row ID` prints it).

The flags are the row's set-up as `validate` poses it (`explore.validate.training_run_rows`,
`explore.servingvalidate.pose`); tests/simulator/test_reproduce.py holds each command to the row's figure.
"""

from __future__ import annotations

from typing import Any

from simulator.explore.servingvalidate import METRICS as SERVING_METRICS
from simulator.explore.servingvalidate import OFFLINE_METRICS, published_serving, serving_options, serving_row
from simulator.explore.validate import published_runs, tolerance, training_run_row

# a RunSpec field -> the `train` flag that sets it, where the two are named apart (simulator/cli/runopts.py)
FLAG_NAMES = {"zero_stage": "zero"}
# a training run's metric -> where `v3sim train --json` gives it
TRAIN_JSON = {
    "gpu_hours": ("gpu_hours",),
    "mfu_bf16": ("mfu", "bf16"),
    "tokens_per_s_per_gpu": ("tokens_per_s_per_gpu",),
}


def _args(key: str, v: Any) -> list[str]:
    """One option as typed: `--key value` (a whole number without a decimal point), a switch alone where it is
    on (`--colocated`), its `--no-` form where a default is turned off (`--no-chunked-prefill`)."""
    flag = "--" + FLAG_NAMES.get(key, key).replace("_", "-")
    if v is False:  # a switch that turns a default off (`--no-chunked-prefill`)
        return ["--no-" + flag.removeprefix("--")]
    if v is True:
        return [flag]
    if isinstance(v, list | tuple):  # --stage-layers 4,4,4,1
        return [flag, ",".join(str(x) for x in v)]
    return [flag, str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)]


def train_argv(options: dict[str, Any]) -> list[str]:
    """`v3sim train` flags for a published run's `options` (its model, GPU, layout, profile)."""
    return ["train", *(a for key, v in options.items() for a in _args(key, v))]


def serve_argv(r: dict[str, Any]) -> list[str]:
    """`v3sim serve` flags for a published serving result `r`: the deployment `pose` builds and the phase its
    metric is read from; an offline run's requests, lengths and harness."""
    options, phase = serving_options(r)
    argv = ["serve", *(a for key, v in options.items() for a in _args(key, v))]
    if r.get("profile"):
        argv += ["--profile", r["profile"]]
    if "requests" in r:
        argv += ["--offline", "--requests", str(r["requests"]), "--input-len", str(r["input_len"]),
                 "--output-len", str(r["output_len"])]  # fmt: skip
        if r.get("harness"):
            argv += ["--harness", r["harness"]]
    argv += ["--phase", "both" if r.get("colocated") else phase]
    return argv


def commands() -> dict[str, list[str]]:
    """Every published run's and result's id -> its command's arguments (after `v3sim`)."""
    out = {run["id"]: train_argv(run["options"]) for run in published_runs()}
    out |= {r["id"]: serve_argv(r) for r in published_serving()}
    return out


def figure_from_json(row: dict[str, Any], answer: dict[str, Any]) -> float:
    """A published run's (it has `options`) or result's figure read from its command's `--json` answer."""
    if "options" in row:
        out: Any = answer
        for key in TRAIN_JSON[row["metric"]]:
            out = out[key]
        return float(out)
    if "requests" in row:
        return float(OFFLINE_METRICS[row["metric"]](answer["offline"]))
    return float(SERVING_METRICS[row["metric"]][1](answer))


def shell(argv: list[str]) -> str:
    """The command as one would type it."""
    return " ".join(["v3sim", *argv])


def row_detail(row_id: str) -> dict[str, Any]:
    """One published run's or result's `validate` row (priced alone), with its quote and the command that prices
    it; an unknown id is a one-line ValueError that says where the ids are."""
    runs = {run["id"]: run for run in published_runs()}
    results = {r["id"]: r for r in published_serving()}
    if row_id in runs:
        run = runs[row_id]
        row = training_run_row(run)
        argv, quote = train_argv(run["options"]), run.get("quote", "")
    elif row_id in results:
        r = results[row_id]
        row = serving_row(r, tolerance("serving_run"))
        argv, quote = serve_argv(r), r["quote"]
    else:
        raise ValueError(f"no published run or result {row_id!r}: `v3sim validate --json` gives each row's id")
    return row | {"quote": quote, "argv": argv, "command": shell(argv)}
