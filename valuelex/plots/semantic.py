"""The semantic clustering's figures (notebook 05): one function per figure, drawn from the results of
:mod:`valuelex.semantic` (silhouette, the 2-D map by cluster, clusters against EFA factors, the permutation
baseline, the taxonomy assignment)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..core.io import PALETTE
from ..semantic import Agreement
from .labels import LabelStyle, place_labels

#: tab10 reordered so the first clusters avoid the blue/orange/green of the taxonomy's dimensions (PALETTE).
_CLUSTER_ORDER = (4, 5, 9, 6, 8, 3, 7, 0, 1, 2)


def cluster_colours(k: int) -> list:
    """A qualitative colour per cluster (the same cluster number has the same colour in every figure)."""
    if k <= len(_CLUSTER_ORDER):
        tab10 = sns.color_palette("tab10", 10)
        return [tab10[i] for i in _CLUSTER_ORDER[:k]]
    return sns.color_palette("husl", k)


def plot_silhouette(table: pd.DataFrame, chosen: int, marked: Sequence[int] = (3, 6)) -> plt.Figure:
    """Mean silhouette against k; the silhouette choice and the paper's k = 3 and 6 are marked."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    ax.plot(table["k"], table["silhouette"], marker="o", color="#444444")
    for k in marked:
        if k in set(table["k"]):
            ax.axvline(k, color="#999999", ls=":", lw=1)
            ax.text(  # above the frame, where it cannot cross the curve
                k,
                1.01,
                "paper:\n3 dimensions" if k == 3 else "paper:\n6 sub-dimensions" if k == 6 else f"k = {k}",
                transform=ax.get_xaxis_transform(),
                va="bottom",
                ha="center",
                fontsize=8,
                color="#666666",
            )
    row = table.loc[table["k"] == chosen].iloc[0]
    ax.plot([chosen], [row["silhouette"]], marker="o", ls="", ms=11, mfc="none", mec="#c44e52", mew=2, label="best k")
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("mean silhouette (cosine)")
    ax.set_xticks(table["k"])
    ax.set_title("Choosing k: mean silhouette of the clusters", pad=26)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_semantic_map(
    coords: np.ndarray,
    words: Sequence[str],
    labels_by_k: dict[int, np.ndarray],
    examples: dict[str, str] | None = None,
    cluster_names: dict[int, dict[int, str]] | None = None,
    extra_labels: Sequence[str] = (),
) -> plt.Figure:
    """The lexicon on the 2-D map, one panel per k, coloured by cluster (our Figure 1(b)).

    ``examples`` (word -> dimension) are the taxonomy's example words found in the lexicon: drawn
    with a black edge and labelled. ``cluster_names[k][c]`` adds e.g. the assigned dimension to the
    legend. ``extra_labels`` are further words to label (e.g. the most frequent ones), in grey.
    """
    examples = examples or {}
    cluster_names = cluster_names or {}
    ks = list(labels_by_k)
    fig, axes = plt.subplots(1, len(ks), figsize=(5.2 * len(ks), 5.0), squeeze=False)
    words = list(words)
    is_example = np.array([w in examples for w in words])
    labelled = []
    for ax, k in zip(axes[0], ks, strict=True):
        labels = labels_by_k[k]
        colours = cluster_colours(k)
        for c in range(k):
            sel = labels == c
            name = cluster_names.get(k, {}).get(c)
            ax.scatter(
                coords[sel, 0],
                coords[sel, 1],
                s=22,
                color=colours[c],
                alpha=0.75,
                edgecolors="none",
                label=f"{c}: {name}" if name else f"cluster {c}",
            )
        ax.scatter(
            coords[is_example, 0],
            coords[is_example, 1],
            s=40,
            facecolors="none",
            edgecolors="black",
            linewidths=1.0,
        )
        pad = 0.04 * np.ptp(coords, axis=0)
        ax.set_xlim(coords[:, 0].min() - pad[0], coords[:, 0].max() + pad[0])
        ax.set_ylim(coords[:, 1].min() - pad[1], coords[:, 1].max() + pad[1])
        labelled.append(ax)
        title = {3: "paper's 3 dimensions", 6: "paper's 6 sub-dimensions"}.get(k, "best silhouette")
        ax.set_title(f"k = {k} ({title})")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2 if k <= 6 else 3, frameon=False)
    fig.suptitle(
        "The value lexicon by semantic similarity. Circled: the taxonomy's example words, labelled in their "
        "dimension's colour (Competence blue, Character orange, Integrity green)",
        fontsize=10,
    )
    # labels last, once the layout is fixed: examples first (they get the nearest spots), then the extra words
    order = [i for i, w in enumerate(words) if w in examples]
    index = {w: i for i, w in enumerate(words)}
    order += [index[w] for w in dict.fromkeys(extra_labels) if w in index and w not in examples]
    styles = [
        LabelStyle(fontsize=8, fontweight="bold", color=PALETTE.get(examples[words[i]], "black"))
        if words[i] in examples
        else LabelStyle(fontsize=7, color="#555555")
        for i in order
    ]
    radii = [np.sqrt(40 if words[i] in examples else 22) / 2 for i in order]
    for ax in labelled:
        place_labels(
            ax,
            coords[order, 0],
            coords[order, 1],
            [words[i] for i in order],
            styles,
            radii=radii,
            avoid=coords,
            avoid_radii=np.sqrt(22) / 2,
        )
    return fig


def plot_contingency(
    table: pd.DataFrame,
    title: str = "Semantic clusters against EFA factors",
    row_names: dict | None = None,
    column_names: dict | None = None,
) -> plt.Figure:
    """Heatmap of words counted by (cluster, factor); names (e.g. the assigned dimension) extend the labels."""
    row_names, column_names = row_names or {}, column_names or {}
    table = table.rename(
        index=lambda r: f"{r}: {row_names[r]}" if r in row_names else r,
        columns=lambda c: f"{c}\n{column_names[c]}".replace(" (", "\n(") if c in column_names else c,
    )
    fig, ax = plt.subplots(figsize=(2.0 + 1.0 * table.shape[1], 1.2 + 0.55 * table.shape[0]))
    sns.heatmap(table, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax, linewidths=0.5)
    ax.tick_params(axis="y", labelrotation=0)
    ax.tick_params(axis="x", labelrotation=0)
    ax.set_xlabel("EFA factor (assigned words)")
    ax.set_ylabel("semantic cluster")
    ax.set_title(title)
    return fig


def plot_permutation(results: dict[str, Agreement]) -> plt.Figure:
    """Null distributions of ARI and NMI (shuffled clusters) with the observed values, one row per comparison."""
    fig, axes = plt.subplots(len(results), 2, figsize=(8.0, 2.3 * len(results)), squeeze=False)
    for row, (name, res) in zip(axes, results.items(), strict=True):
        for ax, (metric, null, obs, p) in zip(
            row,
            [("ARI", res.null_ari, res.ari, res.p_ari), ("NMI", res.null_nmi, res.nmi, res.p_nmi)],
            strict=True,
        ):
            ax.hist(null, bins=30, color="#999999", edgecolor="none")
            ax.axvline(np.quantile(null, 0.95), color="#555555", ls="--", lw=1)
            ax.axvline(obs, color="#c44e52", lw=2)
            ax.set_title(f"{name}: {metric} = {obs:.3f}, p = {p:.3g}", fontsize=9)
            ax.set_yticks([])
            ax.xaxis.set_major_locator(plt.MaxNLocator(5))
    axes[-1][0].set_xlabel("adjusted Rand index under shuffling")
    axes[-1][1].set_xlabel("NMI under shuffling")
    handles = [
        plt.Rectangle((0, 0), 1, 1, color="#999999", label="shuffled clusters (null)"),
        plt.Line2D([], [], color="#555555", ls="--", lw=1, label="95th percentile of the null"),
        plt.Line2D([], [], color="#c44e52", lw=2, label="observed"),
    ]
    fig.suptitle("Do the semantic clusters agree with the EFA factors more than chance?", fontweight="bold")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    return fig


def plot_taxonomy_assignment(table: pd.DataFrame, categories: Sequence[str], title: str) -> plt.Figure:
    """Heatmap of the similarity of each group to each taxonomy category, with the margin and flag."""
    scores = table.set_index("row")[list(categories)]
    fig, ax = plt.subplots(figsize=(1.8 + 1.1 * len(categories), 1.0 + 0.45 * len(scores)))
    sns.heatmap(scores, annot=True, fmt=".2f", cmap="viridis", cbar=False, ax=ax, linewidths=0.5)
    for i, (_, r) in enumerate(table.iterrows()):
        ax.annotate(
            f"{r['best']} (+{r['margin']:.3f}, {r['flag']}; stable in {r['stability']:.0%})",
            (len(categories), i + 0.5),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            annotation_clip=False,
        )
    ax.set_xlabel("cosine similarity to the example words' centroid")
    ax.set_ylabel("")
    ax.tick_params(axis="x", labelrotation=25)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.set_title(title)
    return fig
