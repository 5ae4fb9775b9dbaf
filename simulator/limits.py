"""Upper bounds on the sizes a user can ask for: far beyond any published run, low enough that a typo
cannot make a model loop for hours or allocate the machine's memory. Each error quotes its limit.

Dependency-free, so the command line's parser and the engine read the same numbers.
"""

from __future__ import annotations

MAX_GPUS = 1 << 20  # a million GPUs
MAX_DEGREE = 1 << 16  # tp, pp, dp, ep and their kin
MAX_VIRTUAL_STAGES = 1024
MAX_SEQ_TOKENS = 1 << 24  # 16M tokens per sequence (context or training sequence)
MAX_SEQUENCES = 1 << 20  # sequences in a batch
MAX_BATCH_TOKENS = 1 << 40  # tokens in one global batch
MAX_TRAIN_TOKENS = 1e18  # a run's token budget: 60,000 times V3's 14.8T
MAX_RADIX = 1024  # switch ports
MAX_PLANES = 64
MAX_ENDPOINTS = 1 << 22
MAX_OVERSUBSCRIPTION = 1024  # leaf down:up ports
MAX_USD_PER_GPU_HOUR = 1e6
MAX_SERVE_REQUESTS = 200_000  # requests in one serving event simulation (`v3sim serve --requests`)
