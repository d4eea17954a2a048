"""Stage 07, method validation by simulation (ours: the paper publishes no data): plant three correlated
factors in respondents x words 0/1 data, run notebook 03's exploratory pipeline with the run's EFA
settings, and see what it recovers; at the paper's scale, with other correlation and null choices, by
number of respondents, by word-selection rule, and (part 2) with a vocabulary of its own per model: which
within-model correlation, how many models a study needs, and which rule for the words tied at the
parallel-analysis cap. Notebook ``07_method_validation`` narrates ``stages.validation.run(run)``; the
planted world and the grids are the run's ``simulation`` section (:mod:`valuelex.methods.simulation`), the analysis
its ``efa`` section.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from ..core.display import Facts, Report
from ..methods import simulation
from ..plots import simulation as simulation_plots
from ..plots.efa import plot_scree
from ..psychometrics import efa
from .base import Figures, Output, Run, Stage

STAGE = Stage(
    number="07",
    name="validation",
    notebook="07_method_validation",
    inputs=(),  # simulated data only: it reads no other notebook's output
    outputs=(
        Output("sim_scree_paper_scale", "figure"),
        Output("sim_choices", "table"),
        Output("sim_recovery", "table"),
        Output("sim_recovery_vs_respondents", "figure"),
        Output("sim_word_selection", "table"),
        Output("sim_word_selection", "figure"),
        Output("sim_within_correlation_choice", "table"),
        Output("sim_models_grid", "table"),
        Output("sim_models_needed", "table"),
        Output("sim_models_needed", "figure"),
        Output("sim_tie_rule", "table"),
    ),
)

#: The correlation and parallel-analysis choices compared on the paper-scale panel (the first: the defaults;
#: then psych's normal null, Horn's principal-component eigenvalues, and phi with either null).
CHOICES = (
    {"correlation": "tetrachoric", "parallel_null": "permute", "parallel_eigenvalues": "fa"},
    {"correlation": "tetrachoric", "parallel_null": "normal", "parallel_eigenvalues": "fa"},
    {"correlation": "tetrachoric", "parallel_null": "permute", "parallel_eigenvalues": "pc"},
    {"correlation": "pearson", "parallel_null": "permute", "parallel_eigenvalues": "fa"},
    {"correlation": "pearson", "parallel_null": "normal", "parallel_eigenvalues": "fa"},
)


@dataclass(repr=False)
class ValidationResult(Report):
    """What stage 07 computed. Part 1: the paper-scale panel (``paper_scale``, ``choices``), recovery by number
    of respondents (``recovery``, ``needed``) and by word-selection rule (``word_selection()``); part 2: the
    within-model correlation (``choice``), the models x respondents grid (``grid``) and the tie rule
    (``tie_rules()``, ``tie_note()``). Figures are ``figures.<name>``."""

    grids: str  # where the simulation grids ran (simulation.backend)
    structure: simulation.PlantedStructure  # the strong condition, the one every study but the curve uses
    data: pd.DataFrame  # one simulated panel at the paper's scale (respondents x words)
    analysis: efa.Analysis  # notebook 03's pipeline on it
    paper_scale: Facts  # its recovery scores
    choices: pd.DataFrame  # other correlation and null choices on the same panel
    curve: pd.DataFrame  # one row per (condition, size, replication)
    recovery: pd.DataFrame  # the curve summarised per condition and size
    needed: Facts  # respondents needed per condition
    word_study: pd.DataFrame  # one row per (size, replication, word-selection rule)
    choice: simulation.CorrelationChoice
    grid: simulation.ModelGrid
    ties: pd.DataFrame  # one row per (shape, replication, tie rule, level)
    parallel_ties: str  # the run's tie rule (efa.parallel_ties)
    figures: Figures  # scree, recovery, word_selection, models_needed
    n_respondents: int
    n_words: int

    title = "Method validation by simulation"

    def panel_note(self) -> str:
        """Where the grids run, and the shape of the paper-scale panel."""
        return (
            f"simulation grids: {self.grids}\n"
            f"{self.data.shape[0]} respondents x {self.data.shape[1]} words; a respondent uses "
            f"{self.data.sum(axis=1).mean():.1f} words on average\n"
            f"words used by < 5% of respondents: {int((self.data.mean() < 0.05).sum())}"
        )

    def word_selection(self, timings: bool = False) -> pd.DataFrame:
        """Per size and word-selection rule (the saved table); with ``timings``, CPU seconds per analysis
        (shown, never saved)."""
        return simulation.summarise_word_selection(self.word_study, timings=timings)

    def tie_rules(self, timings: bool = False) -> pd.DataFrame:
        """Per shape, level and tie rule (the saved table); with ``timings``, CPU seconds per panel (shown,
        never saved)."""
        return simulation.summarise_tie_rules(self.ties, timings=timings)

    @property
    def within_right(self) -> pd.Series:
        """Share of panels whose within-model analysis found the planted count, per tie rule."""
        return self.ties[self.ties["level"] == "within"].groupby("ties")["factor_count_right"].mean()

    @property
    def favoured(self) -> str:
        """The tie rule the simulation favours (the run's own when the rules draw)."""
        within_right = self.within_right
        return within_right.idxmax() if within_right.nunique() > 1 else self.parallel_ties

    def tie_note(self) -> str:
        return (
            "planted count found within models: "
            + ", ".join(f"ties {rule}d {share:.0%}" for rule, share in self.within_right.items())
            + f"; the simulation favours {self.favoured!r}, the run uses {self.parallel_ties!r}"
        )

    def sections(self) -> list[tuple[str, Any]]:
        return [
            ("", self.panel_note()),
            ("At the paper's scale", self.paper_scale),
            ("Correlation and null choices on the same panel", self.choices),
            ("Recovery by number of respondents", self.recovery),
            ("", str(self.needed)),
            ("Which words to keep", self.word_selection()),
            ("Which within-model correlation", self.choice.summary()),
            ("Models needed", self.grid.models_needed()),
            ("Words tied at the cap", self.tie_rules()),
            ("", self.tie_note()),
        ]

    def metrics(self) -> dict[str, Any]:
        paper_scale, grid = self.paper_scale, self.grid
        return {
            "paper_scale_factors_found": paper_scale["n_factors_found"],
            "paper_scale_factor_count_right": paper_scale["factor_count_right"],
            "paper_scale_congruence": [
                round(paper_scale[f"congruence_{f}"], 3) for f in self.structure.loadings.columns
            ],
            "paper_scale_words_used": paper_scale["words_used"],
            "paper_scale_words_counted": len(self.analysis.parallel.observed),
            "respondents_needed": self.needed,
            "recovery": self.recovery.round(3).to_dict(orient="records"),
            "sim_respondents": self.n_respondents,
            "sim_words": self.n_words,
            "word_selection": self.word_selection().round(3).to_dict(orient="records"),
            "tie_rule": self.tie_rules().round(3).to_dict(orient="records"),
            "within_correlation_choice": self.choice.metrics(),
            "model_grid_cells": int(grid.summary()[["models", "per_model"]].drop_duplicates().shape[0]),
            "model_grid": grid.metrics(),
            "models_needed": grid.models_needed().to_dict(orient="records"),
            "model_grid_paper_cell": [int(v) for v in grid.paper_panel()[["models", "per_model"]].iloc[0]],
        }


def run(run: Run) -> ValidationResult:
    """Plant, simulate, analyse and score every study of notebook 07; save the stage's declared outputs."""
    settings = run.settings
    sim = settings.simulation
    # notebook 03's EFA settings, with the simulation's own number of null data sets per parallel analysis
    sim_efa = dataclasses.replace(settings.efa, parallel_iter=sim.parallel_iter, seed=sim.seed)
    grid_efa = dataclasses.replace(settings.efa, parallel_iter=sim.model_grid_parallel_iter)
    grids = simulation.GridExecutor(sim).start()  # where the grids run: loky, or Dask (simulation.backend)
    try:
        where = grids.describe()
        figures = Figures()

        # 1. the planted world, and one panel at the paper's scale through notebook 03's pipeline
        structures = {
            name: simulation.planted_structure(
                n_words=sim.n_words, loading_range=tuple(rng), zipf_exponent=sim.zipf_exponent, seed=sim.seed
            )
            for name, rng in sim.conditions.items()
        }
        strong = structures["strong"]
        data = simulation.simulate_incidence(strong, sim.n_respondents, seed=sim.seed)
        analysis = efa.EFA(sim_efa).fit(data)
        paper_scale = simulation.recovery_scores(strong, analysis.result)
        figures["scree"] = plot_scree(analysis.parallel)
        run.save_figure(figures["scree"], "sim_scree_paper_scale")

        # 2. the alternatives on the same panel
        rows = [{**c, **simulation.recover(strong, data, dataclasses.replace(sim_efa, **c))} for c in CHOICES]
        scores = ["n_factors_found", "min_congruence", "min_congruence_true_k", "word_assignment_accuracy"]
        choices = pd.DataFrame(rows)[[*CHOICES[0], *scores]]
        run.save_table(choices, "sim_choices")

        # 3. how many respondents are needed
        curve = simulation.recovery_study(structures, sim_efa, sim)
        summary = simulation.summarise_curve(curve)
        needed = simulation.respondents_needed(summary)
        run.save_table(summary, "sim_recovery")
        figures["recovery"] = simulation_plots.plot_recovery(curve)
        run.save_figure(figures["recovery"], "sim_recovery_vs_respondents")

        # 4. which words to keep
        word_study = simulation.word_selection_study(strong, sim_efa, sim)
        run.save_table(simulation.summarise_word_selection(word_study), "sim_word_selection")
        figures["word_selection"] = simulation_plots.plot_word_selection(word_study)
        run.save_figure(figures["word_selection"], "sim_word_selection")

        # part 2. 5. which within-model correlation for 0/1 words
        choice = simulation.compare_within_correlations(strong, grid_efa, sim)
        run.save_table(choice.summary(), "sim_within_correlation_choice")

        # 6. the grid: models x respondents per model, pooled and within models
        grid = simulation.model_count_grid(strong, grid_efa, sim)
        run.save_table(grid.summary(), "sim_models_grid")
        run.save_table(grid.models_needed(), "sim_models_needed")
        figures["models_needed"] = simulation_plots.plot_model_grid(grid)
        run.save_figure(figures["models_needed"], "sim_models_needed")

        # 7. words tied at the parallel-analysis cap: all counted, or none
        ties = simulation.tie_rule_study(strong, sim_efa, sim)
        run.save_table(simulation.summarise_tie_rules(ties), "sim_tie_rule")
    finally:
        grids.close()

    for fig in figures.values():  # shown where the notebook names them
        plt.close(fig)
    return ValidationResult(
        grids=where, structure=strong, data=data, analysis=analysis, paper_scale=paper_scale, choices=choices,
        curve=curve, recovery=summary, needed=needed, word_study=word_study, choice=choice, grid=grid, ties=ties,
        parallel_ties=settings.efa.parallel_ties, figures=figures, n_respondents=sim.n_respondents,
        n_words=sim.n_words,
    )  # fmt: skip
