"""Serving engines: where TensorRT-LLM, SGLang and vLLM launch a layer's kernels otherwise than the operation list
as the model defines it (every kernel apart, on one stream), read from workloads/data/engines.toml.

Three departures, each sourced in the file: MLA's two down projections as one GEMM (`fused_qkv_a`); under
attention TP the residual add and RMSNorm after each all-reduce inside the all-reduce kernel, on the GPUs, models
and message sizes the engine does it for (`allreduce_norm`); the shared experts on a second CUDA stream beside the
routed ones (`shared_experts_aside`). `Engine.fusions` resolves them for one layer's step into `Fusions`, which
`workloads.servingops` applies to the list: a fused kernel keeps its bytes and loses its launch, a kernel aside
keeps its work and hides its latency (`Op.launch`; `simulator.analytic.pricing` prices each). And two facts of its
kernels: the library its dense GEMMs run in where the GPU's GEMM tables time that library (`timed_gemms`,
`Op.library`), and how attention DP's MoE reaches its experts (`moe_all_gather`:
`simulator.analytic.servingcomm.ep_comm_s`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hwmodels.files import loads_toml, read_text

ENGINES_PATH = Path(__file__).parent / "data" / "engines.toml"
SHARED_ASIDE = ("never", "decode", "no-all-to-all")
GEMM_LIBRARIES = ("", "trtllm")  # the libraries hwmodels/data/kernels/gemm times (TensorRT-LLM's Linear)
MIB = 1024 * 1024
_FIELDS: dict[str, type] = {
    "title": str,
    "source": str,
    "fused_qkv_a": bool,
    "allreduce_norm": bool,
    "allreduce_norm_dies": list,
    "allreduce_norm_skip_gpus": list,
    "allreduce_norm_moe_only": bool,
    "allreduce_norm_max_tokens": int,
    "allreduce_norm_max_mb": dict,
    "shared_experts_aside": str,
    "shared_experts_aside_max_tokens": int,
    "timed_gemms": str,
    "rope_in_attention": bool,
    "moe_all_gather": bool,
}


@dataclass(frozen=True, slots=True)
class Fusions:
    """How one layer's step runs under an engine: MLA's down projections as one GEMM, the norms after the
    all-reduces inside them, the shared experts on a second stream, the GEMMs' timed library, RoPE inside the
    attention."""

    qkv_a: bool = False
    allreduce_norm: bool = False
    shared_aside: bool = False
    gemms: str = ""  # the library of its dense GEMMs where GEMM tables time it (`Op.library`)
    rope_in_attention: bool = False  # RoPE inside the attention op, not a kernel of its own


NO_FUSIONS = Fusions()


@dataclass(frozen=True, slots=True)
class Engine:
    """One engine's departures from the operation list (workloads/data/engines.toml describes each field)."""

    name: str
    title: str
    source: str
    fused_qkv_a: bool = False
    allreduce_norm: bool = False
    allreduce_norm_dies: tuple[str, ...] = ()
    allreduce_norm_skip_gpus: tuple[str, ...] = ()
    allreduce_norm_moe_only: bool = False
    allreduce_norm_max_tokens: int = 0
    allreduce_norm_max_mb: tuple[tuple[str, int, float], ...] = ()  # (die, tp, MiB)
    shared_experts_aside: str = "never"
    shared_experts_aside_max_tokens: int = 0
    timed_gemms: str = ""
    rope_in_attention: bool = False
    moe_all_gather: bool = False  # attention DP's MoE gathers the tokens and reduce-scatters the outputs

    def fusions(
        self, phase: str, moe: bool, die: str, gpu: str, tp: int, group_tokens: float, message_bytes: float,
        all_to_all: bool,
    ) -> Fusions:  # fmt: skip
        """What this engine fuses in one layer's `phase` step: on a GPU `gpu` of `die`, attention over `tp` GPUs
        holding `group_tokens` tokens, each all-reduce `message_bytes`, the experts behind an all-to-all or not
        (`moe`: a MoE model, whatever the layer)."""
        reduce = tp > 1 and self.allreduce_norm
        reduce &= not self.allreduce_norm_dies or die in self.allreduce_norm_dies
        reduce &= gpu not in self.allreduce_norm_skip_gpus and (moe or not self.allreduce_norm_moe_only)
        reduce &= not self.allreduce_norm_max_tokens or group_tokens <= self.allreduce_norm_max_tokens
        limit = next((mb for d, t, mb in self.allreduce_norm_max_mb if d == die and t == tp), None)
        reduce &= limit is None or message_bytes <= limit * MIB
        aside = self.shared_experts_aside == "decode" and phase == "decode"
        if self.shared_experts_aside == "no-all-to-all":
            cap = self.shared_experts_aside_max_tokens
            aside = not all_to_all and (not cap or group_tokens <= cap)
        return Fusions(self.fused_qkv_a, reduce, aside, self.timed_gemms, self.rope_in_attention)


def engine_names() -> list[str]:
    """The engines workloads/data/engines.toml describes."""
    return list(_engines())


def load_engine(name: str) -> Engine:
    """The engine `name` (`none`, `trtllm`, `sglang`, `vllm`, ...)."""
    engines = _engines()
    if name not in engines:
        raise ValueError(f"unknown engine {name!r}; use one of {', '.join(engines)}")
    return engines[name]


@cache
def _engines() -> dict[str, Engine]:
    data = loads_toml(read_text(ENGINES_PATH, "serving engines"), str(ENGINES_PATH))
    return {str(name): _engine(str(name), body) for name, body in data.get("engine", {}).items()}


def _engine(name: str, body: Any) -> Engine:
    """One [engine.NAME] table, every key checked (configuration is data: a wrong key is an error, not ignored)."""
    where = f"{ENGINES_PATH.name} [engine.{name}]"
    if not isinstance(body, dict) or not {"title", "source"} <= set(body):
        raise ValueError(f"{where}: needs a title and a source")
    for key, value in body.items():
        kind = _FIELDS.get(key)
        if kind is None:
            raise ValueError(f"{where}: unknown key {key!r}; use {', '.join(_FIELDS)}")
        whole = kind is not int or (not isinstance(value, bool) and isinstance(value, int) and value >= 0)
        if not isinstance(value, kind) or not whole:
            raise ValueError(f"{where}: {key} = {value!r} must be a {'whole number' if kind is int else kind.__name__}")
    if body.get("timed_gemms", "") not in GEMM_LIBRARIES:
        raise ValueError(f"{where}: timed_gemms must be one of {', '.join(repr(x) for x in GEMM_LIBRARIES)}")
    if body.get("shared_experts_aside", "never") not in SHARED_ASIDE:
        raise ValueError(f"{where}: shared_experts_aside must be one of {', '.join(SHARED_ASIDE)}")
    limits = []
    for die, by_tp in body.get("allreduce_norm_max_mb", {}).items():
        if not isinstance(by_tp, dict):
            raise ValueError(f"{where}: allreduce_norm_max_mb.{die} must be a table of TP size = MiB")
        for tp, mb in by_tp.items():
            if not (str(tp).isdigit() and isinstance(mb, int | float) and not isinstance(mb, bool) and mb > 0):
                raise ValueError(f"{where}: allreduce_norm_max_mb.{die}.{tp} = {mb!r}: a TP size and positive MiB")
            limits.append((str(die), int(tp), float(mb)))
    fields = {k: v for k, v in body.items() if k != "allreduce_norm_max_mb"}
    for key in ("allreduce_norm_dies", "allreduce_norm_skip_gpus"):
        fields[key] = tuple(str(x) for x in fields.get(key, ()))
    return Engine(name=name, allreduce_norm_max_mb=tuple(limits), **fields)
