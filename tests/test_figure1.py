"""Figure 1 regenerated: placing words in the taxonomy, the wheel table, and notebook 09."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import run_notebook
from valuelex import figure1, semantic


def test_example_words_are_placed_in_their_own_dimension_mostly() -> None:
    taxonomy = semantic.load_taxonomy()
    placement = figure1.place_words(taxonomy["word"].str.lower().tolist(), taxonomy, semantic.embed_words)
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
