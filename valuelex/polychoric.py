"""Polychoric correlations by maximum likelihood, stable for sparse categories and near |rho| = 1.

The two-step estimator of ``lavaan`` (``lav_bvord_cor_twostep_fit``) and ``psych::polychoric``: each
variable's thresholds are fixed at ``qnorm`` of its cumulative proportions, and the correlation
maximises ``sum(n_ij log P_ij(rho))`` over the cells of the pair's table. What this module adds to
a plain implementation is numerical care where sparse data put it to the test:

1. **Cell probabilities that do not underflow.** ``P_ij`` is a rectangle probability of the standard
   bivariate normal. It is computed from four upper-orthant probabilities (Genz's ``BVNU``, the
   algorithm behind ``pbivnorm`` and ``mvtnorm``, absolute error about 1e-15) after reflecting each
   axis so that the four terms are as small as the cell allows. A cell that this difference cannot
   resolve (below ``RESOLVED`` of its largest term: off-diagonal cells as |rho| nears 1) is computed
   in log space instead, as the one-dimensional integral of ``phi(x) * P(Y in cell | x)``, whose
   integrand is log-concave: no cell probability is floored or rounded to 0.
2. **A maximum found by bracketing the likelihood, not by the sign of the score at the bounds.**
   The log-likelihood is evaluated on a grid in ``atanh(rho)`` over lavaan's interval
   [-0.999, 0.999]; the best grid point and its neighbours bracket the maximum; golden-section
   search on the likelihood narrows the bracket, and safeguarded Newton steps on the score (only at
   interior points near the maximum, where it is accurate) polish it to 1e-10.
3. **A maximum on the boundary is reported.** When the likelihood still rises at +-0.999, the value
   is lavaan's bound (lavaan's ``nlminb`` stops there too) and the pair is flagged ``at_bound``, so
   that callers can say so; it is never replaced silently.

Empty categories need no rule here: codes are the observed values (R's ``ordered()``), so an item
without a middle category simply has one threshold fewer, as in lavaan. Empty *cells* of a 2 x 2
table get lavaan's ``zero.add`` in :mod:`valuelex.wlsmv`; larger tables are used as observed
(lavaan's ``zero.add[2] = 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr

#: lavaan's bounds for a polychoric correlation (``nlminb(lower = -0.999, upper = +0.999)``).
RHO_BOUND = 0.999
#: Grid points in ``atanh(rho)`` over [-RHO_BOUND, RHO_BOUND] that bracket the maximum (step 0.25 in atanh).
GRID_POINTS = 31
#: A four-orthant difference is trusted when the cell holds at least this share of its largest term
#: (the orthants are exact to about 1e-15 absolute); smaller cells are integrated in log space.
RESOLVED = 1e-7
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


def cell_log_probabilities(tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """log P(cell) of every cell of each pair's table: tau1 (pairs, K1-1), tau2 (pairs, K2-1), rho (pairs,).

    Returns (pairs, K1, K2). Four upper orthants per cell after reflecting each axis whose interval lies
    mostly below 0 (reflection flips the sign of rho), so that the terms are small; cells the
    difference cannot resolve are integrated in log space (:func:`_log_rectangle`).
    """
    tau1, tau2, rho = np.atleast_2d(tau1), np.atleast_2d(tau2), np.atleast_1d(np.asarray(rho, float))
    lo1, up1 = _bounds(tau1)
    lo2, up2 = _bounds(tau2)
    shape = (len(rho), lo1.shape[1], lo2.shape[1])
    a1, b1 = np.broadcast_to(lo1[:, :, None], shape), np.broadcast_to(up1[:, :, None], shape)
    a2, b2 = np.broadcast_to(lo2[:, None, :], shape), np.broadcast_to(up2[:, None, :], shape)
    flip1, flip2 = b1 < -a1, b2 < -a2  # the interval lies mostly below 0: reflect it
    a1, b1 = np.where(flip1, -b1, a1), np.where(flip1, -a1, b1)
    a2, b2 = np.where(flip2, -b2, a2), np.where(flip2, -a2, b2)
    r = np.broadcast_to(rho[:, None, None], shape) * np.where(flip1 ^ flip2, -1.0, 1.0)
    largest = upper_orthant(a1, a2, r)
    cells = largest - upper_orthant(b1, a2, r) - upper_orthant(a1, b2, r) + upper_orthant(b1, b2, r)
    out = np.empty(shape)
    resolved = cells > RESOLVED * largest
    with np.errstate(divide="ignore"):
        out[resolved] = np.log(cells[resolved])
    hard = ~resolved
    if hard.any():
        out[hard] = _log_rectangle(a1[hard], b1[hard], a2[hard], b2[hard], r[hard])
    return out


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
    for _ in range(80):
        search.step()
    mode = search.best()
    peak = f(mode)
    # where the integrand has fallen by e^-40 on each side (monotone there)
    drop = peak - 40.0
    ends = []
    for outer in (lo, hi):
        inside, out = mode.copy(), outer.copy()
        beyond = f(out) < drop
        for _ in range(60):
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


def cell_probabilities(tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """P(cell) of every cell of each pair's table (pairs, K1, K2): ``exp`` of :func:`cell_log_probabilities`."""
    return np.exp(cell_log_probabilities(tau1, tau2, rho))


def bivariate_normal_pdf(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Density of the standard bivariate normal at (h, k): the derivative of its CDF in ``rho``."""
    one = (1.0 - rho) * (1.0 + rho)
    with np.errstate(over="ignore", invalid="ignore"):
        quad = np.where(np.isfinite(h) & np.isfinite(k), (h * h - 2 * rho * h * k + k * k) / (2 * one), np.inf)
    return np.exp(-quad) / (2 * np.pi * np.sqrt(one))


def cell_density_terms(tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """d P(cell) / d rho (lavaan's ``phi``): bivariate densities at the cell's four corners (pairs, K1, K2)."""
    n, k1, k2 = len(rho), tau1.shape[1] + 1, tau2.shape[1] + 1
    density = np.zeros((n, k1 + 1, k2 + 1))
    density[:, 1:k1, 1:k2] = bivariate_normal_pdf(tau1[:, :, None], tau2[:, None, :], rho[:, None, None])
    return density[:, 1:, 1:] - density[:, 1:, :-1] - density[:, :-1, 1:] + density[:, :-1, :-1]


# ------------------------------------------------------------------------------------------
# The maximum of the likelihood
# ------------------------------------------------------------------------------------------
def log_likelihood(freq: np.ndarray, tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``sum(freq * log P(cell))`` per pair (empty cells contribute nothing, whatever their probability)."""
    logp = cell_log_probabilities(tau1, tau2, rho)
    return np.sum(np.where(freq > 0, freq * logp, 0.0), axis=(1, 2))


@dataclass
class PolychoricFit:
    """Maximum-likelihood correlations of a set of pairs, and which of them stopped at lavaan's bound."""

    rho: np.ndarray
    at_bound: np.ndarray  # bool: the likelihood still rises at +-RHO_BOUND
    log_likelihood: np.ndarray


def maximise(freq: np.ndarray, tau1: np.ndarray, tau2: np.ndarray) -> PolychoricFit:
    """The rho in [-RHO_BOUND, RHO_BOUND] maximising ``sum(freq * log P(cell))`` for each pair.

    ``freq`` (pairs, K1, K2) holds the (possibly corrected) tables, ``tau1``/``tau2`` the fixed thresholds.
    Grid in ``atanh(rho)``, golden-section search on the likelihood inside the best grid point's
    neighbours, then Newton steps on the score kept inside that bracket (bisection when a step leaves it).
    """
    freq = np.asarray(freq, float)
    n = len(freq)
    limit = math.atanh(RHO_BOUND)
    grid = np.linspace(-limit, limit, GRID_POINTS)
    values = np.stack([log_likelihood(freq, tau1, tau2, np.full(n, math.tanh(z))) for z in grid], axis=1)
    best = np.argmax(values, axis=1)
    left = grid[np.maximum(best - 1, 0)]
    right = grid[np.minimum(best + 1, GRID_POINTS - 1)]

    def loglik(z: np.ndarray) -> np.ndarray:
        return log_likelihood(freq, tau1, tau2, np.tanh(z))

    # golden-section search in atanh(rho) on the likelihood itself
    search = _Golden(loglik, left, right)
    while np.max(search.right - search.left) > 1e-4:
        search.step()
    lo, hi = np.tanh(search.left), np.tanh(search.right)
    rho = np.tanh(search.best())
    # safeguarded Newton on the score inside [lo, hi] (interior points close to the maximum)
    for _ in range(60):
        logp = cell_log_probabilities(tau1, tau2, rho)
        with np.errstate(over="ignore", invalid="ignore"):
            ratio = np.where(freq > 0, freq * np.exp(-np.where(freq > 0, logp, 0.0)), 0.0)  # n / P
        dp = cell_density_terms(tau1, tau2, rho)
        score = np.sum(ratio * dp, axis=(1, 2))
        information = np.sum(
            np.where(freq > 0, ratio * dp * dp * np.exp(-np.where(freq > 0, logp, 0.0)), 0.0), axis=(1, 2)
        )
        lo = np.where(score > 0, rho, lo)
        hi = np.where(score < 0, rho, hi)
        step = np.divide(score, information, out=np.zeros(n), where=information > 0)
        new = rho + step
        outside = (new <= lo) | (new >= hi) | ~np.isfinite(new)
        new = np.where(outside, 0.5 * (lo + hi), new)
        done = (np.abs(new - rho) < TOLERANCE) | (hi - lo < TOLERANCE)
        rho = np.clip(new, -RHO_BOUND, RHO_BOUND)
        if done.all():
            break
    # a bound whose likelihood is as high (to FLAT) as the interior point found is the maximum: the
    # likelihood rises, or is flat, towards |rho| = 1
    found = log_likelihood(freq, tau1, tau2, rho)
    ends = values[:, [0, -1]]
    side = np.argmax(ends, axis=1)
    at_bound = ends[np.arange(n), side] >= found - FLAT * np.maximum(1.0, np.abs(found))
    rho = np.where(at_bound, np.where(side == 1, RHO_BOUND, -RHO_BOUND), rho)
    found = np.where(at_bound, ends[np.arange(n), side], found)
    return PolychoricFit(rho, at_bound, found)
