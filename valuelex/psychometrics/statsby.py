"""R's ``psych::statsBy`` for units grouped by the model that answered (or any other group): per word the
group means, F, ICC1 and ICC2, the pooled within-group (rwg) and between-group (rbg) correlations; and the
latent ICC of 0/1 words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import ndtri
from threadpoolctl import threadpool_limits

from ..core.display import Report
from .efa.base import EFAInputError

#: Confidence level of the ICC intervals, as ``psych::statsBy(alpha=.05)``.
DEFAULT_ALPHA = 0.05


def _codes(groups: pd.Series | np.ndarray | list, n: int) -> tuple[np.ndarray, list[str]]:
    values = pd.Series(np.asarray(groups, dtype=object))
    if len(values) != n:
        raise EFAInputError(f"groups has {len(values)} labels for {n} units")
    if values.isna().any():
        raise EFAInputError("groups has missing labels: every unit needs its model (or group)")
    codes, labels = pd.factorize(values, sort=True)
    return codes, [str(v) for v in labels]


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
        raise EFAInputError(f"statsBy needs at least 2 {group}s, got {k}")
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

    The size of the groups' vocabulary effects in the units of ``methods.simulation.simulate_model_panel``'s
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
