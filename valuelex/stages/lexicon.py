"""Stage 02, lexicon cleaning (the paper's step 3, "40k+ words -> 190+ unique"): the parsed descriptors
of notebook 01 cleaned into the lexicon and the word-incidence matrices every later notebook reads.
Notebook ``02_lexicon`` narrates ``stages.lexicon.run(run)``; the rules are the run's ``lexicon``
section (our choices: the paper's are unpublished).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from .. import elicit, lexicon
from ..core.display import Report
from .base import Figures, Output, Run, Stage

INCIDENCE = tuple(
    f"incidence_{unit}_{coding}" for unit in ("respondent", "response") for coding in ("binary", "counts")
)

STAGE = Stage(
    number="02",
    name="lexicon",
    notebook="02_lexicon",
    inputs=("descriptors_raw.csv",),
    outputs=(
        Output("lexicon_funnel", "table"),
        Output("lexicon_funnel", "figure"),
        Output("lexicon_top_words", "figure"),
        Output("lexicon_top_words_by_stage", "table"),
        Output("lexicon_top_words_by_stage", "figure"),
        Output("descriptors", "data"),
        Output("lexicon", "data"),
        Output("lexicon_funnel", "data"),
        Output("lexicon_merges", "data"),
        *(Output(name, "data") for name in INCIDENCE),
    ),
)


@dataclass(repr=False)
class LexiconStageResult(Report):
    """What stage 02 made: the cleaning's result (``cleaned``: funnel, descriptors, merges, lexicon), the
    top words by training stage, the figures by name, and the numbers the notebook records."""

    raw: pd.DataFrame  # the parsed descriptors of notebook 01
    cleaned: lexicon.LexiconResult
    by_stage: pd.DataFrame
    incidence: pd.DataFrame  # respondents x words, binary
    figures: Figures
    top_n: int
    min_respondents: int
    min_models: int

    title = "The value lexicon"

    @property
    def funnel(self) -> pd.DataFrame:
        return self.cleaned.funnel

    @property
    def lexicon(self) -> pd.DataFrame:
        return self.cleaned.lexicon

    @property
    def merges(self) -> pd.DataFrame:
        return self.cleaned.merges

    @property
    def dropped(self) -> pd.DataFrame:
        """Descriptors by why they were dropped (or kept)."""
        return (
            self.cleaned.descriptors["dropped"]
            .replace("", "kept")
            .value_counts()
            .rename_axis("reason")
            .reset_index(name="descriptors")
        )

    @property
    def top_words(self) -> pd.DataFrame:
        return self.lexicon.head(self.top_n)

    @property
    def top_words_by_stage(self) -> pd.DataFrame:
        """Share of each training stage's respondents using each top word (the last stage's most used first)."""
        wide = self.by_stage.pivot_table(index="word", columns="training_stage", values="share")
        return wide.sort_values(self.by_stage["training_stage"].iloc[-1], ascending=False).head(20)

    def summary(self) -> str:
        return (
            f"{len(self.raw):,} raw descriptors from {self.raw['respondent'].nunique()} respondents -> "
            f"{len(self.lexicon)} lexicon words"
        )

    def sections(self) -> list[tuple[str, Any]]:
        return [
            ("", self.summary()),
            ("The cleaning funnel", self.funnel),
            ("Why descriptors were dropped", self.dropped),
        ]

    def metrics(self) -> dict[str, Any]:
        return {
            "raw_descriptors": len(self.raw),
            "unique_raw": int(self.funnel["unique_terms"].iloc[0]),
            "lexicon_size": len(self.lexicon),
            "incidence_shape": list(self.incidence.shape),
            "respondents_without_words": int((self.incidence.sum(axis=1) == 0).sum()),
            "min_respondents": self.min_respondents,
            "min_models": self.min_models,
            "respondents": int(self.raw["respondent"].nunique()),
        }


def run(run: Run) -> LexiconStageResult:
    """Clean the descriptors into the lexicon, draw the funnel and the top words, save the declared outputs."""
    settings, folders = run.settings.lexicon, run.folders
    raw = lexicon.load_raw_descriptors(folders.processed)
    prompts = {p.id: p.text for p in elicit.load_prompts().prompts}
    embed = None
    if settings.synonym_threshold is not None:  # synonyms merged by embedding similarity (off by default)
        from .. import semantic

        embed = semantic.Embedder(cache_dir=folders.embeddings).embed_words
    cleaned = lexicon.clean(raw, prompts=prompts, settings=settings, embed=embed)

    figures = Figures()
    run.save_table(cleaned.funnel, "lexicon_funnel")
    figures["funnel"] = lexicon.plot_funnel(
        cleaned.funnel, respondents=raw["respondent"].nunique(), prompts=len(prompts)
    )
    run.save_figure(figures["funnel"], "lexicon_funnel")
    figures["top_words"] = lexicon.plot_top_words(cleaned.lexicon, settings.top_n)
    run.save_figure(figures["top_words"], "lexicon_top_words")
    by_stage = lexicon.top_words_by_stage(cleaned.descriptors, n=15)
    run.save_table(by_stage, "lexicon_top_words_by_stage")
    figures["top_words_by_stage"] = lexicon.plot_top_words_by_stage(by_stage)
    run.save_figure(figures["top_words_by_stage"], "lexicon_top_words_by_stage")

    lexicon.save_lexicon(cleaned, folders.processed)
    incidence = lexicon.load_incidence("respondent", "binary", folder=folders.processed)
    for fig in figures.values():  # shown where the notebook names them
        plt.close(fig)
    return LexiconStageResult(
        raw, cleaned, by_stage, incidence, figures, settings.top_n, settings.min_respondents, settings.min_models
    )
