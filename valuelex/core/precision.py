"""Numbers at the precision they mean: how many digits each quantity is written with, how far two
runs may differ before it counts, and choices that do not hang on floating-point noise.

Floating-point sums depend on the CPU's BLAS kernels and thread counts, so a second machine gives
loadings that differ in the 6th significant digit and, on a flat likelihood surface (a Heywood
case), a chi-square that differs in the 4th. Every table this project writes therefore goes
through :func:`format_table`, which writes each float column with the digits of its quantity:

- A column's quantity comes from, in order: the caller's ``quantities`` (an explicit override),
  :data:`TABLE_QUANTITIES` (tables whose column names are data, e.g. factors ``F1``... or model
  names), :data:`COLUMN_QUANTITIES` (column names that say what they hold), else ``default``.
- Each quantity in :data:`QUANTITIES` has a number of decimals or significant digits (our choice,
  close to what psych and lavaan print) and the tolerance ``verify`` allows between the committed
  and a regenerated value: ``|now - committed| <= abs_tol + rel_tol * max(|now|, |committed|)``.
  Tolerances are at least one unit of the last written digit, because a value sitting on a rounding
  boundary can round either way on another machine. A quantity written with significant digits also
  has an absolute floor: a value near zero is often a difference of larger numbers (a contrast of
  similarities, a lower confidence bound), whose noise is absolute, so a purely relative tolerance
  would fail on it (0.0001308 -> 0.0001305 on another CPU, issue 18). Integers, booleans and text are
  always exact.
- ``VALUELEX_FULL_PRECISION=1`` writes every float with all its digits (shortest round-trip
  form), to see the noise itself.

Near-ties: :func:`choose` picks the best of several scores, but treats scores within
:data:`TIE_TOLERANCE` of the best as equal and then takes the first in a fixed order (the
categories' order), marking the row as a tie. A word whose nearest taxonomy dimension wins by
1e-5 is a tie, reported as one, and the same on every machine.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Scores (cosine similarities, loadings) closer than this to the best are tied with it. Our choice:
#: over 100x the largest difference we measured between BLAS kernels on a similarity margin computed
#: in float32 (6e-7; in float64, as semantic.py now computes them, 5e-16), and at the 4th decimal
#: that the tables print (benchmarks/bench_blas_reproducibility.py).
TIE_TOLERANCE = 1e-4

#: Environment variable: when set to 1, tables are written with every digit (to study the noise).
FULL_PRECISION_ENV = "VALUELEX_FULL_PRECISION"


@dataclass(frozen=True)
class Precision:
    """How one quantity is written and compared.

    ``digits`` decimals (``significant=False``) or significant digits (``significant=True``);
    ``digits=None`` writes the value as given (inputs such as a temperature) and compares it exactly.
    """

    digits: int | None
    significant: bool
    abs_tol: float
    rel_tol: float
    about: str

    def tolerance(self, committed: float, now: float) -> float:
        """The largest difference between two values of this quantity that is noise, not a change."""
        return self.abs_tol + self.rel_tol * max(abs(committed), abs(now))


# The quantities (our choices). Largest differences measured between OpenBLAS SkylakeX, Haswell and
# Sandybridge kernels with 1 or 2 threads (benchmarks/bench_blas_reproducibility.py, full precision):
# EFA loadings 8e-9; CFA estimates 2.8e-4 and chi-square 958.906 -> 958.806 (Heywood cases); fit
# indices 1.1e-4; bootstrap congruences 5e-9; similarities 1e-15; projective scores 1.4e-6 (float32
# embeddings in projective.py); p-values of chi-squares near 1000: 3% relative (abs. below 1e-55).
QUANTITIES: dict[str, Precision] = {
    "loading": Precision(3, False, 0.002, 0.0, "factor loadings, communalities, CFA estimates and SEs"),
    "correlation": Precision(3, False, 0.002, 0.0, "correlations between factors or scorers"),
    "congruence": Precision(3, False, 0.002, 0.0, "Tucker congruence coefficients"),
    "similarity": Precision(4, False, 2e-4, 0.0, "cosine similarities of embeddings and their margins"),
    "fit_index": Precision(3, False, 0.002, 0.0, "CFI, TLI, RMSEA (and CI), SRMR, RMSR, KMO, MSA"),
    "chi_square": Precision(2, False, 0.02, 1e-3, "chi-square statistics (a Heywood case moves the 4th digit)"),
    "p_value": Precision(3, True, 1e-3, 1e-2, "p-values (a difference below 0.001 changes no decision)"),
    "eigenvalue": Precision(3, False, 0.002, 1e-4, "eigenvalues, sums of squared loadings"),
    "statistic": Precision(2, False, 0.02, 1e-4, "test statistics (Mann-Whitney U, Kruskal-Wallis H)"),
    "index": Precision(3, False, 0.002, 0.0, "bounded indices: ARI, NMI, silhouette, eta squared, effect sizes"),
    "share": Precision(3, False, 0.002, 0.0, "proportions: shares, rates, accuracies, bootstrap stability"),
    "score": Precision(4, True, 1e-4, 2e-3, "projective scores (0-1 per case, 0-100 per model) and their CIs"),
    "coordinate": Precision(3, False, 0.002, 0.0, "2-D map coordinates (UMAP, t-SNE, PCA)"),
    "mean_count": Precision(2, False, 0.02, 0.0, "means and medians of counts"),
    "money": Precision(6, False, 2e-6, 1e-8, "costs in US dollars"),
    "integer": Precision(0, False, 0.0, 0.0, "whole numbers stored as floats (degrees of freedom)"),
    "setting": Precision(None, False, 0.0, 0.0, "inputs written as given: temperature, top_p, sizes, quantiles"),
    # default: 1e-5 absolute is 7x the largest absolute noise measured on any quantity near zero (1.4e-6,
    # projective scores from float32 embeddings) and far below the 4th digit of the indices and statistics
    # (0.005-100) that fall to it; a change of 1e-4 near zero is still caught.
    "default": Precision(4, True, 1e-5, 2e-3, "any other float: 4 significant digits"),
}

#: Column names that say what they hold (regular expressions, matched in order on the whole name).
COLUMN_QUANTITIES: tuple[tuple[str, str], ...] = (
    (r"temperature|top_p|params_b|quantile|seed", "setting"),
    (r"p|p_.*|.*_p|p_value", "p_value"),
    (r"chi2|.*_chi2|chisq", "chi_square"),
    (r"cfi|tli|rmsea.*|srmr|rmsr|kmo|msa", "fit_index"),
    (r"df|n|n_.*", "integer"),
    (r"loading|second_loading|communality|h2|u2|estimate|std_estimate|se|f\d+", "loading"),
    (r".*similarity|margin|.*_margin|threshold.*|.*_median|raw|contrast|.*_contrast", "similarity"),
    (r".*congruence.*|median|mean|lower|upper", "congruence"),
    (r"observed|simulated_.*|eigenvalue.*|ss_loadings", "eigenvalue"),
    (r"statistic", "statistic"),
    (r"score|judge_score|ci_low|ci_high|mean\[.*\]|overall|.*_sd", "score"),
    (r"ari|nmi|null_.*|silhouette|eta_squared|effect|complexity", "index"),
    (r".*share.*|.*_rate|.*accuracy|stability|factor_count_right|all_factors_.*", "share"),
    (r"x|y", "coordinate"),
    (r"median_.*|descriptors_per_.*|mean_.*", "mean_count"),
    (r"cost_usd|.*_usd", "money"),
)

#: Tables whose float columns are named by the data (factors, models, categories): quantity per
#: column pattern, ``*`` for every other float column of the table. Keyed by the file's stem.
TABLE_QUANTITIES: dict[str, dict[str, str]] = {
    "efa_variance": {"*": "eigenvalue"},
    "efa_factor_correlations": {"*": "correlation"},
    "efa_factors_by_model": {"eta_squared": "index", "*": "share"},
    "efa_loading_intervals": {"lower": "loading", "upper": "loading"},
    "efa_bootstrap_congruence": {"share_ge_.*": "share", "*": "congruence"},
    "semantic_taxonomy_assignment": {"stability": "share", "*": "similarity"},
    "semantic_taxonomy_assignment_sub": {"stability": "share", "*": "similarity"},
}


def full_precision() -> bool:
    """Whether ``VALUELEX_FULL_PRECISION=1`` asks for every digit."""
    return os.environ.get(FULL_PRECISION_ENV, "") == "1"


def quantity_of(table: str, column: str, quantities: dict[str, str] | None = None) -> str:
    """The quantity a float column holds: caller's override, the table's rule, the column's name, or default."""
    for rules in (quantities or {}, TABLE_QUANTITIES.get(table, {})):
        for pattern, quantity in rules.items():
            if pattern != "*" and re.fullmatch(pattern, str(column), flags=re.IGNORECASE):
                return quantity
        if "*" in rules:
            return rules["*"]
    for pattern, quantity in COLUMN_QUANTITIES:
        if re.fullmatch(pattern, str(column), flags=re.IGNORECASE):
            return quantity
    return "default"


def precision_of(table: str, column: str, quantities: dict[str, str] | None = None) -> Precision:
    """The :class:`Precision` of a column (see :func:`quantity_of`)."""
    name = quantity_of(table, column, quantities)
    if name not in QUANTITIES:
        raise ValueError(f"table {table}, column {column}: unknown quantity {name!r} (known: {', '.join(QUANTITIES)})")
    return QUANTITIES[name]


def format_value(value: float, precision: Precision) -> str:
    """One float as text at ``precision`` (NaN as an empty cell, no ``-0``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if precision.digits is None or full_precision():
        return repr(value)
    if precision.significant:
        if value == 0:
            return "0"
        rounded = float(f"{value:.{precision.digits - 1}e}")
        exponent = math.floor(math.log10(abs(rounded)))
        if -5 <= exponent < 15:
            text = f"{rounded:.{max(precision.digits - 1 - exponent, 0)}f}"
        else:
            text = f"{rounded:.{precision.digits - 1}e}"
    else:
        text = f"{value:.{precision.digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text


def format_table(df: pd.DataFrame, table: str, quantities: dict[str, str] | None = None) -> pd.DataFrame:
    """A copy of ``df`` whose float columns are text at their quantity's precision (other columns as they are)."""
    for column in quantities or {}:
        if column not in df.columns and not any(re.fullmatch(column, str(c)) for c in df.columns):
            raise ValueError(f"table {table}: quantities name column {column!r}, which the table does not have")
    out = df.copy()
    for column in df.columns:
        values = df[column]
        if not pd.api.types.is_float_dtype(values.dtype):
            continue
        precision = precision_of(table, column, quantities)
        out[column] = pd.Series([format_value(v, precision) for v in values], index=df.index, dtype=object)
    return out


# --------------------------------------------------------------------------- near-ties


@dataclass(frozen=True)
class Choice:
    """Per row of a score matrix: the chosen column, the runner-up, the margin, and whether it was a tie."""

    best: np.ndarray
    second: np.ndarray
    margin: np.ndarray
    tie: np.ndarray


def choose(scores: np.ndarray, tolerance: float = TIE_TOLERANCE) -> Choice:
    """The highest score of each row, with near-ties resolved by column order, not by noise.

    Columns whose score is within ``tolerance`` of the row's maximum are tied; the first of them
    (in column order) is chosen and ``tie`` is set. ``second`` is the best other column and ``margin``
    the highest score minus the second highest (a property of the scores, whichever column is chosen).
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ValueError(f"choose: need a 2-D score matrix with at least one column, got shape {scores.shape}")
    top = scores.max(axis=1, keepdims=True)
    within = scores >= top - tolerance
    best = within.argmax(axis=1)  # the first column within the tolerance
    rows = np.arange(len(scores))
    if scores.shape[1] == 1:
        return Choice(best, best, np.zeros(len(scores)), np.zeros(len(scores), dtype=bool))
    others = scores.copy()
    others[rows, best] = -np.inf
    second = np.argsort(-others, axis=1, kind="stable")[:, 0]
    ordered = -np.sort(-scores, axis=1)
    return Choice(best, second, ordered[:, 0] - ordered[:, 1], within.sum(axis=1) > 1)
