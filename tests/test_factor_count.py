"""How sure is the factor count: its distribution over seeds, bootstrap resamples and word caps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from valuelex import efa, factor_count, multilevel, simulate
from valuelex.settings import EFASettings


def test_counts_are_described_with_their_distribution():
    counts = [4] * 71 + [5] * 24 + [3] * 5
    assert factor_count.describe_counts(4, counts) == "4 (4 in 71% of resamples, 5 in 24%, 3 in 5%)"
    assert factor_count.describe_counts(None, [3, 3, 4], "panels") == "3 (3 in 67% of panels, 4 in 33%)"
    assert factor_count.describe_counts(5, [4, 4, 5]) == "5 (4 in 67% of resamples, 5 in 33%)"  # the count leads
    table = factor_count.shares([2, 3, 3, 2])
    assert list(table.index) == [2, 3] and list(table) == [0.5, 0.5]  # equal shares: the smaller count first


def test_the_count_is_notebook_03s_and_its_spread_is_reported():
    """The count with the run's seed is parallel analysis on the words notebook 03 counts on; the seeds and
    resamples give the spread, the caps table the other rules (the run's rule gives the same words)."""
    structure = simulate.planted_structure(n_words=80, seed=5)
    data = efa.prepare_matrix(simulate.simulate_incidence(structure, 240, seed=6)).data
    settings = EFASettings(parallel_iter=6, count_resamples=4, seed=11)
    stability = factor_count.count_stability(data, settings)
    words = efa.parallel_words(data, "auto", settings.parallel_ties)
    assert stability.count == efa.parallel_analysis(data[words], n_iter=6, seed=11).n_factors
    assert stability.words_counted == len(words) and len(stability.seeds) == len(stability.resamples) == 4
    assert stability.seeds.index[0] == 11 and stability.seeds.iloc[0] == stability.count
    caps = stability.caps.set_index("rule")
    assert caps.loc["the run's: auto, ties included", "words_counted"] == len(words)
    assert caps.loc["every word", "words_counted"] == data.shape[1]
    assert stability.describe().startswith(f"{stability.count} (")
    distribution = stability.distribution()
    np.testing.assert_allclose(distribution[["seeds", "resamples"]].sum(), 1.0)
    assert "How sure is the pooled factor count" in str(stability)
    assert stability.metrics()["factor_count"] == stability.describe()


def test_bootstrap_resamples_are_compared_with_null_data_that_repeat_units_the_same_way():
    """A planted three-factor panel whose count is clear: on resamples the count stays 3 when the null data
    repeat units as the resample does; a plain permutation null reads the duplicated units as structure."""
    structure = simulate.planted_structure(n_words=90, seed=2)
    data = efa.prepare_matrix(simulate.simulate_incidence(structure, 300, seed=3)).data
    settings = EFASettings(parallel_iter=8, count_resamples=6, seed=1)
    stability = factor_count.count_stability(data, settings)
    assert stability.count == 3 and stability.failures == 0
    assert (stability.resamples == 3).mean() >= 0.6
    rng = np.random.default_rng(0)
    plain = []
    for i in range(6):
        sample = data.iloc[rng.integers(0, len(data), len(data))].reset_index(drop=True)
        sample = sample.loc[:, sample.std() > 0]
        words = efa.parallel_words(sample, "auto", "include")
        plain.append(efa.parallel_analysis(sample[words], n_iter=8, seed=i).n_factors)
    assert np.mean(np.array(plain) > 3) >= 0.8


def test_within_model_count_resamples_inside_models():
    structure = simulate.planted_structure(n_words=60, seed=0)
    panel = simulate.simulate_model_panel(structure, 4, 60, vocabulary_icc=0.3, seed=1)
    prepared = multilevel.prepare_within(efa.prepare_matrix(panel.incidence), panel.models)
    settings = EFASettings(parallel_iter=5, count_resamples=3, seed=2)
    stability = factor_count.count_stability(prepared.data, settings, panel.models)
    words = efa.parallel_words(prepared.data, "auto", "include")
    expected = multilevel.within_parallel_analysis(prepared.data[words], panel.models, n_iter=5, seed=2)
    assert stability.level == "within models" and stability.count == expected.n_factors
    assert len(stability.resamples) + stability.failures == 3
    assert set(stability.metrics()) >= {"within_factor_count", "within_factor_count_seeds"}
    excluded = factor_count.count_stability(prepared.data, dataclasses.replace(settings, parallel_ties="exclude"))
    assert excluded.tie_rule == "exclude"
    assert isinstance(excluded.caps, pd.DataFrame) and "ties included" in " ".join(excluded.caps["rule"])
