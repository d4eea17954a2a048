"""Figures of the projective test: grouped bars (Figure 1c), heatmap, scorer agreement."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..figures import PALETTE, STAGE_COLOURS, apply_style
from .instrument import SUBDIMENSIONS
from .scores import score_matrix


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def plot_subdimension_bars(scores: pd.DataFrame, title: str = "Projective test: sub-dimension scores") -> plt.Figure:
    """Grouped bars per model, one bar per sub-dimension, with bootstrap CIs (as Figure 1(c))."""
    apply_style()
    sub = scores[scores["level"] == "subdimension"]
    models = list(dict.fromkeys(sub["model"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(models) + 2), 4.2))
    width = 0.8 / len(SUBDIMENSIONS)
    x = np.arange(len(models))
    for j, name in enumerate(SUBDIMENSIONS):
        rows = sub[sub["measure"] == name].set_index("model").reindex(models)
        err = np.vstack([rows["score"] - rows["ci_low"], rows["ci_high"] - rows["score"]])
        ax.bar(
            x + (j - (len(SUBDIMENSIONS) - 1) / 2) * width,
            rows["score"],
            width,
            yerr=np.nan_to_num(err),
            color=PALETTE[name],
            edgecolor="white",
            linewidth=0.5,
            label=name,
            error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "#444444"},
        )
    ax.set_xticks(x, [m.replace("-instruct", "\n-instruct").replace("-base", "\n-base") for m in models], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (0-100), 95% CI")
    ax.set_title(title)
    ax.legend(ncol=3, fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    return fig


def plot_heatmap(scores: pd.DataFrame, title: str = "Projective test: models x sub-dimensions") -> plt.Figure:
    """Heatmap of scores, models in rows, the six sub-dimensions and three dimensions in columns."""
    import seaborn as sns

    apply_style()
    table = pd.concat([score_matrix(scores, "subdimension"), score_matrix(scores, "dimension")], axis=1)
    fig, ax = plt.subplots(figsize=(9.0, 0.55 * len(table) + 2.0))
    sns.heatmap(table, annot=True, fmt=".0f", cmap="viridis", vmin=0, vmax=100, cbar_kws={"label": "score"}, ax=ax)
    ax.axvline(len(SUBDIMENSIONS), color="white", linewidth=3)
    stages = scores.drop_duplicates("model").set_index("model")["training_stage"]
    for tick in ax.get_yticklabels():
        tick.set_color(STAGE_COLOURS.get(stages.get(tick.get_text(), ""), "black"))
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_scorer_agreement(embedding: pd.DataFrame, judge: pd.DataFrame) -> plt.Figure:
    """Embedding score against judge score on the cases both scored (judge-valid only)."""
    apply_style()
    key = ["key", "subdimension"]
    both = embedding[key + ["score", "model"]].merge(judge[judge["valid"]][key + ["judge_score"]], on=key)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(both))
    for model, g in both.groupby("model", sort=False):
        ax.scatter(g["judge_score"] + jitter[both["model"] == model], g["score"], s=14, alpha=0.7, label=model)
    ax.set_xlabel("judge score (1-5)")
    ax.set_ylabel("embedding score (P(high))")
    ax.set_title("Two scorers on the same completions")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
