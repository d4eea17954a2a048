"""Reliability of the projective instrument: alpha, omega and ICC against R's psych, and the panel report."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import require_rscript
from valuelex.projective import reliability as rl

R_SCRIPT = Path(__file__).parent / "r" / "psych_reliability.R"
# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges (psych's ICC example).
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)


def _panel_like(seed: int = 3, n: int = 16, k: int = 9, missing: int = 0) -> pd.DataFrame:
    """Respondents x stems scores in (0, 1) like the panel's: a common factor, stem loadings, noise."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=n)
    logit = 0.9 * factor[:, None] * rng.uniform(0.3, 1.2, k) + rng.normal(scale=0.8, size=(n, k))
    x = pd.DataFrame(1 / (1 + np.exp(-logit)), columns=[f"s{i}" for i in range(k)])
    for j in range(missing):  # unusable completions leave holes
        x.iloc[(3 * j + 1) % n, j % k] = np.nan
    return x


def _psych(tmp_path: Path, items: pd.DataFrame, ratings: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    rscript = require_rscript()
    items.to_csv(tmp_path / "items.csv", index=False)
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    subprocess.run(
        [
            rscript,
            "--vanilla",
            str(R_SCRIPT),
            str(tmp_path / "items.csv"),
            str(tmp_path / "ratings.csv"),
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    ref = pd.read_csv(tmp_path / "alpha_omega.csv").set_index("name")["value"].to_dict()
    return ref, pd.read_csv(tmp_path / "icc.csv").set_index("type")


@pytest.mark.parametrize(("seed", "n", "k"), [(3, 24, 8), (5, 16, 15), (11, 16, 5)])
def test_alpha_omega_icc_match_psych(tmp_path: Path, seed: int, n: int, k: int) -> None:
    items = _panel_like(seed, n, k)
    ratings = _panel_like(seed + 1, 14, 4)  # stems x decoding settings
    ref, icc_ref = _psych(tmp_path, items, ratings)
    a, o = rl.cronbach_alpha(items), rl.mcdonald_omega(items)
    assert a.raw_alpha == pytest.approx(ref["raw_alpha"], abs=1e-10)
    assert a.std_alpha == pytest.approx(ref["std_alpha"], abs=1e-10)
    assert a.average_r == pytest.approx(ref["average_r"], abs=1e-10)
    assert (a.feldt_low, a.feldt_high) == pytest.approx((ref["feldt_low"], ref["feldt_high"]), abs=1e-10)
    assert o.omega_total == pytest.approx(ref["omega_total"], abs=1e-4)  # two minres optimisers
    assert o.omega_h == pytest.approx(ref["omega_h"], abs=1e-4)
    ours = rl.icc_table(ratings).set_index("type")
    for column in ("icc", "f", "df1", "df2", "p", "low", "high"):
        np.testing.assert_allclose(ours[column], icc_ref.loc[ours.index, column], atol=1e-10, err_msg=column)


def test_shrout_fleiss_and_missing_items_against_psych(tmp_path: Path) -> None:
    """The textbook ICC table, and alpha with holes (pairwise covariances, as psych::alpha)."""
    items = _panel_like(7, 16, 10, missing=5)
    ref, icc_ref = _psych(tmp_path, items, pd.DataFrame(SHROUT_FLEISS, columns=list("ABCD")))
    assert rl.cronbach_alpha(items).raw_alpha == pytest.approx(ref["raw_alpha"], abs=1e-10)
    ours = rl.icc_table(SHROUT_FLEISS).set_index("type")
    np.testing.assert_allclose(ours["icc"], icc_ref.loc[ours.index, "icc"], atol=1e-12)
    np.testing.assert_allclose(ours[["low", "high"]], icc_ref.loc[ours.index, ["low", "high"]], atol=1e-10)
    # Shrout & Fleiss's published values (their Table 4): ICC(1,1) .17, ICC(2,1) .29, ICC(3,1) .71
    assert ours.loc[["ICC1", "ICC2", "ICC3"], "icc"].round(2).tolist() == [0.17, 0.29, 0.71]


def test_degenerate_inputs_do_not_raise() -> None:
    constant = pd.DataFrame({"a": [0.5] * 5, "b": [0.1, 0.2, 0.3, 0.4, 0.5], "c": [0.2, 0.1, 0.4, 0.3, 0.6]})
    a = rl.cronbach_alpha(constant)  # the constant stem is dropped, as psych drops it
    assert a.n_items == 2 and np.isfinite(a.raw_alpha)
    assert np.isnan(rl.cronbach_alpha(constant[["a"]]).raw_alpha)
    sparse = pd.DataFrame({"a": [0.1, np.nan, np.nan, 0.4], "b": [np.nan, 0.2, 0.3, np.nan], "c": [0.3, 0.1, 0.5, 0.2]})
    assert np.isnan(rl.mcdonald_omega(sparse).omega_total)  # a and b never meet: no correlation
    table = rl.icc_table(np.ones((5, 3)))  # no variance at all
    assert table["icc"].isna().all() and len(table) == 6
    assert rl.icc_table(np.array([[1.0, np.nan], [2.0, 2.5], [3.0, 3.5]])).iloc[0]["n"] == 2


def _scored_panel() -> pd.DataFrame:
    """Two models x 4 decoding settings x 12 stems on two sub-dimensions; model b replicates, a does not."""
    rng = np.random.default_rng(0)
    rows = []
    for model, noise, offset in (("a", 0.5, -0.2), ("b", 0.03, 0.2)):
        stem_level = rng.uniform(0.3, 0.7, 12) + offset  # the models differ, so stems can agree on it
        for t in (0.7, 1.0):
            for seed in (11, 23):
                for j, level in enumerate(stem_level):
                    for sub in ("Social", "Ethical"):
                        rows.append(
                            {
                                "model": model,
                                "respondent": f"{model}|t={t}|s={seed}",
                                "temperature": t,
                                "seed": seed,
                                "stem_id": f"st{j}",
                                "subdimension": sub,
                                "key": f"{model}{t}{seed}{j}",
                                "valid": True,
                                "score": float(np.clip(level + rng.normal(scale=noise), 0, 1)),
                            }
                        )
    return pd.DataFrame(rows)


def test_panel_reliability_report() -> None:
    scored = _scored_panel()
    report = rl.assess_reliability(scored, scored.assign(score=scored["score"] * 0.5 + 0.2))
    retest = report.retest.set_index(["model", "subdimension"])
    assert retest.loc[("b", "Social"), "icc2k"] > 0.95 > retest.loc[("a", "Social"), "icc2k"]
    assert retest.loc[("b", "Social"), "seed_icc"] > retest.loc[("a", "Social"), "seed_icc"]
    assert int(retest.loc[("b", "Ethical"), "stems"]) == 12 and int(retest.loc[("b", "Ethical"), "respondents"]) == 4
    gate = report.gate.set_index(["model", "subdimension"])["reportable"]
    assert gate[("b", "Social")] and not gate[("a", "Social")]
    agreement = report.agreement.set_index(["model", "subdimension"])
    # a linear rescaling: perfectly consistent, not in absolute agreement
    assert (
        agreement.loc[("all models", "all"), "icc_consistency"] > agreement.loc[("all models", "all"), "icc_agreement"]
    )
    assert agreement.loc[("all models", "all"), "spearman"] == pytest.approx(1.0)
    consistency = report.consistency.set_index(["model", "subdimension"])
    assert consistency.loc[("all models", "Social"), "respondents"] == 8
    assert ("all models", "Idealistic") not in consistency.index  # no case scored on it
    assert np.isnan(consistency.loc[("b", "Social"), "omega_total"])  # 4 respondents: no factor model
    assert consistency.loc[("a", "Social"), "flag"] == "only 4 respondents"
    metrics = report.metrics()
    assert metrics["reportable"] == int(report.gate["reportable"].sum()) and "Social" in metrics["alpha"]
    assert "Internal consistency" in str(report) and "<table" in report._repr_html_()
