"""Steps 1-3 of the EFA: the incidence matrix prepared, its correlations (tetrachoric, polychoric, Pearson;
smoothed when not positive definite) and their sampling adequacy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import owens_t

from ...core.display import Facts, Report
from .. import polychoric
from .base import (
    CORRELATIONS,
    DEFAULT_CORRECT,
    DEFAULT_MIN_FREQUENCY,
    DEFAULT_MIN_UNITS,
    DEFAULT_UNITS_PER_WORD,
    EFAInputError,
    SingularMatrixError,
)


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


def smoothed_or_refused(r: np.ndarray, smooth: bool, what: str, advice: str = "") -> tuple[np.ndarray, bool, float]:
    """A correlation matrix ready for the EFA: smoothed like ``psych::cor.smooth`` when ``smooth`` and it is not
    positive definite; otherwise as it is, or a :class:`SingularMatrixError` naming ``what`` when it is not
    positive definite. Returns the matrix, whether it was smoothed, and its smallest eigenvalue before."""
    min_eig = float(np.linalg.eigvalsh(r).min())
    if smooth:
        r, smoothed = smooth_correlation(r)
        return r, smoothed, min_eig
    if min_eig < np.finfo(float).eps * r.shape[0]:
        raise SingularMatrixError(
            f"{what} is not positive definite (smallest eigenvalue {min_eig:.3g}); "
            f"use smooth=True (psych::cor.smooth){advice}"
        )
    return r, False, min_eig


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
    r, smoothed, min_eig = smoothed_or_refused(
        r, smooth, f"the {method} correlation matrix", " or drop collinear words"
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
@dataclass(repr=False)  # a console shows the report, not the dataclass
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
