"""Calibration: a kernel profile's samples and fits, and its fitted rates against the GPU's peaks.

The fits and peaks come from `simulator.analytic.profile` and `hwmodels`; this page only divides a rate by its peak to
show a share, converts to TFLOPS / GB/s, and plots.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import simulator.analytic.profile as profiles
from dashboard import state
from hwmodels.registry import catalog, load_gpu

CLASS_COLUMNS = {
    "class": "class",
    "tflops": "TFLOPS",
    "gb_per_s": "GB/s",
    "overhead_us": "overhead (µs)",
    "samples": "samples",
    "rel_rmse": "fit rel. RMSE",
    "derived_from": "derived from",
    "source": "source",
}


def peak_shares(fits: dict, gpu) -> pd.DataFrame:
    """Per class: its fitted FLOP/s and bytes/s as fractions of the GPU's dense peak and HBM bandwidth."""
    rows = []
    for cls, fit in sorted(fits.items()):
        dtype = cls.rsplit("_", 1)[-1]
        peak = None if cls == "memory" else getattr(gpu, f"peak_{dtype}_flop_per_s", 0) or None
        flop = None if math.isinf(fit.flop_per_s) else fit.flop_per_s
        bw = None if math.isinf(fit.bytes_per_s) else fit.bytes_per_s
        rows.append(
            {
                "class": cls,
                "fitted TFLOPS": None if flop is None else flop / 1e12,
                "peak TFLOPS": None if peak is None else peak / 1e12,
                "share of peak FLOP/s": None if flop is None or peak is None else flop / peak,
                "fitted GB/s": None if bw is None else bw / 1e9,
                "HBM GB/s": gpu.hbm_bw_bytes_per_s / 1e9,
                "share of HBM bandwidth": None if bw is None else bw / gpu.hbm_bw_bytes_per_s,
            }
        )
    return pd.DataFrame(rows)


def samples_frame(profile) -> pd.DataFrame:
    """The profile's samples, with each one's achieved TFLOPS and the TFLOPS its class's fit predicts for it."""
    rows = []
    for s in profile.samples:
        fit = profile.fits.get(s.kernel_class)
        rows.append(
            {
                "class": s.kernel_class,
                "flops": s.flops,
                "bytes": s.bytes,
                "time_s": s.time_s,
                "achieved_tflops": s.flop_per_s / 1e12,
                "fitted_tflops": None if fit is None else s.flops / fit.time_s(s.flops, s.bytes) / 1e12,
                "source": s.source,
            }
        )
    return pd.DataFrame(rows)


def samples_chart(samples: pd.DataFrame) -> go.Figure:
    """Each sample's achieved TFLOPS against its FLOPs (log x), with its class's fit drawn through them."""
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for i, (cls, rows) in enumerate(samples[samples["flops"] > 0].groupby("class", sort=True)):
        color = palette[i % len(palette)]
        rows = rows.sort_values("flops")
        fig.add_trace(
            go.Scatter(
                x=rows["flops"],
                y=rows["achieved_tflops"],
                mode="markers",
                name=cls,
                legendgroup=cls,
                marker={"color": color, "size": 8},
                customdata=rows[["bytes", "time_s"]].values,
                hovertemplate="%{x:.3g} FLOPs, %{customdata[0]:.3g} B in %{customdata[1]:.3g} s: "
                "%{y:.1f} TFLOPS<extra>" + cls + "</extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=rows["flops"],
                y=rows["fitted_tflops"],
                mode="lines",
                name=f"{cls} fit",
                legendgroup=cls,
                line={"color": color, "dash": "dot"},
                hovertemplate="fit: %{y:.1f} TFLOPS<extra>" + cls + "</extra>",
            )
        )
    fig.update_layout(
        height=460,
        xaxis={"type": "log", "title": "FLOPs per kernel"},
        yaxis_title="achieved TFLOPS (FLOPs / time)",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


def show_peaks(rates, gpu) -> None:
    """The GPU's peaks, and the fp8 GEMM's fitted rate against its peak."""
    peaks = st.columns(3)
    fp8_peak = gpu.peak_fp8_flop_per_s
    peaks[0].metric("Peak bf16 (TFLOPS)", f"{gpu.peak_bf16_flop_per_s / 1e12:,.0f}")
    peaks[1].metric("Peak fp8 (TFLOPS)", f"{fp8_peak / 1e12:,.0f}" if fp8_peak else "none")
    peaks[2].metric("HBM bandwidth (GB/s)", f"{gpu.hbm_bw_bytes_per_s / 1e9:,.0f}")
    gemm = rates.fits.get("gemm_fp8")
    achieved = st.columns(2)
    if gemm is None or not fp8_peak:
        achieved[0].metric("fp8 GEMM achieved (TFLOPS)", "n/a")
        achieved[1].metric("fp8 GEMM share of peak", "n/a")
        st.caption(
            f"{state.plain(rates.name)} has no fp8 GEMM fit on {gpu.name} (no fp8 tensor cores, or no fp8 samples)."
        )
    else:
        achieved[0].metric("fp8 GEMM achieved (TFLOPS)", f"{gemm.flop_per_s / 1e12:.4g}")
        achieved[1].metric("fp8 GEMM share of peak", f"{100 * gemm.flop_per_s / fp8_peak:.3g}%")


def show_fits(rates, gpu) -> None:
    """Per kernel class: the fit as `describe` gives it, then its rates as shares of the GPU's peaks."""
    st.subheader("Fits per kernel class")
    fits = state.clean_frame(pd.DataFrame(profiles.describe(rates.fits, rates.sources)).rename(columns=CLASS_COLUMNS))
    number = st.column_config.NumberColumn
    formats = {"TFLOPS": "%.1f", "GB/s": "%.0f", "overhead (µs)": "%.2f", "fit rel. RMSE": "percent"}
    st.dataframe(fits, hide_index=True, column_config={c: number(format=f) for c, f in formats.items()})
    state.csv_download(fits, "fits", label="Download fits (CSV)")
    st.subheader("Peak vs achieved")
    shares = peak_shares(rates.fits, gpu)
    formats = {c: "%.1f" for c in ("fitted TFLOPS", "peak TFLOPS")} | {c: "%.0f" for c in ("fitted GB/s", "HBM GB/s")}
    formats |= {"share of peak FLOP/s": "percent", "share of HBM bandwidth": "percent"}
    st.dataframe(shares, hide_index=True, column_config={c: number(format=f) for c, f in formats.items()})


def show_samples(profile) -> None:
    """The profile's samples: achieved TFLOPS against FLOPs with each class's fit, and the table."""
    st.subheader("Samples")
    samples = state.clean_frame(samples_frame(profile))  # classes and sources are a profile file's text
    if samples.empty:
        st.info(f"{state.plain(profile.name)} has no samples.")
        return
    st.caption(
        f"{len(samples)} samples of {state.plain(profile.name)}, measured on {state.plain(profile.device)}; dotted: "
        "each class's fit there, at each sample's FLOPs and bytes."
    )
    st.plotly_chart(samples_chart(samples))
    table = samples[["class", "flops", "bytes", "time_s", "source"]]
    st.dataframe(table, hide_index=True)
    state.csv_download(table, "samples", label="Download samples (CSV)")


def render() -> None:
    st.title("Calibration")
    st.caption(
        "The kernel rates the simulator uses: per kernel class, time = FLOPs / rate + bytes / bandwidth + overhead, "
        "fitted to timed kernels (published benchmarks or `v3sim calibrate run` on this machine)."
    )
    cols = st.columns(2)
    with cols[0]:
        options = ("published", "measured", *profiles.shipped_profiles(), "sol")
        choice = state.selectbox("Profile", options, key="profile", default="published")
    with cols[1]:
        gpu_name = state.selectbox("GPU", catalog("gpus"), key="gpu", default="h800")
    try:
        gpu = load_gpu(gpu_name)
        rates = profiles.rates_for(choice, gpu)
        profile = None if choice == "sol" else profiles.load_profile(rates.name if choice == "published" else choice)
    except ValueError as exc:
        state.fail(exc)
    name, device = state.plain(rates.name), state.plain(rates.device)  # a measured profile's text is a file's
    st.markdown(f"**{name}** ({state.plain(rates.kind)}, measured on {device}) applied to **{gpu.name}**")
    for note in rates.notes:
        st.caption(state.plain(note))
    show_peaks(rates, gpu)
    show_fits(rates, gpu)
    if profile is None:
        st.info("sol (speed of light) has no samples: every kernel runs at the GPU's dense peak and HBM bandwidth.")
    else:
        show_samples(profile)


render()
