"""Confirmatory factor analysis: fit indices against lavaan, model building, robustness, notebook 04."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from semopy.examples import holzinger39

from tests.conftest import require_rscript, run_notebook
from valuelex.instruments.taxonomy import load_taxonomy
from valuelex.methods import simulation
from valuelex.psychometrics import cfa, efa

R_SCRIPTS = Path(__file__).parent / "r"
HS = cfa.ModelSpec(
    "Holzinger-Swineford",
    {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]},
)


@pytest.fixture(scope="module")
def hs_data() -> pd.DataFrame:
    return holzinger39.get_data()


@pytest.fixture(scope="module")
def hs_fit(hs_data) -> cfa.CFAFit:
    return cfa.fit_cfa(HS, hs_data)


def test_holzinger_swineford_published_values(hs_fit):
    """lavaan's numbers for this model (design.md), without R."""
    assert hs_fit.converged and not hs_fit.error and not hs_fit.heywood
    assert hs_fit.chi2 == pytest.approx(85.306, abs=1e-3)
    assert hs_fit.df == 24 and hs_fit.n_parameters == 21 == HS.n_free_parameters()
    assert hs_fit.cfi == pytest.approx(0.931, abs=5e-4)
    assert hs_fit.tli == pytest.approx(0.896, abs=5e-4)
    assert hs_fit.rmsea == pytest.approx(0.092, abs=5e-4)
    assert (hs_fit.rmsea_lower, hs_fit.rmsea_upper) == pytest.approx((0.071, 0.114), abs=5e-4)
    assert hs_fit.srmr == pytest.approx(0.065, abs=5e-4)
    assert hs_fit.n_adequate and not hs_fit.good_fit()
    assert hs_fit.meets() == {"cfi": False, "tli": False, "rmsea": False, "srmr": True}


def test_chi2_agrees_with_semopy(hs_data):
    import semopy

    model = semopy.Model(holzinger39.get_model())
    model.fit(hs_data)
    stats = semopy.calc_stats(model).T["Value"]
    fit = cfa.fit_cfa(HS, hs_data)
    assert fit.chi2 == pytest.approx(stats["chi2"], rel=1e-6)
    assert fit.cfi == pytest.approx(stats["CFI"], abs=1e-6)
    # semopy's RMSEA divides by N - 1, lavaan's (and ours) by N
    assert fit.rmsea < stats["RMSEA"]


def test_fit_from_covariance_matrix_equals_fit_from_data(hs_data, hs_fit):
    cov = hs_data[HS.words].cov(ddof=0)
    fit = cfa.fit_cfa(HS, cov=cov, n_obs=len(hs_data))
    assert fit.chi2 == pytest.approx(hs_fit.chi2, rel=1e-4)
    assert fit.srmr == pytest.approx(hs_fit.srmr, abs=1e-5)


def test_both_estimators_report_the_same_fit_index_functions():
    """Issue 21: the fit indices are written once (cfa/indices.py), for the ML and the WLSMV CFA."""
    from valuelex.psychometrics.cfa import indices, wlsmv

    for name in ("cfi", "tli", "rmsea", "rmsea_interval"):
        assert getattr(cfa, name) is getattr(indices, name) is getattr(wlsmv, name), name
    assert cfa.srmr is indices.srmr
    assert indices.tli(5.0, 0, 300.0, 10) == 1.0  # lavaan's TLI of a saturated model


def test_rmsea_interval_edge_cases():
    assert cfa.rmsea_interval(10.0, 24, 300) == (0.0, 0.0)  # chi2 far below df
    lower, upper = cfa.rmsea_interval(30.0, 24, 300)  # P(chi2_24 < 30) < 0.95: lower bound 0
    assert lower == 0.0 < cfa.rmsea(30.0, 24, 300) < upper
    lower, upper = cfa.rmsea_interval(40.0, 24, 300)
    assert 0.0 < lower < cfa.rmsea(40.0, 24, 300) < upper


# ------------------------------------------------------------------------------------------
# Parity with lavaan (R)
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lavaan_reference(tmp_path_factory) -> Path:
    rscript = require_rscript()
    out = tmp_path_factory.mktemp("lavaan")
    subprocess.run([rscript, "--vanilla", str(R_SCRIPTS / "lavaan_cfa.R"), str(out)], check=True, capture_output=True)
    return out


LAVAAN_NAMES = {
    "chi2": "chisq",
    "df": "df",
    "cfi": "cfi",
    "tli": "tli",
    "rmsea": "rmsea",
    "rmsea_lower": "rmsea.ci.lower",
    "rmsea_upper": "rmsea.ci.upper",
    "srmr": "srmr",
}


@pytest.mark.r
def test_same_data_as_lavaan(lavaan_reference, hs_data):
    theirs = pd.read_csv(lavaan_reference / "hs.csv")
    np.testing.assert_allclose(hs_data[HS.words].to_numpy(), theirs[HS.words].to_numpy())


@pytest.mark.r
@pytest.mark.parametrize("second_order", [False, True])
def test_fit_indices_match_lavaan(lavaan_reference, hs_data, second_order):
    name = "lavaan_fit_second_order.csv" if second_order else "lavaan_fit.csv"
    ref = pd.read_csv(lavaan_reference / name).set_index("name")["value"]
    spec = cfa.ModelSpec("HS", HS.factors, {"g": list(HS.factors)} if second_order else {})
    fit = cfa.fit_cfa(spec, hs_data)
    for ours, theirs in LAVAAN_NAMES.items():
        assert getattr(fit, ours) == pytest.approx(ref[theirs], abs=1e-3), ours


# ------------------------------------------------------------------------------------------
# Building models
# ------------------------------------------------------------------------------------------
def test_syntax_uses_safe_identifiers():
    spec = cfa.ModelSpec("m", {"Self-Competent": ["self-improvement", "user privacy", "2nd"]})
    syntax, names = cfa.model_syntax(spec)
    assert syntax == "f_Self_Competent =~ w_self_improvement + w_user_privacy + w_2nd"
    assert names["user privacy"] == "w_user_privacy"


def test_identification_rules():
    assert not cfa.ModelSpec("a", {"A": ["x", "y"]}).identified()[0]  # a lone factor needs 3
    assert cfa.ModelSpec("b", {"A": ["x", "y"], "B": ["z", "w"]}).identified()[0]
    lone = cfa.ModelSpec("c", {"A": ["x", "y"], "B": ["z", "w"]}, {"G": ["A"], "H": ["B"]})
    ok, why = lone.identified()
    assert not ok and "first-order" in why


@pytest.fixture(scope="module")
def marked_panel() -> pd.DataFrame:
    structure = simulation.with_marker_words(simulation.planted_structure(n_words=90, seed=2), load_taxonomy())
    return simulation.simulate_incidence(structure, 500, seed=3)


def test_taxonomy_markers_and_models(marked_panel):
    taxonomy = load_taxonomy()
    assert list(taxonomy["dimensions"]) == ["Competence", "Character", "Integrity"]
    data = marked_panel.rename(columns={"empathetic": "empathy", "accuracy": "Accuracy"}).drop(columns=["patriotism"])
    markers = cfa.taxonomy_markers(taxonomy, data)
    assert len(markers) == 19
    found = markers.set_index("marker")
    assert found.loc["Empathetic", "word"] == "empathy"  # a listed variant
    assert found.loc["Accuracy", "word"] == "Accuracy"  # case-insensitive
    assert not found.loc["Patriotism", "present"]
    specs = cfa.taxonomy_models(markers, data)
    assert [s.name for s in specs] == [
        "taxonomy: 3 dimensions",
        "taxonomy: 6 sub-dimensions",
        "taxonomy: 6 under 3 (second order)",
    ]
    assert set(specs[0].factors) == {"Competence", "Character", "Integrity"}
    assert specs[2].higher_order == {
        "Competence": ["Self-Competent", "User-Oriented"],
        "Character": ["Social", "Idealistic"],
        "Integrity": ["Professional", "Ethical"],
    }
    sparse = data.drop(columns=["friendliness"])  # Social keeps one marker only
    six = cfa.taxonomy_models(cfa.taxonomy_markers(taxonomy, sparse), sparse)[1]
    assert "Social" not in six.factors and any("Social left out" in n for n in six.notes)


def test_model_comparison_on_planted_taxonomy(marked_panel):
    """Data planted with the taxonomy's three dimensions, fitted by WLSMV (the default for 0/1 words):
    the 3-dimension model fits, one factor does not, and the 6-factor models are not estimable."""
    taxonomy = load_taxonomy()
    markers = cfa.taxonomy_markers(taxonomy, marked_panel)
    analysis = efa.EFA(efa.EFASettings(n_factors=3, seed=0)).fit(marked_panel)
    word_factors = efa.word_factors(analysis.result)
    specs = cfa.taxonomy_models(markers, marked_panel)
    efa_spec = cfa.efa_model(word_factors, marked_panel, max_indicators=5)
    assert all(len(ws) <= 5 for ws in efa_spec.factors.values())
    specs += [efa_spec, cfa.one_factor_model(specs[0].words)]
    table = cfa.comparison_table([cfa.fit_cfa(s, marked_panel) for s in specs])
    assert (table["estimator"] == "WLSMV").all() and table["converged"].all()
    rows = table.set_index("model")
    three = rows.loc["taxonomy: 3 dimensions"]
    assert three["estimable"] and three["p"] > 0.05  # the true model is not rejected
    assert three["CFI"] > 0.95 and three["RMSEA"] < 0.05 and three["good_fit_HB"]
    assert rows.loc["one factor (baseline)", "CFI"] < 0.8 < three["CFI"]
    # the data have 3 factors, not 6: sub-dimensions of one dimension are the same factor, so their
    # correlations exceed 1 or the second-order disturbances go negative: not estimable, indices withheld
    for name in ("taxonomy: 6 sub-dimensions", "taxonomy: 6 under 3 (second order)"):
        assert not rows.loc[name, "estimable"] and np.isnan(rows.loc[name, "CFI"])
        assert "not estimable" in rows.loc[name, "notes"]
    for case in filter(None, rows.loc["taxonomy: 6 under 3 (second order)", "heywood"].split(", ")):
        assert case in {"Self-Competent", "User-Oriented", "Social", "Idealistic", "Professional", "Ethical"}
    loadings = cfa.loadings(cfa.fit_cfa(specs[0], marked_panel))
    assert set(loadings["factor"]) == {"Competence", "Character", "Integrity"}
    assert loadings["std_estimate"].between(0, 1).all()
    placed = cfa.marker_factors(markers, word_factors)
    assert placed["factor"].notna().all()


def test_normal_theory_ml_rejects_the_true_model_of_binary_words(marked_panel):
    """Why WLSMV is the default: ML on 0/1 covariances rejects the correct model, WLSMV does not."""
    spec = cfa.taxonomy_models(cfa.taxonomy_markers(load_taxonomy(), marked_panel), marked_panel)[0]
    ml = cfa.fit_cfa(spec, marked_panel, estimator="ML")
    wls = cfa.fit_cfa(spec, marked_panel)
    assert ml.estimator == "ML" and wls.estimator == "WLSMV" and ml.df == wls.df
    assert ml.p_value < 0.05 < wls.p_value
    assert wls.measures["chisq.scaled"] == wls.chi2 and wls.cfi == wls.measures["cfi.scaled"]


def test_estimator_choice():
    binary = pd.DataFrame({"a": [0, 1, 1], "b": [1, 0, 1]})
    assert cfa.choose_estimator(binary, ["a", "b"]) == "WLSMV"
    assert cfa.choose_estimator(binary.assign(a=[0.5, 1, 2]), ["a", "b"]) == "ML"
    assert cfa.choose_estimator(None, ["a", "b"]) == "ML"
    assert cfa.choose_estimator(binary, ["a", "b"], "ML") == "ML"
    with pytest.raises(ValueError, match="estimator must be one of"):
        cfa.choose_estimator(binary, ["a"], "GLS")


def test_fit_reports_itself(hs_fit):
    text = str(hs_fit)
    assert text.startswith("CFA (ML): Holzinger-Swineford") and "rmsea.ci.upper" in text and "status" in text
    assert "<table" in hs_fit._repr_html_()
    assert hs_fit.metrics()["estimable"] and hs_fit.metrics()["chisq"] == pytest.approx(85.306, abs=1e-3)


# ------------------------------------------------------------------------------------------
# Problems are recorded, never raised
# ------------------------------------------------------------------------------------------
def test_heywood_case_is_recorded():
    # one factor, three indicators: loading^2 of x1 = r12 * r13 / r23 = 1.6 > 1: an improper solution
    r = np.array([[1.0, 0.8, 0.8], [0.8, 1.0, 0.4], [0.8, 0.4, 1.0]])
    cov = pd.DataFrame(r, index=["x1", "x2", "x3"], columns=["x1", "x2", "x3"])
    fit = cfa.fit_cfa(cfa.ModelSpec("heywood", {"F": ["x1", "x2", "x3"]}), cov=cov, n_obs=300)
    assert fit.heywood == ["x1"] and fit.converged and not fit.estimable
    assert "Heywood" in fit.row()["notes"] and not fit.good_fit()
    assert np.isnan(fit.chi2) and np.isnan(fit.cfi) and "withheld" in str(fit)


def test_unfittable_models_are_recorded(hs_data):
    small = cfa.fit_cfa(cfa.ModelSpec("lone", {"A": ["x1", "x2"]}), hs_data)
    assert "not fitted" in small.error and np.isnan(small.chi2)
    constant = hs_data.assign(x1=1.0)
    assert "does not vary" in cfa.fit_cfa(HS, constant).error
    tiny = cfa.fit_cfa(HS, hs_data.head(8))
    assert "not fitted" in tiny.error and not tiny.n_adequate
    table = cfa.comparison_table([small, tiny])
    assert table["notes"].str.contains("not fitted").all()


def test_small_sample_is_said_plainly(hs_data):
    fit = cfa.fit_cfa(HS, hs_data.head(120))
    assert not fit.n_adequate
    assert any("too small" in n for n in fit.notes)


def test_split_units_is_a_partition(hs_data):
    explore, confirm = cfa.split_units(hs_data, fraction=0.5, seed=1)
    assert len(explore) + len(confirm) == len(hs_data)
    assert not set(explore.index) & set(confirm.index)


def test_fit_comparison_figure(hs_fit, tmp_path):
    from valuelex.core.io import save_figure
    from valuelex.plots.cfa import plot_fit_comparison

    table = cfa.comparison_table([hs_fit, cfa.fit_cfa(cfa.one_factor_model(HS.words), holzinger39.get_data())])
    png, _ = save_figure(plot_fit_comparison(table), "fit", tmp_path)
    assert png.stat().st_size > 1000


# ------------------------------------------------------------------------------------------
# Notebook 04 on simulated data (after notebook 03's outputs)
# ------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("units", [150, 420])
def test_notebook_04_on_simulated_panel(tmp_path, units):
    processed, figures_dir = tmp_path / "processed", tmp_path / "figures"
    processed.mkdir()
    figures_dir.mkdir()
    structure = simulation.with_marker_words(simulation.planted_structure(n_words=120, seed=1), load_taxonomy())
    data = simulation.simulate_incidence(structure, units, seed=5)
    data.to_csv(processed / "incidence_respondent_binary.csv")
    # notebook 03's outputs, computed directly (notebook 03 has its own test)
    analysis = efa.EFA(efa.EFASettings(parallel_iter=5, seed=0)).fit(data)
    efa.word_factors(analysis.result).to_csv(processed / "efa_word_factors.csv", index=False)
    settings = dict(
        correlation="tetrachoric", n_factors="parallel", extraction="minres", rotation="oblimin", cutoff=0.3,
        min_frequency=0.05, min_units=5, max_words="auto", parallel_iter=5, parallel_quantile=0.95,
        parallel_null="permute", parallel_eigenvalues="fa",
    )  # fmt: skip
    (processed / "efa_settings.json").write_text(json.dumps(settings), encoding="utf-8")
    env = {"VALUELEX_PROCESSED": str(processed), "VALUELEX_FIGURES": str(figures_dir)}
    numbers = run_notebook("04_cfa", tmp_path, {}, env)
    assert numbers["held_out_split"] == (units >= 400)
    assert numbers["cfa_units"] == (units // 2 if units >= 400 else units)
    assert numbers["markers_usable"] >= 15 and numbers["models_fitted"] == 6
    assert not numbers["n_adequate"] if units < 200 else True  # 150 units: said plainly
    assert numbers["cfi_taxonomy_3"] > numbers["cfi_one_factor_taxonomy"]
    table = pd.read_csv(figures_dir / "cfa_model_comparison.csv")
    assert len(table) == 6 and {"CFI", "TLI", "RMSEA", "RMSEA_lo90", "RMSEA_hi90", "SRMR"} <= set(table.columns)
    assert (figures_dir / "cfa_fit_comparison.png").exists() and (processed / "cfa_loadings.csv").exists()
