"""WLSMV for binary and ordinal indicators: parity with lavaan, and the hard cases of our data.

lavaan (``cfa(..., ordered = TRUE, estimator = "WLSMV")``) is run by ``tests/r/lavaan_wlsmv.R`` on:
a textbook binary data set (psychTools::ability, 16 items), sparse planted-structure word data like
ours (525 respondents, rare words with empty 2 x 2 cells), ordinal items (psychTools::bfi, 6
categories), and data built to make a model inadmissible. Correct and misspecified models, a
second-order model, and models lavaan refuses.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.conftest import require_rscript
from tests.test_polychoric import stress_case
from valuelex.methods import simulation
from valuelex.psychometrics import cfa, polychoric
from valuelex.psychometrics.cfa import wlsmv

R_SCRIPTS = Path(__file__).parent / "r"
DATA = Path(__file__).parent / "data"
#: The issue's tolerances: estimates within 1e-3, scaled chi-square within 0.5%, fit indices within 1e-3.
ESTIMATE_TOL, CHI2_REL_TOL, INDEX_TOL = 1e-3, 5e-3, 1e-3

ABILITY = {
    "reason": ["reason.4", "reason.16", "reason.17", "reason.19"],
    "letter": ["letter.7", "letter.33", "letter.34", "letter.58"],
    "matrix": ["matrix.45", "matrix.46", "matrix.47", "matrix.55"],
    "rotate": ["rotate.3", "rotate.4", "rotate.6", "rotate.8"],
}
BFI = {"agree": ["A1", "A2", "A3", "A4", "A5"], "consc": ["C1", "C2", "C3", "C4", "C5"]}


def sparse_words() -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """525 respondents x 24 words of a planted three-factor structure: per factor the 3 most frequent
    and the 5 rarest words used by more than 1.5% (2-4%: about 50 word pairs have an empty cell)."""
    structure = simulation.planted_structure(n_words=190, seed=7)
    data = simulation.simulate_incidence(structure, 525, seed=11)
    primary, share = structure.primary(), data.mean()
    factors = {}
    for factor in structure.loadings.columns:
        words = sorted((w for w in data.columns if primary[w] == factor and share[w] > 0.015), key=lambda w: -share[w])
        factors[factor] = words[:3] + words[-5:]
    return data[[w for ws in factors.values() for w in ws]], factors


def improper_data() -> pd.DataFrame:
    """0/1 data cut from normal variables whose correlations no proper factor model reproduces: a1
    correlates 0.8 with a2 and a3, which correlate 0.4 (a standardised loading of a1 above 1), and the
    b and c items correlate more across their groups (0.4) than within (0.3)."""
    r = np.eye(9)
    r[0, 1] = r[0, 2] = 0.8
    r[1, 2] = 0.4
    r[3:6, 3:6] = r[6:9, 6:9] = 0.3
    r[3:6, 6:9] = 0.4
    r[0:3, 3:9] = 0.2
    r = np.triu(r, 1) + np.triu(r, 1).T + np.eye(9)
    latent = np.random.default_rng(5).multivariate_normal(np.zeros(9), r, size=800)
    cuts = np.array([0.2, -0.3, 0.5, 0.0, 0.8, -0.6, 0.3, 1.0, -0.2])
    return pd.DataFrame((latent > cuts).astype(int), columns=["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "c3"])


def stress_items(extra: int = 0) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Issue 20's stress case, one factor: the 10 most used items of which no pair has its polychoric maximum
    on the boundary (lavaan's and our correlations then agree), plus ``extra`` items that add boundary pairs
    with them (the fewest first)."""
    data = stress_case()
    boundary = polychoric.polychoric_matrix(data).boundary_pairs
    partners: dict[str, set[str]] = {}
    for a, b, _ in boundary:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    chosen: list[str] = []
    for item in (data > 0).mean().sort_values(ascending=False, kind="stable").index:
        if len(chosen) < 10 and not partners.get(item, set()) & set(chosen):
            chosen.append(item)
    others = [w for w in data.columns if w not in chosen and partners.get(w, set()) & set(chosen)]
    others.sort(key=lambda w: (len(partners[w] & set(chosen)), w))
    items = chosen + others[:extra]
    return data[items], {"F": items}


def planted_three_categories(n: int = 400, seed: int = 9) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """A planted three-factor model of three-category items (8 per factor, loadings 0.5-0.8, factor
    correlations 0.3) whose top category holds 0.5% to 9% of the cases: the model is true, lavaan fits it."""
    rng = np.random.default_rng(seed)
    phi = np.full((3, 3), 0.3) + 0.7 * np.eye(3)
    scores = rng.multivariate_normal(np.zeros(3), phi, size=n)
    columns, factors = {}, {}
    for k in range(3):
        names = [f"f{k + 1}i{j + 1}" for j in range(8)]
        for name in names:
            loading = rng.uniform(0.5, 0.8)
            latent = loading * scores[:, k] + np.sqrt(1 - loading**2) * rng.standard_normal(n)
            above = rng.uniform(0.05, 0.6)
            cuts = stats.norm.ppf([1 - above, 1 - 0.15 * above])
            columns[name] = (latent > cuts[0]).astype(int) + (latent > cuts[1])
        factors[f"F{k + 1}"] = names
    return pd.DataFrame(columns), factors


#: The rehearsal's wrong taxonomy "a third moved" (docs/rehearsal.md, ``valuelex.simulated.stages.moved_taxonomy``):
#: every third of the 8 words of each planted dimension moved to the next one. Two markers are moved words
#: (efficiency, emotional_intelligence), weak indicators of their new factor. ``tests/data/wlsmv_rehearsal.csv``
#: is the 528 respondents x 24 words it was fitted on (``valuelex run rehearsal --yes``, then
#: ``benchmarks/export_cfa_case.py rehearsal``: the columns ``recover`` chooses, spaces as underscores).
REHEARSAL_MOVED = {
    "C": ["critical_thinking", "precision", "attention_to_detail", "completeness", "improvement",
          "continuous_improvement", "security", "fairness"],
    "H": ["efficiency", "competence", "patience", "approachability", "warmth", "social_responsibility",
          "sustainability", "humility"],
    "I": ["emotional_intelligence", "creativity", "prioritization", "data_protection", "honor", "impartiality",
          "ethical_behavior", "candor"],
}  # fmt: skip


def syntax(factors: dict[str, list[str]], higher: dict[str, list[str]] | None = None) -> str:
    lines = [f"{f} =~ " + " + ".join(ws) for f, ws in factors.items()]
    lines += [f"{g} =~ " + " + ".join(fs) for g, fs in (higher or {}).items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, dict]:
    """Every (data, model) case, with lavaan's results read back (one R session for all)."""
    rscript = require_rscript()
    root = tmp_path_factory.mktemp("wlsmv")
    subprocess.run([rscript, "--vanilla", str(R_SCRIPTS / "export_ability.R"), str(root / "ability.csv")], check=True)
    subprocess.run([rscript, "--vanilla", str(R_SCRIPTS / "export_bfi.R"), str(root / "bfi.csv")], check=True)
    sparse, planted = sparse_words()
    sparse.to_csv(root / "sparse.csv", index=False)
    improper_data().to_csv(root / "improper.csv", index=False)
    stress, stress_model = stress_items()
    stress.to_csv(root / "stress.csv", index=False)
    bounded, bounded_model = stress_items(extra=2)
    bounded.to_csv(root / "bounded.csv", index=False)
    three, three_model = planted_three_categories()
    three.to_csv(root / "three.csv", index=False)
    pd.read_csv(DATA / "wlsmv_rehearsal.csv").to_csv(root / "rehearsal.csv", index=False)
    merged = {"A": planted["F1"], "B": planted["F2"] + planted["F3"]}
    spec = {
        "ability_4_factors": ("ability", ABILITY, {}),
        "ability_1_factor": ("ability", {"g": [w for ws in ABILITY.values() for w in ws]}, {}),
        "sparse_3_factors": ("sparse", planted, {}),
        "sparse_misspecified": ("sparse", merged, {}),
        "sparse_second_order": ("sparse", planted, {"G": list(planted)}),
        "bfi_ordinal": ("bfi", BFI, {}),
        "improper_heywood": ("improper", {"A": ["a1", "a2", "a3"], "B": ["b1", "b2", "b3", "c1", "c2", "c3"]}, {}),
        "improper_factor_correlation": ("improper", {"B": ["b1", "b2", "b3"], "C": ["c1", "c2", "c3"]}, {}),
        "stress_10_items": ("stress", stress_model, {}),
        "planted_3_categories": ("three", three_model, {}),
        "stress_boundary_pairs": ("bounded", bounded_model, {}),
        "rehearsal_moved": ("rehearsal", REHEARSAL_MOVED, {}),
    }
    rows = []
    for name, (data, factors, higher) in spec.items():
        (root / f"{name}.lav").write_text(syntax(factors, higher))
        rows.append({"data": str(root / f"{data}.csv"), "model": str(root / f"{name}.lav"), "out": str(root / name)})
    pd.DataFrame(rows).to_csv(root / "cases.csv", index=False)
    subprocess.run([rscript, "--vanilla", str(R_SCRIPTS / "lavaan_wlsmv.R"), str(root / "cases.csv")], check=True)
    out = {}
    for name, (data, factors, higher) in spec.items():
        frame = pd.read_csv(root / f"{data}.csv")
        fit_file = root / f"{name}_fit.csv"
        out[name] = {
            "ours": wlsmv.fit(factors, frame, higher),
            "data": frame,
            "factors": factors,
            "higher": higher,
            "status": pd.read_csv(root / f"{name}_status.csv").set_index("name")["value"],
            "estimates": pd.read_csv(root / f"{name}_estimates.csv"),
            "fit": pd.read_csv(fit_file).set_index("name")["value"] if fit_file.exists() else None,
            "sample": pd.read_csv(root / f"{name}_sample.csv")["value"].to_numpy(),
            "gamma": pd.read_csv(root / f"{name}_gamma.csv").to_numpy(),
        }
    return out


PROPER = ["ability_4_factors", "ability_1_factor", "sparse_3_factors", "sparse_misspecified", "sparse_second_order"]
PROPER += ["bfi_ordinal", "stress_10_items", "planted_3_categories", "rehearsal_moved"]
IMPROPER = ["improper_heywood", "improper_factor_correlation"]


@pytest.mark.r
@pytest.mark.parametrize("name", PROPER + IMPROPER)
def test_sample_statistics_match_lavaan(cases, name):
    """Thresholds, polychoric correlations (empty cells corrected as lavaan does) and Gamma."""
    case = cases[name]
    ours = case["ours"].statistics
    np.testing.assert_allclose(ours.vector(), case["sample"], atol=1e-6)
    np.testing.assert_allclose(ours.gamma, case["gamma"], atol=1e-5 * np.abs(case["gamma"]).max())


@pytest.mark.r
@pytest.mark.parametrize("name", PROPER + IMPROPER)
def test_estimates_match_lavaan(cases, name):
    case = cases[name]
    theirs = case["estimates"][~case["estimates"]["op"].isin(["~1", "~*~"])]
    merged = theirs.merge(case["ours"].estimates, on=["lhs", "op", "rhs"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    np.testing.assert_allclose(merged["est_y"], merged["est_x"], atol=ESTIMATE_TOL)
    np.testing.assert_allclose(merged["std_all"], merged["std.all"], atol=ESTIMATE_TOL)
    np.testing.assert_allclose(merged["se_y"], merged["se_x"], atol=ESTIMATE_TOL)


LAVAAN_MEASURES = [
    "chisq", "df", "pvalue", "chisq.scaled", "pvalue.scaled", "chisq.scaling.factor", "baseline.chisq",
    "baseline.chisq.scaled", "cfi", "tli", "cfi.scaled", "tli.scaled", "cfi.robust", "tli.robust", "rmsea",
    "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.scaled", "rmsea.ci.lower.scaled", "rmsea.ci.upper.scaled",
    "rmsea.robust", "rmsea.ci.lower.robust", "rmsea.ci.upper.robust", "srmr",
]  # fmt: skip


@pytest.mark.r
@pytest.mark.parametrize("name", PROPER)
def test_fit_measures_match_lavaan(cases, name):
    case = cases[name]
    ours, theirs = case["ours"], case["fit"]
    assert ours.estimable and case["status"]["post_check"] == "TRUE" and case["status"]["converged"] == "TRUE"
    assert ours.n_parameters == int(case["status"]["npar"])
    assert ours.measures["chisq.scaled"] == pytest.approx(theirs["chisq.scaled"], rel=CHI2_REL_TOL)
    for key in LAVAAN_MEASURES:
        if np.isnan(theirs[key]):  # lavaan's robust indices need a positive definite polychoric matrix
            assert np.isnan(ours.measures[key]), key
        else:
            assert ours.measures[key] == pytest.approx(theirs[key], abs=INDEX_TOL), key


def test_cases_cover_what_they_claim(cases):
    """The hard cases are really hard: empty cells, a misspecified model rejected, robust indices absent."""
    sparse = cases["sparse_3_factors"]["ours"]
    assert len(sparse.statistics.empty_cell_pairs) > 30
    assert np.isnan(sparse.measures["cfi.robust"])  # the polychoric matrix of rare words is not positive definite
    assert cases["sparse_misspecified"]["ours"].measures["pvalue.scaled"] < 0.05 < sparse.measures["pvalue.scaled"]
    assert (
        cases["ability_1_factor"]["ours"].measures["cfi.scaled"]
        < cases["ability_4_factors"]["ours"].measures["cfi.scaled"]
    )
    assert [len(t) for t in cases["bfi_ordinal"]["ours"].statistics.thresholds] == [5] * 10


@pytest.mark.r
def test_boundary_pairs_are_left_out_as_lavaan_weighs_them(cases, monkeypatch):
    """Two items that add two boundary pairs (likelihood flat up to +-1) to the stress case: lavaan keeps the
    value where its optimiser stopped, with a weight near 0; we leave them out. Estimates, standard errors
    and the unscaled chi-square agree; df is 2 lower; with lavaan's plateau values put in, our scaled test
    is lavaan's exactly: the difference is only what is done with pairs that carry no information."""
    case = cases["stress_boundary_pairs"]
    ours = case["ours"]
    sample = ours.statistics
    assert len(sample.boundary_pairs) == 2 and (~sample.informative).sum() == 2
    assert "left out of the fit" in " ".join(ours.notes)
    theirs = case["estimates"][~case["estimates"]["op"].isin(["~1", "~*~"])]
    merged = theirs.merge(ours.estimates, on=["lhs", "op", "rhs"])
    assert len(merged) == len(theirs)
    np.testing.assert_allclose(merged["est_y"], merged["est_x"], atol=ESTIMATE_TOL)
    np.testing.assert_allclose(merged["se_y"], merged["se_x"], atol=ESTIMATE_TOL)
    fit = case["fit"]
    assert ours.measures["chisq"] == pytest.approx(fit["chisq"], rel=1e-6)
    assert ours.measures["df"] == fit["df"] - 2
    # lavaan's values for the two pairs, put in place of the bound: lavaan's scaled test, to 1e-6
    lavaan_r = case["sample"][sample.n_thresholds :][~sample.informative]
    first = {name: round(float(tau[0]), 12) for name, tau in zip(sample.names, sample.thresholds, strict=True)}
    plateau = {(first[a], first[b]): r for (a, b, _), r in zip(sample.boundary_pairs, lavaan_r, strict=True)}
    assert np.all(np.abs(lavaan_r) <= polychoric.RHO_BOUND)
    original = polychoric.maximise

    def lavaans_plateau(freq, tau1, tau2):
        fit = original(freq, tau1, tau2)
        for k in np.flatnonzero(fit.at_bound):
            fit.rho[k] = plateau[(round(float(tau1[k][0]), 12), round(float(tau2[k][0]), 12))]
        fit.at_bound[:] = False
        return fit

    monkeypatch.setattr(polychoric, "maximise", lavaans_plateau)
    with_theirs = wlsmv.fit(case["factors"], case["data"])
    assert with_theirs.measures["chisq.scaled"] == pytest.approx(fit["chisq.scaled"], rel=1e-6)
    assert with_theirs.measures["df"] == fit["df"]


@pytest.mark.r
@pytest.mark.parametrize("name", IMPROPER)
def test_models_lavaan_refuses_are_not_estimable(cases, name):
    """lavaan's post check fails (negative variance, latent covariance not positive definite): ours
    says not estimable, with the same reason, and withholds every fit index."""
    case = cases[name]
    warnings = case["status"]["warnings"]
    assert case["status"]["post_check"] == "FALSE"
    ours = case["ours"]
    assert ours.converged and not ours.estimable
    reasons = " ".join(ours.problems)
    assert ("negative residual variance" in reasons) == ("ov variances are negative" in warnings)
    assert ("latent factors is not positive definite" in reasons) == ("not positive definite" in warnings)
    fit = cfa.fit_cfa(cfa.ModelSpec(name, case["factors"]), case["data"])
    assert fit.estimator == "WLSMV" and not fit.estimable and "not estimable" in fit.status()
    row = fit.row()
    assert all(np.isnan(row[k]) for k in ("chi2", "CFI", "TLI", "RMSEA", "SRMR")) and not row["good_fit_HB"]
    assert "withheld" in str(fit) and "CFI" not in str(fit).split("withheld")[1].split("\n")[0]


# ------------------------------------------------------------------------------------------
# Without R
# ------------------------------------------------------------------------------------------
def test_empty_cell_is_corrected_as_lavaan_does():
    """A 2 x 2 table with one empty cell: 0.5 moves into the empty cell from the diagonal, margins stay
    (lavaan's zero.add with zero.keep.margins), then maximum likelihood with the thresholds fixed."""
    from scipy import optimize, stats
    from scipy.stats import multivariate_normal

    x = np.array([0] * 40 + [1] * 20)
    y = np.array([0] * 40 + [0] * 10 + [1] * 10)  # no case with x = 0 and y = 1
    sample = wlsmv.ordinal_statistics(pd.DataFrame({"x": x, "y": y}))
    tx, ty = stats.norm.ppf(40 / 60), stats.norm.ppf(50 / 60)
    assert [t[0] for t in sample.thresholds] == pytest.approx([tx, ty], abs=1e-12)
    assert sample.empty_cell_pairs == [("y", "x")]
    corrected = np.array([[39.5, 0.5], [10.5, 9.5]])  # rows x, columns y

    def minus_loglik(rho: float) -> float:
        p00 = multivariate_normal(cov=[[1, rho], [rho, 1]]).cdf([tx, ty])
        a, b = stats.norm.cdf(tx), stats.norm.cdf(ty)
        cells = np.array([[p00, a - p00], [b - p00, 1 - a - b + p00]])
        return -float(np.sum(corrected * np.log(cells)))

    best = optimize.minimize_scalar(minus_loglik, bounds=(-0.999, 0.999), method="bounded", options={"xatol": 1e-9})
    assert sample.correlations[0, 1] == pytest.approx(best.x, abs=1e-5)
    assert np.isfinite(sample.gamma).all() and np.all(np.linalg.eigvalsh(sample.gamma) > 0)


def test_identical_words_are_refused_clearly():
    x = np.array([0, 1] * 50)
    with pytest.raises(wlsmv.OrdinalDataError, match="perfectly correlated"):
        wlsmv.ordinal_statistics(pd.DataFrame({"a": x, "b": x, "c": 1 - x[::-1]}))
    with pytest.raises(wlsmv.OrdinalDataError, match="single value"):
        wlsmv.ordinal_statistics(pd.DataFrame({"a": x, "b": np.ones(100, int)}))


def test_a_model_that_does_not_converge_is_not_estimable():
    data, factors = sparse_words()
    result = wlsmv.fit(factors, data, max_iterations=2)
    assert not result.converged and not result.estimable
    assert "not converged" in result.problems[0]
    assert set(result.measures) == {"npar", "ntotal"}  # no fit measure at all


# ------------------------------------------------------------------------------------------
# Where Levenberg-Marquardt from our start values does not converge (numbers recorded from lavaan 0.6-14)
# ------------------------------------------------------------------------------------------
def test_a_weak_marker_does_not_send_the_optimiser_up_a_ridge():
    """The rehearsal's "a third moved": from our start values Levenberg-Marquardt follows a ridge of ever lower
    discrepancy (factor I's variance to 0, its loadings to infinity: 500 iterations, gradient 1.8e3), where
    lavaan converges in 71 iterations. The standardized parametrisation has no such ridge; from its solution the
    marker parametrisation converges to lavaan's.

    lavaan (Rscript, in the repository's root)::

        library(lavaan); d <- read.csv("tests/data/wlsmv_rehearsal.csv")
        m <- "C =~ critical_thinking + precision + attention_to_detail + completeness + improvement +
                   continuous_improvement + security + fairness
              H =~ efficiency + competence + patience + approachability + warmth + social_responsibility +
                   sustainability + humility
              I =~ emotional_intelligence + creativity + prioritization + data_protection + honor + impartiality +
                   ethical_behavior + candor"
        f <- cfa(m, d, ordered = names(d), estimator = "WLSMV")   # converged in 71 iterations, post.check TRUE
        fitMeasures(f, c("chisq", "chisq.scaled", "cfi.scaled", "tli.scaled", "rmsea.scaled", "srmr"))
        parameterEstimates(f)   # the latent (co)variances; loadings: parameterEstimates(f)[1:24, "est"]
    """
    data = pd.read_csv(DATA / "wlsmv_rehearsal.csv")
    result = wlsmv.fit(REHEARSAL_MOVED, data)
    assert result.converged and result.estimable, result.problems
    assert any("standardized parametrisation" in note for note in result.notes)
    m = result.measures
    assert m["df"] == 249
    assert m["chisq"] == pytest.approx(785.298796, rel=CHI2_REL_TOL)
    assert m["chisq.scaled"] == pytest.approx(620.165725, rel=CHI2_REL_TOL)
    lavaan = {"cfi.scaled": 0.590184, "tli.scaled": 0.545746, "rmsea.scaled": 0.053184, "srmr": 0.187423}
    for key, value in lavaan.items():
        assert m[key] == pytest.approx(value, abs=INDEX_TOL), key
    est = result.estimates.set_index(["lhs", "op", "rhs"])["est"]
    latent = {("C", "C"): 0.364217, ("H", "H"): 0.209378, ("I", "I"): 0.187990,
              ("C", "H"): 0.163681, ("C", "I"): 0.175902, ("H", "I"): 0.120981}  # fmt: skip
    for (a, b), value in latent.items():
        assert est[a, "~~", b] == pytest.approx(value, abs=ESTIMATE_TOL), (a, b)
    loadings = [1.000000, 0.900783, 0.958660, 0.895927, 1.137193, 0.771701, 0.834241, 0.926735,
                1.000000, 1.079611, 1.232012, 1.383408, 1.049376, 1.211852, 1.301488, 1.349773,
                1.000000, 1.516420, 1.058609, 1.282415, 1.577831, 1.170441, 1.098693, 1.374108]  # fmt: skip
    ours = [est[f, "=~", w] for f, words in REHEARSAL_MOVED.items() for w in words]
    np.testing.assert_allclose(ours, loadings, atol=ESTIMATE_TOL)


def test_the_rescue_reaches_lavaans_solution_when_it_is_inadmissible():
    """The default run's taxonomy markers (120 respondents, 5 words; notebook 04's "taxonomy: 3 dimensions" and
    "one factor (taxonomy markers)"): lavaan converges to solutions with a negative latent variance, ours did not
    converge. Now the two-factor model is reached from the standardized solution (which cannot hold a negative
    variance; the marker parametrisation goes on from where it stopped) and the one-factor model from lavaan's
    start values: lavaan's chi-square and latent variances, not estimable for lavaan's reason.

    lavaan::

        d <- read.csv("tests/data/wlsmv_taxonomy_markers.csv")
        f2 <- cfa("Competence =~ accuracy + self_improvement\n Character =~ empathy + environmental + freedom",
                  d, ordered = names(d), estimator = "WLSMV")
        f1 <- cfa("General =~ accuracy + self_improvement + empathy + environmental + freedom",
                  d, ordered = names(d), estimator = "WLSMV")
        # both: converged TRUE, post.check FALSE ("some estimated lv variances are negative")
        fitMeasures(f2, c("chisq", "chisq.scaled")); parameterEstimates(f2)   # and f1
    """
    data = pd.read_csv(DATA / "wlsmv_taxonomy_markers.csv")
    two = {"Competence": ["accuracy", "self_improvement"], "Character": ["empathy", "environmental", "freedom"]}
    one = {"General": [w for ws in two.values() for w in ws]}
    lavaan = {
        "two": (two, 3.193602, 3.107821, {("Competence", "Competence"): -0.587800,
                                          ("Character", "Character"): -0.230696,
                                          ("Competence", "Character"): 0.729793}),
        "one": (one, 3.683625, 3.563008, {("General", "General"): -0.688014}),
    }  # fmt: skip
    for name, (factors, chisq, scaled, latent) in lavaan.items():
        result = wlsmv.fit(factors, data)
        assert result.converged and not result.estimable, name
        assert "negative variance of latent factor" in result.problems[0], name
        assert any("estimated from" in note for note in result.notes), name
        assert result.measures["chisq"] == pytest.approx(chisq, rel=CHI2_REL_TOL), name
        assert result.measures["chisq.scaled"] == pytest.approx(scaled, rel=CHI2_REL_TOL), name
        est = result.estimates.set_index(["lhs", "op", "rhs"])["est"]
        for (a, b), value in latent.items():
            assert est[a, "~~", b] == pytest.approx(value, abs=ESTIMATE_TOL), (name, a, b)


def test_a_ridge_lavaan_stops_on_too_is_left():
    """The default run's one-factor baseline on the 30 words of Schwartz's basic values (notebook 08): lavaan's
    marker parametrisation stops on the ridge too ("not all elements of the gradient are (near) zero"), its
    standardized parametrisation (``std.lv = TRUE``) converges to an admissible solution; so does ours, to the
    same fit.

    lavaan::

        s <- read.csv("tests/data/wlsmv_schwartz_words.csv")
        m <- paste("General =~", paste(names(s), collapse = " + "))
        lavInspect(cfa(m, s, ordered = names(s), estimator = "WLSMV"), "converged")   # FALSE
        f <- cfa(m, s, ordered = names(s), estimator = "WLSMV", std.lv = TRUE)       # TRUE, post.check TRUE
        fitMeasures(f, c("chisq", "chisq.scaled", "cfi.scaled", "tli.scaled", "rmsea.scaled", "srmr"))
    """
    data = pd.read_csv(DATA / "wlsmv_schwartz_words.csv")
    result = wlsmv.fit({"General": list(data.columns)}, data)
    assert result.converged and result.estimable, result.problems
    m = result.measures
    assert m["df"] == 405
    assert m["chisq"] == pytest.approx(879.869353, rel=CHI2_REL_TOL)
    assert m["chisq.scaled"] == pytest.approx(528.280250, rel=CHI2_REL_TOL)
    lavaan = {"cfi.scaled": 0.588192, "tli.scaled": 0.557688, "rmsea.scaled": 0.050576, "srmr": 0.251524}
    for key, value in lavaan.items():
        assert m[key] == pytest.approx(value, abs=INDEX_TOL), key


def test_the_standardized_solution_maps_onto_the_marker_parametrisation():
    """``FactorModel.to_marker`` rescales each latent variable (first- and second-order) to its marker: the
    implied correlations are the same."""
    data, factors = sparse_words()
    higher = {"G": list(factors)}
    indicators = [w for ws in factors.values() for w in ws]
    for second in ({}, higher):
        marker = wlsmv.FactorModel(factors, second, indicators)
        standardized = wlsmv.FactorModel(factors, second, indicators, standardized=True)
        theta = np.random.default_rng(3).uniform(0.3, 0.9, standardized.n_free)
        np.testing.assert_allclose(
            marker.implied(standardized.to_marker(theta, marker)), standardized.implied(theta), atol=1e-12
        )
