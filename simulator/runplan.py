"""A run plan: the phases of a whole training run, each with its tokens (or steps, or given GPU-hours),
sequence length, batch (constant, or ramped from a smaller one over a token count) and its own run options
(layout, precision) on top of the plan's. Read from TOML as data, every key checked where it enters;
`simulator.analytic.runplan` prices it. Built-in plans live in simulator/data/plans (by name), any other is
a file path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwmodels.files import clean_text, is_finite_number, loads_toml, read_text
from hwmodels.profile import shipped_profiles
from simulator import limits
from simulator.names import PROFILE_CHOICES
from simulator.runspecfile import check_run_options

PLANS_DIR = Path(__file__).parent / "data" / "plans"
MAX_PHASES = 64
MAX_GPU_HOURS = 1e12  # a phase's given or published GPU-hours: beyond any run (keeps sums and costs finite)
PHASE_KEYS = {
    "name", "tokens", "steps", "gpu_hours", "seq_len", "batch_sequences", "ramp", "options", "published_gpu_hours",
    "published_group",
}  # fmt: skip
SHAPE_OPTIONS = ("seq_len", "global_batch_tokens", "tokens")  # a phase sets these itself, not in `options`


@dataclass(frozen=True, slots=True)
class Ramp:
    """The batch grows linearly in tokens from `from_sequences` to the phase's batch over `over_tokens`."""

    from_sequences: int
    over_tokens: float


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase: priced from its shape (`tokens` or `steps`), or `gpu_hours` given as they are."""

    name: str
    tokens: float | None = None
    steps: int | None = None
    gpu_hours: float | None = None
    seq_len: int | None = None
    batch_sequences: int | None = None
    ramp: Ramp | None = None
    options: tuple[tuple[str, Any], ...] = ()
    published_gpu_hours: float | None = None
    published_group: str | None = None  # phases published together (their GPU-hours summed against one figure)

    @property
    def given(self) -> bool:
        return self.gpu_hours is not None


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    source: str
    run: tuple[tuple[str, Any], ...]  # build_run options every phase starts from
    phases: tuple[Phase, ...]
    profile: str | None = None  # the kernel profile the plan is priced with unless one is asked for (None: default)


def plan_catalog() -> list[str]:
    return sorted(p.stem for p in PLANS_DIR.glob("*.toml"))


def load_plan(name_or_path: str) -> Plan:
    """A built-in plan by name, else a TOML file; any defect is a one-line ValueError naming the plan."""
    data, where = load_plan_data(name_or_path)
    return plan_from_dict(data, where)


def load_plan_data(name_or_path: str) -> tuple[dict[str, Any], str]:
    """A plan's TOML as data, unchecked (`plan_from_dict` checks it), and the name its errors go by."""
    if name_or_path in plan_catalog():
        path = PLANS_DIR / f"{name_or_path}.toml"
    else:
        path = Path(name_or_path)
        if path.suffix != ".toml":
            known = ", ".join(plan_catalog())
            raise ValueError(f"plan {clean_text(name_or_path, 80)!r}: give a .toml file or one of {known}")
    where = f"plan {path.name}"
    return loads_toml(read_text(path, "plan"), where), where


def plan_from_dict(data: Mapping[str, Any], where: str = "plan") -> Plan:
    unknown = sorted(set(data) - {"name", "source", "profile", "run", "phase"})
    if unknown:
        raise ValueError(
            f"{where}: unknown key {clean_text(unknown[0], 80)!r}; use name, source, profile, run, [[phase]]"
        )
    name, source = _text(data.get("name", "plan"), "name", where), _text(data.get("source", ""), "source", where, True)
    profile = _profile(data["profile"], where) if "profile" in data else None
    run = _options(data.get("run", {}), f"{where} [run]")
    phases = data.get("phase")
    if not isinstance(phases, list) or not phases:
        raise ValueError(f"{where}: give at least one [[phase]]")
    if len(phases) > MAX_PHASES:
        raise ValueError(f"{where}: {len(phases)} phases; at most {MAX_PHASES}")
    return Plan(name, source, run, tuple(_phase(p, f"{where} phase {i + 1}") for i, p in enumerate(phases)), profile)


def _profile(value: Any, where: str) -> str:
    """A plan's kernel profile: a choice or a shipped profile's name, never a path (a plan is data)."""
    known = (*PROFILE_CHOICES, *shipped_profiles())
    if value not in known:
        shown = clean_text(repr(value), 60)
        raise ValueError(f"{where}: profile {shown} is not a profile; use one of {', '.join(known)}")
    return str(value)


def _phase(data: Any, where: str) -> Phase:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: must be a table")
    unknown = sorted(set(data) - PHASE_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {clean_text(unknown[0], 80)!r}; known: {', '.join(sorted(PHASE_KEYS))}")
    name = _text(data.get("name", ""), "name", where)
    where = f"{where} ({name})"
    sizes = [k for k in ("tokens", "steps", "gpu_hours") if k in data]
    if len(sizes) != 1:
        raise ValueError(f"{where}: give exactly one of tokens, steps or gpu_hours (got {', '.join(sizes) or 'none'})")
    published = _number(data, "published_gpu_hours", where, optional=True)
    group = _text(data["published_group"], "published_group", where) if "published_group" in data else None
    if data.get("gpu_hours") is not None:
        extra = sorted(set(data) & {"seq_len", "batch_sequences", "ramp", "options"})
        if extra:
            raise ValueError(f"{where}: a phase given as gpu_hours takes no {extra[0]}")
        return Phase(name, gpu_hours=_number(data, "gpu_hours", where), published_gpu_hours=published,
                     published_group=group)  # fmt: skip
    seq_len = _count(data, "seq_len", where, limits.MAX_SEQ_TOKENS)
    batch = _count(data, "batch_sequences", where, limits.MAX_SEQUENCES)
    tokens = _number(data, "tokens", where, optional=True)
    steps = _count(data, "steps", where, limits.MAX_SEQUENCES, optional=True)
    ramp = None
    if "ramp" in data:
        r = data["ramp"]
        if not isinstance(r, dict) or set(r) != {"from_sequences", "over_tokens"}:
            raise ValueError(f"{where}: ramp must be {{ from_sequences = N, over_tokens = T }}")
        ramp = Ramp(_count(r, "from_sequences", where, limits.MAX_SEQUENCES), _number(r, "over_tokens", where))
        if ramp.from_sequences >= batch:
            raise ValueError(f"{where}: ramp from_sequences={ramp.from_sequences} must be under the batch, {batch}")
        if tokens is not None and ramp.over_tokens > tokens:
            raise ValueError(f"{where}: the ramp's {ramp.over_tokens:g} tokens exceed the phase's {tokens:g}")
    options = _options(data.get("options", {}), f"{where} options")
    shaped = sorted({k for k, _ in options} & set(SHAPE_OPTIONS))
    if shaped:
        raise ValueError(f"{where}: {shaped[0]} is the phase's own (seq_len, batch_sequences, tokens or steps)")
    return Phase(name, tokens, steps, None, seq_len, batch, ramp, options, published, group)


def _options(data: Any, where: str) -> tuple[tuple[str, Any], ...]:
    """build_run options as data: known names only (model, gpu, node, RunSpec fields), each of its type
    (runspecfile.check_run_options, shared with run-spec files); values are checked when the phase's run is
    built."""
    return tuple(sorted(check_run_options(data, where).items()))


def _text(value: Any, key: str, where: str, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()) or len(value) > 500:
        raise ValueError(f"{where}: {key} must be a non-empty text of at most 500 characters")
    return value


def _number(data: Mapping[str, Any], key: str, where: str, optional: bool = False) -> Any:
    if key not in data and optional:
        return None
    value = data.get(key)
    if not is_finite_number(value) or value <= 0:
        raise ValueError(f"{where}: {key}={clean_text(repr(value), 40)} must be a positive finite number")
    if key.endswith("gpu_hours") and value > MAX_GPU_HOURS:
        raise ValueError(f"{where}: {key}={value:g} is beyond {MAX_GPU_HOURS:g} GPU-hours")
    return float(value)


def _count(data: Mapping[str, Any], key: str, where: str, most: int, optional: bool = False) -> Any:
    if key not in data and optional:
        return None
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= most:
        raise ValueError(f"{where}: {key}={clean_text(repr(value), 40)} must be a whole number from 1 to {most:,}")
    return value
