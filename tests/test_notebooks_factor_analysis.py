"""Notebooks 03-04 on the committed local panel (replayed by notebooks 01-02), with small parameters."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import require_rscript, run_notebook
from valuelex import lexicon
from valuelex.instruments.taxonomy import load_taxonomy
from valuelex.psychometrics import cfa, efa

SMALL = {"n_boot": 5, "parallel_iter": 5, "n_boot_within": 3, "count_resamples": 2}


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
    tied = efa_numbers["words_tied_at_cap"]  # all counted (the default tie rule)
    assert efa_numbers["words_counted"] <= efa_numbers["units"] // 3 + tied < efa_numbers["words_analysed"]
    # the count with its distribution: "4 (4 in 50% of subsamples, 3 in 50%)"
    assert efa_numbers["factor_count"].startswith(f"{efa_numbers['parallel_n_factors']} (")
    assert "of subsamples" in efa_numbers["factor_count"] and "of seeds" in efa_numbers["factor_count_seeds"]
    assert efa_numbers["factor_count_by_cap"]["every word"] >= 1 and "within_factor_count" in efa_numbers
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


@pytest.mark.r
def test_counts_coding_runs_03_and_04_and_agrees_with_lavaan(processed_pipeline: dict, tmp_path: Path) -> None:
    """Issue 20: with ``efa.coding: counts`` the words are ordered categories (polychoric correlations in 03,
    WLSMV on counts in 04). Both notebooks complete; every confirmatory model of 04 gets lavaan's verdict
    (admissible or not) and, when admissible, lavaan's estimates."""
    rscript = require_rscript()
    env = _private_copy(processed_pipeline, tmp_path)
    efa_numbers = run_notebook("03_efa", tmp_path, {**SMALL, "coding": "counts"}, env)
    assert efa_numbers["n_factors"] >= 1 and "of subsamples" in efa_numbers["factor_count"]
    cfa_numbers = run_notebook("04_cfa", tmp_path, {"efa.coding": "counts"}, env)
    assert cfa_numbers["estimator"] == "WLSMV"
    table = pd.read_csv(Path(env["VALUELEX_FIGURES"]) / "cfa_model_comparison.csv").set_index("model")
    # the models as notebook 04 builds them, fitted again here and by lavaan
    processed = Path(env["VALUELEX_PROCESSED"])
    incidence = lexicon.load_incidence(unit="respondent", coding="counts", folder=processed)
    data = efa.prepare_matrix(incidence, coding="counts").data.astype(int)
    markers = cfa.taxonomy_markers(load_taxonomy(), incidence)
    specs = cfa.taxonomy_models(markers[markers["word"].isin(data.columns)], data)
    specs.append(cfa.efa_model(pd.read_csv(processed / "efa_word_factors.csv"), data, max_indicators=8))
    rows, fits = [], {}
    for k, spec in enumerate(specs):
        if not spec.identified()[0] or spec.higher_order:
            continue
        names = {w: f"w{i + 1:02d}" for i, w in enumerate(spec.words)}
        data[spec.words].rename(columns=names).to_csv(tmp_path / f"m{k}.csv", index=False)
        lines = [f"f{j} =~ " + " + ".join(names[w] for w in ws) for j, ws in enumerate(spec.factors.values())]
        (tmp_path / f"m{k}.lav").write_text("\n".join(lines) + "\n")
        rows.append(
            {"data": str(tmp_path / f"m{k}.csv"), "model": str(tmp_path / f"m{k}.lav"), "out": str(tmp_path / f"m{k}")}
        )
        fits[k] = cfa.fit_cfa(spec, data, estimator="WLSMV")
        assert bool(table.at[spec.name, "estimable"]) == fits[k].estimable  # the notebook's table is this fit
    assert len(fits) >= 2
    pd.DataFrame(rows).to_csv(tmp_path / "cases.csv", index=False)
    subprocess.run([rscript, "--vanilla", "tests/r/lavaan_wlsmv.R", str(tmp_path / "cases.csv")], check=True)
    for k, ours in fits.items():
        status = pd.read_csv(tmp_path / f"m{k}_status.csv").set_index("name")["value"]
        warnings = str(status["warnings"])
        admissible = status["converged"] == "TRUE" and status["post_check"] == "TRUE" and "vcov" not in warnings
        assert ours.estimable == admissible, (specs[k].name, ours.status(), warnings)
