"""Method validation by simulation: the planted structure, its recovery, and notebook 07."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import run_notebook
from valuelex import cfa, simulate


def test_planted_structure_shape_and_frequencies():
    s = simulate.planted_structure(seed=0)
    assert s.loadings.shape == (simulate.PAPER_WORDS, simulate.PAPER_FACTORS)
    primary = s.loadings.abs().max(axis=1)
    assert primary.between(0.45, 0.8).all()
    assert s.primary().value_counts().min() >= simulate.PAPER_WORDS // 3  # every factor owns a third
    freq = s.frequencies.to_numpy()
    assert np.all(np.diff(freq) <= 0) and freq[0] == pytest.approx(0.8) and freq.min() >= 0.02  # Zipf-like
    np.testing.assert_allclose(np.diag(s.phi), 1.0)


def test_simulated_incidence_matches_planted_frequencies():
    s = simulate.planted_structure(n_words=40, seed=1)
    data = simulate.simulate_incidence(s, 5000, seed=2)
    assert set(np.unique(data.to_numpy())) == {0, 1}
    np.testing.assert_allclose(data.mean().to_numpy(), s.frequencies.to_numpy(), atol=0.02)
    paper = simulate.simulate_incidence(simulate.planted_structure(seed=0), 525, seed=0)
    assert 10 < paper.sum(axis=1).mean() < 20  # words per respondent: sparse, like elicited lists


def test_marker_words_are_planted_on_their_dimension():
    taxonomy = cfa.load_taxonomy()
    s = simulate.with_marker_words(simulate.planted_structure(seed=0), taxonomy)
    primary = s.primary()
    assert primary["accuracy"] == "F1" and primary["empathetic"] == "F2" and primary["justice"] == "F3"


def test_recovery_at_paper_scale():
    """190 words, 525 respondents, strong planted loadings: three factors found, congruence >= .95.

    Notebook 07 measures the rate over many panels (the lowest factor's congruence is >= .95 in about
    four panels out of five); this test asserts on three fixed panels: every count right, median >= .95.
    """
    s = simulate.planted_structure(seed=0)
    runs = [
        simulate.recover(s, simulate.simulate_incidence(s, 525, seed=k), parallel_iter=20, seed=k) for k in range(3)
    ]
    assert all(r["factor_count_right"] for r in runs)
    assert np.median([r["min_congruence"] for r in runs]) >= 0.95
    assert all(r["min_congruence"] >= 0.93 and r["word_assignment_accuracy"] >= 0.98 for r in runs)


def test_recovery_degrades_with_fewer_respondents(tmp_path):
    s = simulate.planted_structure(n_words=120, seed=0)
    study = simulate.recovery_study({"strong": s}, sizes=(80, 800), replications=2, seed=0, parallel_iter=10)
    summary = simulate.summarise_curve(study)
    small, large = summary.iloc[0], summary.iloc[1]
    assert small["median_min_congruence_true_k"] < large["median_min_congruence_true_k"]
    assert large["median_min_congruence_true_k"] >= 0.95 and large["factor_count_right"] == 1.0
    assert simulate.respondents_needed(summary) == {"strong": 800}
    from valuelex.figures import save_figure

    png, _ = save_figure(simulate.plot_recovery(study), "recovery", tmp_path)
    assert png.stat().st_size > 1000


def test_word_selection_study_shows_the_starved_factor(tmp_path):
    """At 120 respondents the n/2 cap keeps fewer words of the weakest planted factor than every word
    above the floor; at 525 the rules keep the same words, and the study does not refit them."""
    s = simulate.planted_structure(seed=20240419)
    study = simulate.word_selection_study(s, sizes=(120, 525), replications=1, seed=1, parallel_iter=5)
    assert len(study) == 2 * len(simulate.WORD_RULES)
    rows = study.set_index(["respondents", "rule"])
    before, now = "before: the n/2 most frequent words", "now: every word; factors counted on the n/3 most frequent"
    assert rows.loc[(120, before), "words_used"] == 60 < rows.loc[(120, now), "words_used"]
    assert rows.loc[(120, before), "weakest_factor_words"] < rows.loc[(120, now), "weakest_factor_words"]
    assert rows.loc[(120, now), "words_counted"] == 40
    at_525 = study[study["respondents"] == 525]
    assert at_525["min_congruence_true_k"].nunique() == 1 and at_525["words_used"].nunique() == 1
    summary = simulate.summarise_word_selection(study)
    assert list(summary["rule"][:3]) == list(simulate.WORD_RULES)
    from valuelex.figures import save_figure

    png, _ = save_figure(simulate.plot_word_selection(study), "words", tmp_path)
    assert png.stat().st_size > 1000


@pytest.mark.slow
def test_notebook_07(tmp_path):
    figures_dir = tmp_path / "figures"
    figures_dir.mkdir()
    env = {"VALUELEX_PROCESSED": str(tmp_path / "processed"), "VALUELEX_FIGURES": str(figures_dir)}
    params = {"n_words": 120, "sizes": [100, 525], "replications": 1, "parallel_iter": 5, "word_sizes": [120]}
    numbers = run_notebook("07_method_validation", tmp_path, params, env)
    assert numbers["paper_scale_factor_count_right"]
    assert min(numbers["paper_scale_congruence"]) >= 0.9
    assert {row["respondents"] for row in numbers["recovery"]} == {100, 525}
    assert {row["respondents"] for row in numbers["word_selection"]} == {120}
    names = ("sim_recovery_vs_respondents.png", "sim_recovery.csv", "sim_choices.csv", "sim_scree_paper_scale.png")
    for name in (*names, "sim_word_selection.png", "sim_word_selection.csv"):
        assert (figures_dir / name).exists(), name
