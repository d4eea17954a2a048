"""Numbers at the precision they mean: the rules, their noise-proofness, and near-ties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from valuelex import semantic
from valuelex.app.verify import _cell_differs
from valuelex.core import precision
from valuelex.core.precision import QUANTITIES, choose, format_value, quantity_of
from valuelex.plots import figure1


@pytest.mark.parametrize(
    ("quantity", "value", "text"),
    [
        ("loading", 0.846927, "0.847"),
        ("loading", 0.000168668, "0.000"),  # the cross-machine noise of issue 12 (…668 vs …663) is gone
        ("loading", -0.0004, "0.000"),  # no "-0.000"
        ("fit_index", 0.0957973, "0.096"),
        ("chi_square", 958.908, "958.91"),
        ("p_value", 0.153318, "0.153"),
        ("p_value", 0.00019296, "0.000193"),
        ("p_value", 4.8e-124, "4.80e-124"),
        ("score", 41.53364371346632, "41.53"),
        ("score", 0.39561452232186056, "0.3956"),
        ("similarity", 1.12951e-05, "0.0000"),
        ("setting", 0.7, "0.7"),
        ("setting", 1.0, "1.0"),
        ("integer", 4.0, "4"),
        ("default", 12345.6, "12350"),
        ("default", 0.000123456, "0.0001235"),
        ("default", 0.0, "0"),
        ("loading", float("nan"), ""),
        ("eigenvalue", float("inf"), "inf"),
    ],
)
def test_values_are_written_at_their_quantitys_precision(quantity: str, value: float, text: str) -> None:
    assert format_value(value, QUANTITIES[quantity]) == text


def test_column_quantity_lookup_order() -> None:
    # the column name says what it holds
    assert quantity_of("cfa_model_comparison", "chi2") == "chi_square"
    assert quantity_of("cfa_model_comparison", "RMSEA_lo90") == "fit_index"
    assert quantity_of("projective_comparisons", "p_holm") == "p_value"
    assert quantity_of("respondents", "top_p") == "setting"  # not a p-value
    assert quantity_of("efa_loadings", "F3") == "loading"
    # the table's rule wins over the name: F1 in the factor correlations is a correlation
    assert quantity_of("efa_factor_correlations", "F1") == "correlation"
    assert quantity_of("efa_variance", "F2") == "eigenvalue"
    assert quantity_of("efa_bootstrap_congruence", "share_ge_0.95") == "share"
    # the caller's override wins over both
    assert quantity_of("efa_loadings", "F1", {"F1": "similarity"}) == "similarity"
    assert quantity_of("efa_loadings", "F1", {"F\\d": "score"}) == "score"
    assert quantity_of("anything", "some_new_column") == "default"
    with pytest.raises(ValueError, match="unknown quantity 'loadings'"):
        precision.precision_of("t", "x", {"x": "loadings"})


def test_every_tolerance_covers_one_unit_of_the_last_written_digit() -> None:
    """A value on a rounding boundary may round either way on another machine: verify must accept that."""
    rng = np.random.default_rng(0)
    magnitudes = 10.0 ** rng.uniform(-6, 3, 4000) * rng.choice([-1, 1], 4000)
    for name, rule in QUANTITIES.items():
        if rule.digits is None or name == "integer":
            continue
        same = 0
        for value in magnitudes:
            if name in ("p_value", "share", "similarity", "loading", "index", "fit_index", "correlation"):
                value = abs(value) % 1.0
            noisy = value * (1 + 3e-9) + 1e-12  # larger than the BLAS noise we measured
            a, b = format_value(value, rule), format_value(noisy, rule)
            same += a == b
            assert _cell_differs(a, b, rule) is None, (name, value, a, b)
        if name != "money":  # (costs come from token counts, not from BLAS: no noise to absorb)
            assert same / len(magnitudes) > 0.99, name  # and nearly always the bytes do not move at all


def test_values_near_zero_tolerate_absolute_noise() -> None:
    """A value near zero is often a difference of larger numbers: its noise is absolute, not relative.

    Issue 18: the stance scorer's ``contrast`` of a case went 0.0001308 -> 0.0001305 on another CPU
    (3e-7, while a relative tolerance allowed 2.6e-7). Every quantity must accept absolute noise of
    1e-6 near zero (the largest measured: 1.4e-6 on float32-derived scores, just above; 3e-7 here).
    """
    noise = 1e-6
    for name, rule in QUANTITIES.items():
        if rule.digits is None or name == "integer":
            continue
        for value in (1.308e-4, -2.5e-5, 3e-7, 0.0, 0.00704, 8.85e-05):
            a, b = format_value(value, rule), format_value(value + noise, rule)
            assert _cell_differs(a, b, rule) is None, (name, value, a, b)
    default = QUANTITIES["default"]
    assert _cell_differs("0.0001308", "0.0001305", default) is None  # the case of the issue
    # ... while a change that means something near zero is still caught
    assert _cell_differs("0.00704", "0.00724", default) is not None
    assert _cell_differs("8.85e-05", "0.000185", default) is not None


def test_a_contrast_of_similarities_is_a_similarity() -> None:
    assert quantity_of("projective_scored_stance", "contrast") == "similarity"
    assert quantity_of("projective_scored_embedding", "raw") == "similarity"
    assert format_value(0.0001308, QUANTITIES["similarity"]) == "0.0001"


def test_full_precision_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.FULL_PRECISION_ENV, "1")
    assert format_value(0.846927123456789, QUANTITIES["loading"]) == "0.846927123456789"
    table = precision.format_table(pd.DataFrame({"F1": [0.1 + 0.2]}), "efa_loadings")
    assert table["F1"].iloc[0] == "0.30000000000000004"


def test_format_table_leaves_integers_booleans_and_text_alone() -> None:
    df = pd.DataFrame({"word": ["a", "b"], "count": [3, 4], "assigned": [True, False], "loading": [0.12345, np.nan]})
    out = precision.format_table(df, "efa_word_factors")
    assert out["count"].tolist() == [3, 4] and out["assigned"].tolist() == [True, False]
    assert out["loading"].tolist() == ["0.123", ""]
    with pytest.raises(ValueError, match="does not have"):
        precision.format_table(df, "efa_word_factors", {"F9": "loading"})


# --------------------------------------------------------------------------- near-ties


def test_choose_reports_near_ties_by_column_order() -> None:
    scores = np.array(
        [
            [0.40, 0.50, 0.45],  # clear winner: column 1
            [0.5000, 0.50001, 0.1],  # column 1 wins by 1e-5: a tie, column 0 (first) is reported
            [0.1, 0.6, 0.59995],  # tie between 1 and 2: column 1
        ]
    )
    choice = choose(scores)
    assert choice.best.tolist() == [1, 0, 1]
    assert choice.tie.tolist() == [False, True, True]
    assert choice.second.tolist() == [2, 1, 2]
    assert np.allclose(choice.margin, [0.05, 1e-5, 5e-5])
    # noise far below the tolerance cannot change a choice, even inside a tie
    rng = np.random.default_rng(1)
    for _ in range(50):
        noisy = choose(scores + rng.normal(0, 1e-7, scores.shape))
        assert noisy.best.tolist() == [1, 0, 1] and noisy.tie.tolist() == [False, True, True]
    single = choose(np.array([[0.3], [0.2]]))
    assert single.best.tolist() == [0, 0] and not single.tie.any()
    with pytest.raises(ValueError, match="2-D"):
        choose(np.array([0.1, 0.2]))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_nearest_dimension_of_a_word_on_a_tie_is_marked_and_does_not_flip() -> None:
    """Like ``integrity`` in the committed map: its two best dimensions 1.1e-5 apart."""
    prototypes = np.eye(3)
    labels = ["Competence", "Character", "Integrity"]
    word = _unit(np.array([[0.1, 0.7, 0.7 + 1.6e-5]]))  # Integrity ahead by ~1.1e-5
    rng = np.random.default_rng(2)
    answers = set()
    for _ in range(20):
        noisy = _unit(word + rng.normal(0, 1e-7, word.shape))
        row = semantic.nearest_category(noisy, prototypes, labels).iloc[0]
        answers.add((row["nearest"], bool(row["tie"])))
        assert row["margin"] < precision.TIE_TOLERANCE
    assert answers == {("Character", True)}  # first in the taxonomy's order, every time
    clear = semantic.nearest_category(_unit(np.array([[0.9, 0.1, 0.1]])), prototypes, labels).iloc[0]
    assert clear["nearest"] == "Competence" and not clear["tie"]


def test_taxonomy_placement_marks_ties() -> None:
    taxonomy = pd.DataFrame(
        {
            "word": ["a", "b", "c", "d", "e", "f"],
            "subdimension": ["Self-Competent", "User-Oriented", "Social", "Idealistic", "Professional", "Ethical"],
            "dimension": ["Competence", "Competence", "Character", "Character", "Integrity", "Integrity"],
        }
    )
    basis = dict(zip("abcdef", np.eye(6), strict=True))
    words = {"tied": np.array([0, 0, 1, 1 + 1e-5, 0, 0]), "clear": np.array([0, 0, 0, 0, 0, 1.0])}

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([basis[t] if t in basis else words[t] for t in texts])

    placed = figure1.place_words(["tied", "clear"], taxonomy, embed).set_index("word")
    assert placed.loc["tied", "subdimension"] == "Social" and placed.loc["tied", "tie"]
    assert placed.loc["clear", "subdimension"] == "Ethical" and not placed.loc["clear", "tie"]
    assert math.isclose(placed.loc["clear", "margin"], 1.0)
