"""The human value frameworks' figures (notebook 08): one function per figure, drawn from the results of
:mod:`valuelex.human_values` (the calibrated thresholds, the coverage, the categories the lexicon maps to,
the frameworks' CFA next to the ValueLex taxonomy's)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..human_values import Calibration, testable


def plot_threshold_calibration(calibrations: dict[str, Calibration], names: dict[str, str]) -> plt.Figure:
    """Per framework: similarity of neutral words and of held-out marker words, with the threshold."""
    fig, axes = plt.subplots(1, len(calibrations), figsize=(5.2 * len(calibrations), 3.4), squeeze=False)
    for ax, (key, cal) in zip(axes[0], calibrations.items(), strict=True):
        bins = np.linspace(0.0, 1.0, 41)
        ax.hist(cal.null, bins=bins, color="#9e9e9e", alpha=0.8, label="neutral words (best category)")
        ax.hist(cal.markers, bins=bins, color="#3b6fb6", alpha=0.6, label="marker words (own category, held out)")
        ax.axvline(cal.threshold, color="#c44e52", lw=2)
        ax.set_title(
            f"{names.get(key, key)}: threshold {cal.threshold:.3f}\n"
            f"neutral pass {cal.false_positive_rate:.0%}, markers pass {cal.marker_pass_rate:.0%}",
            fontsize=10,
        )
        ax.set_xlabel("cosine similarity to the category centroid")
        ax.set_xlim(0, 1)
    axes[0][0].set_ylabel("words")
    handles, names = axes[0][0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="#c44e52", lw=2))
    quantiles = sorted({cal.quantile for cal in calibrations.values()})
    names.append("threshold: quantile " + ", ".join(f"{q:g}" for q in quantiles) + " of the neutral words")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)  # below, off the data
    return fig


def plot_coverage(table: pd.DataFrame) -> plt.Figure:
    """Share of the lexicon each framework covers, by words and weighted by usage."""
    fig, ax = plt.subplots(figsize=(6.5, 0.7 * len(table) + 1.6))
    y = np.arange(len(table))[::-1]
    ax.barh(y + 0.18, table["share_words"], height=0.36, color="#3b6fb6", label="share of words")
    ax.barh(y - 0.18, table["share_usage"], height=0.36, color="#f2b872", label="share of usage")
    for yi, (_, r) in zip(y, table.iterrows(), strict=True):
        ax.text(r["share_words"] + 0.01, yi + 0.18, f"{r['n_covered']}/{r['n_words']} words", va="center", fontsize=8)
        ax.text(r["share_usage"] + 0.01, yi - 0.18, f"{r['share_usage']:.0%} of uses", va="center", fontsize=8)
    ax.set_yticks(y, table["framework"])
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("share of the LLM value lexicon covered")
    ax.set_title("How much of the LLM lexicon human value systems cover")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_coverage_curve(curve: pd.DataFrame, thresholds: dict[str, float]) -> plt.Figure:
    """Share of lexicon usage covered against the threshold, per framework; dots at the calibrated thresholds."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    colours = ["#c44e52", "#8172b3", "#3b6fb6", "#3f9b62"]
    for colour, (name, part) in zip(colours, curve.groupby("framework", sort=False), strict=False):
        ax.plot(part["threshold"], part["share_usage"], color=colour, label=name)
        if name in thresholds:
            t = thresholds[name]
            at = part.iloc[int(np.argmin(np.abs(part["threshold"].to_numpy() - t)))]
            ax.plot([t], [at["share_usage"]], "o", color=colour, ms=7)
    ax.set_xlabel("similarity threshold for 'covered'")
    ax.set_ylabel("share of lexicon usage covered")
    ax.set_ylim(0, 1.02)
    ax.set_title("Coverage is a matter of threshold: dots mark the calibrated ones")
    ax.legend(fontsize=8)
    return fig


def plot_assignment(counts: dict[str, pd.DataFrame], names: dict[str, str]) -> plt.Figure:
    """Per framework, covered lexicon words per human category, with the category's most used words
    in a column beside the bars; empty categories are marked."""
    rows = [len(c) for c in counts.values()]
    fig, axes = plt.subplots(
        len(counts),
        1,
        figsize=(10.0, 0.3 * sum(rows) + 1.1 * len(counts) + 0.6),
        squeeze=False,
        gridspec_kw={"height_ratios": rows, "left": 0.16, "right": 0.45, "hspace": 0.45},
    )
    for ax, (key, table) in zip(axes[:, 0], counts.items(), strict=True):
        y = np.arange(len(table))[::-1]
        colours = ["#3b6fb6" if n else "#c44e52" for n in table["n_words"]]
        ax.barh(y, table["n_words"], color=colours, height=0.7)
        words_column = ax.get_yaxis_transform()  # x in axes fraction, y in data: a column right of the bars
        for yi, (_, r) in zip(y, table.iterrows(), strict=True):
            ax.text(r["n_words"], yi, f" {int(r['n_words'])}", va="center", fontsize=8, color="#333333")
            text = r["top_words"] if r["n_words"] else "no LLM word"
            colour = "#333333" if r["n_words"] else "#c44e52"
            ax.text(1.04, yi, text, va="center", fontsize=8, color=colour, transform=words_column, clip_on=False)
        ax.set_yticks(y, table["category"])
        ax.set_xlim(0, max(1, table["n_words"].max()) * 1.15)
        ax.set_xlabel("covered lexicon words")
        ax.set_title(names.get(key, key), loc="left")
        ax.text(1.04, 1.0, "most used words", transform=ax.transAxes, va="bottom", fontsize=8.5, fontweight="bold")
    fig.suptitle("Which human value categories the LLM lexicon maps to", fontweight="bold", x=0.16, ha="left")
    return fig


FAMILY_COLOURS = {"human": "#c44e52", "ValueLex": "#3b6fb6", "baseline": "#9e9e9e"}


def plot_cfa_comparison(table: pd.DataFrame, cfi_reference: tuple[float, float] | None = (0.23, 0.56)) -> plt.Figure:
    """CFI, RMSEA (90% CI) and SRMR of each testable model, coloured by family (human / ValueLex / baseline);
    a model that is not estimable (or not testable) is listed with the reason instead of points.

    ``table`` is ``valuelex.psychometrics.cfa.comparison_table`` with a ``family`` column. ``cfi_reference`` shades
    the Schwartz CFI range GPLA (arXiv 2502.02444) reports on LLM data (second-hand, not ours).
    """
    rows = table.reset_index(drop=True)
    shown = testable(rows).to_numpy()
    fitted = rows[shown]
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 0.42 * max(len(rows), 1) + 2.6), sharey=True, layout="constrained")
    y_all = np.arange(len(rows))[::-1]
    y = y_all[shown]
    colours = [FAMILY_COLOURS.get(f, "#333333") for f in fitted["family"]]
    for y_text, row in zip(y_all[~shown], rows[~shown].itertuples(), strict=True):
        note = str(getattr(row, "notes", ""))
        reason = (
            "not fitted" if note.startswith("not fitted") else "not estimable" if note.startswith("not") else "df = 0"
        )
        axes[1].text(
            0.5, y_text, reason, transform=axes[1].get_yaxis_transform(), ha="center", va="center", color="#777777"
        )
    for ax, col, cut, better in zip(
        axes, ["CFI", "RMSEA", "SRMR"], [0.95, 0.06, 0.08], ["higher", "lower", "lower"], strict=True
    ):
        values = fitted[col].astype(float).to_numpy()
        if col == "RMSEA":
            ax.hlines(y, fitted["RMSEA_lo90"].astype(float), fitted["RMSEA_hi90"].astype(float), color="#777777")
        ax.scatter(values, y, c=colours, s=45, zorder=3)
        ax.axvline(cut, color="#333333", ls="--", lw=0.8)
        ax.set_title(f"{col}\n{better} is better, cut-off {cut}", fontsize=10)
        ax.margins(x=0.12)  # points at the extremes stay clear of the frame
    if cfi_reference is not None:
        axes[0].axvspan(*cfi_reference, color="#c44e52", alpha=0.12, label="GPLA: Schwartz CFI on LLMs")
    axes[0].set_xlim(min(0.0, float(np.nanmin(fitted["CFI"].astype(float))) - 0.05) if len(fitted) else 0, 1.02)
    axes[0].set_yticks(y_all, rows["model"])
    # one legend, below the panels, so that it never hides a model's point
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f) for f, c in FAMILY_COLOURS.items()]
    handles.append(plt.Line2D([], [], color="#333333", ls="--", lw=0.8, label="Hu & Bentler cut-off"))
    if cfi_reference is not None:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="#c44e52", alpha=0.12, label="GPLA: Schwartz CFI on LLMs"))
    if len(fitted) and "RMSEA_lo90" in fitted:
        handles.append(plt.Line2D([], [], color="#777777", label="RMSEA 90% CI"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle("CFA on our respondents: human value structures next to the ValueLex taxonomy", fontweight="bold")
    return fig
