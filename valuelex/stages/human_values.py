"""Stage 08, human value systems against the LLM lexicon (the paper's step 0: "human value systems do
not fit LLMs"): every lexicon word compared with the categories of Schwartz's values and the moral
foundations (coverage, calibrated on everyday non-value words), then their structures fitted by CFA
next to the ValueLex taxonomy's. Notebook ``08_human_values`` narrates ``stages.human_values.run(run)``;
the settings are the run's ``human_values`` section (and ``cfa.estimator``); the methods are
:mod:`valuelex.human_values` (our choices: the paper gives no numbers for this step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from .. import human_values, lexicon, semantic
from ..core.display import Report
from ..instruments.taxonomy import load_taxonomy
from ..plots.human_values import (
    plot_assignment,
    plot_cfa_comparison,
    plot_coverage,
    plot_coverage_curve,
    plot_threshold_calibration,
)
from ..psychometrics import cfa
from .base import Figures, Output, Run, Stage

STAGE = Stage(
    number="08",
    name="human_values",
    notebook="08_human_values",
    inputs=("lexicon.csv", "incidence_respondent_binary.csv"),
    outputs=(
        Output("human_values_threshold", "table"),
        Output("human_values_threshold", "figure"),
        Output("human_values_assignment", "data"),
        Output("human_values_coverage", "table"),
        Output("human_values_coverage", "figure"),
        Output("human_values_coverage_curve", "figure"),
        Output("human_values_uncovered", "table"),
        Output("human_values_categories", "table"),
        Output("human_values_assignment", "figure"),
        Output("human_values_cfa_indicators", "table"),
        Output("human_values_cfa_comparison", "table"),
        Output("human_values_cfa_comparison", "figure"),
    ),
)

#: The columns of the CFA comparison a reader is shown (the CSV has every column, e.g. the RMSEA interval).
COMPARISON_SHOWN = ["model", "family", "N", "words", "factors", "estimable", "chi2", "df", "CFI", "TLI", "RMSEA", "SRMR", "notes"]  # fmt: skip


@dataclass(repr=False)
class HumanValuesResult(Report):
    """What stage 08 computed: the frameworks, the calibrated thresholds, each word's nearest category,
    the coverage, the words and categories left over, and the CFA comparison. Tables are attributes;
    figures are ``figures.<name>``; notes are the sentences a reader needs beside them."""

    words: pd.DataFrame  # the lexicon of notebook 02
    frameworks: dict[str, human_values.Framework]  # schwartz, moral_foundations, valuelex (the reference)
    calibrations: dict[str, human_values.Calibration]
    thresholds: dict[str, float]  # the calibrated ones, or the run's fixed threshold
    calibration: pd.DataFrame
    word_table: pd.DataFrame  # data/processed/human_values_assignment.csv
    coverage: pd.DataFrame
    uncovered_by_both: pd.DataFrame  # the words neither human framework covers, most used first
    missed: dict[str, pd.DataFrame]  # per human framework (by name): its uncovered words
    counts: dict[str, pd.DataFrame]  # per human framework (by key): covered words per category
    empty: dict[str, list[str]]  # per human framework (by name): categories without any lexicon word
    incidence: pd.DataFrame  # respondents x words, binary (the CFA's data)
    indicators: pd.DataFrame
    fits: list[Any]  # the CFA fits, ValueLex's models first
    comparison: pd.DataFrame
    figures: Figures
    top_n: int
    estimator: str

    title = "Human value systems against the LLM lexicon"

    @property
    def names(self) -> dict[str, str]:
        return {key: fw.name for key, fw in self.frameworks.items()}

    @property
    def categories(self) -> pd.DataFrame:
        """Every framework's categories, definitions and numbers of marker words."""
        return (
            pd.concat({fw.name: fw.categories for fw in self.frameworks.values()})
            .droplevel(1)
            .reset_index(names="framework")
        )

    @property
    def first_words(self) -> pd.DataFrame:
        """The first ``top_n`` rows of the per-word table (the full table is the CSV)."""
        return self.word_table.head(self.top_n)

    @property
    def uncovered(self) -> pd.DataFrame:
        """The ``top_n`` most used words neither human framework covers (``human_values_uncovered``)."""
        return self.uncovered_by_both.head(self.top_n)

    @property
    def missed_by_framework(self) -> pd.DataFrame:
        """Side by side, each human framework's most used uncovered words and their nearest category."""
        return pd.concat(self.missed, axis=1)

    @property
    def category_table(self) -> pd.DataFrame:
        """Covered lexicon words per human category, by framework."""
        return pd.concat({self.names[k]: c for k, c in self.counts.items()})

    @property
    def comparison_shown(self) -> pd.DataFrame:
        return self.comparison[COMPARISON_SHOWN]

    def lexicon_note(self) -> str:
        return f"{len(self.words)} lexicon words, used {int(self.words['count'].sum()):,} times"

    def uncovered_note(self) -> str:
        return f"{len(self.uncovered_by_both)} of {len(self.words)} words are covered by neither human framework"

    def empty_note(self) -> str:
        """Per human framework, its categories that no lexicon word names."""
        return "\n".join(
            f"{framework}: categories without any LLM word: {', '.join(categories) or 'none'}"
            for framework, categories in self.empty.items()
        )

    def sections(self) -> list[tuple[str, Any]]:
        return [
            ("", self.lexicon_note()),
            ("The coverage threshold, calibrated on everyday non-value words", self.calibration),
            ("How much of the lexicon each framework covers", self.coverage),
            ("", self.uncovered_note()),
            ("", self.empty_note()),
            ("CFA of the human frameworks next to the ValueLex taxonomy", self.comparison_shown),
        ]

    def metrics(self) -> dict[str, Any]:
        cover_by = self.coverage.set_index("framework")
        names = self.names
        return {
            "lexicon_words": len(self.words),
            "threshold_schwartz": round(self.thresholds["schwartz"], 4),
            "threshold_moral_foundations": round(self.thresholds["moral_foundations"], 4),
            "marker_pass_schwartz": round(self.calibrations["schwartz"].marker_pass_rate, 4),
            "marker_pass_moral_foundations": round(self.calibrations["moral_foundations"].marker_pass_rate, 4),
            "coverage_words": {k: round(float(cover_by.loc[names[k], "share_words"]), 4) for k in self.frameworks},
            "coverage_usage": {k: round(float(cover_by.loc[names[k], "share_usage"]), 4) for k in self.frameworks},
            "uncovered_by_both": len(self.uncovered_by_both),
            "top_uncovered": self.uncovered_by_both["word"].head(10).tolist(),
            "empty_categories": self.empty,
            "cfa_respondents": len(self.incidence),
            "cfa_estimator": self.estimator,
            "cfa_models_testable": int(human_values.testable(self.comparison).sum()),
            "cfa_not_estimable": {f.name: f.status() for f in self.fits if not f.estimable},
            "cfa": human_values.fit_summary(self.comparison),
            "cfa_models": len(self.comparison),
        }


def run(run: Run) -> HumanValuesResult:
    """Calibrate, assign, measure the coverage, fit the CFAs; save the stage's declared outputs."""
    settings, folders = run.settings.human_values, run.folders
    figures = Figures()

    # the lexicon, the frameworks (the ValueLex taxonomy as a reference) and the embedder
    words = human_values.read_lexicon(folders.processed)
    frameworks = human_values.load_frameworks(include_provisional=settings.include_liberty)
    frameworks["valuelex"] = human_values.taxonomy_framework(load_taxonomy(), level="subdimension")
    names = {key: fw.name for key, fw in frameworks.items()}
    embed = semantic.Embedder(cache_dir=folders.embeddings).embed_words

    # 1. the threshold of "covered", calibrated on everyday non-value words
    calibrations = {
        key: human_values.calibrate(fw, embed, quantile=settings.null_quantile) for key, fw in frameworks.items()
    }
    thresholds = {
        key: (settings.threshold if settings.threshold is not None else cal.threshold)
        for key, cal in calibrations.items()
    }
    calibration = pd.DataFrame(
        [
            {**cal.summary(), "framework": names[key], "threshold_used": thresholds[key]}
            for key, cal in calibrations.items()
        ]
    )
    run.save_table(calibration, "human_values_threshold")
    figures["threshold"] = plot_threshold_calibration(calibrations, names)
    run.save_figure(figures["threshold"], "human_values_threshold")

    # 2. each lexicon word's nearest category
    assignments = {
        key: human_values.assign(words["word"], fw, embed, thresholds[key]) for key, fw in frameworks.items()
    }
    per_word = human_values.word_table(assignments, words)
    run.save_data(per_word, "human_values_assignment")

    # 3. the coverage, its curve over thresholds, what the human frameworks miss
    cover = human_values.coverage_table(assignments, words, thresholds, names, settings.weight)
    run.save_table(cover, "human_values_coverage")
    figures["coverage"] = plot_coverage(cover)
    run.save_figure(figures["coverage"], "human_values_coverage")
    curve = human_values.coverage_curve(assignments, words, names=names, weight=settings.weight)
    figures["coverage_curve"] = plot_coverage_curve(curve, {names[k]: t for k, t in thresholds.items()})
    run.save_figure(figures["coverage_curve"], "human_values_coverage_curve")

    human = {key: assignments[key] for key in assignments if key != "valuelex"}
    missed_by_all = human_values.uncovered_across(human, words, n=None)
    run.save_table(missed_by_all.head(settings.top_n), "human_values_uncovered")
    missed = {names[key]: human_values.uncovered_words(table, words, n=settings.top_n) for key, table in human.items()}

    counts = {
        key: human_values.category_counts(assignments[key], frameworks[key], words, settings.weight) for key in human
    }
    run.save_table(
        pd.concat({names[k]: c for k, c in counts.items()}).droplevel(1).reset_index(names="framework"),
        "human_values_categories",
    )
    figures["assignment"] = plot_assignment(counts, names)
    run.save_figure(figures["assignment"], "human_values_assignment")
    empty = {names[k]: human_values.empty_categories(c) for k, c in counts.items()}

    # 4. the structures by CFA: the human frameworks' models, ValueLex's (notebook 04's and by the same rule)
    incidence = lexicon.load_incidence(unit="respondent", coding="binary", folder=folders.processed)
    human_specs, families, indicators = human_values.assignment_models(
        assignments,
        frameworks,
        incidence,
        settings.min_indicators,
        settings.max_indicators,
        settings.min_users,
        settings.second_order,
    )
    run.save_table(indicators, "human_values_cfa_indicators")
    valuelex_markers = cfa.taxonomy_markers(load_taxonomy(), incidence)
    valuelex_specs = cfa.taxonomy_models(valuelex_markers, incidence)
    families.update({spec.name: "ValueLex" for spec in valuelex_specs})
    estimator = run.settings.cfa.estimator
    fits = [cfa.fit_cfa(spec, incidence, estimator=estimator) for spec in valuelex_specs + human_specs]
    comparison = cfa.comparison_table(fits)
    comparison.insert(1, "family", comparison["model"].map(families))
    run.save_table(comparison, "human_values_cfa_comparison")
    figures["cfa_comparison"] = plot_cfa_comparison(comparison)
    run.save_figure(figures["cfa_comparison"], "human_values_cfa_comparison")

    for fig in figures.values():  # shown where the notebook names them
        plt.close(fig)
    return HumanValuesResult(
        words=words, frameworks=frameworks, calibrations=calibrations, thresholds=thresholds,
        calibration=calibration, word_table=per_word, coverage=cover, uncovered_by_both=missed_by_all,
        missed=missed, counts=counts, empty=empty, incidence=incidence, indicators=indicators, fits=fits,
        comparison=comparison, figures=figures, top_n=settings.top_n, estimator=estimator,
    )  # fmt: skip
