"""How sure is the factor count: its distribution over seeds, subsamples and word caps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from valuelex.methods import simulation
from valuelex.psychometrics import efa, factor_count, multilevel
from valuelex.psychometrics.efa.settings import EFASettings


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
    structure = simulation.planted_structure(n_words=80, seed=5)
    data = efa.prepare_matrix(simulation.simulate_incidence(structure, 240, seed=6)).data
    settings = EFASettings(parallel_iter=6, count_resamples=4, seed=11)
    stability = factor_count.count_stability(data, settings)
    words = efa.parallel_words(data, "auto", settings.parallel_ties)
    assert stability.count == efa.parallel_analysis(data[words], n_iter=6, seed=11).n_factors
    assert stability.words_counted == len(words) and len(stability.seeds) == len(stability.subsamples) == 4
    assert stability.seeds.index[0] == 11 and stability.seeds.iloc[0] == stability.count
    caps = stability.caps.set_index("rule")
    assert caps.loc["the run's: auto, ties included", "words_counted"] == len(words)
    assert caps.loc["every word", "words_counted"] == data.shape[1]
    assert stability.describe().startswith(f"{stability.count} (")
    distribution = stability.distribution()
    np.testing.assert_allclose(distribution[["seeds", "subsamples"]].sum(), 1.0)
    assert "How sure is the pooled factor count" in str(stability)
    assert stability.metrics()["factor_count"] == stability.describe()


def test_subsamples_keep_a_clear_planted_count_where_bootstrap_resamples_did_not():
    """A planted three-factor panel whose count is 3 with every seed: on 80% subsamples the count stays 3.
    Bootstrap resamples of the same panel (the null data repeating units as the resample does, as before)
    gave 3 in under half of them: the duplicated units distort the count (docs/factor_count.md)."""
    structure = simulation.planted_structure(n_words=80, seed=1)
    data = efa.prepare_matrix(simulation.simulate_incidence(structure, 525, seed=100)).data
    settings = EFASettings(parallel_iter=8, count_resamples=8, seed=7)
    stability = factor_count.count_stability(data, settings)
    assert stability.count == 3 and (stability.seeds == 3).all() and stability.failures == 0
    assert (stability.subsamples == 3).mean() >= 0.6, stability.describe()  # 6 of 8 here
    assert "of 80% of the units, without replacement" in str(stability)
    rng = np.random.default_rng(0)
    boot = []
    for i in range(8):
        distinct, repeat = np.unique(rng.integers(0, len(data), len(data)), return_inverse=True)
        sample = data.iloc[distinct]
        words = efa.parallel_words(sample.iloc[repeat], "auto", "include")
        boot.append(efa.parallel_analysis(sample[words], n_iter=8, seed=i, repeat=repeat).n_factors)
    assert np.mean(np.array(boot) == 3) < 0.5, boot  # 3 of 8 (38%) here


def test_within_model_count_subsamples_inside_models():
    structure = simulation.planted_structure(n_words=60, seed=0)
    panel = simulation.simulate_model_panel(structure, 4, 60, vocabulary_icc=0.3, seed=1)
    prepared = multilevel.prepare_within(efa.prepare_matrix(panel.incidence), panel.models)
    settings = EFASettings(parallel_iter=5, count_resamples=3, seed=2)
    stability = factor_count.count_stability(prepared.data, settings, panel.models)
    words = efa.parallel_words(prepared.data, "auto", "include")
    expected = multilevel.within_parallel_analysis(prepared.data[words], panel.models, n_iter=5, seed=2)
    assert stability.level == "within models" and stability.count == expected.n_factors
    assert len(stability.subsamples) + stability.failures == 3
    assert "of 80% of the units" in stability.summary()["subsamples"]
    assert set(stability.metrics()) >= {"within_factor_count", "within_factor_count_seeds"}
    excluded = factor_count.count_stability(prepared.data, dataclasses.replace(settings, parallel_ties="exclude"))
    assert excluded.tie_rule == "exclude"
    assert isinstance(excluded.caps, pd.DataFrame) and "ties included" in " ".join(excluded.caps["rule"])


def test_a_model_with_one_respondent_is_subsampled_whole():
    """A researcher's new model with one respondent (README, "Adding a model"): its subsample is itself."""
    structure = simulation.planted_structure(n_words=40, seed=0)
    panel = simulation.simulate_model_panel(structure, 3, 40, vocabulary_icc=0.2, seed=1)
    models = pd.Series(panel.models.to_numpy()).copy()
    models.iloc[-1] = "my-model"  # one respondent of its own
    prepared = multilevel.prepare_within(efa.prepare_matrix(panel.incidence), models)
    stability = factor_count.count_stability(prepared.data, EFASettings(parallel_iter=3, count_resamples=2), models)
    assert len(stability.subsamples) + stability.failures == 2
