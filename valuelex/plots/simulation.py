"""The simulation's figures (notebook 07): one function per figure, drawn from the studies of
:mod:`valuelex.methods.simulation` (recovery by sample size, word-selection rules, the models x respondents grid)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..core.io import apply_style
from ..methods.simulation import PAPER_MODELS, PAPER_RESPONDENTS, ModelGrid


def plot_recovery(curve: pd.DataFrame, threshold: float = 0.95):
    """Recovery against the number of respondents: the lowest Tucker congruence of the planted factors
    when the true number of factors is extracted (median and range over replications), and the share
    of replications in which parallel analysis found the true number."""

    apply_style()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.0, 4.0))
    conditions = curve["condition"].unique() if "condition" in curve else [None]
    colours = ["#3b6fb6", "#d9822b", "#3f9b62", "#c44e52"]
    for colour, cond in zip(colours, conditions, strict=False):
        part = curve if cond is None else curve[curve["condition"] == cond]
        g = part.groupby("respondents")["min_congruence_true_k"]
        x = np.array(sorted(part["respondents"].unique()))
        med = g.median().reindex(x).to_numpy()
        lo, hi = g.min().reindex(x).to_numpy(), g.max().reindex(x).to_numpy()
        label = cond or "simulation"
        ax1.plot(x, med, "o-", color=colour, label=label)
        ax1.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)
        right = part.groupby("respondents")["factor_count_right"].mean().reindex(x)
        ax2.plot(x, right.to_numpy(), "o-", color=colour, label=label)
    ax1.axhline(threshold, color="#555555", lw=0.8, ls="--")
    ax1.axvline(PAPER_RESPONDENTS, color="#999999", lw=0.8, ls=":")
    ax2.axvline(PAPER_RESPONDENTS, color="#999999", lw=0.8, ls=":")
    sizes = sorted(curve["respondents"].unique())
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(v) for v in sizes])
        ax.minorticks_off()
    ax1.set_ylim(bottom=max(0.0, np.nanmin(curve["min_congruence_true_k"].to_numpy(dtype=float)) - 0.05), top=1.01)
    ax1.set_xlabel("respondents")
    ax2.set_xlabel("respondents")
    ax1.set_ylabel("lowest congruence, true number of factors")
    ax2.set_ylabel("share where parallel analysis found it")
    ax2.set_ylim(-0.03, 1.03)
    ax1.set_title("Loadings recovered")
    ax2.set_title("Factor count recovered")
    if len(conditions) > 1:
        ax1.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def plot_word_selection(study: pd.DataFrame):
    """Three panels per rule and number of respondents: words kept for the weakest planted factor, share of
    panels where parallel analysis found the true count, lowest congruence at the true count (median and range)."""

    apply_style()
    rules = list(dict.fromkeys(study["rule"]))
    sizes = sorted(study["respondents"].unique())
    colours = ["#c44e52", "#d9822b", "#3b6fb6", "#3f9b62"]
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.8))
    width = 0.8 / len(rules)
    panels = [
        ("weakest_factor_words", "words kept for the weakest planted factor", False),
        ("factor_count_right", "share with the true number of factors", True),
        ("min_congruence_true_k", "lowest congruence, true number of factors", False),
    ]
    for ax, (column, label, share) in zip(axes, panels, strict=True):
        for i, (rule, colour) in enumerate(zip(rules, colours, strict=False)):
            x = np.arange(len(sizes)) + (i - (len(rules) - 1) / 2) * width
            part = study[study["rule"] == rule].groupby("respondents")[column]
            if share:
                ax.bar(x, part.mean().reindex(sizes).to_numpy(float), width, color=colour, label=rule)
            else:
                med = part.median().reindex(sizes).to_numpy(float)
                lo, hi = part.min().reindex(sizes).to_numpy(float), part.max().reindex(sizes).to_numpy(float)
                ax.errorbar(x, med, yerr=[med - lo, hi - med], fmt="o", color=colour, capsize=3, label=rule)
        ax.set_xticks(np.arange(len(sizes)), [f"{s} respondents" for s in sizes])
        ax.set_title(label, fontsize=10)
    axes[1].set_ylim(0, 1.05)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(rules), frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_model_grid(grid: ModelGrid):
    """Recovery against the number of models, one line per respondents-per-model, pooled (solid) and
    within-model (dashed) EFA: share of panels with the right factor count, median lowest congruence
    when the planted count is extracted, and the share of the found factors' score variance that is
    model identity (ICC1; dotted: the planted factors' own)."""

    apply_style()
    summary = grid.summary()
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 4.8))
    colours = ["#3b6fb6", "#d9822b", "#3f9b62", "#c44e52", "#8c6bb1", "#555555"]
    styles = {"pooled": "-", "within": "--"}
    metrics = [
        ("factor_count_right", "share of panels with the planted factor count", (-0.03, 1.03)),
        ("median_min_congruence_true_k", "lowest congruence at the planted count (median)", (None, 1.01)),
        ("median_model_share", "model identity in factor scores (ICC1, median)", (None, None)),
    ]
    for ax, (column, label, limits) in zip(axes, metrics, strict=True):
        for colour, r in zip(colours, sorted(summary["per_model"].unique()), strict=False):
            for level, style in styles.items():
                part = summary[(summary["per_model"] == r) & (summary["level"] == level)].sort_values("models")
                if part.empty:
                    continue
                ax.plot(
                    part["models"], part[column], style, marker="o", ms=3.5, color=colour, label=f"{level}, {r}/model"
                )
        if column == "median_model_share" and "median_planted_model_share" in summary:
            ref = summary[summary["level"] == "pooled"].groupby("models")["median_planted_model_share"].median()
            ax.plot(ref.index, ref.to_numpy(), ":", color="#999999", label="planted factors")
        if column == "median_min_congruence_true_k":
            ax.axhline(grid.threshold, color="#555555", lw=0.8, ls="--")
        models = sorted(summary["models"].unique())
        if models[0] <= PAPER_MODELS <= models[-1]:
            ax.axvline(PAPER_MODELS, color="#999999", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xticks(models, [str(m) for m in models])
        ax.minorticks_off()
        ax.set_xlabel("models in the panel")
        ax.set_ylabel(label)
        ax.set_ylim(*limits)
    handles, labels = axes[2].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, frameon=False, fontsize=8)
    axes[0].set_title("Factor count")
    axes[1].set_title("Loadings")
    axes[2].set_title("Model identity")
    fig.suptitle("Pooled (solid) vs within-model (dashed) EFA; dotted line: the paper's 30+ models", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    return fig


# which within-model correlation for 0/1 words? ------------------------------------------------
