"""Names the hardware models accept, in a module that imports nothing: the command line offers them as
choices without loading networkx or scipy."""

from __future__ import annotations

TOPOLOGY_KINDS = ("fat-tree-2", "multi-plane", "multi-rail", "fat-tree-3", "slim-fly", "dragonfly")
ECMP_MODES = ("hash", "random", "spray")  # how a flow picks among equal-cost paths (hwmodels.routing)
