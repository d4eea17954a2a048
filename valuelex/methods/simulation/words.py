"""Which words to keep: word-selection rules compared on the same simulated panels (notebook 07)."""

from __future__ import annotations

import dataclasses
import time

import pandas as pd

from ...psychometrics import efa
from ...psychometrics.efa.settings import EFASettings
from .executor import run_tasks
from .planted import PlantedStructure, recover, simulate_incidence
from .settings import SimulationSettings

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
    from ...psychometrics.factor_count import describe_counts

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
