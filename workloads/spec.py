"""ModelSpec: the architecture of one decoder-only LLM, in Hugging Face names.

Field names follow DeepSeek-V3's `ModelArgs` and the HF `config.json` keys
(`q_lora_rank`, `kv_lora_rank`, `n_routed_experts`, `topk_group`, ...), so a
reader can check a preset against its published config line by line. Features
are explicit (`attention="mla"`), never inferred from a size.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.files import clean_text

ATTENTION_KINDS = ("mha", "gqa", "mla")
SCORING_FUNCS = ("softmax", "sigmoid")  # the router's score: V2 softmax, V3 sigmoid
BOOL_FIELDS = ("tie_word_embeddings", "attention_bias", "qk_norm", "router_bias")
# Upper bounds far beyond any published model (V3: 61 layers, hidden 7,168, 256 experts, vocab 129,280), low
# enough that a typo (10**9 layers) cannot make the layer-by-layer models loop for hours.
MAX_SIZES = {
    "num_hidden_layers": 1024,
    "hidden_size": 1 << 18,
    "num_attention_heads": 1 << 14,
    "vocab_size": 1 << 27,
    "intermediate_size": 1 << 22,
    "num_key_value_heads": 1 << 14,
    "head_dim": 1 << 16,
    "q_lora_rank": 1 << 18,
    "kv_lora_rank": 1 << 18,
    "qk_nope_head_dim": 1 << 16,
    "qk_rope_head_dim": 1 << 16,
    "v_head_dim": 1 << 16,
    "n_routed_experts": 1 << 16,
    "n_shared_experts": 1024,
    "num_experts_per_tok": 1 << 16,
    "moe_intermediate_size": 1 << 22,
    "shared_expert_intermediate_size": 1 << 22,
    "n_group": 1 << 16,
    "topk_group": 1 << 16,
    "first_k_dense_replace": 1024,
    "moe_layer_freq": 1024,
    "num_nextn_predict_layers": 64,
    "max_position_embeddings": 1 << 24,
    "sliding_window": 1 << 24,
    "sliding_window_layers": 1024,
}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One transformer architecture; validated on construction.

    Attention is MHA/GQA (`num_key_value_heads`, `head_dim`) or MLA (the
    low-rank `q_lora_rank` / `kv_lora_rank` path with decoupled RoPE keys).
    The FFN is a SwiGLU MLP of `intermediate_size`, or DeepSeekMoE when
    `n_routed_experts > 0`: `n_shared_experts` always-on experts plus
    `num_experts_per_tok` of the routed ones, each of `moe_intermediate_size`.
    """

    name: str
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    vocab_size: int
    intermediate_size: int  # dense SwiGLU FFN width (the first_k_dense_replace layers of an MoE)
    attention: str = "gqa"
    tie_word_embeddings: bool = False
    source: str = ""
    # mha / gqa
    num_key_value_heads: int = 0  # 0 = same as num_attention_heads (MHA)
    head_dim: int = 0  # 0 = hidden_size // num_attention_heads
    attention_bias: bool = False  # bias on q, k, v projections (Qwen2)
    qk_norm: bool = False  # RMSNorm over q and k per head (Qwen3)
    # sliding-window attention: `sliding_window_layers` of the layers attend only the last `sliding_window`
    # tokens (each query: itself and the W - 1 before it) and cache only those; 0 = every layer attends all
    sliding_window: int = 0
    sliding_window_layers: int = 0
    # mla
    q_lora_rank: int = 0  # 0 = queries are not compressed (DeepSeek-V2-Lite)
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # moe
    n_routed_experts: int = 0  # 0 = dense model
    n_shared_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0  # 0 = n_shared_experts * moe_intermediate_size
    n_group: int = 1  # expert groups for group-limited routing (one group per node in V3)
    topk_group: int = 1  # groups a token may use
    first_k_dense_replace: int = 0  # the first k layers use the dense FFN
    moe_layer_freq: int = 1  # after those, every n-th layer is MoE
    router_bias: bool = False  # V3's e_score_correction_bias (auxiliary-loss-free balancing)
    scoring_func: str = "softmax"
    # mtp
    num_nextn_predict_layers: int = 0
    # the longest context the model was trained for (config.json's max_position_embeddings); 0 = not stated
    max_position_embeddings: int = 0

    def __post_init__(self) -> None:
        for field in ("name", "source"):
            if not isinstance(getattr(self, field), str):
                raise ValueError(f"{field}={_shown(getattr(self, field))} must be a string")
        # a name or source from a file is shown as plain text: no terminal escapes, bounded length
        object.__setattr__(self, "name", clean_text(self.name, 200))
        object.__setattr__(self, "source", clean_text(self.source, 1000))
        _check_positive(self, "num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")
        _check_non_negative(
            self,
            "intermediate_size",
            "num_key_value_heads",
            "head_dim",
            "q_lora_rank",
            "kv_lora_rank",
            "qk_nope_head_dim",
            "qk_rope_head_dim",
            "v_head_dim",
            "n_routed_experts",
            "n_shared_experts",
            "num_experts_per_tok",
            "moe_intermediate_size",
            "shared_expert_intermediate_size",
            "first_k_dense_replace",
            "num_nextn_predict_layers",
            "max_position_embeddings",
            "sliding_window",
            "sliding_window_layers",
        )
        _check_positive(self, "n_group", "topk_group", "moe_layer_freq")
        for field, limit in MAX_SIZES.items():
            if getattr(self, field) > limit:
                shown = clean_text(f"{getattr(self, field):,}", 40)
                raise ValueError(f"{self.name}: {field}={shown} is beyond the limit of {limit:,}")
        for field in BOOL_FIELDS:
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"{self.name}: {field}={_shown(getattr(self, field))} must be true or false")
        if self.scoring_func not in SCORING_FUNCS:
            shown = _shown(self.scoring_func)
            raise ValueError(f"{self.name}: scoring_func={shown}; use one of {', '.join(SCORING_FUNCS)}")
        if self.attention not in ATTENTION_KINDS:
            shown = _shown(self.attention)
            raise ValueError(f"{self.name}: attention={shown}; use one of {', '.join(ATTENTION_KINDS)}")
        if self.attention == "mla":
            _check_positive(self, "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
        elif self.hidden_size % self.num_attention_heads and not self.head_dim:
            raise ValueError(
                f"{self.name}: hidden_size={self.hidden_size} is not a multiple of "
                f"num_attention_heads={self.num_attention_heads}; set head_dim"
            )
        if self.attention == "mha" and self.kv_heads != self.num_attention_heads:
            raise ValueError(f"{self.name}: MHA needs num_key_value_heads == num_attention_heads")
        if self.attention == "gqa" and self.num_attention_heads % self.kv_heads:
            raise ValueError(
                f"{self.name}: num_key_value_heads={self.kv_heads} does not divide "
                f"num_attention_heads={self.num_attention_heads}"
            )
        self._check_window()
        self._check_moe()

    def _check_window(self) -> None:
        if bool(self.sliding_window) != bool(self.sliding_window_layers):
            raise ValueError(
                f"{self.name}: sliding_window={self.sliding_window} and sliding_window_layers="
                f"{self.sliding_window_layers} must both be 0 (no window) or both be set"
            )
        if self.sliding_window_layers > self.num_hidden_layers:
            raise ValueError(
                f"{self.name}: sliding_window_layers={self.sliding_window_layers} exceeds "
                f"num_hidden_layers={self.num_hidden_layers}"
            )
        if self.sliding_window and self.attention == "mla":
            raise ValueError(f"{self.name}: a sliding window with MLA is not modelled (no such model is published)")

    def _check_moe(self) -> None:
        if not self.n_routed_experts:
            if self.num_dense_layers and not self.intermediate_size:
                raise ValueError(f"{self.name}: a dense model needs intermediate_size > 0")
            return
        _check_positive(self, "num_experts_per_tok", "moe_intermediate_size")
        if self.num_experts_per_tok > self.n_routed_experts:
            raise ValueError(
                f"{self.name}: num_experts_per_tok={self.num_experts_per_tok} exceeds "
                f"n_routed_experts={self.n_routed_experts}"
            )
        if self.n_routed_experts % self.n_group:
            raise ValueError(
                f"{self.name}: n_group={self.n_group} does not divide n_routed_experts={self.n_routed_experts}"
            )
        if self.topk_group > self.n_group:
            raise ValueError(f"{self.name}: topk_group={self.topk_group} exceeds n_group={self.n_group}")
        if self.num_experts_per_tok > self.topk_group * self.n_routed_experts // self.n_group:
            raise ValueError(
                f"{self.name}: {self.topk_group} groups hold fewer than {self.num_experts_per_tok} experts"
            )
        if self.first_k_dense_replace > self.num_hidden_layers:
            raise ValueError(f"{self.name}: first_k_dense_replace exceeds num_hidden_layers")
        if self.first_k_dense_replace and not self.intermediate_size:
            raise ValueError(f"{self.name}: first_k_dense_replace > 0 needs intermediate_size > 0")

    # --- derived shapes (element counts, not bytes) ---

    @property
    def is_moe(self) -> bool:
        return self.n_routed_experts > 0

    @property
    def kv_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def qk_head_dim(self) -> int:
        """Per-head query/key width: nope + rope for MLA, head_dim otherwise."""
        if self.attention == "mla":
            return self.qk_nope_head_dim + self.qk_rope_head_dim
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def v_dim(self) -> int:
        """Per-head value width."""
        return self.v_head_dim if self.attention == "mla" else self.qk_head_dim

    @property
    def shared_intermediate_size(self) -> int:
        return self.shared_expert_intermediate_size or self.n_shared_experts * self.moe_intermediate_size

    @property
    def num_moe_layers(self) -> int:
        """Layers whose FFN is DeepSeekMoE (HF: k >= first_k_dense_replace and k % freq == 0)."""
        if not self.is_moe:
            return 0
        k0, freq = self.first_k_dense_replace, self.moe_layer_freq
        return sum(1 for k in range(k0, self.num_hidden_layers) if k % freq == 0)

    @property
    def num_dense_layers(self) -> int:
        return self.num_hidden_layers - self.num_moe_layers


def _check_positive(spec: ModelSpec, *fields: str) -> None:
    for field in fields:
        value = getattr(spec, field)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{spec.name}: {field}={_shown(value)} must be a positive integer")


def _check_non_negative(spec: ModelSpec, *fields: str) -> None:
    for field in fields:
        value = getattr(spec, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{spec.name}: {field}={_shown(value)} must be a non-negative integer")


def _shown(value: object) -> str:
    """`value` as an error shows it: its repr, without control characters, at most 80 characters."""
    return clean_text(repr(value), 80)
