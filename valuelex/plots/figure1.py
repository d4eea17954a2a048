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

from ..core.io import PALETTE, apply_style
from ..core.precision import TIE_TOLERANCE, choose
from .labels import LabelStyle, place_labels

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


#: Placements whose margin over the runner-up sub-dimension is below this (cosine) are weak and
#: flagged in the figures (our choice; notebook 09's ``weak_margin`` parameter passes it).
WEAK_MARGIN = 0.03
#: Marker area (points squared) of a word: ``MIN_AREA + AREA_SCALE * sqrt(count / max count)``.
MIN_AREA, AREA_SCALE = 12.0, 120.0


def marker_area(count: np.ndarray | float, max_count: float) -> np.ndarray:
    """Scatter marker area for a word used ``count`` times (the largest count gets the largest marker)."""
    return MIN_AREA + AREA_SCALE * np.sqrt(np.asarray(count, dtype=float) / max(float(max_count), 1.0))


def size_legend_counts(max_count: float, n: int = 3) -> list[int]:
    """Round counts for a size legend: the largest 1-2-5 number not above ``max_count``, and smaller ones."""
    nice = sorted(
        {int(m * 10**e) for e in range(0, 7) for m in (1, 2, 5) if m * 10**e <= max(max_count, 1)}, reverse=True
    )
    picked = [nice[0]]
    for value in nice[1:]:
        if value <= picked[-1] / 3.5:  # spread the legend markers so their sizes differ visibly
            picked.append(value)
        if len(picked) == n:
            break
    return sorted(picked)


def plot_lexicon_map(
    coords: pd.DataFrame, placement: pd.DataFrame, label_top: int = 25, weak_margin: float = WEAK_MARGIN
) -> plt.Figure:
    """Figure 1(b): the lexicon's 2-D map (``x``, ``y``, ``count`` per word) coloured by dimension.

    Point area grows with the word's uses (size legend); hollow points are weak placements (margin
    over the runner-up below ``weak_margin``); the ``label_top`` most used words are labelled
    without collisions (``valuelex.plots.labels``).
    """
    apply_style()
    data = coords.merge(placement, on="word")
    if "count" not in data:
        data["count"] = 1
    data = data.sort_values(["count", "word"], ascending=[False, True]).reset_index(drop=True)
    max_count = float(data["count"].max())
    data["area"] = marker_area(data["count"], max_count)
    data["weak"] = data["margin"] < weak_margin
    fig = plt.figure(figsize=(9.0, 6.2))
    ax = fig.add_axes((0.02, 0.08, 0.68, 0.84))
    handles, names = [], []
    for dim in DIMENSIONS:
        part = data[data["dimension"] == dim]
        colour = PALETTE[dim]
        ax.scatter(
            part["x"],
            part["y"],
            s=part["area"],
            facecolors=[("white" if w else colour) for w in part["weak"]],
            edgecolors=colour,
            linewidths=1.1,
            alpha=0.85,
            zorder=2,
        )
        handles.append(plt.Line2D([], [], marker="o", ls="", color=colour, markersize=7))
        names.append(f"{dim}: {len(part)} words, {int(part['weak'].sum())} weak")
    handles.append(plt.Line2D([], [], ls="", label=" "))
    names.append("uses (descriptors)")
    for count in size_legend_counts(max_count):
        area = float(marker_area(count, max_count))
        handles.append(plt.Line2D([], [], marker="o", ls="", color="#8c8c8c", markersize=np.sqrt(area)))
        names.append(f"{count:,}")
    handles.append(plt.Line2D([], [], ls="", label=" "))
    names.append("placement")
    handles.append(plt.Line2D([], [], marker="o", ls="", color="#8c8c8c", markersize=7))
    names.append("clear")
    handles.append(plt.Line2D([], [], marker="o", ls="", mfc="white", mec="#8c8c8c", mew=1.1, markersize=7))
    names.append(f"weak (margin < {weak_margin:g})")
    legend = fig.legend(
        handles,
        names,
        loc="upper left",
        bbox_to_anchor=(0.72, 0.92),
        frameon=False,
        fontsize=8.5,
        title="dimension (nearest prototype)",
        title_fontsize=9,
        labelspacing=0.9,
        borderaxespad=0.0,
    )
    for text in legend.get_texts():
        if text.get_text() in ("uses (descriptors)", "placement"):
            text.set_fontweight("bold")
    legend.get_title().set_fontweight("bold")
    pad_x = 0.04 * float(np.ptp(data["x"]) or 1.0)
    pad_y = 0.04 * float(np.ptp(data["y"]) or 1.0)
    ax.set_xlim(data["x"].min() - pad_x, data["x"].max() + pad_x)
    ax.set_ylim(data["y"].min() - pad_y, data["y"].max() + pad_y)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("The value lexicon by dimension (our Figure 1b)")
    ax.set_xlabel("2-D map of the words' embeddings (notebook 05); nearby words have similar meanings", fontsize=8.5)
    top = data.head(label_top)
    place_labels(
        ax,
        top["x"],
        top["y"],
        list(top["word"]),
        LabelStyle(fontsize=7.5),
        radii=np.sqrt(top["area"]) / 2,
        avoid=data[["x", "y"]].to_numpy(),
        avoid_radii=np.sqrt(data["area"]) / 2,
    )
    return fig


def wheel_table(
    placement: pd.DataFrame,
    lexicon: pd.DataFrame,
    words_per_subdimension: int = 4,
    weak_margin: float = WEAK_MARGIN,
) -> pd.DataFrame:
    """For each sub-dimension, its share of the lexicon's usage and its most used words.

    ``weak`` counts the sub-dimension's weak placements (margin below ``weak_margin``);
    ``weak_top_words`` lists which of ``top_words`` are weak.
    """
    data = placement.merge(lexicon[["word", "count"]], on="word")
    rows = []
    for dim, subs in DIMENSIONS.items():
        for sub in subs:
            part = data[data["subdimension"] == sub].sort_values(["count", "word"], ascending=[False, True])
            top = part.head(words_per_subdimension)
            weak = part["margin"] < weak_margin if "margin" in part else pd.Series(False, index=part.index)
            rows.append(
                {
                    "dimension": dim,
                    "subdimension": sub,
                    "words": len(part),
                    "weak": int(weak.sum()),
                    "usage": int(part["count"].sum()),
                    "top_words": ", ".join(top["word"]),
                    "weak_top_words": ", ".join(top.loc[weak.loc[top.index], "word"]),
                }
            )
    table = pd.DataFrame(rows)
    table["usage_share"] = (table["usage"] / table["usage"].sum()).round(3)
    return table


def _text_colour(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (relative luminance)."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#1a1a1a" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def _stack(desired: list[float], heights: list[float], low: float, high: float, gap: float) -> list[float]:
    """Top edges of blocks stacked from ``high`` down, each as close to its desired top as allowed."""
    tops: list[float] = []
    for i, want in enumerate(desired):
        tops.append(min(want, high) if i == 0 else min(want, tops[-1] - heights[i - 1] - gap))
    floor = low  # push back up from the bottom if the stack ran below ``low``
    for i in range(len(tops) - 1, -1, -1):
        if tops[i] - heights[i] < floor:
            tops[i] = floor + heights[i]
        floor = tops[i] + gap
    return tops


#: Radii of the wheel (data units): the dimension pie, and the sub-dimension ring around it.
INNER_RADIUS, OUTER_RADIUS = 0.55, 0.95
#: Distance of the word blocks' column from the centre.
BLOCK_COLUMN = 1.18


def plot_taxonomy_wheel(table: pd.DataFrame, weak_margin: float = WEAK_MARGIN) -> plt.Figure:
    """Figure 1(c), the taxonomy wheel: 3 dimensions, 6 sub-dimensions sized by usage, with their top words.

    Inner ring: the dimensions, named inside. Outer ring: the sub-dimensions; each has a block
    outside the wheel (name, share of usage, most used words, weak placements marked with *),
    blocks stacked so that none overlaps, joined to their wedge by a leader line. The wheel is
    turned so that the smallest dimension points right, where its name has room.
    """
    apply_style()
    fig = plt.figure(figsize=(9.0, 7.2))
    ax = fig.add_axes((0.02, 0.08, 0.96, 0.84))
    ax.set(xlim=(-2.15, 2.15), ylim=(-1.55, 1.55), aspect="equal")
    ax.axis("off")
    sizes = table["usage"].clip(lower=1).to_numpy(dtype=float)
    dims = table.groupby("dimension", sort=False)["usage"].sum().clip(lower=1)
    shares = dims.to_numpy(dtype=float) / dims.sum()
    smallest = int(np.argmin(shares))
    start = float(360 * (shares[:smallest].sum() + shares[smallest] / 2))  # its middle at 0 degrees
    wedge = {"edgecolor": "white", "linewidth": 1.5}
    ax.pie(
        dims.to_numpy(dtype=float),
        radius=INNER_RADIUS,
        colors=[PALETTE[d] for d in dims.index],
        startangle=start,
        counterclock=False,
        wedgeprops=wedge,
    )
    ax.pie(
        sizes,
        radius=OUTER_RADIUS,
        colors=[PALETTE[s] for s in table["subdimension"]],
        startangle=start,
        counterclock=False,
        wedgeprops={**wedge, "width": OUTER_RADIUS - INNER_RADIUS},
    )
    dim_mid = np.deg2rad(start - 360 * (np.cumsum(shares) - shares / 2))
    for angle, name, share in zip(dim_mid, dims.index, shares, strict=True):
        r = 0.55 * INNER_RADIUS
        ax.text(
            r * np.cos(angle),
            r * np.sin(angle),
            f"{name}\n{share:.0%}",
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold",
            color=_text_colour(PALETTE[name]),
            linespacing=1.1,
        )
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    per_unit = ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0]  # display units per data unit
    sub_mid = np.deg2rad(start - 360 * (np.cumsum(sizes) - sizes / 2) / sizes.sum())
    blocks = []
    for angle, (_, row) in zip(sub_mid, table.iterrows(), strict=True):
        weak = {w for w in str(row.get("weak_top_words", "")).split(", ") if w}
        words = [w + ("*" if w in weak else "") for w in str(row["top_words"]).split(", ") if w]
        head = ax.text(
            0,
            0,
            f"{row['subdimension']}  {row['usage_share']:.0%}",
            fontsize=9,
            fontweight="bold",
            color=_text_colour(PALETTE[row["subdimension"]]),
            bbox={"boxstyle": "round,pad=0.25", "fc": PALETTE[row["subdimension"]], "ec": "none"},
        )
        note = f"{row['words']} words" + (f", {row['weak']} weak" if row.get("weak", 0) else "")
        body = ax.text(0, 0, "\n".join([*words, note]), fontsize=8, color="#262626", linespacing=1.25)
        pad = 2 * 0.25 * head.get_fontsize() * fig.dpi / 72  # the round box's padding, above and below
        h_head = (head.get_window_extent(renderer).height + pad) / per_unit
        h_body = body.get_window_extent(renderer).height / per_unit
        blocks.append(
            {
                "angle": angle,
                "head": head,
                "body": body,
                "h_head": h_head,
                "height": h_head + 0.02 + h_body,
            }
        )
    low, high = ax.get_ylim()
    for side in (1, -1):
        mine = sorted(
            (b for b in blocks if (np.cos(b["angle"]) >= 0) == (side == 1)), key=lambda b: -np.sin(b["angle"])
        )
        if not mine:
            continue
        desired = [1.1 * np.sin(b["angle"]) + b["h_head"] / 2 for b in mine]
        tops = _stack(desired, [b["height"] for b in mine], low + 0.02, high - 0.02, gap=0.08)
        for b, top in zip(mine, tops, strict=True):
            x = side * BLOCK_COLUMN
            ha = "left" if side == 1 else "right"
            b["head"].set(x=x, y=top - b["h_head"] / 2, ha=ha, va="center")
            b["body"].set(x=x, y=top - b["h_head"] - 0.02, ha=ha, va="top")
            edge = (OUTER_RADIUS * np.cos(b["angle"]), OUTER_RADIUS * np.sin(b["angle"]))
            ax.plot(
                [edge[0], 1.04 * edge[0], x - side * 0.04],
                [edge[1], 1.04 * edge[1], top - b["h_head"] / 2],
                color="#8c8c8c",
                lw=0.7,
                solid_capstyle="round",
            )
    ax.set_title("The value taxonomy filled with our lexicon (our Figure 1c, wheel)")
    fig.text(
        0.5, 0.035,
        "Inner ring: dimensions; outer ring: sub-dimensions, both sized by the uses of the lexicon words placed in them.\n"
        f"* weak placement: the word is less than {weak_margin:g} (cosine) nearer its sub-dimension than the runner-up.",
        ha="center", va="center", fontsize=8, color="#555555",
    )  # fmt: skip
    return fig
