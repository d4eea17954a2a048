"""Method validation by simulation: plant a factor structure in word co-occurrence, try to recover it.

``planted_structure`` draws words with known loadings on correlated factors and Zipf-like
frequencies; ``simulate_incidence`` draws respondents x words 0/1 data from it (a word occurs
when its latent propensity passes the threshold its frequency implies, the model behind
tetrachoric correlations); ``recover`` runs the exploratory pipeline of :mod:`valuelex.psychometrics.efa`
on the data and compares the solution with the planted loadings (factor count, Tucker
congruence after matching); ``recovery_curve`` repeats this for several numbers of
respondents (notebook 07). Every choice below is ours: the paper publishes no data.

Model vocabularies (notebook 07, part 2): ``simulate_model_panel`` adds to the planted structure a
per-model vocabulary (each model over- or under-uses each word whatever it means) for K models x R
respondents; ``model_count_grid`` scores the pooled and the within-model EFA
(:mod:`valuelex.psychometrics.multilevel`) over a grid of K and R. The grid runs through joblib (processes, a
progress bar), so the same call uses a laptop's cores or a cluster, without code changes. The
setting ``simulation.backend`` chooses joblib's backend (``GridExecutor``; notebook 07 starts it)::

    grid = simulate.model_count_grid(structure, settings.efa, settings.simulation)  # n_jobs local processes

    # valuelex run --set simulation.backend=dask --set simulation.dask_scheduler=tcp://scheduler:8786
    with simulate.GridExecutor(settings.simulation):             # a Dask cluster (dask.distributed)
        grid = simulate.model_count_grid(structure, settings.efa, settings.simulation)

    from ray.util.joblib import register_ray                     # Ray: pip install "ray[default]" (not tested)
    register_ray()
    with joblib.parallel_config(backend="ray"):
        grid = simulate.model_count_grid(structure, settings.efa, replace(settings.simulation, n_jobs=-1))

Every study takes the EFA settings it analyses with and the simulation settings (``settings.simulation``:
sizes, shapes, replications, model-vocabulary ICCs, seed, workers) as objects: no study copies a setting
into its signature.

Every task (one panel, one replication) draws its data from its own seed, so the backend and the
number of workers change the speed, never the numbers.
"""

# Over 600 lines: notebook 07's simulation study in one place: the planted structures, their data, the recovery
# scores and the grids (sample size, K models x R settings) share types and scoring. Issue 21 leaves it to split
# into methods/simulation/ once notebook 07 is a stage.

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from scipy import stats

from .core.display import Facts, Report
from .core.schema import Count, Icc, Length, Range, Seed
from .psychometrics import efa
from .psychometrics.efa.settings import EFASettings

#: The paper's scale: 190+ unique words, 525 respondents, three dimensions.
PAPER_WORDS = 190
PAPER_RESPONDENTS = 525
PAPER_FACTORS = 3


Loading = Annotated[float, Range(0, 1, low_open=True, high_open=True)]


@dataclass(frozen=True)
class SimulationSettings:
    """Notebook 07: method validation on planted structures (run-file section ``simulation``).

    Defined here, next to the studies that consume it; ``valuelex.settings`` composes it into a run's
    settings (``RunSettings.simulation``) and checks each field against its type (:mod:`valuelex.core.schema`).
    """

    n_words: Annotated[int, Range(6)] = 190  # the paper's "190+ unique words" [paper] (>= 2 per planted factor)
    n_respondents: Annotated[int, Range(10)] = 525  # the paper's 525 respondents [paper]
    conditions: dict[str, tuple[Loading, Loading]] = field(
        default_factory=lambda: {"strong": (0.45, 0.8), "moderate": (0.3, 0.6)}
    )  # planted loading ranges (low, high); "strong" is the one analysed first
    zipf_exponent: Annotated[float, Range(0)] = 0.6
    sizes: Annotated[tuple[Annotated[int, Range(10)], ...], Length(1)] = (
        60,
        120,
        250,
        525,
    )  # respondents for the recovery curve (the finer run adds 1000)
    replications: Count = 6  # simulated panels per size and condition (the finer run: 20)
    parallel_iter: Count = 20
    n_jobs: Count | Literal[-1] = (
        2  # processes, or Dask workers of a local cluster; -1: all (results do not depend on it)
    )
    backend: Literal["loky", "dask"] = "loky"  # joblib's backend for the grids: local processes, or dask.distributed
    dask_scheduler: str | None = None  # backend dask: the scheduler's address (tcp://host:8786); null: a local cluster
    word_sizes: Annotated[tuple[Annotated[int, Range(10)], ...], Length(1)] = (
        120,
        525,
    )  # respondents for the word-selection comparison
    model_counts: Annotated[tuple[Annotated[int, Range(2)], ...], Length(1)] = (
        4,
        8,
        16,
        32,
        64,
    )  # part 2: models per simulated panel
    per_model: Annotated[tuple[Annotated[int, Range(2)], ...], Length(1)] = (
        5,
        17,
        30,
        100,
    )  # part 2: respondents (decoding settings) per model
    model_grid_replications: Count = 1  # part 2: simulated panels per cell (the finer run: 10)
    model_grid_parallel_iter: Count = 6  # part 2: null data sets per parallel analysis (the finer run: 20)
    # Share of each word's latent propensity variance that is the model's vocabulary (each model over- or
    # under-uses each word whatever it means). Our choice: the local panel's four small models measure
    # about 0.4 (``multilevel.latent_icc``, notebook 03); larger models may be less idiosyncratic.
    vocabulary_icc: Icc = 0.2
    # Share of the value factors' variance that lies between models (models differing in their values).
    # 0: every value difference is between respondents of the same model (our choice; see notebook 07).
    value_icc: Icc = 0.0
    choice_replications: Count = 1  # panels per shape when choosing the within-model correlation (finer: 10)
    tie_shapes: Annotated[tuple[tuple[Count, Count], ...], Length(1)] = (
        (4, 30),
        (33, 16),
    )  # (models, respondents per model) where efa.parallel_ties is chosen: ours, and the paper's 33 x 16
    tie_replications: Count = 20  # simulated panels per shape for the tie rule (the finer run: 40)
    seed: Seed = 20240419

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        out = []
        if "strong" not in self.conditions:
            out.append((("conditions",), "simulation.conditions must include 'strong' (the condition analysed first)"))
        for name, (low, high) in self.conditions.items():
            if low > high:
                out.append(
                    (("conditions",), f"simulation.conditions.{name} must be (low, high), got ({low:g}, {high:g})")
                )
        return out


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
    from .psychometrics.factor_count import describe_counts

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


def plot_recovery(curve: pd.DataFrame, threshold: float = 0.95):
    """Recovery against the number of respondents: the lowest Tucker congruence of the planted factors
    when the true number of factors is extracted (median and range over replications), and the share
    of replications in which parallel analysis found the true number."""
    import matplotlib.pyplot as plt

    from .core.io import apply_style

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
#: every word above the floor for the loadings, the factors counted on the n/3 most frequent, with the
#: words tied at that cap all counted or all left out (``efa.parallel_ties``; notebook 07 chooses).
WORD_RULES = {
    "before: the n/2 most frequent words": {"max_words": "auto", "parallel_max_words": None},
    "every word above the floor": {"max_words": None, "parallel_max_words": None},
    "every word; counted on the n/3 most used, ties in": {
        "max_words": None,
        "parallel_max_words": "auto",
        "parallel_ties": "include",
    },
    "every word; counted on the n/3 most used, ties out": {
        "max_words": None,
        "parallel_max_words": "auto",
        "parallel_ties": "exclude",
    },
}


def _word_rule_one(
    structure: PlantedStructure, size: int, rep: int, seed: int, rules: dict[str, dict], settings: EFASettings
) -> list[dict]:
    data_seed = seed + 1000 * rep + size
    data = simulate_incidence(structure, size, seed=data_seed)
    primary = structure.primary()
    done: dict[tuple, dict] = {}
    rows = []
    for name, rule in rules.items():
        chosen = dataclasses.replace(settings, seed=data_seed, **rule)
        prepared = efa.prepare_matrix(data, chosen.coding, chosen.min_frequency, chosen.min_units, chosen.max_words)
        counted = efa.parallel_words(prepared.data, chosen.parallel_max_words, chosen.parallel_ties)
        key = (tuple(prepared.data.columns), tuple(counted))
        if key not in done:  # the same words give the same analysis: do not run it twice
            start = time.process_time()
            try:
                scores = recover(structure, data, chosen)
            except efa.EFAInputError as err:  # too few words: nothing recovered
                scores = {"n_factors_found": 0, "factor_count_right": False, "min_congruence": 0.0}
                scores.update(min_congruence_true_k=0.0, words_used=prepared.n_words, error=str(err))
            kept = primary.loc[list(prepared.data.columns)].value_counts().reindex(structure.loadings.columns)
            scores["weakest_factor_words"] = int(kept.fillna(0).min())
            scores["words_counted"] = len(counted)
            scores["tied_at_cap"] = len(efa.tied_at_cap(prepared.data, chosen.parallel_max_words))
            scores["seconds"] = time.process_time() - start
            done[key] = scores
        rows.append({"respondents": size, "replication": rep, "rule": name, **done[key]})
    return rows


def word_selection_study(
    structure: PlantedStructure,
    settings: EFASettings,
    grid: SimulationSettings,
    rules: dict[str, dict] | None = None,
) -> pd.DataFrame:
    """Each word-selection rule (settings that replace the EFA ``settings``' own; :data:`WORD_RULES` when
    None) on the same simulated panels (``grid.word_sizes`` x ``grid.replications``): words kept for the
    weakest planted factor, the factor count parallel analysis finds, and the congruence of the recovered
    loadings.

    One row per (size, replication, rule). Every panel has its own seed, so ``grid.n_jobs`` changes the
    speed, not the result.
    """
    rules = rules or WORD_RULES
    sizes, replications = grid.word_sizes, grid.replications
    tasks = [(structure, size, rep, grid.seed, rules, settings) for size in sizes for rep in range(replications)]
    chunks = run_tasks(_word_rule_one, tasks, grid.n_jobs, progress=False)
    return pd.DataFrame([row for chunk in chunks for row in chunk])


def summarise_word_selection(study: pd.DataFrame, timings: bool = False) -> pd.DataFrame:
    """Per number of respondents and rule: words analysed, words of the weakest planted factor, words
    parallel analysis counted on, panels with words tied at the cap, share of panels with the right
    factor count and the counts found (``"3 (3 in 83% of panels, 4 in 17%)"``), median lowest congruence
    (with the count found, and with the true count); with ``timings``, CPU seconds per analysis (shown,
    never saved: a time is not reproducible)."""
    from .psychometrics.factor_count import describe_counts

    grouped = study.groupby(["respondents", "rule"], sort=False)
    out = pd.DataFrame(
        {
            "panels": grouped.size(),
            "words_analysed": grouped["words_used"].median(),
            "weakest_factor_words": grouped["weakest_factor_words"].median(),
            "words_counted": grouped["words_counted"].median(),
            "panels_with_ties": grouped["tied_at_cap"].apply(lambda s: int((s > 0).sum())),
            "factor_count_right": grouped["factor_count_right"].mean(),
            "factors_found": grouped["n_factors_found"].apply(lambda s: describe_counts(None, s, "panels")),
            "median_min_congruence": grouped["min_congruence"].median(),
            "median_min_congruence_true_k": grouped["min_congruence_true_k"].median(),
            **({"cpu_seconds": grouped["seconds"].median()} if timings else {}),
        }
    )
    return out.reset_index()


def plot_word_selection(study: pd.DataFrame):
    """Three panels per rule and number of respondents: words kept for the weakest planted factor, share of
    panels where parallel analysis found the true count, lowest congruence at the true count (median and range)."""
    import matplotlib.pyplot as plt

    from .core.io import apply_style

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


# ------------------------------------------------------------------------------------------
# Model vocabularies: how many models does a study need? (notebook 07, part 2; backends: module docstring)
# ------------------------------------------------------------------------------------------
#: The paper's panel: "30+" models and 525 respondents, about 17 per model [paper].
PAPER_MODELS = 30
PAPER_RESPONDENTS_PER_MODEL = 17
#: The model-vocabulary ICCs of a simulated panel when none are given: the settings' (``simulation.vocabulary_icc``
#: and ``simulation.value_icc``, where their choice is explained).
DEFAULT_VOCABULARY_ICC = SimulationSettings.vocabulary_icc
DEFAULT_VALUE_ICC = SimulationSettings.value_icc
#: A found factor whose best Tucker congruence with every planted factor stays below this is spurious.
SPURIOUS_BELOW = 0.85
ANALYSIS_LEVELS = ("pooled", "within")


@dataclass
class ModelPanel:
    """Simulated respondents x words 0/1 data with the model that produced each respondent."""

    incidence: pd.DataFrame
    models: pd.Series  # model label per respondent
    vocabulary: pd.DataFrame  # models x words: each model's latent shift of each word
    vocabulary_icc: float
    value_icc: float


def simulate_model_panel(
    structure: PlantedStructure,
    n_models: int,
    per_model: int,
    vocabulary_icc: float = DEFAULT_VOCABULARY_ICC,
    value_icc: float = DEFAULT_VALUE_ICC,
    seed: int = 0,
) -> ModelPanel:
    """``n_models`` x ``per_model`` respondents: the planted value structure plus model vocabularies.

    Respondent i of model g uses word j when ``L_j f_i + e_ij + v_gj`` passes the word's threshold.
    ``v_gj ~ N(0, s^2)`` is model g's vocabulary effect on word j, independent of the word's meaning,
    with ``s^2 / (1 + s^2) = vocabulary_icc``; the thresholds are scaled by ``sqrt(1 + s^2)`` so each
    word keeps its planted overall frequency. Factor scores are ``sqrt(value_icc) m_g +
    sqrt(1 - value_icc) w_i`` (model means and respondent deviations, both ``N(0, Phi)``). Within a
    model the latent correlations are exactly the planted ``L Phi L'`` when ``value_icc = 0``.
    """
    if not 0 <= vocabulary_icc < 1 or not 0 <= value_icc < 1:
        raise ValueError("vocabulary_icc and value_icc must be in [0, 1)")
    if n_models < 1 or per_model < 1:
        raise ValueError("n_models and per_model must be positive")
    rng = np.random.default_rng(seed)
    lam = structure.loadings.to_numpy()
    n_words, k = lam.shape
    n_units = n_models * per_model
    codes = np.repeat(np.arange(n_models), per_model)
    spread = np.sqrt(vocabulary_icc / (1 - vocabulary_icc))
    vocabulary = rng.normal(0.0, spread, (n_models, n_words))
    model_means = rng.multivariate_normal(np.zeros(k), structure.phi, size=n_models)
    own = rng.multivariate_normal(np.zeros(k), structure.phi, size=n_units)
    scores = np.sqrt(value_icc) * model_means[codes] + np.sqrt(1 - value_icc) * own
    communality = np.einsum("ij,jk,ik->i", lam, structure.phi, lam)
    noise = rng.standard_normal((n_units, n_words)) * np.sqrt(1.0 - communality)
    latent = scores @ lam.T + noise + vocabulary[codes]
    thresholds = np.sqrt(1 + spread**2) * stats.norm.ppf(1.0 - structure.frequencies.to_numpy())
    models = [f"m{g + 1:02d}" for g in range(n_models)]
    index = pd.Index([f"{models[g]}|r{i % per_model + 1:03d}" for i, g in enumerate(codes)], name="respondent")
    return ModelPanel(
        incidence=pd.DataFrame((latent > thresholds).astype(int), index=index, columns=structure.words),
        models=pd.Series([models[g] for g in codes], index=index, name="model"),
        vocabulary=pd.DataFrame(vocabulary, index=models, columns=structure.words),
        vocabulary_icc=vocabulary_icc,
        value_icc=value_icc,
    )


def _level_scores(
    structure: PlantedStructure,
    result: efa.EFAResult,
    correlation: efa.CorrelationResult,
    data: pd.DataFrame,
    models: pd.Series,
    settings: EFASettings,
) -> dict:
    """Recovery of one level's solution: count, congruence (found and true k), spurious factors, model share."""
    from .psychometrics import multilevel

    scores = recovery_scores(structure, result)
    k_true = structure.loadings.shape[1]
    at_true_k = result if result.n_factors == k_true else efa.fit_efa(correlation, k_true, settings)
    scores["min_congruence_true_k"] = recovery_scores(structure, at_true_k)["min_congruence"]
    planted = structure.loadings.loc[result.loadings.index].to_numpy()
    best = np.abs(np.nan_to_num(efa.congruence(planted, result.loadings.to_numpy()))).max(axis=0)
    scores["spurious_factors"] = int((best < SPURIOUS_BELOW).sum())
    shares = multilevel.score_shares(data, efa.word_factors(result), models)
    scores["model_share"] = float(shares["ICC1"].mean()) if len(shares) else float("nan")
    scores["model_share_max"] = float(shares["ICC1"].max()) if len(shares) else float("nan")
    return scores


def _planted_model_share(structure: PlantedStructure, data: pd.DataFrame, models: pd.Series) -> float:
    """Mean ICC1 between models of the planted factors' scores (their own words, as analysed)."""
    from .psychometrics import multilevel

    primary = structure.primary().loc[list(data.columns)]
    table = pd.DataFrame({"word": primary.index, "factor": primary.to_numpy(), "assigned": True})
    return float(multilevel.score_shares(data, table, models)["ICC1"].mean())


def recover_by_level(
    structure: PlantedStructure,
    panel: ModelPanel,
    settings: EFASettings,
    levels: tuple[str, ...] = ANALYSIS_LEVELS,
) -> list[dict]:
    """Notebook 03's pooled and within-model pipelines, with the run's EFA ``settings`` (``settings.efa``:
    word filter, words counted, correlations, extraction, rotation), on one simulated panel.

    One row per level with :func:`recovery_scores`, the congruence at the true number of factors,
    ``words_counted`` (the words parallel analysis counted on), ``spurious_factors`` (found factors
    matching no planted one at ``SPURIOUS_BELOW``), and ``model_share`` (mean ICC1 between models of the
    found factors' scores: the chance-corrected share of their variance that is model identity) next to
    ``planted_model_share`` (the same for the planted factors: what the vocabularies leave in any
    score). A level that cannot be analysed (too few units or words) gets a row with its error.
    """

    rows = []
    try:
        prepared = efa.prepare_matrix(
            panel.incidence, settings.coding, settings.min_frequency, settings.min_units, settings.max_words
        )
        planted_share = _planted_model_share(structure, prepared.data, panel.models)
    except efa.EFAInputError as err:
        return [_failed_level(level, str(err)) for level in levels]
    for level in levels:
        try:
            if level == "pooled":
                analysis = efa.EFA(settings).fit(panel.incidence)
                result, corr, parallel = analysis.result, analysis.correlation, analysis.parallel
            elif level == "within":
                within = efa.EFA(settings).fit(panel.incidence, panel.models, prepared=prepared)
                result, corr, parallel = within.result, within.correlation, within.parallel
            else:
                raise ValueError(f"level must be one of {ANALYSIS_LEVELS}, not {level!r}")
            row = _level_scores(structure, result, corr, prepared.data, panel.models, settings)
            row.update(
                level=level,
                words_counted=len(parallel.observed) if parallel is not None else 0,
                planted_model_share=planted_share,
                error="",
            )
        except efa.EFAInputError as err:
            row = _failed_level(level, str(err))
        rows.append(row)
    return rows


def _failed_level(level: str, error: str) -> dict:
    return {
        "level": level,
        "n_factors_found": 0,
        "factor_count_right": False,
        "min_congruence": 0.0,
        "min_congruence_true_k": 0.0,
        "words_used": 0,
        "spurious_factors": 0,
        "model_share": float("nan"),
        "error": error,
    }


def task_seed(seed: int, *key: int) -> int:
    """A seed of its own for every task of a grid (``numpy.random.SeedSequence`` of the seed and the key)."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1)[0])


def _model_grid_task(
    structure: PlantedStructure,
    n_models: int,
    per_model: int,
    replication: int,
    seed: int,
    vocabulary_icc: float,
    value_icc: float,
    settings: EFASettings,
    levels: tuple[str, ...],
) -> list[dict]:
    from threadpoolctl import threadpool_limits

    task = task_seed(seed, n_models, per_model, replication)
    panel = simulate_model_panel(structure, n_models, per_model, vocabulary_icc, value_icc, seed=task)
    with threadpool_limits(limits=1):  # one BLAS thread per task: the workers are the parallelism
        rows = recover_by_level(structure, panel, dataclasses.replace(settings, seed=task), levels)
    key = {"models": n_models, "per_model": per_model, "respondents": n_models * per_model, "replication": replication}
    return [{**key, **row} for row in rows]


TIE_RULES = ("include", "exclude")


def _tie_rule_task(
    structure: PlantedStructure,
    n_models: int,
    per_model: int,
    replication: int,
    seed: int,
    vocabulary_icc: float,
    value_icc: float,
    settings: EFASettings,
) -> list[dict]:
    from threadpoolctl import threadpool_limits

    task = task_seed(seed, n_models, per_model, replication)
    panel = simulate_model_panel(structure, n_models, per_model, vocabulary_icc, value_icc, seed=task)
    prepared = efa.prepare_matrix(
        panel.incidence, settings.coding, settings.min_frequency, settings.min_units, settings.max_words
    )
    tied = len(efa.tied_at_cap(prepared.data, settings.parallel_max_words))
    key = {"models": n_models, "per_model": per_model, "respondents": n_models * per_model, "replication": replication}
    done: dict[tuple, tuple[list[dict], float]] = {}
    rows = []
    for ties in TIE_RULES:
        counted = tuple(efa.parallel_words(prepared.data, settings.parallel_max_words, ties))
        if counted not in done:  # no tie at the cap: both rules count the same words, one analysis
            start = time.process_time()
            with threadpool_limits(limits=1):  # one BLAS thread per task: the workers are the parallelism
                found = recover_by_level(structure, panel, dataclasses.replace(settings, seed=task, parallel_ties=ties))
            done[counted] = (found, time.process_time() - start)
        found, seconds = done[counted]
        rows += [{**key, "ties": ties, "tied_at_cap": tied, **row, "seconds": seconds} for row in found]
    return rows


def tie_rule_study(
    structure: PlantedStructure, settings: EFASettings, grid: SimulationSettings, progress: bool = True
) -> pd.DataFrame:
    """The two tie rules of parallel analysis (``efa.parallel_ties``: words tied at the ``parallel_max_words``
    cap all counted, or none) on the same simulated panels (``grid.tie_replications`` of each of
    ``grid.tie_shapes``: models, respondents per model), with model vocabularies, through notebook 03's pooled and within-model pipelines (:func:`recover_by_level`,
    the EFA ``settings`` otherwise unchanged).

    One row per (shape, replication, rule, level): the count found, whether it is the planted count,
    ``tied_at_cap`` (words tied at the cap in that panel) and ``seconds`` (CPU seconds of both levels'
    analyses; not reproducible, never saved). A panel with no tie at the cap is analysed once.
    """
    keys = [(k, r, rep) for k, r in grid.tie_shapes for rep in range(grid.tie_replications)]
    tasks = [(structure, *key, grid.seed, grid.vocabulary_icc, grid.value_icc, settings) for key in keys]
    batches = run_tasks(_tie_rule_task, tasks, grid.n_jobs, progress, "tie rules")
    return pd.DataFrame([row for batch in batches for row in batch])


def summarise_tie_rules(study: pd.DataFrame, timings: bool = False) -> pd.DataFrame:
    """Per shape, level and tie rule: panels, panels with words tied at the cap, words counted (median),
    share of panels with the planted count, the counts found (``"3 (3 in 80% of panels, 4 in 20%)"``) and
    the median lowest congruence; with ``timings``, CPU seconds per panel (both levels; shown, never saved)."""
    from .psychometrics.factor_count import describe_counts

    study = study.assign(shape=study["models"].astype(str) + " x " + study["per_model"].astype(str))
    grouped = study.groupby(["shape", "level", "ties"], sort=False)
    out = pd.DataFrame(
        {
            "panels": grouped.size(),
            "panels_with_ties": grouped["tied_at_cap"].apply(lambda s: int((s > 0).sum())),
            "words_counted": grouped["words_counted"].median(),
            "factor_count_right": grouped["factor_count_right"].mean(),
            "factors_found": grouped["n_factors_found"].apply(lambda s: describe_counts(None, s, "panels")),
            "median_min_congruence": grouped["min_congruence"].median(),
            **({"cpu_seconds": grouped["seconds"].median()} if timings else {}),
        }
    )
    return out.reset_index()


def run_tasks(function, tasks: list[tuple], n_jobs: int | None = None, progress: bool = True, label: str = "") -> list:
    """``function(*task)`` for every task through joblib (the active backend), with a progress bar.

    Results come back in the order of ``tasks``. ``n_jobs=None`` takes the number of workers from
    ``joblib.parallel_config`` (1 when none is set): that is how a Dask or Ray backend is used.
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(function)(*task) for task in tasks)
    if progress:
        # disable=None: shown on a terminal, not in a notebook's output (no progress-bar block in the tutorial)
        results = tqdm(results, total=len(tasks), desc=label or function.__name__, mininterval=2.0, disable=None)
    return list(results)


class GridExecutor:
    """Where the simulation grids run: joblib's backend, chosen by the settings (``simulation.backend``).

    ``loky`` (the default): ``n_jobs`` local processes. ``dask``: joblib's Dask backend
    (``dask.distributed``), on the cluster whose scheduler is at ``dask_scheduler`` (e.g.
    ``tcp://10.0.0.5:8786``), or, when that is null, on a local cluster of ``n_jobs``
    single-threaded worker processes (-1: one per core). joblib's Dask backend uses every worker of
    the cluster whatever ``n_jobs`` says, but ``n_jobs: 1`` still means "sequential, here". Every task seeds itself, so the backend changes the speed,
    never the numbers (``tests/test_simulate_dask.py``). ``start()`` makes it joblib's backend in
    this thread until ``close()`` (a notebook starts it once); it is also a context manager.
    """

    def __init__(self, settings: SimulationSettings):
        if settings.backend not in ("loky", "dask"):
            raise ValueError(f"simulation.backend must be loky or dask, got {settings.backend!r}")
        self.settings = settings
        self.client = None
        self._cluster = None
        self._config = None

    def start(self) -> GridExecutor:
        import joblib

        if self._config is not None:
            return self
        if self.settings.backend == "dask":
            from dask.distributed import Client, LocalCluster

            if self.settings.dask_scheduler:
                self.client = Client(self.settings.dask_scheduler)
            else:
                n_workers = self.settings.n_jobs if self.settings.n_jobs > 0 else (os.cpu_count() or 1)
                self._cluster = LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
                self.client = Client(self._cluster)
            self._config = joblib.parallel_config(backend="dask", n_jobs=-1)
        else:
            self._config = joblib.parallel_config(backend="loky", n_jobs=self.settings.n_jobs)
        return self

    def describe(self) -> str:
        if self.settings.backend == "loky":
            return f"joblib/loky, {self.settings.n_jobs} local processes"
        where = self.settings.dask_scheduler or "a local cluster"
        workers = len(self.client.scheduler_info().get("workers", {})) if self.client is not None else "?"
        return f"joblib/Dask on {where} ({workers} workers)"

    def close(self) -> None:
        if self._config is not None:
            self._config.__exit__(None, None, None)
            self._config = None
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> GridExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class ModelGrid(Report):
    """Recovery of a planted structure by the pooled and the within-model EFA over models x respondents."""

    grid: pd.DataFrame  # one row per (models, per_model, replication, level)
    settings: dict
    threshold: float = 0.95
    share: float = 0.8

    title = "How many models does a study need? Pooled vs within-model EFA"

    def summary(self) -> pd.DataFrame:
        """Per models x respondents per model x level: share of panels with the right factor count, median
        lowest congruence (found count and true count), share fully recovered, spurious factors, model share."""
        from .psychometrics.factor_count import describe_counts

        g = self.grid.assign(
            full=lambda d: d["factor_count_right"].astype(bool) & (d["min_congruence"] >= self.threshold)
        ).groupby(["models", "per_model", "level"])
        out = pd.DataFrame(
            {
                "panels": g.size(),
                "factor_count_right": g["factor_count_right"].mean(),
                "mean_factors_found": g["n_factors_found"].mean(),
                "factors_found": g["n_factors_found"].apply(lambda v: describe_counts(None, v, "panels")),
                "median_min_congruence": g["min_congruence"].median(),
                "median_min_congruence_true_k": g["min_congruence_true_k"].median(),
                f"recovered_{self.threshold}": g["full"].mean(),
                "mean_spurious_factors": g["spurious_factors"].mean(),
                "median_model_share": g["model_share"].median(),
                "median_planted_model_share": g["planted_model_share"].median()
                if "planted_model_share" in self.grid
                else np.nan,
            }
        ).reset_index()
        return out

    def models_needed(self) -> pd.DataFrame:
        """Per level and respondents per model: the smallest number of models from which on (every larger
        simulated count too) at least ``share`` of panels get the right factor count and every planted
        factor's congruence reaches ``threshold``; NaN when no simulated count does."""
        summary = self.summary()
        col = f"recovered_{self.threshold}"
        rows = []
        for (level, per_model), part in summary.groupby(["level", "per_model"]):
            part = part.sort_values("models")
            ok = (part[col] >= self.share).to_numpy()
            needed = next((int(part["models"].iloc[i]) for i in range(len(ok)) if ok[i:].all()), None)
            rows.append(
                {
                    "level": level,
                    "per_model": int(per_model),
                    "models_needed": needed,
                    "respondents_needed": None if needed is None else needed * int(per_model),
                }
            )
        return pd.DataFrame(rows, dtype=object)  # None (not NaN) where no simulated count suffices

    def paper_panel(self) -> pd.DataFrame:
        """The simulated cell nearest the paper's panel (30+ models x about 17 respondents each)."""
        summary = self.summary()
        models = min(summary["models"].unique(), key=lambda m: (abs(m - PAPER_MODELS), -m))
        per_model = min(summary["per_model"].unique(), key=lambda r: abs(r - PAPER_RESPONDENTS_PER_MODEL))
        return summary[(summary["models"] == models) & (summary["per_model"] == per_model)]

    def sections(self) -> list[tuple[str, object]]:
        return [
            ("Settings", self.settings),
            ("The paper's panel (nearest simulated cell)", self.paper_panel()),
            (f"Models needed (>= {self.share:.0%} of panels fully recovered)", self.models_needed()),
            ("Every cell", self.summary()),
        ]

    def metrics(self) -> dict[str, object]:
        paper = self.paper_panel().set_index("level")
        needed = self.models_needed()
        out: dict[str, object] = {"panels": int(self.grid.groupby(["models", "per_model", "replication"]).ngroups)}
        for level in paper.index:
            out[f"paper_{level}_recovered"] = float(paper.at[level, f"recovered_{self.threshold}"])
            out[f"paper_{level}_congruence"] = float(paper.at[level, "median_min_congruence"])
            out[f"paper_{level}_factors"] = float(paper.at[level, "mean_factors_found"])
            out[f"paper_{level}_model_share"] = float(paper.at[level, "median_model_share"])
        for _, row in needed.iterrows():
            out[f"models_needed_{row['level']}_r{row['per_model']}"] = row["models_needed"]
        return out


def model_count_grid(
    structure: PlantedStructure,
    settings: EFASettings,
    grid: SimulationSettings,
    progress: bool = True,
    threshold: float = 0.95,
    levels: tuple[str, ...] = ANALYSIS_LEVELS,
) -> ModelGrid:
    """:func:`recover_by_level` with the EFA ``settings`` on ``grid.model_grid_replications`` simulated panels
    per (models, respondents per model) of ``grid.model_counts`` x ``grid.per_model``, with the model
    vocabularies of ``grid.vocabulary_icc`` and ``grid.value_icc``.

    Tasks are sent largest first (better balance across workers) through :func:`run_tasks`.
    """
    seed, replications = grid.seed, grid.model_grid_replications
    vocabulary_icc, value_icc = grid.vocabulary_icc, grid.value_icc
    keys = [(k, r, rep) for k in grid.model_counts for r in grid.per_model for rep in range(replications)]
    keys.sort(key=lambda t: -t[0] * t[1])
    tasks = [(structure, k, r, rep, seed, vocabulary_icc, value_icc, settings, levels) for k, r, rep in keys]
    batches = run_tasks(_model_grid_task, tasks, grid.n_jobs, progress, "models x respondents")
    grid_rows = pd.DataFrame([row for batch in batches for row in batch])
    grid_rows = grid_rows.sort_values(["models", "per_model", "replication", "level"], ignore_index=True)
    used = {
        "words_planted": len(structure.words),
        "factors_planted": structure.loadings.shape[1],
        "vocabulary_icc": vocabulary_icc,
        "value_icc": value_icc,
        "replications": replications,
        "seed": seed,
        "parallel_iter": settings.parallel_iter,
        "parallel_max_words": settings.parallel_max_words,
        "within_correlation": settings.within_correlation,
    }
    return ModelGrid(grid_rows, used, threshold)


def plot_model_grid(grid: ModelGrid):
    """Recovery against the number of models, one line per respondents-per-model, pooled (solid) and
    within-model (dashed) EFA: share of panels with the right factor count, median lowest congruence
    when the planted count is extracted, and the share of the found factors' score variance that is
    model identity (ICC1; dotted: the planted factors' own)."""
    import matplotlib.pyplot as plt

    from .core.io import apply_style

    apply_style()
    summary = grid.summary()
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 4.8))
    colours = ["#3b6fb6", "#d9822b", "#3f9b62", "#c44e52", "#8c6bb1", "#555555"]
    styles = {"pooled": "-", "within": "--"}
    metrics = [
        ("factor_count_right", "share of panels with the planted factor count", (-0.03, 1.03)),
        ("median_min_congruence_true_k", "lowest congruence at the planted count (median)", (None, 1.01)),
        ("median_model_share", "model identity in factor scores (ICC1, median)", (None, None)),
    ]
    for ax, (column, label, limits) in zip(axes, metrics, strict=True):
        for colour, r in zip(colours, sorted(summary["per_model"].unique()), strict=False):
            for level, style in styles.items():
                part = summary[(summary["per_model"] == r) & (summary["level"] == level)].sort_values("models")
                if part.empty:
                    continue
                ax.plot(
                    part["models"], part[column], style, marker="o", ms=3.5, color=colour, label=f"{level}, {r}/model"
                )
        if column == "median_model_share" and "median_planted_model_share" in summary:
            ref = summary[summary["level"] == "pooled"].groupby("models")["median_planted_model_share"].median()
            ax.plot(ref.index, ref.to_numpy(), ":", color="#999999", label="planted factors")
        if column == "median_min_congruence_true_k":
            ax.axhline(grid.threshold, color="#555555", lw=0.8, ls="--")
        models = sorted(summary["models"].unique())
        if models[0] <= PAPER_MODELS <= models[-1]:
            ax.axvline(PAPER_MODELS, color="#999999", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xticks(models, [str(m) for m in models])
        ax.minorticks_off()
        ax.set_xlabel("models in the panel")
        ax.set_ylabel(label)
        ax.set_ylim(*limits)
    handles, labels = axes[2].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, frameon=False, fontsize=8)
    axes[0].set_title("Factor count")
    axes[1].set_title("Loadings")
    axes[2].set_title("Model identity")
    fig.suptitle("Pooled (solid) vs within-model (dashed) EFA; dotted line: the paper's 30+ models", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    return fig


# which within-model correlation for 0/1 words? ------------------------------------------------
#: The candidates of :func:`compare_within_correlations`: the within-model ones of
#: :mod:`valuelex.psychometrics.multilevel` and, for reference, the pooled tetrachoric that ignores the models.
CORRELATION_CANDIDATES = ("tetrachoric", "tetrachoric_pooled", "rwg", "pooled (ignores models)")
#: Panels of the comparison: the local panel's shape (4 models x 30) and the paper's (30+ x 17).
CHOICE_PANELS = ((4, 30), (32, 17))


def _choice_task(
    structure: PlantedStructure,
    n_models: int,
    per_model: int,
    replication: int,
    seed: int,
    vocabulary_icc: float,
    settings: EFASettings,
) -> list[dict]:
    """Every candidate correlation on one simulated panel: bias against the planted latent
    correlations, factor count by parallel analysis (on the words notebook 03 counts on), congruence at
    the true count, seconds. The EFA ``settings`` choose the words, the extraction and the rotation."""
    import time

    from threadpoolctl import threadpool_limits

    from .psychometrics import multilevel

    task = task_seed(seed, n_models, per_model, replication, 7)
    panel = simulate_model_panel(structure, n_models, per_model, vocabulary_icc, 0.0, seed=task)
    rows = []
    with threadpool_limits(limits=1):
        try:
            pooled = efa.prepare_matrix(
                panel.incidence, settings.coding, settings.min_frequency, settings.min_units, settings.max_words
            )
            prepared = multilevel.prepare_within(pooled, panel.models)
        except efa.EFAInputError as err:
            return [
                {"models": n_models, "per_model": per_model, "method": m, "error": str(err)}
                for m in CORRELATION_CANDIDATES
            ]
        data, models = prepared.data, panel.models
        lam = structure.loadings.loc[data.columns].to_numpy()
        target = lam @ structure.phi @ lam.T
        off = ~np.eye(len(target), dtype=bool)
        k_true = structure.loadings.shape[1]
        for method in CORRELATION_CANDIDATES:
            start = time.process_time()
            try:
                # the run's EFA with this candidate correlation (parallel analysis seeded by the task), on the
                # words that vary within models; the loadings are scored at the planted count
                if method.startswith("pooled"):
                    raw = efa.tetrachoric(data).rho.to_numpy()
                    seconds = time.process_time() - start
                    candidate = dataclasses.replace(
                        settings, correlation="tetrachoric", n_factors="parallel", seed=task
                    )
                    analysis = efa.EFA(candidate).fit(data, prepared=prepared)
                else:
                    raw = multilevel.raw_within_correlation(data, models, method)
                    seconds = time.process_time() - start
                    candidate = dataclasses.replace(
                        settings, within_correlation=method, n_factors="parallel", seed=task
                    )
                    analysis = efa.EFA(candidate).fit(panel.incidence, models, prepared=pooled)
                corr, parallel = analysis.correlation, analysis.parallel
                fit = analysis.result if analysis.result.n_factors == k_true else efa.fit_efa(corr, k_true, candidate)
                error = raw[off] - target[off]
                strongest = target[off] >= np.quantile(target[off], 0.9)
                rows.append(
                    {
                        "models": n_models,
                        "per_model": per_model,
                        "replication": replication,
                        "method": method,
                        "words": len(target),
                        "bias": float(error.mean()),
                        "bias_top_decile": float(error[strongest].mean()),
                        "rmse": float(np.sqrt((error**2).mean())),
                        "median_abs_error": float(np.median(np.abs(error))),
                        "smoothed": corr.smoothed,
                        "factors_found": parallel.n_factors,
                        "min_congruence_true_k": recovery_scores(structure, fit)["min_congruence"],
                        "seconds": seconds,
                        "error": "",
                    }
                )
            except efa.EFAInputError as err:
                rows.append({"models": n_models, "per_model": per_model, "method": method, "error": str(err)})
    return rows


@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class CorrelationChoice(Report):
    """Which within-model correlation recovers the planted structure from 0/1 words (by simulation)."""

    runs: pd.DataFrame
    settings: dict

    title = "Within-model correlation for 0/1 words: a simulation"

    def summary(self, timings: bool = False) -> pd.DataFrame:
        """Per panel shape and method: mean bias (all pairs and the strongest tenth of the planted
        correlations), RMSE and median absolute error of the raw (unsmoothed) matrix against the planted
        latent correlations,
        median factors found by parallel analysis (planted: 3), share of panels with the right count,
        median lowest congruence at the true count; with ``timings``, CPU seconds per matrix (shown, never
        saved: a time is not reproducible)."""
        from .psychometrics.factor_count import describe_counts

        ok = self.runs[self.runs["error"] == ""]
        k_true = self.settings.get("factors_planted", PAPER_FACTORS)
        g = ok.groupby(["models", "per_model", "method"], sort=False)
        return pd.DataFrame(
            {
                "panels": g.size(),
                "bias": g["bias"].mean(),
                "bias_strongest_pairs": g["bias_top_decile"].mean(),
                "rmse": g["rmse"].mean(),
                "median_abs_error": g["median_abs_error"].mean(),
                "median_factors_found": g["factors_found"].median(),
                "factor_count_right": g["factors_found"].apply(lambda s: float((s == k_true).mean())),
                "factors_found": g["factors_found"].apply(lambda s: describe_counts(None, s, "panels")),
                "median_min_congruence_true_k": g["min_congruence_true_k"].median(),
                **({"cpu_seconds": g["seconds"].median()} if timings else {}),
            }
        ).reset_index()

    def sections(self) -> list[tuple[str, object]]:
        return [("Settings", self.settings), ("Per panel shape and correlation", self.summary(timings=True))]

    def metrics(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for _, row in self.summary().iterrows():
            key = f"{row['method'].split(' ')[0]}_{row['models']}x{row['per_model']}"
            out[f"rmse_{key}"] = round(float(row["rmse"]), 4)
            out[f"factors_{key}"] = float(row["median_factors_found"])
            out[f"congruence_{key}"] = round(float(row["median_min_congruence_true_k"]), 4)
        return out


def compare_within_correlations(
    structure: PlantedStructure,
    settings: EFASettings,
    grid: SimulationSettings,
    panels: tuple[tuple[int, int], ...] = CHOICE_PANELS,
    progress: bool = True,
) -> CorrelationChoice:
    """Compare the within-model correlations of :mod:`valuelex.psychometrics.multilevel` (and the pooled tetrachoric
    that ignores the models) on simulated panels with model vocabularies: the planted latent
    correlations are known, so bias, RMSE, the factor count and the congruence say which one to use.
    The EFA ``settings`` (notebook 03's) choose the words counted, the extraction and the rotation;
    ``grid`` (``settings.simulation``) the replications per panel, the vocabulary ICC, the seed and workers."""
    seed, vocabulary_icc, replications = grid.seed, grid.vocabulary_icc, grid.choice_replications
    tasks = [(structure, k, r, rep, seed, vocabulary_icc, settings) for k, r in panels for rep in range(replications)]
    runs = pd.DataFrame(
        [row for rows in run_tasks(_choice_task, tasks, grid.n_jobs, progress, "correlations") for row in rows]
    )
    used = {
        "words_planted": len(structure.words),
        "factors_planted": structure.loadings.shape[1],
        "vocabulary_icc": vocabulary_icc,
        "replications": replications,
        "parallel_iter": settings.parallel_iter,
        "parallel_max_words": settings.parallel_max_words,
        "seed": seed,
    }
    return CorrelationChoice(runs, used)
