"""Polychoric correlations by maximum likelihood, stable for sparse categories and near |rho| = 1.

The two-step estimator of ``lavaan`` (``lav_bvord_cor_twostep_fit``, as ``lavCor(ordered = ...)`` and
``cfa(..., ordered = TRUE)`` use it): each variable's thresholds are fixed at ``qnorm`` of its
cumulative proportions, and each pair's correlation maximises ``sum(n_ij log P_ij(rho))`` over the
cells of its table. ``psych::polychoric(correct = 0)`` estimates the same quantity (to its
``optimize`` tolerance). What this module adds to a plain implementation is numerical care where
sparse data put it to the test (``tests/test_polychoric.py`` compares it with both on sparse items):

1. **Cell probabilities that do not underflow.** ``P_ij`` is a rectangle probability of the standard
   bivariate normal. Cells of at least ``SMALL`` are lavaan's differences of bivariate CDFs at the
   threshold crossings (Genz's ``BVNU``, the algorithm behind ``pbivnorm`` and ``mvtnorm``, absolute
   error about 1e-15). A smaller cell that holds cases is recomputed in log space, as the
   one-dimensional integral of ``phi(x) * P(Y in cell | x)`` (its integrand is log-concave), whose
   relative error does not grow as the cell shrinks. No cell probability is floored (lavaan floors
   them at sqrt(eps), which flattens the likelihood near +-1).
2. **A maximum found by bracketing the likelihood, not by the sign of the score at the bounds.**
   The log-likelihood is evaluated on a grid in ``atanh(rho)`` over lavaan's interval
   [-0.999, 0.999]; the best grid point and its neighbours bracket the maximum; golden-section
   search on the likelihood narrows the bracket, and safeguarded Newton steps on the score (only at
   interior points near the maximum, where it is accurate) polish it to 1e-10.
3. **A maximum on the boundary is reported.** When the likelihood rises (or is flat to rounding) up
   to +-0.999, the pair gets lavaan's bound and is listed in ``boundary_pairs``; it is never replaced
   silently. Such a pair's table is compatible with a correlation of +-1 (typically two words whose
   counts never meet above their lowest categories): the likelihood is flat there, and where lavaan's
   ``nlminb`` stops on that plateau (anywhere from about 0.85 to 0.999 on our word counts) depends on
   its start, not on the data.

Empty categories, as in lavaan: codes are the observed values (R's ``ordered()``), so an item
without a middle category simply has one threshold fewer. Empty *cells* of a 2 x 2 table get
lavaan's ``zero.add`` (0.5 moved into the empty cell, margins kept) and its closed forms; larger tables
are used as observed (lavaan's ``zero.add[2] = 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import log_ndtr, ndtr

#: lavaan's ``zero.add``: added to the empty cell of a 2 x 2 table (keeping the margins).
ZERO_ADD = 0.5
#: lavaan's bounds for a polychoric correlation (``nlminb(lower = -0.999, upper = +0.999)``).
RHO_BOUND = 0.999
#: Grid points in ``atanh(rho)`` over [-RHO_BOUND, RHO_BOUND] that bracket the maximum (step 0.47 in atanh).
GRID_POINTS = 17
#: A cell differenced from bivariate CDFs (absolute error about 1e-15) is trusted from this size on: its
#: relative error is then below 1e-11, so that likelihoods compare to 1e-12. Smaller cells are recomputed.
SMALL = 1e-4
#: Convergence of the maximum (in rho).
TOLERANCE = 1e-10
#: A bound is the maximum when its log-likelihood is within this (relative, at least 1 absolute unit
#: times it) of the interior point found: the likelihood is then flat towards |rho| = 1 to rounding
#: error, and no interior point is supported by the data.
FLAT = 1e-12
#: Beyond this |x| the normal density is below e^-722: the integral of a cell is cut there.
_X_LIMIT = 38.0
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


# ------------------------------------------------------------------------------------------
# Bivariate normal probabilities
# ------------------------------------------------------------------------------------------
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


_NODES = {n: _gauss_legendre(n) for n in (6, 12, 20, 48)}


def upper_orthant(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``P(X > h, Y > k)`` for the standard bivariate normal with correlation ``rho`` (vectorised).

    Genz's ``BVNU`` (Drezner & Wesolowsky 1990; Genz 2004, Statistics and Computing 14: 151-160):
    Gauss-Legendre quadrature in ``asin(rho)`` with 6, 12 or 20 nodes for |rho| < 0.3, 0.75, 0.925,
    and for larger |rho| the expansion around |rho| = 1. ``h`` and ``k`` may be infinite.
    """
    h, k, rho = (np.asarray(a, float) for a in np.broadcast_arrays(h, k, rho))
    out = np.zeros(h.shape)
    finite = np.isfinite(h) & np.isfinite(k)
    low_h, low_k = h == -np.inf, k == -np.inf
    out[low_h & low_k] = 1.0
    only_h = low_h & np.isfinite(k)
    out[only_h] = ndtr(-k[only_h])
    only_k = low_k & np.isfinite(h)
    out[only_k] = ndtr(-h[only_k])
    small = finite & (np.abs(rho) < 0.925)
    if small.any():
        out[small] = _orthant_small(h[small], k[small], rho[small])
    large = finite & ~small
    if large.any():
        out[large] = _orthant_large(h[large], k[large], rho[large])
    return np.clip(out, 0.0, 1.0)


def _orthant_small(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    out = ndtr(-h) * ndtr(-k)
    size = np.abs(rho)
    for lower, upper, n in ((0.0, 0.3, 6), (0.3, 0.75, 12), (0.75, 0.925, 20)):
        part = (size >= lower) & (size < upper)
        if not part.any():
            continue
        x, w = _NODES[n]
        hh, kk, r = h[part], k[part], rho[part]
        hk, hs, asr = hh * kk, (hh * hh + kk * kk) / 2.0, np.arcsin(r)
        total = np.zeros(hh.shape)
        for xi, wi in zip(x, w, strict=True):
            sn = np.sin(asr * (1.0 + xi) / 2.0)
            total += wi * np.exp((sn * hk - hs) / (1.0 - sn * sn))
        out[part] += total * asr / (4.0 * np.pi)
    return out


def _orthant_large(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    x, w = _NODES[20]
    negative = rho < 0
    k = np.where(negative, -k, k)
    hk = h * k
    bvn = np.zeros(h.shape)
    inner = np.abs(rho) < 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        a_s = (1.0 - rho) * (1.0 + rho)
        a = np.sqrt(a_s)
        bs = (h - k) ** 2
        c = (4.0 - hk) / 8.0
        d = (12.0 - hk) / 16.0
        asr = -(bs / a_s + hk) / 2.0
        term = a * np.exp(asr) * (1.0 - c * (bs - a_s) * (1.0 - d * bs / 5.0) / 3.0 + c * d * a_s * a_s / 5.0)
        bvn = np.where(inner & (asr > -100.0), term, 0.0)
        b = np.sqrt(bs)
        sp = math.sqrt(2.0 * np.pi) * ndtr(-b / a)
        term = np.exp(-hk / 2.0) * sp * b * (1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0)
        bvn = bvn - np.where(inner & (hk > -100.0), term, 0.0)
        half = a / 2.0
        for xi, wi in zip(x, w, strict=True):
            xs = (half * (1.0 + xi)) ** 2
            rs = np.sqrt(1.0 - xs)
            asr = -(bs / xs + hk) / 2.0
            sp = 1.0 + c * xs * (1.0 + d * xs)
            ep = np.exp(-hk * xs / (2.0 * (1.0 + rs) ** 2)) / rs
            term = half * wi * np.exp(asr) * (ep - sp)
            bvn = bvn + np.where(inner & (asr > -100.0), term, 0.0)
        bvn = np.where(inner, -bvn / (2.0 * np.pi), 0.0)
    spread = np.where(h < 0, ndtr(k) - ndtr(h), ndtr(-h) - ndtr(-k))
    return np.where(~negative, bvn + ndtr(-np.maximum(h, k)), np.where(h >= k, -bvn, spread - bvn))


class _Golden:
    """Golden-section search for the maximum of a vectorised unimodal function, one bracket per element."""

    def __init__(self, f, left: np.ndarray, right: np.ndarray):
        self.f, self.left, self.right = f, left, right
        self.x1 = right - _GOLDEN * (right - left)
        self.x2 = left + _GOLDEN * (right - left)
        self.f1, self.f2 = f(self.x1), f(self.x2)

    def step(self) -> None:
        move = self.f1 < self.f2  # the maximum lies in [x1, right]
        self.left = np.where(move, self.x1, self.left)
        self.right = np.where(move, self.right, self.x2)
        width = self.right - self.left
        new = np.where(move, self.left + _GOLDEN * width, self.right - _GOLDEN * width)
        value = self.f(new)
        self.x1, self.x2 = np.where(move, self.x2, new), np.where(move, new, self.x1)
        self.f1, self.f2 = np.where(move, self.f2, value), np.where(move, value, self.f1)

    def best(self) -> np.ndarray:
        return np.where(self.f1 >= self.f2, self.x1, self.x2)


def _bounds(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of every category: (pairs, K) each, with -inf / inf at the ends."""
    n = tau.shape[0]
    lower = np.concatenate([np.full((n, 1), -np.inf), tau], axis=1)
    upper = np.concatenate([tau, np.full((n, 1), np.inf)], axis=1)
    return lower, upper


def _differenced(tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """P(cell) as lavaan computes it (``lav_bvord_noexo_pi``): the bivariate CDF at every crossing of the
    thresholds, bordered by the margins, differenced over the four corners. Exact to about 1e-15 in
    absolute terms: a cell much smaller than that is not resolved (see :func:`cell_log_probabilities`)."""
    n, k1, k2 = len(rho), tau1.shape[1] + 1, tau2.shape[1] + 1
    h = np.broadcast_to(tau1[:, :, None], (n, k1 - 1, k2 - 1))
    k = np.broadcast_to(tau2[:, None, :], (n, k1 - 1, k2 - 1))
    r = np.broadcast_to(rho[:, None, None], (n, k1 - 1, k2 - 1))
    cdf = np.zeros((n, k1 + 1, k2 + 1))
    cdf[:, 1:k1, 1:k2] = upper_orthant(-h, -k, r)  # P(X < h, Y < k)
    cdf[:, k1, 1:k2] = ndtr(tau2)
    cdf[:, 1:k1, k2] = ndtr(tau1)
    cdf[:, k1, k2] = 1.0
    return cdf[:, 1:, 1:] - cdf[:, 1:, :-1] - cdf[:, :-1, 1:] + cdf[:, :-1, :-1]


def cell_log_probabilities(
    tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray, where: np.ndarray | None = None
) -> np.ndarray:
    """log P(cell) of every cell of each pair's table: tau1 (pairs, K1-1), tau2 (pairs, K2-1), rho (pairs,).

    Returns (pairs, K1, K2). Cells of at least ``SMALL`` come from lavaan's differences of bivariate CDFs;
    smaller cells among ``where`` (default: all; the likelihood needs only the observed ones) are
    recomputed in log space (:func:`_log_rectangle`). No cell probability is floored. Small cells outside
    ``where`` keep the differenced value (log of it; -inf when not positive).
    """
    tau1, tau2, rho = np.atleast_2d(tau1), np.atleast_2d(tau2), np.atleast_1d(np.asarray(rho, float))
    cells = _differenced(tau1, tau2, rho)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(np.where(cells > 0, cells, 0.0))
    small = cells < SMALL
    if where is not None:
        small &= where
    if small.any():
        pair, i, j = np.nonzero(small)
        out[pair, i, j] = _accurate_log_cells(tau1[pair], tau2[pair], rho[pair], i, j)
    return out


def _accurate_log_cells(tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray, i: np.ndarray, j: np.ndarray):
    """log P of cell (i, j) of each row's table, for small cells (see :func:`cell_log_probabilities`): the
    integral of :func:`_log_rectangle`, whose relative error does not grow as the cell shrinks (a difference
    of orthant probabilities, each exact to about 1e-16 in absolute terms, loses every digit of a cell of
    1e-17; Genz's orthants of a negative correlation are themselves such differences)."""
    lo1, up1 = _bounds(tau1)
    lo2, up2 = _bounds(tau2)
    rows = np.arange(len(rho))
    return _log_rectangle(lo1[rows, i], up1[rows, i], lo2[rows, j], up2[rows, j], rho)


def _log_conditional(x: np.ndarray, a2: np.ndarray, b2: np.ndarray, rho: np.ndarray, root: np.ndarray) -> np.ndarray:
    """log [phi(x) P(a2 < Y < b2 | X = x)] for the standard bivariate normal, without underflow."""
    u = (b2 - rho * x) / root
    lower = (a2 - rho * x) / root
    upper_tail = lower > 0  # both ends above 0: work with upper tails, P = Q(lower) - Q(u)
    big = np.where(upper_tail, log_ndtr(-lower), log_ndtr(u))
    small = np.where(upper_tail, log_ndtr(-u), log_ndtr(lower))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_d = big + np.log(-np.expm1(np.minimum(small - big, 0.0)))
    return -0.5 * x * x - 0.5 * math.log(2.0 * math.pi) + log_d


def _log_rectangle(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """log P(a1 < X < b1, a2 < Y < b2) as log of the integral over x of phi(x) P(a2 < Y < b2 | x).

    The integrand is log-concave in x (a normal density times the probability of an interval under a
    normal whose mean moves with x), so it has one mode: golden-section search finds it, bisection the
    points on either side where it has fallen by e^-40, and 48-point Gauss-Legendre quadrature between
    them (log-sum-exp) gives the integral with a relative error far below what the likelihood needs.
    """
    root = np.sqrt(np.maximum((1.0 - rho) * (1.0 + rho), 1e-300))
    lo, hi = np.clip(a1, -_X_LIMIT, _X_LIMIT), np.clip(b1, -_X_LIMIT, _X_LIMIT)

    def f(x: np.ndarray) -> np.ndarray:
        return _log_conditional(x, a2, b2, rho, root)

    # the mode (golden-section search on a log-concave function)
    search = _Golden(f, lo.copy(), hi.copy())
    for _ in range(45):  # width 76 * 0.618^45: below 1e-7, far inside the integrand's width
        search.step()
    mode = search.best()
    peak = f(mode)
    # where the integrand has fallen by e^-40 on each side (monotone there)
    drop = peak - 40.0
    ends = []
    for outer in (lo, hi):
        inside, out = mode.copy(), outer.copy()
        beyond = f(out) < drop
        for _ in range(35):
            mid = 0.5 * (inside + out)
            low = f(mid) < drop
            out = np.where(beyond & low, mid, out)
            inside = np.where(beyond & ~low, mid, inside)
        ends.append(out)
    start, stop = ends
    x, w = _NODES[48]
    half = (stop - start) / 2.0
    points = start[:, None] + half[:, None] * (1.0 + x[None, :])
    values = _log_conditional(points, a2[:, None], b2[:, None], rho[:, None], root[:, None])
    top = np.max(values, axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        total = np.log(np.sum(w[None, :] * np.exp(values - top), axis=1)) + top[:, 0] + np.log(np.maximum(half, 1e-300))
    return np.where(half > 0, total, -np.inf)


def cell_probabilities(
    tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray, where: np.ndarray | None = None
) -> np.ndarray:
    """P(cell) of every cell of each pair's table (pairs, K1, K2): ``exp`` of :func:`cell_log_probabilities`."""
    return np.exp(cell_log_probabilities(tau1, tau2, rho, where))


def bivariate_normal_pdf(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Density of the standard bivariate normal at (h, k): the derivative of its CDF in ``rho``."""
    one = (1.0 - rho) * (1.0 + rho)
    with np.errstate(over="ignore", invalid="ignore"):
        quad = np.where(np.isfinite(h) & np.isfinite(k), (h * h - 2 * rho * h * k + k * k) / (2 * one), np.inf)
    return np.exp(-quad) / (2 * np.pi * np.sqrt(one))


def _corners(values: np.ndarray, n: int, k1: int, k2: int) -> np.ndarray:
    """Per cell, the four-corner combination of values given at the threshold crossings (0 on the border)."""
    grid = np.zeros((n, k1 + 1, k2 + 1))
    grid[:, 1:k1, 1:k2] = values
    return grid[:, 1:, 1:] - grid[:, 1:, :-1] - grid[:, :-1, 1:] + grid[:, :-1, :-1]


def cell_density_terms(tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """d P(cell) / d rho (lavaan's ``phi``): bivariate densities at the cell's four corners (pairs, K1, K2)."""
    n, k1, k2 = len(rho), tau1.shape[1] + 1, tau2.shape[1] + 1
    return _corners(bivariate_normal_pdf(tau1[:, :, None], tau2[:, None, :], rho[:, None, None]), n, k1, k2)


def cell_curvature_terms(tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """d2 P(cell) / d rho2 (lavaan's ``gnorm``): the density times ``lav_dbinorm_guv`` at the four corners."""
    n, k1, k2 = len(rho), tau1.shape[1] + 1, tau2.shape[1] + 1
    h, k, r = tau1[:, :, None], tau2[:, None, :], rho[:, None, None]
    one = (1.0 - r) * (1.0 + r)
    guv = (h * k * one - r * (h * h - 2 * r * h * k + k * k) + r * one) / (one * one)
    return _corners(bivariate_normal_pdf(h, k, r) * guv, n, k1, k2)


# ------------------------------------------------------------------------------------------
# The maximum of the likelihood
# ------------------------------------------------------------------------------------------
def log_likelihood(freq: np.ndarray, tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``sum(freq * log P(cell))`` per pair over the observed cells (an empty cell contributes nothing,
    whatever its probability, so only observed cells are computed accurately)."""
    observed = freq > 0
    logp = cell_log_probabilities(tau1, tau2, rho, where=observed)
    return np.sum(freq * np.where(observed, logp, 0.0), axis=(1, 2))


def _score_and_curvature(
    freq: np.ndarray, tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """First and second derivative of the log-likelihood in rho (lavaan's gradient and hessian)."""
    observed = freq > 0
    logp = cell_log_probabilities(tau1, tau2, rho, where=observed)
    with np.errstate(over="ignore", invalid="ignore"):
        inverse = np.where(observed, np.exp(-np.where(observed, logp, 0.0)), 0.0)  # 1 / P on observed cells
        ratio = freq * inverse
        dp = cell_density_terms(tau1, tau2, rho)
        score = np.sum(ratio * dp, axis=(1, 2))
        curvature = np.sum(ratio * (cell_curvature_terms(tau1, tau2, rho) - dp * dp * inverse), axis=(1, 2))
    return score, curvature


@dataclass
class PolychoricFit:
    """Maximum-likelihood correlations of a set of pairs, and which of them stopped at lavaan's bound."""

    rho: np.ndarray
    at_bound: np.ndarray  # bool: the likelihood rises (or is flat to rounding) up to +-RHO_BOUND
    log_likelihood: np.ndarray


def maximise(freq: np.ndarray, tau1: np.ndarray, tau2: np.ndarray) -> PolychoricFit:
    """The rho in [-RHO_BOUND, RHO_BOUND] maximising ``sum(freq * log P(cell))`` for each pair.

    ``freq`` (pairs, K1, K2) holds the (possibly corrected) tables, ``tau1``/``tau2`` the fixed thresholds.
    The likelihood on a grid of ``GRID_POINTS`` in ``atanh(rho)`` brackets the maximum (the best grid point's
    neighbours); golden-section search on the likelihood narrows the bracket to 1e-3; Newton steps on the
    score (lavaan's gradient and hessian), kept inside that bracket, polish it to ``TOLERANCE``. Nothing
    depends on the sign of the score at the bounds. A pair whose likelihood at a bound is as high (to
    ``FLAT``) as at the interior point found has its maximum on the boundary: it gets the bound and is
    flagged ``at_bound``.
    """
    freq = np.asarray(freq, float)
    tau1, tau2 = np.atleast_2d(np.asarray(tau1, float)), np.atleast_2d(np.asarray(tau2, float))
    n = len(freq)
    if n == 0:
        return PolychoricFit(np.zeros(0), np.zeros(0, bool), np.zeros(0))
    limit = math.atanh(RHO_BOUND)
    grid = np.linspace(-limit, limit, GRID_POINTS)
    # every grid point of every pair in one call: (pairs x points) rows
    values = log_likelihood(
        np.repeat(freq, GRID_POINTS, axis=0),
        np.repeat(tau1, GRID_POINTS, axis=0),
        np.repeat(tau2, GRID_POINTS, axis=0),
        np.tile(np.tanh(grid), n),
    ).reshape(n, GRID_POINTS)
    best = np.argmax(values, axis=1)
    left = grid[np.maximum(best - 1, 0)]
    right = grid[np.minimum(best + 1, GRID_POINTS - 1)]

    def loglik(z: np.ndarray) -> np.ndarray:
        return log_likelihood(freq, tau1, tau2, np.tanh(z))

    search = _Golden(loglik, left, right)
    while np.max(search.right - search.left) > 1e-3:
        search.step()
    lo, hi = np.tanh(search.left), np.tanh(search.right)
    rho = np.tanh(search.best())
    active = np.ones(n, bool)
    for _ in range(40):
        idx = np.flatnonzero(active)
        score, curvature = _score_and_curvature(freq[idx], tau1[idx], tau2[idx], rho[idx])
        r, a, b = rho[idx], lo[idx], hi[idx]
        a = np.where(score > 0, r, a)  # the maximum lies above a point where the likelihood rises
        b = np.where(score < 0, r, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = r - score / curvature
        bad = ~np.isfinite(new) | (curvature >= 0) | (new <= a) | (new >= b)
        new = np.where(bad, 0.5 * (a + b), new)
        done = (np.abs(new - r) < TOLERANCE) | (b - a < TOLERANCE) | (score == 0)
        rho[idx], lo[idx], hi[idx] = new, a, b
        active[idx[done]] = False
        if not active.any():
            break
    found = log_likelihood(freq, tau1, tau2, rho)
    ends = values[:, [0, -1]]
    side = np.argmax(ends, axis=1)
    top = ends[np.arange(n), side]
    at_bound = top >= found - FLAT * np.maximum(1.0, np.abs(found))
    rho = np.where(at_bound, np.where(side == 1, RHO_BOUND, -RHO_BOUND), rho)
    return PolychoricFit(rho, at_bound, np.where(at_bound, top, found))


# ------------------------------------------------------------------------------------------
# A matrix of polychoric correlations
# ------------------------------------------------------------------------------------------
class OrdinalDataError(ValueError):
    """The data cannot be analysed as ordered categories (a constant column, a perfect correlation...)."""


def ordinal_codes(data: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each column's values as category codes 0..K-1 (sorted values, as R's ``ordered()``), and the levels."""
    if data.isna().any().any():
        bad = [str(c) for c in data.columns[data.isna().any()]]
        raise OrdinalDataError(f"missing values in {', '.join(bad[:5])}: ordered categories here need complete data")
    codes = np.empty(data.shape, dtype=int)
    levels = []
    for j, column in enumerate(data.columns):
        values, inverse = np.unique(data[column].to_numpy(), return_inverse=True)
        if len(values) < 2:
            raise OrdinalDataError(f"{column} takes a single value: an ordered indicator needs two categories")
        codes[:, j] = inverse
        levels.append(values)
    return codes, levels


def thresholds(codes: np.ndarray) -> np.ndarray:
    """A variable's thresholds: ``qnorm`` of its cumulative proportions (codes 0..K-1, each observed)."""
    k = int(codes.max()) + 1
    return stats.norm.ppf(np.cumsum(np.bincount(codes, minlength=k) / len(codes))[:-1])


def pair_table(codes1: np.ndarray, codes2: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """The K1 x K2 table of two coded variables."""
    return np.bincount(codes1 * k2 + codes2, minlength=k1 * k2).reshape(k1, k2).astype(float)


def two_by_two(table: np.ndarray, tau1: np.ndarray, tau2: np.ndarray) -> tuple[float | None, np.ndarray]:
    """lavaan's special cases for a 2 x 2 table (``lav_bvord_cor_twostep_fit``): the empty-cell
    correction, and closed forms when a*d == b*c or both thresholds are 0. Returns (rho or None, table)."""
    if table.shape != (2, 2):
        return None, table
    empty = np.flatnonzero(table.ravel(order="F") == 0)
    if len(empty) == 2:
        return (1.0 if table[0, 0] > 0 else -1.0), table
    if len(empty) == 1:
        table = table.copy()
        sign = 1.0 if empty[0] in (0, 3) else -1.0  # an empty cell on the main diagonal or off it
        table[0, 0] += sign * ZERO_ADD
        table[1, 1] += sign * ZERO_ADD
        table[0, 1] -= sign * ZERO_ADD
        table[1, 0] -= sign * ZERO_ADD
    if table[0, 0] * table[1, 1] == table[0, 1] * table[1, 0]:
        return 0.0, table
    if tau1[0] == 0 and tau2[0] == 0:
        return -math.cos(2 * math.pi * table[0, 0] / table.sum()), table
    return None, table


def pair_indices(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the below-diagonal elements of a p x p matrix, column by column (lavaan's vech order)."""
    rows = [i for j in range(p) for i in range(j + 1, p)]
    cols = [j for j in range(p) for i in range(j + 1, p)]
    return np.array(rows, dtype=int), np.array(cols, dtype=int)


@dataclass
class ShapeGroup:
    """The pairs whose tables have the same shape (K1 x K2), in lavaan's pair order: what is vectorised."""

    members: np.ndarray  # positions of the pairs in lavaan's order
    tables: np.ndarray  # (pairs, K1, K2) as observed
    tau1: np.ndarray  # (pairs, K1 - 1)
    tau2: np.ndarray  # (pairs, K2 - 1)
    rho: np.ndarray  # (pairs,)
    at_bound: np.ndarray  # (pairs,) bool


@dataclass
class PolychoricMatrix:
    """Polychoric correlations of ordered variables, the thresholds they rest on, and the pairs whose
    maximum lies on the boundary (``rho`` is then lavaan's bound +-0.999)."""

    names: list[str]
    codes: np.ndarray  # (n, p) category codes 0..K-1
    levels: list[np.ndarray]
    thresholds: list[np.ndarray]
    correlations: np.ndarray  # (p, p)
    groups: list[ShapeGroup]
    empty_cell_pairs: list[tuple[str, str]] = field(default_factory=list)
    boundary_pairs: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def n_obs(self) -> int:
        return int(self.codes.shape[0])

    def informative(self) -> np.ndarray:
        """Per pair in lavaan's order: False for the pairs at the bound (their likelihood is flat there)."""
        rows, cols = pair_indices(len(self.names))
        out = np.ones(len(rows), bool)
        for group in self.groups:
            out[group.members] = ~group.at_bound
        return out

    def boundary_note(self) -> str:
        """One line naming the pairs whose correlation stopped at the bound ("" when there are none)."""
        if not self.boundary_pairs:
            return ""
        shown = ", ".join(f"{a} ~ {b} ({r:+.3f})" for a, b, r in self.boundary_pairs[:5])
        more = f" and {len(self.boundary_pairs) - 5} more" if len(self.boundary_pairs) > 5 else ""
        return (
            f"{len(self.boundary_pairs)} of {len(self.names) * (len(self.names) - 1) // 2} polychoric correlations "
            f"have their maximum on the boundary (their tables are compatible with +-1; lavaan's bound "
            f"+-{RHO_BOUND} is used): {shown}{more}"
        )


def polychoric_matrix(data: pd.DataFrame) -> PolychoricMatrix:
    """lavaan's polychoric (for 0/1 columns: tetrachoric) correlations of the columns of ``data``.

    Pairs are grouped by the shape of their table so that every step is vectorised over pairs. A 2 x 2
    table with two empty cells (the two variables are the same split, or its mirror) is refused.
    """
    codes, levels = ordinal_codes(data)
    names = [str(c) for c in data.columns]
    ks = np.array([len(v) for v in levels])
    taus = [thresholds(codes[:, j]) for j in range(codes.shape[1])]
    rows, cols = pair_indices(len(names))
    corr = np.eye(len(names))
    shapes: dict[tuple[int, int], list[int]] = {}
    for idx, (i, j) in enumerate(zip(rows, cols, strict=True)):
        shapes.setdefault((int(ks[i]), int(ks[j])), []).append(idx)
    groups, empty, boundary = [], [], []
    for (k1, k2), members in shapes.items():
        members = np.array(members)
        t1 = np.array([taus[rows[m]] for m in members]).reshape(len(members), k1 - 1)
        t2 = np.array([taus[cols[m]] for m in members]).reshape(len(members), k2 - 1)
        tables = np.array([pair_table(codes[:, rows[m]], codes[:, cols[m]], k1, k2) for m in members])
        fitted = np.full(len(members), np.nan)
        modified = tables.copy()
        for idx, m in enumerate(members):
            if (tables[idx] == 0).any():
                empty.append((names[rows[m]], names[cols[m]]))
            value, modified[idx] = two_by_two(tables[idx], t1[idx], t2[idx])
            if value is not None:
                if abs(value) >= 1.0:
                    raise OrdinalDataError(
                        f"{names[rows[m]]} and {names[cols[m]]} are perfectly correlated (two empty cells in their "
                        "2 x 2 table): drop one of them"
                    )
                fitted[idx] = value
        at_bound = np.zeros(len(members), bool)
        todo = np.flatnonzero(np.isnan(fitted))
        if len(todo):
            found = maximise(modified[todo], t1[todo], t2[todo])
            fitted[todo] = found.rho
            at_bound[todo] = found.at_bound
        corr[rows[members], cols[members]] = fitted
        corr[cols[members], rows[members]] = fitted
        boundary += [(int(m), float(fitted[idx])) for idx, m in enumerate(members) if at_bound[idx]]
        groups.append(ShapeGroup(members, tables, t1, t2, fitted, at_bound))
    order = {pair: k for k, pair in enumerate(zip(rows, cols, strict=True))}
    empty.sort(key=lambda ab: order[(names.index(ab[0]), names.index(ab[1]))])
    boundary_pairs = [(names[rows[m]], names[cols[m]], r) for m, r in sorted(boundary)]
    return PolychoricMatrix(names, codes, levels, taus, corr, groups, empty, boundary_pairs)
