"""Stage 04, confirmatory factor analysis (the paper reports none; ours): does the taxonomy's structure
(3 dimensions, 6 sub-dimensions, 6 under 3) fit the word co-occurrence data, does the EFA's model, and
do they beat a one-factor baseline on the same words? Notebook ``04_cfa`` narrates
``stages.cfa.run(run)``; the settings are the run's ``cfa`` section, and the word filter (and, with a
held-out split, the EFA re-derived on one half) the run's ``efa`` section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from .. import lexicon
from ..core.display import Report
from ..instruments.taxonomy import load_taxonomy
from ..plots.cfa import plot_fit_comparison
from ..psychometrics import cfa, efa
from .base import Figures, Output, Run, Stage
from .lexicon import INCIDENCE

STAGE = Stage(
    number="04",
    name="cfa",
    notebook="04_cfa",
    # the incidence matrix of the run's efa.unit and efa.coding; notebook 03's factors without a held-out split
    inputs=(*(f"{name}.csv" for name in INCIDENCE), "efa_word_factors.csv"),
    outputs=(
        Output("cfa_markers", "table"),
        Output("cfa_model_comparison", "table"),
        Output("cfa_fit_comparison", "figure"),
        Output("cfa_loadings", "data"),
    ),
)


@dataclass(repr=False)
class CFAStageResult(Report):
    """What stage 04 computed: the taxonomy's markers, the models and their fits (``fits``, in the order of
    ``table``: the three taxonomy models, the EFA-derived one, the two one-factor baselines), the comparison
    table, the loadings, the figure, and the sentences a reader needs beside them."""

    unit: str  # what a row of the incidence matrix is (efa.unit)
    n_units: int  # units in the incidence matrix (before a held-out split)
    n_words: int  # words in the incidence matrix (before the EFA's word filter)
    split: bool  # a held-out split: the EFA model re-derived on one half, every model confirmed on the other
    sample_note: str
    data: pd.DataFrame  # the confirmation units x the words the EFA's filter keeps
    markers: pd.DataFrame  # the taxonomy's example words, found in the lexicon and usable
    specs: list[cfa.ModelSpec]
    efa_spec: cfa.ModelSpec  # the EFA-derived model (one of specs)
    fits: list[cfa.CFAFit]
    table: pd.DataFrame  # figures/cfa_model_comparison.csv
    loadings: pd.DataFrame  # data/processed/cfa_loadings.csv
    figures: Figures  # fit_comparison
    estimator: str

    title = "Confirmatory factor analysis of the taxonomy"

    @property
    def comparison(self) -> pd.DataFrame:
        """The comparison table without its notes (printed apart: :meth:`model_notes`)."""
        return self.table.drop(columns=["notes"])

    @property
    def fitted(self) -> pd.DataFrame:
        """The rows of the models that were fitted (not left out as not identified)."""
        return self.table[~self.table["notes"].str.startswith("not fitted")]

    @property
    def n_adequate(self) -> bool:
        """Every fitted model has enough units by our rules of thumb."""
        return bool(self.fitted["N_adequate"].all()) if len(self.fitted) else False

    def units_note(self) -> str:
        return f"{self.n_units} {self.unit}s x {self.n_words} words; held-out split: {self.split}"

    def markers_note(self) -> str:
        return (
            f"{int(self.markers['present'].sum())} of {len(self.markers)} example words are in the lexicon, "
            f"{int(self.markers['usable'].sum())} usable"
        )

    def model_notes(self) -> str:
        """Each model's notes (why it is not estimable, what was left out), one line per model that has any."""
        return "\n".join(f"{row.model}: {row.notes}" for row in self.table.itertuples() if row.notes)

    def verdict(self) -> str:
        """The sample, whether N is adequate, and each model's status, stated plainly."""
        lines = [
            self.sample_note,
            f"N = {len(self.data)}: "
            + (
                "adequate for these models by our rules of thumb."
                if self.n_adequate
                else "TOO SMALL for a stable CFA of these models; the indices below are indicative only."
            ),
        ]
        for fit in self.fits:
            if not fit.estimable:
                status = fit.status()
            else:
                status = "meets Hu & Bentler's cut-offs" if fit.good_fit() else "does not meet Hu & Bentler's cut-offs"
            lines.append(f"- {fit.name} ({fit.estimator}): {status}")
        return "\n".join(lines)

    def value(self, model: str, column: str) -> float | None:
        """One model's index from the table, at 4 decimals (None when withheld or the model is absent)."""
        rows = self.table.loc[self.table["model"] == model, column]
        return None if rows.empty or pd.isna(rows.iloc[0]) else round(float(rows.iloc[0]), 4)

    def sections(self) -> list[tuple[str, Any]]:
        return [
            ("", f"{self.units_note()}\n{self.markers_note()}"),
            ("Models", self.comparison),
            ("Verdict", self.verdict()),
        ]

    def metrics(self) -> dict[str, Any]:
        return {
            "cfa_units": len(self.data),
            "estimator": self.estimator,
            "held_out_split": self.split,
            "markers_present": int(self.markers["present"].sum()),
            "markers_usable": int(self.markers["usable"].sum()),
            "models_fitted": int(len(self.fitted)),
            "models_estimable": self.table[self.table["estimable"]]["model"].tolist(),
            "n_adequate": self.n_adequate,
            "good_fit_models": self.table.loc[self.table["good_fit_HB"], "model"].tolist(),
            "cfi_taxonomy_3": self.value("taxonomy: 3 dimensions", "CFI"),
            "rmsea_taxonomy_3": self.value("taxonomy: 3 dimensions", "RMSEA"),
            "srmr_taxonomy_3": self.value("taxonomy: 3 dimensions", "SRMR"),
            "cfi_one_factor_taxonomy": self.value("one factor (taxonomy markers)", "CFI"),
            "cfi_efa": self.value(self.efa_spec.name, "CFI"),
            "rmsea_efa": self.value(self.efa_spec.name, "RMSEA"),
            "srmr_efa": self.value(self.efa_spec.name, "SRMR"),
            "model_status": {fit.name: fit.status() for fit in self.fits},
        }


def run(run: Run) -> CFAStageResult:
    """Find the taxonomy's markers, fit the taxonomy, EFA and one-factor models, save the declared outputs."""
    settings, folders = run.settings, run.folders
    incidence = lexicon.load_incidence(unit=settings.efa.unit, coding=settings.efa.coding, folder=folders.processed)
    n_units = len(incidence)
    split = (n_units >= 2 * cfa.MIN_N) if settings.cfa.holdout == "auto" else bool(settings.cfa.holdout)

    # 1. the units that confirm, and the EFA model to confirm (re-derived on the other half, or notebook 03's)
    if split:
        explore, confirm = cfa.split_units(incidence, fraction=settings.cfa.holdout_fraction, seed=settings.cfa.seed)
        derived = efa.EFA(settings.efa).fit(explore)  # notebook 03's choices, on the EFA half
        word_factors = efa.word_factors(derived.result, settings.efa.cutoff)
        sample_note = f"EFA model derived on {len(explore)} units, all models confirmed on the other {len(confirm)}"
    else:
        confirm = incidence
        word_factors = pd.read_csv(folders.processed / "efa_word_factors.csv")
        sample_note = (
            f"no held-out split ({n_units} units): every model is fitted on all units, so the "
            "EFA-derived model is tested on the data it came from (its fit is optimistic)"
        )

    # 2. the taxonomy's markers among the words the EFA's filter keeps
    data = efa.prepare_matrix(
        confirm,
        coding=settings.efa.coding,
        min_frequency=settings.efa.min_frequency,
        min_units=settings.efa.min_units,
        max_words=None,
    ).data
    markers = cfa.taxonomy_markers(load_taxonomy(), incidence)
    markers["usable"] = markers["word"].isin(data.columns)
    run.save_table(markers, "cfa_markers")

    # 3. the models, their fits and the comparison
    specs = cfa.taxonomy_models(markers[markers["usable"]], data)
    efa_spec = cfa.efa_model(word_factors, data, max_indicators=settings.cfa.max_indicators)
    specs += [
        efa_spec,
        cfa.one_factor_model(specs[0].words, "one factor (taxonomy markers)"),
        cfa.one_factor_model(efa_spec.words, "one factor (EFA words)"),
    ]
    fits = [cfa.fit_cfa(s, data, estimator=settings.cfa.estimator) for s in specs]
    table = cfa.comparison_table(fits)
    run.save_table(table, "cfa_model_comparison")

    figures = Figures()
    figures["fit_comparison"] = plot_fit_comparison(table)
    run.save_figure(figures["fit_comparison"], "cfa_fit_comparison")
    loadings = pd.concat([cfa.loadings(f).assign(model=f.name) for f in fits], ignore_index=True)
    run.save_data(loadings, "cfa_loadings")
    for fig in figures.values():  # shown where the notebook names them
        plt.close(fig)
    return CFAStageResult(
        unit=settings.efa.unit, n_units=n_units, n_words=incidence.shape[1], split=split, sample_note=sample_note,
        data=data, markers=markers, specs=specs, efa_spec=efa_spec, fits=fits, table=table, loadings=loadings, figures=figures,
        estimator=settings.cfa.estimator,
    )  # fmt: skip
