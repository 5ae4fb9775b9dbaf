"""Bytes per parameter that training keeps, by role (weights, gradients, optimizer)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TrainingPrecision:
    """Bytes per parameter for each training state, and per activation element."""

    name: str
    weight_bytes: float  # the copy the GEMMs read
    grad_bytes: float  # the accumulated gradient
    master_bytes: float  # the optimizer's master copy of the weights (0 if none)
    optimizer_bytes: float  # Adam's two moments together
    activation_bytes: float = 2.0
    fp8_cacheable_bytes: float = 2.0  # Linear and SwiGLU inputs kept for backward (fp8 in V3)
    source: str = ""

    def __post_init__(self) -> None:
        for field in (
            "weight_bytes",
            "grad_bytes",
            "master_bytes",
            "optimizer_bytes",
            "activation_bytes",
            "fp8_cacheable_bytes",
        ):
            if getattr(self, field) < 0:
                raise ValueError(f"{self.name}: {field} must be >= 0")

    def activation_bytes_of(self, kind: str) -> float:
        """Bytes per activation element of a kind: `fp8_cacheable` or `other`."""
        return self.fp8_cacheable_bytes if kind == "fp8_cacheable" else self.activation_bytes


TRAINING_PRECISIONS = {
    p.name: p
    for p in (
        TrainingPrecision(
            "bf16-mixed",
            2,
            2,
            4,
            8,
            source="bf16 weights and gradients, fp32 master and Adam moments: 16 B/param "
            "(Rajbhandari et al., ZeRO, arXiv 1910.02054, section 3.1)",
        ),
        TrainingPrecision(
            "deepseek-v3",
            2,
            4,
            4,
            4,
            fp8_cacheable_bytes=1,
            source="V3 report section 3.3: fp32 master weights and gradients, Adam moments in bf16, "
            "bf16 weights for the GEMMs (cast to fp8 on the fly), Linear and SwiGLU inputs cached in fp8",
        ),
        TrainingPrecision(
            "fp32", 4, 4, 0, 8, activation_bytes=4, fp8_cacheable_bytes=4, source="plain fp32 training with Adam"
        ),
    )
}


def training_precision(name: str) -> TrainingPrecision:
    """The named TrainingPrecision preset."""
    try:
        return TRAINING_PRECISIONS[name]
    except KeyError:
        raise ValueError(f"unknown training precision {name!r}; use one of {', '.join(TRAINING_PRECISIONS)}") from None
