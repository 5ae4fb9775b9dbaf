"""Network cost and the headline metrics of a topology.

The cost model counts what differs between topologies: switches (each with
optics in its ports) and switch-to-switch links (the fiber). The NIC and its
cable to the first switch belong to the node and are the same in every
topology, so they are left out — as the ISCA 2025 comparison's per-endpoint
costs imply (see `hwmodels/data/switches/ib-ndr-64.toml` for how the prices
were set).
"""

from __future__ import annotations

from typing import Any

from hwmodels.specs import SwitchSpec
from hwmodels.topology import TopologyCounts, TopologySpec, topology_counts


def network_cost_usd(counts: TopologyCounts, switch: SwitchSpec) -> float:
    """Switches times their price plus switch-to-switch links times theirs, in USD."""
    return counts.switches * switch.price_usd + counts.links * switch.isl_price_usd


def topology_metrics(spec: TopologySpec, switch: SwitchSpec) -> dict[str, Any]:
    """Size, cost, bisection bandwidth (one direction, at the switch port rate) and hops of `spec`."""
    if switch.ports < spec.radix:
        raise ValueError(f"switch {switch.name} has {switch.ports} ports; the topology needs radix {spec.radix}")
    counts = topology_counts(spec)
    cost = network_cost_usd(counts, switch)
    return {
        "kind": spec.kind,
        "radix": spec.radix,
        "planes": spec.planes,
        "oversubscription": spec.oversubscription,
        "endpoints": counts.endpoints,
        "switches": counts.switches,
        "switches_by_tier": counts.switches_by_tier,
        "links": counts.links,
        "cost_usd": cost,
        "cost_per_endpoint_usd": cost / counts.endpoints,
        "bisection_bytes_per_s": counts.bisection_links * switch.port_bw_bytes_per_s,
        "diameter_hops": counts.diameter_hops,
        "ecmp_paths": counts.ecmp_paths,
        "switch": switch.name,
    }
