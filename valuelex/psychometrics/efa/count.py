"""The number of factors: parallel analysis (psych::fa.parallel) on the most frequent words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ...core.display import Facts
from .base import DEFAULT_CORRECT, DEFAULT_UNITS_PER_COUNTED_WORD, MIN_WORDS_PER_FACTOR, PARALLEL_TIES, EFAInputError
from .correlation import correlation_matrix
from .solution import extract, max_factors


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
