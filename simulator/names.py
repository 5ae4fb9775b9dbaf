"""Names the simulator accepts, in a module that imports nothing: the command line's parser offers them as
choices without loading the engine (numpy, pandas, scipy, simpy). Each engine module reads its names here."""

from __future__ import annotations

PRECISIONS = ("fp8", "bf16")  # training GEMM precision (simulator.runspec)
NETWORKS = ("flow", "analytic")  # the event model's network: drawn loads on the fabric, or the closed form
SWEEP_ENGINES = ("analytic", "event")
SWEEP_METHODS = ("grid", "random", "lhs")
COLLECTIVE_NAMES = ("all-to-all", "all-reduce", "all-reduce-tree", "reduce-scatter", "all-gather", "send-recv")
OPS_PHASES = ("forward", "backward", "prefill", "decode")  # `v3sim ops --phase` (workloads.ops.CLI_PHASES)
SERVE_PHASES = ("prefill", "decode", "both")  # `v3sim serve --phase` (simulator.analytic.serving)
TP_COMM_MODES = ("exposed", "overlapped")  # TP+SP collectives: in turn with compute, or hidden under its GEMMs
# the expert all-to-all under 1F1B and interleaved: in turn with compute, or overlapped as Megatron's
# overlap_moe_expert_parallel_comm runs it (each forward merged with an adjacent micro-batch's backward, the pair
# DualPipe overlaps); DualPipe always overlaps it
EP_COMM_MODES = ("exposed", "overlapped")
# how the expert all-to-all moves tokens (workloads.comm): DeepEP as V3 runs it (one InfiniBand copy per remote node,
# forwarded over NVLink, one copy per destination GPU; dispatched in fp8 under the FP8 recipe); DeepEP as Megatron's
# flex dispatcher runs it (the same, dispatched in bf16: Megatron has no fp8 dispatch); HybridEP (NVIDIA's kernels
# for Megatron's flex dispatcher: the same copies, bf16, at the rate its torch API was timed at by ranks and SMs:
# hwmodels/data/kernels/hybridep.toml); Megatron's alltoall
# dispatcher (NCCL: one copy per remote expert, bf16). DeepEP's kernels are priced at the rate their SMs reach
# (hwmodels/data/kernels/deepep.toml)
EP_DISPATCHERS = ("deepep-fp8", "deepep", "hybridep", "alltoall")
# context parallelism's exchange (workloads.ops.cp_ops): a ring of K/V chunks under the attention (TE's p2p), K/V
# all-gathered before it (Llama 3, TE's all_gather), or heads and sequence swapped by all-to-alls (Ulysses, TE's a2a)
CP_COMM_MODES = ("ring", "all-gather", "all-to-all")
PROFILE_CHOICES = ("sol", "published", "measured")  # kernel profiles by kind (simulator.analytic.profile)
# what of each layer is captured in CUDA graphs, launched once without a host cost per kernel
# (simulator.analytic.host; Megatron's cuda_graph_scope): router = its moe_router and moe_preprocess, attn = the
# attention module, full = the whole iteration
CUDA_GRAPH_SCOPES = ("none", "router", "attn", "attn+router", "full")
# how an FP8 run scales its GEMMs' operands: block (DeepSeek-V3's 1x128 activations / 128x128 weights, DeepGEMM's
# kernels), tensor (one scale per tensor: Transformer Engine's delayed or current scaling, cuBLAS's scaled GEMM) or
# mx (MXFP8, one power-of-two scale per 32 elements: Blackwell's block-scaled tensor cores)
FP8_RECIPES = ("block", "tensor", "mx")
# how an offline run's pool is set up (`v3sim serve --offline --harness`, simulator.events.offline): as
# trtllm-bench sets TensorRT-LLM up when its options leave the batch and token limits unset
HARNESSES = ("trtllm-bench",)
