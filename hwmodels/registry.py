"""The hardware catalog: one TOML file per GPU, NIC, node or switch under data/, loaded by name or path.

A user adds hardware by pointing at their own file (`load_gpu("my-gpu.toml")`);
it goes through the same key and value checks as the built-in entries. An
unknown name is an error that lists the known ones, never the nearest SKU.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from hwmodels.files import clean_text, read_text
from hwmodels.specs import (
    NODE_KEYS,
    GPUSpec,
    NICSpec,
    NodeSpec,
    SwitchSpec,
    check_keys,
    gpu_from_dict,
    nic_from_dict,
    switch_from_dict,
)

DATA_DIR = Path(__file__).parent / "data"


def catalog(kind: str) -> list[str]:
    """Names of the built-in entries of one kind (`gpus`, `nics`, `nodes`, `switches`)."""
    return sorted(p.stem for p in (DATA_DIR / kind).glob("*.toml"))


def _read(kind: str, name_or_path: str) -> tuple[str, dict[str, Any], str]:
    """(name, data, where) for a built-in name or a user's TOML file."""
    singular = {"gpus": "GPU", "nics": "NIC", "nodes": "node", "switches": "switch"}[kind]
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ValueError(
            f"no {singular} named ({name_or_path!r}); use one of {', '.join(catalog(kind))} or a TOML file"
        )
    builtin = DATA_DIR / kind / f"{name_or_path}.toml"
    path = builtin if builtin.is_file() else Path(name_or_path)
    if not path.exists():
        shown = clean_text(name_or_path, 80)
        raise ValueError(f"unknown {singular} {shown!r}; use a TOML file or one of: {', '.join(catalog(kind))}")
    text = read_text(path, f"{singular} file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{clean_text(path)} is not valid TOML: {err}") from None
    except RecursionError:
        raise ValueError(f"{clean_text(path)} is nested too deeply") from None
    return clean_text(path.stem, 80), data, clean_text(path)


@cache
def load_gpu(name_or_path: str) -> GPUSpec:
    """The GPUSpec of a catalog name (`h800`) or of a TOML file."""
    return gpu_from_dict(*_read("gpus", name_or_path))


@cache
def load_nic(name_or_path: str) -> NICSpec:
    """The NICSpec of a catalog name (`cx7-400g`) or of a TOML file."""
    return nic_from_dict(*_read("nics", name_or_path))


@cache
def load_node(name_or_path: str) -> NodeSpec:
    """The NodeSpec of a catalog name (`h800-ib`) or of a TOML file; its GPU and NIC by name or path."""
    name, d, where = _read("nodes", name_or_path)
    check_keys(d, NODE_KEYS, where)
    return NodeSpec(
        name=name,
        gpu=load_gpu(d["gpu"]),
        gpus_per_node=d["gpus_per_node"],
        scaleup_domain_gpus=d["scaleup_domain_gpus"],
        nic=load_nic(d["nic"]),
        nics_per_node=d["nics_per_node"],
        pcie_bw_bytes_per_s=d["pcie_gb_per_s"] * 1e9,
        scaleup_efficiency=d["scaleup_efficiency"],
        scaleup_latency_s=d["scaleup_latency_us"] * 1e-6,
        source=d["source"],
    )


@cache
def load_switch(name_or_path: str) -> SwitchSpec:
    """The SwitchSpec of a catalog name (`ib-ndr-64`) or of a TOML file."""
    return switch_from_dict(*_read("switches", name_or_path))
