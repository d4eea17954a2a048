"""The exploratory factor analysis as one estimator: ``EFA(settings).fit(incidence, groups=None)``.

In the style of scikit-learn (and of ``psych::fa``, which takes every choice as an argument): the settings
object is given once, ``fit`` runs every step with it and returns an :class:`Analysis` that keeps the
settings that made it. The steps (``psych`` names in brackets):

1. the words that enter (:func:`~valuelex.psychometrics.efa.correlation.prepare_matrix`);
2. their correlations: ``settings.correlation`` over all units, or, given ``groups`` (the model that
   answered), ``settings.within_correlation`` *within* the groups (:mod:`~valuelex.psychometrics.efa.within`:
   words that never vary inside a group leave, and the counts are read as used or not);
3. sampling adequacy (``KMO``, ``cortest.bartlett``);
4. the number of factors: ``settings.n_factors``, or parallel analysis (``fa.parallel``) on the
   ``settings.parallel_max_words`` most frequent words, whose null data shuffle each word over all
   units, or inside each group when there are groups;
5. extraction and rotation (``fa``), reported with the cut-off ``settings.cutoff``.

Within-group analysis is an option of this one pipeline, not a second one: the two paths differ in
step 2 and in step 4's null, nowhere else. Every notebook, the simulation study and the stages call it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ...core.display import Facts, Report
from .base import SingularMatrixError
from .correlation import (
    Adequacy,
    CorrelationResult,
    PreparedMatrix,
    adequacy,
    binary_coding,
    correlation_matrix,
    prepare_matrix,
)
from .count import ParallelResult, choose_n_factors, parallel_analysis, parallel_words
from .settings import EFASettings
from .solution import EFAResult, fit_efa
from .within import _codes, prepare_within, within_correlation, within_parallel_analysis


@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class Analysis(Report):
    """Every step of one exploratory analysis, and the settings that made it."""

    settings: EFASettings
    prepared: PreparedMatrix
    correlation: CorrelationResult
    adequacy: Adequacy | None
    parallel: ParallelResult | None
    result: EFAResult
    notes: list[str]
    groups: int | None = None  # the number of groups of a within-group analysis; None when pooled

    @property
    def within(self) -> bool:
        return self.groups is not None

    @property
    def title(self) -> str:  # type: ignore[override]
        where = f"within {self.groups} groups" if self.within else "pooled"
        return f"Exploratory factor analysis ({where}): {self.result.n_factors} factor(s) from {self.prepared.n_words} words"

    def summary(self) -> Facts:
        return Facts(
            self.title,
            {
                "units": self.prepared.n_units,
                "words": self.prepared.n_words,
                "correlation": self.correlation.method,
                "smoothed": self.correlation.smoothed,
                "kmo": self.adequacy.kmo if self.adequacy is not None else float("nan"),
                "factors": self.result.n_factors,
                "counted_by": "parallel analysis" if self.parallel is not None else "the settings",
            },
        )

    def sections(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = [("", dict(self.summary()))]
        if self.notes:
            out.append(("Notes", "\n".join(self.notes)))
        return out + self.result.sections()

    def metrics(self) -> dict:
        return self.summary().metrics()


@dataclass(frozen=True)
class EFA:
    """The exploratory factor analysis with one settings object (the run's ``efa`` section)."""

    settings: EFASettings = field(default_factory=EFASettings)

    def fit(
        self,
        incidence: pd.DataFrame,
        groups: pd.Series | np.ndarray | list | None = None,
        *,
        prepared: PreparedMatrix | None = None,
    ) -> Analysis:
        """Analyse the units x words matrix ``incidence``; within ``groups`` (one label per unit) when given.

        ``prepared`` is a word selection made before (e.g. the pooled one, so that a within-group analysis
        keeps the pooled words); by default the words are chosen from ``incidence`` with the settings.
        """
        s = self.settings
        notes: list[str] = []
        n_groups = None
        with threadpool_limits(limits=1):  # small matrices: one BLAS thread is faster, and the machine is shared
            if prepared is None:
                prepared = prepare_matrix(incidence, s.coding, s.min_frequency, s.min_units, s.max_words)
            if groups is None:
                corr = correlation_matrix(prepared.data, s.correlation)
            else:
                if s.within_correlation != "rwg" and not np.isin(prepared.data.to_numpy(float), (0.0, 1.0)).all():
                    prepared = dataclasses.replace(prepared, data=binary_coding(prepared.data))
                    notes.append(
                        f"within-group {s.within_correlation} correlations are for 0/1 words: counts read as used or not"
                    )
                codes, labels = _codes(groups, prepared.n_units)
                n_groups = len(labels)
                prepared = prepare_within(prepared, codes)
                corr = within_correlation(prepared.data, codes, s.within_correlation)
            notes += corr.notes
            try:
                adequate = adequacy(corr)
            except SingularMatrixError as err:
                adequate = None
                notes.append(str(err))
            parallel = None
            if s.n_factors == "parallel":
                counted = prepared.data[parallel_words(prepared.data, s.parallel_max_words, s.parallel_ties)]
                if groups is None:
                    parallel = parallel_analysis(
                        counted,
                        s.correlation,
                        s.extraction,
                        s.parallel_iter,
                        s.parallel_quantile,
                        s.seed,
                        s.parallel_null,
                        eigenvalues=s.parallel_eigenvalues,
                    )
                else:
                    parallel = within_parallel_analysis(
                        counted, codes, s.within_correlation, s.extraction, s.parallel_iter, s.parallel_quantile, s.seed
                    )
            k, more = choose_n_factors(s.n_factors, parallel, prepared.n_words)
            result = fit_efa(corr, k, s)
        return Analysis(
            s, prepared, corr, adequate, parallel, result, list(dict.fromkeys(notes + more + result.notes)), n_groups
        )
