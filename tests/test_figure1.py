"""Figure 1 regenerated: placing words in the taxonomy, the wheel table, and notebook 09."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.text import Text

from tests.conftest import run_notebook
from valuelex import semantic
from valuelex.core import paths
from valuelex.plots import figure1, labels


def test_example_words_are_placed_in_their_own_dimension_mostly() -> None:
    taxonomy = semantic.load_taxonomy()
    embed = semantic.Embedder(cache_dir=paths.COMMITTED_PROCESSED / "cache" / "embeddings").embed_words
    placement = figure1.place_words(taxonomy["word"].str.lower().tolist(), taxonomy, embed)
    own_dimension = (placement["dimension"].to_numpy() == taxonomy["dimension"].to_numpy()).mean()
    assert own_dimension >= 0.8  # they define the prototypes, so most must land at home
    assert set(placement.columns) == {"word", "subdimension", "dimension", "similarity", "margin", "tie"}
    assert (placement["margin"] >= 0).all()


def test_place_words_uses_the_nearest_prototype() -> None:
    taxonomy = pd.DataFrame(
        {
            "word": ["a", "b", "c", "d", "e", "f"],
            "subdimension": ["Self-Competent", "User-Oriented", "Social", "Idealistic", "Professional", "Ethical"],
            "dimension": ["Competence", "Competence", "Character", "Character", "Integrity", "Integrity"],
        }
    )
    basis = {w: np.eye(6)[i] for i, w in enumerate("abcdef")}
    basis["near-e"] = np.array([0, 0, 0, 0.1, 1, 0.2])

    def embed(words: list[str]) -> np.ndarray:
        return np.array([basis[w] for w in words], dtype=float)

    placed = figure1.place_words(["near-e", "c"], taxonomy, embed).set_index("word")
    assert placed.loc["near-e", "subdimension"] == "Professional" and placed.loc["near-e", "dimension"] == "Integrity"
    assert placed.loc["c", "subdimension"] == "Social" and placed.loc["c", "margin"] == 1.0


def test_wheel_table_sums_usage_per_subdimension() -> None:
    placement = pd.DataFrame(
        {
            "word": ["x", "y", "z"],
            "subdimension": ["Social", "Social", "Ethical"],
            "dimension": ["Character", "Character", "Integrity"],
        }
    )
    lexicon = pd.DataFrame({"word": ["x", "y", "z"], "count": [6, 2, 2]})
    table = figure1.wheel_table(placement, lexicon, words_per_subdimension=1).set_index("subdimension")
    assert table.loc["Social", "usage"] == 8 and table.loc["Social", "top_words"] == "x"
    assert table.loc["Social", "usage_share"] == 0.8 and table.loc["Professional", "words"] == 0
    assert len(table) == 6


def test_wheel_table_counts_weak_placements() -> None:
    placement = pd.DataFrame(
        {
            "word": ["x", "y", "z"],
            "subdimension": ["Social", "Social", "Ethical"],
            "dimension": ["Character", "Character", "Integrity"],
            "margin": [0.2, 0.01, 0.029],
        }
    )
    lexicon = pd.DataFrame({"word": ["x", "y", "z"], "count": [6, 2, 2]})
    table = figure1.wheel_table(placement, lexicon, words_per_subdimension=4, weak_margin=0.03).set_index(
        "subdimension"
    )
    assert table.loc["Social", "weak"] == 1 and table.loc["Social", "weak_top_words"] == "y"
    assert table.loc["Ethical", "weak"] == 1 and table.loc["Self-Competent", "weak"] == 0


def test_size_legend_counts_are_round_and_spread() -> None:
    assert figure1.size_legend_counts(336) == [10, 50, 200]
    assert figure1.size_legend_counts(7) == [1, 5]  # few round numbers below a small maximum
    counts = figure1.size_legend_counts(5000)
    assert counts[-1] == 5000 and all(b >= 3.5 * a for a, b in zip(counts, counts[1:], strict=False))


def crowded_lexicon() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map coordinates and placements shaped like ours, with the pairs that used to collide on top of each other."""
    rng = np.random.default_rng(1)
    words = [f"word{i}" for i in range(60)] + ["fairness", "justice", "compassion", "kindness", "integrity"]
    xy = rng.uniform(-10, 10, size=(len(words), 2))
    xy[-5:] = [[-5.0, 0.0], [-4.9, 0.05], [2.0, 3.0], [2.05, 3.02], [9.9, 9.9]]  # near-duplicates, a corner
    counts = np.r_[rng.integers(5, 60, size=60), [67, 68, 228, 240, 336]]
    subs = [s for subs in figure1.DIMENSIONS.values() for s in subs]
    sub = [subs[i % 6] for i in range(len(words))]
    dim = {s: d for d, ss in figure1.DIMENSIONS.items() for s in ss}
    coords = pd.DataFrame({"word": words, "x": xy[:, 0], "y": xy[:, 1], "count": counts})
    placement = pd.DataFrame(
        {
            "word": words,
            "subdimension": sub,
            "dimension": [dim[s] for s in sub],
            "margin": rng.uniform(0, 0.1, len(words)),
        }
    )
    return coords, placement


def label_texts(fig: plt.Figure) -> list[Text]:
    return [t for ax in fig.axes for t in ax.texts]


def test_lexicon_map_labels_do_not_collide_and_legend_shows_sizes() -> None:
    coords, placement = crowded_lexicon()
    fig = figure1.plot_lexicon_map(coords, placement, label_top=25)
    texts = label_texts(fig)
    assert {"fairness", "justice", "compassion", "kindness", "integrity"} <= {t.get_text() for t in texts}
    boxes = labels.text_boxes(fig, texts)
    assert labels.overlapping_pairs(boxes) == []
    frame = fig.axes[0].get_window_extent()
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "uses (descriptors)" in legend and "200" in legend  # the size legend, with round counts
    assert any(name.startswith("weak (margin < 0.03") for name in legend)
    weak = int((placement["margin"] < 0.03).sum())
    hollow = sum(int((np.asarray(c.get_facecolors())[:, :3] == 1).all(axis=1).sum()) for c in fig.axes[0].collections)
    assert hollow == weak  # weak placements are drawn hollow
    plt.close(fig)


def wheel_boxes(fig: plt.Figure) -> list:
    """Extents of every text on the wheel figure (a heading's coloured box counts as its extent)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for text in [*fig.axes[0].texts, *fig.texts]:
        patch = text.get_bbox_patch()
        boxes.append(patch.get_window_extent(renderer) if patch else text.get_window_extent(renderer))
    return boxes


def test_taxonomy_wheel_texts_do_not_overlap_and_weak_words_are_marked() -> None:
    placement = pd.DataFrame(
        {
            "word": ["transparency", "adaptability", "justice", "fairness", "honesty", "kindness", "respect", "purpose"],
            "subdimension": ["Professional", "Professional", "Ethical", "Ethical", "Social", "Social", "Idealistic", "User-Oriented"],
            "dimension": ["Integrity", "Integrity", "Integrity", "Integrity", "Character", "Character", "Character", "Competence"],
            "margin": [0.12, 0.07, 0.37, 0.17, 0.05, 0.18, 0.02, 0.01],
        }
    )  # fmt: skip
    lexicon = pd.DataFrame({"word": placement["word"], "count": [58, 28, 68, 67, 280, 240, 221, 27]})
    table = figure1.wheel_table(placement, lexicon, words_per_subdimension=4)
    fig = figure1.plot_taxonomy_wheel(table)
    assert labels.overlapping_pairs(wheel_boxes(fig)) == []
    body = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "respect*" in body and "purpose*" in body and "honesty*" not in body
    plt.close(fig)


def test_notebook_09_draws_figure1(processed_pipeline: dict, tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    shutil.copytree(processed_pipeline["VALUELEX_PROCESSED"], processed)
    env = {"VALUELEX_PROCESSED": str(processed), "VALUELEX_FIGURES": str(tmp_path / "figures")}
    (tmp_path / "figures").mkdir()
    run_notebook("05_semantic_clusters", tmp_path, {"projection": "pca"}, env)  # the map coordinates
    numbers = run_notebook("09_figure1", tmp_path, {}, env)
    assert numbers["words_placed"] == processed_pipeline["02"]["lexicon_size"]
    assert sum(numbers["words_per_dimension"].values()) == numbers["words_placed"]
    assert abs(sum(numbers["usage_share_by_subdimension"].values()) - 1) < 0.01
    for name in ("fig1b_lexicon_map", "fig1c_taxonomy_wheel"):
        assert (tmp_path / "figures" / f"{name}.png").exists()
    # the same figures drawn from the real lexicon: no label collides
    lexicon = pd.read_csv(processed / "lexicon.csv")
    placement = pd.read_csv(processed / "taxonomy_placement.csv")
    coords = pd.read_csv(processed / "semantic_clusters.csv")[["word", "x", "y", "count"]]
    fig = figure1.plot_lexicon_map(coords, placement, label_top=25)
    assert len(label_texts(fig)) == 25
    assert labels.overlapping_pairs(labels.text_boxes(fig, label_texts(fig))) == []
    plt.close(fig)
    fig = figure1.plot_taxonomy_wheel(figure1.wheel_table(placement, lexicon))
    assert labels.overlapping_pairs(wheel_boxes(fig)) == []
    plt.close(fig)
