"""Within/between decomposition (psych::statsBy parity), within-model correlations and factors."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from tests.conftest import require_rscript
from valuelex import lexicon
from valuelex.core import paths
from valuelex.methods import simulation
from valuelex.psychometrics import efa, multilevel
from valuelex.psychometrics.efa.settings import EFASettings

R_SCRIPTS = Path(__file__).parent / "r"


def vocabulary_panel(
    n_models: int = 4, per_model: int = 60, vocabulary_icc: float = 0.4, n_words: int = 45, seed: int = 0
) -> tuple[simulation.PlantedStructure, simulation.ModelPanel]:
    structure = simulation.planted_structure(n_words=n_words, seed=seed)
    return structure, simulation.simulate_model_panel(structure, n_models, per_model, vocabulary_icc, seed=seed + 1)


# ------------------------------------------------------------------------------------------
# psych::statsBy
# ------------------------------------------------------------------------------------------
def _statsby_cases(out: Path) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Data shaped like ours: the committed local panel (4 models x 30 respondents, sparse 0/1 words),
    a simulated panel with unequal model sizes, and response-level units grouped by model and prompt."""
    respondents = lexicon.load_respondents(paths.COMMITTED_PROCESSED)
    panel = efa.prepare_matrix(lexicon.load_incidence(folder=paths.COMMITTED_PROCESSED)).data.astype(int)
    local = panel.assign(model=multilevel.unit_models(panel.index, respondents).to_numpy())
    _, sim = vocabulary_panel(n_models=6, per_model=25, seed=3)
    keep = np.r_[0:25, 25:35, 50:75, 75:90, 100:125, 125:150]  # unequal groups: 25, 10, 25, 15, 25, 25
    uneven = efa.prepare_matrix(sim.incidence.iloc[keep], max_words=None).data.astype(int)
    uneven = uneven.assign(model=sim.models.iloc[keep].to_numpy())
    responses = lexicon.load_incidence(unit="response", folder=paths.COMMITTED_PROCESSED)
    groups = multilevel.response_groups(responses.index, respondents)
    words = efa.prepare_matrix(responses).data.columns[:8]
    crossed = responses[words].assign(model=groups["model"].to_numpy(), prompt=groups["prompt"].to_numpy())
    return {"local": (local, ["model"]), "uneven": (uneven, ["model"]), "crossed": (crossed, ["model", "prompt"])}


@pytest.fixture(scope="module")
def statsby_reference(tmp_path_factory) -> dict[str, tuple[pd.DataFrame, list[str], Path]]:
    rscript = require_rscript()
    root = tmp_path_factory.mktemp("statsby")
    out = {}
    for name, (data, groups) in _statsby_cases(root).items():
        data.to_csv(root / f"{name}.csv", index=False)
        folder = root / name
        subprocess.run(
            [
                rscript,
                "--vanilla",
                str(R_SCRIPTS / "psych_statsby.R"),
                str(root / f"{name}.csv"),
                ",".join(groups),
                str(folder),
            ],
            check=True,
            capture_output=True,
        )
        out[name] = (data, groups, folder)
    return out


@pytest.mark.r
@pytest.mark.parametrize("case", ["local", "uneven", "crossed"])
def test_stats_by_matches_psych(statsby_reference, case):
    data, groups, folder = statsby_reference[case]
    words = [c for c in data.columns if c not in groups]
    labels = data[groups[0]] if len(groups) == 1 else multilevel.cell_labels(data[groups[0]], data[groups[1]])
    ours = multilevel.stats_by(data[words], labels)
    per = pd.read_csv(folder / "per_variable.csv").set_index("variable").loc[words]
    for column, values in [
        ("ICC1", ours.ICC1),
        ("ICC2", ours.ICC2),
        ("F", ours.F),
        ("ci1_lower", ours.ci1["lower"]),
        ("ci1_upper", ours.ci1["upper"]),
        ("ci2_lower", ours.ci2["lower"]),
        ("ci2_upper", ours.ci2["upper"]),
        ("etabg", ours.etabg),
        ("etawg", ours.etawg),
    ]:
        np.testing.assert_allclose(values.to_numpy(), per[column].to_numpy(), rtol=1e-8, atol=1e-10, err_msg=column)
    for name in ("rwg", "rbg", "pwg", "pbg"):
        ref = pd.read_csv(folder / f"{name}.csv").to_numpy()
        mine = getattr(ours, name).to_numpy()
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref), err_msg=f"{name}: undefined entries differ")
        np.testing.assert_allclose(mine, ref, rtol=1e-8, atol=1e-10, equal_nan=True, err_msg=name)
    means = pd.read_csv(folder / "means.csv").to_numpy()
    np.testing.assert_allclose(np.sort(ours.means.to_numpy(), axis=0), np.sort(means, axis=0), atol=1e-12)
    if case == "local":
        assert ours.n_groups == 4 and ours.ICC1.median() > 0.1  # the local panel's words are model-specific
    if case == "crossed":
        assert ours.n_groups > 40  # model x prompt cells


def test_stats_by_decomposes_the_pooled_correlation():
    """statsBy's identity: r = eta_wx eta_wy rwg + eta_bx eta_by rbg, exactly."""
    _, panel = vocabulary_panel(seed=5)
    data = efa.prepare_matrix(panel.incidence).data
    sb = multilevel.stats_by(data, panel.models)
    pooled = np.corrcoef(data.to_numpy(), rowvar=False)
    rebuilt = np.outer(sb.etawg, sb.etawg) * sb.rwg.to_numpy() + np.outer(sb.etabg, sb.etabg) * sb.rbg.to_numpy()
    np.testing.assert_allclose(rebuilt, pooled, atol=1e-10)
    assert sb.ICC1.median() > 0.05  # vocabulary_icc 0.4: words differ between models
    text = str(sb)
    assert "ICC1" in text and "median ICC1" in text and sb.metrics()["models"] == 4
    from IPython.lib.pretty import pretty

    assert pretty(sb) == text  # a notebook shows the report, not a dataclass repr
    assert "<table>" in sb._repr_html_() or "<table" in sb._repr_html_()


def test_stats_by_errors_are_one_line():
    data = pd.DataFrame({"a": [0, 1, 1, 0], "b": [1, 1, 0, 0]})
    with pytest.raises(efa.EFAInputError, match="3 labels for 4 units"):
        multilevel.stats_by(data, ["x", "y", "x"])
    with pytest.raises(efa.EFAInputError, match="at least 2 models"):
        multilevel.stats_by(data, ["x"] * 4)
    with pytest.raises(efa.EFAInputError, match="missing labels"):
        multilevel.stats_by(data, ["x", None, "y", "y"])


# ------------------------------------------------------------------------------------------
# Within-model correlations
# ------------------------------------------------------------------------------------------
def test_bivariate_normal_excess_matches_owens_t():
    rng = np.random.default_rng(0)
    h, k = rng.normal(0, 1.5, 20000), rng.normal(0, 1.5, 20000)
    rho = rng.uniform(-0.999, 0.999, 20000)
    ref = efa.bivariate_normal_cdf(h, k, rho) - stats.norm.cdf(h) * stats.norm.cdf(k)
    np.testing.assert_allclose(multilevel.bivariate_normal_excess(h, k, rho), ref, atol=1e-13)


def test_within_tetrachoric_with_one_group_is_psychs_tetrachoric():
    """One group: the same estimator as efa.tetrachoric (itself checked against psych), zero cells included."""
    structure = simulation.planted_structure(n_words=40, seed=1)
    data = efa.prepare_matrix(simulation.simulate_incidence(structure, 150, seed=2)).data
    ours = multilevel.within_tetrachoric(data, np.zeros(len(data)))
    reference = efa.tetrachoric(data)
    assert reference.zero_cell_pairs > 0
    np.testing.assert_allclose(ours.rho.to_numpy(), reference.rho.to_numpy(), atol=1e-7)


def _common_rho_by_scipy(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """The likelihood of every group's 2x2 table with its own thresholds, maximised by scipy."""

    def nll(rho: float) -> float:
        total = 0.0
        for g in np.unique(groups):
            a, b = x[groups == g], y[groups == g]
            if a.std() == 0 or b.std() == 0:
                continue
            h, k = -stats.norm.ppf(a.mean()), -stats.norm.ppf(b.mean())
            p00 = stats.multivariate_normal(cov=[[1, rho], [rho, 1]]).cdf([h, k])
            pa, pb = stats.norm.cdf(h), stats.norm.cdf(k)
            probs = np.array([p00, pa - p00, pb - p00, 1 - pa - pb + p00])
            counts = [np.sum((a == i) & (b == j)) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1))]
            total -= np.sum(np.array(counts) * np.log(np.clip(probs, 1e-300, None)))
        return total

    return optimize.minimize_scalar(nll, bounds=(-0.99, 0.99), method="bounded", options={"xatol": 1e-7}).x


def test_within_tetrachoric_is_the_likelihood_over_all_groups():
    _, panel = vocabulary_panel(n_models=3, per_model=80, seed=7)
    data = efa.prepare_matrix(panel.incidence, max_words=None).data
    ours = multilevel.within_tetrachoric(data, panel.models)
    x, groups = data.to_numpy(), panel.models.to_numpy()
    for i, j in [(0, 1), (0, 5), (2, 9), (4, 12), (7, 15)]:
        assert ours.rho.iat[i, j] == pytest.approx(_common_rho_by_scipy(x[:, i], x[:, j], groups), abs=2e-4)
    assert ours.tau.shape == (3, data.shape[1])


def test_within_tetrachoric_recovers_planted_correlations_despite_vocabularies():
    """Strong vocabularies (40% of each word's latent variance): the within-model estimate is unbiased for the
    planted latent correlations; the pooled tetrachoric is shrunk and noisy, statsBy's rwg (phi) shrunk more."""
    structure, panel = vocabulary_panel(n_models=8, per_model=400, vocabulary_icc=0.4, n_words=30, seed=11)
    data = multilevel.prepare_within(efa.prepare_matrix(panel.incidence, max_words=None), panel.models).data
    lam = structure.loadings.loc[data.columns].to_numpy()
    target = (lam @ structure.phi @ lam.T)[np.triu_indices(len(lam), 1)]

    def error(matrix: np.ndarray) -> np.ndarray:
        return matrix[np.triu_indices(len(lam), 1)] - target

    within = error(multilevel.within_tetrachoric(data, panel.models).rho.to_numpy())
    pooled = error(efa.tetrachoric(data).rho.to_numpy())
    rwg = error(multilevel.stats_by(data, panel.models).rwg.to_numpy())
    assert abs(within.mean()) < 0.01 and np.sqrt((within**2).mean()) < 0.07  # sampling error of rare words
    assert pooled.mean() < -0.05 and np.sqrt((pooled**2).mean()) > 2 * np.sqrt((within**2).mean())
    assert rwg.mean() < -0.08  # phi is bounded by the words' frequencies


def test_pooled_tetrachoric_skips_groups_where_a_word_does_not_vary():
    rng = np.random.default_rng(3)
    data = pd.DataFrame(rng.integers(0, 2, (90, 4)), columns=list("abcd"))
    groups = np.repeat(["g1", "g2", "g3"], 30)
    data.loc[groups == "g1", "d"] = 0  # d never used by g1
    pooled = multilevel.pooled_tetrachoric(data, groups)
    only = multilevel.pooled_tetrachoric(data[groups != "g1"], groups[groups != "g1"])
    assert pooled.at["a", "d"] == pytest.approx(only.at["a", "d"])
    assert pooled.at["a", "b"] != pytest.approx(only.at["a", "b"])  # g1 counts where both vary
    assert np.allclose(np.diag(pooled), 1.0)


def test_within_correlation_errors_and_n_obs():
    _, panel = vocabulary_panel(seed=2)
    data = efa.prepare_matrix(panel.incidence).data
    corr = multilevel.within_correlation(data, panel.models)
    assert corr.n_obs == len(data) - 4 and corr.method == "within tetrachoric"
    with pytest.raises(efa.EFAInputError, match="must be one of"):
        multilevel.within_correlation(data, panel.models, "spearman")
    stuck = data.copy()
    stuck["pet"] = (panel.models == "m01").astype(int).to_numpy()  # one model's word, constant inside every model
    with pytest.raises(efa.EFAInputError, match="never vary inside any group \\(pet\\)"):
        multilevel.within_correlation(stuck, panel.models)
    kept = multilevel.prepare_within(efa.prepare_matrix(stuck, max_words=None), panel.models)
    assert "pet" not in kept.data.columns
    assert "no within-group variance" in set(kept.dropped["reason"])


# ------------------------------------------------------------------------------------------
# Within-model factors
# ------------------------------------------------------------------------------------------
def test_within_parallel_analysis_sees_no_structure_in_pure_vocabularies():
    """No value structure at all, only model vocabularies: the pooled analysis finds 'factors' (the
    models' pet words co-occur), the within-model one finds none."""
    structure = simulation.planted_structure(n_words=40, loading_range=(1e-6, 1e-6), cross_loading_sd=0.0, seed=4)
    panel = simulation.simulate_model_panel(structure, 4, 80, vocabulary_icc=0.4, seed=5)
    data = multilevel.prepare_within(efa.prepare_matrix(panel.incidence), panel.models).data
    pooled = efa.parallel_analysis(data, n_iter=10, seed=0)
    within = multilevel.within_parallel_analysis(data, panel.models, n_iter=10, seed=0)
    assert pooled.n_factors >= 2
    assert within.n_factors == 0
    assert within.null == "permute within groups"


def test_within_analysis_recovers_what_pooling_confounds():
    structure, panel = vocabulary_panel(n_models=4, per_model=100, vocabulary_icc=0.4, n_words=60, seed=21)
    pooled = efa.EFA(EFASettings(parallel_iter=10, seed=0)).fit(panel.incidence)
    within = efa.EFA(EFASettings(parallel_iter=10, seed=0)).fit(panel.incidence, panel.models, prepared=pooled.prepared)
    within_scores = simulation.recovery_scores(structure, within.result)
    pooled_scores = simulation.recovery_scores(structure, pooled.result)
    assert within_scores["factor_count_right"] and within_scores["min_congruence"] > 0.9
    assert pooled.result.n_factors > within.result.n_factors or pooled_scores["min_congruence"] < 0.9

    boot = multilevel.within_bootstrap(
        within.prepared.data, panel.models, within.result, EFASettings(n_boot_within=8, seed=1)
    )
    assert boot.failures == 0 and boot.congruence.shape == (8, within.result.n_factors)
    assert boot.summary_table()["median"].min() > 0.8

    levels = multilevel.compare_levels(pooled.prepared.data, panel.models, pooled.result, within, stability=boot)
    attribution = levels.attribution()
    assert list(attribution["factor"]) == pooled.result.factors
    # the pooled factor most tied to the models is vocabulary; the within factors are not
    assert attribution["ICC1_model"].max() > 0.3
    assert levels.within_shares["ICC1"].max() < attribution["ICC1_model"].max()
    assert levels.between is not None and levels.between.n_factors <= 3
    assert set(levels.within_shares["main_within_source"]) <= set(panel.models)  # named, not coded
    text = str(levels)
    assert "how much is model identity" in text and "bootstrap congruence" in text
    metrics = levels.metrics()
    assert (
        metrics["within_factors"] == within.result.n_factors
        and len(metrics["pooled_eta_squared"]) == pooled.result.n_factors
    )


def test_within_analysis_takes_the_runs_efa_settings():
    """Issue 21: ``analyse_within`` (now ``EFA(settings).fit(data, groups)``) defaulted to ``max_words="auto"`` (n/2 words) and counted factors on every
    word, where the settings (and the pooled analysis) keep every word above the floor and count on units/3.
    It now takes the run's settings object; counts are read as used or not, and said so."""
    _, panel = vocabulary_panel(n_models=4, per_model=30, vocabulary_icc=0.3, n_words=120, seed=3)
    settings = EFASettings(parallel_iter=3, n_boot_within=2)
    pooled = efa.prepare_matrix(panel.incidence)
    assert pooled.n_words > len(panel.incidence) // 2  # a cap at n/2 would drop words
    within = efa.EFA(settings).fit(panel.incidence, panel.models)
    expected = multilevel.prepare_within(pooled, panel.models).data.columns
    assert list(within.prepared.data.columns) == list(expected)
    counted = efa.parallel_words(within.prepared.data, "auto", settings.parallel_ties)  # 40, and the ties at 40
    assert len(within.parallel.observed) == len(counted) == 42
    assert len(efa.parallel_words(within.prepared.data, "auto", "exclude")) == 38  # the other tie rule
    capped = efa.EFA(dataclasses.replace(settings, max_words=50)).fit(panel.incidence, panel.models)
    assert capped.prepared.n_words <= 50 and capped.result.cutoff == settings.cutoff
    counts = panel.incidence * np.random.default_rng(0).integers(1, 3, panel.incidence.shape)
    on_counts = efa.EFA(dataclasses.replace(settings, coding="counts")).fit(counts, panel.models)
    assert "counts read as used or not" in " ".join(on_counts.notes)
    assert set(np.unique(on_counts.prepared.data)) == {0, 1}


def test_score_shares_separates_vocabulary_from_shared_factors():
    rng = np.random.default_rng(8)
    groups = np.repeat(["a", "b", "c", "d"], 50)
    pet = (rng.random((200, 3)) < np.where(groups == "a", 0.7, 0.05)[:, None]).astype(int)
    shared = (rng.random((200, 3)) < 0.3).astype(int)
    data = pd.DataFrame(np.hstack([pet, shared]), columns=["p1", "p2", "p3", "s1", "s2", "s3"])
    table = pd.DataFrame({"word": data.columns, "factor": ["V"] * 3 + ["S"] * 3, "assigned": True})
    shares = multilevel.score_shares(data, table, groups).set_index("factor")
    assert shares.at["V", "ICC1"] > 0.5 and abs(shares.at["S", "ICC1"]) < 0.05
    assert shares.at["V", "main_within_source"] == "a"  # model a's words vary inside model a


def test_latent_icc_recovers_the_simulated_vocabulary_size():
    _, panel = vocabulary_panel(n_models=40, per_model=60, vocabulary_icc=0.3, n_words=40, seed=9)
    data = efa.prepare_matrix(panel.incidence).data
    assert multilevel.latent_icc(data, panel.models).median() == pytest.approx(0.3, abs=0.06)
    _, none = vocabulary_panel(n_models=40, per_model=60, vocabulary_icc=0.0, n_words=40, seed=9)
    assert multilevel.latent_icc(efa.prepare_matrix(none.incidence).data, none.models).median() < 0.03


# ------------------------------------------------------------------------------------------
# Response-level units: model and prompt
# ------------------------------------------------------------------------------------------
def test_crossed_decomposition_adds_up_in_a_balanced_design():
    rng = np.random.default_rng(1)
    model = pd.Series(np.repeat(["m1", "m2", "m3"], 40), name="model")
    prompt = pd.Series(np.tile(np.repeat(["p1", "p2", "p3", "p4"], 10), 3), name="prompt")
    p = (
        0.1
        + 0.5 * (prompt == "p1").to_numpy()[:, None] * np.array([1, 0, 0])
        + 0.5 * (model == "m1").to_numpy()[:, None] * np.array([0, 1, 0])
    )
    data = pd.DataFrame(
        (rng.random((120, 3)) < p + np.array([0, 0, 0.2])).astype(int), columns=["prompted", "pet", "plain"]
    )
    crossed = multilevel.crossed_decomposition(data, model, prompt)
    shares = crossed.shares.set_index("word")
    parts = shares[["eta2_model", "eta2_prompt", "eta2_model_x_prompt", "eta2_residual"]].sum(axis=1)
    np.testing.assert_allclose(parts, 1.0)
    assert crossed.balanced
    assert shares.at["prompted", "eta2_prompt"] > 0.2 > shares.at["prompted", "eta2_model"]
    assert shares.at["pet", "eta2_model"] > 0.2 > shares.at["pet", "eta2_prompt"]
    unbalanced = multilevel.crossed_decomposition(data.iloc[:-3], model.iloc[:-3], prompt.iloc[:-3])
    assert not unbalanced.balanced and "balanced design" in str(unbalanced)


def test_response_groups_and_unit_models():
    respondents = lexicon.load_respondents(paths.COMMITTED_PROCESSED)
    first = respondents["respondent"].iloc[0]
    index = pd.Index([f"{first}|p03|0", first])
    assert list(multilevel.unit_models(index, respondents)) == [respondents["model"].iloc[0]] * 2
    groups = multilevel.response_groups(pd.Index([f"{first}|p03|0"]), respondents)
    assert groups.iloc[0].to_dict() == {"model": respondents["model"].iloc[0], "prompt": "p03"}
    with pytest.raises(efa.EFAInputError, match="no 'model' in the 'respondent' table"):
        multilevel.unit_models(pd.Index(["nobody|t=1|p=1|s=1|p01|0"]), respondents)


def test_response_level_analysis_on_simulated_answers():
    """Answers of 4 models to 6 prompts; prompts draw their own words (a prompt effect), models their
    own (a vocabulary); the within-cell EFA sees neither."""
    structure = simulation.planted_structure(n_words=30, seed=2)
    panel = simulation.simulate_model_panel(structure, 24, 30, vocabulary_icc=0.3, seed=3)  # 24 cells
    cells = panel.models.str[1:].astype(int) - 1
    model = pd.Series([f"model{c // 6}" for c in cells], index=panel.incidence.index)
    prompt = pd.Series([f"p{c % 6}" for c in cells], index=panel.incidence.index)
    levels = multilevel.analyse_responses(
        panel.incidence, pd.DataFrame({"model": model, "prompt": prompt}), EFASettings(parallel_iter=8, seed=0)
    )
    assert levels.within.correlation.n_obs == len(panel.incidence) - 24
    assert simulation.recovery_scores(structure, levels.within.result)["min_congruence"] > 0.85
    shares = levels.pooled_shares
    assert (shares["ICC1_cell"] >= shares[["ICC1_model", "ICC1_prompt"]].max(axis=1) - 0.05).all()
    metrics = levels.metrics()
    assert metrics["response_units"] == len(panel.incidence) and "Levels" in str(levels)
