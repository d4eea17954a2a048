"""Stage 09, the paper's Figure 1 from this run's data: the lexicon placed in the taxonomy, (b) the map,
(c) the wheel and the projective bars. Notebook ``09_figure1`` narrates ``stages.figure1.run(run)``.

Placing a word (our choice; the paper does not say how): its nearest sub-dimension by embedding
similarity to the centroid of that sub-dimension's example words, with the margin over the runner-up
kept so that weak placements can be seen (``semantic.weak_margin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from .. import projective, semantic
from ..core.display import Report
from ..plots import figure1
from .base import Figures, Output, Run, Stage

STAGE = Stage(
    number="09",
    name="figure1",
    notebook="09_figure1",
    inputs=("lexicon.csv", "semantic_clusters.csv", "projective_scores.csv"),
    outputs=(
        Output("taxonomy_placement", "data"),
        Output("fig1b_lexicon_map", "figure"),
        Output("fig1c_taxonomy_wheel", "table"),
        Output("fig1c_taxonomy_wheel", "figure"),
        Output("fig1c_projective_bars", "figure", optional=True),  # needs notebook 06's scores
    ),
)


@dataclass(repr=False)
class Figure1Result(Report):
    """What stage 09 computed: the placement of every lexicon word, the wheel's table and the figures."""

    placement: pd.DataFrame  # word, dimension, subdimension, similarity, margin
    wheel: pd.DataFrame  # per sub-dimension: usage share, its most used words, weak placements
    figures: Figures  # lexicon_map, taxonomy_wheel and (when notebook 06 ran) projective_bars
    weak_margin: float
    missing_scores: str = ""  # why the projective bars are not drawn, or ""

    title = "Figure 1 from this run's data"

    @property
    def by_subdimension(self) -> pd.DataFrame:
        """Words placed in each sub-dimension and their median margin over the runner-up."""
        return self.placement.groupby(["dimension", "subdimension"]).agg(
            words=("word", "size"), median_margin=("margin", "median")
        )

    def sections(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [("Words placed by sub-dimension", self.by_subdimension)]
        out.append(("Figures", ", ".join(self.figures)))
        if self.missing_scores:
            out.append(("Not drawn", self.missing_scores))
        return out

    def metrics(self) -> dict[str, Any]:
        return {
            "words_placed": len(self.placement),
            "words_per_dimension": self.placement["dimension"].value_counts().to_dict(),
            "weak_placements": int((self.placement["margin"] < self.weak_margin).sum()),
            "usage_share_by_subdimension": dict(
                zip(self.wheel["subdimension"], self.wheel["usage_share"], strict=True)
            ),
            "projective_bars": not self.missing_scores,
        }


def run(run: Run) -> Figure1Result:
    """Place the lexicon's words, draw Figure 1 (b) and (c), and save the stage's declared outputs."""
    settings, folders = run.settings, run.folders
    lexicon = pd.read_csv(folders.processed / "lexicon.csv")
    embed = semantic.Embedder(cache_dir=folders.embeddings).embed_words
    placement = figure1.place_words(lexicon["word"].tolist(), semantic.load_taxonomy(), embed)
    run.save_data(placement, "taxonomy_placement")

    figures = Figures()
    coords = pd.read_csv(folders.processed / "semantic_clusters.csv")[["word", "x", "y", "count"]]
    figures["lexicon_map"] = figure1.plot_lexicon_map(
        coords, placement, label_top=settings.figure1.label_top, weak_margin=settings.semantic.weak_margin
    )
    run.save_figure(figures["lexicon_map"], "fig1b_lexicon_map")

    wheel = figure1.wheel_table(
        placement, lexicon, settings.figure1.words_per_subdimension, settings.semantic.weak_margin
    )
    run.save_table(wheel, "fig1c_taxonomy_wheel")
    figures["taxonomy_wheel"] = figure1.plot_taxonomy_wheel(wheel, settings.semantic.weak_margin)
    run.save_figure(figures["taxonomy_wheel"], "fig1c_taxonomy_wheel")

    missing = ""
    scores_file = folders.processed / "projective_scores.csv"
    if scores_file.exists():
        scores = pd.read_csv(scores_file)
        if "scorer" in scores.columns:  # the scorer notebook 06 used (its first)
            scores = scores[scores["scorer"] == scores["scorer"].iloc[0]]
        figures["projective_bars"] = projective.plot_subdimension_bars(scores, "Projective test (our Figure 1c, bars)")
        run.save_figure(figures["projective_bars"], "fig1c_projective_bars")
    else:
        missing = "the projective bars: projective_scores.csv is missing (run notebook 06 first)"
    for fig in figures.values():  # shown where the notebook names them, not all at once here
        plt.close(fig)
    return Figure1Result(placement, wheel, figures, settings.semantic.weak_margin, missing)
