"""Notebooks 03-04 on the committed local panel (replayed by notebooks 01-02), with small parameters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from tests.conftest import run_notebook

SMALL = {"n_boot": 5, "parallel_iter": 5, "n_boot_within": 3}


def _private_copy(pipeline: dict, tmp_path: Path) -> dict[str, str]:
    processed = tmp_path / "processed"
    shutil.copytree(pipeline["VALUELEX_PROCESSED"], processed)
    (tmp_path / "figures").mkdir()
    return {"VALUELEX_PROCESSED": str(processed), "VALUELEX_FIGURES": str(tmp_path / "figures")}


def test_notebooks_03_and_04_on_the_local_panel(processed_pipeline: dict, tmp_path: Path) -> None:
    env = _private_copy(processed_pipeline, tmp_path)
    efa_numbers = run_notebook("03_efa", tmp_path, SMALL, env)
    assert efa_numbers["units"] == 120
    assert efa_numbers["words_in"] == processed_pipeline["02"]["lexicon_size"]
    assert 1 <= efa_numbers["n_factors"] <= 8
    assert 0.5 < efa_numbers["kmo"] <= 1
    assert efa_numbers["words_counted"] <= efa_numbers["units"] // 3 < efa_numbers["words_analysed"]
    if efa_numbers["determinant_zero"]:  # psych's fall-backs: Bartlett infinite (recorded as None), residual fit
        assert efa_numbers["bartlett_chi2"] is None and efa_numbers["fit_basis"] == "residuals"
    assert efa_numbers["bootstrap_samples"] == SMALL["n_boot"]
    eta = efa_numbers["factor_eta_squared_by_model"]
    assert len(eta) == efa_numbers["n_factors"] and all(0 <= e <= 1 for e in eta)
    # 4c: within and between models, response-level units
    assert 0 < efa_numbers["median_word_icc1_model"] < 1 and efa_numbers["within_n_obs"] == 120 - 4
    assert (
        efa_numbers["within_factors"] >= 1 and len(efa_numbers["pooled_within_congruence"]) == efa_numbers["n_factors"]
    )
    assert len(efa_numbers["within_bootstrap_median"]) == efa_numbers["within_factors"]
    assert efa_numbers["response_units"] > 1000 and efa_numbers["response_pooled_factors"] >= 1
    word_factors = pd.read_csv(Path(env["VALUELEX_PROCESSED"]) / "efa_word_factors.csv")
    assert set(word_factors.columns) >= {"word", "factor", "loading", "assigned"}
    assert word_factors["assigned"].sum() == efa_numbers["words_assigned"]

    cfa_numbers = run_notebook("04_cfa", tmp_path, {}, env)
    assert cfa_numbers["cfa_units"] == 120 and cfa_numbers["estimator"] == "WLSMV"
    assert cfa_numbers["models_fitted"] >= 2
    assert cfa_numbers["n_adequate"] is False  # 120 respondents is too few, and the notebook says so
    table = pd.read_csv(Path(env["VALUELEX_FIGURES"]) / "cfa_model_comparison.csv")
    assert sorted(table.loc[table["estimable"], "model"]) == sorted(cfa_numbers["models_estimable"])
    # a model that is not estimable is said so, with the reason, and none of its indices is reported
    withheld = table[~table["estimable"]]
    assert withheld[["chi2", "CFI", "TLI", "RMSEA", "SRMR"]].isna().all().all()
    assert withheld["notes"].str.match("not (estimable|fitted)").all()
    shown = table[table["estimable"]]
    assert shown["CFI"].between(0, 1).all() and (shown["RMSEA"] >= 0).all()
    for name in ("efa_scree", "efa_loadings_heatmap", "cfa_model_comparison", "efa_levels", "efa_word_icc_by_model"):
        assert any((Path(env["VALUELEX_FIGURES"]) / f"{name}.{ext}").exists() for ext in ("png", "csv"))
