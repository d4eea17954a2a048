"""Method validation by simulation: plant a factor structure in word co-occurrence, try to recover it.

``planted_structure`` draws words with known loadings on correlated factors and Zipf-like
frequencies; ``simulate_incidence`` draws respondents x words 0/1 data from it (a word occurs
when its latent propensity passes the threshold its frequency implies, the model behind
tetrachoric correlations); ``recover`` runs the exploratory pipeline of :mod:`valuelex.efa`
on the data and compares the solution with the planted loadings (factor count, Tucker
congruence after matching); ``recovery_curve`` repeats this for several numbers of
respondents (notebook 07). Every choice below is ours: the paper publishes no data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import efa

#: The paper's scale: 190+ unique words, 525 respondents, three dimensions.
PAPER_WORDS = 190
PAPER_RESPONDENTS = 525
PAPER_FACTORS = 3


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


def recovery_scores(structure: PlantedStructure, result: efa.EFAResult) -> dict:
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
    out = {
        "n_factors_true": k_true,
        "n_factors_found": k_found,
        "factor_count_right": k_found == k_true,
        "words_used": len(words),
        "word_assignment_accuracy": float((assigned == primary_true).mean()),
        "min_congruence": float(matched.min()),
    }
    for f, value in zip(structure.loadings.columns, matched, strict=True):
        out[f"congruence_{f}"] = float(value)
    return out


def recover(
    structure: PlantedStructure,
    incidence: pd.DataFrame,
    correlation: str = "tetrachoric",
    n_factors: int | str = "parallel",
    extraction: str = "minres",
    rotation: str = "oblimin",
    min_frequency: float = efa.DEFAULT_MIN_FREQUENCY,
    max_words: int | str | None = None,
    parallel_max_words: int | str | None = "auto",
    parallel_iter: int = 20,
    parallel_null: str = "permute",
    parallel_eigenvalues: str = "fa",
    seed: int = 0,
) -> dict:
    """Run the exploratory pipeline on simulated data and score it against the planted structure.

    When ``n_factors="parallel"`` the congruences are those of the solution with the number of
    factors parallel analysis chose; a planted factor without a match scores 0 (not recovered).
    ``min_congruence_true_k`` is the lowest congruence when the true number of factors is extracted:
    how well the loadings are recovered once the count is right.
    """
    analysis = efa.analyse(
        incidence,
        correlation=correlation,
        n_factors=n_factors,
        extraction=extraction,
        rotation=rotation,
        min_frequency=min_frequency,
        max_words=max_words,
        parallel_max_words=parallel_max_words,
        parallel_iter=parallel_iter,
        parallel_null=parallel_null,
        parallel_eigenvalues=parallel_eigenvalues,
        seed=seed,
    )
    scores = recovery_scores(structure, analysis.result)
    k_true = structure.loadings.shape[1]
    at_true_k = analysis.result
    if analysis.result.n_factors != k_true:
        at_true_k = efa.fit_efa(analysis.correlation, k_true, extraction=extraction, rotation=rotation)
    scores["min_congruence_true_k"] = recovery_scores(structure, at_true_k)["min_congruence"]
    scores["kmo"] = analysis.adequacy.kmo if analysis.adequacy is not None else float("nan")
    scores["smoothed"] = analysis.correlation.smoothed
    return scores


def _recover_one(structure: PlantedStructure, size: int, rep: int, seed: int, settings: dict) -> dict:
    data_seed = seed + 1000 * rep + size
    data = simulate_incidence(structure, size, seed=data_seed)
    try:
        row = recover(structure, data, seed=data_seed, **settings)
        row["error"] = ""
    except efa.EFAInputError as err:
        row = {"n_factors_found": 0, "factor_count_right": False, "min_congruence": 0.0, "words_used": 0}
        row["min_congruence_true_k"] = 0.0
        row["error"] = str(err)
    return {"respondents": size, "replication": rep, **row}


def recovery_curve(
    structure: PlantedStructure,
    sizes: tuple[int, ...] = (60, 120, 250, 525, 1000),
    replications: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
    **settings,
) -> pd.DataFrame:
    """``recover`` on ``replications`` fresh samples of each size: one row per (size, replication).

    Every sample has its own seed, so ``n_jobs`` (processes) changes the speed, not the result.
    """
    tasks = [(size, rep) for size in sizes for rep in range(replications)]
    if n_jobs == 1:
        rows = [_recover_one(structure, size, rep, seed, settings) for size, rep in tasks]
    else:
        from joblib import Parallel, delayed

        rows = Parallel(n_jobs=n_jobs)(
            delayed(_recover_one)(structure, size, rep, seed, settings) for size, rep in tasks
        )
    return pd.DataFrame(rows)


def recovery_study(
    conditions: dict[str, PlantedStructure],
    sizes: tuple[int, ...] = (60, 120, 250, 525, 1000),
    replications: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
    **settings,
) -> pd.DataFrame:
    """``recovery_curve`` for several planted structures, one ``condition`` column to tell them apart."""
    curves = [
        recovery_curve(structure, sizes, replications, seed, n_jobs, **settings).assign(condition=name)
        for name, structure in conditions.items()
    ]
    return pd.concat(curves, ignore_index=True)


def summarise_curve(curve: pd.DataFrame, threshold: float = 0.95) -> pd.DataFrame:
    """Per number of respondents: share with the right factor count, median minimum congruence,
    share of replications in which every factor reaches ``threshold``."""
    by = ["respondents"] + [c for c in ("condition",) if c in curve.columns]
    grouped = curve.groupby(by)
    return pd.DataFrame(
        {
            "replications": grouped.size(),
            "factor_count_right": grouped["factor_count_right"].mean(),
            "median_min_congruence": grouped["min_congruence"].median(),
            "median_min_congruence_true_k": grouped["min_congruence_true_k"].median(),
            f"all_factors_ge_{threshold}": grouped["min_congruence"].apply(lambda s: float((s >= threshold).mean())),
            "median_words_used": grouped["words_used"].median() if "words_used" in curve else np.nan,
        }
    ).reset_index()


def respondents_needed(summary: pd.DataFrame, threshold: float = 0.95, share: float = 0.8) -> dict:
    """Per condition, the smallest simulated number of respondents from which on (for every larger size
    too) at least ``share`` of replications get the right factor count and every factor's congruence
    reaches ``threshold``; None when no simulated size does."""
    col = f"all_factors_ge_{threshold}"
    out = {}
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


def plot_recovery(curve: pd.DataFrame, threshold: float = 0.95):
    """Recovery against the number of respondents: the lowest Tucker congruence of the planted factors
    when the true number of factors is extracted (median and range over replications), and the share
    of replications in which parallel analysis found the true number."""
    import matplotlib.pyplot as plt

    from .figures import apply_style

    apply_style()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.0, 4.0))
    conditions = curve["condition"].unique() if "condition" in curve else [None]
    colours = ["#3b6fb6", "#d9822b", "#3f9b62", "#c44e52"]
    for colour, cond in zip(colours, conditions, strict=False):
        part = curve if cond is None else curve[curve["condition"] == cond]
        g = part.groupby("respondents")["min_congruence_true_k"]
        x = np.array(sorted(part["respondents"].unique()))
        med = g.median().reindex(x).to_numpy()
        lo, hi = g.min().reindex(x).to_numpy(), g.max().reindex(x).to_numpy()
        label = cond or "simulation"
        ax1.plot(x, med, "o-", color=colour, label=label)
        ax1.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)
        right = part.groupby("respondents")["factor_count_right"].mean().reindex(x)
        ax2.plot(x, right.to_numpy(), "o-", color=colour, label=label)
    ax1.axhline(threshold, color="#555555", lw=0.8, ls="--")
    ax1.axvline(PAPER_RESPONDENTS, color="#999999", lw=0.8, ls=":")
    ax2.axvline(PAPER_RESPONDENTS, color="#999999", lw=0.8, ls=":")
    sizes = sorted(curve["respondents"].unique())
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(v) for v in sizes])
        ax.minorticks_off()
    ax1.set_ylim(bottom=max(0.0, np.nanmin(curve["min_congruence_true_k"].to_numpy(dtype=float)) - 0.05), top=1.01)
    ax1.set_xlabel("respondents")
    ax2.set_xlabel("respondents")
    ax1.set_ylabel("lowest congruence, true number of factors")
    ax2.set_ylabel("share where parallel analysis found it")
    ax2.set_ylim(-0.03, 1.03)
    ax1.set_title("Loadings recovered")
    ax2.set_title("Factor count recovered")
    if len(conditions) > 1:
        ax1.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------
# Which words to keep (notebook 07): word-selection rules compared on the same simulated panels
# ------------------------------------------------------------------------------------------
#: Word-selection rules: the one used before (at most n/2 words, the most frequent, for the loadings
#: and for counting the factors), every word above the frequency floor for both, and the default now:
#: every word above the floor for the loadings, the factors counted on the n/3 most frequent.
WORD_RULES = {
    "before: the n/2 most frequent words": {"max_words": "auto", "parallel_max_words": None},
    "every word above the floor": {"max_words": None, "parallel_max_words": None},
    "now: every word; factors counted on the n/3 most frequent": {"max_words": None, "parallel_max_words": "auto"},
}


def _word_rule_one(
    structure: PlantedStructure, size: int, rep: int, seed: int, rules: dict[str, dict], parallel_iter: int
) -> list[dict]:
    data_seed = seed + 1000 * rep + size
    data = simulate_incidence(structure, size, seed=data_seed)
    primary = structure.primary()
    done: dict[tuple, dict] = {}
    rows = []
    for name, rule in rules.items():
        prepared = efa.prepare_matrix(data, max_words=rule["max_words"])
        counted = efa.parallel_words(prepared.data, rule["parallel_max_words"])
        key = (tuple(prepared.data.columns), tuple(counted))
        if key not in done:  # the same words give the same analysis: do not run it twice
            try:
                scores = recover(structure, data, parallel_iter=parallel_iter, seed=data_seed, **rule)
            except efa.EFAInputError as err:  # too few words: nothing recovered
                scores = {"n_factors_found": 0, "factor_count_right": False, "min_congruence": 0.0}
                scores.update(min_congruence_true_k=0.0, words_used=prepared.n_words, error=str(err))
            kept = primary.loc[list(prepared.data.columns)].value_counts().reindex(structure.loadings.columns)
            scores["weakest_factor_words"] = int(kept.fillna(0).min())
            scores["words_counted"] = len(counted)
            done[key] = scores
        rows.append({"respondents": size, "replication": rep, "rule": name, **done[key]})
    return rows


def word_selection_study(
    structure: PlantedStructure,
    sizes: tuple[int, ...] = (120, 525),
    replications: int = 8,
    rules: dict[str, dict] | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    parallel_iter: int = 20,
) -> pd.DataFrame:
    """Each word-selection rule on the same simulated panels: words kept for the weakest planted factor,
    the factor count parallel analysis finds, and the congruence of the recovered loadings.

    One row per (size, replication, rule). Every panel has its own seed, so ``n_jobs`` changes the speed,
    not the result.
    """
    rules = rules or WORD_RULES
    tasks = [(size, rep) for size in sizes for rep in range(replications)]
    if n_jobs == 1:
        chunks = [_word_rule_one(structure, size, rep, seed, rules, parallel_iter) for size, rep in tasks]
    else:
        from joblib import Parallel, delayed

        chunks = Parallel(n_jobs=n_jobs)(
            delayed(_word_rule_one)(structure, size, rep, seed, rules, parallel_iter) for size, rep in tasks
        )
    return pd.DataFrame([row for chunk in chunks for row in chunk])


def summarise_word_selection(study: pd.DataFrame) -> pd.DataFrame:
    """Per number of respondents and rule: words analysed, words of the weakest planted factor, words
    parallel analysis counted on, share of panels with the right factor count, median lowest congruence
    (with the count found, and with the true count)."""
    grouped = study.groupby(["respondents", "rule"], sort=False)
    return pd.DataFrame(
        {
            "panels": grouped.size(),
            "words_analysed": grouped["words_used"].median(),
            "weakest_factor_words": grouped["weakest_factor_words"].median(),
            "words_counted": grouped["words_counted"].median(),
            "factor_count_right": grouped["factor_count_right"].mean(),
            "median_min_congruence": grouped["min_congruence"].median(),
            "median_min_congruence_true_k": grouped["min_congruence_true_k"].median(),
        }
    ).reset_index()


def plot_word_selection(study: pd.DataFrame):
    """Three panels per rule and number of respondents: words kept for the weakest planted factor, share of
    panels where parallel analysis found the true count, lowest congruence at the true count (median and range)."""
    import matplotlib.pyplot as plt

    from .figures import apply_style

    apply_style()
    rules = list(dict.fromkeys(study["rule"]))
    sizes = sorted(study["respondents"].unique())
    colours = ["#c44e52", "#d9822b", "#3b6fb6", "#3f9b62"]
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.8))
    width = 0.8 / len(rules)
    panels = [
        ("weakest_factor_words", "words kept for the weakest planted factor", False),
        ("factor_count_right", "share with the true number of factors", True),
        ("min_congruence_true_k", "lowest congruence, true number of factors", False),
    ]
    for ax, (column, label, share) in zip(axes, panels, strict=True):
        for i, (rule, colour) in enumerate(zip(rules, colours, strict=False)):
            x = np.arange(len(sizes)) + (i - (len(rules) - 1) / 2) * width
            part = study[study["rule"] == rule].groupby("respondents")[column]
            if share:
                ax.bar(x, part.mean().reindex(sizes).to_numpy(float), width, color=colour, label=rule)
            else:
                med = part.median().reindex(sizes).to_numpy(float)
                lo, hi = part.min().reindex(sizes).to_numpy(float), part.max().reindex(sizes).to_numpy(float)
                ax.errorbar(x, med, yerr=[med - lo, hi - med], fmt="o", color=colour, capsize=3, label=rule)
        ax.set_xticks(np.arange(len(sizes)), [f"{s} respondents" for s in sizes])
        ax.set_title(label, fontsize=10)
    axes[1].set_ylim(0, 1.05)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(rules), frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
