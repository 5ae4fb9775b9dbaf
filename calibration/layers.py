"""The layers of DeepSeek-V3-class models in PyTorch, built from a ModelSpec.

MLA (DeepSeek-V2 report, section 2.1; V3 report, section 2.1.1), GQA/MHA,
the SwiGLU MLP, DeepSeekMoE with V3's gate (sigmoid affinities, group-limited
top-k, auxiliary-loss-free bias; V3 report, section 2.1.2), the MTP module
(V3 report, section 2.2) and a pre-norm decoder Block. Module names follow the
Hugging Face modeling files, so a parameter count can be checked against
`workloads.params` name by name.

Every constructor takes `device` and `dtype`: on `device="meta"` a layer is
built at full model size without memory, and its forward runs on shapes only
(what `calibration.oracle` counts). `reduced(spec)` gives a small spec of the
same architecture kind for CPU tests and timing. The routed-expert dispatch in
`MoE.forward` depends on the routing, so it needs real tensors, not meta.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workloads.spec import ModelSpec

ROPE_THETA = 10000.0  # RoPE base frequency (Su et al. 2021); the specs carry no rope_theta
NORM_EPS = 1e-6


def reduced(
    spec: ModelSpec,
    hidden_size: int = 64,
    num_heads: int = 4,
    n_routed_experts: int = 16,
    vocab_size: int = 256,
    num_layers: int = 2,
) -> ModelSpec:
    """A small spec of the same kind: attention type, q compression, MoE groups, bias, MTP, qk_norm.

    Widths shrink to a few dozen; counts (experts per token, groups) shrink in
    proportion, so a reduced V3 still routes group-limited top-k with a bias.
    """
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} must be a multiple of num_heads={num_heads}")
    gqa = spec.attention == "gqa" and spec.kv_heads < spec.num_attention_heads
    changes: dict[str, Any] = dict(
        name=f"{spec.name}-reduced",
        num_hidden_layers=num_layers,
        hidden_size=hidden_size,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2) if gqa else num_heads,
        head_dim=2 * hidden_size // num_heads if spec.head_dim else 0,
        vocab_size=vocab_size,
        intermediate_size=2 * hidden_size if spec.intermediate_size else 0,
        first_k_dense_replace=min(spec.first_k_dense_replace, 1),
        num_nextn_predict_layers=min(spec.num_nextn_predict_layers, 1),
    )
    if spec.sliding_window:  # the same share of the layers windowed (the layers here attend whole: no FLOPs differ)
        share = spec.sliding_window_layers / spec.num_hidden_layers
        changes.update(sliding_window_layers=max(1, round(num_layers * share)))
    if spec.attention == "mla":
        changes.update(q_lora_rank=48 if spec.q_lora_rank else 0, kv_lora_rank=32)
        changes.update(qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16)
    if spec.is_moe:
        experts = min(spec.n_routed_experts, n_routed_experts)
        groups = min(spec.n_group, 4)
        topk_group = max(1, spec.topk_group * groups // spec.n_group)
        changes.update(
            n_routed_experts=experts,
            n_group=groups,
            topk_group=topk_group,
            num_experts_per_tok=min(spec.num_experts_per_tok, 4, topk_group * experts // groups),
            moe_intermediate_size=hidden_size // 2,
            shared_expert_intermediate_size=hidden_size if spec.shared_expert_intermediate_size else 0,
        )
    return dataclasses.replace(spec, **changes)


class RMSNorm(nn.Module):
    """x / rms(x) * weight over the last axis (Zhang and Sennrich 2019), computed in fp32."""

    def __init__(self, dim: int, eps: float = NORM_EPS, device=None, dtype=None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


class KVCache:
    """One layer's cache: named tensors (batch, tokens, ...) grown along the token axis.

    `dtype` is the storage format (an fp8 cache, say); reads come back in the
    compute dtype of what was appended.
    """

    def __init__(self, dtype: torch.dtype | None = None) -> None:
        self.dtype = dtype
        self.tensors: dict[str, Tensor] = {}

    @property
    def num_tokens(self) -> int:
        return next(iter(self.tensors.values())).shape[1] if self.tensors else 0

    @property
    def nbytes(self) -> int:
        """Bytes the cached tensors hold."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def append(self, **new: Tensor) -> list[Tensor]:
        """Add the new tokens' tensors; return every cached token's, in the order given."""
        out = []
        for name, t in new.items():
            stored = t.to(self.dtype or t.dtype)
            if name in self.tensors:
                stored = torch.cat([self.tensors[name], stored], dim=1)
            self.tensors[name] = stored
            out.append(stored.to(t.dtype))
        return out


def rope_cos_sin(offset: int, length: int, dim: int, device, dtype) -> tuple[Tensor, Tensor]:
    """cos and sin (length, dim) of rotary embeddings for positions offset .. offset + length - 1."""
    inv_freq = ROPE_THETA ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    pos = torch.arange(offset, offset + length, device=device, dtype=torch.float32)
    angles = pos[:, None] * inv_freq[None, :]  # an outer product by broadcasting: no matmul to count
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (batch, tokens, heads, dim) by position, rotate-half layout."""
    first, second = x.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return x * cos[:, None, :] + rotated * sin[:, None, :]


def attention_core(q: Tensor, k: Tensor, v: Tensor, offset: int, scale: float) -> Tensor:
    """Causal softmax(q k^T * scale) v for q (b, h, s, d), k (b, h|1, t, d), v (b, h|1, t, dv).

    Query i sits at position offset + i and sees keys 0 .. offset + i. Written
    with matmuls (not SDPA) so the FLOP counter sees two batched matmuls whose
    dense score matrix is s x t: the non-causal count.
    """
    s, t = q.shape[-2], k.shape[-2]
    scores = (q @ k.transpose(-1, -2)) * scale
    query_pos = torch.arange(offset, offset + s, device=q.device)
    future = torch.arange(t, device=q.device)[None, :] > query_pos[:, None]
    probs = scores.masked_fill(future, float("-inf")).softmax(-1, dtype=torch.float32).to(q.dtype)
    return probs @ v


class MLA(nn.Module):
    """Multi-head Latent Attention; caches the normalized latent and the shared RoPE key per token."""

    def __init__(self, spec: ModelSpec, device=None, dtype=None) -> None:
        super().__init__()
        if spec.attention != "mla":
            raise ValueError(f"{spec.name}: attention={spec.attention!r}; MLA needs 'mla'")
        dd = {"device": device, "dtype": dtype}
        h, self.n_heads = spec.hidden_size, spec.num_attention_heads
        self.nope, self.rope, self.v_dim = spec.qk_nope_head_dim, spec.qk_rope_head_dim, spec.v_head_dim
        self.kv_rank, qk = spec.kv_lora_rank, spec.qk_head_dim
        if spec.q_lora_rank:
            self.q_a_proj = nn.Linear(h, spec.q_lora_rank, bias=False, **dd)
            self.q_a_layernorm = RMSNorm(spec.q_lora_rank, **dd)
            self.q_b_proj = nn.Linear(spec.q_lora_rank, self.n_heads * qk, bias=False, **dd)
        else:
            self.q_proj = nn.Linear(h, self.n_heads * qk, bias=False, **dd)
        self.kv_a_proj_with_mqa = nn.Linear(h, self.kv_rank + self.rope, bias=False, **dd)
        self.kv_a_layernorm = RMSNorm(self.kv_rank, **dd)
        self.kv_b_proj = nn.Linear(self.kv_rank, self.n_heads * (self.nope + self.v_dim), bias=False, **dd)
        self.o_proj = nn.Linear(self.n_heads * self.v_dim, h, bias=False, **dd)
        self.scale = qk**-0.5

    def forward(self, x: Tensor, cache: KVCache | None = None, absorb: bool = False) -> Tensor:
        """Attend x (batch, tokens, hidden) causally after the cached tokens; `absorb` picks the decode path."""
        b, s, _ = x.shape
        offset = cache.num_tokens if cache is not None else 0
        cos, sin = rope_cos_sin(offset, s, self.rope, x.device, x.dtype)
        q = self._queries(x).view(b, s, self.n_heads, self.nope + self.rope)
        q_nope, q_rope = q.split([self.nope, self.rope], dim=-1)
        q_rope = apply_rope(q_rope, cos, sin)
        latent, k_rope = self.kv_a_proj_with_mqa(x).split([self.kv_rank, self.rope], dim=-1)
        latent = self.kv_a_layernorm(latent)
        k_rope = apply_rope(k_rope[:, :, None, :], cos, sin)[:, :, 0, :]
        if cache is not None:
            latent, k_rope = cache.append(latent=latent, k_rope=k_rope)
        heads = (self._absorbed if absorb else self._naive)(q_nope, q_rope, latent, k_rope, offset)
        return self.o_proj(heads.reshape(b, s, self.n_heads * self.v_dim))

    def _queries(self, x: Tensor) -> Tensor:
        if hasattr(self, "q_proj"):
            return self.q_proj(x)
        return self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))

    def _naive(self, q_nope: Tensor, q_rope: Tensor, latent: Tensor, k_rope: Tensor, offset: int) -> Tensor:
        """Up-project the latent to per-head keys and values, then standard attention: (b, s, heads, v)."""
        b, t, _ = latent.shape
        kv = self.kv_b_proj(latent).view(b, t, self.n_heads, self.nope + self.v_dim)
        k_nope, v = kv.split([self.nope, self.v_dim], dim=-1)
        k = torch.cat([k_nope, k_rope[:, :, None, :].expand(b, t, self.n_heads, self.rope)], dim=-1)
        q = torch.cat([q_nope, q_rope], dim=-1)
        out = attention_core(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), offset, self.scale)
        return out.transpose(1, 2)

    def _absorbed(self, q_nope: Tensor, q_rope: Tensor, latent: Tensor, k_rope: Tensor, offset: int) -> Tensor:
        """Attend the latent directly: kv_b_proj's key half folds into q, its value half into the output.

        q_nope . (W_uk c) = (W_uk^T q_nope) . c, so each head becomes one query
        over the shared (latent, rope key): MQA over kv_lora_rank + rope
        elements per token; the weighted latent is up-projected by W_uv after.
        """
        w = self.kv_b_proj.weight.view(self.n_heads, self.nope + self.v_dim, self.kv_rank)
        w_uk, w_uv = w[:, : self.nope], w[:, self.nope :]
        q_latent = torch.einsum("bshd,hdr->bhsr", q_nope, w_uk)
        q = torch.cat([q_latent, q_rope.transpose(1, 2)], dim=-1)
        k = torch.cat([latent, k_rope], dim=-1)[:, None]
        out_latent = attention_core(q, k, latent[:, None], offset, self.scale)
        return torch.einsum("bhsr,hvr->bshv", out_latent, w_uv)


class GQA(nn.Module):
    """Grouped-query attention (MHA when kv heads == heads); caches k and v of the kv heads."""

    def __init__(self, spec: ModelSpec, device=None, dtype=None) -> None:
        super().__init__()
        if spec.attention == "mla":
            raise ValueError(f"{spec.name}: attention='mla'; use MLA")
        dd = {"device": device, "dtype": dtype}
        h, self.n_heads, self.kv_heads = spec.hidden_size, spec.num_attention_heads, spec.kv_heads
        self.head_dim, bias = spec.qk_head_dim, spec.attention_bias
        self.q_proj = nn.Linear(h, self.n_heads * self.head_dim, bias=bias, **dd)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=bias, **dd)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=bias, **dd)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, h, bias=False, **dd)
        if spec.qk_norm:  # one RMSNorm per head dim, shared by heads (Qwen3)
            self.q_norm = RMSNorm(self.head_dim, **dd)
            self.k_norm = RMSNorm(self.head_dim, **dd)
        self.scale = self.head_dim**-0.5

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        """Attend x (batch, tokens, hidden) causally after the cached tokens."""
        b, s, _ = x.shape
        offset = cache.num_tokens if cache is not None else 0
        q = self.q_proj(x).view(b, s, self.n_heads, self.head_dim)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        cos, sin = rope_cos_sin(offset, s, self.head_dim, x.device, x.dtype)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.append(k=k, v=v)
        group = self.n_heads // self.kv_heads
        k, v = (t.repeat_interleave(group, dim=2).transpose(1, 2) for t in (k, v))
        out = attention_core(q.transpose(1, 2), k, v, offset, self.scale).transpose(1, 2)
        return self.o_proj(out.reshape(b, s, self.n_heads * self.head_dim))


def attention_for(spec: ModelSpec, device=None, dtype=None) -> MLA | GQA:
    """The attention module `spec.attention` names."""
    cls = MLA if spec.attention == "mla" else GQA
    return cls(spec, device=device, dtype=dtype)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)) (Shazeer 2020): dense FFN, routed and shared experts."""

    def __init__(self, hidden_size: int, intermediate_size: int, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False, **dd)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False, **dd)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False, **dd)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Gate(nn.Module):
    """DeepSeekMoE router: affinities, group-limited top-k, and V3's balancing bias.

    The bias `e_score_correction_bias` (a buffer: it is set by `update_bias`,
    not by gradients) shifts which experts are chosen, never their weights
    (V3 report, eqs. 16-17). With sigmoid affinities the chosen weights are
    normalized to sum to one.
    """

    e_score_correction_bias: Tensor | None  # a buffer (register_buffer in __init__)

    def __init__(self, spec: ModelSpec, device=None, dtype=None) -> None:
        super().__init__()
        if not spec.is_moe:
            raise ValueError(f"{spec.name} is dense; a Gate needs n_routed_experts > 0")
        self.top_k, self.n_group, self.topk_group = spec.num_experts_per_tok, spec.n_group, spec.topk_group
        self.sigmoid = spec.scoring_func == "sigmoid"
        self.weight = nn.Parameter(torch.empty(spec.n_routed_experts, spec.hidden_size, device=device, dtype=dtype))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Linear's default
        bias = torch.zeros(spec.n_routed_experts, device=device, dtype=torch.float32) if spec.router_bias else None
        self.register_buffer("e_score_correction_bias", bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Routing weights and expert indices, each (tokens, top_k), of x (tokens, hidden)."""
        logits = F.linear(x, self.weight).float()
        scores = logits.sigmoid() if self.sigmoid else logits.softmax(-1)
        choice = scores if self.e_score_correction_bias is None else scores + self.e_score_correction_bias
        if self.n_group > 1:
            choice = self._limit_groups(choice)
        indices = choice.topk(self.top_k, dim=-1).indices
        weights = scores.gather(-1, indices)
        if self.sigmoid:
            weights = weights / weights.sum(-1, keepdim=True)
        return weights.to(x.dtype), indices

    def _limit_groups(self, choice: Tensor) -> Tensor:
        """Mask all but the topk_group groups: ranked by their top-2 sum (V3) or their best expert (V2)."""
        grouped = choice.view(choice.shape[0], self.n_group, -1)
        if self.e_score_correction_bias is None:
            group_scores = grouped.amax(-1)
        else:
            group_scores = grouped.topk(min(2, grouped.shape[-1]), dim=-1).values.sum(-1)
        kept = group_scores.topk(self.topk_group, dim=-1).indices
        dropped = torch.ones_like(group_scores, dtype=torch.bool).scatter(1, kept, False)
        return grouped.masked_fill(dropped[..., None], float("-inf")).flatten(1)

    @torch.no_grad()
    def update_bias(self, expert_load_counts: Tensor, rate: float) -> None:
        """V3's balancing step: raise the bias of experts below the mean load by `rate`, lower those above."""
        if self.e_score_correction_bias is None:
            raise ValueError("this gate has no e_score_correction_bias; build it from a spec with router_bias=True")
        load = expert_load_counts.to(self.e_score_correction_bias)
        self.e_score_correction_bias += rate * torch.sign(load.mean() - load)


def expert_load(indices: Tensor, n_experts: int) -> Tensor:
    """Tokens routed to each expert, from the gate's (tokens, top_k) indices."""
    return torch.bincount(indices.flatten(), minlength=n_experts)


class MoE(nn.Module):
    """DeepSeekMoE: the gate's top-k routed SwiGLU experts, weighted, plus the always-on shared expert."""

    def __init__(self, spec: ModelSpec, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        h = spec.hidden_size
        self.gate = Gate(spec, **dd)
        self.experts = nn.ModuleList(SwiGLU(h, spec.moe_intermediate_size, **dd) for _ in range(spec.n_routed_experts))
        shared = spec.shared_intermediate_size
        self.shared_experts = SwiGLU(h, shared, **dd) if shared else None

    def forward(self, x: Tensor) -> Tensor:
        """x (..., hidden) through the experts; dispatch loops over the experts that got tokens.

        The scatter-add is index_put(accumulate=True): on CPU, index_add costs
        ~40 ms a call even for a few rows (torch 2.13), index_put microseconds.
        """
        flat = x.reshape(-1, x.shape[-1])
        weights, indices = self.gate(flat)
        out = torch.zeros_like(flat)
        for e in indices.unique().tolist():
            token, slot = torch.where(indices == e)
            out = out.index_put((token,), self.experts[e](flat[token]) * weights[token, slot, None], accumulate=True)
        if self.shared_experts is not None:
            out = out + self.shared_experts(flat)
        return out.view(x.shape)


class Block(nn.Module):
    """Pre-norm decoder layer: x + attn(norm(x)), then x + ffn(norm(x)); the FFN is MoE when `moe`."""

    def __init__(self, spec: ModelSpec, moe: bool, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        if moe and not spec.is_moe:
            raise ValueError(f"{spec.name} is dense; build its blocks with moe=False")
        self.input_layernorm = RMSNorm(spec.hidden_size, **dd)
        self.self_attn = attention_for(spec, **dd)
        self.post_attention_layernorm = RMSNorm(spec.hidden_size, **dd)
        self.mlp = MoE(spec, **dd) if moe else SwiGLU(spec.hidden_size, spec.intermediate_size, **dd)

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class MTP(nn.Module):
    """One multi-token-prediction depth: h' = eh_proj([norm(emb(t+k)); norm(h)]), a Block, the shared head.

    The concatenation puts the embedding first, as the released V3 checkpoint
    does; the embedding and output head are the main model's, passed in.
    """

    def __init__(self, spec: ModelSpec, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        h = spec.hidden_size
        self.enorm = RMSNorm(h, **dd)
        self.hnorm = RMSNorm(h, **dd)
        self.eh_proj = nn.Linear(2 * h, h, bias=False, **dd)
        self.block = Block(spec, moe=spec.is_moe, **dd)
        self.norm = RMSNorm(h, **dd)

    def project(self, hidden: Tensor, next_embeds: Tensor) -> Tensor:
        """The block's input: both normalized, concatenated, projected 2h -> h."""
        return self.eh_proj(torch.cat([self.enorm(next_embeds), self.hnorm(hidden)], dim=-1))

    def forward(
        self, hidden: Tensor, next_embeds: Tensor, head: nn.Module, cache: KVCache | None = None
    ) -> tuple[Tensor, Tensor]:
        """Logits for the token after next, and this depth's hidden state (the next depth's input)."""
        out = self.block(self.project(hidden, next_embeds), cache)
        return head(self.norm(out)), out
