"""Exploratory factor analysis of value-word co-occurrence (notebook 03).

Rows of the input are units (respondents or single responses), columns are lexicon words,
cells are 0/1 (a word occurs in the unit) or counts. The steps follow R's ``psych`` package,
which the tests use as the reference implementation (``tests/r/*.R``):

1. ``prepare_matrix``: drop rare, near-constant and duplicate words (reported), cap the number
   of words so that there are more units than words.
2. ``correlation_matrix``: Pearson/phi, tetrachoric (``psych::tetrachoric``) or, for counts,
   polychoric (lavaan's ``lavCor``, :mod:`valuelex.psychometrics.polychoric`), smoothed like ``psych::cor.smooth``
   when it is not positive definite (reported).
3. ``adequacy``: KMO overall and per word (``psych::KMO``), Bartlett's test, determinant.
4. ``parallel_analysis``: ``psych::fa.parallel(fa="fa")``: eigenvalues of the reduced
   correlation matrix against those of null data.
5. ``fit_efa``: minres or ML extraction with factor_analyzer's objective and normalisation
   plus the analytic gradient ``psych`` uses, rotation with factor_analyzer's ``Rotator``;
   loadings signed and ordered as ``psych::fa`` does, fit indices as ``psych::fa`` reports them.
6. ``bootstrap_stability``: refit on bootstrap samples of units, match factors (Hungarian
   algorithm on Tucker congruence), report congruence with percentile intervals.
"""

from __future__ import annotations

from .base import (
    CORRELATIONS,
    DEFAULT_CORRECT,
    DEFAULT_CUTOFF,
    DEFAULT_MIN_FREQUENCY,
    DEFAULT_MIN_UNITS,
    DEFAULT_UNITS_PER_COUNTED_WORD,
    DEFAULT_UNITS_PER_WORD,
    EXTRACTIONS,
    MIN_WORDS_PER_FACTOR,
    OBLIQUE,
    PARALLEL_TIES,
    PSI_BOUNDS,
    ROTATIONS,
    EFAInputError,
    SingularMatrixError,
)
from .correlation import (
    Adequacy,
    CorrelationResult,
    PreparedMatrix,
    TetrachoricResult,
    _as_array,
    adequacy,
    binary_coding,
    bivariate_normal_cdf,
    bivariate_normal_pdf,
    check_sample_size,
    correlation_matrix,
    determinant,
    prepare_matrix,
    smooth_correlation,
    tetrachoric,
)
from .count import (
    ParallelResult,
    choose_n_factors,
    factor_eigenvalues,
    parallel_analysis,
    parallel_count,
    parallel_words,
    tied_at_cap,
)
from .estimator import EFA, Analysis
from .settings import EFASettings
from .solution import (
    EFAResult,
    _minres_objective,
    _ml_objective,
    _rmsea_interval,
    extract,
    factor_model_association,
    fit_efa,
    fit_indices,
    loadings_table,
    max_factors,
    rotate,
    top_words,
    word_factors,
)
from .stability import BootstrapResult, align, bootstrap_refits, bootstrap_stability, congruence
from .within import (
    DEFAULT_WITHIN_CORRELATION,
    MAX_ABS_CORRELATION,
    SOLVER_ITERATIONS,
    SOLVER_TOLERANCE,
    WITHIN_CORRELATIONS,
    WithinTetrachoric,
    between_correlation,
    bivariate_normal_excess,
    pooled_tetrachoric,
    prepare_within,
    raw_within_correlation,
    within_bootstrap,
    within_correlation,
    within_parallel_analysis,
    within_tetrachoric,
)

__all__ = [
    "CORRELATIONS",
    "EXTRACTIONS",
    "ROTATIONS",
    "PARALLEL_TIES",
    "OBLIQUE",
    "DEFAULT_MIN_FREQUENCY",
    "DEFAULT_MIN_UNITS",
    "DEFAULT_UNITS_PER_WORD",
    "DEFAULT_UNITS_PER_COUNTED_WORD",
    "DEFAULT_CUTOFF",
    "MIN_WORDS_PER_FACTOR",
    "DEFAULT_CORRECT",
    "PSI_BOUNDS",
    "EFAInputError",
    "SingularMatrixError",
    "PreparedMatrix",
    "binary_coding",
    "prepare_matrix",
    "bivariate_normal_cdf",
    "bivariate_normal_pdf",
    "TetrachoricResult",
    "tetrachoric",
    "smooth_correlation",
    "CorrelationResult",
    "check_sample_size",
    "correlation_matrix",
    "Adequacy",
    "_as_array",
    "adequacy",
    "determinant",
    "_minres_objective",
    "_ml_objective",
    "extract",
    "rotate",
    "_rmsea_interval",
    "fit_indices",
    "EFAResult",
    "max_factors",
    "fit_efa",
    "word_factors",
    "loadings_table",
    "top_words",
    "factor_model_association",
    "factor_eigenvalues",
    "ParallelResult",
    "parallel_words",
    "tied_at_cap",
    "parallel_analysis",
    "parallel_count",
    "choose_n_factors",
    "congruence",
    "align",
    "BootstrapResult",
    "bootstrap_stability",
    "bootstrap_refits",
    "WITHIN_CORRELATIONS",
    "DEFAULT_WITHIN_CORRELATION",
    "MAX_ABS_CORRELATION",
    "SOLVER_ITERATIONS",
    "SOLVER_TOLERANCE",
    "WithinTetrachoric",
    "within_tetrachoric",
    "bivariate_normal_excess",
    "pooled_tetrachoric",
    "within_correlation",
    "raw_within_correlation",
    "between_correlation",
    "prepare_within",
    "within_parallel_analysis",
    "within_bootstrap",
    "Analysis",
    "EFA",
    "EFASettings",
]
