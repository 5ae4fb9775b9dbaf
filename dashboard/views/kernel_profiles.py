"""Calibration: a kernel profile's fits and samples, its rates against the chosen GPU's peaks, and whether it may
price a run on that GPU at all.

Which profile a choice names, whether it may price the GPU (`refusal`), which fits fail (`failed_classes`,
MAX_FIT_RMSE) and the rates themselves come from `simulator.analytic.profile`; this page only divides a rate by
its peak to show a share, puts the classes in words, and plots.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import simulator.analytic.profile as profiles
from dashboard import state
from hwmodels.profile import MAX_FIT_RMSE, class_dtype
from hwmodels.registry import catalog, load_gpu

KERNEL_WORDS = {
    "gemm": "GEMM",
    "grouped_gemm": "grouped GEMM (experts)",
    "gemm_wgrad": "weight-gradient GEMM",
    "attention_fwd": "attention forward",
    "attention_bwd": "attention backward",
    "attention_fwd_mla": "MLA attention forward (qk 192, v 128)",
    "attention_bwd_mla": "MLA attention backward (qk 192, v 128)",
    "attention_decode": "decode attention",
    "attention_decode_mla": "MLA decode attention (latent 576 / 512)",
}
PROFILE_WORDS = {
    "published": "published: kernel benchmarks for this GPU's die",
    "measured": "measured: kernels timed on this GPU or its die",
    "sol": "speed of light: the datasheet's peaks",
}
FIT_COLUMNS = {
    "tflops": "TFLOPS",
    "gb_per_s": "GB/s",
    "overhead_us": "Overhead (µs)",
    "item_ns": "Per item (ns)",
    "samples": "Samples",
    "rel_rmse": "Fit error (rms)",
    "derived_from": "Derived from",
    "source": "Source",
}
AT_BOUND = 1e-6  # a rate within this fraction of its datasheet bound sits on it


def class_label(cls: str) -> str:
    """A kernel class in words: `grouped_gemm_fp8` -> "FP8 grouped GEMM (experts)", `memory` -> "memory copies"."""
    if cls == "memory":
        return "memory copies (HBM-bound)"
    kernel = cls.rsplit("_", 1)[0]
    return f"{cls.rsplit('_', 1)[-1].upper()} {KERNEL_WORDS.get(kernel, kernel.replace('_', ' '))}"


def fit_status(fit) -> str:
    """Pass or fail against MAX_FIT_RMSE, in words."""
    return "passes" if fit.passes else f"FAILS: over {MAX_FIT_RMSE:.0%}"


def bytes_note(share: float | None, sol: bool = False) -> str:
    """What a bytes rate's share of the HBM datasheet says about where it came from."""
    if share is None:
        return "no bytes term"
    if sol:
        return "the HBM datasheet (speed of light)"
    if share > 1 + AT_BOUND:
        return "above the HBM datasheet: its samples' bytes came from L2, not HBM (a fit not bounded by the datasheet)"
    if share > 1 - AT_BOUND:
        return "at the HBM datasheet: no sample is bound by it, so the fit holds it there"
    return "set by its samples"


def peak_shares(fits: dict, gpu, sol: bool = False) -> pd.DataFrame:
    """Per class: its fitted FLOP/s and bytes/s as fractions of the GPU's dense peak and HBM bandwidth."""
    rows = []
    for cls, fit in sorted(fits.items()):
        peak = None if cls == "memory" else getattr(gpu, f"peak_{class_dtype(cls)}_flop_per_s", 0) or None
        flop = None if math.isinf(fit.flop_per_s) else fit.flop_per_s
        bw = None if math.isinf(fit.bytes_per_s) else fit.bytes_per_s
        share = None if bw is None else bw / gpu.hbm_bw_bytes_per_s
        rows.append(
            {
                "Kernel class": class_label(cls),
                "Fitted TFLOPS": None if flop is None else flop / 1e12,
                "Peak TFLOPS": None if peak is None else peak / 1e12,
                "Share of peak FLOP/s": None if flop is None or peak is None else flop / peak,
                "Fitted GB/s": None if bw is None else bw / 1e9,
                "HBM GB/s": gpu.hbm_bw_bytes_per_s / 1e9,
                "Share of HBM bandwidth": share,
                "Bytes rate": bytes_note(share, sol),
            }
        )
    return pd.DataFrame(rows)


def fits_frame(fits: dict, sources: dict[str, str]) -> pd.DataFrame:
    """`describe`'s rows with the classes in words, each fit's pass or fail, and human column names."""
    rows = profiles.describe(fits, sources)
    classes = [str(r["class"]) for r in rows]
    frame = pd.DataFrame(rows).rename(columns=FIT_COLUMNS)
    frame.insert(0, "Kernel class", [class_label(c) for c in classes])
    frame.insert(8, "Fit", [fit_status(fits[c]) for c in classes])
    return state.clean_frame(frame.drop(columns=["class", "passes"]))


def samples_frame(profile) -> pd.DataFrame:
    """The profile's samples, with each one's achieved TFLOPS and the TFLOPS its class's fit predicts for it."""
    rows = []
    for s in profile.samples:
        fit = profile.fits.get(s.kernel_class)
        rows.append(
            {
                "Kernel class": class_label(s.kernel_class),
                "FLOPs": s.flops,
                "Bytes moved (MB)": s.bytes / 1e6,
                "Time (ms)": s.time_s * 1e3,
                "Achieved TFLOPS": s.flop_per_s / 1e12,
                "Fit's TFLOPS": None if fit is None else s.flops / fit.time_s(s.flops, s.bytes, s.items) / 1e12,
                "Source": s.source,
            }
        )
    return pd.DataFrame(rows)


def samples_chart(samples: pd.DataFrame) -> go.Figure:
    """Each sample's achieved TFLOPS against its FLOPs (log x), with its class's fit drawn through them."""
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for i, (cls, rows) in enumerate(samples[samples["FLOPs"] > 0].groupby("Kernel class", sort=True)):
        color = palette[i % len(palette)]
        rows = rows.sort_values("FLOPs")
        fig.add_trace(
            go.Scatter(
                x=rows["FLOPs"],
                y=rows["Achieved TFLOPS"],
                mode="markers",
                name=cls,
                legendgroup=cls,
                marker={"color": color, "size": 8},
                customdata=rows[["Bytes moved (MB)", "Time (ms)"]].values,
                hovertemplate="%{x:.3g} FLOPs, %{customdata[0]:.3g} MB in %{customdata[1]:.3g} ms: "
                "%{y:.1f} TFLOPS<extra>" + cls + "</extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=rows["FLOPs"],
                y=rows["Fit's TFLOPS"],
                mode="lines",
                name=f"{cls}, fit",
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


def headline_class(rates, gpu) -> str | None:
    """The class the finding is about: FP8 GEMMs where the GPU has FP8 tensor cores, else BF16 GEMMs."""
    for cls in ("gemm_fp8", "gemm_bf16"):
        if cls in rates.fits and getattr(gpu, f"peak_{class_dtype(cls)}_flop_per_s"):
            return cls
    return None


def finding(rates, gpu) -> str:
    """The page's answer in a sentence: what fraction of peak the GEMMs reach on `gpu`, and whether the fits pass."""
    name = gpu.name.upper()
    if rates.kind == "sol":
        return (
            f"Speed of light: every kernel at the {name}'s dense peaks and {gpu.hbm_bw_bytes_per_s / 1e9:,.0f} GB/s "
            "HBM, no overhead; a bound to hold the other profiles against, not a measurement."
        )
    cls = headline_class(rates, gpu)
    reach = f"On the {name}, {state.plain(rates.name)} has no GEMM fit"
    if cls is not None:
        fit, peak = rates.fits[cls], gpu.peak_flop_per_s(class_dtype(cls))
        reach = (
            f"On the {name}, {class_label(cls)}s reach {fit.flop_per_s / 1e12:,.0f} TFLOPS, "
            f"{fit.flop_per_s / peak:.0%} of its {peak / 1e12:,.0f} TFLOPS dense peak"
        )
    failed = profiles.failed_classes(rates.fits)
    if failed:
        worst = rates.fits[failed[0]]
        return (
            f"{reach}; {len(failed)} of {len(rates.fits)} fits FAIL (worst: {class_label(failed[0])}, "
            f"{100 * worst.rel_rmse:,.0f}% rms against the {MAX_FIT_RMSE:.0%} limit)."
        )
    worst_cls = max(rates.fits, key=lambda c: rates.fits[c].rel_rmse)
    return (
        f"{reach}; every class's fit passes (worst: {class_label(worst_cls)}, "
        f"{rates.fits[worst_cls].rel_rmse:.1%} rms; the limit is {MAX_FIT_RMSE:.0%})."
    )


def show_finding(rates, gpu, profile) -> None:
    """The finding, with its source beside it, and an error naming each fit that fails."""
    left, right = st.columns([3, 2])
    left.markdown(finding(rates, gpu))
    cls = headline_class(rates, gpu)
    source = rates.sources.get(cls or "", "") or (profile.source if profile else "") or "; ".join(rates.notes)
    right.caption(f"Source: {state.plain(source, 300)}")
    failed = profiles.failed_classes(rates.fits)
    if failed:
        shown = ", ".join(f"{class_label(c)} {100 * rates.fits[c].rel_rmse:,.0f}%" for c in failed)
        st.error(
            f"Fits over the {MAX_FIT_RMSE:.0%} limit (rms error against their own samples): {shown}. A run that "
            "uses any of them is refused: measure again with `v3sim calibrate run` on an idle machine, or choose "
            "published."
        )


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
            f"{state.plain(rates.name)} has no FP8 GEMM fit on the {gpu.name.upper()} (no FP8 tensor cores, or no "
            "FP8 samples)."
        )
    else:
        achieved[0].metric("fp8 GEMM achieved (TFLOPS)", f"{gemm.flop_per_s / 1e12:.4g}")
        achieved[1].metric("fp8 GEMM share of peak", f"{100 * gemm.flop_per_s / fp8_peak:.3g}%")


def show_fits(fits: dict, sources: dict[str, str]) -> None:
    """Per kernel class: the fit, its error against its own samples, and whether that error passes."""
    st.subheader("Fits per kernel class")
    frame = fits_frame(fits, sources)
    number = st.column_config.NumberColumn
    formats = {"TFLOPS": "%.1f", "GB/s": "%.0f", "Overhead (µs)": "%.2f", "Per item (ns)": "%.3g"}
    formats["Fit error (rms)"] = "percent"
    st.dataframe(frame, hide_index=True, column_config={c: number(format=f) for c, f in formats.items()})
    st.caption(
        f"Fit error: the root-mean-square of (fit's time / measured time - 1) over the class's samples. A fit "
        f"over {MAX_FIT_RMSE:.0%} fails and prices nothing (the shipped GPU fits reach 16%; past 25% the kernel "
        "rates would be the largest error in the answer)."
    )
    state.csv_download(frame, "fits", label="Download fits (CSV)")


def show_shares(rates, gpu) -> None:
    """Each class's fitted rates as shares of the GPU's peaks, and why a bytes share sits where it does."""
    st.subheader("Peak vs achieved")
    shares = peak_shares(rates.fits, gpu, sol=rates.kind == "sol")
    number = st.column_config.NumberColumn
    formats = {c: "%.1f" for c in ("Fitted TFLOPS", "Peak TFLOPS")} | {c: "%.0f" for c in ("Fitted GB/s", "HBM GB/s")}
    formats |= {"Share of peak FLOP/s": "percent", "Share of HBM bandwidth": "percent"}
    st.dataframe(shares, hide_index=True, column_config={c: number(format=f) for c, f in formats.items()})
    st.caption(
        f"Fitted GB/s is a kernel's least bytes over its time. Fits are bounded by the datasheet of the GPU they "
        f"were timed on and carried to the {gpu.name.upper()} as the same fraction of its HBM, so no share passes "
        "100%. Before that bound the fit added the FLOP and bytes terms, and could trade one for the other: the "
        "H800's FP8 grouped GEMMs came out at 208% of its HBM. A class at 100% has no sample its bytes term limits."
    )


def show_samples(profile) -> None:
    """The profile's samples: achieved TFLOPS against FLOPs with each class's fit, and the table."""
    st.subheader("Samples")
    samples = state.clean_frame(samples_frame(profile))  # classes and sources are a profile file's text
    if samples.empty:
        st.info(f"{state.plain(profile.name)} has no samples.")
        return
    st.caption(
        f"{len(samples)} samples of {state.plain(profile.name)}, timed on {state.plain(profile.device)}; dotted: "
        "each class's fit there, at each sample's FLOPs and bytes."
    )
    st.plotly_chart(samples_chart(samples))
    table = samples[["Kernel class", "FLOPs", "Bytes moved (MB)", "Time (ms)", "Achieved TFLOPS", "Source"]]
    number = st.column_config.NumberColumn
    formats = {"FLOPs": "%.3g", "Bytes moved (MB)": "%.3g", "Time (ms)": "%.3g", "Achieved TFLOPS": "%.3g"}
    st.dataframe(table, hide_index=True, column_config={c: number(format=f) for c, f in formats.items()})
    state.csv_download(table, "samples", label="Download samples (CSV)")


def show_refused(reason: str, profile, headline) -> None:
    """A profile that may not price this GPU: the reason at the top, then its fits and samples on the device it
    ran on."""
    headline.error(state.plain(reason))
    st.markdown(f"**{state.plain(profile.name)}** as timed on {state.plain(profile.device)}, where it was measured:")
    show_fits(profile.fits, profiles.sample_sources(profile))
    show_samples(profile)


def render() -> None:
    st.title("Calibration")
    headline = st.container()  # the finding, filled in once the widgets below have said what to look at
    st.caption(
        "The kernel rates the simulator uses: per kernel class, time = max(FLOPs / rate, bytes / bandwidth) + "
        "overhead, fitted to timed kernels (published benchmarks, or `v3sim calibrate run` on a GPU)."
    )
    cols = st.columns(2)
    with cols[0]:
        options = ("published", "measured", *profiles.shipped_profiles(), "sol")
        choice = state.selectbox(
            "Profile", options, key="profile", default="published", format_func=lambda o: PROFILE_WORDS.get(o, o)
        )
    with cols[1]:
        gpu_name = state.selectbox("GPU", catalog("gpus"), key="gpu", default="h800")
    try:
        gpu = load_gpu(gpu_name)
        name = profiles.published_for(gpu) if choice == "published" else choice
        profile = None if choice == "sol" else profiles.load_profile(name, gpu)
        reason = "" if profile is None else profiles.refusal(profile, gpu)
        rates = None if reason else profiles.rates_for(choice, gpu)
    except ValueError as exc:
        with headline:
            state.fail(exc)
    if rates is None:
        show_refused(reason, profile, headline)
        return
    with headline:
        show_finding(rates, gpu, profile)
    shown, device = state.plain(rates.name), state.plain(rates.device)  # a measured profile's text is a file's
    if rates.kind == "sol":
        st.markdown(f"**sol**: the {gpu.name.upper()} datasheet's dense peaks and HBM bandwidth")
    else:
        st.markdown(f"**{shown}** ({rates.kind}, timed on {device}) applied to the **{gpu.name.upper()}**")
    for note in rates.notes:
        st.caption(state.plain(note))
    show_peaks(rates, gpu)
    show_fits(rates.fits, rates.sources)
    show_shares(rates, gpu)
    if profile is None:
        st.info("sol (speed of light) has no samples: every kernel runs at the GPU's dense peak and HBM bandwidth.")
    else:
        show_samples(profile)


render()
