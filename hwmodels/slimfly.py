"""Slim Fly: the McKay-Miller-Siran (MMS) diameter-2 graph of Besta and Hoefler (SC 2014).

Routers are (s, x, y) with s in {0, 1} and x, y in GF(q); q = 4w + delta with
delta in {-1, 0, 1}. Each router has k' = (3q - delta) / 2 router links and,
for full global bandwidth, p = ceil(k' / 2) endpoints. The counts hold for
every such q (the ISCA 2025 table uses q = 28); the graph is built here for
prime q, where GF(q) is the integers mod q.
"""

from __future__ import annotations

import math

import numpy as np

DELTA = {0: 0, 1: 1, 3: -1}  # q mod 4 -> delta; q = 2 mod 4 has no MMS graph


def slim_fly_q_params(radix: int, endpoints: int | None = None) -> tuple[int, int, int, int]:
    """(q, delta, k', p) of the Slim Fly for a switch radix: the largest q whose k' + p ports fit the radix, or
    with `endpoints`, the smallest q that holds them."""
    fits = []
    for q in range(3, radix + 1):
        if q % 4 not in DELTA:
            continue
        delta = DELTA[q % 4]
        kp = (3 * q - delta) // 2
        p = math.ceil(kp / 2)
        if kp + p <= radix:
            fits.append((q, delta, kp, p))
    if not fits:
        raise ValueError(f"radix={radix} is too small for a Slim Fly; use at least 5 ports")
    if endpoints is None:
        return fits[-1]
    for params in fits:
        if 2 * params[0] ** 2 * params[3] >= endpoints:
            return params
    return fits[-1]  # the caller's capacity check reports the overflow


def _primitive_root(q: int) -> int:
    """The smallest generator of the multiplicative group mod prime q."""
    factors = {f for f in range(2, q) if (q - 1) % f == 0 and all(f % d for d in range(2, f))}
    for g in range(2, q):
        if all(pow(g, (q - 1) // f, q) != 1 for f in factors):
            return g
    return 1  # q = 2 or 3 with no proper factor to test: 2 generates


def generator_sets(q: int) -> tuple[set[int], set[int]]:
    """The MMS generator sets X and X' = xi * X (Besta & Hoefler, section 2.2) for prime q."""
    xi = _primitive_root(q)
    delta = DELTA[q % 4]
    if delta == 1:  # q = 4w + 1: the even powers of xi
        exps = list(range(0, q - 1, 2))
    else:  # q = 4w - 1: even powers up to 2w - 2, then odd powers from 2w - 1 to 4w - 3
        w = (q + 1) // 4
        exps = list(range(0, 2 * w - 1, 2)) + list(range(2 * w - 1, 4 * w - 2, 2))
    x = {pow(xi, e, q) for e in exps}
    return x, {xi * v % q for v in x}


def mms_edges(q: int) -> list[tuple[int, int]]:
    """Router-to-router edges of the MMS graph for prime q (each intra-subgraph edge listed from both ends);
    router (s, x, y) has index s*q*q + x*q + y."""
    if q < 3 or any(q % d == 0 for d in range(2, math.isqrt(q) + 1)) or q % 4 not in DELTA:
        raise ValueError(
            f"a Slim Fly graph is built here for prime q (q mod 4 = 1 or 3); q={q} is not one "
            "(its switch and link counts still follow the MMS formulas)"
        )
    x_set, xp_set = generator_sets(q)
    edges = []
    for s, gens in ((0, x_set), (1, xp_set)):
        for a in range(q):
            for y in range(q):
                u = s * q * q + a * q + y
                edges += [(u, s * q * q + a * q + (y + d) % q) for d in gens]
    # (0, x, y) -- (1, m, c) iff y = m x + c
    xs, ms, cs = np.meshgrid(np.arange(q), np.arange(q), np.arange(q), indexing="ij")
    ys = (ms * xs + cs) % q
    left = (xs * q + ys).ravel()
    right = (q * q + ms * q + cs).ravel()
    edges += list(zip(left.tolist(), right.tolist(), strict=True))
    return edges
