"""Tucker congruence, factor alignment (Hungarian) and bootstrap stability of a solution."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .base import DEFAULT_CORRECT, EFAInputError
from .correlation import CorrelationResult, _as_array, correlation_matrix
from .solution import EFAResult, fit_efa


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
