"""Polychoric correlations on sparse ordinal data: parity with ``lavaan::lavCor`` and ``psych::polychoric``.

``tests/r/lavaan_polychoric.R`` runs lavaan (``lavCor(x, ordered = names(x))``) and psych
(``polychoric(x, correct = 0)``) on: the stress case of issue 20 (N = 200, 30 three-category items above
the lowest category in 1.5% to 98% of cases, the top category sparse or empty), sparse four- and
five-category items, items with an empty middle category and empty cells, and our word counts
(``efa.coding: counts``). A pair whose likelihood has an interior maximum must match lavaan to 1e-5 and
psych to its ``optimize`` tolerance; a pair whose likelihood rises (or is flat) up to the bound must be
reported, and lavaan's value for it must lie on the plateau (its likelihood within 1e-6 of ours: where
lavaan stops there depends on its optimiser, not on the data).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.conftest import require_rscript
from valuelex.psychometrics import polychoric
from valuelex.psychometrics.cfa import wlsmv

R_SCRIPTS = Path(__file__).parent / "r"
#: lavaan's nlminb stops at a relative change of 1e-10 in the likelihood: about 1e-7 in rho (we measured 1e-7)
LAVAAN_TOL = 1e-5
#: psych maximises with optimize() (tolerance 1.2e-4) and sadmvn cell probabilities (error 1e-6)
PSYCH_TOL = 1e-3
#: lavaan's value for a boundary pair is on the plateau: its log-likelihood is this close to the bound's
PLATEAU_TOL = 1e-6


def sparse_items(n: int, p: int, categories: int, low: float, high: float, seed: int, top: float = 0.3) -> pd.DataFrame:
    """``p`` items of one factor (loadings 0.45-0.85) cut into ``categories`` ordered categories: the share
    above the lowest category runs from ``low`` to ``high`` over the items (geometrically), and each higher
    category holds ``top`` times the share of the one below (sparse, sometimes empty, top categories)."""
    rng = np.random.default_rng(seed)
    loadings = rng.uniform(0.45, 0.85, p)
    factor = rng.standard_normal(n)
    latent = factor[:, None] * loadings + rng.standard_normal((n, p)) * np.sqrt(1 - loadings**2)
    above = np.geomspace(low, high, p)
    rng.shuffle(above)
    cuts = stats.norm.ppf(1 - above[None, :] * top ** np.arange(categories - 1)[:, None])  # (categories-1, p)
    codes = (latent[:, None, :] > cuts[None, :, :]).sum(axis=1)
    return pd.DataFrame(codes, columns=[f"y{j + 1:02d}" for j in range(p)])


def stress_case() -> pd.DataFrame:
    """Issue 20's stress case: N = 200, 30 three-category items, shares 1.5% to 98%, sparse top categories
    (items left with one category are dropped, as lavaan would refuse them)."""
    data = sparse_items(200, 30, 3, 0.015, 0.98, seed=20)
    return data.loc[:, data.nunique() > 1]


def empty_cells_case() -> pd.DataFrame:
    """Five-category items, some without their middle category (codes 0, 1, 3, 4), many empty cells."""
    data = sparse_items(150, 10, 5, 0.05, 0.9, seed=3, top=0.5)
    for column in data.columns[::3]:
        data[column] = data[column].where(data[column] != 2, 3)  # no one in the middle category
    return data.loc[:, data.nunique() > 1]


def word_counts() -> pd.DataFrame:
    """Our word counts (``efa.coding: counts``): the 40 most used lexicon words of the committed panel."""
    from valuelex import lexicon
    from valuelex.core import paths
    from valuelex.psychometrics import efa

    incidence = lexicon.load_incidence(unit="respondent", coding="counts", folder=paths.COMMITTED_PROCESSED)
    prepared = efa.prepare_matrix(incidence, coding="counts")
    used = (prepared.data > 0).sum().sort_values(ascending=False, kind="stable")
    return prepared.data[list(used.index[:40])].astype(int)


CASES = {
    "stress_3cat": stress_case,
    "sparse_4cat": lambda: sparse_items(180, 14, 4, 0.03, 0.95, seed=4),
    "sparse_5cat": lambda: sparse_items(250, 12, 5, 0.02, 0.97, seed=5),
    "empty_cells": empty_cells_case,
    "word_counts": word_counts,
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, dict]:
    """Every case with our matrix and lavaan's and psych's (one R session for all)."""
    rscript = require_rscript()
    root = tmp_path_factory.mktemp("polychoric")
    rows, data = [], {}
    for name, make in CASES.items():
        data[name] = make()
        data[name].to_csv(root / f"{name}.csv", index=False)
        rows.append({"data": str(root / f"{name}.csv"), "out": str(root / name)})
    pd.DataFrame(rows).to_csv(root / "cases.csv", index=False)
    subprocess.run([rscript, "--vanilla", str(R_SCRIPTS / "lavaan_polychoric.R"), str(root / "cases.csv")], check=True)
    out = {}
    for name, frame in data.items():
        out[name] = {
            "data": frame,
            "ours": polychoric.polychoric_matrix(frame),
            "lavaan": pd.read_csv(root / f"{name}_lavaan.csv").to_numpy(),
            "psych": pd.read_csv(root / f"{name}_psych.csv").to_numpy(),
        }
    return out


def _pairs(case: dict) -> pd.DataFrame:
    """One row per pair: our value, lavaan's, psych's, whether ours is at the bound, the table's shape."""
    ours = case["ours"]
    rows, cols = polychoric.pair_indices(len(ours.names))
    boundary = {(a, b) for a, b, _ in ours.boundary_pairs}
    table = pd.DataFrame(
        {
            "a": [ours.names[i] for i in rows],
            "b": [ours.names[j] for j in cols],
            "ours": ours.correlations[rows, cols],
            "lavaan": case["lavaan"][rows, cols],
            "psych": case["psych"][rows, cols],
        }
    )
    table["at_bound"] = [(a, b) in boundary for a, b in zip(table["a"], table["b"], strict=True)]
    k = np.array([len(v) for v in ours.levels])
    table["two_by_two"] = (k[rows] == 2) & (k[cols] == 2)
    return table


def _log_likelihood(case: dict, a: str, b: str, rho: float) -> float:
    ours = case["ours"]
    i, j = ours.names.index(a), ours.names.index(b)
    k1, k2 = len(ours.levels[i]), len(ours.levels[j])
    table = polychoric.pair_table(ours.codes[:, i], ours.codes[:, j], k1, k2)
    tau1, tau2 = ours.thresholds[i], ours.thresholds[j]
    return float(polychoric.log_likelihood(table[None], tau1[None], tau2[None], np.array([rho]))[0])


@pytest.mark.r
@pytest.mark.parametrize("name", list(CASES))
def test_interior_maxima_match_lavaan_and_psych(reference, name):
    pairs = _pairs(reference[name])
    interior = pairs[~pairs["at_bound"]]
    assert len(interior) > 0
    np.testing.assert_allclose(interior["ours"], interior["lavaan"], atol=LAVAAN_TOL)
    # psych leaves 2 x 2 tables with an empty cell uncorrected (correct = 0); lavaan moves 0.5 into the cell
    corrected = set(reference[name]["ours"].empty_cell_pairs)
    empty = np.array([(a, b) in corrected for a, b in zip(interior["a"], interior["b"], strict=True)])
    plain = interior[~(interior["two_by_two"].to_numpy() & empty)]
    np.testing.assert_allclose(plain["ours"], plain["psych"], atol=PSYCH_TOL)


@pytest.mark.r
@pytest.mark.parametrize("name", list(CASES))
def test_boundary_pairs_are_on_lavaans_plateau(reference, name):
    """Every pair we put at the bound is one whose likelihood does not fall towards +-1: lavaan's value
    (wherever its optimiser stopped) is not better than the bound's, and no better than 1e-6 worse."""
    case = reference[name]
    pairs = _pairs(case)
    assert (pairs.loc[pairs["ours"].abs() >= polychoric.RHO_BOUND, "at_bound"]).all()  # no silent bound
    for row in pairs[pairs["at_bound"]].itertuples():
        ours = _log_likelihood(case, row.a, row.b, row.ours)
        theirs = _log_likelihood(case, row.a, row.b, row.lavaan)
        assert np.sign(row.lavaan) == np.sign(row.ours)
        assert 0 <= ours - theirs < PLATEAU_TOL * max(1.0, abs(ours)), (row.a, row.b, row.ours, row.lavaan)


def test_cases_are_as_hard_as_claimed():
    """The stress case has sparse categories and boundary pairs; the empty-cells case items without a middle
    category; the word counts many boundary pairs (words whose counts never meet above their lowest)."""
    stress = polychoric.polychoric_matrix(stress_case())
    shares = (stress_case() > 0).mean()
    assert shares.min() < 0.03 and shares.max() > 0.95
    assert 10 < len(stress.boundary_pairs) < 100
    assert len(stress.empty_cell_pairs) > 200
    empty = empty_cells_case()
    assert any(set(np.unique(empty[c])) == {0, 1, 3, 4} for c in empty.columns)
    counts = polychoric.polychoric_matrix(word_counts())
    assert len(counts.boundary_pairs) > 5


# ------------------------------------------------------------------------------------------
# Without R
# ------------------------------------------------------------------------------------------
def test_the_stress_case_gives_statistics_for_every_pair():
    """Issue 20: the old estimator raised "no information" on tables that are not degenerate and put 21 pairs
    silently at +-0.999. Every pair now has a value, Gamma is finite, and only reported pairs sit at the bound."""
    data = stress_case()
    sample = wlsmv.ordinal_statistics(data)
    assert np.isfinite(sample.gamma).all()
    rows, cols = sample.pairs()
    at_bound = np.abs(sample.correlations[rows, cols]) >= polychoric.RHO_BOUND
    assert at_bound.sum() == len(sample.boundary_pairs) == (~sample.informative).sum()
    assert sample.gamma.shape[0] == sample.n_thresholds + int(sample.informative.sum())


def test_a_table_compatible_with_minus_one_is_reported_at_the_bound():
    """Two items that never meet above their lowest categories: the likelihood rises up to -1."""
    table = np.array([[74.0, 18.0, 3.0], [25.0, 0.0, 0.0]])
    tau1 = stats.norm.ppf(np.cumsum(table.sum(1))[:-1] / table.sum())
    tau2 = stats.norm.ppf(np.cumsum(table.sum(0))[:-1] / table.sum())
    fit = polychoric.maximise(table[None], tau1[None], tau2[None])
    assert fit.at_bound[0] and fit.rho[0] == -polychoric.RHO_BOUND
    grid = [polychoric.log_likelihood(table[None], tau1[None], tau2[None], np.array([r]))[0] for r in (-0.9, -0.99)]
    assert grid[0] < grid[1] <= fit.log_likelihood[0]


def test_an_interior_maximum_close_to_the_bound_is_found_not_flagged():
    """A strong correlation (0.97) of two sparse three-category items: the maximum is interior and is found
    (the old bisection on the sign of the score at +-0.999 could not tell it from the bound)."""
    rng = np.random.default_rng(1)
    latent = rng.multivariate_normal([0, 0], [[1, 0.97], [0.97, 1]], size=300)
    codes = np.stack([(latent[:, k] > 1.2).astype(int) + (latent[:, k] > 2.0) for k in range(2)], axis=1)
    matrix = polychoric.polychoric_matrix(pd.DataFrame(codes, columns=["a", "b"]))
    assert not matrix.boundary_pairs
    rho = matrix.correlations[0, 1]
    assert 0.9 < rho < polychoric.RHO_BOUND

    def loglik(r: float) -> float:
        table = polychoric.pair_table(codes[:, 0], codes[:, 1], 3, 3)
        return polychoric.log_likelihood(
            table[None], matrix.thresholds[0][None], matrix.thresholds[1][None], np.array([r])
        )[0]

    assert loglik(rho) > max(loglik(rho - 1e-4), loglik(rho + 1e-4))


@pytest.mark.parametrize("rho", [0.3, -0.8, 0.995, -0.9989])
def test_cell_probabilities_are_exact_in_the_tails(rho):
    """Every cell of a 4 x 4 table with extreme thresholds, against an mpmath integral at 40 digits:
    relative error below 1e-9 even for cells of 1e-40 (lavaan's differences of CDFs floor them at 1.5e-8)."""
    import mpmath  # locked (requirements.lock): never skipped

    mpmath.mp.dps = 40
    tau1, tau2 = np.array([-2.5, 0.4, 2.9]), np.array([-1.0, 2.2, 3.4])
    logp = polychoric.cell_log_probabilities(tau1[None], tau2[None], np.array([rho]))[0]
    bounds1 = [-mpmath.inf, *map(mpmath.mpf, tau1), mpmath.inf]
    bounds2 = [-mpmath.inf, *map(mpmath.mpf, tau2), mpmath.inf]
    r = mpmath.mpf(rho)
    root = mpmath.sqrt(1 - r * r)
    for i in range(4):
        for j in range(4):

            def integrand(x, i=i, j=j):
                lower, upper = (bounds2[j] - r * x) / root, (bounds2[j + 1] - r * x) / root
                if lower > 0:  # both in the upper tail: difference of upper tails (no cancellation)
                    return mpmath.npdf(x) * (mpmath.ncdf(-lower) - mpmath.ncdf(-upper))
                return mpmath.npdf(x) * (mpmath.ncdf(upper) - mpmath.ncdf(lower))

            lo, hi = bounds1[i], bounds1[i + 1]
            steps = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)  # the mass of a tail cell hugs its edge
            inner = {e + d for e in (lo, hi) if mpmath.isfinite(e) for d in (*steps, *(-s for s in steps))}
            points = [lo, *sorted(x for x in inner | {-3, 0, 3} if lo < x < hi), hi]
            exact = mpmath.log(mpmath.quad(integrand, points))
            assert abs(logp[i, j] - float(exact)) < 1e-9 * max(1.0, abs(float(exact))), (i, j)
