"""Separate the model that answered from the value structure: within- and between-model analysis.

A respondent is a (model, decoding setting) pair, so a panel of K models holds K clusters of
near-replicates. A word one model likes co-occurs across that model's respondents whatever it
means, and the pooled word correlations mix two things: what co-occurs *inside* a model's answers
(the within-model structure) and how the models' vocabularies differ (the between-model
structure). This module splits them, following R's ``psych::statsBy`` (the tests check it):

1. :func:`stats_by`: per word the group means, ``F``, ``ICC1`` and ``ICC2`` (with confidence
   intervals), ``eta`` with the group means and with the within-group deviations; the pooled
   within-group correlations ``rwg`` (Pearson on group-centred data) and the group-size weighted
   between-group correlations ``rbg``. On a units x words matrix the identity
   ``r = eta_wx eta_wy rwg + eta_bx eta_by rbg`` holds exactly.
2. :func:`within_correlation`: a within-model correlation matrix for 0/1 words. Three are offered;
   the default, ``"tetrachoric"``, is the tetrachoric correlation with one threshold per word
   *and model*, estimated by maximum likelihood over all models at once (a model's vocabulary
   moves its thresholds, not the latent correlation). ``"rwg"`` is statsBy's Pearson correlation of
   model-centred data; ``"tetrachoric_pooled"`` averages per-model tetrachorics by Fisher's z.
   Notebook 07 compares them by simulation (``simulate.compare_within_correlations``): the default
   is the only one that is unbiased for the planted latent correlations and keeps the factor count.
3. :func:`analyse_within`: the exploratory pipeline of :mod:`valuelex.psychometrics.efa` on the within-model
   matrix, with a parallel analysis whose null shuffles each word *within* each model (keeping
   every model's vocabulary) and ``n_obs = units - models``.
4. :func:`compare_levels`: pooled, within- and between-model factors side by side, and per pooled
   factor how much of it is model identity (eta squared and ICC1 of its scores between models,
   congruence with the best within- and between-model factor).
5. :func:`crossed_decomposition`: at the response level (unit = one answer to one prompt) both the
   model and the prompt group the units; per word the variance shares of model, prompt, their
   interaction and the rest.

Every default here is our choice; the paper does not consider the confound.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import ndtr, ndtri
from threadpoolctl import threadpool_limits

from ...core.display import Report
from .. import efa
from ..efa.settings import EFASettings

#: Within-model correlations for 0/1 words (see the module docstring).
WITHIN_CORRELATIONS = ("tetrachoric", "rwg", "tetrachoric_pooled")
#: Our default, chosen by simulation in notebook 07 (``simulate.compare_within_correlations``).
DEFAULT_WITHIN_CORRELATION = "tetrachoric"
#: Confidence level of the ICC intervals, as ``psych::statsBy(alpha=.05)``.
DEFAULT_ALPHA = 0.05
#: A within-model correlation whose Fisher z would be infinite is clipped to this (pooled tetrachorics).
MAX_ABS_CORRELATION = 0.999
#: Iterations and tolerance of the Fisher-scoring solver of the within-model tetrachoric correlation.
SOLVER_ITERATIONS = 100
SOLVER_TOLERANCE = 1e-8
#: Factors are said to match when their Tucker congruence reaches this (Lorenzo-Seva & ten Berge: "fair").
MATCH_CONGRUENCE = 0.85


def _codes(groups: pd.Series | np.ndarray | list, n: int) -> tuple[np.ndarray, list[str]]:
    values = pd.Series(np.asarray(groups, dtype=object))
    if len(values) != n:
        raise efa.EFAInputError(f"groups has {len(values)} labels for {n} units")
    if values.isna().any():
        raise efa.EFAInputError("groups has missing labels: every unit needs its model (or group)")
    codes, labels = pd.factorize(values, sort=True)
    return codes, [str(v) for v in labels]


def group_labels(index: pd.Index, table: pd.DataFrame, key: str, column: str) -> pd.Series:
    """The ``column`` of ``table`` (looked up by its ``key`` column) for every unit in ``index``.

    Raises a one-line error naming the units that ``table`` does not know.
    """
    lookup = table.drop_duplicates(key).set_index(key)[column]
    missing = [u for u in index if u not in lookup.index]
    if missing:
        raise efa.EFAInputError(f"{len(missing)} units have no {column!r} in the {key!r} table (first: {missing[0]!r})")
    return pd.Series(lookup.loc[list(index)].to_numpy(), index=index, name=column)


# ------------------------------------------------------------------------------------------
# 1. psych::statsBy
# ------------------------------------------------------------------------------------------
@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class StatsBy(Report):
    """Within/between decomposition of a units x words matrix by one grouping (``psych::statsBy``)."""

    group: str
    means: pd.DataFrame  # groups x words
    sd: pd.DataFrame  # groups x words (n - 1 denominator)
    n: pd.Series  # units per group
    F: pd.Series
    ICC1: pd.Series
    ICC2: pd.Series
    ci1: pd.DataFrame  # words x (lower, upper)
    ci2: pd.DataFrame
    rwg: pd.DataFrame  # pooled within-group correlations
    rbg: pd.DataFrame  # group-size weighted between-group correlations
    etawg: pd.Series
    etabg: pd.Series
    pwg: pd.DataFrame
    pbg: pd.DataFrame
    alpha: float

    @property
    def n_groups(self) -> int:
        return len(self.n)

    @property
    def n_units(self) -> int:
        return int(self.n.sum())

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"Within and between {self.group}s (psych::statsBy)"

    def table(self) -> pd.DataFrame:
        """One row per word: overall share, F, ICC1 and ICC2 with intervals, eta between and within."""
        grand = (self.means.mul(self.n, axis=0)).sum() / self.n.sum()
        return pd.DataFrame(
            {
                "word": self.ICC1.index,
                "mean": grand.to_numpy(),
                "F": self.F.to_numpy(),
                "ICC1": self.ICC1.to_numpy(),
                "ICC1_lower": self.ci1["lower"].to_numpy(),
                "ICC1_upper": self.ci1["upper"].to_numpy(),
                "ICC2": self.ICC2.to_numpy(),
                "eta_between": self.etabg.to_numpy(),
                "eta_within": self.etawg.to_numpy(),
            }
        ).sort_values(
            ["ICC1", "word"],
            ascending=[False, True],
            ignore_index=True,
            key=lambda c: c.round(10) if c.dtype == float else c,
        )  # ICC1 rounded for sorting: words equal up to floating-point noise keep one order (by word) on every CPU

    def summary(self) -> dict[str, Any]:
        off = ~np.eye(len(self.rwg), dtype=bool)
        return {
            "units": self.n_units,
            f"{self.group}s": self.n_groups,
            "words": len(self.ICC1),
            "median ICC1": float(self.ICC1.median()),
            "words with ICC1 >= 0.10": int((self.ICC1 >= 0.10).sum()),
            "words with ICC1 >= 0.30": int((self.ICC1 >= 0.30).sum()),
            "median ICC2": float(self.ICC2.median()),
            "mean |r| within": float(np.nanmean(np.abs(self.rwg.to_numpy()[off]))),
            "mean |r| between": float(np.nanmean(np.abs(self.rbg.to_numpy()[off]))),
        }

    def sections(self) -> list[tuple[str, Any]]:
        return [
            ("Summary", self.summary()),
            (f"Words most tied to the {self.group} (highest ICC1)", self.table().head(15)),
        ]

    def metrics(self) -> dict[str, Any]:
        return {k.replace(" ", "_").replace("|", "").replace(">=", "ge"): v for k, v in self.summary().items()}


def stats_by(
    data: pd.DataFrame, groups: pd.Series | np.ndarray | list, group: str = "model", alpha: float = DEFAULT_ALPHA
) -> StatsBy:
    """``psych::statsBy(data, group)``: means, ICC1/ICC2, rwg, rbg, eta within and between.

    Numbers as psych computes them: ``MSb`` and ``MSw`` of a one-way ANOVA per word, ``ICC1 =
    (MSb - MSw) / (MSb + MSw (npr - 1))`` with ``npr`` the mean group size, ``ICC2 = (MSb - MSw) /
    MSb``, F-based intervals; ``rwg`` the Pearson correlations of the deviations from the group
    means, ``rbg`` the Pearson correlations of the group means repeated for every unit (so weighted
    by group size); p-values with ``units - groups - 2`` and ``groups - 2`` degrees of freedom.
    A word that never varies inside a group has an undefined ``rwg`` (NaN), as in psych.
    """
    with threadpool_limits(limits=1):  # small matrices: one BLAS thread is faster, and the machine is shared
        return _stats_by(data, groups, group, alpha)


def _stats_by(data: pd.DataFrame, groups: pd.Series | np.ndarray | list, group: str, alpha: float) -> StatsBy:
    x = data.to_numpy(float)
    n_units, _ = x.shape
    codes, labels = _codes(groups, n_units)
    k = len(labels)
    if k < 2:
        raise efa.EFAInputError(f"statsBy needs at least 2 {group}s, got {k}")
    counts = np.bincount(codes, minlength=k).astype(float)
    means = _group_sums(x, codes, k) / counts[:, None]
    expanded = means[codes]
    diffs = x - expanded
    sq = _group_sums(diffs**2, codes, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(sq / (counts[:, None] - 1))
        grand = (means * counts[:, None]).sum(axis=0) / counts.sum()
        ms_between = (counts[:, None] * (means - grand) ** 2).sum(axis=0) / (k - 1)
        ms_within = sq.sum(axis=0) / (counts - 1).sum()
        f_value = ms_between / ms_within
        npr = n_units / k
        icc1 = (ms_between - ms_within) / (ms_between + ms_within * (npr - 1))
        icc2 = (ms_between - ms_within) / ms_between
        df_n, df_d = k - 1, k * (npr - 1)
        f_lower = f_value / stats.f.ppf(1 - alpha / 2, df_n, df_d)
        f_upper = f_value * stats.f.ppf(1 - alpha / 2, df_d, df_n)
        rwg = _pearson(diffs)
        rbg = _pearson(expanded)
        etabg = _column_correlation(expanded, x)
        etawg = _column_correlation(x, diffs)
        t_wg = rwg * np.sqrt(n_units - 2) / np.sqrt(1 - rwg**2)
        t_bg = rbg * np.sqrt(k - 2) / np.sqrt(1 - rbg**2)
        pwg = 2 * stats.t.sf(np.abs(t_wg), n_units - k - 2)
        pbg = 2 * stats.t.sf(np.abs(t_bg), k - 2) if k > 2 else np.full_like(rbg, np.nan)
    words = list(data.columns)
    frame = lambda m: pd.DataFrame(m, index=words, columns=words)  # noqa: E731
    series = lambda v, name: pd.Series(v, index=words, name=name)  # noqa: E731
    return StatsBy(
        group=group,
        means=pd.DataFrame(means, index=labels, columns=words),
        sd=pd.DataFrame(sd, index=labels, columns=words),
        n=pd.Series(counts.astype(int), index=labels, name="n"),
        F=series(f_value, "F"),
        ICC1=series(icc1, "ICC1"),
        ICC2=series(icc2, "ICC2"),
        ci1=pd.DataFrame(
            {"lower": (f_lower - 1) / (f_lower + npr - 1), "upper": (f_upper - 1) / (f_upper + npr - 1)}, index=words
        ),
        ci2=pd.DataFrame({"lower": 1 - 1 / f_lower, "upper": 1 - 1 / f_upper}, index=words),
        rwg=frame(rwg),
        rbg=frame(rbg),
        etawg=series(etawg, "etawg"),
        etabg=series(etabg, "etabg"),
        pwg=frame(pwg),
        pbg=frame(pbg),
        alpha=alpha,
    )


def _group_sums(x: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Column sums of ``x`` per group (groups x columns)."""
    onehot = np.zeros((k, len(codes)))
    onehot[codes, np.arange(len(codes))] = 1.0
    return onehot @ x


def _pearson(x: np.ndarray) -> np.ndarray:
    """Pearson correlations of the columns; a constant column gives NaN (like R's ``cor``), diagonal 1."""
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred
    scale = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.outer(scale, scale)
    r = np.where(np.isfinite(r), r, np.nan)
    np.fill_diagonal(r, np.where(scale > 0, 1.0, np.nan))
    return np.clip(r, -1.0, 1.0)


def _column_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of column j of ``a`` with column j of ``b``, for every j."""
    ca, cb = a - a.mean(axis=0), b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ca * cb).sum(axis=0) / np.sqrt((ca**2).sum(axis=0) * (cb**2).sum(axis=0))


def latent_icc(data: pd.DataFrame, groups: pd.Series | np.ndarray | list, adjust: float = 0.5) -> pd.Series:
    """Per word, the share of its latent propensity's variance that lies between groups (probit scale).

    The size of the groups' vocabulary effects in the units of ``simulate.simulate_model_panel``'s
    ``vocabulary_icc``. A method-of-moments estimate (ours): each group's threshold
    ``tau_g = -qnorm((uses + adjust) / (units + 2 adjust))``; the between-group variance ``s^2`` is the
    variance of the ``tau_g`` less their mean sampling variance (delta method), at least 0; the share
    is ``s^2 / (1 + s^2)``. It counts every reason a word's use differs between models: vocabulary,
    and any real difference in values.
    """
    x = data.to_numpy(float)
    codes, _ = _codes(groups, x.shape[0])
    k = codes.max() + 1
    counts = np.bincount(codes, minlength=k).astype(float)[:, None]
    share = (_group_sums((x > 0).astype(float), codes, k) + adjust) / (counts + 2 * adjust)
    tau = -ndtri(share)
    sampling = share * (1 - share) / ((counts + 2 * adjust) * stats.norm.pdf(tau) ** 2)
    between = np.maximum(tau.var(axis=0, ddof=1) - sampling.mean(axis=0), 0.0)
    return pd.Series(between / (1 + between), index=data.columns, name="latent_icc")


def unit_models(index: pd.Index, respondents: pd.DataFrame, column: str = "model") -> pd.Series:
    """The model (or another ``respondents`` column) of every unit: a respondent id, or a response id
    ``respondent|prompt|sample`` (``lexicon.incidence_matrix(unit="response")``)."""
    known = set(respondents["respondent"])
    owners = [u if u in known else str(u).rsplit("|", 2)[0] for u in index]
    return group_labels(pd.Index(owners), respondents, "respondent", column).set_axis(index)


# ------------------------------------------------------------------------------------------
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
    data: pd.DataFrame, groups: pd.Series | np.ndarray | list, correct: float = efa.DEFAULT_CORRECT
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
        raise efa.EFAInputError("tetrachoric correlations need 0/1 data (use coding='binary')")
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
        out[large] = efa.bivariate_normal_cdf(h[large], k[large], rho[large]) - ndtr(h[large]) * ndtr(k[large])
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
        dens = efa.bivariate_normal_pdf(hh, kk, r)
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
    data: pd.DataFrame, groups: pd.Series | np.ndarray | list, correct: float = efa.DEFAULT_CORRECT
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
        tet = efa.tetrachoric(pd.DataFrame(xg[:, keep]), correct=correct).rho.to_numpy()
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
    correct: float = efa.DEFAULT_CORRECT,
    smooth: bool = True,
) -> efa.CorrelationResult:
    """The within-group correlation matrix of the words, as a :class:`valuelex.psychometrics.efa.CorrelationResult`.

    ``n_obs`` is units minus groups (the within-group degrees of freedom, statsBy's ``nwg``), so the
    EFA's fit indices and Bartlett's test count what the within matrix rests on. Smoothed like
    ``psych::cor.smooth`` when not positive definite (reported), or refused with ``smooth=False``.
    """
    if method not in WITHIN_CORRELATIONS:
        raise efa.EFAInputError(f"within correlation must be one of {WITHIN_CORRELATIONS}, not {method!r}")
    n_units, p = data.shape
    codes, labels = _codes(groups, n_units)
    n_obs = n_units - len(labels)
    efa.check_sample_size(n_obs, p, "pearson" if method == "rwg" else "tetrachoric")  # tetrachoric: smoothed
    constant = _constant_within(data.to_numpy(float), codes)
    if constant.any():
        bad = ", ".join(list(data.columns[constant])[:5])
        raise efa.EFAInputError(
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
    min_eig = float(np.linalg.eigvalsh(r).min())
    smoothed = False
    if smooth:
        r, smoothed = efa.smooth_correlation(r)
    elif min_eig < np.finfo(float).eps * p:
        raise efa.SingularMatrixError(
            f"the within-group {method} matrix is not positive definite (smallest eigenvalue {min_eig:.3g}); "
            "use smooth=True (psych::cor.smooth)"
        )
    names = list(data.columns)
    return efa.CorrelationResult(
        pd.DataFrame(r, index=names, columns=names), f"within {method}", n_obs, smoothed, min_eig, zero_cells
    )


def raw_within_correlation(
    data: pd.DataFrame,
    groups: pd.Series | np.ndarray | list,
    method: str = DEFAULT_WITHIN_CORRELATION,
    correct: float = efa.DEFAULT_CORRECT,
) -> np.ndarray:
    """The within-group matrix as estimated, before any smoothing (see :func:`within_correlation`)."""
    if method == "tetrachoric":
        return within_tetrachoric(data, groups, correct).rho.to_numpy()
    if method == "tetrachoric_pooled":
        return pooled_tetrachoric(data, groups, correct).to_numpy()
    if method == "rwg":
        return stats_by(data, groups).rwg.to_numpy()
    raise efa.EFAInputError(f"within correlation must be one of {WITHIN_CORRELATIONS}, not {method!r}")


def between_correlation(data: pd.DataFrame, groups: pd.Series | np.ndarray | list) -> efa.CorrelationResult:
    """statsBy's ``rbg`` (group means, weighted by group size), smoothed; ``n_obs`` is the number of groups.

    With K groups the matrix has rank at most K - 1: it describes in which directions the groups'
    vocabularies differ, and a factor analysis of it is descriptive unless there are many more
    groups than words.
    """
    codes, labels = _codes(groups, data.shape[0])
    decomposition = stats_by(data, codes)
    r = decomposition.rbg.to_numpy()
    if np.isnan(r).any():
        raise efa.EFAInputError("some words have the same mean in every group: drop them before the between matrix")
    min_eig = float(np.linalg.eigvalsh(r).min())
    r, smoothed = efa.smooth_correlation(r)
    names = list(data.columns)
    return efa.CorrelationResult(pd.DataFrame(r, index=names, columns=names), "between", len(labels), smoothed, min_eig)


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
def prepare_within(prepared: efa.PreparedMatrix, groups: pd.Series | np.ndarray | list) -> efa.PreparedMatrix:
    """The words of a prepared (pooled) matrix that vary inside at least one group; the others are listed."""
    data = prepared.data
    codes, _ = _codes(groups, data.shape[0])
    constant = _constant_within(data.to_numpy(float), codes)
    dropped = pd.DataFrame(
        {"word": data.columns[constant], "reason": "no within-group variance", "units": data.loc[:, constant].sum()}
    )
    return efa.PreparedMatrix(
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
    correct: float = efa.DEFAULT_CORRECT,
    repeat: np.ndarray | None = None,
) -> efa.ParallelResult:
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
        observed = efa.factor_eigenvalues(
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
            sims[i] = efa.factor_eigenvalues(r, extraction)
    q = np.quantile(sims, quantile, axis=0)
    above = observed > q
    n_factors = int(np.argmin(above)) if not above.all() else len(observed)
    return efa.ParallelResult(
        observed, sims.mean(axis=0), q, n_factors, n_iter, quantile, seed, "permute within groups", method, extraction
    )


@dataclass
class WithinAnalysis:
    prepared: efa.PreparedMatrix
    correlation: efa.CorrelationResult
    adequacy: efa.Adequacy | None
    parallel: efa.ParallelResult | None
    result: efa.EFAResult
    notes: list[str]


def analyse_within(
    incidence: pd.DataFrame,
    groups: pd.Series | np.ndarray | list,
    settings: EFASettings,
    prepared: efa.PreparedMatrix | None = None,
) -> WithinAnalysis:
    """:func:`valuelex.psychometrics.efa.analyse` on the within-group matrix, with the run's EFA settings (``settings.efa``):
    the same word filter (on the pooled data, or ``prepared`` as given), words without within-group
    variance dropped, the within-group correlation (``within_correlation``), adequacy, parallel analysis
    with the within-group null (on the ``parallel_max_words`` most frequent words, as
    :func:`valuelex.psychometrics.efa.parallel_words`), and the EFA (``n_factors``, ``extraction``, ``rotation``,
    ``cutoff``). The tetrachoric within-group correlations are for 0/1 words: counts are read as used
    or not (a note says so)."""
    correlation = settings.within_correlation
    notes: list[str] = []
    with threadpool_limits(limits=1):
        if prepared is None:
            prepared = efa.prepare_matrix(
                incidence, settings.coding, settings.min_frequency, settings.min_units, settings.max_words
            )
        if correlation != "rwg" and not np.isin(prepared.data.to_numpy(float), (0.0, 1.0)).all():
            prepared = dataclasses.replace(prepared, data=efa.binary_coding(prepared.data))
            notes.append(f"within-group {correlation} correlations are for 0/1 words: counts read as used or not")
        codes, _ = _codes(groups, prepared.n_units)
        prepared = prepare_within(prepared, codes)
        corr = within_correlation(prepared.data, codes, correlation)
        try:
            adequate = efa.adequacy(corr)
        except efa.SingularMatrixError as err:
            adequate = None
            notes.append(str(err))
        parallel = None
        if settings.n_factors == "parallel":
            counted = efa.parallel_words(prepared.data, settings.parallel_max_words, settings.parallel_ties)
            parallel = within_parallel_analysis(
                prepared.data[counted],
                codes,
                correlation,
                settings.extraction,
                settings.parallel_iter,
                settings.parallel_quantile,
                settings.seed,
            )
        k, more = efa.choose_n_factors(settings.n_factors, parallel, prepared.n_words)
        result = efa.fit_efa(corr, k, settings)
    return WithinAnalysis(prepared, corr, adequate, parallel, result, notes + more + result.notes)


def within_bootstrap(
    data: pd.DataFrame,
    groups: pd.Series | np.ndarray | list,
    reference: efa.EFAResult,
    settings: EFASettings,
    level: float = 0.95,
    max_redraws: int = 50,
) -> efa.BootstrapResult:
    """:func:`valuelex.psychometrics.efa.bootstrap_stability` for the within-group solution (``settings.n_boot_within``
    samples, ``settings.within_correlation``, ``settings.seed``): every sample draws units with
    replacement *inside each group* (so every model keeps its number of respondents), and is redrawn
    when a word loses all its within-group variance."""
    codes, _ = _codes(groups, data.shape[0])
    rows = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    return efa.bootstrap_refits(
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


# ------------------------------------------------------------------------------------------
# 4. How much of a factor is model identity
# ------------------------------------------------------------------------------------------
def score_shares(
    incidence: pd.DataFrame, word_factors: pd.DataFrame, groups: pd.Series | np.ndarray | list
) -> pd.DataFrame:
    """Per factor: the share of its score variance between groups (eta squared) and its ICC1.

    A unit's score on a factor is the share of the factor's assigned words it used (as
    :func:`valuelex.psychometrics.efa.factor_model_association`); eta squared is the between-group sum of squares
    over the total, ICC1 statsBy's chance-corrected version (about 0 when the groups do not differ;
    eta squared is then about ``(groups - 1) / (units - 1)``). A factor with a high share is largely
    the vocabulary of one or a few groups. ``main_within_source`` is the group contributing most of the
    score's within-group variance and ``its_within_share`` its share: a within-group factor fed mostly by
    one group is that group's internal structure, not one the groups share.
    """
    codes, labels = _codes(groups, incidence.shape[0])
    rows, scores = [], {}
    for factor, g in word_factors[word_factors["assigned"]].groupby("factor", sort=False):
        words = [w for w in g["word"] if w in incidence.columns]
        if words:
            scores[factor] = (incidence[words] > 0).mean(axis=1).to_numpy()
            rows.append({"factor": factor, "words": len(words)})
    if not rows:
        return pd.DataFrame(
            columns=["factor", "words", "eta_squared", "ICC1", "main_within_source", "its_within_share"]
        )
    frame = pd.DataFrame(scores)
    total = ((frame - frame.mean()) ** 2).sum()
    means = frame.groupby(codes).transform("mean")
    between = ((means - frame.mean()) ** 2).sum()
    decomposition = stats_by(frame, codes)
    within = ((frame - means) ** 2).groupby(codes).sum()  # groups x factors
    within_share = within / within.sum().where(within.sum() > 0)
    out = pd.DataFrame(rows)
    out["eta_squared"] = (between / total.where(total > 0)).to_numpy()
    out["ICC1"] = decomposition.ICC1.to_numpy()
    out["main_within_source"] = [labels[i] for i in within_share.fillna(0).to_numpy().argmax(axis=0)]
    out["its_within_share"] = within_share.max().to_numpy()
    return out


def _best_matches(reference: efa.EFAResult, other: efa.EFAResult | None, prefix: str) -> pd.DataFrame:
    """For each factor of ``reference``, the factor of ``other`` with the largest |congruence| (common words)."""
    if other is None:
        return pd.DataFrame(
            {f"{prefix}_factor": [""] * reference.n_factors, f"{prefix}_congruence": [np.nan] * reference.n_factors}
        )
    words = [w for w in reference.loadings.index if w in other.loadings.index]
    c = np.abs(np.nan_to_num(efa.congruence(reference.loadings.loc[words], other.loadings.loc[words])))
    best = c.argmax(axis=1)
    return pd.DataFrame(
        {
            f"{prefix}_factor": [other.factors[j] for j in best],
            f"{prefix}_congruence": c[np.arange(len(best)), best],
        }
    )


@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class LevelComparison(Report):
    """Pooled, within-group and between-group factor solutions of the same words, side by side."""

    group: str
    decomposition: StatsBy
    pooled: efa.EFAResult
    within: WithinAnalysis
    between: efa.EFAResult | None
    between_correlation: efa.CorrelationResult
    pooled_shares: pd.DataFrame  # factor, words, eta_squared, ICC1 of the pooled factors
    within_shares: pd.DataFrame
    cutoff: float
    stability: efa.BootstrapResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"Pooled, within-{self.group} and between-{self.group} factors"

    def levels(self) -> pd.DataFrame:
        """One row per level: correlation, units it rests on, words, factors, RMSR, smoothing."""
        rows = [
            ("pooled", "as fitted (pooled)", self.pooled.n_obs, self.pooled),
            ("within", self.within.correlation.method, self.within.correlation.n_obs, self.within.result),
            ("between", "rbg (group means)", self.between_correlation.n_obs, self.between),
        ]
        out = []
        for level, corr, n_obs, res in rows:
            out.append(
                {
                    "level": level,
                    "correlation": corr,
                    "n_obs": n_obs,
                    "words": None if res is None else len(res.loadings),
                    "factors": None if res is None else res.n_factors,
                    "rmsr": np.nan if res is None else res.fit["rmsr"],
                    "variance_explained": np.nan if res is None else float(res.variance.loc["Proportion Var"].sum()),
                }
            )
        out[0]["factors_from"] = "as fitted above"
        out[1]["factors_from"] = f"parallel analysis, {self.within.parallel.null}" if self.within.parallel else "fixed"
        out[2]["factors_from"] = f"pooled count, at most {self.between_correlation.n_obs - 1} ({self.group}s - 1)"
        return pd.DataFrame(out)

    def attribution(self) -> pd.DataFrame:
        """Per pooled factor: its share of model identity and the within/between factor it resembles most."""
        table = self.pooled_shares.rename(columns={"eta_squared": "eta_squared_model", "ICC1": "ICC1_model"})
        table = table.set_index("factor").reindex(self.pooled.factors).reset_index()
        table = pd.concat(
            [
                table,
                _best_matches(self.pooled, self.within.result, "within"),
                _best_matches(self.pooled, self.between, "between"),
            ],
            axis=1,
        )
        verdict = []
        for _, row in table.iterrows():
            w, b = row["within_congruence"], row["between_congruence"]
            if w >= MATCH_CONGRUENCE and not (b > w):
                verdict.append("within-model structure")
            elif b >= MATCH_CONGRUENCE and not (w >= MATCH_CONGRUENCE):
                verdict.append("model vocabulary")
            elif w >= MATCH_CONGRUENCE:
                verdict.append("both")
            else:
                verdict.append("neither clearly")
        table["resembles"] = verdict
        return table

    def within_top_words(self, n: int = 10) -> pd.DataFrame:
        return efa.top_words(self.within.result, n)

    def sections(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [
            ("Levels", self.levels()),
            (
                f"Pooled factors: how much is {self.group} identity",
                self.attribution(),
            ),
            (f"Within-{self.group} factors: share of {self.group} identity in their scores", self.within_shares),
            (f"Within-{self.group} factors: top words", self.within_top_words(8)),
        ]
        if self.stability is not None:
            out.append((f"Within-{self.group} factors: bootstrap congruence", self.stability.summary_table()))
        if self.notes:
            out.append(("Notes", "\n".join(self.notes)))
        return out

    def metrics(self) -> dict[str, Any]:
        attribution = self.attribution()
        out = {
            "pooled_factors": self.pooled.n_factors,
            "within_factors": self.within.result.n_factors,
            "between_factors": 0 if self.between is None else self.between.n_factors,
            "within_words": len(self.within.result.loadings),
            "within_n_obs": self.within.correlation.n_obs,
            "pooled_eta_squared": [round(float(v), 3) for v in attribution["eta_squared_model"]],
            "pooled_within_congruence": [round(float(v), 3) for v in attribution["within_congruence"]],
            "pooled_between_congruence": [round(float(v), 3) for v in attribution["between_congruence"]],
            "within_eta_squared": [round(float(v), 3) for v in self.within_shares["eta_squared"]],
        }
        if self.stability is not None:
            out["within_bootstrap_median"] = [round(float(v), 3) for v in self.stability.summary_table()["median"]]
        return out


def compare_levels(
    data: pd.DataFrame,
    groups: pd.Series | np.ndarray | list,
    pooled: efa.EFAResult,
    within: WithinAnalysis,
    group: str = "model",
    stability: efa.BootstrapResult | None = None,
) -> LevelComparison:
    """Put the pooled solution (as fitted on ``data``) next to the within-group solution and a between-group
    solution of the same words.

    The between-group factors are ``psych::fa`` of statsBy's ``rbg``: ``min(pooled factors, groups - 1)``
    factors, since K groups span at most K - 1 directions. With fewer groups than words this is a
    description of how the groups' vocabularies differ, not an estimable factor model; it is used here
    only to see which pooled factors look like it (Tucker congruence).
    """
    codes, labels = _codes(groups, data.shape[0])
    notes = list(within.notes)
    decomposition = stats_by(data, codes, group=group)
    varying = decomposition.rbg.notna().all(axis=0) & decomposition.ICC1.notna()
    between_data = data.loc[:, varying.to_numpy()]
    between_corr = between_correlation(between_data, codes)
    k_between = min(pooled.n_factors, len(labels) - 1)
    between = None
    if k_between >= 1 and between_data.shape[1] >= 3:
        # n_obs: the units the matrix is computed over, as statsBy does; its fit indices are not read.
        with threadpool_limits(limits=1):
            between = efa.fit_efa(between_corr.matrix, k_between, n_obs=data.shape[0], rotation=pooled.rotation)
        notes.append(
            f"between-{group} factors: {k_between} from {len(labels)} {group}s (rank at most {len(labels) - 1}); "
            "descriptive, their fit indices are not reported"
        )
    cutoff = pooled.cutoff  # the run's efa.cutoff, carried by the pooled solution
    pooled_table = efa.word_factors(pooled, cutoff)
    within_table = efa.word_factors(within.result, cutoff)
    named = np.asarray(labels, dtype=object)[codes]  # group names, not codes, in the tables
    return LevelComparison(
        group=group,
        decomposition=decomposition,
        pooled=pooled,
        within=within,
        between=between,
        between_correlation=between_corr,
        pooled_shares=score_shares(data, pooled_table, named),
        within_shares=score_shares(data, within_table, named),
        cutoff=cutoff,
        stability=stability,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------
# 5. Response-level units: model and prompt both group the answers
# ------------------------------------------------------------------------------------------
@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class CrossedDecomposition(Report):
    """Per word, the variance shares of two crossed groupings (e.g. model and prompt) of the units."""

    factors: tuple[str, str]
    shares: pd.DataFrame  # word, mean, eta2 per factor, interaction, residual; ICC1 per factor and cell
    balanced: bool
    n_units: int
    levels: tuple[int, int]

    @property
    def title(self) -> str:  # type: ignore[override]
        a, b = self.factors
        return f"Word use by {a} and by {b} (response-level units)"

    def summary(self) -> dict[str, Any]:
        a, b = self.factors
        s = self.shares
        return {
            "units": self.n_units,
            f"{a}s": self.levels[0],
            f"{b}s": self.levels[1],
            "balanced design": self.balanced,
            f"median share {a}": float(s[f"eta2_{a}"].median()),
            f"median share {b}": float(s[f"eta2_{b}"].median()),
            f"median share {a} x {b}": float(s[f"eta2_{a}_x_{b}"].median()),
            "median share residual": float(s["eta2_residual"].median()),
            f"words more {a} than {b}": int((s[f"eta2_{a}"] > s[f"eta2_{b}"]).sum()),
        }

    def sections(self) -> list[tuple[str, Any]]:
        a, b = self.factors
        return [
            ("Summary", self.summary()),
            (f"Words most tied to the {a}", self.shares.nlargest(10, f"eta2_{a}")),
            (f"Words most tied to the {b}", self.shares.nlargest(10, f"eta2_{b}")),
        ]

    def metrics(self) -> dict[str, Any]:
        return {k.replace(" ", "_"): v for k, v in self.summary().items()}


def crossed_decomposition(data: pd.DataFrame, first: pd.Series, second: pd.Series) -> CrossedDecomposition:
    """Sums of squares of each word by two crossed groupings: first, second, their interaction, residual.

    Shares are eta squared (sum of squares over the total). The main effects are those of the cell
    means' marginal averages; with a balanced design (every cell the same size, as the local panel's
    4 models x 15 prompts x 30 respondents) the four parts add up exactly, otherwise the interaction
    takes the remainder and ``balanced`` is False. ICC1 (statsBy) is given for each grouping alone
    and for the cells.
    """
    a_name, b_name = str(first.name or "first"), str(second.name or "second")
    x = data.to_numpy(float)
    n = x.shape[0]
    a_codes, _ = _codes(first, n)
    b_codes, _ = _codes(second, n)
    cell = a_codes * (b_codes.max() + 1) + b_codes
    cell_codes, cell_labels = pd.factorize(cell, sort=True)
    sizes = np.bincount(cell_codes)
    balanced = len(cell_labels) == (a_codes.max() + 1) * (b_codes.max() + 1) and len(set(sizes)) == 1
    grand = x.mean(axis=0)
    total = ((x - grand) ** 2).sum(axis=0)

    def between(codes: np.ndarray) -> np.ndarray:
        sums = _group_sums(x, codes, codes.max() + 1)
        counts = np.bincount(codes)[:, None]
        return (counts * (sums / counts - grand) ** 2).sum(axis=0)

    ss_a, ss_b, ss_cells = between(a_codes), between(b_codes), between(cell_codes)
    ss_ab = ss_cells - ss_a - ss_b
    ss_res = total - ss_cells
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = pd.DataFrame(
            {
                "word": data.columns,
                "mean": grand,
                f"eta2_{a_name}": ss_a / total,
                f"eta2_{b_name}": ss_b / total,
                f"eta2_{a_name}_x_{b_name}": ss_ab / total,
                "eta2_residual": ss_res / total,
                f"ICC1_{a_name}": stats_by(data, a_codes).ICC1.to_numpy(),
                f"ICC1_{b_name}": stats_by(data, b_codes).ICC1.to_numpy(),
                f"ICC1_{a_name}_x_{b_name}": stats_by(data, cell_codes).ICC1.to_numpy(),
            }
        )
    return CrossedDecomposition(
        (a_name, b_name), shares, bool(balanced), n, (int(a_codes.max() + 1), int(b_codes.max() + 1))
    )


def cell_labels(first: pd.Series, second: pd.Series) -> pd.Series:
    """One group label per (first, second) cell, e.g. model x prompt."""
    return pd.Series(
        [f"{a}|{b}" for a, b in zip(first, second, strict=True)],
        index=first.index,
        name=f"{first.name}_x_{second.name}",
    )


def response_groups(index: pd.Index, respondents: pd.DataFrame) -> pd.DataFrame:
    """Model and prompt of every response-level unit (``respondent|prompt|sample``, as ``lexicon.incidence_matrix``)."""
    parts = pd.Series(index, index=index).str.rsplit("|", n=2, expand=True)
    if parts.shape[1] != 3 or parts.isna().any().any():
        raise efa.EFAInputError("response units must be named 'respondent|prompt|sample' (lexicon.incidence_matrix)")
    model = group_labels(pd.Index(parts[0]), respondents, "respondent", "model")
    return pd.DataFrame({"model": model.to_numpy(), "prompt": parts[1].to_numpy()}, index=index)


@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class ResponseLevels(Report):
    """Response-level units: the pooled EFA and the EFA within model x prompt cells, side by side."""

    crossed: CrossedDecomposition
    pooled: efa.Analysis
    within: WithinAnalysis
    pooled_shares: pd.DataFrame  # per pooled factor: words, ICC1 by model, by prompt, by cell; within match
    within_shares: pd.DataFrame
    cutoff: float

    title = "Response-level units: what the model and the prompt put into the factors"

    def levels(self) -> pd.DataFrame:
        rows = []
        for level, corr, res, parallel in (
            ("pooled", self.pooled.correlation, self.pooled.result, self.pooled.parallel),
            ("within model x prompt", self.within.correlation, self.within.result, self.within.parallel),
        ):
            rows.append(
                {
                    "level": level,
                    "correlation": corr.method,
                    "n_obs": corr.n_obs,
                    "words": len(res.loadings),
                    "factors": res.n_factors,
                    "parallel_null": parallel.null if parallel else "fixed count",
                    "smoothed": corr.smoothed,
                    "rmsr": res.fit["rmsr"],
                }
            )
        return pd.DataFrame(rows)

    def sections(self) -> list[tuple[str, Any]]:
        return [
            ("Word use by model and by prompt", self.crossed.summary()),
            ("Levels", self.levels()),
            ("Pooled response-level factors: ICC1 of their scores by model, prompt and cell", self.pooled_shares),
            ("Within model x prompt factors: top words", efa.top_words(self.within.result, 8)),
        ]

    def metrics(self) -> dict[str, Any]:
        return {
            "response_units": self.crossed.n_units,
            "response_words": len(self.pooled.result.loadings),
            "response_pooled_factors": self.pooled.result.n_factors,
            "response_within_factors": self.within.result.n_factors,
            "response_median_share_model": float(self.crossed.shares[f"eta2_{self.crossed.factors[0]}"].median()),
            "response_median_share_prompt": float(self.crossed.shares[f"eta2_{self.crossed.factors[1]}"].median()),
            "response_pooled_icc1_model": [round(float(v), 3) for v in self.pooled_shares["ICC1_model"]],
            "response_pooled_icc1_prompt": [round(float(v), 3) for v in self.pooled_shares["ICC1_prompt"]],
        }


def analyse_responses(responses: pd.DataFrame, groups: pd.DataFrame, settings: EFASettings) -> ResponseLevels:
    """Response-level units (one answer to one prompt) grouped by ``groups["model"]`` and ``groups["prompt"]``.

    The pooled pipeline of notebook 03 on the responses, with the run's EFA settings (``settings.efa``);
    the same words analysed within model x prompt cells (what co-occurs inside the answers of one model
    to one prompt: model, prompt and their interaction removed); per word the variance shares of model,
    prompt and interaction; per pooled factor the ICC1 of its scores by model, by prompt and by cell,
    and its best within-cell match.
    """
    model, prompt = groups["model"].rename("model"), groups["prompt"].rename("prompt")
    pooled = efa.analyse(responses, **settings.analyse_options())
    data = pooled.prepared.data
    cells = cell_labels(model, prompt)
    within = analyse_within(responses, cells, settings, prepared=pooled.prepared)
    cutoff = settings.cutoff
    pooled_table = efa.word_factors(pooled.result, cutoff)
    shares = score_shares(data, pooled_table, model)[["factor", "words", "ICC1"]].rename(columns={"ICC1": "ICC1_model"})
    shares["ICC1_prompt"] = score_shares(data, pooled_table, prompt)["ICC1"].to_numpy()
    shares["ICC1_cell"] = score_shares(data, pooled_table, cells)["ICC1"].to_numpy()
    shares = shares.set_index("factor").reindex(pooled.result.factors).reset_index()
    shares = pd.concat([shares, _best_matches(pooled.result, within.result, "within_cell")], axis=1)
    return ResponseLevels(
        crossed=crossed_decomposition(data, model, prompt),
        pooled=pooled,
        within=within,
        pooled_shares=shares,
        within_shares=score_shares(data, efa.word_factors(within.result, cutoff), cells),
        cutoff=cutoff,
    )
