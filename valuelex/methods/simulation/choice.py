"""Which within-model correlation: the candidates compared on simulated panels of two shapes (notebook 07)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...core.display import Report
from ...psychometrics import efa
from ...psychometrics.efa.settings import EFASettings
from .executor import run_tasks, task_seed
from .panels import simulate_model_panel
from .planted import PlantedStructure, recovery_scores
from .settings import PAPER_FACTORS, SimulationSettings

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

    from threadpoolctl import threadpool_limits

    from ...psychometrics import multilevel

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
        from ...psychometrics.factor_count import describe_counts

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
