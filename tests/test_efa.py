"""Exploratory factor analysis: unit tests, parity with R's psych, and notebook 03 on simulated data."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factor_analyzer import FactorAnalyzer
from scipy import optimize, stats
from scipy.stats import multivariate_normal

from tests.conftest import require_rscript, run_notebook
from valuelex.instruments.taxonomy import load_taxonomy
from valuelex.methods import simulation
from valuelex.psychometrics import efa, polychoric
from valuelex.psychometrics.efa.settings import EFASettings

R_SCRIPTS = Path(__file__).parent / "r"


# ------------------------------------------------------------------------------------------
# Data used by several tests
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted() -> simulation.PlantedStructure:
    return simulation.planted_structure(n_words=60, seed=3)


@pytest.fixture(scope="module")
def sim_data(planted) -> pd.DataFrame:
    return simulation.simulate_incidence(planted, 400, seed=4)


def sparse_binary(n: int = 150, p: int = 30, seed: int = 0) -> pd.DataFrame:
    """Sparse 0/1 data with one common factor and Zipf-like frequencies (many empty 2x2 cells)."""
    rng = np.random.default_rng(seed)
    freq = np.clip(0.5 / np.arange(1, p + 1) ** 0.8, 0.03, 0.9)
    latent = rng.normal(size=(n, 1)) * 0.7 + rng.normal(size=(n, p)) * 0.7
    cut = np.quantile(latent, 1 - freq, axis=0).diagonal()
    return pd.DataFrame((latent > cut).astype(int), columns=[f"w{i:02d}" for i in range(p)])


# ------------------------------------------------------------------------------------------
# Tetrachoric correlations
# ------------------------------------------------------------------------------------------
def test_bivariate_normal_cdf_matches_scipy():
    rng = np.random.default_rng(0)
    h, k, r = rng.normal(size=50), rng.normal(size=50), rng.uniform(-0.98, 0.98, 50)
    ours = efa.bivariate_normal_cdf(h, k, r)
    ref = [multivariate_normal(cov=[[1, ri], [ri, 1]]).cdf([hi, ki]) for hi, ki, ri in zip(h, k, r, strict=True)]
    np.testing.assert_allclose(ours, ref, atol=1e-7)
    # zero thresholds: P = 1/4 + asin(rho) / (2 pi)
    assert efa.bivariate_normal_cdf(0.0, 0.0, 0.5) == pytest.approx(0.25 + np.arcsin(0.5) / (2 * np.pi), abs=1e-9)


def _tetrachoric_pair_by_scipy(x: np.ndarray, y: np.ndarray, correct: float = 0.5) -> float:
    """psych's estimator for one pair, written the slow way: maximise the likelihood over rho with
    scipy's bivariate normal CDF and the global thresholds."""
    tab = np.array([[np.sum((x == a) & (y == b)) for b in (0, 1)] for a in (0, 1)], float)
    if tab.min() == 0:
        tab[tab == 0] = correct
    tx, ty = -stats.norm.ppf(x.mean()), -stats.norm.ppf(y.mean())
    a, b = stats.norm.cdf([tx, ty])

    def nll(rho: float) -> float:
        p00 = multivariate_normal(cov=[[1, rho], [rho, 1]]).cdf([tx, ty])
        probs = np.array([[p00, a - p00], [b - p00, 1 - a - b + p00]])
        return -np.sum(tab * np.log(np.clip(probs, 1e-300, None)))

    return optimize.minimize_scalar(nll, bounds=(-0.999, 0.999), method="bounded", options={"xatol": 1e-8}).x


def test_tetrachoric_matches_pairwise_maximum_likelihood():
    data = sparse_binary(n=120, p=8, seed=1)
    tet = efa.tetrachoric(data)
    assert tet.zero_cell_pairs > 0  # the correction is exercised
    x = data.to_numpy()
    for i, j in [(0, 1), (0, 7), (3, 6), (5, 7), (6, 7)]:
        assert tet.rho.iat[i, j] == pytest.approx(_tetrachoric_pair_by_scipy(x[:, i], x[:, j]), abs=2e-4)
    assert np.allclose(tet.rho.to_numpy(), tet.rho.to_numpy().T)


def test_tetrachoric_recovers_latent_correlation():
    rng = np.random.default_rng(5)
    z = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=20000)
    data = pd.DataFrame({"a": (z[:, 0] > 0.3).astype(int), "b": (z[:, 1] > -0.5).astype(int)})
    assert efa.tetrachoric(data).rho.iat[0, 1] == pytest.approx(0.6, abs=0.03)


def test_tetrachoric_rejects_counts():
    with pytest.raises(efa.EFAInputError, match="0/1"):
        efa.tetrachoric(pd.DataFrame({"a": [0, 2, 1, 0], "b": [1, 0, 1, 1]}))


# ------------------------------------------------------------------------------------------
# Preparation, smoothing, errors
# ------------------------------------------------------------------------------------------
def test_prepare_matrix_reports_every_dropped_word():
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.integers(0, 2, (40, 6)), columns=list("abcdef"))
    data["never"] = 0
    data["rare"] = [1, 1] + [0] * 38
    data["copy_of_a"] = data["a"]
    data["counts"] = rng.integers(0, 4, 40)
    prepared = efa.prepare_matrix(data, coding="binary", min_frequency=0.05, min_units=5, max_words=None)
    reasons = dict(zip(prepared.dropped["word"], prepared.dropped["reason"].str.split(":").str[0], strict=True))
    assert reasons["never"] == "zero variance"
    assert reasons["rare"] == "rare"
    assert reasons["copy_of_a"].startswith("duplicate") or reasons["a"].startswith("duplicate")
    assert set(prepared.data.to_numpy().ravel()) <= {0.0, 1.0}  # counts binarised
    capped = efa.prepare_matrix(data, max_words=3)
    assert capped.n_words == 3
    assert (capped.dropped["reason"].str.startswith("max_words")).sum() == 7 - 3
    auto = efa.prepare_matrix(data.iloc[:10], min_units=1, min_frequency=0.0, max_words="auto")
    assert auto.n_words <= 10 // efa.DEFAULT_UNITS_PER_WORD  # the rule before: units // 2 words
    every = efa.prepare_matrix(data.iloc[:10], min_units=1, min_frequency=0.0)  # the default: no cap
    assert every.n_words > auto.n_words and not every.dropped["reason"].str.startswith("max_words").any()


def test_parallel_words_are_the_most_frequent_third():
    data = pd.DataFrame({f"w{i}": [1] * (i + 1) + [0] * (30 - i - 1) for i in range(20)})
    counted = efa.parallel_words(data, "auto", "include")
    assert counted == [f"w{i}" for i in range(10, 20)]  # 30 units // 3 = the 10 most used words
    assert efa.parallel_words(data, None, "include") == list(data.columns)
    small = pd.DataFrame({f"v{i}": [1] * i + [0] * (6 - i) for i in range(1, 6)})  # 6 units // 3 = 2 words
    assert efa.parallel_words(small, "auto", "include") == ["v3", "v4", "v5"]  # never fewer than three


def test_words_tied_at_the_cap_are_all_counted_or_none():
    """Issue 20: three words tied at the 40-word cap, and the alphabet chose which one counted. Now the tie
    rule decides for all of them at once, whatever the words are called."""
    used = [50] * 38 + [20] * 3 + [10] * 9  # ranks 39-41 tie at the cap of 40 (120 units // 3)
    names = [f"w{i:02d}" for i in range(50)]
    data = pd.DataFrame({w: [1] * u + [0] * (120 - u) for w, u in zip(names, used, strict=True)})
    tied = names[38:41]
    assert efa.tied_at_cap(data, "auto") == tied
    assert efa.parallel_words(data, "auto", "include") == names[:41]
    assert efa.parallel_words(data, "auto", "exclude") == names[:38]
    renamed = data.rename(columns={"w38": "zz", "w39": "aa"})  # the alphabet does not move the cut
    assert len(efa.parallel_words(renamed, "auto", "include")) == 41
    assert len(efa.parallel_words(renamed, "auto", "exclude")) == 38
    assert len(efa.parallel_words(data, 38, "exclude")) == 38  # no tie straddles a cap of 38
    with pytest.raises(efa.EFAInputError, match="parallel_ties"):
        efa.parallel_words(data, "auto", "alphabetical")


def test_binary_coding_reads_counts_and_psych_style_items():
    """Counts become used/not used; items coded 1/2 are recoded 0/1 as psych does (not all ones);
    anything else is refused with the column named."""
    data = pd.DataFrame({"count": [0, 3, 1, 0], "one_two": [2, 2, 1, 1], "zero_one": [0, 1, 0, 1]})
    coded = efa.binary_coding(data)
    assert coded["count"].tolist() == [0, 1, 1, 0] and coded["one_two"].tolist() == [1, 1, 0, 0]
    assert coded["zero_one"].tolist() == [0, 1, 0, 1]
    prepared = efa.prepare_matrix(pd.concat([data] * 5, ignore_index=True), min_units=1, min_frequency=0.0)
    assert "one_two" in prepared.data.columns  # not a constant column of ones
    for bad in ([1, 2, 3, 1], [0.5, 1, 0, 0], [-1, 0, 1, 0]):
        with pytest.raises(efa.EFAInputError, match="cannot be coded as binary: x"):
            efa.prepare_matrix(data.assign(x=bad))
    assert efa.prepare_matrix(data.assign(x=[1, 2, 3, 1]), coding="counts", min_units=1).n_units == 4


def test_clear_errors_for_too_few_units_or_words():
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(rng.integers(0, 2, (20, 30)), columns=[f"w{i}" for i in range(30)])
    with pytest.raises(efa.EFAInputError, match="singular"):
        efa.correlation_matrix(wide, "pearson")
    # a tetrachoric matrix of more words than units is not singular: it is smoothed, and says so
    corr = efa.correlation_matrix(wide.loc[:, wide.std() > 0], "tetrachoric")
    assert corr.smoothed and "smoothed" in corr.notes[0] and "singular" not in corr.notes[0]
    with pytest.raises(efa.EFAInputError, match="at least 3"):
        efa.correlation_matrix(wide.iloc[:, :2], "pearson")
    # the documented remedy for phi: max_words="auto" keeps fewer words than units
    prepared = efa.prepare_matrix(wide, min_units=1, min_frequency=0.0, max_words="auto")
    assert prepared.n_words < prepared.n_units
    efa.correlation_matrix(prepared.data, "pearson")


def test_singular_matrix_is_smoothed_or_refused():
    rng = np.random.default_rng(2)
    data = pd.DataFrame(rng.normal(size=(50, 5)), columns=list("abcde"))
    data["f"] = data["a"] + data["b"]  # exactly collinear
    with pytest.raises(efa.SingularMatrixError):
        efa.correlation_matrix(data, "pearson", smooth=False)
    corr = efa.correlation_matrix(data, "pearson", smooth=True)
    assert corr.smoothed and corr.min_eigenvalue < 1e-10
    assert np.linalg.eigvalsh(corr.matrix.to_numpy()).min() > 0
    np.testing.assert_allclose(np.diag(corr.matrix), 1.0)


def test_smoothing_leaves_positive_definite_matrices_alone():
    r = np.array([[1.0, 0.3], [0.3, 1.0]])
    out, smoothed = efa.smooth_correlation(r)
    assert not smoothed and out is r


# ------------------------------------------------------------------------------------------
# Extraction
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("objective", [efa._minres_objective, efa._ml_objective])
def test_analytic_gradients(objective, sim_data):
    r = np.corrcoef(sim_data.iloc[:, :20].to_numpy(float), rowvar=False)
    psi = np.linspace(0.3, 0.9, 20)
    _, grad = objective(psi, r, 2)
    numeric = optimize.approx_fprime(psi, lambda x: objective(x, r, 2)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["minres", "ml"])
def test_extraction_matches_factor_analyzer(method, sim_data):
    r = efa.correlation_matrix(sim_data.iloc[:, :15], "pearson").matrix.to_numpy()
    ours, _, converged = efa.extract(r, 3, method)
    fa = FactorAnalyzer(n_factors=3, rotation=None, method=method, is_corr_matrix=True).fit(r)
    assert converged
    aligned, _ = efa.align(fa.loadings_, ours)
    np.testing.assert_allclose(aligned, fa.loadings_, atol=2e-4)


def test_fit_reduces_unidentifiable_factor_counts(sim_data):
    corr = efa.correlation_matrix(sim_data.iloc[:, :5], "pearson")
    result = efa.fit_efa(corr, 4, extraction="minres", rotation="oblimin")
    assert result.n_factors == efa.max_factors(5) == 2
    assert any("cannot be identified" in n for n in result.notes)


def test_rmsea_bound_is_missing_when_psych_finds_none():
    """psych's uniroot search for the RMSEA bound can fail (a tiny panel with a huge chi2); psych then
    reports NA (try()), not an error. chi2 939 on 35 df with 20 units: a case from notebook 07's grid."""
    lower, upper = efa._rmsea_interval(938.9, 35.0, 20, 0.90)
    assert math.isnan(upper) and lower > 0


def test_factor_count_policy():
    parallel = efa.ParallelResult(
        np.zeros(9), np.zeros(9), np.zeros(9), 4, 5, 0.95, 0, "permute", "tetrachoric", "minres"
    )
    k, notes = efa.choose_n_factors("parallel", parallel, 9)
    assert k == 3 and "fewer than 3 words per factor" in notes[0]
    parallel.n_factors = 0
    k, notes = efa.choose_n_factors("parallel", parallel, 30)
    assert k == 1 and "no factor" in notes[0]
    assert efa.choose_n_factors(2, None, 30) == (2, [])


# ------------------------------------------------------------------------------------------
# Alignment and stability
# ------------------------------------------------------------------------------------------
def test_align_undoes_order_and_sign():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(20, 3))
    candidate = ref[:, [2, 0, 1]] * np.array([1, -1, 1])
    aligned, matched = efa.align(ref, candidate)
    np.testing.assert_allclose(aligned, ref)
    np.testing.assert_allclose(matched, 1.0)
    assert efa.congruence(ref, ref).diagonal() == pytest.approx([1, 1, 1])


def test_the_report_blanks_loadings_at_the_runs_cutoff(sim_data):
    """Issue 21: the printed report blanked loadings at 0.30 whatever ``efa.cutoff`` said, while the saved table
    used the run's cut-off. The result now carries the run's cut-off; report, table and assignment agree."""
    corr = efa.correlation_matrix(sim_data, "tetrachoric")
    result = efa.fit_efa(corr, 3, EFASettings(cutoff=0.5))
    assert result.cutoff == 0.5
    shown = dict(result.sections())["Loadings (pattern matrix; below the cut-off 0.5 blank)"]
    pd.testing.assert_frame_equal(shown, efa.loadings_table(result))
    values = shown[result.factors].to_numpy()
    assert np.nanmin(np.abs(values)) >= 0.5 and np.isnan(values).any()
    assert (np.abs(result.loadings.to_numpy()) >= 0.3).sum() > np.isfinite(values).sum()  # 0.3 would show more
    assert efa.word_factors(result)["assigned"].equals(efa.word_factors(result)["loading"].abs() >= 0.5)
    assert efa.EFA(EFASettings(parallel_iter=3, cutoff=0.5, seed=0)).fit(sim_data).result.cutoff == 0.5
    analysis = efa.EFA(EFASettings(parallel_iter=3, cutoff=0.45)).fit(sim_data)
    assert analysis.result.cutoff == 0.45 and analysis.settings.cutoff == 0.45  # the result keeps its settings


def test_counts_are_correlated_as_ordered_categories():
    """Counts with the latent-normal correlation: the polychoric matrix (tetrachoric is its two-category case),
    said so in a note; 0/1 words keep psych's tetrachoric."""
    rng = np.random.default_rng(2)
    latent = rng.multivariate_normal(np.zeros(3), [[1, 0.5, 0.3], [0.5, 1, 0.4], [0.3, 0.4, 1]], size=300)
    data = pd.DataFrame(np.digitize(latent, [0.3, 1.0, 1.8]), columns=["a", "b", "c"])  # counts 0..3
    corr = efa.correlation_matrix(data, "tetrachoric")
    assert corr.method == "polychoric" and "polychoric" in " ".join(corr.notes)
    np.testing.assert_allclose(corr.matrix.to_numpy(), polychoric.polychoric_matrix(data).correlations)
    binary = (data > 0).astype(int)
    assert efa.correlation_matrix(binary, "tetrachoric").method == "tetrachoric"


def test_pipeline_recovers_planted_factors(planted, sim_data):
    analysis = efa.EFA(EFASettings(parallel_iter=10, seed=1)).fit(sim_data)
    assert analysis.parallel.n_factors == 3
    scores = simulation.recovery_scores(planted, analysis.result)
    assert scores["min_congruence"] >= 0.93
    assert analysis.adequacy.kmo > 0.6
    table = efa.word_factors(analysis.result)
    assert list(table.columns[:4]) == ["word", "factor", "loading", "assigned"]
    assert table["assigned"].equals(table["loading"].abs() >= EFASettings().cutoff)
    boot = efa.bootstrap_stability(
        analysis.prepared.data, analysis.result, n_boot=8, seed=2
    )  # small for speed; notebook 03 uses 200
    summary = boot.summary_table()
    assert len(summary) == 3 and (summary["median"] > 0.9).all()
    assert (summary["lower"] <= summary["median"]).all() and (summary["median"] <= summary["upper"]).all()
    intervals = boot.loading_intervals(analysis.result)
    assert intervals["same_factor_share"].between(0, 1).all()


def test_small_messy_data_degrades_gracefully():
    """120 units and very sparse words, like the local panel: fewer factors and notes, no crash."""
    rng = np.random.default_rng(3)
    data = pd.DataFrame((rng.random((120, 250)) < 0.04).astype(int), columns=[f"w{i}" for i in range(250)])
    analysis = efa.EFA(EFASettings(parallel_iter=20, seed=0)).fit(data)  # pure noise
    assert analysis.result.n_factors >= 1
    assert analysis.prepared.n_words < 120
    assert any("no factor" in n for n in analysis.notes) or analysis.parallel.n_factors <= 2
    with pytest.raises(efa.EFAInputError, match="words left"):
        efa.EFA(EFASettings(parallel_iter=5, seed=0)).fit(data.iloc[:, :2])


def test_figures_draw(sim_data, tmp_path):
    from valuelex.core.io import save_figure
    from valuelex.plots import efa as efa_plots

    analysis = efa.EFA(EFASettings(parallel_iter=5, seed=0)).fit(sim_data.iloc[:, :30])
    boot = efa.bootstrap_stability(analysis.prepared.data, analysis.result, n_boot=3, seed=0)
    for name, fig in [
        ("scree", efa_plots.plot_scree(analysis.parallel)),
        ("heatmap", efa_plots.plot_loadings_heatmap(analysis.result)),
        ("boot", efa_plots.plot_bootstrap_congruence(boot)),
    ]:
        png, pdf = save_figure(fig, name, tmp_path)
        assert png.stat().st_size > 1000 and pdf.exists()


# ------------------------------------------------------------------------------------------
# Parity with R (psych) on psychTools::bfi and binary data
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def psych_reference(tmp_path_factory) -> Path:
    rscript = require_rscript()
    out = tmp_path_factory.mktemp("psych")
    subprocess.run([rscript, "--vanilla", str(R_SCRIPTS / "psych_fa.R"), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def psych_scalars(psych_reference) -> pd.Series:
    return pd.read_csv(psych_reference / "psych_scalars.csv").set_index("name")["value"]


@pytest.fixture(scope="module")
def bfi(psych_reference) -> pd.DataFrame:
    return pd.read_csv(psych_reference / "bfi.csv")


@pytest.mark.r
@pytest.mark.parametrize("case, k", [("bfi", 2), ("bfi", 3), ("bfi", 5), ("thurstone", 3)])
def test_omega_matches_psych(bfi, psych_reference, case, k):
    """Issue 21's example of adding a statistic (one estimator change, one report line): McDonald's omega of
    the words and of each factor's words, against ``psych::omega``'s ``omega.group`` (factors matched on the
    oblique loadings psych's Schmid-Leiman starts from)."""
    if case == "bfi":
        corr, n_obs = efa.correlation_matrix(bfi, "pearson").matrix, len(bfi)
    else:
        corr, n_obs = pd.read_csv(psych_reference / "thurstone.csv", index_col=0), 213
    result = efa.fit_efa(corr, k, n_obs=n_obs)
    ref = pd.read_csv(psych_reference / f"omega_{case}_{k}.csv", index_col=0)
    oblique = pd.read_csv(psych_reference / f"omega_oblique_{case}_{k}.csv", index_col=0).to_numpy()
    c = np.abs(efa.congruence(result.loadings.to_numpy(), oblique))
    order = c.argmax(axis=0)  # our factor matching each of psych's
    assert sorted(order) == list(range(k)) and c.max(axis=0).min() > 0.999
    ours = result.omega.iloc[[0, *(order + 1)]].to_numpy()
    np.testing.assert_allclose(ours, ref.to_numpy(), atol=5e-5)
    assert "McDonald's omega" in str(result)


@pytest.mark.r
def test_adequacy_matches_psych(bfi, psych_scalars):
    assert len(bfi) == 2436 and bfi.shape[1] == 25
    adequate = efa.adequacy(efa.correlation_matrix(bfi, "pearson"))
    assert adequate.kmo == pytest.approx(psych_scalars["kmo"], abs=1e-6)
    assert adequate.kmo == pytest.approx(0.8486, abs=1e-4)  # design.md
    for item in bfi.columns:
        assert adequate.msa[item] == pytest.approx(psych_scalars[f"msa_{item}"], abs=1e-6)
    assert adequate.bartlett_chi2 == pytest.approx(psych_scalars["bartlett_chi2"], abs=1e-3)
    assert adequate.bartlett_chi2 == pytest.approx(18146.07, abs=0.01)  # design.md
    assert adequate.bartlett_df == psych_scalars["bartlett_df"]
    assert adequate.determinant == pytest.approx(psych_scalars["determinant"], rel=1e-6)


@pytest.mark.r
@pytest.mark.parametrize("extraction", ["minres", "ml"])
@pytest.mark.parametrize("rotation", ["oblimin", "promax"])
def test_fa_matches_psych(bfi, psych_reference, psych_scalars, extraction, rotation):
    corr = efa.correlation_matrix(bfi, "pearson")
    result = efa.fit_efa(corr, 5, extraction=extraction, rotation=rotation)
    key = f"{extraction}_{rotation}"
    ref = pd.read_csv(psych_reference / f"loadings_{key}.csv", index_col=0)
    aligned, _ = efa.align(ref.to_numpy(), result.loadings.to_numpy())
    np.testing.assert_allclose(aligned, ref.to_numpy(), atol=1e-4)
    for ours, theirs in [
        ("rmsea", "rmsea"),
        ("rmsea_lower", "rmsea_lower"),
        ("rmsea_upper", "rmsea_upper"),
        ("tli", "tli"),
    ]:
        assert result.fit[ours] == pytest.approx(psych_scalars[f"{key}_{theirs}"], abs=1e-4), ours
    assert result.fit["chi2"] == pytest.approx(psych_scalars[f"{key}_chi2"], rel=1e-5)
    assert result.fit["dof"] == psych_scalars[f"{key}_dof"]
    assert result.communalities.sum() == pytest.approx(psych_scalars[f"{key}_communality_sum"], abs=1e-4)
    assert result.complexity.mean() == pytest.approx(psych_scalars[f"{key}_complexity_mean"], abs=1e-4)
    assert result.variance.loc["SS loadings"].sum() == pytest.approx(
        psych_scalars[f"{key}_ss_loadings_total"], abs=1e-4
    )
    if key == "minres_oblimin":  # design.md's reference numbers
        assert result.fit["rmsea"] == pytest.approx(0.0548, abs=1e-4)
        assert result.fit["tli"] == pytest.approx(0.8768, abs=1e-4)


@pytest.mark.r
def test_parallel_analysis_matches_psych(bfi, psych_reference, psych_scalars):
    ours = efa.parallel_analysis(bfi, "pearson", "minres", n_iter=20, quantile=0.95, seed=1, null="normal")
    assert ours.n_factors == psych_scalars["parallel_nfact"] == 6
    ref = pd.read_csv(psych_reference / "parallel.csv")
    np.testing.assert_allclose(ours.observed, ref["observed"], atol=1e-4)  # deterministic part
    np.testing.assert_allclose(ours.simulated_mean[:10], ref["simulated_mean"][:10], atol=0.08)  # random part


@pytest.fixture(scope="module")
def tetrachoric_cases(tmp_path_factory) -> dict[str, Path]:
    rscript = require_rscript()
    out = tmp_path_factory.mktemp("tetra")
    subprocess.run(
        [rscript, "--vanilla", str(R_SCRIPTS / "export_ability.R"), str(out / "ability.csv")],
        check=True,
        capture_output=True,
    )
    sparse_binary().to_csv(out / "sparse.csv", index=False)
    wide = sparse_binary(n=40, p=30, seed=2)  # n close to p: not positive definite
    wide.loc[:, wide.std() > 0].to_csv(out / "wide.csv", index=False)
    for name, smooth in [("ability", ""), ("sparse", ""), ("wide", "smooth")]:
        args = [rscript, "--vanilla", str(R_SCRIPTS / "psych_tetrachoric.R"), str(out / f"{name}.csv")]
        subprocess.run([*args, str(out / f"{name}_tet.csv"), smooth], check=True, capture_output=True)
    return {name: out for name in ("ability", "sparse", "wide")}


@pytest.mark.r
@pytest.mark.parametrize("case", ["ability", "sparse"])
def test_tetrachoric_matches_psych(tetrachoric_cases, case):
    folder = tetrachoric_cases[case]
    data = pd.read_csv(folder / f"{case}.csv")
    ref = pd.read_csv(folder / f"{case}_tet.csv").to_numpy()
    ours = efa.tetrachoric(data)
    np.testing.assert_allclose(ours.rho.to_numpy(), ref, atol=1e-3)
    if case == "sparse":
        assert ours.zero_cell_pairs > 20  # the zero-cell correction is exercised


@pytest.mark.r
def test_smoothed_tetrachoric_matches_psych(tetrachoric_cases):
    folder = tetrachoric_cases["wide"]
    data = pd.read_csv(folder / "wide.csv")
    ref = pd.read_csv(folder / "wide_tet.csv").to_numpy()
    raw = efa.tetrachoric(data).rho.to_numpy()
    smoothed, done = efa.smooth_correlation(raw)
    assert done
    np.testing.assert_allclose(smoothed, ref, atol=1e-3)


@pytest.fixture(scope="module")
def smoothed_cases(tmp_path_factory) -> dict[str, tuple[efa.CorrelationResult, pd.Series, pd.DataFrame]]:
    """Tetrachoric matrices of planted-structure word data that had to be smoothed, fitted by psych.

    ``more_words_than_units``: 60 respondents, 65 words (smoothed; psych's model objective stays
    likelihood-based, its null model switches to correlations); ``like_the_panel``: 120 respondents and
    every word above the frequency floor (the determinant underflows: psych's residual-based chi2)."""
    rscript = require_rscript()
    out = tmp_path_factory.mktemp("smoothed")
    structure = simulation.planted_structure(seed=20240419)
    cases = {}
    for name, n in [("more_words_than_units", 60), ("like_the_panel", 120)]:
        data = efa.prepare_matrix(simulation.simulate_incidence(structure, n, seed=3), max_words=None).data
        corr = efa.correlation_matrix(data)
        corr.matrix.to_csv(out / f"{name}.csv", index=False)
        args = [rscript, "--vanilla", str(R_SCRIPTS / "psych_fa_smoothed.R"), str(out / f"{name}.csv")]
        subprocess.run([*args, str(n), "3", str(out / name)], check=True, capture_output=True)
        scalars = pd.read_csv(out / f"{name}_scalars.csv").set_index("name")["value"]
        cases[name] = (corr, scalars, pd.read_csv(out / f"{name}_loadings.csv", index_col=0))
    return cases


@pytest.mark.r
@pytest.mark.parametrize("case", ["more_words_than_units", "like_the_panel"])
def test_fit_of_smoothed_matrix_matches_psych(smoothed_cases, case):
    """psych::fa's fit statistics and cortest.bartlett on a smoothed, near-singular tetrachoric matrix,
    including psych's switch to residual-based statistics when the determinant is zero."""
    corr, ref, loadings = smoothed_cases[case]
    assert corr.smoothed and corr.min_eigenvalue < -0.5
    result = efa.fit_efa(corr, 3)
    adequate = efa.adequacy(corr)
    aligned, _ = efa.align(loadings.to_numpy(), result.loadings.loc[loadings.index].to_numpy())
    np.testing.assert_allclose(aligned, loadings.to_numpy(), atol=1e-4)
    for key in ("chi2", "objective", "null_chi2", "empirical_chi2", "bic"):
        assert result.fit[key] == pytest.approx(ref[key], rel=1e-6), key
    for key in ("rmsea", "rmsea_lower", "rmsea_upper", "tli", "rmsr"):
        assert result.fit[key] == pytest.approx(ref[key], abs=1e-6), key
    assert result.fit["dof"] == ref["dof"]
    assert adequate.kmo == pytest.approx(ref["kmo"], abs=1e-6)
    assert adequate.determinant == ref["determinant"] == 0.0  # underflows, as R's det()
    assert adequate.bartlett_chi2 == ref["bartlett_chi2"] == np.inf and adequate.bartlett_p == 0.0
    assert any("smoothed" in note for note in result.notes + adequate.notes)
    expected = "residuals" if case == "like_the_panel" else "likelihood"
    assert result.fit["fit_basis"] == expected and result.fit["null_basis"] == "correlations"
    assert "not tests of the model" in " ".join(result.notes)


# ------------------------------------------------------------------------------------------
# Notebook 03 on simulated data (the lead's pipeline fixture runs it on the real lexicon)
# ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_notebook_03_on_simulated_panel(tmp_path):
    processed, figures_dir = tmp_path / "processed", tmp_path / "figures"
    processed.mkdir()
    figures_dir.mkdir()
    structure = simulation.with_marker_words(simulation.planted_structure(seed=1), load_taxonomy())
    respondents = simulation.simulate_incidence(structure, 300, seed=5)
    respondents.to_csv(processed / "incidence_respondent_binary.csv")
    # a panel of 10 models x 30 respondents, each answering 3 prompts (the model-identity sections need them)
    ids = list(respondents.index)
    pd.DataFrame({"respondent": ids, "model": [f"m{i % 10}" for i in range(len(ids))]}).to_csv(
        processed / "respondents.csv", index=False
    )
    responses = simulation.simulate_incidence(structure, 3 * len(ids), seed=6)
    responses.index = [f"{r}|p{j}|0" for r in ids for j in range(3)]
    responses.to_csv(processed / "incidence_response_binary.csv")
    env = {"VALUELEX_PROCESSED": str(processed), "VALUELEX_FIGURES": str(figures_dir)}
    numbers = run_notebook(
        "03_efa", tmp_path, {"n_boot": 5, "parallel_iter": 5, "n_boot_within": 3, "count_resamples": 3}, env
    )
    assert numbers["units"] == 300 and numbers["words_analysed"] <= 150
    assert numbers["n_factors"] in (3, 4)
    assert numbers["kmo"] > 0.6
    assert numbers["bootstrap_samples"] == 5
    table = pd.read_csv(processed / "efa_word_factors.csv")
    assert list(table.columns[:4]) == ["word", "factor", "loading", "assigned"]
    assert table["assigned"].sum() == numbers["words_assigned"]
    for name in ("efa_scree.png", "efa_loadings_heatmap.png", "efa_bootstrap_congruence.png", "efa_loadings.md"):
        assert (figures_dir / name).exists(), name
    assert (processed / "efa_settings.json").exists() and (processed / "efa_loadings.csv").exists()


def test_factor_model_association_separates_model_vocabulary_from_shared_values():
    """A factor made of one model's pet words has eta squared 1; a factor every model uses alike has 0."""
    respondents = pd.DataFrame({"respondent": [f"r{i}" for i in range(8)], "model": ["a"] * 4 + ["b"] * 4})
    incidence = pd.DataFrame(
        {
            "pet1": [1, 1, 1, 1, 0, 0, 0, 0],
            "pet2": [1, 1, 1, 1, 0, 0, 0, 0],
            "shared1": [1, 0, 1, 0, 1, 0, 1, 0],
            "shared2": [1, 0, 1, 0, 1, 0, 1, 0],
        },
        index=respondents["respondent"],
    )
    word_factors = pd.DataFrame(
        {"word": ["pet1", "pet2", "shared1", "shared2"], "factor": ["F1", "F1", "F2", "F2"], "assigned": True}
    )
    table = efa.factor_model_association(incidence, word_factors, respondents).set_index("factor")
    assert table.loc["F1", "eta_squared"] == 1.0
    assert table.loc["F2", "eta_squared"] == 0.0
    assert table.loc["F1", "a"] == 1.0 and table.loc["F1", "b"] == 0.0
    assert table.loc["F2", "words"] == 2


def test_the_estimator_reads_every_analysis_setting_from_its_settings_object(sim_data):
    """Issue 21: one EFA estimator, its settings given once. A change of any setting the pooled pipeline uses
    changes the analysis through the settings object alone (no keyword copies that could drift)."""
    import dataclasses

    base = EFASettings(parallel_iter=3, seed=0)
    ref = efa.EFA(base).fit(sim_data)
    assert ref.settings is base and not ref.within and "pooled" in str(ref)

    def same(a, b) -> bool:
        la, lb = a.result.loadings, b.result.loadings
        return la.shape == lb.shape and np.allclose(la, lb) and a.parallel.table().equals(b.parallel.table())  # fmt: skip

    for change in (dict(rotation="varimax"), dict(extraction="ml"), dict(correlation="pearson"), dict(max_words=20),
                   dict(min_units=60), dict(parallel_quantile=0.5), dict(parallel_iter=4), dict(seed=5),
                   dict(parallel_null="normal"), dict(parallel_max_words=20)):  # fmt: skip
        assert not same(efa.EFA(dataclasses.replace(base, **change)).fit(sim_data), ref), change
    assert same(efa.EFA(dataclasses.replace(base)).fit(sim_data), ref)
