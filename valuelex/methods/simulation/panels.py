"""Model vocabularies: simulated panels of K models x R respondents, scored pooled and within models, and the tie rule."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ...psychometrics import efa
from ...psychometrics.efa.settings import EFASettings
from .executor import run_tasks, task_seed
from .planted import PlantedStructure, recovery_scores
from .settings import SimulationSettings

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
    from ...psychometrics import multilevel

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
    from ...psychometrics import multilevel

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
    from ...psychometrics.factor_count import describe_counts

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
