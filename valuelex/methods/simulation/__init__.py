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

    grid = simulation.model_count_grid(structure, settings.efa, settings.simulation)  # n_jobs local processes

    # valuelex run --set simulation.backend=dask --set simulation.dask_scheduler=tcp://scheduler:8786
    with simulation.GridExecutor(settings.simulation):             # a Dask cluster (dask.distributed)
        grid = simulation.model_count_grid(structure, settings.efa, settings.simulation)

    from ray.util.joblib import register_ray                     # Ray: pip install "ray[default]" (not tested)
    register_ray()
    with joblib.parallel_config(backend="ray"):
        grid = simulation.model_count_grid(structure, settings.efa, replace(settings.simulation, n_jobs=-1))

Every study takes the EFA settings it analyses with and the simulation settings (``settings.simulation``:
sizes, shapes, replications, model-vocabulary ICCs, seed, workers) as objects: no study copies a setting
into its signature.

Every task (one panel, one replication) draws its data from its own seed, so the backend and the
number of workers change the speed, never the numbers.

The modules: ``settings`` (``SimulationSettings``, the paper's scale), ``planted`` (a planted structure, its
data, recovery by sample size), ``words`` (word-selection rules), ``panels`` (model vocabularies, pooled and
within-model scoring, the tie rule), ``grid`` (K models x R respondents), ``choice`` (which within-model
correlation) and ``executor`` (joblib's backend, one seed per task). Their figures are in
:mod:`valuelex.plots.simulation`.
"""

from __future__ import annotations

from .choice import CHOICE_PANELS, CORRELATION_CANDIDATES, CorrelationChoice, compare_within_correlations
from .executor import GridExecutor, run_tasks, task_seed
from .grid import ModelGrid, model_count_grid
from .panels import (
    ANALYSIS_LEVELS,
    DEFAULT_VALUE_ICC,
    DEFAULT_VOCABULARY_ICC,
    PAPER_MODELS,
    PAPER_RESPONDENTS_PER_MODEL,
    SPURIOUS_BELOW,
    TIE_RULES,
    ModelPanel,
    recover_by_level,
    simulate_model_panel,
    summarise_tie_rules,
    tie_rule_study,
)
from .planted import (
    PlantedStructure,
    planted_structure,
    recover,
    recovery_curve,
    recovery_scores,
    recovery_study,
    respondents_needed,
    simulate_incidence,
    summarise_curve,
    with_marker_words,
)
from .settings import PAPER_FACTORS, PAPER_RESPONDENTS, PAPER_WORDS, Loading, SimulationSettings
from .words import WORD_RULES, summarise_word_selection, word_selection_study

__all__ = [
    "ANALYSIS_LEVELS",
    "CHOICE_PANELS",
    "CORRELATION_CANDIDATES",
    "CorrelationChoice",
    "DEFAULT_VALUE_ICC",
    "DEFAULT_VOCABULARY_ICC",
    "GridExecutor",
    "Loading",
    "ModelGrid",
    "ModelPanel",
    "PAPER_FACTORS",
    "PAPER_MODELS",
    "PAPER_RESPONDENTS",
    "PAPER_RESPONDENTS_PER_MODEL",
    "PAPER_WORDS",
    "PlantedStructure",
    "SPURIOUS_BELOW",
    "SimulationSettings",
    "TIE_RULES",
    "WORD_RULES",
    "compare_within_correlations",
    "model_count_grid",
    "planted_structure",
    "recover",
    "recover_by_level",
    "recovery_curve",
    "recovery_scores",
    "recovery_study",
    "respondents_needed",
    "run_tasks",
    "simulate_incidence",
    "simulate_model_panel",
    "summarise_curve",
    "summarise_tie_rules",
    "summarise_word_selection",
    "task_seed",
    "tie_rule_study",
    "with_marker_words",
    "word_selection_study",
]
