"""How many models does a study need: the K models x R respondents grid (notebook 07, part 2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...core.display import Report
from ...psychometrics.efa.settings import EFASettings
from .executor import run_tasks, task_seed
from .panels import ANALYSIS_LEVELS, PAPER_MODELS, PAPER_RESPONDENTS_PER_MODEL, recover_by_level, simulate_model_panel
from .planted import PlantedStructure
from .settings import SimulationSettings


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
        from ...psychometrics.factor_count import describe_counts

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
