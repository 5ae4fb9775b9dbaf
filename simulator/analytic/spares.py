"""Hot spares: how long a synchronous job waits for a healthy node after a failure takes one out, given a
pool of the job's nodes plus `spares` idle ones, and what holding the spares costs.

A failed node is out for a repair (exponential, mean `repair_s`); the job runs while no more nodes are out
than there are spares, and stops until a repair ends when one more is. Node-removing failures strike only a
running job, at `rate_per_s`, so the nodes out form a birth-death chain on 0..spares+1 whose stationary law
is Poisson(rate x repair) truncated there; a failure finds n out with the chain's law on 0..spares (arrivals
see time averages), and finds every spare out with Erlang's loss probability B(spares, rate x repair). Then
the job waits for the first of spares + 1 repairs: repair / (spares + 1) on average. Nothing fails while the
job waits, so the wait adds to the expected time outside Daly's closed form (`simulator.analytic.goodput`).
"""

from __future__ import annotations

import math

# A node taken out by a GPU or host fault comes back after a repair. No repair time of a large training
# cluster is published that we found: ASSUMED one day (set `repair_h`).
REPAIR_H = 24.0
REPAIR_SOURCE = "ASSUMED 24 h: no published repair time of a training cluster's node found"
NODE_CLASSES = ("gpu", "host")  # interruptions that take a node out (Llama 3 table 5's GPU and host rows)


def nodes_out_mean(rate_per_s: float, repair_s: float) -> float:
    """The offered load: node-removing failures per running second x repair seconds (the mean of nodes out
    were the job never stopped)."""
    return rate_per_s * repair_s


def shortfall_probability(spares: int, rate_per_s: float, repair_s: float) -> float:
    """Chance that a node-removing failure finds every spare out (the job then waits): Erlang B, by its
    stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))."""
    load, b = nodes_out_mean(rate_per_s, repair_s), 1.0
    for k in range(1, spares + 1):
        b = load * b / (k + load * b)
    return b


def wait_per_node_failure_s(spares: int, rate_per_s: float, repair_s: float) -> float:
    """Expected seconds a node-removing failure keeps the job waiting for a healthy node (module docstring)."""
    return shortfall_probability(spares, rate_per_s, repair_s) * repair_s / (spares + 1)


def wait_per_failure_s(spares: int, node_rate_per_s: float, total_rate_per_s: float, repair_s: float) -> float:
    """Expected seconds waiting for a node per interruption of any kind: the share of interruptions that take a
    node out x the wait of one (0 when nothing fails)."""
    if total_rate_per_s <= 0:
        return 0.0
    return node_rate_per_s / total_rate_per_s * wait_per_node_failure_s(spares, node_rate_per_s, repair_s)


def spares_for(probability: float, rate_per_s: float, repair_s: float) -> int:
    """The fewest spares for which a node-removing failure finds none free at most `probability` of the time."""
    if not 0 < probability < 1:
        raise ValueError(f"probability={probability!r} must be in (0, 1)")
    load, b, spares = nodes_out_mean(rate_per_s, repair_s), 1.0, 0
    while b > probability:  # B falls with every spare
        spares += 1
        b = load * b / (spares + load * b)
    return spares


def check_spares(spares: int | None, repair_h: float) -> None:
    if spares is not None and (isinstance(spares, bool) or not isinstance(spares, int) or spares < 0):
        raise ValueError(f"spare nodes={spares!r} must be a whole number >= 0")
    if not (isinstance(repair_h, int | float) and repair_h > 0 and math.isfinite(repair_h)):
        raise ValueError(f"repair_h={repair_h!r} must be a positive finite number of hours")
