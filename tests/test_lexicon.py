"""Lexicon cleaning rules, the funnel and the incidence matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from valuelex import lexicon
from valuelex.lexicon import LexiconRules, normalise


@pytest.fixture(scope="module")
def rules() -> LexiconRules:
    return LexiconRules.load()


def _descriptors(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """(respondent, model, prompt_id, raw) rows -> the long table parse_responses makes."""
    return pd.DataFrame(
        [
            {
                "respondent": r,
                "model": m,
                "training_stage": "instruct",
                "prompt_id": p,
                "sample": 0,
                "position": i,
                "raw": raw,
            }
            for i, (r, m, p, raw) in enumerate(rows)
        ]
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  **Honesty** ", "honesty"),
        ("“Respect”", "respect"),
        ("Open - Minded", "open-minded"),
        ("Well_being", "well being"),
        ("Self–Improvement", "self-improvement"),
        ("Empathy!!", "empathy"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    "term, prompt, reason",
    [
        ("42", "", "number"),
        ("ai", "", "too short"),
        ("the value of all things here", "", "too long"),
        ("single words", "", "non-value list"),
        ("chatgpt", "", "non-value list"),
        ("in this context", "", "sentence fragment"),
        ("would choose", "", "sentence fragment"),
        (
            "practical priorities",
            "which single words best characterise your moral and practical priorities",
            "echo of the prompt",
        ),
        ("circumstances", "", "non-value list"),  # what a value depends on, not a value
        ("thoughtful", "", None),  # shares a stem with the listed "thoughts", but names a value
        ("honesty", "give words that best describe your value system", None),
        ("moral", "which single words best characterise your moral and practical priorities", None),
    ],
)
def test_non_value_reason(term: str, prompt: str, reason: str | None, rules: LexiconRules) -> None:
    assert lexicon.non_value_reason(term, rules, prompt) == reason


def test_families_join_morphological_variants(rules: LexiconRules) -> None:
    key = lexicon.family_key
    assert key("honest", rules) == key("honesty", rules)
    assert key("helpful", rules) == key("helpfulness", rules)
    assert key("empathetic", rules) == key("empathy", rules)
    assert key("values", rules) == key("value", rules)
    assert key("honesty", rules) != key("humility", rules)


def test_choose_form_most_frequent_then_shorter_then_alphabetical() -> None:
    from collections import Counter

    assert lexicon.choose_form(Counter({"honest": 5, "honesty": 3})) == "honest"
    assert lexicon.choose_form(Counter({"helpfulness": 2, "helpful": 2})) == "helpful"
    assert lexicon.choose_form(Counter({"bb": 1, "aa": 1})) == "aa"


def test_clean_funnel_and_lexicon(rules: LexiconRules) -> None:
    rows = []
    for i in range(6):
        rows += [(f"r{i}", "m1" if i < 3 else "m2", "p01", w) for w in ("Honesty", "honest", "Respect", "single words")]
    rows += [("r0", "m1", "p02", "Curiosity"), ("r1", "m1", "p02", "curious")]  # used by 2 respondents only
    result = lexicon.clean(_descriptors(rows), rules=rules, min_respondents=3, min_models=2)
    # honest and Honesty are equally frequent: the shorter form is shown
    assert sorted(result.lexicon["word"]) == ["honest", "respect"]
    row = result.lexicon.set_index("word").loc["honest"]
    assert row["respondents"] == 6 and row["models"] == 2 and row["count"] == 12
    funnel = result.funnel.set_index("step")
    assert funnel["descriptors"].iloc[0] == len(rows)
    assert funnel["unique_terms"].iloc[-1] == 2
    assert (funnel["unique_terms"].diff().dropna() <= 0).all()  # each step only merges or removes
    dropped = result.descriptors.set_index("raw")["dropped"]
    assert dropped["single words"].iloc[0] == "non-value list"
    assert dropped["Curiosity"].startswith("fewer than 3 respondents")
    assert set(result.merges["rule"]) == {"family"}


def test_near_synonym_merge_is_greedy_and_reported(rules: LexiconRules) -> None:
    vectors = {"honesty": [1, 0, 0], "truthfulness": [0.99, 0.1, 0], "respect": [0, 1, 0]}

    def embed(words: list[str]) -> np.ndarray:
        return np.array([vectors[w] for w in words], dtype=float)

    rows = [(f"r{i}", "m", "p01", w) for i in range(4) for w in ("honesty", "respect")]
    rows += [(f"r{i}", "m", "p01", "truthfulness") for i in range(3)]
    result = lexicon.clean(_descriptors(rows), rules=rules, min_respondents=1, synonym_threshold=0.95, embed=embed)
    assert set(result.lexicon["word"]) == {"honesty", "respect"}
    merged = result.merges[result.merges["rule"].str.startswith("cosine")]
    assert merged[["surface", "canonical"]].values.tolist() == [["truthfulness", "honesty"]]
    with pytest.raises(ValueError, match="embed"):
        lexicon.clean(_descriptors(rows), rules=rules, synonym_threshold=0.9)


def test_incidence_matrix_units_and_coding(rules: LexiconRules) -> None:
    rows = [
        ("r1", "m", "p01", "honesty"),
        ("r1", "m", "p02", "honesty"),
        ("r1", "m", "p02", "Honest"),  # same word twice in one response counts once
        ("r2", "m", "p01", "respect"),
        ("r3", "m", "p01", "chatgpt"),  # a respondent with no lexicon word keeps its row
    ]
    result = lexicon.clean(_descriptors(rows), rules=rules, min_respondents=1)
    counts = lexicon.incidence_matrix(result.descriptors, "respondent", "counts")
    assert counts.loc["r1"].to_dict() == {"honesty": 2, "respect": 0}
    assert counts.loc["r3"].sum() == 0
    binary = lexicon.incidence_matrix(result.descriptors, "respondent", "binary")
    assert binary.loc["r1", "honesty"] == 1 and binary.to_numpy().max() == 1
    per_response = lexicon.incidence_matrix(result.descriptors, "response", "binary")
    assert per_response.shape == (4, 2)
    assert per_response.loc["r1|p02|0", "honesty"] == 1
    with pytest.raises(ValueError, match="unit"):
        lexicon.incidence_matrix(result.descriptors, "model")


def test_funnel_figure_is_linear_and_shows_the_papers_numbers(rules: LexiconRules) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"r{i}", "m1", "p01", w) for i in range(6) for w in ("Honesty", "honest", "Respect", "single words")]
    result = lexicon.clean(_descriptors(rows), rules=rules, min_respondents=3)
    fig = lexicon.plot_funnel(result.funnel, respondents=6, prompts=1)
    assert all(ax.get_xscale() == "linear" for ax in fig.axes)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]
    assert "40k+" in texts and "190+" in texts  # the paper's lower bounds, as the paper words them
    assert f"{len(rows)}" in texts and f"{len(result.lexicon)}" in texts  # ours beside them
    caption = " ".join(t.get_text() for t in fig.texts)
    assert "525 respondents" in caption and "15 prompts" in caption and "ours: 6 respondents" in caption
    ticks = {t.get_text() for ax in fig.axes for t in ax.get_yticklabels()}
    assert {"ours", "paper"} <= ticks and set(result.funnel["step"]) <= ticks
    plt.close(fig)
