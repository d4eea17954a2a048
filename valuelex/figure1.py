"""The paper's Figure 1, regenerated from our data: (b) the lexicon map by dimension, (c) the taxonomy wheel.

Each lexicon word is placed in the paper's taxonomy by embedding similarity: its nearest
sub-dimension prototype (the centroid of that sub-dimension's example words from the lab,
``configs/taxonomy.yaml``), and the sub-dimension's dimension. This placement is our choice and
is shown with its margin over the runner-up, so weak placements are visible.
(Panel c's bars, the projective scores per model, are drawn by ``valuelex.projective``.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .figures import PALETTE, apply_style
from .precision import TIE_TOLERANCE, choose

DIMENSIONS = {
    "Competence": ("Self-Competent", "User-Oriented"),
    "Character": ("Social", "Idealistic"),
    "Integrity": ("Professional", "Ethical"),
}


def place_words(
    words: Sequence[str],
    taxonomy: pd.DataFrame,
    embed: Callable[[Sequence[str]], np.ndarray],
    tie_tolerance: float = TIE_TOLERANCE,
) -> pd.DataFrame:
    """Nearest sub-dimension of each word (cosine to the sub-dimension's example-word centroid).

    ``taxonomy`` has columns word, subdimension, dimension (``semantic.load_taxonomy()``).
    Returns word, subdimension, dimension, similarity, margin (best minus second best) and ``tie``:
    sub-dimensions within ``tie_tolerance`` of the best are tied, and the first of them in the
    taxonomy's order is reported, so floating-point noise cannot move a word.
    """
    subdims = [s for subs in DIMENSIONS.values() for s in subs]
    markers = np.asarray(embed(list(taxonomy["word"].str.lower())), dtype=float)
    markers /= np.linalg.norm(markers, axis=1, keepdims=True)
    centroids = np.stack([markers[(taxonomy["subdimension"] == s).to_numpy()].mean(axis=0) for s in subdims])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    vectors = np.asarray(embed(list(words)), dtype=float)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = vectors @ centroids.T
    choice = choose(sims, tie_tolerance)
    best = choice.best
    rows = np.arange(len(words))
    dimension_of = {s: d for d, subs in DIMENSIONS.items() for s in subs}
    return pd.DataFrame(
        {
            "word": list(words),
            "subdimension": [subdims[i] for i in best],
            "dimension": [dimension_of[subdims[i]] for i in best],
            "similarity": sims[rows, best],
            "margin": choice.margin,
            "tie": choice.tie,
        }
    )


def plot_lexicon_map(coords: pd.DataFrame, placement: pd.DataFrame, label_top: int = 25) -> plt.Figure:
    """Figure 1(b): the lexicon's 2-D map (``x``, ``y`` per word) coloured by dimension, top words labelled."""
    apply_style()
    data = coords.merge(placement, on="word")
    fig, ax = plt.subplots(figsize=(7.5, 6))
    for dim in DIMENSIONS:
        part = data[data["dimension"] == dim]
        sizes = 12 + 120 * np.sqrt(part["count"] / data["count"].max()) if "count" in part else 30
        ax.scatter(part["x"], part["y"], s=sizes, color=PALETTE[dim], alpha=0.75, label=f"{dim} ({len(part)} words)")
    if "count" in data:
        for _, row in data.nlargest(label_top, "count").iterrows():
            ax.annotate(row["word"], (row["x"], row["y"]), fontsize=7.5, xytext=(3, 3), textcoords="offset points")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("The value lexicon by dimension (our Figure 1b)")
    ax.legend(frameon=False, loc="best", fontsize=8)
    return fig


def wheel_table(placement: pd.DataFrame, lexicon: pd.DataFrame, words_per_subdimension: int = 4) -> pd.DataFrame:
    """For each sub-dimension, its share of the lexicon's usage and its most used words."""
    data = placement.merge(lexicon[["word", "count"]], on="word")
    rows = []
    for dim, subs in DIMENSIONS.items():
        for sub in subs:
            part = data[data["subdimension"] == sub].sort_values(["count", "word"], ascending=[False, True])
            rows.append(
                {
                    "dimension": dim,
                    "subdimension": sub,
                    "words": len(part),
                    "usage": int(part["count"].sum()),
                    "top_words": ", ".join(part["word"].head(words_per_subdimension)),
                }
            )
    table = pd.DataFrame(rows)
    table["usage_share"] = (table["usage"] / table["usage"].sum()).round(3)
    return table


def plot_taxonomy_wheel(table: pd.DataFrame) -> plt.Figure:
    """Figure 1(c), the taxonomy wheel: 3 dimensions, 6 sub-dimensions sized by usage, with their top words."""
    apply_style()
    fig, ax = plt.subplots(figsize=(8, 8))
    sizes = table["usage"].clip(lower=1).to_numpy(dtype=float)
    dims = table.groupby("dimension", sort=False)["usage"].sum().clip(lower=1)
    ax.pie(
        dims.to_numpy(dtype=float),
        radius=0.55,
        colors=[PALETTE[d] for d in dims.index],
        labels=list(dims.index),
        labeldistance=0.62,
        startangle=90,
        counterclock=False,
        wedgeprops={"width": 0.55, "edgecolor": "white"},
        textprops={"fontsize": 10, "fontweight": "bold", "color": "white", "ha": "center"},
    )
    labels = [f"{s}\n{share:.0%}" for s, share in zip(table["subdimension"], table["usage_share"], strict=True)]
    ax.pie(
        sizes,
        radius=0.95,
        colors=[PALETTE[s] for s in table["subdimension"]],
        labels=labels,
        labeldistance=0.77,
        startangle=90,
        counterclock=False,
        wedgeprops={"width": 0.4, "edgecolor": "white"},
        textprops={"fontsize": 8.5, "ha": "center"},
    )
    angles = 90 - 360 * (np.cumsum(sizes) - sizes / 2) / sizes.sum()
    for angle, words in zip(angles, table["top_words"], strict=True):
        rad = np.deg2rad(angle)
        x, y = 1.08 * np.cos(rad), 1.08 * np.sin(rad)
        ax.text(x, y, words.replace(", ", "\n"), fontsize=8, ha="left" if x >= 0 else "right", va="center")
    ax.set(aspect="equal", xlim=(-1.7, 1.7), ylim=(-1.4, 1.4))
    ax.set_title("The value taxonomy filled with our lexicon (our Figure 1c, wheel)")
    return fig
