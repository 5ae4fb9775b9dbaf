"""The hardware catalog: one TOML file per GPU, NIC, node or switch under data/, loaded by name or path.

A user adds hardware by pointing at their own file (`load_gpu("my-gpu.toml")`);
it goes through the same key and value checks as the built-in entries. An
unknown name is an error that lists the known ones, never the nearest SKU.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from hwmodels.files import clean_text, loads_toml, path_is, read_text
from hwmodels.specs import (
    GPUSpec,
    NICSpec,
    NodeSpec,
    SwitchSpec,
    gpu_from_dict,
    nic_from_dict,
    node_from_dict,
    switch_from_dict,
)

DATA_DIR = Path(__file__).parent / "data"


def catalog(kind: str) -> list[str]:
    """Names of the built-in entries of one kind (`gpus`, `nics`, `nodes`, `switches`)."""
    return sorted(p.stem for p in (DATA_DIR / kind).glob("*.toml"))


def _read(kind: str, name_or_path: str) -> tuple[str, dict[str, Any], str]:
    """(name, data, where) for a built-in name or a user's TOML file (a regular file of at most
    MAX_CONFIG_BYTES). A built-in name is looked up in the catalog, never joined onto a folder."""
    singular = {"gpus": "GPU", "nics": "NIC", "nodes": "node", "switches": "switch"}[kind]
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ValueError(
            f"no {singular} named ({name_or_path!r}); use one of {', '.join(catalog(kind))} or a TOML file"
        )
    path = DATA_DIR / kind / f"{name_or_path}.toml" if name_or_path in catalog(kind) else Path(name_or_path)
    if path.suffix != ".toml" and not path_is(path, Path.exists):
        shown = clean_text(name_or_path, 80)
        raise ValueError(f"unknown {singular} {shown!r}; use a TOML file or one of: {', '.join(catalog(kind))}")
    where = clean_text(path)
    return clean_text(path.stem, 80), loads_toml(read_text(path, f"{singular} file"), where), where


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
    return node_from_dict(*_read("nodes", name_or_path), gpu_of=load_gpu, nic_of=load_nic)


@cache
def load_switch(name_or_path: str) -> SwitchSpec:
    """The SwitchSpec of a catalog name (`ib-ndr-64`) or of a TOML file."""
    return switch_from_dict(*_read("switches", name_or_path))
