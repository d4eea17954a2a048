"""Figures of the projective test: grouped bars (Figure 1c), heatmap, scorer agreement."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..core.io import PALETTE, STAGE_COLOURS, apply_style
from .instrument import SUBDIMENSIONS
from .scores import score_matrix


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def plot_subdimension_bars(scores: pd.DataFrame, title: str = "Projective test: sub-dimension scores") -> plt.Figure:
    """Grouped bars per model, one bar per sub-dimension, with bootstrap CIs (as Figure 1(c)).

    When ``scores`` has a ``reportable`` column (``attach_reliability``), bars of scores below the
    reliability floor are drawn pale and hatched: shown, not to be interpreted.
    """
    apply_style()
    sub = scores[scores["level"] == "subdimension"]
    models = list(dict.fromkeys(sub["model"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(models) + 2), 4.2))
    width = 0.8 / len(SUBDIMENSIONS)
    x = np.arange(len(models))
    for j, name in enumerate(SUBDIMENSIONS):
        rows = sub[sub["measure"] == name].set_index("model").reindex(models)
        err = np.vstack([rows["score"] - rows["ci_low"], rows["ci_high"] - rows["score"]])
        bars = ax.bar(
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
        if "reportable" in rows.columns:
            for bar, ok in zip(bars, rows["reportable"].fillna(False), strict=True):
                if not ok:
                    bar.set_alpha(0.35)
                    bar.set_hatch("///")
    ax.set_xticks(x, [m.replace("-instruct", "\n-instruct").replace("-base", "\n-base") for m in models], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (0-100), 95% CI")
    if "reportable" in sub.columns and not sub["reportable"].all():
        ax.text(
            0.99, 0.98, "hatched: reliability below the floor", transform=ax.transAxes, ha="right", va="top", fontsize=7
        )
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


def plot_scorer_agreement(
    a: pd.DataFrame, b: pd.DataFrame, name_a: str = "stance", name_b: str = "embedding"
) -> plt.Figure:
    """Case scores of two scorers on the cases both scored validly, one colour per model."""
    apply_style()
    key = ["key", "subdimension"]
    both = a[a["valid"]][[*key, "score", "model"]].merge(b[b["valid"]][[*key, "score"]], on=key, suffixes=("_a", "_b"))
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for model, g in both.groupby("model", sort=False):
        ax.scatter(g["score_b"], g["score_a"], s=10, alpha=0.6, label=model)
    ax.set_xlabel(f"{name_b} score")
    ax.set_ylabel(f"{name_a} score")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Two scorers on the same cases")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
