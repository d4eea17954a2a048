"""A planted factor structure, its 0/1 data, and how well an analysis recovers it (notebook 07, part 1)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ...core.display import Facts
from ...psychometrics import efa
from ...psychometrics.efa.settings import EFASettings
from .executor import run_tasks
from .settings import PAPER_FACTORS, PAPER_RESPONDENTS, PAPER_WORDS, SimulationSettings


@dataclass
class PlantedStructure:
    """Known loadings (words x factors), factor correlations, and each word's frequency."""

    loadings: pd.DataFrame
    phi: np.ndarray
    frequencies: pd.Series  # share of respondents expected to use each word

    @property
    def words(self) -> list[str]:
        return list(self.loadings.index)

    def primary(self) -> pd.Series:
        """Each word's planted factor."""
        return self.loadings.abs().idxmax(axis=1)


def planted_structure(
    n_words: int = PAPER_WORDS,
    n_factors: int = PAPER_FACTORS,
    factor_correlation: float = 0.3,
    loading_range: tuple[float, float] = (0.45, 0.8),
    cross_loading_sd: float = 0.05,
    zipf_exponent: float = 0.6,
    max_frequency: float = 0.8,
    min_frequency: float = 0.02,
    seed: int = 0,
) -> PlantedStructure:
    """Draw a simple-structure loading matrix with Zipf-like word frequencies.

    Each word loads on one factor (words are dealt to factors in turn, so every factor has
    frequent and rare words) with a loading uniform in ``loading_range``, and has small normal
    cross-loadings (sd ``cross_loading_sd``). Factors correlate ``factor_correlation``. The word of
    frequency rank r is used by ``max_frequency * r ** -zipf_exponent`` of respondents (at least
    ``min_frequency``): with the defaults a respondent uses about 15 of 190 words and the
    rarest words appear in 3% of respondents.
    """
    rng = np.random.default_rng(seed)
    factors = [f"F{i + 1}" for i in range(n_factors)]
    words = [f"word{i + 1:03d}" for i in range(n_words)]
    owner = rng.permutation(np.arange(n_words) % n_factors)
    loadings = rng.normal(0.0, cross_loading_sd, (n_words, n_factors))
    loadings[np.arange(n_words), owner] = rng.uniform(*loading_range, n_words)
    communality_limit = 0.95
    row = np.sqrt((loadings**2).sum(axis=1))
    loadings = np.where(row[:, None] > communality_limit, loadings * communality_limit / row[:, None], loadings)
    phi = np.full((n_factors, n_factors), factor_correlation)
    np.fill_diagonal(phi, 1.0)
    rank = np.arange(1, n_words + 1)
    freq = np.clip(max_frequency * rank**-zipf_exponent, min_frequency, 0.99)
    return PlantedStructure(
        pd.DataFrame(loadings, index=words, columns=factors),
        phi,
        pd.Series(freq, index=words, name="frequency"),
    )


def with_marker_words(structure: PlantedStructure, taxonomy: dict) -> PlantedStructure:
    """Rename words after the taxonomy's example words: the most frequent words planted on factor i
    take the (lower-case) markers of the taxonomy's i-th dimension, so that the confirmatory models
    of notebook 04 can be tried on simulated data."""
    primary = structure.primary()
    rename = {}
    for factor, dimension in zip(structure.loadings.columns, taxonomy["dimensions"], strict=False):
        markers = [m["marker"].lower() for subs in taxonomy["dimensions"][dimension].values() for m in subs]
        owned = [w for w in structure.frequencies.sort_values(ascending=False).index if primary[w] == factor]
        rename.update(dict(zip(owned, markers, strict=False)))
    return PlantedStructure(
        structure.loadings.rename(index=rename), structure.phi, structure.frequencies.rename(index=rename)
    )


def simulate_incidence(structure: PlantedStructure, n_units: int = PAPER_RESPONDENTS, seed: int = 0) -> pd.DataFrame:
    """Respondents x words 0/1 data: word j occurs when ``L_j f + e_j`` exceeds its frequency's threshold."""
    rng = np.random.default_rng(seed)
    lam = structure.loadings.to_numpy()
    k = lam.shape[1]
    scores = rng.multivariate_normal(np.zeros(k), structure.phi, size=n_units)
    communality = np.einsum("ij,jk,ik->i", lam, structure.phi, lam)
    noise = rng.standard_normal((n_units, lam.shape[0])) * np.sqrt(1.0 - communality)
    latent = scores @ lam.T + noise
    thresholds = stats.norm.ppf(1.0 - structure.frequencies.to_numpy())
    data = (latent > thresholds).astype(int)
    index = pd.Index([f"r{i + 1:04d}" for i in range(n_units)], name="respondent")
    return pd.DataFrame(data, index=index, columns=structure.words)


def recovery_scores(structure: PlantedStructure, result: efa.EFAResult) -> Facts:
    """Compare an EFA solution with the planted loadings on the words the analysis kept."""
    words = list(result.loadings.index)
    planted = structure.loadings.loc[words].to_numpy()
    k_true, k_found = planted.shape[1], result.n_factors
    _, matched = efa.align(planted, result.loadings.to_numpy())
    matched = np.nan_to_num(matched, nan=0.0)  # a planted factor without a match is not recovered
    primary_true = structure.primary().loc[words].to_numpy()
    found = result.loadings.to_numpy()
    # assignment accuracy: map each found factor to the planted one it matches best
    c = np.nan_to_num(efa.congruence(planted, found))
    best_true = np.abs(c).argmax(axis=0)
    assigned = np.array(structure.loadings.columns)[best_true[np.abs(found).argmax(axis=1)]]
    out = Facts(
        "Recovery of the planted structure",
        {
            "n_factors_true": k_true,
            "n_factors_found": k_found,
            "factor_count_right": k_found == k_true,
            "words_used": len(words),
            "word_assignment_accuracy": float((assigned == primary_true).mean()),
            "min_congruence": float(matched.min()),
        },
    )
    for f, value in zip(structure.loadings.columns, matched, strict=True):
        out[f"congruence_{f}"] = float(value)
    return out


def recover(structure: PlantedStructure, incidence: pd.DataFrame, settings: EFASettings) -> dict:
    """Run the exploratory pipeline of notebook 03 with the run's EFA settings (``settings.efa``) on simulated
    data and score it against the planted structure.

    When ``n_factors="parallel"`` the congruences are those of the solution with the number of
    factors parallel analysis chose; a planted factor without a match scores 0 (not recovered).
    ``min_congruence_true_k`` is the lowest congruence when the true number of factors is extracted:
    how well the loadings are recovered once the count is right.
    """
    analysis = efa.EFA(settings).fit(incidence)
    scores = recovery_scores(structure, analysis.result)
    k_true = structure.loadings.shape[1]
    at_true_k = analysis.result
    if analysis.result.n_factors != k_true:
        at_true_k = efa.fit_efa(analysis.correlation, k_true, settings)
    scores["min_congruence_true_k"] = recovery_scores(structure, at_true_k)["min_congruence"]
    scores["kmo"] = analysis.adequacy.kmo if analysis.adequacy is not None else float("nan")
    scores["smoothed"] = analysis.correlation.smoothed
    scores["words_counted"] = len(analysis.parallel.observed) if analysis.parallel is not None else 0
    return scores


def _recover_one(structure: PlantedStructure, size: int, rep: int, seed: int, settings: EFASettings) -> dict:
    data_seed = seed + 1000 * rep + size
    data = simulate_incidence(structure, size, seed=data_seed)
    try:
        row = recover(structure, data, dataclasses.replace(settings, seed=data_seed))
        row["error"] = ""
    except efa.EFAInputError as err:
        row = {"n_factors_found": 0, "factor_count_right": False, "min_congruence": 0.0, "words_used": 0}
        row["min_congruence_true_k"] = 0.0
        row["error"] = str(err)
    return {"respondents": size, "replication": rep, **row}


def recovery_curve(structure: PlantedStructure, settings: EFASettings, grid: SimulationSettings) -> pd.DataFrame:
    """``recover`` (with the EFA ``settings``) on ``grid.replications`` fresh samples of each of
    ``grid.sizes``: one row per (size, replication). Every sample has its own seed (from ``grid.seed``; also
    the parallel analysis' seed), so ``grid.n_jobs`` (workers) changes the speed, not the result.
    """
    tasks = [(structure, size, rep, grid.seed, settings) for size in grid.sizes for rep in range(grid.replications)]
    return pd.DataFrame(run_tasks(_recover_one, tasks, grid.n_jobs, progress=False))


def recovery_study(
    conditions: dict[str, PlantedStructure], settings: EFASettings, grid: SimulationSettings
) -> pd.DataFrame:
    """``recovery_curve`` for several planted structures, one ``condition`` column to tell them apart."""
    curves = [
        recovery_curve(structure, settings, grid).assign(condition=name) for name, structure in conditions.items()
    ]
    return pd.concat(curves, ignore_index=True)


def summarise_curve(curve: pd.DataFrame, threshold: float = 0.95) -> pd.DataFrame:
    """Per number of respondents: share with the right factor count and the counts found
    (``"3 (3 in 83% of panels, 4 in 17%)"``), median minimum congruence, share of replications in which
    every factor reaches ``threshold``."""
    from ...psychometrics.factor_count import describe_counts

    by = ["respondents"] + [c for c in ("condition",) if c in curve.columns]
    grouped = curve.groupby(by)
    return pd.DataFrame(
        {
            "replications": grouped.size(),
            "factor_count_right": grouped["factor_count_right"].mean(),
            "factors_found": grouped["n_factors_found"].apply(lambda s: describe_counts(None, s, "panels")),
            "median_min_congruence": grouped["min_congruence"].median(),
            "median_min_congruence_true_k": grouped["min_congruence_true_k"].median(),
            f"all_factors_ge_{threshold}": grouped["min_congruence"].apply(lambda s: float((s >= threshold).mean())),
            "median_words_used": grouped["words_used"].median() if "words_used" in curve else np.nan,
        }
    ).reset_index()


def respondents_needed(summary: pd.DataFrame, threshold: float = 0.95, share: float = 0.8) -> Facts:
    """Per condition, the smallest simulated number of respondents from which on (for every larger size
    too) at least ``share`` of replications get the right factor count and every factor's congruence
    reaches ``threshold``; None when no simulated size does."""
    col = f"all_factors_ge_{threshold}"
    out = Facts(f"Respondents needed (count right and every congruence >= {threshold} in >= {share:.0%} of panels)")
    groups = summary.groupby("condition") if "condition" in summary else [("simulation", summary)]
    for cond, part in groups:
        part = part.sort_values("respondents")
        ok = ((part["factor_count_right"] >= share) & (part[col] >= share)).to_numpy()
        needed = None
        for i in range(len(ok)):
            if ok[i:].all():
                needed = int(part["respondents"].iloc[i])
                break
        out[str(cond)] = needed
    return out
