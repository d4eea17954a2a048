"""Publication checks on figures across stages: legends off the data, texts that do not collide or spill.

The figure-specific checks of Figure 1 are in test_figure1.py, the label placement in test_labels.py.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.text import Text

from valuelex import human_values, lexicon
from valuelex.plots import human_values as human_values_plots
from valuelex.plots import labels
from valuelex.plots import semantic as semantic_plots


def cfa_table() -> pd.DataFrame:
    """A comparison table shaped like notebook 08's, with a baseline whose CFI sits where a legend used to be."""
    return pd.DataFrame(
        {
            "model": ["taxonomy: 3 dimensions", "Schwartz: basic values", "Moral foundations", "one factor (baseline)"],
            "family": ["ValueLex", "human", "human", "baseline"],
            "chi2": [22.1, 958.9, 138.9, 1063.7],
            "df": [4, 360, 80, 405],
            "CFI": [0.462, 0.324, 0.770, 0.256],
            "RMSEA": [0.194, 0.118, 0.078, 0.116],
            "RMSEA_lo90": [0.120, 0.109, 0.056, 0.108],
            "RMSEA_hi90": [0.277, 0.127, 0.100, 0.125],
            "SRMR": [0.096, 0.129, 0.087, 0.119],
        }
    )


def test_cfa_comparison_legend_is_outside_every_panel() -> None:
    fig = human_values_plots.plot_cfa_comparison(cfa_table())
    fig.canvas.draw()
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert len(fig.legends) == 1
    legend_box = fig.legends[0].get_window_extent()
    for ax in fig.axes:
        frame = ax.get_window_extent()
        assert not legend_box.overlaps(frame), "the legend must not cover a panel"
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"human", "ValueLex", "baseline", "Hu & Bentler cut-off"} <= set(names)
    plt.close(fig)


def test_threshold_calibration_legend_is_below_the_panels() -> None:
    rng = np.random.default_rng(0)
    calibration = human_values.Calibration(
        framework="schwartz",
        threshold=0.48,
        quantile=0.95,
        null=pd.Series(rng.normal(0.38, 0.06, 150)),
        markers=pd.Series(rng.normal(0.55, 0.08, 40)),
    )
    fig = human_values_plots.plot_threshold_calibration(
        {"schwartz": calibration}, {"schwartz": "Schwartz basic values"}
    )
    fig.canvas.draw()
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert fig.legends[0].get_window_extent().y1 <= min(ax.get_window_extent().y0 for ax in fig.axes)
    plt.close(fig)


def test_assignment_word_lists_sit_beside_the_bars_without_collisions() -> None:
    counts = {
        "schwartz": pd.DataFrame(
            {
                "category": ["Achievement", "Conformity", "Tradition"],
                "n_words": [23, 0, 11],
                "top_words": [
                    "education, personal growth, dedication, technology, self-improvement, goals",
                    "",
                    "family",
                ],
            }
        )
    }
    fig = human_values_plots.plot_assignment(counts, {"schwartz": "Schwartz basic values"})
    fig.canvas.draw()
    ax = fig.axes[0]
    frame = ax.get_window_extent()
    words = [t for t in ax.texts if "," in t.get_text() or t.get_text() in ("family", "no LLM word")]
    assert len(words) == 3
    assert all(t.get_window_extent().x0 >= frame.x1 for t in words)  # a column right of the panel, not over bars
    assert labels.overlapping_pairs([t.get_window_extent() for t in ax.texts]) == []
    plt.close(fig)


def test_top_words_by_stage_panels_do_not_collide() -> None:
    words = [f"word{i}" for i in range(15)]
    table = pd.DataFrame(
        {
            "training_stage": ["instruct"] * 15 + ["pretrained"] * 15,
            "word": words + [w.replace("word", "a longer word ") for w in words],
            "share": np.linspace(0.9, 0.2, 30),
        }
    )
    fig = lexicon.plot_top_words_by_stage(table)
    fig.canvas.draw()
    left, right = fig.axes
    ticks = [t.get_window_extent() for t in right.get_yticklabels() if t.get_text()]
    assert min(b.x0 for b in ticks) > left.get_window_extent().x1  # the second panel's words clear the first
    plt.close(fig)


def test_silhouette_marks_do_not_collide() -> None:
    table = pd.DataFrame({"k": list(range(2, 13)), "silhouette": np.linspace(0.06, 0.04, 11)})
    fig = semantic_plots.plot_silhouette(table, chosen=2)
    fig.canvas.draw()
    texts = [t for t in fig.axes[0].texts if isinstance(t, Text)]
    assert len(texts) == 2
    boxes = [t.get_window_extent() for t in texts]
    assert labels.overlapping_pairs(boxes) == []
    assert all(
        b.y0 >= fig.axes[0].get_window_extent().y1 for b in boxes
    )  # above the frame: they cannot cross the curve
    plt.close(fig)
