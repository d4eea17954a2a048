"""Stage 03, exploratory factor analysis (the paper's "three dimensions"; how it was done is ours): which
value words go together across respondents? The pooled analysis (word filter, tetrachoric correlations,
adequacy, parallel analysis, minres/oblimin) is one call of the estimator
``psychometrics.efa.EFA(settings.efa).fit``; around it the count's stability, the factors' top words and
taxonomy markers, how much of each factor is the model that answered (statsBy, the within- and
between-model factors, response-level units) and the bootstrap. Notebook ``03_efa`` narrates
``stages.efa.run(run)``; the settings are the run's ``efa`` section.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import lexicon
from ..core.display import Report
from ..instruments.taxonomy import load_taxonomy
from ..plots.efa import plot_bootstrap_congruence, plot_loadings_heatmap, plot_scree
from ..psychometrics import cfa, efa, factor_count, multilevel
from .base import Figures, Output, Run, Stage
from .lexicon import INCIDENCE

STAGE = Stage(
    number="03",
    name="efa",
    notebook="03_efa",
    # the incidence matrices of the run's efa.unit and efa.coding (and the response-level one), and which
    # model each respondent is
    inputs=(*(f"{name}.csv" for name in INCIDENCE), "respondents.csv"),
    outputs=(
        Output("efa_dropped_words", "table"),
        Output("efa_msa", "table"),
        Output("efa_scree", "figure"),
        Output("efa_parallel", "table"),
        Output("efa_factor_count", "table"),
        Output("efa_factor_count_caps", "table"),
        Output("efa_loadings", "table"),
        Output("efa_variance", "table"),
        Output("efa_factor_correlations", "table"),
        Output("efa_loadings_heatmap", "figure"),
        Output("efa_top_words", "table"),
        Output("efa_taxonomy_markers", "table"),
        Output("efa_factors_by_model", "table", optional=True),  # respondents as units (efa.unit) only
        Output("efa_word_icc_by_model", "table"),
        Output("efa_levels", "table"),
        Output("efa_pooled_factors_model_identity", "table"),
        Output("efa_within_loadings", "table"),
        Output("efa_within_bootstrap_congruence", "table"),
        Output("efa_within_factor_count", "table"),
        Output("efa_response_word_shares", "table"),
        Output("efa_response_factors_by_group", "table"),
        Output("efa_bootstrap_congruence", "table"),
        Output("efa_bootstrap_congruence", "figure"),
        Output("efa_loadings", "data"),
        Output("efa_word_factors", "data"),
        Output("efa_loading_intervals", "data"),
        Output("efa_settings", "json"),
    ),
)


@dataclass(repr=False)
class EFAStageResult(Report):
    """What stage 03 computed. The pooled analysis is ``analysis`` (:class:`~valuelex.psychometrics.efa.Analysis`),
    its steps ``prepared``, ``correlation``, ``adequacy``, ``parallel`` and ``solution``; then the count's
    stability (``count``), the factors' words (``top``, ``word_factors``, ``markers``), the model that answered
    (``by_model``, ``decomposition``, ``latent``, ``within``, ``levels``, ``response_levels``) and the bootstrap
    (``boot``, ``stability``, ``intervals``). Figures are ``figures.<name>``."""

    unit: str  # what a row is (efa.unit)
    coding: str  # binary or counts (efa.coding)
    incidence: pd.DataFrame  # units x lexicon words
    analysis: efa.Analysis  # the pooled analysis: EFA(settings.efa).fit(incidence)
    parallel: efa.ParallelResult  # the analysis' parallel analysis (run too when efa.n_factors sets the count)
    count: factor_count.CountStability  # the pooled count over seeds, subsamples and word caps
    top: pd.DataFrame  # each factor's highest-loading words
    word_factors: pd.DataFrame  # one row per word: factor, loading, assigned
    markers: pd.DataFrame  # where the taxonomy's example words load
    by_model: pd.DataFrame | None  # per factor, its mean score per model and eta squared (respondent units)
    models: pd.Series  # the model of each unit
    decomposition: multilevel.StatsBy  # psych::statsBy by model
    latent: pd.Series  # per word, the latent-scale share of its variance between models
    within: efa.Analysis  # the within-model analysis, on the pooled words
    within_boot: efa.BootstrapResult  # bootstrap inside each model
    within_count: factor_count.CountStability
    levels: multilevel.LevelComparison  # pooled, within- and between-model factors
    response_levels: multilevel.ResponseLevels  # response-level units: model, prompt and cell
    boot: efa.BootstrapResult  # the pooled factors over bootstrap samples of the units
    stability: pd.DataFrame  # per factor, its congruence over the samples
    intervals: pd.DataFrame  # per word, its loadings' intervals and same-factor share
    choices: dict[str, Any]  # the run's efa settings and the factors used (efa_settings.json)
    figures: Figures  # scree, loadings_heatmap, bootstrap_congruence

    title = "Exploratory factor analysis"

    @property
    def prepared(self) -> efa.PreparedMatrix:
        return self.analysis.prepared

    @property
    def correlation(self) -> efa.CorrelationResult:
        return self.analysis.correlation

    @property
    def adequacy(self) -> efa.Adequacy | None:
        return self.analysis.adequacy

    @property
    def solution(self) -> efa.EFAResult:
        """The pooled factor solution, reported as ``psych::fa`` prints it (with McDonald's omega)."""
        return self.analysis.result

    @property
    def words_counted(self) -> int:
        """The words parallel analysis counted the factors on (one observed eigenvalue each)."""
        return len(self.parallel.observed)

    def units_note(self) -> str:
        return f"{self.incidence.shape[0]} {self.unit}s x {self.incidence.shape[1]} lexicon words, {self.coding} coding"

    def correlation_note(self) -> str:
        """What was done to the correlation matrix (smoothing), one line each."""
        return "\n".join(f"note: {note}" for note in self.correlation.notes) or "note: none"

    def count_note(self) -> str:
        """How many words the count rests on, how many factors were extracted, and why when not that count."""
        shown = set(self.correlation.notes) | set(self.solution.notes)
        notes = [note for note in self.analysis.notes if note not in shown]  # choose_n_factors' own
        text = (
            f"counted on {self.words_counted} of {self.prepared.n_words} words: parallel analysis finds "
            f"{self.parallel.n_factors} -> {self.solution.n_factors} factor(s) extracted"
        )
        return "\n".join([text, *notes])

    def latent_note(self) -> str:
        return f"latent-scale share of a word's variance between models (median over words): {self.latent.median():.2f}"

    def bootstrap_note(self) -> str:
        seed = self.choices["seed"]
        return f"{self.boot.congruence.shape[0]} bootstrap samples ({self.boot.failures} failed), seed {seed}"

    def sections(self) -> list[tuple[str, Any]]:
        return [
            ("", f"{self.units_note()}\n{self.count_note()}\nfactors: {self.count.describe()}"),
            ("", dict(self.analysis.summary())),
            ("Top words", self.top),
            ("Within and between models", self.levels.levels()),
            ("Bootstrap", f"{self.bootstrap_note()}"),
            ("", self.stability),
        ]

    def metrics(self) -> dict[str, Any]:
        prepared, adequate, result = self.prepared, self.adequacy, self.solution
        by_model = {}
        if self.by_model is not None:
            by_model = {"factor_eta_squared_by_model": self.by_model["eta_squared"].tolist()}
        bartlett = adequate.bartlett_chi2 if adequate is not None else float("nan")
        return {
            **by_model,
            "median_word_icc1_model": round(float(self.decomposition.ICC1.median()), 4),
            "median_word_latent_icc_model": round(float(self.latent.median()), 4),
            **self.levels.metrics(),
            **self.within_count.metrics(),
            **self.response_levels.metrics(),
            "models": len(set(self.models)),
            "units": prepared.n_units,
            "words_in": prepared.n_words_in,
            "words_analysed": prepared.n_words,
            "smoothed": self.correlation.smoothed,
            "kmo": round(adequate.kmo, 4) if adequate is not None else None,
            "bartlett_chi2": round(bartlett, 2) if np.isfinite(bartlett) else None,
            "determinant_zero": adequate.determinant == 0 if adequate is not None else None,
            "parallel_n_factors": self.parallel.n_factors,
            "words_counted": self.words_counted,
            **self.count.metrics(),
            "n_factors": result.n_factors,
            "rmsea": round(result.fit["rmsea"], 4),
            "tli": round(result.fit["tli"], 4),
            "words_assigned": int(self.word_factors["assigned"].sum()),
            "rmsr": round(result.fit["rmsr"], 4),
            "fit_basis": result.fit["fit_basis"],
            "heywood_cases": len(result.heywood),
            "bootstrap_samples": int(self.boot.congruence.shape[0]),
            "congruence_median": [round(v, 3) for v in self.stability["median"]],
            "congruence_lower": [round(v, 3) for v in self.stability["lower"]],
        }


def run(run: Run) -> EFAStageResult:
    """The pooled analysis and every check of notebook 03 around it; save the stage's declared outputs."""
    settings, folders = run.settings, run.folders
    incidence = lexicon.load_incidence(unit=settings.efa.unit, coding=settings.efa.coding, folder=folders.processed)
    figures = Figures()

    # 1-4. the words that enter, their correlations and adequacy, the count and the solution: one estimator
    analysis = efa.EFA(settings.efa).fit(incidence)
    prepared, adequate, result = analysis.prepared, analysis.adequacy, analysis.result
    parallel = analysis.parallel
    if parallel is None:  # efa.n_factors set the count: the parallel analysis is still shown, with the same calls
        counting = dataclasses.replace(settings.efa, n_factors="parallel")
        parallel = efa.EFA(counting).fit(incidence, prepared=prepared).parallel
    run.save_table(prepared.dropped, "efa_dropped_words")
    if adequate is not None:  # None: a singular matrix (said in the analysis' notes)
        run.save_table(adequate.msa.rename_axis("word").reset_index().sort_values("msa"), "efa_msa")
    figures["scree"] = plot_scree(parallel)
    run.save_figure(figures["scree"], "efa_scree")
    run.save_table(parallel.table(), "efa_parallel")

    # 3b. how sure is the count
    count = factor_count.count_stability(prepared.data, settings.efa)
    run.save_table(count.distribution(), "efa_factor_count")
    run.save_table(count.caps, "efa_factor_count_caps")

    # 4. the solution
    run.save_table(efa.loadings_table(result), "efa_loadings")
    run.save_table(result.variance.rename_axis("").reset_index(), "efa_variance")
    run.save_table(result.phi.rename_axis("factor").reset_index(), "efa_factor_correlations")
    figures["loadings_heatmap"] = plot_loadings_heatmap(result)
    run.save_figure(figures["loadings_heatmap"], "efa_loadings_heatmap")
    top = efa.top_words(result, n=12)
    run.save_table(top.reset_index(), "efa_top_words")
    word_factors = efa.word_factors(result)
    markers = cfa.marker_factors(cfa.taxonomy_markers(load_taxonomy(), incidence), word_factors)
    run.save_table(markers, "efa_taxonomy_markers")

    # 4b. do the factors track the model that answered
    by_model = None
    if settings.efa.unit == "respondent" and (folders.processed / "respondents.csv").exists():
        by_model = efa.factor_model_association(
            incidence, word_factors, lexicon.load_respondents(folders.processed), by="model"
        )
        run.save_table(by_model, "efa_factors_by_model")

    # 4c. within and between models
    respondents = lexicon.load_respondents(folders.processed)
    models = multilevel.unit_models(prepared.data.index, respondents)
    decomposition = multilevel.stats_by(prepared.data, models, group="model")
    latent = multilevel.latent_icc(prepared.data, models)
    run.save_table(decomposition.table().merge(latent.rename_axis("word").reset_index()), "efa_word_icc_by_model")
    within = efa.EFA(settings.efa).fit(incidence, models, prepared=prepared)  # within models, on the pooled words
    within_boot = multilevel.within_bootstrap(within.prepared.data, models, within.result, settings.efa)
    within_count = factor_count.count_stability(within.prepared.data, settings.efa, models)  # as the pooled count
    levels = multilevel.compare_levels(prepared.data, models, result, within, stability=within_boot)
    run.save_table(levels.levels(), "efa_levels")
    run.save_table(levels.attribution(), "efa_pooled_factors_model_identity")
    run.save_table(efa.loadings_table(within.result), "efa_within_loadings")
    run.save_table(within_boot.summary_table(), "efa_within_bootstrap_congruence")
    run.save_table(within_count.distribution(), "efa_within_factor_count")

    # 4c. response-level units: the model and the prompt
    responses = lexicon.load_incidence(unit="response", coding=settings.efa.coding, folder=folders.processed)
    response_levels = multilevel.analyse_responses(
        responses, multilevel.response_groups(responses.index, respondents), settings.efa
    )
    run.save_table(response_levels.crossed.shares, "efa_response_word_shares")
    run.save_table(response_levels.pooled_shares, "efa_response_factors_by_group")

    # 5. stability: bootstrap over units
    boot = efa.bootstrap_stability(
        prepared.data, result, correlation=settings.efa.correlation, n_boot=settings.efa.n_boot, seed=settings.efa.seed
    )
    stability = boot.summary_table()
    intervals = boot.loading_intervals(result)
    run.save_table(stability, "efa_bootstrap_congruence")
    figures["bootstrap_congruence"] = plot_bootstrap_congruence(boot)
    run.save_figure(figures["bootstrap_congruence"], "efa_bootstrap_congruence")

    # 6. outputs for the next notebooks
    run.save_data(result.loadings.rename_axis("word"), "efa_loadings", index=True)
    run.save_data(word_factors.merge(intervals[["word", "same_factor_share"]], on="word"), "efa_word_factors")
    run.save_data(intervals, "efa_loading_intervals")
    choices = {**dataclasses.asdict(settings.efa), "n_factors_used": result.n_factors}  # for the record
    run.save_json(choices, "efa_settings")

    for fig in figures.values():  # shown where the notebook names them
        plt.close(fig)
    return EFAStageResult(
        unit=settings.efa.unit, coding=settings.efa.coding, incidence=incidence, analysis=analysis, parallel=parallel,
        count=count, top=top, word_factors=word_factors, markers=markers, by_model=by_model, models=models,
        decomposition=decomposition, latent=latent, within=within, within_boot=within_boot, within_count=within_count,
        levels=levels, response_levels=response_levels, boot=boot, stability=stability, intervals=intervals,
        choices=choices, figures=figures,
    )  # fmt: skip
