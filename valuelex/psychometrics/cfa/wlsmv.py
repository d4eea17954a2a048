"""Confirmatory factor analysis of binary and ordinal indicators by WLSMV, as lavaan computes it.

The reference is ``lavaan::cfa(model, data, ordered = TRUE, estimator = "WLSMV")`` (lavaan 0.6-14);
each step below names the lavaan function it follows, and ``tests/test_wlsmv.py`` compares the
numbers with lavaan's on binary and ordinal data.

1. Sample statistics (``lav_samplestats_step1``, ``lav_samplestats_step2``, ``lav_bvord``): each
   indicator's thresholds from its marginal proportions, then every pair's polychoric (for 0/1 data:
   tetrachoric) correlation by maximum likelihood with the thresholds fixed. A 2 x 2 table with one
   empty cell gets 0.5 added to the empty cell's diagonal and taken from the other (margins kept).
2. Their asymptotic covariance matrix Gamma (``muthen1984``): case-wise scores of the threshold and
   correlation likelihoods, combined with the two-step Jacobian.
3. The model (delta parameterization, one marker loading fixed to 1 per factor, residual variances
   ``1 - diag(Lambda Phi Lambda')``), fitted by diagonally weighted least squares: weights ``1 /
   diag(Gamma)``. Thresholds are free, so they are fitted exactly and only the correlations carry the fit.
   Levenberg-Marquardt from our start values; where that path reaches no stationary point (a weak marker
   makes a ridge that runs to infinity), from lavaan's start values (``lav_start``) and through the
   standardized parametrisation (``std.lv = TRUE``), keeping the best stationary solution (``_estimate``).
4. Robust standard errors (``lav_model_nvcov_robust_sem``), the mean-and-variance adjusted
   ("scaled-shifted") test (``lav_test_satorra_bentler``), the independence baseline, scaled CFI/TLI/
   RMSEA with its interval, the robust CFI/TLI/RMSEA of Savalei (2021) (``lav_fit_catml_dwls``) and
   the SRMR of the correlations (``lav_fit_srmr``).
5. Admissibility as lavaan judges it (``lav_model_estimate``, ``lav_object_post_check``,
   ``lav_model_vcov``): the optimiser converged and no gradient element exceeds 0.001, no negative
   variance, a positive definite latent covariance matrix, a positive definite sampling covariance of
   the estimates (otherwise the model is probably not identified).
"""

# Over 600 lines: one estimator that follows lavaan's code path from thresholds to robust fit (lav_samplestats,
# lav_model, lav_optim, lav_test, lav_fit), section by section, so that a reader can set each section beside
# lavaan's; tests/test_wlsmv.py checks the whole path against lavaan.

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from .. import polychoric
from ..polychoric import OrdinalDataError, ordinal_codes, pair_indices  # noqa: F401 (part of this module's API)
from .indices import cfi, rmsea, rmsea_interval, tli

#: lavaan's ``optim.dx.tol``: a converged solution must have no gradient element above this.
GRADIENT_TOLERANCE = 1e-3
#: lavaan's tolerance for negative eigenvalues of the latent covariance matrix (.Machine$double.eps^(3/4)).
EIGEN_TOLERANCE = np.finfo(float).eps ** 0.75
#: The robust (Savalei) indices need a positive definite polychoric matrix (lavaan: eigenvalues >= sqrt(eps)).
ROBUST_PD_TOLERANCE = np.finfo(float).eps ** 0.5
#: The optimiser gives up after this many iterations (then: not converged).
MAX_ITERATIONS = 500
#: A value lavaan uses in place of an infinite threshold.
_INF = 100.0


# ------------------------------------------------------------------------------------------
# 1. Thresholds and polychoric correlations
# ------------------------------------------------------------------------------------------
def _padded(thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower bounds of each category (lavaan's z1, z2: +-100 for infinity)."""
    upper = np.append(thresholds, _INF)
    lower = np.insert(thresholds, 0, -_INF)
    return upper, lower


def thresholds_and_scores(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds of one variable (``qnorm`` of its cumulative proportions) and the case-wise scores
    of the univariate probit likelihood with respect to them (``lav_uvord_scores``)."""
    k = int(codes.max()) + 1
    proportions = np.bincount(codes, minlength=k) / len(codes)
    tau = stats.norm.ppf(np.cumsum(proportions)[:-1])
    upper, lower = _padded(tau)
    probability = stats.norm.cdf(upper) - stats.norm.cdf(lower)
    per_category = np.zeros((k, k - 1))
    for c in range(k):
        if c < k - 1:
            per_category[c, c] += stats.norm.pdf(upper[c]) / probability[c]
        if c > 0:
            per_category[c, c - 1] -= stats.norm.pdf(lower[c]) / probability[c]
    return tau, per_category[codes]


@dataclass
class OrdinalStatistics:
    """What WLSMV is fitted to: thresholds, polychoric correlations and their asymptotic covariance.

    ``gamma`` is lavaan's NACOV: N times the asymptotic covariance matrix of (all thresholds, variable by
    variable; then the correlations below the diagonal, column by column: (2,1), (3,1), ..., (3,2), ...),
    over the ``informative`` correlations: a pair whose maximum is on the boundary (``boundary_pairs``)
    has no information, an unbounded sampling variance and no place in Gamma or in the fit. lavaan keeps
    such a pair with the value where its optimiser stopped on the flat likelihood and a weight near 0.
    """

    names: list[str]
    n_obs: int
    levels: list[np.ndarray]
    thresholds: list[np.ndarray]
    correlations: np.ndarray
    gamma: np.ndarray
    empty_cell_pairs: list[tuple[str, str]] = field(default_factory=list)
    #: pairs whose likelihood rises (or is flat) up to lavaan's bound +-0.999 (their correlation is that bound)
    boundary_pairs: list[tuple[str, str, float]] = field(default_factory=list)
    #: per correlation (lavaan's order): False for the boundary pairs
    informative: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.informative is None:
            self.informative = np.ones(len(self.pairs()[0]), bool)

    def boundary_note(self) -> str:
        """One line naming the pairs left out of the fit because their maximum is on the boundary ("" if none)."""
        if not self.boundary_pairs:
            return ""
        shown = ", ".join(f"{a} ~ {b} ({r:+.3f})" for a, b, r in self.boundary_pairs[:4])
        more = f" and {len(self.boundary_pairs) - 4} more" if len(self.boundary_pairs) > 4 else ""
        total = len(self.informative)
        return (
            f"{len(self.boundary_pairs)} of {total} polychoric correlations have their maximum on the boundary "
            f"(tables compatible with +-1, e.g. words whose counts never meet above their lowest categories; "
            f"reported at lavaan's bound +-{polychoric.RHO_BOUND}): {shown}{more}. They carry no information and are "
            "left out of the fit (lavaan keeps them with a weight near 0 at wherever its optimiser stopped)"
        )

    @property
    def n_variables(self) -> int:
        return len(self.names)

    @property
    def n_thresholds(self) -> int:
        return sum(len(t) for t in self.thresholds)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each correlation in lavaan's order (below the diagonal, column by column)."""
        return pair_indices(self.n_variables)

    def vector(self) -> np.ndarray:
        """The sample statistics as one vector: thresholds, then correlations (lavaan's ``wls.obs``)."""
        rows, cols = self.pairs()
        return np.concatenate([*self.thresholds, self.correlations[rows, cols]])

    def labels(self) -> list[str]:
        rows, cols = self.pairs()
        th = [f"{n}|t{k + 1}" for n, t in zip(self.names, self.thresholds, strict=True) for k in range(len(t))]
        return th + [f"{self.names[i]}~~{self.names[j]}" for i, j in zip(rows, cols, strict=True)]


def ordinal_statistics(data: pd.DataFrame) -> OrdinalStatistics:
    """Thresholds, polychoric correlations and Gamma of ordered indicators (``muthen1984`` without covariates).

    The correlations are :func:`valuelex.polychoric.polychoric_matrix`'s. A pair whose maximum is on the
    boundary has no information (its likelihood is flat there, every case's score is 0): it is left out
    of Gamma and of the fit (``informative``).
    """
    matrix = polychoric.polychoric_matrix(data)
    codes, levels, names = matrix.codes, matrix.levels, matrix.names
    n, p = codes.shape
    ks = np.array([len(v) for v in levels])
    uni_scores = [thresholds_and_scores(codes[:, j])[1] for j in range(p)]
    th_start = np.concatenate([[0], np.cumsum(ks - 1)])[:-1]
    n_th = int(np.sum(ks - 1))
    rows, cols = pair_indices(p)
    informative = matrix.informative()
    corr_scores = np.zeros((n, len(rows)))
    a21 = np.zeros((len(rows), n_th))
    for group in matrix.groups:
        keep = ~group.at_bound
        if keep.any():
            _pair_scores(
                codes,
                group.members[keep],
                rows,
                cols,
                group.tau1[keep],
                group.tau2[keep],
                group.tables[keep],
                group.rho[keep],
                th_start,
                corr_scores,
                a21,
            )
    th_scores = np.concatenate(uni_scores, axis=1)
    gamma = _muthen_gamma(
        th_scores,
        corr_scores[:, informative],
        a21[informative],
        ks,
        th_start,
        [f"{names[i]} and {names[j]}" for i, j in zip(rows[informative], cols[informative], strict=True)],
    )
    return OrdinalStatistics(
        names,
        n,
        levels,
        matrix.thresholds,
        matrix.correlations,
        gamma,
        matrix.empty_cell_pairs,
        matrix.boundary_pairs,
        informative,
    )


def _pair_scores(
    codes: np.ndarray,
    members: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    t1: np.ndarray,
    t2: np.ndarray,
    tables: np.ndarray,
    rho: np.ndarray,
    th_start: np.ndarray,
    corr_scores: np.ndarray,
    a21: np.ndarray,
) -> None:
    """Case-wise scores of each pair's bivariate likelihood in rho, and the rho-threshold block of the
    Jacobian (lavaan's A21), from ``lav_bvord_cor_scores`` evaluated on the observed (uncorrected) cells."""
    k1, k2 = t1.shape[1] + 1, t2.shape[1] + 1
    observed = tables > 0  # only observed cells enter the scores (an empty one may have P = 0 near the bound)
    cells = np.where(observed, polychoric.cell_probabilities(t1, t2, rho, where=observed), 1.0)
    d_rho = np.where(observed, polychoric.cell_density_terms(t1, t2, rho) / cells, 0.0)  # (pairs, K1, K2)
    root = np.sqrt(1.0 - rho**2)[:, None, None]
    u1, l1 = np.append(t1, np.full((len(rho), 1), _INF), axis=1), np.insert(t1, 0, -_INF, axis=1)
    u2, l2 = np.append(t2, np.full((len(rho), 1), _INF), axis=1), np.insert(t2, 0, -_INF, axis=1)
    r = rho[:, None, None]

    def side(z: np.ndarray, upper_other: np.ndarray, lower_other: np.ndarray) -> np.ndarray:
        # phi(z) * [Phi((u - rho z) / R) - Phi((l - rho z) / R)] on the (own category, other category) grid
        return stats.norm.pdf(z)[:, :, None] * (
            stats.norm.cdf((upper_other[:, None, :] - r * z[:, :, None]) / root)
            - stats.norm.cdf((lower_other[:, None, :] - r * z[:, :, None]) / root)
        )

    z1_up, z1_lo = side(u1, u2, l2), side(l1, u2, l2)  # (pairs, K1, K2)
    z2_up = side(u2, u1, l1).transpose(0, 2, 1)  # (pairs, K1, K2) after transposing the grid
    z2_lo = side(l2, u1, l1).transpose(0, 2, 1)
    for idx, m in enumerate(members):
        i, j = rows[m], cols[m]
        cell = codes[:, i] * k2 + codes[:, j]
        corr_scores[:, m] = d_rho[idx].ravel()[cell]
        counts = tables[idx]
        weight = counts * d_rho[idx]  # sum over cases of s_rho * s_threshold = sum over cells
        for k in range(k1 - 1):  # thresholds of variable i: + at its own upper bound, - at its lower
            d_th = (np.where(np.arange(k1)[:, None] == k, z1_up[idx], 0.0)
                    - np.where(np.arange(k1)[:, None] == k + 1, z1_lo[idx], 0.0)) / cells[idx]  # fmt: skip
            a21[m, th_start[i] + k] = np.sum(weight * d_th)
        for k in range(k2 - 1):
            d_th = (np.where(np.arange(k2)[None, :] == k, z2_up[idx], 0.0)
                    - np.where(np.arange(k2)[None, :] == k + 1, z2_lo[idx], 0.0)) / cells[idx]  # fmt: skip
            a21[m, th_start[j] + k] = np.sum(weight * d_th)


def _muthen_gamma(
    th_scores: np.ndarray,
    corr_scores: np.ndarray,
    a21: np.ndarray,
    ks: np.ndarray,
    th_start: np.ndarray,
    pair_names: list[str],
) -> np.ndarray:
    """N times the asymptotic covariance of (thresholds, correlations): B^-1 INNER B^-T with the block
    triangular B of the two-step estimator (``muthen1984``)."""
    n = th_scores.shape[0]
    scores = np.hstack([th_scores, corr_scores])
    inner = scores.T @ scores
    n_th = th_scores.shape[1]
    a11 = np.zeros((n_th, n_th))
    for start, k in zip(th_start, ks, strict=True):
        block = slice(start, start + k - 1)
        a11[block, block] = inner[block, block]
    a22 = np.einsum("ij,ij->j", corr_scores, corr_scores)
    if np.any(a22 == 0):
        which = pair_names[int(np.flatnonzero(a22 == 0)[0])]
        raise OrdinalDataError(f"the polychoric correlation of {which} has no information (a degenerate pair)")
    a11_inv = np.linalg.inv(a11)
    b_inv = np.zeros((len(inner), len(inner)))
    b_inv[:n_th, :n_th] = a11_inv
    b_inv[n_th:, n_th:] = np.diag(1.0 / a22)
    b_inv[n_th:, :n_th] = -(a21 / a22[:, None]) @ a11_inv
    return n * (b_inv @ inner @ b_inv.T)


# ------------------------------------------------------------------------------------------
# 2. The factor model (delta parameterization)
# ------------------------------------------------------------------------------------------
@dataclass
class Parameter:
    """One free parameter: lavaan's (lhs, op, rhs) and where it sits."""

    lhs: str
    op: str
    rhs: str
    kind: str  # "loading", "second_order", "psi" (exogenous (co)variance), "zeta" (disturbance variance)
    row: int
    col: int


class FactorModel:
    """First-order factors measured by indicators, optionally loading on second-order factors.

    Latent covariance of the first-order factors: ``Phi = A Psi A' + Z``. ``A`` maps the exogenous
    factors (the second-order factors, and first-order factors under none) to the first-order ones,
    ``Psi`` is their free covariance matrix (lavaan's default: exogenous factors covary), ``Z`` holds the
    disturbance variances of the first-order factors under a second-order factor. The first indicator
    of each factor (and the first first-order factor of each second-order factor) has its loading fixed
    to 1, lavaan's default marker identification.
    """

    def __init__(
        self,
        factors: dict[str, list[str]],
        higher_order: dict[str, list[str]],
        indicators: list[str],
        standardized: bool = False,
    ):
        self.standardized = standardized
        self.factors, self.higher_order = factors, higher_order
        self.indicators = list(indicators)
        self.first = list(factors)
        self.higher = list(higher_order)
        parent = {f: g for g, fs in higher_order.items() for f in fs}
        standalone = [f for f in self.first if f not in parent]
        self.exogenous = self.higher + standalone
        p, m, q = len(self.indicators), len(self.first), len(self.exogenous)
        position = {w: i for i, w in enumerate(self.indicators)}
        self.lam = np.zeros((p, m))
        self.a = np.zeros((m, q))
        self.parameters: list[Parameter] = []
        #: the marker of each first-order factor (an indicator) and of each exogenous factor (a first-order factor)
        self.marker = np.array([position[words[0]] for words in factors.values()], dtype=int)
        self.exogenous_marker = np.array(
            [self.first.index(higher_order[g][0]) for g in self.higher] + [self.first.index(f) for f in standalone],
            dtype=int,
        )
        for f_idx, (f, words) in enumerate(factors.items()):
            for w_idx, w in enumerate(words):
                self.lam[position[w], f_idx] = 1.0
                if w_idx > 0 or standardized:
                    self.parameters.append(Parameter(f, "=~", w, "loading", position[w], f_idx))
        for g_idx, g in enumerate(self.higher):
            for f_pos, f in enumerate(higher_order[g]):
                self.a[self.first.index(f), g_idx] = 1.0
                if f_pos > 0 or standardized:
                    self.parameters.append(Parameter(g, "=~", f, "second_order", self.first.index(f), g_idx))
        for s_idx, f in enumerate(standalone):
            self.a[self.first.index(f), len(self.higher) + s_idx] = 1.0
        for u in range(q):
            for v in range(u + standardized, q):
                self.parameters.append(Parameter(self.exogenous[u], "~~", self.exogenous[v], "psi", v, u))
        # standardized (lavaan's std.lv): every latent (disturbance) variance fixed to 1, every loading free
        self._psi_fixed = np.eye(q) if standardized else np.zeros((q, q))
        self._zeta_fixed = np.zeros((m, m))
        for f_idx, f in enumerate(self.first):
            if f in parent:
                if standardized:
                    self._zeta_fixed[f_idx, f_idx] = 1.0
                else:
                    self.parameters.append(Parameter(f, "~~", f, "zeta", f_idx, f_idx))
        self._kind = np.array([par.kind for par in self.parameters])
        self._row = np.array([par.row for par in self.parameters], dtype=int)
        self._col = np.array([par.col for par in self.parameters], dtype=int)
        self._pairs = pair_indices(p)

    @property
    def n_free(self) -> int:
        return len(self.parameters)

    def matrices(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lambda, A, Psi and Z at the parameter vector ``theta``."""
        lam, a = self.lam.copy(), self.a.copy()
        psi, zeta = self._psi_fixed.copy(), self._zeta_fixed.copy()
        kind, r, c = self._kind, self._row, self._col
        for name, target in (("loading", lam), ("second_order", a), ("psi", psi), ("zeta", zeta)):
            k = kind == name
            target[r[k], c[k]] = theta[k]
        psi[c[kind == "psi"], r[kind == "psi"]] = theta[kind == "psi"]
        return lam, a, psi, zeta

    def phi(self, theta: np.ndarray) -> np.ndarray:
        """Covariance matrix of the first-order factors."""
        _, a, psi, zeta = self.matrices(theta)
        return a @ psi @ a.T + zeta

    def implied(self, theta: np.ndarray) -> np.ndarray:
        """Model-implied correlation matrix of the latent responses (unit diagonal by the delta parameterization)."""
        lam = self.matrices(theta)[0]
        sigma = lam @ self.phi(theta) @ lam.T
        np.fill_diagonal(sigma, 1.0)
        return sigma

    def residual_variances(self, theta: np.ndarray) -> np.ndarray:
        """lavaan's ``theta`` diagonal: 1 - the variance the factors explain."""
        lam = self.matrices(theta)[0]
        return 1.0 - np.einsum("ij,jk,ik->i", lam, self.phi(theta), lam)

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """d (implied correlations below the diagonal, lavaan's order) / d theta: pairs x parameters.

        Per parameter kind, for the pair (i, j): a loading lambda_af gives delta_ia (Lambda Phi)_jf +
        delta_ja (Lambda Phi)_if; a second-order loading a_fg gives lambda_if M_jg + M_ig lambda_jf with
        M = Lambda A Psi; an exogenous (co)variance psi_uv gives L_iu L_jv + L_iv L_ju with L = Lambda A
        (once for a variance); a disturbance variance zeta_f gives lambda_if lambda_jf.
        """
        lam, a, psi, zeta = self.matrices(theta)
        rows, cols = self._pairs
        out = np.zeros((len(rows), self.n_free))
        kind, r, c = self._kind, self._row, self._col
        k = np.flatnonzero(kind == "loading")
        lam_phi = lam @ (a @ psi @ a.T + zeta)
        out[:, k] = (rows[:, None] == r[k]) * lam_phi[cols][:, c[k]] + (cols[:, None] == r[k]) * lam_phi[rows][:, c[k]]
        k = np.flatnonzero(kind == "second_order")
        m = lam @ a @ psi
        out[:, k] = lam[rows][:, r[k]] * m[cols][:, c[k]] + m[rows][:, c[k]] * lam[cols][:, r[k]]
        k = np.flatnonzero(kind == "psi")
        la = lam @ a
        both = la[rows][:, r[k]] * la[cols][:, c[k]]
        out[:, k] = np.where(r[k] == c[k], both, both + la[rows][:, c[k]] * la[cols][:, r[k]])
        k = np.flatnonzero(kind == "zeta")
        out[:, k] = lam[rows][:, r[k]] * lam[cols][:, r[k]]
        return out

    def start(self, correlations: np.ndarray) -> np.ndarray:
        """Starting values: loadings 1 (sign from the correlation with the factor's marker), factor
        variances near the average correlation of the factor's indicators, covariances 0, disturbance
        variances half of that."""
        theta = np.zeros(self.n_free)
        markers, variance = {}, {}
        for f_idx in range(len(self.first)):
            members = np.flatnonzero(self.lam[:, f_idx])
            markers[f_idx] = members[0]
            r = correlations[np.ix_(members, members)][np.triu_indices(len(members), 1)]
            variance[f_idx] = float(np.clip(np.mean(np.abs(r)) if len(r) else 0.5, 0.05, 0.95))
        for k, par in enumerate(self.parameters):
            if par.kind == "loading":
                sign = np.sign(correlations[par.row, markers[par.col]]) or 1.0
                theta[k] = sign
            elif par.kind == "second_order":
                theta[k] = 1.0
            elif par.kind == "psi" and par.row == par.col:
                name = self.exogenous[par.row]
                f_idx = self.first.index(name) if name in self.first else None
                theta[k] = variance[f_idx] if f_idx is not None else 0.25
            elif par.kind == "zeta":
                theta[k] = 0.5 * variance[par.row]
        return theta

    def lavaan_start(self, correlations: np.ndarray) -> np.ndarray:
        """lavaan's default starting values (``lav_start``, 0.6-14): each first-order factor's loadings by
        Hagglund's fabin3 on its indicators' correlations (``lav_cfa_1fac_fabin``), second-order loadings
        0.7, every latent (disturbance) variance 0.05, covariances 0."""
        loading = {}
        for f_idx in range(len(self.first)):
            members = np.flatnonzero(self.lam[:, f_idx])
            members = np.concatenate([[self.marker[f_idx]], members[members != self.marker[f_idx]]])
            values = _fabin3(correlations[np.ix_(members, members)])
            loading.update({(i, f_idx): v for i, v in zip(members, values, strict=True)})
        theta = np.zeros(self.n_free)
        for k, par in enumerate(self.parameters):
            if par.kind == "loading":
                theta[k] = loading[par.row, par.col]
            elif par.kind == "second_order":
                theta[k] = 0.7
            elif par.row == par.col:  # a latent variance or disturbance variance
                theta[k] = 0.05
        return theta

    def standardized_start(self) -> np.ndarray:
        """Starting values of the standardized model: every loading 0.7 (lavaan's first guess for a loading
        of ordered indicators, its "simple" start), factor covariances 0."""
        return np.where(np.isin(self._kind, ["loading", "second_order"]), 0.7, 0.0)

    def to_marker(self, theta: np.ndarray, marker: FactorModel) -> np.ndarray:
        """The parameters of ``marker`` (the same factors, marker identification) that give the same implied
        correlations as this standardized model at ``theta``: each latent variable rescaled so that its
        marker's loading is 1. A first-order factor is scaled by its first indicator's loading s_f, an
        exogenous factor by its marker's scale (a second-order factor g by s_f a_fg of its first factor f)."""
        lam, a, psi, zeta = self.matrices(theta)
        scale = lam[self.marker, np.arange(len(self.first))]
        exo_scale = scale[self.exogenous_marker] * a[self.exogenous_marker, np.arange(len(self.exogenous))]
        values = {
            "loading": lam / scale[None, :],
            "second_order": scale[:, None] * a / exo_scale[None, :],
            "psi": psi * np.outer(exo_scale, exo_scale),
            "zeta": zeta * np.outer(scale, scale),
        }
        return np.array([values[par.kind][par.row, par.col] for par in marker.parameters])

    def latent_covariance(self, theta: np.ndarray) -> np.ndarray:
        """Covariance matrix of every latent variable (first-order, then second-order): lavaan's ``cov.lv``."""
        _, a, psi, zeta = self.matrices(theta)
        h = len(self.higher)
        phi = a @ psi @ a.T + zeta
        cross = a @ psi[:, :h]
        return np.block([[phi, cross], [cross.T, psi[:h, :h]]])

    def latent_names(self) -> list[str]:
        return self.first + self.higher


def _fabin3(s: np.ndarray) -> np.ndarray:
    """Loadings of a one-factor model, the first fixed to 1 (lavaan's ``lav_cfa_1fac_fabin``, method
    "fabin3", bounds on; with fewer than 4 indicators ``lav_cfa_1fac_3ind``, a negative triad giving 1s)."""
    n = len(s)
    if n < 4:
        if n == 1:
            return np.ones(1)
        if n == 2:  # padded to 3 x 3 as lavaan does: the third variable copies the second's covariances
            mean, top = (s[0, 0] + s[1, 1]) / 2, max(s[0, 0], s[1, 1])
            s = np.array([[s[0, 0], s[0, 1], mean], [s[1, 0], s[1, 1], s[1, 0]], [mean, s[1, 0], top]])
        if s[1, 0] * s[2, 0] * s[2, 1] < 0:
            return np.ones(n)
        bound = math.sqrt(1.0 / (0.1 * s[0, 0]))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.array([1.0, s[2, 1] / s[2, 0], s[2, 1] / s[1, 0]])
        out = np.clip(out, -bound * np.sqrt(np.diag(s)), bound * np.sqrt(np.diag(s)))
        out[~np.isfinite(out)] = 1.0
        return out[:n]
    out = np.ones(n)
    for i in range(1, n):
        rest = [k for k in range(1, n) if k != i]
        s31 = s[rest, 0]
        try:
            tmp = np.linalg.solve(s[np.ix_(rest, rest)], s31)
            out[i] = (s[i, rest] @ tmp) / (s31 @ tmp)
        except np.linalg.LinAlgError:
            out[i] = (s[i, rest] @ s31) / (s31 @ s31)
    bound = np.sqrt(np.diag(s) / (0.1 * s[0, 0]))
    out = np.clip(out, -bound, bound)
    out[~np.isfinite(out)] = 1.0
    return out


# ------------------------------------------------------------------------------------------
# 3. Estimation, standard errors, test statistics, fit measures
# ------------------------------------------------------------------------------------------
@dataclass
class WLSMVResult:
    """A fitted WLSMV model: lavaan-style parameter table, fit measures under lavaan's names, admissibility."""

    n_obs: int
    n_parameters: int  # lavaan's npar: thresholds + loadings + latent (co)variances
    df: int
    estimates: pd.DataFrame  # lhs, op, rhs, est, se, std_all, free
    measures: dict[str, float]  # lavaan's fitMeasures names
    converged: bool
    problems: list[str]  # why the solution is not admissible (empty when it is)
    notes: list[str]
    statistics: OrdinalStatistics
    implied: np.ndarray

    @property
    def estimable(self) -> bool:
        return self.converged and not self.problems


def _chi2_sf(x: float, df: float) -> float:
    return float(stats.chi2.sf(x, df)) if df > 0 else float("nan")


def _scaled_shifted(chisq: float, df: float, ug: np.ndarray) -> dict[str, float]:
    """The mean-and-variance adjusted ("scaled-shifted", Mplus' WLSMV) statistic of ``lav_test_satorra_bentler``."""
    trace, trace2 = float(np.trace(ug)), float(np.sum(ug * ug.T))
    if df <= 0:
        return {"stat": chisq, "scaling": float("nan"), "shift": float("nan"), "trace": trace, "trace2": trace2}
    a = math.sqrt(df / trace2)
    shift = df - a * trace
    return {"stat": chisq * a + shift, "scaling": 1.0 / a, "shift": shift, "trace": trace, "trace2": trace2}


def _ml_correlation_weight(sigma: np.ndarray) -> np.ndarray:
    """Normal-theory weight matrix of the correlations at ``sigma`` (lavaan's catML ``wls.v``:
    0.5 D*'(S^-1 x S^-1) D* over the below-diagonal elements)."""
    s_inv = np.linalg.inv(sigma)
    rows, cols = pair_indices(len(sigma))
    return s_inv[np.ix_(rows, rows)] * s_inv[np.ix_(cols, cols)] + s_inv[np.ix_(rows, cols)] * s_inv[np.ix_(cols, rows)]


def fit(
    factors: dict[str, list[str]],
    data: pd.DataFrame,
    higher_order: dict[str, list[str]] | None = None,
    statistics: OrdinalStatistics | None = None,
    max_iterations: int = MAX_ITERATIONS,
) -> WLSMVResult:
    """Fit a CFA of ordered indicators by WLSMV (``lavaan::cfa(..., ordered = TRUE, estimator = "WLSMV")``).

    ``factors`` maps each factor to its indicator columns of ``data`` (first = marker), ``higher_order``
    each second-order factor to its first-order factors. ``statistics`` (from :func:`ordinal_statistics`
    on exactly these columns, in this order) can be passed to reuse them.
    """
    higher_order = higher_order or {}
    indicators = list(dict.fromkeys(w for ws in factors.values() for w in ws))
    if statistics is None:
        with threadpool_limits(limits=1):  # small matrices: one BLAS thread is much faster on a busy machine
            statistics = ordinal_statistics(data[indicators])
    sample = statistics
    if sample.names != [str(w) for w in indicators]:
        raise ValueError("statistics were computed on other columns than the model's indicators")
    model = FactorModel(factors, higher_order, indicators)
    n, p = sample.n_obs, len(indicators)
    n_th = sample.n_thresholds
    used = sample.informative  # the correlations fitted (all but the boundary pairs)
    rows, cols = (index[used] for index in pair_indices(p))
    r = sample.correlations[rows, cols]
    weights = 1.0 / np.diag(sample.gamma)
    w_cor = weights[n_th:]
    df = len(r) - model.n_free
    notes = []
    if sample.empty_cell_pairs:
        notes.append(
            f"{len(sample.empty_cell_pairs)} pair(s) of indicators with an empty cell in their table "
            f"(0.5 added to the 2 x 2 tables, lavaan's zero.add)"
        )
    if sample.boundary_pairs:
        notes.append(sample.boundary_note() + f": df {df} instead of {len(used) - model.n_free}")

    if df < 0 and sample.boundary_pairs:
        raise OrdinalDataError(
            f"{len(sample.boundary_pairs)} of {len(used)} polychoric correlations have their maximum on the boundary "
            f"and carry no information: the other {len(r)} cannot identify {model.n_free} free parameters"
        )
    if df < 0:
        raise ValueError("more free parameters than correlations: check identification before fitting")
    with threadpool_limits(limits=1):  # small matrices: one BLAS thread is much faster on a busy machine
        solution = _estimate(model, sample, max_iterations)
    if solution.start != "default":
        # no iteration count here: it is a path's length, and differs between CPUs by a few iterations
        notes.append(f"estimated from {RESCUE_STARTS[solution.start]}")
    theta = solution.x
    resid = r - model.implied(theta)[rows, cols]
    f_dwls = float(np.sum(w_cor * resid**2))
    structural = model.jacobian(theta)[used]
    # lavaan's objective is fmin = 0.5 (N - 1) / N F; its gradient must vanish (check.gradient)
    gradient = 0.5 * (n - 1) / n * (-2.0) * (w_cor * resid) @ structural
    converged = solution.converged
    problems = []
    if not converged:
        problems.append(f"not converged: no solution after {solution.iterations} iterations of the optimiser")
    elif np.max(np.abs(gradient), initial=0.0) > GRADIENT_TOLERANCE:
        converged = False
        problems.append(
            "not converged: the optimiser stopped but not all elements of the gradient are (near) zero "
            f"(largest {np.max(np.abs(gradient)):.2g} > {GRADIENT_TOLERANCE:g})"
        )

    # the full Jacobian of (thresholds, correlations) in (thresholds, structural parameters)
    n_struct = model.n_free
    delta = np.zeros((n_th + len(r), n_th + n_struct))
    delta[:n_th, :n_th] = np.eye(n_th)
    delta[n_th:, n_th:] = structural
    wd = weights[:, None] * delta
    information = delta.T @ wd
    gamma = sample.gamma
    try:
        info_inv = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        info_inv = None
        problems.append("not identified: the information matrix is singular")
    vcov = None
    if info_inv is not None:
        vcov = info_inv @ (wd.T @ gamma @ wd) @ info_inv / (n - 1)
        smallest = float(np.linalg.eigvalsh((vcov + vcov.T) / 2).min())
        if converged and smallest < EIGEN_TOLERANCE:
            problems.append(
                "probably not identified: the sampling covariance matrix of the estimates is not positive "
                f"definite (smallest eigenvalue {_eigenvalue(smallest)})"
            )
    problems[:0] = _admissibility(model, theta) if converged else []

    estimates = _estimate_table(model, sample, theta, vcov)
    measures = {"npar": float(n_th + n_struct), "ntotal": float(n)}
    if converged and info_inv is not None:
        measures.update(_fit_measures(sample, model, theta, f_dwls, df, weights, delta, info_inv))
    return WLSMVResult(
        n_obs=n,
        n_parameters=n_th + n_struct,
        df=df,
        estimates=estimates,
        measures=measures,
        converged=converged,
        problems=problems,
        notes=notes,
        statistics=sample,
        implied=model.implied(theta),
    )


@dataclass
class Solution:
    x: np.ndarray
    converged: bool
    iterations: int
    start: str = "default"  # which path found it (``RESCUE_STARTS``)


#: The paths :func:`_estimate` tries when the default one fails, and how a fit's notes name them.
RESCUE_STARTS = {
    "lavaan": "lavaan's starting values (fabin3 loadings, latent variances 0.05), after the default start did not "
    "converge",
    "standardized": "the standardized parametrisation (latent variances 1, every loading free: lavaan's std.lv), "
    "then the marker parametrisation from its solution, after the default start did not converge",
}


def _least_squares(model: FactorModel, sample: OrdinalStatistics):  # noqa: ANN202 - two closures
    """The weighted residuals of the fitted correlations and their Jacobian, as functions of ``model``'s parameters."""
    used = sample.informative
    rows, cols = (index[used] for index in pair_indices(sample.n_variables))
    r = sample.correlations[rows, cols]
    root_w = np.sqrt(1.0 / np.diag(sample.gamma)[sample.n_thresholds :])

    def residuals(theta: np.ndarray) -> np.ndarray:
        return root_w * (r - model.implied(theta)[rows, cols])

    def jacobian(theta: np.ndarray) -> np.ndarray:
        return -root_w[:, None] * model.jacobian(theta)[used]

    return residuals, jacobian


def _estimate(model: FactorModel, sample: OrdinalStatistics, max_iterations: int) -> Solution:
    """Minimise the DWLS discrepancy over ``model``'s (marker) parameters.

    Levenberg-Marquardt from :meth:`FactorModel.start`. When that path does not reach a stationary point
    (lavaan's test: no element of fmin's gradient above ``GRADIENT_TOLERANCE``), two more paths are tried and
    the stationary solution with the lowest discrepancy is kept (none: the default path's end, not
    converged):

    * lavaan's own starting values (:meth:`FactorModel.lavaan_start`);
    * the standardized parametrisation. In the marker parametrisation a marker that barely measures its
      factor puts a ridge of ever lower discrepancy at infinity (the factor's variance to 0, the other
      loadings to infinity, their products finite) that Levenberg-Marquardt can follow without end, where
      lavaan's quasi-Newton steps may not. With the factor variances fixed to 1 and every loading free, a
      marker loading near 0 is an ordinary point; from the standardized solution (or wherever it stopped:
      it cannot reach a solution with a negative latent variance) the marker parametrisation is fitted
      again (:meth:`FactorModel.to_marker`).

    The rescue runs only when the default path fails, so every fit that converged before is unchanged.
    """
    residuals, jacobian = _least_squares(model, sample)
    n = sample.n_obs

    def stationary(solution: Solution) -> bool:
        f = residuals(solution.x)
        gradient = 0.5 * (n - 1) / n * 2.0 * (jacobian(solution.x).T @ f)
        return solution.converged and np.max(np.abs(gradient), initial=0.0) <= GRADIENT_TOLERANCE

    def cost(solution: Solution) -> float:
        f = residuals(solution.x)
        return float(f @ f)

    first = levenberg_marquardt(residuals, jacobian, model.start(sample.correlations), max_iterations)
    if stationary(first):
        return first
    found = []
    lavaan = levenberg_marquardt(residuals, jacobian, model.lavaan_start(sample.correlations), max_iterations)
    found.append(Solution(lavaan.x, lavaan.converged, lavaan.iterations, "lavaan"))
    standardized = FactorModel(model.factors, model.higher_order, model.indicators, standardized=True)
    std_residuals, std_jacobian = _least_squares(standardized, sample)
    std = levenberg_marquardt(std_residuals, std_jacobian, standardized.standardized_start(), max_iterations)
    with np.errstate(divide="ignore", invalid="ignore"):
        again = standardized.to_marker(std.x, model)
    if np.all(np.isfinite(again)):
        polished = levenberg_marquardt(residuals, jacobian, again, max_iterations)
        found.append(Solution(polished.x, polished.converged, std.iterations + polished.iterations, "standardized"))
    found = [s for s in found if stationary(s)]
    return min(found, key=cost) if found else first


def _eigenvalue(value: float) -> str:
    """An eigenvalue as a note shows it: one at the level of rounding error (|x| < 1e-10) is "0 up to rounding",
    whose digits would differ between CPUs."""
    return "0 up to rounding" if abs(value) < 1e-10 else f"{value:.3g}"


def levenberg_marquardt(residuals, jacobian, start: np.ndarray, max_iterations: int = MAX_ITERATIONS) -> Solution:
    """Minimise ``sum(residuals(x)**2)`` by Levenberg-Marquardt steps on the normal equations.

    Converged when the gradient (in lavaan's fmin scale, which is smaller) is below 1e-9 in every
    element, or when a step changes neither the objective (relative 1e-15) nor the parameters (1e-12).
    """
    x = np.asarray(start, float).copy()
    f = residuals(x)
    cost = float(f @ f)
    damping = 1e-3
    for iteration in range(1, max_iterations + 1):
        jac = jacobian(x)
        gradient = jac.T @ f
        if np.max(np.abs(gradient), initial=0.0) < 1e-9:
            return Solution(x, True, iteration)
        hessian = jac.T @ jac
        scale = np.maximum(np.diag(hessian), 1e-12)
        while True:
            try:
                step = np.linalg.solve(hessian + damping * np.diag(scale), -gradient)
            except np.linalg.LinAlgError:
                damping *= 10.0
                continue
            candidate = x + step
            f_new = residuals(candidate)
            cost_new = float(f_new @ f_new)
            if np.isfinite(cost_new) and cost_new <= cost:
                break
            damping *= 10.0
            if damping > 1e16:
                return Solution(x, False, iteration)
        small_step = np.max(np.abs(step)) < 1e-12 * (1.0 + np.max(np.abs(x)))
        flat = cost - cost_new <= 1e-15 * max(cost, 1e-300)
        x, f, cost = candidate, f_new, cost_new
        damping = max(damping / 10.0, 1e-12)
        if small_step and flat:
            return Solution(x, True, iteration)
    return Solution(x, False, max_iterations)


def _admissibility(model: FactorModel, theta: np.ndarray) -> list[str]:
    """lavaan's ``lav_object_post_check``: negative residual or latent variances, a latent covariance
    matrix that is not positive definite."""
    problems = []
    residual = model.residual_variances(theta)
    negative = [w for w, v in zip(model.indicators, residual, strict=True) if v < 0]
    if negative:
        problems.append(
            "Heywood case: negative residual variance of "
            + ", ".join(negative[:6])
            + (f" and {len(negative) - 6} more" if len(negative) > 6 else "")
            + " (a loading above 1 in the standardised solution)"
        )
    latent = model.latent_covariance(theta)
    psi = model.matrices(theta)[2]
    own = dict(zip(model.exogenous, np.diag(psi), strict=True))
    own.update({model.first[par.row]: theta[k] for k, par in enumerate(model.parameters) if par.kind == "zeta"})
    negative_lv = [name for name, value in own.items() if value < 0]
    if negative_lv:
        problems.append("negative variance of latent factor(s) (or of their disturbances): " + ", ".join(negative_lv))
    elif np.linalg.eigvalsh(latent).min() < -EIGEN_TOLERANCE:
        problems.append(
            "the covariance matrix of the latent factors is not positive definite (a factor correlation beyond +-1)"
        )
    return problems


def _estimate_table(
    model: FactorModel, sample: OrdinalStatistics, theta: np.ndarray, vcov: np.ndarray | None
) -> pd.DataFrame:
    """lavaan's ``parameterEstimates(fit, standardized = TRUE)``: est, se and std.all of the loadings
    (markers fixed to 1), thresholds, residual variances (fixed by the delta parameterization) and
    latent (co)variances."""
    n_th = sample.n_thresholds
    se_all = np.sqrt(np.clip(np.diag(vcov), 0, None)) if vcov is not None else np.full(n_th + model.n_free, np.nan)
    latent = model.latent_covariance(theta)
    names = model.latent_names()
    sd = {name: math.sqrt(v) if v > 0 else float("nan") for name, v in zip(names, np.diag(latent), strict=True)}
    lam, a, _, _ = model.matrices(theta)
    se_of = {(par.lhs, par.op, par.rhs): se_all[n_th + k] for k, par in enumerate(model.parameters)}
    rows = []
    for f_idx, f in enumerate(model.first):
        for i in np.flatnonzero(model.lam[:, f_idx]):
            w = model.indicators[i]
            est = lam[i, f_idx]
            rows.append((f, "=~", w, est, se_of.get((f, "=~", w), 0.0), est * sd[f], (f, "=~", w) in se_of))
    for g_idx, g in enumerate(model.higher):
        for f_idx in np.flatnonzero(model.a[:, g_idx]):
            f = model.first[f_idx]
            est = a[f_idx, g_idx]
            rows.append((g, "=~", f, est, se_of.get((g, "=~", f), 0.0), est * sd[g] / sd[f], (g, "=~", f) in se_of))
    k = 0
    for name, tau in zip(sample.names, sample.thresholds, strict=True):
        for t_idx, value in enumerate(tau):
            rows.append((name, "|", f"t{t_idx + 1}", value, se_all[k], value, True))
            k += 1
    for name, value in zip(model.indicators, model.residual_variances(theta), strict=True):
        rows.append((name, "~~", name, value, 0.0, value, False))
    for k, par in enumerate(model.parameters):
        if par.op == "~~":
            est = theta[k]
            std = est / (sd[par.lhs] * sd[par.rhs]) if par.kind == "psi" else est / sd[par.lhs] ** 2
            rows.append((par.lhs, "~~", par.rhs, est, se_all[n_th + k], std, True))
    return pd.DataFrame(rows, columns=["lhs", "op", "rhs", "est", "se", "std_all", "free"])


def _fit_measures(
    sample: OrdinalStatistics,
    model: FactorModel,
    theta: np.ndarray,
    f_dwls: float,
    df: int,
    weights: np.ndarray,
    delta: np.ndarray,
    info_inv: np.ndarray,
) -> dict[str, float]:
    """lavaan's ``fitMeasures`` of a WLSMV fit (standard, scaled and robust versions, SRMR)."""
    n, p = sample.n_obs, sample.n_variables
    n_th = sample.n_thresholds
    gamma = sample.gamma
    rows, cols = (index[sample.informative] for index in pair_indices(p))
    r = sample.correlations[rows, cols]
    pstar = len(r)
    n_fit = n - 1  # lavaan's N for (D)WLS fit measures: ntotal - ngroups
    out: dict[str, float] = {}

    # the model: DWLS test and its scaled-shifted version
    chisq = (n - 1) * f_dwls
    wd = weights[:, None] * delta
    u = np.diag(weights) - wd @ info_inv @ wd.T
    scaled = _scaled_shifted(chisq, df, u @ gamma)
    # the baseline (independence) model: thresholds free, correlations zero
    w_cor = weights[n_th:]
    chisq0 = (n - 1) * float(np.sum(w_cor * r**2))
    u0 = np.zeros_like(u)
    u0[n_th:, n_th:] = np.diag(w_cor)
    scaled0 = _scaled_shifted(chisq0, pstar, u0 @ gamma)
    out.update(
        {
            "fmin": 0.5 * (n - 1) / n * f_dwls,
            "chisq": chisq,
            "df": float(df),
            "pvalue": _chi2_sf(chisq, df),
            "chisq.scaled": scaled["stat"],
            "df.scaled": float(df),
            "pvalue.scaled": _chi2_sf(scaled["stat"], df),
            "chisq.scaling.factor": scaled["scaling"],
            "chisq.shift.parameter": scaled["shift"],
            "baseline.chisq": chisq0,
            "baseline.df": float(pstar),
            "baseline.chisq.scaled": scaled0["stat"],
            "baseline.df.scaled": float(pstar),
            "cfi": cfi(chisq, df, chisq0, pstar),
            "tli": tli(chisq, df, chisq0, pstar),
            "cfi.scaled": cfi(scaled["stat"], df, scaled0["stat"], pstar),
            "tli.scaled": tli(scaled["stat"], df, scaled0["stat"], pstar),
            "rmsea": rmsea(chisq, df, n_fit),
            "rmsea.scaled": rmsea(scaled["stat"], df, n_fit),
        }
    )
    out["rmsea.ci.lower"], out["rmsea.ci.upper"] = rmsea_interval(chisq, df, n_fit)
    out["rmsea.ci.lower.scaled"], out["rmsea.ci.upper.scaled"] = rmsea_interval(scaled["stat"], df, n_fit)

    # robust versions (Savalei 2021, lavaan's lav_fit_catml_dwls): need a positive definite polychoric matrix
    robust = dict.fromkeys(
        ["cfi.robust", "tli.robust", "rmsea.robust", "rmsea.ci.lower.robust", "rmsea.ci.upper.robust"], float("nan")
    )
    # (they rest on the full polychoric matrix: withheld when boundary pairs are left out of the fit)
    if df > 0 and sample.informative.all() and np.linalg.eigvalsh(sample.correlations).min() >= ROBUST_PD_TOLERANCE:
        sigma = model.implied(theta)
        _, logdet_sigma = np.linalg.slogdet(sigma)
        _, logdet_r = np.linalg.slogdet(sample.correlations)
        xx3 = n * (logdet_sigma + np.trace(np.linalg.solve(sigma, sample.correlations)) - logdet_r - p)
        v = _ml_correlation_weight(sigma)
        delta_c = delta[n_th:]
        wiu = np.eye(pstar) - delta_c @ info_inv @ delta_c.T * w_cor[None, :]
        gamma_c = gamma[n_th:, n_th:]
        c_hat = float(np.trace(wiu.T @ v @ wiu @ gamma_c)) / df
        xx3_null = n * (-logdet_r)
        c_hat_null = float(np.trace(gamma_c)) / pstar
        robust["cfi.robust"] = cfi(xx3, df, xx3_null, pstar, c_hat, c_hat_null)
        robust["tli.robust"] = tli(xx3, df, xx3_null, pstar, c_hat, c_hat_null)
        robust["rmsea.robust"] = rmsea(xx3, df, n_fit, c_hat)
        lower, upper = rmsea_interval(xx3 / c_hat, df, n_fit, c_hat)
        robust["rmsea.ci.lower.robust"], robust["rmsea.ci.upper.robust"] = lower, upper
    out.update(robust)
    fitted = model.implied(theta)[rows, cols]
    out["srmr"] = math.sqrt(float(np.sum((r - fitted) ** 2)) / (pstar + p))  # lavaan: p (p + 1) / 2 elements
    return out
