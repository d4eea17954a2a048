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

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from factor_analyzer import FactorAnalyzer
from factor_analyzer.rotator import Rotator
from scipy import optimize, stats
from scipy.special import owens_t
from threadpoolctl import threadpool_limits

from ...core.display import Facts, Report
from .. import polychoric
from .settings import EFASettings

CORRELATIONS = ("tetrachoric", "polychoric", "pearson")
EXTRACTIONS = ("minres", "ml")
ROTATIONS = ("oblimin", "promax", "varimax", "none")
#: How :func:`parallel_words` treats words tied at its cap: all counted, or none.
PARALLEL_TIES = ("include", "exclude")
OBLIQUE = ("oblimin", "promax")

#: A word must occur in at least this share of units (and in at most 1 minus it) to enter the analysis.
#: Tetrachoric and phi correlations of words that almost never (or almost always) occur rest on a
#: handful of units and are unstable; 5% is our choice (the paper does not say).
DEFAULT_MIN_FREQUENCY = 0.05
#: ... and in at least this many units, whatever the share.
DEFAULT_MIN_UNITS = 5
#: By default every word above the frequency floor is analysed (``max_words=None``): a cap on the
#: number of words keeps the most frequent ones, and a factor whose words happen to be rarer in a
#: sample loses most of them (notebook 07, "Which words to keep"). ``max_words="auto"``, the rule
#: before, keeps at most ``n_units // DEFAULT_UNITS_PER_WORD`` words (the most frequent),
#: so that the correlation matrix of the words can be estimated from the units (n > p).
DEFAULT_UNITS_PER_WORD = 2
#: Parallel analysis counts the factors on at most ``n_units // DEFAULT_UNITS_PER_COUNTED_WORD`` words, the
#: most frequent (``parallel_max_words="auto"``): with as many words as units it over-extracts on
#: simulated word data, with a third of that it finds the planted count (notebook 07). Our choice.
DEFAULT_UNITS_PER_COUNTED_WORD = 3
#: A word is assigned to its primary factor when its absolute loading reaches this cut-off
#: (a common convention; ours, the paper does not give one).
DEFAULT_CUTOFF = 0.30
#: ``choose_n_factors`` keeps at least this many words per factor (a factor needs three indicators to be
#: determined on its own); with few words it extracts fewer factors rather than an unstable solution.
MIN_WORDS_PER_FACTOR = 3
#: psych's correction for empty cells of a 2x2 table in tetrachoric correlations.
DEFAULT_CORRECT = 0.5
#: Uniquenesses are bounded like psych and factor_analyzer (0.005..1); one at the lower bound is a Heywood case.
PSI_BOUNDS = (0.005, 1.0)


class EFAInputError(ValueError):
    """The data cannot support the requested analysis (too few units or words, wrong coding...)."""


class SingularMatrixError(EFAInputError):
    """The correlation matrix is singular (or not positive definite) and smoothing is off."""


# ------------------------------------------------------------------------------------------
# 1. Preparing the incidence matrix
# ------------------------------------------------------------------------------------------
@dataclass
class PreparedMatrix:
    """The incidence matrix that enters the analysis, and what was dropped from it and why."""

    data: pd.DataFrame
    dropped: pd.DataFrame  # word, reason, units (number of units in which it occurs)
    n_words_in: int
    min_units: int
    max_words: int | None

    @property
    def n_units(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_words(self) -> int:
        return int(self.data.shape[1])

    def summary(self) -> Facts:
        reasons = self.dropped["reason"].str.split(":").str[0].value_counts().to_dict()
        return Facts(
            "Words prepared for the factor analysis",
            {
                "units": self.n_units,
                "words_in": self.n_words_in,
                "words_kept": self.n_words,
                "min_units": self.min_units,
                **{f"dropped_{k}": int(v) for k, v in sorted(reasons.items())},
            },
        )


def binary_coding(data: pd.DataFrame, source: str = "the incidence matrix") -> pd.DataFrame:
    """0/1 columns from counts or from two-valued items.

    A column containing 0 holds counts (or 0/1): 0 is absent, anything more is present. A column
    without 0 is recoded as ``psych::tetrachoric`` does, by subtracting its minimum: items coded 1/2
    (as in many psych data sets) become 0/1. Anything else cannot be read as binary (negative or
    fractional values, or more than two codes without a 0) and is refused, naming the columns.
    """
    values = data.to_numpy(float)
    bad = ~np.isfinite(values).all(axis=0) | (values < 0).any(axis=0) | (values != np.round(values)).any(axis=0)
    low = np.nanmin(values, axis=0) if len(values) else np.zeros(values.shape[1])
    shifted = values - np.where(low > 0, low, 0.0)
    bad |= (low > 0) & (shifted.max(axis=0, initial=0.0) > 1)
    if bad.any():
        columns = [str(c) for c in data.columns[bad]]
        examples = ", ".join(f"{c} ({', '.join(f'{v:g}' for v in np.unique(data[c])[:4])})" for c in columns[:3])
        raise EFAInputError(
            f"{source}: {len(columns)} column(s) cannot be coded as binary: {examples}. Binary coding reads counts "
            "(0 = absent) or two consecutive codes such as 1/2 (recoded 0/1, as psych does); use coding='counts' "
            "for other data"
        )
    return pd.DataFrame((shifted > 0).astype(float), index=data.index, columns=data.columns)


def prepare_matrix(
    incidence: pd.DataFrame,
    coding: str = "binary",
    min_frequency: float = DEFAULT_MIN_FREQUENCY,
    min_units: int = DEFAULT_MIN_UNITS,
    max_words: int | str | None = None,
) -> PreparedMatrix:
    """Filter the words of a units x words matrix before correlating them.

    Drops, in this order and with a reason each: words that never vary (zero variance), words
    occurring in fewer than ``max(min_units, min_frequency * n)`` units or in all but that many,
    words whose incidence column duplicates a more frequent word's (their correlation is 1 and the
    matrix singular), and, when ``max_words`` is set, the least frequent words beyond it
    (``"auto"``: at most ``n_units // 2`` words; the default, None, keeps every word above the floor). ``coding="binary"`` turns counts into 0/1.
    """
    if coding not in ("binary", "counts"):
        raise EFAInputError(f"coding must be 'binary' or 'counts', not {coding!r}")
    data = incidence.astype(float)
    if data.isna().any().any():
        raise EFAInputError("the incidence matrix has missing values; fill them (0 = word absent) first")
    if coding == "binary":
        data = binary_coding(data)
    n = data.shape[0]
    present = (data > 0).sum(axis=0)
    threshold = int(max(min_units, math.ceil(min_frequency * n)))
    dropped: list[tuple[str, str, int]] = []

    variance = data.var(axis=0, ddof=0)
    for word in data.columns[variance <= 0]:
        dropped.append((word, "zero variance", int(present[word])))
    keep = [w for w in data.columns if variance[w] > 0]

    for word in keep:
        if present[word] < threshold:
            dropped.append((word, f"rare: in fewer than {threshold} units", int(present[word])))
        elif present[word] > n - threshold:
            dropped.append((word, f"near-constant: in more than {n - threshold} units", int(present[word])))
    keep = [w for w in keep if threshold <= present[w] <= n - threshold]

    # The most frequent word of a set of identical columns is kept.
    keep = sorted(keep, key=lambda w: (-present[w], w))
    seen: dict[bytes, str] = {}
    unique = []
    for word in keep:
        key = data[word].to_numpy().tobytes()
        if key in seen:
            dropped.append((word, f"duplicate: same units as {seen[key]}", int(present[word])))
        else:
            seen[key] = word
            unique.append(word)
    keep = unique

    cap = n // DEFAULT_UNITS_PER_WORD if max_words == "auto" else max_words
    if cap is not None and len(keep) > cap:
        for word in keep[cap:]:
            dropped.append((word, f"max_words: beyond the {cap} most frequent", int(present[word])))
        keep = keep[:cap]

    keep = [w for w in incidence.columns if w in set(keep)]
    table = pd.DataFrame(dropped, columns=["word", "reason", "units"])
    return PreparedMatrix(data[keep], table, incidence.shape[1], threshold, cap)


# ------------------------------------------------------------------------------------------
# 2. Correlations
# ------------------------------------------------------------------------------------------
def bivariate_normal_cdf(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """P(X < h, Y < k) for standard bivariate normal (X, Y) with correlation ``rho`` (vectorised).

    Owen's T formula with scipy's ``owens_t``; |rho| must be below 1.
    """
    h, k, rho = np.broadcast_arrays(np.asarray(h, float), np.asarray(k, float), np.asarray(rho, float))
    tiny = 1e-12
    h = np.where(np.abs(h) < tiny, tiny, h)
    k = np.where(np.abs(k) < tiny, tiny, k)
    root = np.sqrt(1.0 - rho**2)
    t_h = owens_t(h, (k - rho * h) / (h * root))
    t_k = owens_t(k, (h - rho * k) / (k * root))
    beta = np.where(h * k > 0, 0.0, 0.5)
    return 0.5 * stats.norm.cdf(h) + 0.5 * stats.norm.cdf(k) - t_h - t_k - beta


def _bisect(fun, lo: np.ndarray, hi: np.ndarray, iterations: int = 60) -> np.ndarray:
    """Root of a vectorised function decreasing in its argument, by bisection."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        positive = fun(mid) > 0
        lo = np.where(positive, mid, lo)
        hi = np.where(positive, hi, mid)
    return 0.5 * (lo + hi)


def bivariate_normal_pdf(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Density of the standard bivariate normal at (h, k): the derivative of the CDF in ``rho``."""
    one = 1.0 - rho**2
    return np.exp(-(h**2 - 2 * rho * h * k + k**2) / (2 * one)) / (2 * np.pi * np.sqrt(one))


def _invert_bivariate_cdf(h: np.ndarray, k: np.ndarray, target: np.ndarray, iterations: int = 40) -> np.ndarray:
    """The rho in (-1, 1) with ``bivariate_normal_cdf(h, k, rho) == target`` (the CDF increases in rho).

    Newton steps kept inside a shrinking bracket (bisection when a step leaves it).
    """
    limit = 1.0 - 1e-9
    lo, hi = np.full_like(target, -limit), np.full_like(target, limit)
    rho = np.zeros_like(target)
    for _ in range(iterations):
        gap = bivariate_normal_cdf(h, k, rho) - target
        lo = np.where(gap < 0, rho, lo)
        hi = np.where(gap > 0, rho, hi)
        step = rho - gap / np.maximum(bivariate_normal_pdf(h, k, rho), 1e-300)
        outside = (step <= lo) | (step >= hi) | ~np.isfinite(step)
        new = np.where(outside, 0.5 * (lo + hi), step)
        if np.max(np.abs(new - rho)) < 1e-12:
            rho = new
            break
        rho = new
    return rho


@dataclass
class TetrachoricResult:
    rho: pd.DataFrame
    tau: pd.Series  # thresholds: -qnorm(share of units with the word)
    zero_cell_pairs: int  # pairs of words whose 2x2 table had an empty cell (corrected)


def tetrachoric(data: pd.DataFrame, correct: float = DEFAULT_CORRECT) -> TetrachoricResult:
    """Tetrachoric correlations of 0/1 columns, as ``psych::tetrachoric(x, correct=.5, smooth=FALSE)``.

    Per pair of words, the maximum-likelihood correlation of a bivariate normal cut at the words'
    global thresholds ``tau = -qnorm(mean)``. A 2x2 table with an empty cell has the empty cells
    replaced by ``correct`` (psych's correction). With fixed thresholds the likelihood depends on
    rho only through the probability of (0, 0), so we find that probability's ML value (a
    one-dimensional monotone equation) and invert the bivariate normal CDF, vectorised over pairs.
    """
    x = data.to_numpy(float)
    if not np.isin(x, (0.0, 1.0)).all():
        raise EFAInputError("tetrachoric correlations need 0/1 data (use coding='binary')")
    n, p = x.shape
    share = x.mean(axis=0)
    if np.any((share <= 0) | (share >= 1)):
        raise EFAInputError("every word must vary across units (drop zero-variance words first)")
    tau = -stats.norm.ppf(share)
    both = x.T @ x  # n11
    ones = x.sum(axis=0)
    iu = np.triu_indices(p, 1)
    n11 = both[iu]
    n10 = ones[iu[0]] - n11  # word i present, j absent
    n01 = ones[iu[1]] - n11
    n00 = n - n11 - n10 - n01
    table = np.stack([n00, n01, n10, n11]).astype(float)
    empty = table.min(axis=0) == 0
    if correct > 0:
        table[:, empty] = np.where(table[:, empty] == 0, correct, table[:, empty])
    n00, n01, n10, n11 = table
    a = stats.norm.cdf(tau[iu[0]])  # P(word i absent)
    b = stats.norm.cdf(tau[iu[1]])
    lo = np.maximum(0.0, a + b - 1.0)
    hi = np.minimum(a, b)
    eps = 1e-15

    def score(p00: np.ndarray) -> np.ndarray:  # derivative of the log-likelihood in P(0, 0)
        p01, p10, p11 = a - p00, b - p00, 1.0 - a - b + p00
        return (
            n00 / np.maximum(p00, eps)
            - n01 / np.maximum(p01, eps)
            - n10 / np.maximum(p10, eps)
            + n11 / np.maximum(p11, eps)
        )

    p00 = _bisect(score, lo, hi)
    r = _invert_bivariate_cdf(tau[iu[0]], tau[iu[1]], p00)
    mat = np.eye(p)
    mat[iu] = r
    mat[(iu[1], iu[0])] = r
    names = list(data.columns)
    return TetrachoricResult(
        pd.DataFrame(mat, index=names, columns=names), pd.Series(tau, index=names), int(empty.sum())
    )


def smooth_correlation(r: np.ndarray, eig_tol: float = 1e-12) -> tuple[np.ndarray, bool]:
    """``psych::cor.smooth``: if not positive definite, clip eigenvalues, rescale, back to a correlation.

    Returns the (possibly) smoothed matrix and whether smoothing was done.
    """
    values, vectors = np.linalg.eigh(r)
    if values.min() >= np.finfo(float).eps:
        return r, False
    values = np.where(values < eig_tol, 100 * eig_tol, values)
    values = values * r.shape[0] / values.sum()
    s = (vectors * values) @ vectors.T
    d = 1.0 / np.sqrt(np.diag(s))
    s = s * np.outer(d, d)
    np.fill_diagonal(s, 1.0)
    return (s + s.T) / 2, True


@dataclass
class CorrelationResult:
    matrix: pd.DataFrame
    method: str
    n_obs: int
    smoothed: bool
    min_eigenvalue: float  # smallest eigenvalue before smoothing
    zero_cell_pairs: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> Facts:
        return Facts(
            "The correlation matrix",
            {
                "correlation": self.method,
                "n_obs": self.n_obs,
                "words": self.matrix.shape[0],
                "smoothed": self.smoothed,
                "min_eigenvalue_before_smoothing": self.min_eigenvalue,
                "zero_cell_pairs": self.zero_cell_pairs,
            },
        )


def check_sample_size(n_obs: int, n_words: int, correlation: str = "pearson") -> str:
    """Raise a clear error when the words cannot be analysed; return a caveat (or "") when they can.

    With no more units than words, a Pearson (phi) matrix is singular (its rank is below the number of
    words) and is refused. A tetrachoric matrix is estimated pair by pair: it is not singular but not
    positive definite either, and is smoothed like ``psych::cor.smooth``; the loadings can then be
    estimated, the likelihood-based fit statistics cannot be read.
    """
    if n_words < 3:
        raise EFAInputError(
            f"only {n_words} words left after filtering: factor analysis needs at least 3 "
            "(lower min_frequency / min_units, or collect more responses)"
        )
    if n_obs > n_words:
        return ""
    if correlation in ("tetrachoric", "polychoric"):
        return (
            f"{n_obs} units for {n_words} words: the {correlation} matrix, estimated pair by pair, cannot be positive "
            "definite with as many words as units and is smoothed (psych::cor.smooth); loadings and parallel "
            "analysis use it, but psych's chi2, RMSEA and TLI and Bartlett's test say nothing about the model"
        )
    raise EFAInputError(
        f"{n_obs} units for {n_words} words: the {correlation} correlation matrix of more words than units is "
        "singular (its rank is below the number of words) and the factor model cannot be estimated. Use "
        "correlation='tetrachoric', keep fewer words (max_words) or raise min_frequency."
    )


def correlation_matrix(
    data: pd.DataFrame,
    method: str = "tetrachoric",
    correct: float = DEFAULT_CORRECT,
    smooth: bool = True,
) -> CorrelationResult:
    """Word-by-word correlations: ``tetrachoric``, ``polychoric`` or ``pearson`` (phi on 0/1 data).

    ``tetrachoric`` reads each word as a 0/1 cut of a normal propensity (``psych::tetrachoric``); on
    counts (more than two values) the same model has one cut per count, and the correlation used is
    the polychoric one (lavaan's ``lavCor``, :mod:`valuelex.psychometrics.polychoric`; a note says so). Pairs whose
    polychoric maximum lies on the boundary are named in a note. With ``smooth=True`` a matrix that
    is not positive definite (common for tetrachoric matrices of sparse data) is smoothed like
    ``psych::cor.smooth`` and ``smoothed`` is set; with ``smooth=False`` it raises
    :class:`SingularMatrixError` instead.
    """
    if method not in CORRELATIONS:
        raise EFAInputError(f"correlation must be one of {CORRELATIONS}, not {method!r}")
    notes = []
    if method == "tetrachoric" and not np.isin(data.to_numpy(float), (0.0, 1.0)).all():
        method = "polychoric"
        notes.append(
            "the words are counts, not 0/1: their latent correlation is the polychoric one (one threshold per "
            "count; the tetrachoric is its two-category case)"
        )
    n, p = data.shape
    caveat = check_sample_size(n, p, method)
    if (data.var(axis=0, ddof=0) <= 0).any():
        raise EFAInputError("some words do not vary across units: run prepare_matrix first")
    zero_cells = 0
    if method == "tetrachoric":
        tet = tetrachoric(data, correct=correct)
        r = tet.rho.to_numpy()
        zero_cells = tet.zero_cell_pairs
    elif method == "polychoric":
        try:
            poly = polychoric.polychoric_matrix(data)
        except polychoric.OrdinalDataError as err:
            raise EFAInputError(str(err)) from None
        r = poly.correlations
        zero_cells = len(poly.empty_cell_pairs)
        if poly.boundary_pairs:
            notes.append(poly.boundary_note())
    else:
        r = np.corrcoef(data.to_numpy(float), rowvar=False)
    min_eig = float(np.linalg.eigvalsh(r).min())
    smoothed = False
    if smooth:
        r, smoothed = smooth_correlation(r)
    elif min_eig < np.finfo(float).eps * p:
        raise SingularMatrixError(
            f"the {method} correlation matrix is not positive definite (smallest eigenvalue {min_eig:.3g}); "
            "use smooth=True (psych::cor.smooth) or drop collinear words"
        )
    notes += [caveat] if caveat else []
    if smoothed and not caveat:
        notes.append(
            f"the {method} matrix was not positive definite (smallest eigenvalue {min_eig:.3g}) and was smoothed "
            "(psych::cor.smooth): its determinant, hence Bartlett's test and psych's likelihood-based chi2, RMSEA "
            "and TLI, reflect the eigenvalues the smoothing set"
        )
    names = list(data.columns)
    frame = pd.DataFrame(r, index=names, columns=names)
    return CorrelationResult(frame, method, n, smoothed, min_eig, zero_cells, notes)


# ------------------------------------------------------------------------------------------
# 3. Sampling adequacy
# ------------------------------------------------------------------------------------------
@dataclass
class Adequacy(Report):
    """KMO, Bartlett's test and the determinant of a word correlation matrix, as psych reports them."""

    kmo: float
    msa: pd.Series  # per-word measure of sampling adequacy
    bartlett_chi2: float
    bartlett_df: int
    bartlett_p: float
    determinant: float  # as R's det(): 0 when it underflows
    log_determinant: float
    smoothed: bool = False
    notes: list[str] = field(default_factory=list)

    title = "Sampling adequacy (psych::KMO, psych::cortest.bartlett)"

    def summary(self) -> dict:
        return {
            "kmo": self.kmo,
            "msa_min": float(self.msa.min()),
            "words_msa_below_0.5": int((self.msa < 0.5).sum()),
            "bartlett_chi2": self.bartlett_chi2,
            "bartlett_df": self.bartlett_df,
            "bartlett_p": self.bartlett_p,
            "determinant": self.determinant,
            "log_determinant": self.log_determinant,
            "smoothed": self.smoothed,
        }

    def sections(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = [("", self.summary())]
        worst = self.msa.sort_values().head(10).rename_axis("word").reset_index()
        out.append(("Lowest measures of sampling adequacy", worst))
        if self.notes:
            out.append(("Notes", "\n".join(self.notes)))
        return out

    def metrics(self) -> dict:
        return self.summary()


def _as_array(corr: pd.DataFrame | np.ndarray) -> np.ndarray:
    return corr.to_numpy(float) if isinstance(corr, pd.DataFrame) else np.asarray(corr, float)


def adequacy(corr: pd.DataFrame | CorrelationResult, n_obs: int | None = None) -> Adequacy:
    """KMO (``psych::KMO``), Bartlett's sphericity test (``psych::cortest.bartlett``) and the determinant.

    Bartlett's chi2 is ``-log(det(R)) (n - 1 - (2p + 5) / 6)`` with R's ``det()``: for a smoothed matrix of
    many words the determinant underflows to 0 and the chi2 is infinite, as in psych. A smoothed
    matrix's determinant is set by the eigenvalues the smoothing put in (1e-10), so its Bartlett chi2,
    finite or not, only says what is already known: the matrix is far from an identity matrix.
    """
    smoothed = False
    if isinstance(corr, CorrelationResult):
        n_obs = corr.n_obs if n_obs is None else n_obs
        smoothed = corr.smoothed
        corr = corr.matrix
    if n_obs is None:
        raise EFAInputError("n_obs is needed for Bartlett's test")
    r = _as_array(corr)
    p = r.shape[0]
    sign, logdet = np.linalg.slogdet(r)
    if sign <= 0 or not np.isfinite(logdet):
        raise SingularMatrixError(
            "the correlation matrix is not positive definite: smooth it (psych::cor.smooth) or drop collinear words"
        )
    q = np.linalg.inv(r)
    d = 1.0 / np.sqrt(np.diag(q))
    partial = q * np.outer(d, d)
    np.fill_diagonal(partial, 0.0)
    r0 = r.copy()
    np.fill_diagonal(r0, 0.0)
    r2, q2 = (r0**2).sum(axis=0), (partial**2).sum(axis=0)
    kmo = float(r2.sum() / (r2.sum() + q2.sum()))
    names = list(corr.columns) if isinstance(corr, pd.DataFrame) else list(range(p))
    msa = pd.Series(r2 / (r2 + q2), index=names, name="msa")
    det = determinant(r)
    chi2 = -_log(det) * (n_obs - 1 - (2 * p + 5) / 6)
    df = p * (p - 1) // 2
    notes = []
    if smoothed:
        notes.append(
            "the matrix was smoothed: its determinant (and Bartlett's chi2) reflects the eigenvalues the smoothing "
            "set, not the data"
            + ("; the determinant underflows to 0, so the chi2 is infinite (as in psych)" if det == 0 else "")
        )
    return Adequacy(kmo, msa, chi2, df, float(stats.chi2.sf(chi2, df)), det, float(logdet), smoothed, notes)


# ------------------------------------------------------------------------------------------
# 4. Extraction (minres / ML) and rotation
# ------------------------------------------------------------------------------------------
def _minres_objective(psi: np.ndarray, corr: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """factor_analyzer's minres (ULS) objective and its gradient (psych's ``FAgr.minres``)."""
    values, vectors = np.linalg.eigh(corr - np.diag(psi))
    top = vectors[:, ::-1][:, :k] * np.sqrt(np.maximum(values[::-1][:k], 0))
    residual = corr - np.diag(psi) - top @ top.T
    return float(np.sum(residual**2)), -2.0 * np.diag(residual)


def _ml_objective(psi: np.ndarray, corr: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """factor_analyzer's ML objective and its gradient (psych's ``FAgr``)."""
    scale = 1.0 / np.sqrt(psi)
    values, vectors = np.linalg.eigh(corr * np.outer(scale, scale))
    values, vectors = values[::-1], vectors[:, ::-1]
    rest = values[k:]
    error = -(np.sum(np.log(rest) - rest) - k + corr.shape[0])
    load = np.sqrt(psi)[:, None] * vectors[:, :k] * np.sqrt(np.maximum(values[:k] - 1, 0))
    grad = (np.einsum("ij,ij->i", load, load) + psi - np.diag(corr)) / psi**2
    return float(error), grad


def _smc(corr: np.ndarray) -> np.ndarray:
    """Squared multiple correlations (starting communalities, like psych and factor_analyzer)."""
    try:
        inv = np.linalg.inv(corr)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(corr)
    return np.clip(1.0 - 1.0 / np.diag(inv), 0.0, 1.0)


def extract(corr: np.ndarray, n_factors: int, extraction: str = "minres") -> tuple[np.ndarray, np.ndarray, bool]:
    """Unrotated loadings, uniquenesses and convergence of a minres or ML factor extraction.

    factor_analyzer's objective functions and loading normalisation (``FactorAnalyzer._fit_*``,
    ``_normalize_*``) with an analytic gradient: factor_analyzer differentiates numerically, which
    takes p + 1 evaluations per step (2.3 s instead of 0.02 s for 123 words, ``benchmarks/bench_efa.py``),
    and parallel analysis and the bootstrap repeat the extraction hundreds of times.
    """
    if extraction not in EXTRACTIONS:
        raise EFAInputError(f"extraction must be one of {EXTRACTIONS}, not {extraction!r}")
    objective = _minres_objective if extraction == "minres" else _ml_objective
    start = np.clip(np.diag(corr) - _smc(corr), *PSI_BOUNDS)
    res = optimize.minimize(
        objective,
        start,
        args=(corr, n_factors),
        jac=True,
        method="L-BFGS-B",
        bounds=[PSI_BOUNDS] * corr.shape[0],
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
    )
    if extraction == "minres":
        loadings = FactorAnalyzer._normalize_uls(res.x, corr.copy(), n_factors)
    else:
        loadings = FactorAnalyzer._normalize_ml(res.x, corr.copy(), n_factors)
    return np.asarray(loadings), res.x, bool(res.success)


def rotate(loadings: np.ndarray, rotation: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Rotate with factor_analyzer's ``Rotator``, then sign and order the factors as ``psych::fa`` does.

    Each factor's loadings sum to a positive number; factors are ordered by the variance they
    account for (``diag(Phi L'L)`` for oblique rotations). Returns loadings and Phi (None if orthogonal).
    """
    if rotation not in ROTATIONS:
        raise EFAInputError(f"rotation must be one of {ROTATIONS}, not {rotation!r}")
    k = loadings.shape[1]
    phi = None
    if k > 1 and rotation != "none":
        rotator = Rotator(method=rotation)
        loadings = rotator.fit_transform(loadings)
        phi = rotator.phi_ if rotation in OBLIQUE else None
    signs = np.sign(loadings.sum(axis=0))
    signs[signs == 0] = 1
    loadings = loadings * signs
    if phi is not None:
        phi = phi * np.outer(signs, signs)
    if k > 1:
        explained = np.diag(phi @ loadings.T @ loadings) if phi is not None else (loadings**2).sum(axis=0)
        order = np.argsort(-explained, kind="stable")
        loadings = loadings[:, order]
        if phi is not None:
            phi = phi[np.ix_(order, order)]
    return loadings, phi


# ------------------------------------------------------------------------------------------
# 5. Fit indices (psych::fa's factor.stats)
# ------------------------------------------------------------------------------------------
def _rmsea_interval(chi2: float, dof: float, n_obs: int, level: float) -> tuple[float, float]:
    """psych's RMSEA confidence bounds from the noncentral chi-square (denominator n - 1); a bound on the
    wrong side of the RMSEA itself is reported as NaN, as psych does."""
    tail = (1 - level) / 2

    def bound(target: float) -> float:
        if stats.chi2.cdf(chi2, dof) <= target:
            return 0.0
        upper = max(n_obs, chi2) + 2 * n_obs
        try:
            lam = optimize.brentq(lambda x: stats.ncx2.cdf(chi2, dof, max(x, 1e-12)) - target, 0.0, upper)
        except ValueError:  # no root in psych's search interval: psych's try() gives NA
            return float("nan")
        return math.sqrt(lam / (n_obs - 1) / dof)

    return bound(1 - tail), bound(tail)


def determinant(matrix: np.ndarray) -> float:
    """The determinant as R's ``det()`` computes it: ``sign * exp(log|det|)``, so 0 when it underflows
    (log-determinant below about -745) and infinite when it overflows. psych's fit statistics and
    Bartlett's test use this value, and change their computation (or become infinite) when it is 0."""
    sign, logdet = np.linalg.slogdet(matrix)
    with np.errstate(over="ignore", under="ignore"):
        return float(sign * np.exp(logdet))


def _log(value: float) -> float:
    """R's ``log``: -Inf at 0, NaN below."""
    if value == 0:
        return -math.inf
    return math.log(value) if value > 0 else math.nan


def fit_indices(
    corr: np.ndarray, loadings: np.ndarray, phi: np.ndarray | None, n_obs: int, level: float = 0.90
) -> dict[str, float]:
    """EFA fit as ``psych::fa`` reports it (``fa.stats``): ML objective, chi2, dof, RMSEA (with CI), TLI,
    RMSR, BIC, and psych's empirical chi2 from the off-diagonal residuals.

    As in psych, the objective is ``tr(M^-1 R) - log det(M^-1 R) - p`` with both matrices smoothed
    (``cor.smooth``); when that determinant is 0 or infinite in double precision (a smoothed matrix of
    many words), the objective becomes the sum of squared residuals, and the null model's the sum of
    squared correlations (``fit_basis`` says which). Either way, after smoothing these chi-squares are
    not likelihood-ratio tests of the model: read the RMSR and the empirical chi2.
    """
    p, k = loadings.shape
    model = loadings @ (phi if phi is not None else np.eye(k)) @ loadings.T
    residual = corr - model
    rstar2 = float(np.sum(residual**2))  # with the diagonal, as psych's fall-back objective
    r2 = float(np.sum(corr**2))
    off = residual.copy()
    np.fill_diagonal(off, 0.0)
    rstar_off = float(np.sum(off**2))
    dof = p * (p - 1) / 2 - p * k + k * (k - 1) / 2
    implied = model.copy()
    np.fill_diagonal(implied, np.diag(corr))
    implied, _ = smooth_correlation(implied)
    r, _ = smooth_correlation(corr)
    m_inv_r = np.linalg.solve(implied, r)
    objective = float(np.trace(m_inv_r) - _log(determinant(m_inv_r)) - p)
    basis = "likelihood"
    if math.isinf(objective):
        objective, basis = rstar2, "residuals"
    f0 = float(np.trace(r) - _log(determinant(r)) - p)
    null_basis = "likelihood"
    if math.isinf(f0):
        f0, null_basis = r2, "correlations"
    nm = (n_obs - 1) - (2 * p + 5) / 6 - 2 * k / 3
    chi2 = objective * nm
    chi2 = max(chi2, 0.0) if not math.isnan(chi2) else chi2
    out = {
        "objective": objective,
        "chi2": chi2,
        "dof": dof,
        "p_value": float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan"),
        "null_chi2": f0 * ((n_obs - 1) - (2 * p + 5) / 6),
        "null_dof": p * (p - 1) / 2,
        "rmsr": float(np.sqrt(rstar_off / (p * (p - 1)))),
        "empirical_chi2": rstar_off * n_obs,
        "empirical_p_value": float(stats.chi2.sf(rstar_off * n_obs, dof)) if dof > 0 else float("nan"),
        "fit_basis": basis,
        "null_basis": null_basis,
    }
    if dof > 0 and np.isfinite(chi2):
        m0, mm = f0 * 2 / (p * (p - 1)), objective / dof
        out["tli"] = float((m0 - mm) / (m0 - 1 / nm))
        value = math.sqrt(max(chi2 / (dof * n_obs) - 1 / (n_obs - 1), 0.0))
        lower, upper = _rmsea_interval(chi2, dof, n_obs, level)
        out["rmsea"] = value
        out["rmsea_lower"] = lower if lower <= value else float("nan")
        out["rmsea_upper"] = upper if upper >= value else float("nan")
        out["bic"] = chi2 - dof * math.log(n_obs)
    else:
        out.update(tli=float("nan"), rmsea=float("nan"), rmsea_lower=float("nan"), rmsea_upper=float("nan"))
        out["bic"] = float("nan")
    return out


# ------------------------------------------------------------------------------------------
# 6. The EFA solution
# ------------------------------------------------------------------------------------------
@dataclass
class EFAResult(Report):
    """An exploratory factor solution, reported as ``psych::fa`` prints it."""

    loadings: pd.DataFrame  # words x F1..Fk (pattern matrix)
    phi: pd.DataFrame  # factor correlations (identity for orthogonal solutions)
    communalities: pd.Series
    uniquenesses: pd.Series
    complexity: pd.Series  # Hoffman's index
    variance: pd.DataFrame  # psych's Vaccounted
    fit: dict[str, float]
    n_obs: int
    extraction: str
    rotation: str
    converged: bool
    cutoff: float  # |loading| at which a word is assigned to its factor (the run's ``efa.cutoff``)
    heywood: list[str] = field(default_factory=list)  # words whose uniqueness hit the lower bound
    notes: list[str] = field(default_factory=list)

    @property
    def n_factors(self) -> int:
        return self.loadings.shape[1]

    @property
    def factors(self) -> list[str]:
        return list(self.loadings.columns)

    def summary(self) -> dict:
        return {
            "n_factors": self.n_factors,
            "extraction": self.extraction,
            "rotation": self.rotation,
            "converged": self.converged,
            "heywood_cases": len(self.heywood),
            **{k: self.fit[k] for k in ("rmsea", "rmsea_lower", "rmsea_upper", "tli", "rmsr", "chi2", "dof")},
            "variance_explained": float(self.variance.loc["Proportion Var"].sum()),
        }

    @property
    def title(self) -> str:  # type: ignore[override]
        return (
            f"EFA: {self.n_factors} factor(s), {self.extraction} extraction, {self.rotation} rotation, N = {self.n_obs}"
        )

    def sections(self) -> list[tuple[str, object]]:
        fit = {
            key: self.fit[key]
            for key in ("rmsr", "chi2", "dof", "p_value", "rmsea", "rmsea_lower", "rmsea_upper", "tli", "bic")
        }
        fit["empirical_chi2"] = self.fit["empirical_chi2"]
        fit["fit_basis"] = self.fit["fit_basis"]
        out: list[tuple[str, object]] = [
            (f"Loadings (pattern matrix; below the cut-off {self.cutoff:g} blank)", loadings_table(self)),
            ("Variance accounted for", self.variance),
        ]
        if self.n_factors > 1:
            out.append(("Factor correlations", self.phi))
        out.append(("Fit (psych::fa)", fit))
        if self.notes:
            out.append(("Notes", "\n".join(self.notes)))
        return out

    def metrics(self) -> dict:
        return {**self.summary(), "fit_basis": self.fit["fit_basis"]}


def max_factors(n_words: int) -> int:
    """The largest number of factors with positive degrees of freedom for ``n_words`` variables."""
    k = 0
    while (n_words - (k + 1)) ** 2 > n_words + (k + 1):
        k += 1
    return max(k, 1)


def fit_efa(
    corr: CorrelationResult | pd.DataFrame,
    n_factors: int,
    settings: EFASettings | None = None,
    n_obs: int | None = None,
    *,
    extraction: str | None = None,
    rotation: str | None = None,
    cutoff: float | None = None,
) -> EFAResult:
    """Extract and rotate ``n_factors`` factors from a word correlation matrix.

    ``settings`` (the run's ``efa`` settings; the defaults when None) give the extraction, the rotation
    (psych's default rotation is oblimin, factor_analyzer's promax) and the cut-off the result is
    reported with; ``extraction``, ``rotation`` and ``cutoff`` override them (a refit of another solution). More
    factors than the data can identify are reduced (noted).
    """
    settings = settings or EFASettings()
    extraction = extraction or settings.extraction
    rotation = rotation or settings.rotation
    cutoff = settings.cutoff if cutoff is None else cutoff
    notes = []
    smoothed = False
    method = "tetrachoric"  # a matrix given as it is: estimated pair by pair, say
    if isinstance(corr, CorrelationResult):
        n_obs = corr.n_obs if n_obs is None else n_obs
        smoothed = corr.smoothed
        method = "polychoric" if corr.method.endswith("polychoric") else method
        corr = corr.matrix
    if n_obs is None:
        raise EFAInputError("n_obs is needed for the fit indices")
    r = _as_array(corr)
    p = r.shape[0]
    caveat = check_sample_size(n_obs, p, method)  # a matrix given here is used as it is
    if caveat:
        notes.append(caveat)
    k = int(n_factors)
    if k < 1:
        notes.append(f"{k} factors requested: 1 used")
        k = 1
    if k > max_factors(p):
        notes.append(f"{k} factors cannot be identified from {p} words: {max_factors(p)} used")
        k = max_factors(p)
    unrotated, psi, converged = extract(r, k, extraction)
    loadings, phi = rotate(unrotated, rotation)
    names = list(corr.columns) if isinstance(corr, pd.DataFrame) else [f"V{i + 1}" for i in range(p)]
    factors = [f"F{i + 1}" for i in range(k)]
    phi_full = phi if phi is not None else np.eye(k)
    communality = np.diag(loadings @ phi_full @ loadings.T)
    ss = np.diag(phi_full @ loadings.T @ loadings)
    total = float(np.sum(np.diag(r)))
    variance = pd.DataFrame(
        [ss, ss / total, np.cumsum(ss / total), ss / ss.sum(), np.cumsum(ss / ss.sum())],
        index=["SS loadings", "Proportion Var", "Cumulative Var", "Proportion Explained", "Cumulative Proportion"],
        columns=factors,
    )
    complexity = (loadings**2).sum(axis=1) ** 2 / (loadings**4).sum(axis=1)
    heywood = [names[i] for i in np.flatnonzero(psi <= PSI_BOUNDS[0] + 1e-6)]
    if heywood:
        notes.append(f"Heywood case: uniqueness at the lower bound for {', '.join(heywood)}")
    if not converged:
        notes.append("the extraction did not converge")
    fit = fit_indices(r, loadings, phi, n_obs)
    if smoothed or fit["fit_basis"] != "likelihood":
        notes.append(_smoothed_fit_note(fit, smoothed))
    return EFAResult(
        loadings=pd.DataFrame(loadings, index=names, columns=factors),
        phi=pd.DataFrame(phi_full, index=factors, columns=factors),
        communalities=pd.Series(communality, index=names, name="h2"),
        uniquenesses=pd.Series(np.diag(r) - communality, index=names, name="u2"),
        complexity=pd.Series(complexity, index=names, name="complexity"),
        variance=variance,
        fit=fit,
        n_obs=int(n_obs),
        extraction=extraction,
        rotation=rotation,
        converged=converged,
        cutoff=cutoff,
        heywood=heywood,
        notes=notes,
    )


def _smoothed_fit_note(fit: dict, smoothed: bool) -> str:
    """What psych's chi2, RMSEA and TLI mean for a smoothed correlation matrix."""
    if fit["fit_basis"] == "residuals":
        basis = (
            "the determinant of the smoothed matrices is 0 in double precision, so (as psych::fa) chi2, RMSEA and "
            "TLI rest on the sum of squared residuals, a rough stand-in for a likelihood ratio"
        )
    else:
        basis = "chi2, RMSEA and TLI rest on a log-determinant dominated by the eigenvalues the smoothing set"
    start = "the correlation matrix was smoothed: " if smoothed else ""
    return f"{start}{basis}; they are not tests of the model. Read the RMSR (root mean square residual)."


def word_factors(result: EFAResult, cutoff: float | None = None) -> pd.DataFrame:
    """One row per word: its primary factor (largest absolute loading), that loading, and whether
    it reaches the cut-off (``assigned``; the result's own cut-off unless given), plus communality,
    complexity and the second-largest loading. Sorted like ``psych::fa.sort``: by factor, then by
    absolute loading."""
    cutoff = result.cutoff if cutoff is None else cutoff
    load = result.loadings
    primary = load.abs().idxmax(axis=1)
    value = np.array([load.at[w, f] for w, f in primary.items()])
    second = load.abs().apply(lambda row: np.sort(row.to_numpy())[-2] if len(row) > 1 else 0.0, axis=1)
    out = pd.DataFrame(
        {
            "word": load.index,
            "factor": primary.to_numpy(),
            "loading": value,
            "assigned": np.abs(value) >= cutoff,
            "second_loading": second.to_numpy(),
            "communality": result.communalities.to_numpy(),
            "complexity": result.complexity.to_numpy(),
        }
    )
    order = out["factor"].map({f: i for i, f in enumerate(result.factors)})
    out = out.assign(_order=order, _abs=out["loading"].abs()).sort_values(["_order", "_abs"], ascending=[True, False])
    return out.drop(columns=["_order", "_abs"]).reset_index(drop=True)


def loadings_table(result: EFAResult, cutoff: float | None = None) -> pd.DataFrame:
    """The sorted pattern matrix with h2, u2 and complexity; loadings below the cut-off (the result's own
    unless given) are blanked (NaN)."""
    cutoff = result.cutoff if cutoff is None else cutoff
    order = word_factors(result, cutoff)["word"]
    table = result.loadings.loc[order].copy()
    table = table.where(table.abs() >= cutoff)
    table["h2"] = result.communalities.loc[order]
    table["u2"] = result.uniquenesses.loc[order]
    table["complexity"] = result.complexity.loc[order]
    return table.rename_axis("word").reset_index()


def top_words(result: EFAResult, n: int = 10) -> pd.DataFrame:
    """The ``n`` words with the highest positive loadings on each factor (to name the factors)."""
    cols = {}
    for f in result.factors:
        best = result.loadings[f].sort_values(ascending=False).head(n)
        cols[f] = [f"{w} ({v:.2f})" for w, v in best.items()] + [""] * (n - len(best))
    return pd.DataFrame(cols, index=pd.RangeIndex(1, n + 1, name="rank"))


# ------------------------------------------------------------------------------------------
# 7. Number of factors: parallel analysis
# ------------------------------------------------------------------------------------------
def factor_eigenvalues(corr: np.ndarray, extraction: str = "minres") -> np.ndarray:
    """Eigenvalues of the reduced correlation matrix of a one-factor solution (``psych::fa(r, 1)$values``)."""
    loadings, _, _ = extract(corr, 1, extraction)
    reduced = corr.copy()
    np.fill_diagonal(reduced, (loadings**2).sum(axis=1))
    return np.sort(np.linalg.eigvalsh(reduced))[::-1]


@dataclass
class ParallelResult:
    observed: np.ndarray
    simulated_mean: np.ndarray
    simulated_quantile: np.ndarray
    n_factors: int  # leading observed eigenvalues above the simulated quantile
    n_iter: int
    quantile: float
    seed: int
    null: str
    correlation: str
    extraction: str
    eigenvalues: str = "fa"

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "factor": np.arange(1, len(self.observed) + 1),
                "observed": self.observed,
                "simulated_mean": self.simulated_mean,
                f"simulated_q{round(self.quantile * 100)}": self.simulated_quantile,
            }
        )

    def summary(self) -> Facts:
        return Facts(
            "Parallel analysis",
            {
                "parallel_n_factors": self.n_factors,
                "parallel_iterations": self.n_iter,
                "parallel_quantile": self.quantile,
                "parallel_seed": self.seed,
                "parallel_null": self.null,
                "parallel_eigenvalues": self.eigenvalues,
            },
        )


def parallel_words(data: pd.DataFrame, max_words: int | str | None, ties: str) -> list[str]:
    """The words parallel analysis counts factors on: the ``max_words`` most used (``"auto"``: at most
    ``n_units // DEFAULT_UNITS_PER_COUNTED_WORD``, and at least three); every word when None.

    Words used by as many units as the last word within the cap and the first beyond it are tied at the
    cap: ``ties="include"`` counts them all (more than ``max_words`` words), ``"exclude"`` none of them
    (fewer). Which word makes the cap never depends on its spelling. Returned in the data's order.
    """
    if ties not in PARALLEL_TIES:
        raise EFAInputError(f"parallel_ties must be one of {PARALLEL_TIES}, not {ties!r}")
    if max_words is None:
        return list(data.columns)
    cap = max(len(data) // DEFAULT_UNITS_PER_COUNTED_WORD if max_words == "auto" else int(max_words), 3)
    used = (data > 0).sum(axis=0)
    if cap >= len(used):
        return list(data.columns)
    ranked = np.sort(used.to_numpy())[::-1]
    edge = ranked[cap - 1]
    keep = used >= edge
    if ranked[cap] == edge and ties == "exclude" and (used > edge).sum() >= 3:
        keep = used > edge
    return [w for w in data.columns if keep[w]]


def tied_at_cap(data: pd.DataFrame, max_words: int | str | None) -> list[str]:
    """The words tied at the cap of :func:`parallel_words` (empty when no tie straddles it)."""
    if max_words is None:
        return []
    included, excluded = parallel_words(data, max_words, "include"), parallel_words(data, max_words, "exclude")
    return [w for w in included if w not in set(excluded)]


def parallel_analysis(
    data: pd.DataFrame,
    correlation: str = "tetrachoric",
    extraction: str = "minres",
    n_iter: int = 20,
    quantile: float = 0.95,
    seed: int = 0,
    null: str = "permute",
    correct: float = DEFAULT_CORRECT,
    eigenvalues: str = "fa",
    repeat: np.ndarray | None = None,
) -> ParallelResult:
    """Horn's parallel analysis on factor eigenvalues, like ``psych::fa.parallel(fa="fa")``.

    The number of factors is the count of leading observed eigenvalues that exceed the
    ``quantile`` of the eigenvalues of ``n_iter`` null data sets. ``null="normal"`` is psych's
    simulation (normal data of the same size, Pearson correlations, whatever ``correlation`` is);
    ``null="permute"`` (our default for word data) shuffles each word's column independently,
    which keeps every word's frequency and uses the same correlation as the analysis, so sparse
    binary words are compared with sparse binary noise (psych's ``sim=FALSE`` resampling does the
    same with replacement). ``eigenvalues="fa"`` compares eigenvalues of the reduced correlation
    matrix of a one-factor solution (psych's ``fa="fa"``), ``"pc"`` those of the correlation matrix
    itself (Horn's original, psych's ``fa="pc"``).

    ``repeat`` (a bootstrap resample): the units analysed are ``data``'s rows ``repeat`` (distinct units
    in ``data``, some repeated). The permutation null then shuffles each word among the distinct units
    and repeats them the same way, so that the null data have the resample's duplicated units too
    (without that, a resample's duplicates look like structure and the count rises; ``tests/test_efa.py``).
    """
    if null not in ("permute", "normal"):
        raise EFAInputError(f"null must be 'permute' or 'normal', not {null!r}")
    if eigenvalues not in ("fa", "pc"):
        raise EFAInputError(f"eigenvalues must be 'fa' or 'pc', not {eigenvalues!r}")

    def values(r: np.ndarray) -> np.ndarray:
        if eigenvalues == "pc":
            return np.sort(np.linalg.eigvalsh(r))[::-1]
        return factor_eigenvalues(r, extraction)

    x = data.to_numpy(float)
    rows = np.arange(len(x)) if repeat is None else np.asarray(repeat)
    observed_corr = correlation_matrix(pd.DataFrame(x[rows], columns=data.columns), correlation, correct=correct)
    observed = values(observed_corr.matrix.to_numpy())
    rng = np.random.default_rng(seed)
    n, p = len(rows), x.shape[1]
    sims = np.empty((n_iter, p))
    with threadpool_limits(limits=1):  # small matrices: one BLAS thread is faster, and the machine is shared
        for i in range(n_iter):
            if null == "normal":
                r = np.corrcoef(rng.standard_normal((n, p)), rowvar=False)
            else:
                shuffled = pd.DataFrame(rng.permuted(x, axis=0)[rows], columns=data.columns)
                r = correlation_matrix(shuffled, correlation, correct=correct).matrix.to_numpy()
            sims[i] = values(r)
    mean = sims.mean(axis=0)
    q = np.quantile(sims, quantile, axis=0)
    above = observed > q
    n_factors = int(np.argmin(above)) if not above.all() else p
    return ParallelResult(
        observed, mean, q, n_factors, n_iter, quantile, seed, null, correlation, extraction, eigenvalues
    )


def parallel_count(data: pd.DataFrame, settings, seed: int, repeat: np.ndarray | None = None) -> ParallelResult:
    """:func:`parallel_analysis` of ``data`` with the run's EFA settings (``settings.efa``: correlation,
    extraction, null data sets, quantile, null, eigenvalues) and ``seed``; ``repeat`` as there."""
    return parallel_analysis(
        data,
        settings.correlation,
        settings.extraction,
        settings.parallel_iter,
        settings.parallel_quantile,
        seed,
        settings.parallel_null,
        eigenvalues=settings.parallel_eigenvalues,
        repeat=repeat,
    )


def choose_n_factors(requested: int | str, parallel: ParallelResult | None, n_words: int) -> tuple[int, list[str]]:
    """The number of factors to extract: an int, or ``"parallel"``; at least 1, and at most one factor
    per ``MIN_WORDS_PER_FACTOR`` words (and no more than the degrees of freedom allow)."""
    notes = []
    if requested == "parallel":
        if parallel is None:
            raise EFAInputError("n_factors='parallel' needs a parallel analysis")
        k = parallel.n_factors
        if k < 1:
            notes.append("parallel analysis retained no factor: the words co-occur no more than chance; 1 used")
            k = 1
    else:
        k = int(requested)
    limit = max(1, min(max_factors(n_words), n_words // MIN_WORDS_PER_FACTOR))
    if k > limit:
        notes.append(
            f"{k} factors from {n_words} words would leave fewer than {MIN_WORDS_PER_FACTOR} words per factor "
            f"(or no degrees of freedom): {limit} used"
        )
        k = limit
    return k, notes


# ------------------------------------------------------------------------------------------
# 8. Congruence, alignment and bootstrap stability
# ------------------------------------------------------------------------------------------
def congruence(a: np.ndarray | pd.DataFrame, b: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Tucker's congruence coefficients between the columns of two loading matrices."""
    a, b = _as_array(a), _as_array(b)
    num = a.T @ b
    den = np.sqrt(np.outer((a**2).sum(axis=0), (b**2).sum(axis=0)))
    return num / np.where(den == 0, np.nan, den)


def align(reference: np.ndarray | pd.DataFrame, candidate: np.ndarray | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Reorder and reflect ``candidate``'s factors to best match ``reference``'s.

    The order maximises the total absolute congruence (Hungarian algorithm); each matched factor
    is reflected when its congruence is negative. Returns the aligned candidate loadings and, per
    reference factor, the congruence after alignment (NaN when the candidate has fewer factors).
    """
    from scipy.optimize import linear_sum_assignment

    ref, cand = _as_array(reference), _as_array(candidate)
    c = np.nan_to_num(congruence(ref, cand))
    rows, cols = linear_sum_assignment(-np.abs(c))
    aligned = np.zeros_like(ref)
    matched = np.full(ref.shape[1], np.nan)
    for i, j in zip(rows, cols, strict=True):
        sign = 1.0 if c[i, j] >= 0 else -1.0
        aligned[:, i] = sign * cand[:, j]
        matched[i] = abs(c[i, j])
    return aligned, matched


@dataclass
class BootstrapResult:
    congruence: pd.DataFrame  # iteration x factor
    loadings: np.ndarray  # iteration x word x factor, aligned to the reference
    words: list[str]
    factors: list[str]
    n_boot: int
    seed: int
    level: float
    failures: int

    def summary_table(self) -> pd.DataFrame:
        """Per factor: median and mean congruence, percentile interval, share of samples >= .85 and >= .95."""
        lo, hi = (1 - self.level) / 2, 1 - (1 - self.level) / 2
        c = self.congruence
        return pd.DataFrame(
            {
                "factor": self.factors,
                "median": c.median().to_numpy(),
                "mean": c.mean().to_numpy(),
                "lower": c.quantile(lo).to_numpy(),
                "upper": c.quantile(hi).to_numpy(),
                "share_ge_0.85": (c >= 0.85).mean().to_numpy(),
                "share_ge_0.95": (c >= 0.95).mean().to_numpy(),
            }
        )

    def loading_intervals(self, reference: EFAResult) -> pd.DataFrame:
        """Per word: primary factor, full-sample loading, bootstrap percentile interval, and the share of
        bootstrap samples in which the word's largest loading is on the same factor."""
        lo, hi = (1 - self.level) / 2, 1 - (1 - self.level) / 2
        primary = reference.loadings.abs().to_numpy().argmax(axis=1)
        boot_primary = np.abs(self.loadings).argmax(axis=2)
        rows = []
        for i, word in enumerate(self.words):
            values = self.loadings[:, i, primary[i]]
            rows.append(
                {
                    "word": word,
                    "factor": self.factors[primary[i]],
                    "loading": reference.loadings.iat[i, primary[i]],
                    "lower": float(np.quantile(values, lo)),
                    "upper": float(np.quantile(values, hi)),
                    "same_factor_share": float((boot_primary[:, i] == primary[i]).mean()),
                }
            )
        return pd.DataFrame(rows)


def bootstrap_stability(
    data: pd.DataFrame,
    reference: EFAResult,
    correlation: str = "tetrachoric",
    n_boot: int = 100,
    seed: int = 0,
    level: float = 0.95,
    correct: float = DEFAULT_CORRECT,
    max_redraws: int = 50,
) -> BootstrapResult:
    """Refit the EFA on ``n_boot`` bootstrap samples of the units and compare with the full solution.

    Each sample is drawn with replacement from the rows of ``data``; a sample in which a word
    does not vary is redrawn (as ``psych::fa.parallel`` does), up to ``max_redraws`` times, and is
    otherwise counted as a failure. Factors are matched to the reference by :func:`align`.
    """
    n = len(data)
    return bootstrap_refits(
        data,
        reference,
        draw=lambda rng: rng.integers(0, n, n),
        acceptable=lambda sample, _pick: bool(np.all(sample.std(axis=0) > 0)),
        correlate=lambda frame, _pick: correlation_matrix(frame, correlation, correct=correct),
        n_boot=n_boot,
        seed=seed,
        level=level,
        max_redraws=max_redraws,
    )


def bootstrap_refits(
    data: pd.DataFrame,
    reference: EFAResult,
    draw: Callable[[np.random.Generator], np.ndarray],
    acceptable: Callable[[np.ndarray, np.ndarray], bool],
    correlate: Callable[[pd.DataFrame, np.ndarray], CorrelationResult],
    n_boot: int,
    seed: int,
    level: float,
    max_redraws: int,
) -> BootstrapResult:
    """The bootstrap loop: ``draw`` the row indices of a sample (redrawn up to ``max_redraws`` times
    until ``acceptable``, else a failure), ``correlate`` it (an :class:`EFAInputError` is a failure),
    refit the reference's number of factors and match them to the reference by :func:`align`."""
    rng = np.random.default_rng(seed)
    x = data.to_numpy(float)
    k = reference.n_factors
    ref = reference.loadings.to_numpy()
    congruences, loadings = [], []
    failures = 0
    with threadpool_limits(limits=1):
        for _ in range(n_boot):
            for _attempt in range(max_redraws):
                pick = draw(rng)
                if acceptable(x[pick], pick):
                    break
            else:
                failures += 1
                continue
            try:
                corr = correlate(pd.DataFrame(x[pick], columns=data.columns), pick)
            except EFAInputError:
                failures += 1
                continue
            fit = fit_efa(corr, k, extraction=reference.extraction, rotation=reference.rotation)
            aligned, matched = align(ref, fit.loadings.to_numpy())
            congruences.append(matched)
            loadings.append(aligned)
    return BootstrapResult(
        congruence=pd.DataFrame(np.array(congruences).reshape(-1, k), columns=reference.factors),
        loadings=np.array(loadings).reshape(-1, ref.shape[0], k),
        words=list(data.columns),
        factors=reference.factors,
        n_boot=n_boot,
        seed=seed,
        level=level,
        failures=failures,
    )


# ------------------------------------------------------------------------------------------
# The whole exploratory pipeline in one call (used by the simulation study and the tests)
# ------------------------------------------------------------------------------------------
@dataclass
class Analysis:
    prepared: PreparedMatrix
    correlation: CorrelationResult
    adequacy: Adequacy | None
    parallel: ParallelResult | None
    result: EFAResult
    notes: list[str]


def analyse(
    incidence: pd.DataFrame,
    coding: str = "binary",
    correlation: str = "tetrachoric",
    n_factors: int | str = "parallel",
    extraction: str = "minres",
    rotation: str = "oblimin",
    min_frequency: float = DEFAULT_MIN_FREQUENCY,
    min_units: int = DEFAULT_MIN_UNITS,
    max_words: int | str | None = None,
    parallel_max_words: int | str | None = "auto",
    parallel_ties: str = EFASettings.parallel_ties,
    parallel_iter: int = 20,
    parallel_quantile: float = 0.95,
    parallel_null: str = "permute",
    parallel_eigenvalues: str = "fa",
    seed: int = 0,
    cutoff: float = EFASettings.cutoff,
) -> Analysis:
    """Prepare, correlate, check adequacy, count factors and fit, with every choice explicit.

    The factors are counted by parallel analysis on the ``parallel_max_words`` most frequent words (ties at
    that cap as ``parallel_ties`` says, :func:`parallel_words`), and extracted from every word that entered
    the analysis.
    """
    with threadpool_limits(limits=1):  # small matrices: one BLAS thread is faster, and the machine is shared
        prepared = prepare_matrix(incidence, coding, min_frequency, min_units, max_words)
        corr = correlation_matrix(prepared.data, correlation)
        notes = list(corr.notes)
        try:
            adequate = adequacy(corr)
        except SingularMatrixError as err:
            adequate = None
            notes.append(str(err))
        parallel = None
        if n_factors == "parallel":
            parallel = parallel_analysis(
                prepared.data[parallel_words(prepared.data, parallel_max_words, parallel_ties)],
                correlation,
                extraction,
                parallel_iter,
                parallel_quantile,
                seed,
                parallel_null,
                eigenvalues=parallel_eigenvalues,
            )
        k, more = choose_n_factors(n_factors, parallel, prepared.n_words)
        result = fit_efa(corr, k, extraction=extraction, rotation=rotation, cutoff=cutoff)
    return Analysis(prepared, corr, adequate, parallel, result, list(dict.fromkeys(notes + more + result.notes)))


# do factors track the model that answered? ---------------------------------------------
def factor_model_association(
    incidence: pd.DataFrame, word_factors: pd.DataFrame, respondents: pd.DataFrame, by: str = "model"
) -> pd.DataFrame:
    """How much each factor reflects who answered rather than which values go together.

    For each factor, a unit's score is the share of the factor's assigned words it used; the
    table gives the mean score per group (``by``: model, family or training_stage column of
    ``respondents``) and eta squared, the share of the scores' variance between groups. With
    few models, a factor with a high eta squared is mostly one model's vocabulary.
    Units must be respondents (the index of ``incidence``).
    """
    groups = respondents.set_index("respondent").loc[incidence.index, by]
    rows = []
    for factor, g in word_factors[word_factors["assigned"]].groupby("factor"):
        words = [w for w in g["word"] if w in incidence.columns]
        score = (incidence[words] > 0).mean(axis=1)
        total = float(((score - score.mean()) ** 2).sum())
        by_group = score.groupby(groups.to_numpy())
        means = by_group.mean()
        between = float((by_group.size() * (means - score.mean()) ** 2).sum())
        rows.append(
            {"factor": factor, "words": len(words), "eta_squared": round(between / total, 3) if total else float("nan")}
            | means.round(3).to_dict()
        )
    return pd.DataFrame(rows)
