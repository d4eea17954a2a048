"""Within-group (within-model) correlations of 0/1 words and what the EFA needs to analyse them: one
threshold per word and group (:func:`within_correlation`), the words that vary inside a group, a parallel
analysis whose null shuffles each word inside each group, and the within-group bootstrap. The estimator
(:class:`valuelex.psychometrics.efa.EFA`) uses them when it is given groups; :mod:`valuelex.psychometrics.multilevel`
builds its between/within comparisons on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from threadpoolctl import threadpool_limits

from ..statsby import _codes, _group_sums, stats_by
from .base import DEFAULT_CORRECT, EFAInputError
from .correlation import (
    CorrelationResult,
    PreparedMatrix,
    bivariate_normal_cdf,
    bivariate_normal_pdf,
    check_sample_size,
    smooth_correlation,
    smoothed_or_refused,
    tetrachoric,
)
from .count import ParallelResult, factor_eigenvalues
from .settings import EFASettings
from .solution import EFAResult
from .stability import BootstrapResult, bootstrap_refits

#: Within-model correlations for 0/1 words (see the module docstring).
WITHIN_CORRELATIONS = ("tetrachoric", "rwg", "tetrachoric_pooled")
#: Our default, chosen by simulation in notebook 07 (``simulate.compare_within_correlations``).
DEFAULT_WITHIN_CORRELATION = "tetrachoric"
#: A within-model correlation whose Fisher z would be infinite is clipped to this (pooled tetrachorics).
MAX_ABS_CORRELATION = 0.999
#: Iterations and tolerance of the Fisher-scoring solver of the within-model tetrachoric correlation.
SOLVER_ITERATIONS = 100
SOLVER_TOLERANCE = 1e-8


# 2. Within-model correlations of 0/1 words
# ------------------------------------------------------------------------------------------
@dataclass
class WithinTetrachoric:
    rho: pd.DataFrame
    tau: pd.DataFrame  # groups x words: -qnorm(share of the group's units using the word); NaN if constant
    informative_groups: pd.DataFrame  # words x words: groups in which both words vary
    inestimable_pairs: int  # pairs of words that vary together in no group (set to 0)
    corrected_pairs: int  # pairs with a cell type empty in every group (psych's correction applied)
    iterations: int


def within_tetrachoric(
    data: pd.DataFrame, groups: pd.Series | np.ndarray | list, correct: float = DEFAULT_CORRECT
) -> WithinTetrachoric:
    """Tetrachoric correlations with one threshold per word and group, one correlation for all groups.

    The model: unit i of group g uses word j when a standard normal propensity passes the threshold
    ``tau_gj`` (estimated from the group's share, as ``psych::tetrachoric`` does with the whole
    sample); the propensities of two words correlate ``rho`` in every group. ``rho`` maximises the
    likelihood of the groups' 2 x 2 tables together (Fisher scoring with a bisection safeguard,
    vectorised over word pairs). A group in which either word never varies says nothing about
    ``rho`` and is skipped. psych's correction for empty cells is applied to the pooled table: a
    cell (both absent, one present, both present) that is empty in every informative group gets
    ``correct`` units spread evenly over those groups. With one group this is exactly
    :func:`valuelex.psychometrics.efa.tetrachoric`.
    """
    with threadpool_limits(limits=1):
        return _within_tetrachoric(data, groups, correct)


def _within_tetrachoric(data: pd.DataFrame, groups: pd.Series | np.ndarray | list, correct: float) -> WithinTetrachoric:
    x = data.to_numpy(float)
    if not np.isin(x, (0.0, 1.0)).all():
        raise EFAInputError("tetrachoric correlations need 0/1 data (use coding='binary')")
    n_units, p = x.shape
    codes, labels = _codes(groups, n_units)
    k = len(labels)
    counts = np.bincount(codes, minlength=k).astype(float)
    ones = _group_sums(x, codes, k)
    iu = np.triu_indices(p, 1)
    both = np.empty((k, len(iu[0])))
    for g in range(k):
        xg = x[codes == g]
        both[g] = (xg.T @ xg)[iu]
    share = ones / counts[:, None]
    varies = (share > 0) & (share < 1)
    informative = varies[:, iu[0]] & varies[:, iu[1]]  # groups x pairs
    n11 = both
    n10 = ones[:, iu[0]] - both  # word i present, j absent
    n01 = ones[:, iu[1]] - both
    n00 = counts[:, None] - n11 - n10 - n01
    table = np.stack([n00, n01, n10, n11]) * informative  # cell x group x pair
    m = informative.sum(axis=0)
    empty = (table.sum(axis=1) == 0) & (m > 0)  # cell x pair
    if correct > 0:
        table = table + np.where(empty, correct / np.maximum(m, 1), 0.0)[:, None, :] * informative
    tau = np.where(varies, -ndtri(np.clip(share, 1e-12, 1 - 1e-12)), np.nan)
    g_idx, p_idx = np.nonzero(informative)  # one cell per informative (group, pair)
    rho, iterations = _solve_common_rho(
        table[:, g_idx, p_idx], tau[g_idx, iu[0][p_idx]], tau[g_idx, iu[1][p_idx]], p_idx, len(iu[0])
    )
    estimable = m > 0
    rho = np.where(estimable, rho, 0.0)
    mat = np.eye(p)
    mat[iu] = rho
    mat[(iu[1], iu[0])] = rho
    inf_mat = np.zeros((p, p), dtype=int)
    inf_mat[iu] = m
    inf_mat[(iu[1], iu[0])] = m
    np.fill_diagonal(inf_mat, varies.sum(axis=0))
    words = list(data.columns)
    return WithinTetrachoric(
        rho=pd.DataFrame(mat, index=words, columns=words),
        tau=pd.DataFrame(tau, index=labels, columns=words),
        informative_groups=pd.DataFrame(inf_mat, index=words, columns=words),
        inestimable_pairs=int((~estimable).sum()),
        corrected_pairs=int(empty.any(axis=0).sum()),
        iterations=iterations,
    )


#: Gauss-Legendre nodes for the bivariate normal integral at |rho| up to each bound (Genz's choice).
_GL_NODES = ((0.3, 6), (0.75, 12), (0.925, 20))


def bivariate_normal_excess(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``P(X < h, Y < k) - Phi(h) Phi(k)`` for standard bivariate normal (X, Y) with correlation ``rho``.

    The integral of the bivariate density over the correlation from 0 to ``rho``, by Gauss-Legendre
    quadrature in ``asin(rho)`` (Drezner & Wesolowsky 1990, with Genz's node counts: exact to about
    1e-15 for |rho| <= 0.925); larger |rho| use :func:`valuelex.psychometrics.efa.bivariate_normal_cdf` (Owen's T).
    Three to four times faster than Owen's T for the small correlations of word data.
    """
    h, k, rho = np.broadcast_arrays(np.asarray(h, float), np.asarray(k, float), np.asarray(rho, float))
    out = np.zeros(h.shape)
    size = np.abs(rho)
    lower = 0.0
    for bound, nodes in _GL_NODES:
        part = (size > lower) & (size <= bound) if lower > 0 else size <= bound
        lower = bound
        if part.any():
            out[part] = _gauss_legendre_excess(h[part], k[part], rho[part], nodes)
    large = size > _GL_NODES[-1][0]
    if large.any():
        out[large] = bivariate_normal_cdf(h[large], k[large], rho[large]) - ndtr(h[large]) * ndtr(k[large])
    return out


def _gauss_legendre_excess(h: np.ndarray, k: np.ndarray, rho: np.ndarray, nodes: int) -> np.ndarray:
    x, w = np.polynomial.legendre.leggauss(nodes)
    angle = np.arcsin(rho)
    hs, hk = (h * h + k * k) / 2, h * k
    out = np.zeros(h.shape)
    for xi, wi in zip(x, w, strict=True):
        s = np.sin(angle * (1 + xi) / 2)
        out += wi * np.exp((s * hk - hs) / (1 - s * s))
    return out * angle / (4 * np.pi)


def _solve_common_rho(
    table: np.ndarray, h: np.ndarray, k: np.ndarray, pair: np.ndarray, n_pairs: int
) -> tuple[np.ndarray, int]:
    """Maximum-likelihood rho per pair from the 2 x 2 tables of its informative groups.

    ``table`` (4 x cells), ``h`` and ``k`` (the two words' thresholds) hold one cell per informative
    (group, pair); ``pair`` says which pair each cell belongs to. Newton steps on the summed
    log-likelihood (Fisher scoring where it is not concave), each pair kept inside the bracket its
    score signs give (bisection when a step leaves it), until every step is below the tolerance.
    """
    size = table.sum(axis=0)
    # start: the first-order (small rho) solution, cov = rho * phi(h) phi(k), summed over groups
    cov = (table[3] * table[0] - table[2] * table[1]) / np.maximum(size, 1e-12)
    den = np.bincount(pair, weights=size * np.exp(-(h * h + k * k) / 2) / (2 * np.pi), minlength=n_pairs)
    num = np.bincount(pair, weights=cov, minlength=n_pairs)
    rho = np.clip(np.divide(num, den, out=np.zeros(n_pairs), where=den > 0), -0.9, 0.9)
    limit = 1.0 - 1e-9
    lo, hi = np.full(n_pairs, -limit), np.full(n_pairs, limit)
    # the working set: cells of pairs not yet converged (compacted as pairs converge)
    work = {"n": table.T.copy(), "h": h, "k": k, "a": ndtr(h), "b": ndtr(k), "size": size, "pair": pair}
    eps = 1e-15
    iterations = 0
    for iterations in range(1, SOLVER_ITERATIONS + 1):  # noqa: B007
        cell_pair = work["pair"]
        if cell_pair.size == 0:
            break
        r = rho[cell_pair]
        hh, kk, aa, bb, n = work["h"], work["k"], work["a"], work["b"], work["n"]
        p00 = aa * bb + bivariate_normal_excess(hh, kk, r)
        probs = np.maximum(np.stack([p00, aa - p00, bb - p00, 1.0 - aa - bb + p00], axis=1), eps)
        dens = bivariate_normal_pdf(hh, kk, r)
        signs = np.array([1.0, -1.0, -1.0, 1.0])
        ratio = (n / probs) @ signs
        one = 1.0 - r * r
        quad = hh * hh - 2 * r * hh * kk + kk * kk
        slope = r / one + (hh * kk * one - r * quad) / one**2  # d log(density) / d rho
        pairs, inverse = np.unique(cell_pair, return_inverse=True)
        m = len(pairs)
        score = np.bincount(inverse, weights=dens * ratio, minlength=m)
        curvature = np.bincount(
            inverse, weights=dens * slope * ratio - dens**2 * (n / probs**2).sum(axis=1), minlength=m
        )
        fisher = np.bincount(inverse, weights=work["size"] * dens**2 * (1 / probs).sum(axis=1), minlength=m)
        current = rho[pairs]
        lo[pairs] = np.where(score > 0, current, lo[pairs])
        hi[pairs] = np.where(score < 0, current, hi[pairs])
        curvature = np.where(curvature < 0, -curvature, fisher)  # Newton where concave, else Fisher scoring
        step = np.divide(score, curvature, out=np.zeros_like(score), where=curvature > 0)
        new = current + step
        outside = (new <= lo[pairs]) | (new >= hi[pairs]) | ~np.isfinite(new)
        new = np.where(outside, 0.5 * (lo[pairs] + hi[pairs]), new)
        rho[pairs] = new
        moving = np.abs(new - current) > SOLVER_TOLERANCE
        if not moving.all():
            keep = moving[inverse]
            work = {key: value[keep] for key, value in work.items()}
    return rho, iterations


def pooled_tetrachoric(
    data: pd.DataFrame, groups: pd.Series | np.ndarray | list, correct: float = DEFAULT_CORRECT
) -> pd.DataFrame:
    """Per-group tetrachoric correlations averaged by Fisher's z, weighted by group size.

    What ``psych::statsBy(cors=TRUE, cor="tet")$pooled`` aims at (the meta-analytic mean of the
    groups' correlations; psych itself stops on a word that does not vary in a group). Each group
    contributes the pairs of words that vary in it; correlations are clipped to
    ``MAX_ABS_CORRELATION`` before the z transform. A pair that varies together in no group is 0.
    """
    x = data.to_numpy(float)
    codes, labels = _codes(groups, x.shape[0])
    p = x.shape[1]
    z_sum = np.zeros((p, p))
    w_sum = np.zeros((p, p))
    for g in range(len(labels)):
        xg = x[codes == g]
        share = xg.mean(axis=0)
        keep = np.flatnonzero((share > 0) & (share < 1))
        if len(keep) < 2:
            continue
        tet = tetrachoric(pd.DataFrame(xg[:, keep]), correct=correct).rho.to_numpy()
        z = np.arctanh(np.clip(tet, -MAX_ABS_CORRELATION, MAX_ABS_CORRELATION))
        idx = np.ix_(keep, keep)
        z_sum[idx] += len(xg) * z
        w_sum[idx] += len(xg)
    r = np.tanh(np.divide(z_sum, w_sum, out=np.zeros_like(z_sum), where=w_sum > 0))
    np.fill_diagonal(r, 1.0)
    return pd.DataFrame(r, index=data.columns, columns=data.columns)


def within_correlation(
    data: pd.DataFrame,
    groups: pd.Series | np.ndarray | list,
    method: str = DEFAULT_WITHIN_CORRELATION,
    correct: float = DEFAULT_CORRECT,
    smooth: bool = True,
) -> CorrelationResult:
    """The within-group correlation matrix of the words, as a :class:`valuelex.psychometrics.efa.CorrelationResult`.

    ``n_obs`` is units minus groups (the within-group degrees of freedom, statsBy's ``nwg``), so the
    EFA's fit indices and Bartlett's test count what the within matrix rests on. Smoothed like
    ``psych::cor.smooth`` when not positive definite (reported), or refused with ``smooth=False``.
    """
    if method not in WITHIN_CORRELATIONS:
        raise EFAInputError(f"within correlation must be one of {WITHIN_CORRELATIONS}, not {method!r}")
    n_units, p = data.shape
    codes, labels = _codes(groups, n_units)
    n_obs = n_units - len(labels)
    check_sample_size(n_obs, p, "pearson" if method == "rwg" else "tetrachoric")  # tetrachoric: smoothed
    constant = _constant_within(data.to_numpy(float), codes)
    if constant.any():
        bad = ", ".join(list(data.columns[constant])[:5])
        raise EFAInputError(
            f"{int(constant.sum())} words never vary inside any group ({bad}): they have no within-group "
            "correlation; drop them first (prepare_within)"
        )
    zero_cells = 0
    if method == "tetrachoric":
        tet = within_tetrachoric(data, codes, correct)
        r = tet.rho.to_numpy()
        zero_cells = tet.corrected_pairs
    else:
        r = raw_within_correlation(data, codes, method, correct)
    r, smoothed, min_eig = smoothed_or_refused(r, smooth, f"the within-group {method} matrix")
    names = list(data.columns)
    return CorrelationResult(
        pd.DataFrame(r, index=names, columns=names), f"within {method}", n_obs, smoothed, min_eig, zero_cells
    )


def raw_within_correlation(
    data: pd.DataFrame,
    groups: pd.Series | np.ndarray | list,
    method: str = DEFAULT_WITHIN_CORRELATION,
    correct: float = DEFAULT_CORRECT,
) -> np.ndarray:
    """The within-group matrix as estimated, before any smoothing (see :func:`within_correlation`)."""
    if method == "tetrachoric":
        return within_tetrachoric(data, groups, correct).rho.to_numpy()
    if method == "tetrachoric_pooled":
        return pooled_tetrachoric(data, groups, correct).to_numpy()
    if method == "rwg":
        return stats_by(data, groups).rwg.to_numpy()
    raise EFAInputError(f"within correlation must be one of {WITHIN_CORRELATIONS}, not {method!r}")


def between_correlation(data: pd.DataFrame, groups: pd.Series | np.ndarray | list) -> CorrelationResult:
    """statsBy's ``rbg`` (group means, weighted by group size), smoothed; ``n_obs`` is the number of groups.

    With K groups the matrix has rank at most K - 1: it describes in which directions the groups'
    vocabularies differ, and a factor analysis of it is descriptive unless there are many more
    groups than words.
    """
    codes, labels = _codes(groups, data.shape[0])
    decomposition = stats_by(data, codes)
    r = decomposition.rbg.to_numpy()
    if np.isnan(r).any():
        raise EFAInputError("some words have the same mean in every group: drop them before the between matrix")
    min_eig = float(np.linalg.eigvalsh(r).min())
    r, smoothed = smooth_correlation(r)
    names = list(data.columns)
    return CorrelationResult(pd.DataFrame(r, index=names, columns=names), "between", len(labels), smoothed, min_eig)


def _constant_within(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Words whose value never changes inside any group (no within-group variance)."""
    k = codes.max() + 1
    lo = np.full((k, x.shape[1]), np.inf)
    hi = np.full((k, x.shape[1]), -np.inf)
    np.minimum.at(lo, codes, x)
    np.maximum.at(hi, codes, x)
    return ~(hi > lo).any(axis=0)


# ------------------------------------------------------------------------------------------
# 3. The exploratory pipeline on the within-model matrix
# ------------------------------------------------------------------------------------------
def prepare_within(prepared: PreparedMatrix, groups: pd.Series | np.ndarray | list) -> PreparedMatrix:
    """The words of a prepared (pooled) matrix that vary inside at least one group; the others are listed."""
    data = prepared.data
    codes, _ = _codes(groups, data.shape[0])
    constant = _constant_within(data.to_numpy(float), codes)
    dropped = pd.DataFrame(
        {"word": data.columns[constant], "reason": "no within-group variance", "units": data.loc[:, constant].sum()}
    )
    return PreparedMatrix(
        data.loc[:, ~constant],
        pd.concat([prepared.dropped, dropped], ignore_index=True),
        prepared.n_words_in,
        prepared.min_units,
        prepared.max_words,
    )


def within_parallel_analysis(
    data: pd.DataFrame,
    groups: pd.Series | np.ndarray | list,
    method: str = DEFAULT_WITHIN_CORRELATION,
    extraction: str = "minres",
    n_iter: int = 20,
    quantile: float = 0.95,
    seed: int = 0,
    correct: float = DEFAULT_CORRECT,
    repeat: np.ndarray | None = None,
) -> ParallelResult:
    """Parallel analysis of the within-group matrix: each null data set shuffles every word's column
    inside every group, which keeps each group's vocabulary (its share of every word) and breaks the
    co-occurrence; the null matrices use the same within-group correlation. ``repeat``: the units
    analysed are ``data``'s rows ``repeat`` (a bootstrap resample of distinct units, ``groups`` given per
    distinct unit); the null shuffles the distinct units and repeats them the same way (as
    :func:`valuelex.psychometrics.efa.parallel_analysis`)."""
    codes, _ = _codes(groups, data.shape[0])
    x = data.to_numpy(float)
    picked = np.arange(len(x)) if repeat is None else np.asarray(repeat)
    rng = np.random.default_rng(seed)
    rows = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    with threadpool_limits(limits=1):
        observed = factor_eigenvalues(
            within_correlation(
                pd.DataFrame(x[picked], columns=data.columns), codes[picked], method, correct
            ).matrix.to_numpy(),
            extraction,
        )
        sims = np.empty((n_iter, x.shape[1]))
        for i in range(n_iter):
            shuffled = x.copy()
            for idx in rows:
                shuffled[idx] = rng.permuted(x[idx], axis=0)
            frame = pd.DataFrame(shuffled[picked], columns=data.columns)
            r = within_correlation(frame, codes[picked], method, correct).matrix.to_numpy()
            sims[i] = factor_eigenvalues(r, extraction)
    q = np.quantile(sims, quantile, axis=0)
    above = observed > q
    n_factors = int(np.argmin(above)) if not above.all() else len(observed)
    return ParallelResult(
        observed, sims.mean(axis=0), q, n_factors, n_iter, quantile, seed, "permute within groups", method, extraction
    )


def within_bootstrap(
    data: pd.DataFrame,
    groups: pd.Series | np.ndarray | list,
    reference: EFAResult,
    settings: EFASettings,
    level: float = 0.95,
    max_redraws: int = 50,
) -> BootstrapResult:
    """:func:`valuelex.psychometrics.efa.bootstrap_stability` for the within-group solution (``settings.n_boot_within``
    samples, ``settings.within_correlation``, ``settings.seed``): every sample draws units with
    replacement *inside each group* (so every model keeps its number of respondents), and is redrawn
    when a word loses all its within-group variance."""
    codes, _ = _codes(groups, data.shape[0])
    rows = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    return bootstrap_refits(
        data,
        reference,
        draw=lambda rng: np.concatenate([rng.choice(idx, len(idx)) for idx in rows]),
        acceptable=lambda sample, pick: not _constant_within(sample, codes[pick]).any(),
        correlate=lambda frame, pick: within_correlation(frame, codes[pick], settings.within_correlation),
        n_boot=settings.n_boot_within,
        seed=settings.seed,
        level=level,
        max_redraws=max_redraws,
    )
